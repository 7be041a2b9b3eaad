"""Training with the cells: fit under mixed precision and XLA, and the guide's two models."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CELL_NAMES

import rnn_keras


def regression_model(cell_name):
    inputs = keras.Input((None, 5))
    x = keras.layers.RNN(rnn_keras.get_cell(cell_name)(8, dropout=0.1), return_sequences=True)(
        inputs
    )
    x = keras.layers.RNN(rnn_keras.get_cell(cell_name)(8))(x)
    return keras.Model(inputs, keras.layers.Dense(1, dtype="float32")(x))


def fit_one_step(model, **compile_kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6, 5)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", **compile_kwargs)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True)]
    assert all(changed), "every weight should move after one Adam step"
    return model


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fit_step_under_mixed_float16(cell_name):
    keras.config.set_dtype_policy("mixed_float16")
    model = regression_model(cell_name)
    cell = model.layers[1].cell
    assert cell.compute_dtype == "float16" and cell.kernel.dtype == "float32"
    assert model.layers[1].output.dtype == "float16"
    fit_one_step(model)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fit_step_with_jit_compile(cell_name):
    model = fit_one_step(regression_model(cell_name), jit_compile=True)
    assert model.jit_compile


def test_jit_compiled_forward_equals_eager():
    layer = keras.layers.RNN(rnn_keras.GRUCell(6), return_sequences=True)
    x = tf.constant(np.random.default_rng(1).standard_normal((2, 9, 5)), tf.float32)
    eager = layer(x)
    compiled = tf.function(lambda v: layer(v), jit_compile=True)(x)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("cell_name", "pooling"), [("simple", "last"), ("lstm", "mean"), ("gru", "max")]
)
def test_sequence_classifier_learns_a_toy_task(cell_name, pooling):
    """Label = whether token 1 appears: a stacked bidirectional classifier gets it right.

    Each cell and each pooling learns it once (the poolings' values on padded rows are
    checked in test_masked_pooling_ignores_padding_and_empty_rows)."""
    rng = np.random.default_rng(2)
    ids = rng.integers(2, 10, (256, 12))
    lengths = rng.integers(4, 13, 256)
    labels = rng.integers(0, 2, 256)
    for row, (length, label) in enumerate(zip(lengths, labels, strict=True)):
        if label:
            ids[row, rng.integers(0, length)] = 1
        ids[row, length:] = 0
    backbone = rnn_keras.RecurrentBackbone(
        cell_name, 16, num_layers=2, bidirectional=True, vocabulary_size=10, embedding_dim=8
    )
    model = rnn_keras.SequenceClassifier(backbone, num_classes=2, pooling=pooling)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(ids, labels, batch_size=32, epochs=8, verbose=0)
    assert history.history["accuracy"][-1] > 0.9


def test_sequence_classifier_on_float_features():
    backbone = rnn_keras.RecurrentBackbone("simple", 4, input_dim=6)
    model = rnn_keras.SequenceClassifier(backbone, num_classes=3)
    assert model.predict(np.zeros((2, 5, 6), "float32"), verbose=0).shape == (2, 3)
    clone = rnn_keras.SequenceClassifier.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


def test_char_rnn_stateful_windows_equal_one_long_pass():
    """Truncated BPTT's premise: a stateful model on consecutive windows sees the whole text."""
    ids = np.random.default_rng(3).integers(0, 11, (4, 12)).astype("int32")
    arguments = {
        "cell": "lstm",
        "units": 6,
        "num_layers": 2,
        "embedding_dim": 5,
        "mask_zero": False,
    }
    whole = rnn_keras.LanguageModel(rnn_keras.RecurrentBackbone(vocabulary_size=11, **arguments))
    stateful = rnn_keras.LanguageModel(
        rnn_keras.RecurrentBackbone(vocabulary_size=11, stateful=True, batch_size=4, **arguments)
    )
    stateful.set_weights(whole.get_weights())
    windows = [stateful(ids[:, i : i + 4]) for i in range(0, 12, 4)]
    np.testing.assert_allclose(np.concatenate(windows, axis=1), whole(ids), rtol=1e-5, atol=1e-6)
    stateful.backbone.reset_states()
    np.testing.assert_allclose(stateful(ids[:, :4]), whole(ids[:, :4]), rtol=1e-5, atol=1e-6)


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match="Unknown cell 'rnn'.*'gru', 'lstm', 'simple'"):
        rnn_keras.RecurrentBackbone(cell="rnn", vocabulary_size=5)
    backbone = rnn_keras.RecurrentBackbone(vocabulary_size=5)
    with pytest.raises(ValueError, match="mode.*Received: mode='first'"):
        rnn_keras.SequenceClassifier(backbone, pooling="first")
    with pytest.raises(ValueError, match="exactly one of `vocabulary_size`"):
        rnn_keras.RecurrentBackbone()
    with pytest.raises(ValueError, match="needs a fixed `batch_size`"):
        rnn_keras.RecurrentBackbone(vocabulary_size=10, stateful=True)
    with pytest.raises(ValueError, match="must be an rnn_keras.RecurrentBackbone"):
        rnn_keras.SequenceClassifier(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="backbone must read token ids"):
        rnn_keras.LanguageModel(rnn_keras.RecurrentBackbone(input_dim=3))
    with pytest.raises(ValueError, match="stacked bidirectional.*num_layers=2"):
        stacked = rnn_keras.RecurrentBackbone(vocabulary_size=5, num_layers=2, bidirectional=True)
        rnn_keras.LanguageModel(stacked)


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_masked_pooling_ignores_padding_and_empty_rows(mode):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 6, 2)).astype("float32") - 5.0  # all negative: 0-padding would win
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], bool)
    pooled = np.asarray(rnn_keras.MaskedGlobalPooling1D(mode)(x, mask=mask))
    reduce = np.mean if mode == "mean" else np.max
    np.testing.assert_allclose(pooled[0], reduce(x[0, :3], axis=0), rtol=1e-6)
    np.testing.assert_allclose(pooled[1], reduce(x[1], axis=0), rtol=1e-6)
    np.testing.assert_array_equal(pooled[2], 0.0)  # an empty text pools to zeros, not NaN/-inf


