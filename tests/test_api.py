"""The library's API contracts: explicit fast-path control, Keras-compatible signatures,
the backbone/task split, weight sharing and gradient-norm monitoring."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CELL_NAMES

import rnn_keras

BUILTIN = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_every_builtin_argument_is_accepted_by_name(cell_name):
    ours = inspect.signature(rnn_keras.get_layer(cell_name).__init__).parameters
    theirs = inspect.signature(BUILTIN[cell_name].__init__).parameters
    assert set(theirs) <= set(ours)
    for name, parameter in theirs.items():
        if name not in ("self", "kwargs", "reset_after"):
            assert ours[name].default == parameter.default, name
    # Keras's LSTM and GRU take `implementation` through **kwargs, default 2.
    assert ours["implementation"].default == 2
    assert "Args:" in rnn_keras.get_layer(cell_name).__doc__


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_layer_keyword_arguments_go_to_the_layer(cell_name):
    layer_class = rnn_keras.get_layer(cell_name)
    with pytest.warns(UserWarning, match="input_shape"):  # Keras warns the same
        model = keras.Sequential([layer_class(4, input_shape=(5, 3), autocast=False)])
    assert model.built and model.output_shape == (None, 4)
    assert model.layers[0].autocast is False
    with pytest.raises(
        ValueError, match=f"Unrecognized keyword arguments passed to {layer_class.__name__}"
    ):
        layer_class(4, not_an_argument=1)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_keras_layer_configs_load(cell_name):
    """`from_config` reads keras.layers.SimpleRNN/LSTM/GRU configs (GRU: reset_after=False)."""
    layer_class = rnn_keras.get_layer(cell_name)
    arguments = {"reset_after": False} if cell_name == "gru" else {}
    keras_layer = BUILTIN[cell_name](
        8,
        return_sequences=True,
        go_backwards=True,
        dropout=0.25,
        seed=5,
        kernel_regularizer="l2",
        name="theirs",
        dtype="float64",
        **arguments,
    )
    config = keras_layer.get_config()
    layer = layer_class.from_config(config)
    assert type(layer) is layer_class and layer.name == "theirs"
    assert layer.dtype_policy.name == "float64" and layer.cell.dtype_policy.name == "float64"
    assert (layer.units, layer.return_sequences, layer.go_backwards) == (8, True, True)
    # keras.layers.SimpleRNN leaves `seed` out of its config.
    assert (layer.cell.dropout, layer.cell.seed) == (0.25, config.get("seed"))
    assert layer.cell.kernel_regularizer is not None
    assert layer.use_fused == "auto" and layer.implementation == 2 and layer.uses_fast_path()
    ours = layer.get_config()
    for key, value in config.items():
        if key != "reset_after":
            assert ours[key] == value, key
    assert layer_class.from_config(ours).get_config() == ours
    # Weights move across: our cells keep Keras's fused layout (GRU: see GRUCell).
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    keras_layer.build(x.shape)
    layer.build(x.shape)
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in keras_layer.get_weights()]
    if cell_name != "gru":
        layer.set_weights(keras_layer.get_weights())
        np.testing.assert_allclose(layer(x), keras_layer(x), rtol=1e-10, atol=1e-12)


def test_keras_gru_config_with_reset_after_is_refused_clearly():
    config = keras.layers.GRU(8).get_config()
    assert config["reset_after"] is True
    with pytest.raises(ValueError, match="GRU.*reset_after.*must be False.*reset_after=True"):
        rnn_keras.GRU.from_config(config)


def test_arguments_that_cannot_apply_are_refused():
    with pytest.raises(ValueError, match="reset_after.*must be False.*reset_after=True"):
        rnn_keras.GRU(4, reset_after=True)
    assert rnn_keras.GRU(4, reset_after=False).get_config()["reset_after"] is False
    with pytest.raises(ValueError, match="batch_splits.*Received: batch_splits=0"):
        rnn_keras.LSTM(4, batch_splits=0)
    with pytest.raises(ValueError, match="steps_per_iteration.*Received: steps_per_iteration=0"):
        rnn_keras.LSTM(4, steps_per_iteration=0)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_bad_values_name_the_layer_the_expected_and_the_received(cell_name):
    layer_class = rnn_keras.get_layer(cell_name)
    name = layer_class.__name__
    for value in (1, 0, "fused", None):
        with pytest.raises(ValueError, match=f"{name}: `use_fused` must be 'auto', True or False"):
            layer_class(4, use_fused=value)
    for value in (0, 3, True, 2.0, "2", None):
        with pytest.raises(
            ValueError, match=f"{name}: `implementation` must be 1 or 2.*implementation={value!r}"
        ):
            layer_class(4, implementation=value)
    # The old meaning, passed to the constructor, says what to pass now.
    for legacy, use_fused in (("auto", "'auto'"), ("fused", "True"), ("generic", "False")):
        with pytest.raises(
            ValueError, match=f"{name}: `implementation` has Keras's meaning.*use_fused={use_fused}"
        ):
            layer_class(4, implementation=legacy)
    for value in (1, "cuda", None):
        with pytest.raises(ValueError, match=f"{name}: `use_cudnn` must be 'auto', True or False"):
            layer_class(4, use_cudnn=value)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_implementation_is_keras_hint_with_no_effect(cell_name):
    """implementation=1 and 2 (and use_cudnn, CUDA-only) are stored and saved; same outputs."""
    layer_class = rnn_keras.get_layer(cell_name)
    x = np.random.default_rng(0).standard_normal((3, 6, 2)).astype("float32")
    outputs = {}
    for implementation in (1, 2):
        for use_cudnn in ("auto", True, False):
            layer = layer_class(
                4, implementation=implementation, use_cudnn=use_cudnn, return_sequences=True
            )
            layer.build(x.shape)
            layer.set_weights(
                [np.full(w.shape, 0.1, "float32") * (i + 1) for i, w in enumerate(layer.weights)]
            )
            config = layer.get_config()
            assert (config["implementation"], config["use_cudnn"]) == (implementation, use_cudnn)
            assert layer_class.from_config(config).get_config() == config
            assert layer.uses_fast_path()
            outputs[implementation, use_cudnn] = keras.ops.convert_to_numpy(layer(x))
    first = outputs[1, "auto"]
    for output in outputs.values():
        np.testing.assert_array_equal(output, first)


def test_activity_regularizer_belongs_to_the_layer():
    layer = rnn_keras.LSTM(3, activity_regularizer="l2")
    assert layer.activity_regularizer is not None
    assert layer.cell.activity_regularizer is None
    inputs = keras.Input((4, 2))
    model = keras.Model(inputs, layer(inputs))
    model(np.ones((1, 4, 2), "float32"))
    assert len(model.losses) == 1
    clone = rnn_keras.LSTM.from_config(layer.get_config())
    assert clone.activity_regularizer is not None


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fused_kernel_is_chosen_by_the_use_fused_argument(cell_name):
    layer_class = rnn_keras.get_layer(cell_name)
    assert layer_class(4).use_fused == "auto" and layer_class(4).uses_fast_path()
    assert layer_class(4, use_fused=True).uses_fast_path()
    assert not layer_class(4, use_fused=False).uses_fast_path()
    for tanh in ("tanh", keras.activations.tanh, keras.ops.tanh, tf.tanh, tf.math.tanh):
        assert layer_class(4, activation=tanh, use_fused=True).uses_fast_path()
    with pytest.raises(ValueError, match=r"\(use_fused=True\) cannot run the fused.*unroll=True"):
        layer_class(4, unroll=True, use_fused=True)
    with pytest.raises(ValueError, match="cannot run the fused kernel.*activation=tanh.*relu"):
        layer_class(4, activation="relu", use_fused=True)
    assert not layer_class(4, activation="relu").uses_fast_path()  # auto falls back
    assert not layer_class(4, unroll=True).uses_fast_path()
    assert not layer_class(4, activation="relu", use_fused=False).uses_fast_path()
    config = layer_class(4, use_fused=False, batch_splits=3).get_config()
    assert (config["use_fused"], config["implementation"], config["batch_splits"]) == (False, 2, 3)
    assert config["steps_per_iteration"] == 4
    for use_fused in ("auto", True, False):
        layer = layer_class.from_config(layer_class(4, use_fused=use_fused).get_config())
        assert layer.use_fused is use_fused or layer.use_fused == use_fused == "auto"


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_legacy_implementation_strings_load_as_use_fused(cell_name):
    """Configs saved by rnn_keras 0.3 chose the loop with `implementation`: they still load."""
    layer_class = rnn_keras.get_layer(cell_name)
    config = layer_class(4, return_sequences=True, name="old").get_config()
    del config["use_fused"]
    for legacy, use_fused in (("auto", "auto"), ("fused", True), ("generic", False)):
        layer = layer_class.from_config({**config, "implementation": legacy})
        assert layer.use_fused == use_fused and type(layer.use_fused) is type(use_fused)
        assert layer.implementation == 2
        assert layer.uses_fast_path() is (use_fused is not False)
    # As a saved file holds it: Keras's serialization, dispatched to our from_config.
    serialized = keras.saving.serialize_keras_object(layer_class(4, name="old"))
    del serialized["config"]["use_fused"]
    serialized["config"]["implementation"] = "generic"
    layer = keras.saving.deserialize_keras_object(serialized)
    assert type(layer) is layer_class and layer.use_fused is False
    assert not layer.uses_fast_path()
    assert layer.get_config()["implementation"] == 2
    with pytest.raises(ValueError, match="legacy `implementation` string or `use_fused`"):
        layer_class.from_config({**config, "implementation": "generic", "use_fused": True})


@pytest.mark.parametrize("use_fused", [False, True])
def test_own_dropout_masks_one_per_sequence_new_every_call_and_trace(use_fused):
    """rnn_keras.layers.dropout.DropoutMasks (no keras.src): identity kernel, zero recurrent
    kernel and inputs of 0.5, so every output step is tanh(mask / 2): 0 or tanh(1)."""
    units = 6
    layer = rnn_keras.SimpleRNN(
        units, use_bias=False, dropout=0.5, seed=4, use_fused=use_fused,
        return_sequences=True,
    )  # fmt: skip
    layer.build((None, None, units))
    layer.set_weights([np.eye(units, dtype="float32"), np.zeros((units, units), "float32")])
    assert layer.uses_fast_path() == use_fused
    x = np.full((8, 5, units), 0.5, "float32")
    first, second = (np.asarray(layer(x, training=True)) for _ in range(2))
    for masks in (first, second):
        assert np.all(np.isclose(masks, 0.0) | np.isclose(masks, np.tanh(1.0)))
        np.testing.assert_array_equal(masks, np.repeat(masks[:, :1], 5, axis=1))
    assert not np.array_equal(first, second)  # a new mask for a new call

    # Traced twice (two batch sizes), and a bare keras.layers.RNN over the same kind of cell:
    # a mask of an earlier trace is never reused (it would belong to another graph).
    bare = keras.layers.RNN(
        rnn_keras.SimpleRNNCell(units, use_bias=False, dropout=0.5, seed=4),
        return_sequences=True,
    )
    bare.build((None, None, units))
    bare.set_weights(layer.get_weights())
    for model in (layer, bare):
        run = tf.function(lambda inputs, model=model: model(inputs, training=True))
        for batch in (3, 5, 3):
            masks = np.asarray(run(np.full((batch, 4, units), 0.5, "float32")))
            np.testing.assert_array_equal(masks, np.repeat(masks[:, :1], 4, axis=1))


@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
def test_sigmoid_however_named_keeps_the_fused_kernel(cell_name):
    layer_class = rnn_keras.get_layer(cell_name)
    for sigmoid in ("sigmoid", keras.ops.sigmoid, tf.sigmoid, tf.nn.sigmoid):
        assert layer_class(4, recurrent_activation=sigmoid).uses_fast_path()
    with pytest.raises(ValueError, match="recurrent_activation=sigmoid.*hard_sigmoid"):
        layer_class(4, recurrent_activation="hard_sigmoid", use_fused=True)


def test_bidirectional_copies_are_set_explicitly_not_by_name():
    wrapped = rnn_keras.recurrent_layer("lstm", 4, bidirectional=True, return_sequences=True)
    wrapped.build((None, None, 3))
    assert wrapped.forward_layer.batch_splits == wrapped.backward_layer.batch_splits == 1
    # A user's layer named like Bidirectional's copies keeps its own setting.
    assert rnn_keras.LSTM(4, name="forward_user").batch_splits == "auto"
    assert rnn_keras.LSTM(4, name="forward_user").resolved_batch_splits() == 2
    # A user-supplied backward layer keeps what the user gave it.
    user = keras.layers.Bidirectional(
        rnn_keras.GRU(4, return_sequences=True, batch_splits=1),
        backward_layer=rnn_keras.GRU(4, return_sequences=True, go_backwards=True, batch_splits=3),
    )
    assert (user.forward_layer.batch_splits, user.backward_layer.batch_splits) == (1, 3)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_sharing_weights_reads_the_same_variables(cell_name):
    layer = rnn_keras.get_layer(cell_name)(5, return_sequences=True, stateful=True)
    layer.build((2, None, 3))
    copy = layer.sharing_weights(stateful=False, return_state=True)
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype("float32")
    outputs, *states = copy(x)
    assert copy.cell is layer.cell and len(copy.weights) == len(layer.weights)
    reference = keras.layers.RNN(layer.cell, return_sequences=True)(x)
    np.testing.assert_allclose(outputs, reference, rtol=1e-5, atol=1e-6)
    assert len(states) == layer.cell.num_states
    with pytest.raises(ValueError, match="cell is shared.*'units'"):
        layer.sharing_weights(units=3)


def test_backbone_holds_its_layers_and_tasks_share_it():
    backbone = rnn_keras.RecurrentBackbone(
        "gru", 6, num_layers=2, bidirectional=True, vocabulary_size=30, embedding_dim=4
    )
    assert backbone.output_dim == 12 and len(backbone.recurrent_layers) == 2
    assert isinstance(backbone.token_embedding, keras.layers.Embedding)
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]], "int32")
    assert tuple(backbone(ids).shape) == (2, 5, 12)
    classifier = rnn_keras.SequenceClassifier(backbone, 3, pooling="mean")
    regressor = rnn_keras.SequenceRegressor(backbone, 24, pooling="max")
    assert classifier.backbone is regressor.backbone is backbone
    assert tuple(regressor(ids).shape) == (2, 24)
    clone = rnn_keras.SequenceClassifier.from_config(classifier.get_config())
    assert clone.get_config() == classifier.get_config()
    assert clone.backbone is not backbone


def test_last_pooling_is_the_final_state_of_each_direction():
    backbone = rnn_keras.RecurrentBackbone("lstm", 3, bidirectional=True, vocabulary_size=9)
    pooled = rnn_keras.SequenceClassifier(backbone, pooling="last").pooling_layer
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]], "int32")
    layer = backbone.recurrent_layers[0]
    embedded = backbone.token_embedding(ids)
    mask = ids > 0
    sequence = layer(embedded, mask=mask)
    final = np.concatenate(
        [
            direction.sharing_weights(return_sequences=False, zero_output_for_mask=False)(
                embedded, mask=mask
            )
            for direction in (layer.forward_layer, layer.backward_layer)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(pooled(sequence, mask=mask), final, rtol=1e-5, atol=1e-6)


def test_language_model_step_score_and_generate_agree():
    backbone = rnn_keras.RecurrentBackbone("lstm", 6, num_layers=2, vocabulary_size=12)
    model = rnn_keras.LanguageModel(backbone)
    ids = tf.constant([[3, 4, 5, 6, 2], [7, 8, 0, 0, 0]], tf.int32)
    lengths = tf.constant([5, 2], tf.int32)
    nats, scored = model.score_ids(ids, lengths)
    np.testing.assert_array_equal(scored, [4, 1])
    # score == the model's own per-token loss over the real tokens
    logits = model(ids[:, :-1])
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(ids[:, 1:], logits)
    real = tf.sequence_mask(lengths - 1, 4)
    np.testing.assert_allclose(nats, tf.reduce_sum(tf.where(real, nll, 0.0), 1), rtol=1e-5)
    # greedy generate == a loop of step from the state after the prompt
    generated = model.generate_ids(ids[:1], lengths[:1], tf.constant(6), tf.constant(0.0), 1)
    state = model.initial_state(1)
    for token in [3, 4, 5, 6]:
        _, state = model.step(tf.constant([token]), state)
    current, expected = tf.constant([2]), []
    for _ in range(6):
        logits, state = model.step(current, state)
        logits += tf.one_hot(0, 12, on_value=-1e9)
        current = tf.argmax(logits, -1, output_type=tf.int32)
        expected.append(int(current[0]))
    np.testing.assert_array_equal(generated[0], expected)
    assert model.state_size == 2 * 2 * 6


def test_gradient_norm_monitor_is_a_wrapper_any_model_can_opt_into(tmp_path):
    inputs = keras.Input((None, 3))
    outputs = keras.layers.Dense(1)(rnn_keras.SimpleRNN(4)(inputs))
    model = keras.Model(inputs, outputs)  # a plain functional model
    monitor = rnn_keras.GradientNormMonitor(keras.optimizers.SGD(0.1, global_clipnorm=1e-6))
    model.compile(optimizer=monitor, loss="mse", metrics=[monitor.metric])
    x = np.random.default_rng(1).standard_normal((8, 5, 3)).astype("float32")
    y = np.ones((8, 1), "float32")
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, model(x))
        loss = tf.reduce_mean(loss)
    expected = float(tf.linalg.global_norm(tape.gradient(loss, model.trainable_weights)))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["gradient_norm"][0], expected, rtol=1e-4)
    assert monitor.iterations.numpy() == 1 and monitor.learning_rate.numpy() == pytest.approx(0.1)
    assert "GradientNormMonitor" in str(type(monitor))
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored.optimizer, rnn_keras.GradientNormMonitor)
    assert isinstance(restored.optimizer.inner_optimizer, keras.optimizers.SGD)


MIRRORED_NORM = """
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import rnn_keras


