"""Round trips: get_config/from_config, .keras files, and SavedModel in a fresh process."""

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
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


def _keras_file_weights(path):
    """Bytes of the weights stored in a `.keras` file, and its top-level weight groups."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    sizes, groups = [], set()

    def visit(name, item):
        groups.add(name.split("/")[0])
        if isinstance(item, h5py.Dataset):
            sizes.append(item.size * item.dtype.itemsize)

    with h5py.File(io.BytesIO(data), "r") as weights:
        weights.visititems(visit)
    return sum(sizes), groups


def _saved_model_variables(path):
    """Bytes of a SavedModel's variables, and their checkpoint names."""
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    names = [name for name in shapes if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    return sum(int(np.prod(shapes[n])) * dtypes[n].size for n in names), names


def test_committed_exports_are_light():
    """No optimizer state in any committed export; a SavedModel's variables at most 1.3x its
    model's weights (each variable saved once); saved_models/ at most 200 MB."""
    committed = REPO_ROOT / "saved_models"
    keras_files = sorted(committed.glob("*.keras"))
    assert len(keras_files) >= 7
    for keras_file in keras_files:
        weights, groups = _keras_file_weights(keras_file)
        assert "optimizer" not in groups, f"{keras_file.name} holds optimizer state"
        saved_model = committed / keras_file.stem
        if saved_model.is_dir():
            size, names = _saved_model_variables(saved_model)
            assert not [n for n in names if "optimizer" in n.lower()], saved_model
            assert size <= 1.3 * weights, f"{saved_model.name}: {size} bytes for {weights}"
    # MB as `du -m` counts them, 2**20 bytes (the "265 MB today" was 264.7 of them).
    total = sum(p.stat().st_size for p in committed.rglob("*") if p.is_file()) / 2**20
    assert total <= 200, f"saved_models/ is {total:.1f} MB"


def test_export_writes_each_variable_once(tmp_path):
    backbone = rnn_keras.RecurrentBackbone("gru", 8, vocabulary_size=30, embedding_dim=4)
    preprocessor = rnn_keras.TextClassifierPreprocessor(max_tokens=30, sequence_length=6)
    preprocessor.adapt(["a good film", "a dull film"])
    classifier = rnn_keras.SequenceClassifier(
        backbone, num_classes=1, activation="sigmoid", preprocessor=preprocessor
    )
    classifier.compile()
    classifier.fit(["a good film", "a dull film"], [1, 0], epochs=1, verbose=0)  # Adam's state
    classifier.export(tmp_path / "served")
    size, names = _saved_model_variables(tmp_path / "served")
    weights = sum(int(np.prod(w.shape)) * 4 for w in classifier.weights)
    assert size == weights, (size, weights, names)
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(
        served.serve(tf.constant(["a good film"])).numpy(),
        classifier.predict(["a good film"], verbose=0)[:, 0],
        rtol=1e-6,
    )