def test_fit_logs_the_global_gradient_norm_of_every_step():
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 10, (8, 6))
    labels = rng.integers(0, 2, (8, 1)).astype("float32")
    backbone = rnn_keras.RecurrentBackbone("lstm", 4, vocabulary_size=10, embedding_dim=3)
    model = rnn_keras.SequenceClassifier(backbone, num_classes=1, activation="sigmoid")
    loss_fn = keras.losses.BinaryCrossentropy()
    monitor = rnn_keras.GradientNormMonitor(keras.optimizers.Adam(1e-2, global_clipnorm=1e-3))
    model.compile(optimizer=monitor, loss=loss_fn, metrics=[monitor.metric])
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(ids, training=True))
    # Dense gradients: the embedding's arrives as IndexedSlices whose repeated rows must
    # add up before squaring (tf.linalg.global_norm on the slices would not).
    gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_weights)]
    expected = float(tf.linalg.global_norm(gradients))

    per_step = []
    logger = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: per_step.append(float(logs["gradient_norm"]))
    )
    model.fit(ids, labels, batch_size=8, epochs=2, verbose=0, callbacks=[logger])
    assert len(per_step) == 2
    # Reported before clipping (the clip here is far below the norm).
    np.testing.assert_allclose(per_step[0], expected, rtol=1e-4)
    assert per_step[0] > 1e-3


def test_gradient_norm_under_mixed_float16_is_unscaled():
    keras.config.set_dtype_policy("mixed_float16")
    rng = np.random.default_rng(6)
    ids = rng.integers(1, 10, (8, 6))
    model = rnn_keras.LanguageModel(
        rnn_keras.RecurrentBackbone("gru", 4, vocabulary_size=10, embedding_dim=3)
    )
    monitor = rnn_keras.GradientNormMonitor("adam")
    model.compile(
        optimizer=monitor,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[monitor.metric],
    )
    history = model.fit(ids, ids, batch_size=8, epochs=1, verbose=0)
    norm = history.history["gradient_norm"][0]
    assert np.isfinite(norm) and 1e-4 < norm < 100  # not multiplied by the loss scale (2**15)