def model_and_monitor():
    keras.utils.set_random_seed(0)
    backbone = rnn_keras.RecurrentBackbone(
        "lstm", 4, bidirectional=True, vocabulary_size=12, embedding_dim=3
    )
    model = rnn_keras.SequenceClassifier(backbone, 1, pooling="max", activation="sigmoid")
    monitor = rnn_keras.GradientNormMonitor(keras.optimizers.SGD(0.1))
    model.compile(optimizer=monitor, loss="binary_crossentropy", metrics=[monitor.metric])
    return model


rng = np.random.default_rng(3)
ids = rng.integers(1, 12, (16, 7))
ids[:8, 5:] = 0
labels = rng.integers(0, 2, (16, 1)).astype("float32")
norms = {}
for name, strategy in (
    ("one", tf.distribute.get_strategy()),
    ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
):
    with strategy.scope():
        model = model_and_monitor()
    history = model.fit(ids, labels, batch_size=16, epochs=2, shuffle=False, verbose=0)
    norms[name] = history.history["gradient_norm"]
    norms[name + "_replicas"] = strategy.num_replicas_in_sync
response = norms
"""


@pytest.mark.integration
def test_gradient_norm_under_mirrored_strategy_is_the_whole_batchs(tmp_path):
    """Two replicas each see half the batch; the monitor reports the full batch's norm."""
    import json
    import subprocess
    import sys

    program = "import json, sys\nrequest = {}\n" + MIRRORED_NORM + "\nprint(json.dumps(response))"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    norms = json.loads(result.stdout.strip().splitlines()[-1])
    assert norms["one_replicas"] == 1 and norms["mirrored_replicas"] == 2
    np.testing.assert_allclose(norms["mirrored"], norms["one"], rtol=1e-5)
    assert norms["one"][0] > 0


