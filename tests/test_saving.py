"""Round trips: get_config/from_config, .keras files, and SavedModel in a fresh process."""

import json
import zipfile

import keras
import numpy as np
import pytest
from helpers import CELL_NAMES, randomize_weights, run_without_rnn_keras

import rnn_keras

INPUT_DIM = 5


def sequence_model(cell_name):
    """Input -> stacked RNN (one bidirectional) -> Dense on the sequence: the guide's y_t."""
    inputs = keras.Input((None, INPUT_DIM))
    cell = rnn_keras.get_cell(cell_name)
    x = keras.layers.Bidirectional(keras.layers.RNN(cell(4), return_sequences=True))(inputs)
    x = keras.layers.RNN(cell(3, dropout=0.1, recurrent_dropout=0.1), return_sequences=True)(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    randomize_weights(model, seed=0)
    return model


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_cell_config_round_trip(cell_name):
    cell_class = rnn_keras.get_cell(cell_name)
    cell = cell_class(
        7,
        activation="relu",
        use_bias=False,
        kernel_initializer="he_normal",
        recurrent_initializer="glorot_normal",
        kernel_regularizer=keras.regularizers.L2(0.01),
        recurrent_constraint=keras.constraints.MaxNorm(2.0),
        dropout=0.25,
        recurrent_dropout=0.5,
        seed=42,
        name="custom",
    )
    config = cell.get_config()
    clone = cell_class.from_config(config)
    assert type(clone) is cell_class
    assert clone.get_config() == config
    assert config["units"] == 7 and config["dropout"] == 0.25 and config["seed"] == 42
    assert config["use_bias"] is False
    # Through Keras's generic (de)serialization, as a saved file does it.
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert type(revived) is cell_class and revived.get_config() == config


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_keras_file_round_trip(cell_name, tmp_path):
    model = sequence_model(cell_name)
    x = np.random.default_rng(1).standard_normal((3, 6, INPUT_DIM)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # default safe_mode=True: no Lambda, no pickles
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_models_keras_file_round_trip(tmp_path):
    backbone = rnn_keras.RecurrentBackbone(
        cell="gru",
        units=4,
        num_layers=2,
        bidirectional=True,
        vocabulary_size=20,
        embedding_dim=6,
        dropout=0.1,
    )
    classifier = rnn_keras.SequenceClassifier(backbone, 3, pooling="max", dropout=0.1)
    char_rnn = rnn_keras.LanguageModel(
        rnn_keras.RecurrentBackbone("simple", 5, vocabulary_size=11, embedding_dim=4)
    )
    regressor = rnn_keras.SequenceRegressor(
        rnn_keras.RecurrentBackbone("lstm", 3, vocabulary_size=20, embedding_dim=2), 4, "mean"
    )
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    for model in (classifier, char_rnn, regressor):
        randomize_weights(model, seed=2)
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        restored = keras.saving.load_model(path)
        assert type(restored) is type(model)
        assert restored.get_config() == model.get_config()
        np.testing.assert_array_equal(
            restored.predict(ids, verbose=0), model.predict(ids, verbose=0)
        )


def as_legacy_config(layer_config, legacy):
    """A layer config as rnn_keras 0.3 saved it: the loop chosen by `implementation`."""
    config = {k: v for k, v in layer_config.items() if k != "use_fused"}
    return {**config, "implementation": legacy}


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_keras_file_with_legacy_implementation_loads(cell_name, tmp_path):
    """A .keras file whose layer configs hold implementation="generic"/"fused" still loads."""
    inputs = keras.Input((None, INPUT_DIM))
    layer_class = rnn_keras.get_layer(cell_name)
    x = layer_class(4, return_sequences=True, name="first")(inputs)
    x = layer_class(3, name="second")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    randomize_weights(model, seed=4)
    new_path, old_path = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new_path)
    with zipfile.ZipFile(new_path) as new, zipfile.ZipFile(old_path, "w") as old:
        for item in new.infolist():
            data = new.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                legacy = {"first": "generic", "second": "fused"}
                for layer in config["config"]["layers"]:
                    if layer["config"]["name"] in legacy:
                        layer_config = layer["config"]
                        layer["config"] = as_legacy_config(
                            layer_config, legacy.pop(layer_config["name"])
                        )
                assert not legacy
                data = json.dumps(config)
            old.writestr(item, data)
    restored = keras.saving.load_model(old_path)
    first, second = restored.get_layer("first"), restored.get_layer("second")
    assert (first.use_fused, second.use_fused) == (False, True)
    assert first.implementation == second.implementation == 2
    assert not first.uses_fast_path() and second.uses_fast_path()
    x = np.random.default_rng(5).standard_normal((3, 6, INPUT_DIM)).astype("float32")
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


SERVE_IN_FRESH_PROCESS = """
import tensorflow as tf

response = {}
for name, path in request["models"].items():
    loaded = tf.saved_model.load(path)
    for key, x in request["inputs"].items():
        response[f"{name}/{key}"] = loaded.serve(tf.constant(x, tf.float32)).numpy().tolist()
"""


def test_export_loads_without_rnn_keras_in_fresh_process(tmp_path):
    rng = np.random.default_rng(3)
    inputs = {  # another batch size and sequence length than the first
        "b3_t6": rng.standard_normal((3, 6, INPUT_DIM)).astype("float32"),
        "b5_t11": rng.standard_normal((5, 11, INPUT_DIM)).astype("float32"),
    }
    models, paths = {}, {}
    for cell_name in CELL_NAMES:
        models[cell_name] = sequence_model(cell_name)
        paths[cell_name] = str(tmp_path / cell_name)
        models[cell_name].export(paths[cell_name], verbose=False)

    request = {"models": paths, "inputs": {k: v.tolist() for k, v in inputs.items()}}
    served = run_without_rnn_keras(SERVE_IN_FRESH_PROCESS, request, cwd=tmp_path)
    for cell_name, model in models.items():
        for key, x in inputs.items():
            np.testing.assert_allclose(
                served[f"{cell_name}/{key}"], model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
            )
