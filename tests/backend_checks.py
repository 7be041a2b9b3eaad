"""Checks that hold on every Keras backend; `tests/test_backends.py` runs them under JAX.

Not collected by the main test run under that name: it runs this file in a
fresh process with `KERAS_BACKEND=jax` (the backend is fixed at import), and
the same checks run on TensorFlow there too. The SavedModel exports and the
fused kernel are TensorFlow-only; here the layers take the generic loop.
"""

import keras
import numpy as np
import pytest
import reference

import rnn_keras

CELLS = ("simple", "lstm", "gru")
REFERENCE = {"simple": reference.simple_rnn, "lstm": reference.lstm, "gru": reference.gru}


def test_the_backend_is_the_one_asked_for():
    import os

    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


@pytest.mark.parametrize("cell_name", CELLS)
def test_layer_matches_the_numpy_reference(cell_name):
    layer = rnn_keras.get_layer(cell_name)(5, return_sequences=True)
    layer.build((None, None, 3))
    rng = np.random.default_rng(0)
    layer.set_weights([0.5 * rng.standard_normal(w.shape) for w in layer.get_weights()])
    x = rng.standard_normal((2, 7, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(layer(x))
    kernel, recurrent_kernel, bias = layer.get_weights()
    for row in range(2):
        want = REFERENCE[cell_name](x[row], kernel, recurrent_kernel, bias)
        want = want[0] if isinstance(want, tuple) else want  # the LSTM's (h, c)
        np.testing.assert_allclose(got[row], want, rtol=1e-5, atol=1e-5)
    if keras.backend.backend() != "tensorflow":
        assert not layer.uses_fast_path()
        assert "TensorFlow-only" in rnn_keras.fused_unavailable_reason(layer)
        with pytest.raises(ValueError, match="cannot run the fused kernel.*TensorFlow-only"):
            rnn_keras.get_layer(cell_name)(5, use_fused=True)


@pytest.mark.parametrize("cell_name", CELLS)
def test_masked_bidirectional_model_trains_saves_and_reloads(cell_name, tmp_path):
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 20, (32, 9))
    ids[:, 6:] = 0  # padding, masked by the backbone's embedding
    labels = rng.integers(0, 2, (32, 1)).astype("float32")
    backbone = rnn_keras.RecurrentBackbone(
        cell_name,
        6,
        num_layers=2,
        bidirectional=True,
        vocabulary_size=20,
        embedding_dim=4,
        dropout=0.1,
        recurrent_dropout=0.1,
    )
    model = rnn_keras.SequenceClassifier(backbone, 1, pooling="max", activation="sigmoid")
    model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=1.0), "binary_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(ids, labels, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    # Padding does not change the result: the same rows without their padded tail.
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), model.predict(ids[:, :6], verbose=0), rtol=1e-5, atol=1e-6
    )
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        restored.predict(ids, verbose=0), model.predict(ids, verbose=0), rtol=1e-6, atol=1e-7
    )


def test_stateful_language_model_carries_its_state():
    arguments = {"cell": "gru", "units": 4, "vocabulary_size": 9, "embedding_dim": 3}
    whole = rnn_keras.LanguageModel(rnn_keras.RecurrentBackbone(mask_zero=False, **arguments))
    stateful = rnn_keras.LanguageModel(
        rnn_keras.RecurrentBackbone(mask_zero=False, stateful=True, batch_size=2, **arguments)
    )
    stateful.set_weights(whole.get_weights())
    ids = np.random.default_rng(2).integers(0, 9, (2, 8)).astype("int32")
    windows = [keras.ops.convert_to_numpy(stateful(ids[:, i : i + 4])) for i in (0, 4)]
    np.testing.assert_allclose(
        np.concatenate(windows, axis=1),
        keras.ops.convert_to_numpy(whole(ids)),
        rtol=1e-5,
        atol=1e-6,
    )