def test_bucketed_batches_have_a_known_cardinality():
    import rnn_keras.text

    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "film", "plot", "the"])
    texts = np.array([" ".join(rng.choice(words, n)) for n in rng.integers(1, 160, 70)], object)
    vectorizer = keras.layers.TextVectorization(max_tokens=10, output_sequence_length=150)
    vectorizer.adapt(texts)
    labels = np.zeros(len(texts), "float32")
    batches = rnn_keras.text.length_bucketed_batches(vectorizer, texts, labels, 8, shuffle_seed=1)
    counted = sum(1 for _ in batches)
    assert int(batches.cardinality()) == counted > len(texts) // 8
    assert sum(int(ids.shape[0]) for ids, _ in batches) == len(texts)


def test_impute_missing_fills_and_flags_non_finite_readings(tmp_path):
    x = np.array([[[1.0, np.nan], [np.inf, 2.0], [3.0, 4.0]]], "float32")
    out = np.asarray(rnn_keras.ImputeMissing(fill_value=-1.0)(x))
    np.testing.assert_array_equal(out[0, :, :2], [[1, -1], [-1, 2], [3, 4]])
    np.testing.assert_array_equal(out[0, :, 2:], [[0, 1], [1, 0], [0, 0]])
    inputs = keras.Input((None, 2))
    model = keras.Model(inputs, rnn_keras.ImputeMissing()(inputs))
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "m.keras")(x), model(x))


