"""rnn_keras.TextEnsemble, the NBSVM features' `FeatureWeights` and the mixing-weight choice,
against NumPy; saved and exported models in fresh processes."""

import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from helpers import run_without_rnn_keras

import rnn_keras
from rnn_keras import ensembles, recipes
from rnn_keras.export import save_model
from rnn_keras.text import FeatureWeights

TEXTS = np.array(
    ["a good film", "bad bad film", "good acting, good plot", "awful plot", "great", "terrible"]
    * 4,
    dtype=object,
)
LABELS = np.array([1, 0, 1, 0, 1, 0] * 4, "float32")


def logit(p):
    p = np.clip(np.asarray(p, "float64"), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def ngram_model():
    model = recipes.ngram_classifier(TEXTS, LABELS, max_tokens=60, ngrams=3)
    model.get_layer("logistic").set_weights(
        [np.random.default_rng(0).normal(size=(model.get_layer("nb_ratios").size, 1)), np.ones(1)]
    )
    return model


def student():
    keras.utils.set_random_seed(3)
    preprocessor = rnn_keras.TextClassifierPreprocessor(max_tokens=40, sequence_length=6)
    preprocessor.adapt(TEXTS)
    backbone = rnn_keras.RecurrentBackbone(
        cell="lstm",
        units=4,
        vocabulary_size=preprocessor.vocabulary_size(),
        embedding_dim=4,
        bidirectional=True,
    )
    return rnn_keras.SequenceClassifier(
        backbone, 1, pooling="max", activation="sigmoid", preprocessor=preprocessor, name="rnn"
    )


@pytest.fixture(scope="module")
def ensemble():
    return rnn_keras.TextEnsemble([student(), ngram_model()], [0.75, 0.25], name="mix")


def test_nb_features_are_presence_times_the_log_count_ratio():
    model = ngram_model()
    vectorizer, weights = model.get_layer("ngrams"), model.get_layer("nb_ratios")
    vocabulary = vectorizer.get_vocabulary()
    present = vectorizer(tf.constant(TEXTS)).numpy()
    counts = np.ones((2, len(vocabulary)))
    for label in (0, 1):
        counts[label] += present[LABELS == label].sum(axis=0)
    ratio = np.log(counts[1] / counts[1].sum()) - np.log(counts[0] / counts[0].sum())
    np.testing.assert_allclose(weights.feature_weights.numpy(), ratio, rtol=1e-5)
    assert not weights.trainable_weights  # fixed: only the logistic regression trains
    kernel, bias = model.get_layer("logistic").get_weights()
    expected = 1 / (1 + np.exp(-((present * ratio) @ kernel[:, 0] + bias[0])))
    np.testing.assert_allclose(model.predict(tf.constant(TEXTS), verbose=0)[:, 0], expected, 1e-4)


def test_feature_weights_refuse_a_wrong_size():
    with pytest.raises(ValueError, match=r"FeatureWeights: `weights` must have shape \(3,\)"):
        FeatureWeights(3, np.ones(4))
    with pytest.raises(ValueError, match="expected inputs with 3 features"):
        FeatureWeights(3)(np.ones((2, 5), "float32"))


def test_ensemble_mixes_the_members_logits(ensemble):
    texts = ["a good film", "awful", "", "good good good plot"]
    members = ensemble.member_probabilities(texts)
    assert sorted(members) == ["ngram_baseline", "rnn"]
    np.testing.assert_allclose(
        members["rnn"], ensemble.members[0].predict(texts, verbose=0)[:, 0], rtol=1e-6
    )
    np.testing.assert_allclose(
        members["ngram_baseline"],
        ensemble.members[1].predict(tf.constant(texts), verbose=0)[:, 0],
        rtol=1e-6,
    )
    z = 0.75 * logit(members["rnn"]) + 0.25 * logit(members["ngram_baseline"])
    predicted = ensemble.predict(texts, verbose=0)
    assert predicted.shape == (4, 1)
    np.testing.assert_allclose(predicted[:, 0], 1 / (1 + np.exp(-z)), rtol=1e-5)
    # The same function as mixing_curve's, at the ensemble's weight.
    (point,) = ensembles.mixing_curve(
        members["rnn"], members["ngram_baseline"], np.array([1, 0, 0, 1]), weights=[0.75]
    )
    assert point["accuracy"] == np.mean((predicted[:, 0] >= 0.5) == [1, 0, 0, 1])


def test_ensemble_is_a_keras_model_that_evaluates_raw_text(ensemble):
    ensemble.compile(loss="binary_crossentropy", metrics=["accuracy"])
    loss, accuracy = ensemble.evaluate(TEXTS, LABELS, verbose=0)
    p = ensemble.predict(TEXTS, verbose=0)[:, 0].astype("float64")
    np.testing.assert_allclose(
        loss, -np.mean(LABELS * np.log(p) + (1 - LABELS) * np.log1p(-p)), 1e-4
    )
    assert accuracy == pytest.approx(np.mean((p > 0.5) == LABELS))


def test_ensemble_arguments_are_checked():
    rnn, ngrams = student(), ngram_model()
    with pytest.raises(ValueError, match="2 numbers >= 0, not all 0"):
        rnn_keras.TextEnsemble([rnn, ngrams], [1.0, -0.5])
    with pytest.raises(ValueError, match="2 numbers >= 0"):
        rnn_keras.TextEnsemble([rnn, ngrams], [1.0])
    with pytest.raises(ValueError, match="distinct names"):
        rnn_keras.TextEnsemble([rnn, rnn])
    with pytest.raises(ValueError, match="non-empty list of Keras models"):
        rnn_keras.TextEnsemble([])
    with pytest.raises(ValueError, match=r"strings of shape \(batch,\)"):
        rnn_keras.TextEnsemble([rnn, ngrams]).predict([["a"], ["b"]])
    mixed = rnn_keras.TextEnsemble([rnn, ngrams], [3, 1])
    assert mixed.member_weights == [0.75, 0.25]
    assert ensembles.recurrent_member(mixed) is rnn and ensembles.recurrent_member(rnn) is rnn
    with pytest.raises(ValueError, match="one SequenceClassifier member"):
        ensembles.recurrent_member(rnn_keras.TextEnsemble([ngrams]))


def test_mixing_weight_is_the_most_accurate_and_then_the_lowest_loss():
    labels = np.array([1, 1, 0, 0])
    first = np.array([0.9, 0.4, 0.2, 0.6])  # right on 2 of 4
    second = np.array([0.6, 0.8, 0.45, 0.3])  # right on 4 of 4, not confident
    curve = ensembles.mixing_curve(first, second, labels, step=0.25)
    assert [point["weight"] for point in curve] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for point in curve:
        z = point["weight"] * logit(first) + (1 - point["weight"]) * logit(second)
        assert point["accuracy"] == np.mean((z >= 0) == labels)
        expected = np.mean(np.log1p(np.exp(-np.where(labels == 1, z, -z))))
        assert point["loss"] == pytest.approx(expected)
    best = max(point["accuracy"] for point in curve)
    tied = [point for point in curve if point["accuracy"] == best]
    assert ensembles.mixing_weight(curve) == min(tied, key=lambda p: p["loss"])["weight"]
    with pytest.raises(ValueError, match="vectors of one length"):
        ensembles.mixing_curve(first, second[:3], labels)


SERVE = """
import numpy as np
import tensorflow as tf

loaded = tf.saved_model.load(request["model"])
texts = tf.constant(request["texts"])
members = loaded.serve_members(texts)
response = {
    "serve": loaded.serve(texts).numpy().tolist(),
    "members": {name: value.numpy().tolist() for name, value in members.items()},
    "empty": loaded.serve(tf.constant([], tf.string)).numpy().shape[0],
}
"""


def test_export_and_keras_file_round_trip_in_fresh_processes(ensemble, tmp_path):
    texts = ["a good film", "awful", "", "<br />great!! 🎬 фильм"]
    expected = ensemble.predict(texts, verbose=0)[:, 0]
    ensemble.export(tmp_path / "served")
    served = run_without_rnn_keras(
        SERVE, {"model": str(tmp_path / "served"), "texts": texts}, cwd=tmp_path
    )
    np.testing.assert_allclose(served["serve"], expected, rtol=1e-5)
    members = ensemble.member_probabilities(texts)
    for name, values in served["members"].items():
        np.testing.assert_allclose(values, members[name], rtol=1e-5)
    assert served["empty"] == 0

    rnn = ensemble.members[0]  # a trained member carries its optimizer: not into the file
    rnn.compile(optimizer="adam", loss="binary_crossentropy")
    rnn.optimizer.build(rnn.trainable_variables)
    save_model(ensemble, tmp_path / "mix.keras")
    assert rnn.optimizer is not None  # put back after saving
    with zipfile.ZipFile(tmp_path / "mix.keras") as archive:
        with archive.open("model.weights.h5") as weights, h5py.File(weights) as h5:
            names = []
            h5.visit(names.append)
    assert names and not [name for name in names if "optimizer" in name]
    code = (
        "import json, sys, keras, rnn_keras\n"
        f"m = keras.saving.load_model({str(tmp_path / 'mix.keras')!r})\n"
        "print(json.dumps([m.member_weights, m.predict(json.loads(sys.argv[1]), verbose=0)"
        "[:, 0].tolist()]))"
    )
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(texts)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    weights, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert weights == [0.75, 0.25]
    np.testing.assert_allclose(loaded, expected, rtol=1e-5)