def test_cyclical_encoding_puts_the_end_of_a_cycle_next_to_its_start():
    hours = np.array([[0, 6, 23]], "int32")
    encoded = np.asarray(rnn_keras.CyclicalEncoding(24)(hours))
    assert encoded.shape == (1, 3, 2)
    np.testing.assert_allclose(encoded[0, 0], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(encoded[0, 1], [1.0, 0.0], atol=1e-6)
    assert np.linalg.norm(encoded[0, 2] - encoded[0, 0]) < 0.27  # 23h is one step from 0h
    months = np.asarray(rnn_keras.CyclicalEncoding(12, offset=1)(np.array([1], "int32")))
    np.testing.assert_allclose(months[0], [0.0, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="period.*Received: period=0"):
        rnn_keras.CyclicalEncoding(0)


def test_a_vocabulary_from_text_with_unicode_line_breaks_saves_and_loads(tmp_path):
    """NEL (IMDB's mis-decoded "...") once ended up inside tokens; .keras could not store them."""
    texts = np.array(["It\x85 was good", "the movie\u2028was well\u2029made", "it\x85"], object)
    vectorizer = keras.layers.TextVectorization(standardize=rnn_keras.ReviewStandardizer())
    vectorizer.adapt(texts)
    vocabulary = vectorizer.get_vocabulary()
    assert not any(ch in token for token in vocabulary for ch in "\x85\u2028\u2029")
    assert {"it", "movie", "was", "well", "made"} <= set(vocabulary)
    text = keras.Input((), dtype="string")
    model = keras.Model(text, vectorizer(text))
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert restored.layers[1].get_vocabulary() == vocabulary


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooled_tasks_serve_an_empty_batch_in_a_graph(pooling, bidirectional):
    backbone = rnn_keras.RecurrentBackbone("gru", 3, bidirectional=bidirectional, input_dim=2)
    regressor = rnn_keras.SequenceRegressor(backbone, 4, pooling=pooling)
    serve = tf.function(
        lambda x: regressor(x, training=False),
        input_signature=[tf.TensorSpec([None, 5, 2], tf.float32)],
    )
    assert tuple(serve(tf.zeros([0, 5, 2])).shape) == (0, 4)
    x = np.random.default_rng(0).standard_normal((3, 5, 2)).astype("float32")
    np.testing.assert_allclose(serve(x), regressor(x), rtol=1e-5, atol=1e-6)


def test_rounded_binary_accuracy_counts_a_soft_target_as_the_class_it_leans_to():
    y_true = np.array([[0.8], [0.3], [1.0], [0.0]], "float32")
    y_pred = np.array([[0.9], [0.6], [0.4], [0.1]], "float32")
    got = keras.ops.convert_to_numpy(rnn_keras.rounded_binary_accuracy(y_true, y_pred))
    np.testing.assert_array_equal(got.reshape(-1), [1.0, 0.0, 0.0, 1.0])
    name = keras.saving.serialize_keras_object(rnn_keras.rounded_binary_accuracy)
    assert keras.saving.deserialize_keras_object(name) is rnn_keras.rounded_binary_accuracy
