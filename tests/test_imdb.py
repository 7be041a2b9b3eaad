"""experiments/imdb.py end to end (--quick), and its SavedModel under bad input."""

import json
import subprocess
import sys

import helpers
import imdb
import keras
import numpy as np
import pytest
from conftest import REPO_ROOT
from helpers import run_without_rnn_keras

import rnn_keras
import rnn_keras.text
from rnn_keras.datasets import imdb as imdb_reviews
from rnn_keras.models import text_ensemble as ensembles
from rnn_keras.training import recipes

IMDB_SCRIPT = REPO_ROOT / "experiments" / "imdb.py"

# Every input the issue lists as bad, each scored in the fresh process.
SERVE_BAD_INPUTS = """
import tensorflow as tf

loaded = tf.saved_model.load(request["model"])
serve = loaded.serve
cases = {
    "empty_string": [""],
    "only_empty_strings": ["", "", ""],
    "zero_strings": [],
    "non_ascii": ["Ein großartiger Film, très émouvant. 素晴らしい映画 😀🎬👍", "Ужасно скучно"],
    "html": ["<html><body><p>Great <b>acting</b>!<br /><br />Loved it.</p>"
             "<script>alert(1)</script></body></html>"],
    "invalid_utf8": [b"\\xff\\xfe\\xfa good film \\xe2\\x82"],
}
response = {}
for name, texts in cases.items():
    out = serve(tf.constant(texts, dtype=tf.string))
    response[name] = {"shape": out.shape.as_list(), "dtype": out.dtype.name,
                      "values": out.numpy().tolist()}

normal = "An honest, warm and funny film. " * 30
huge = normal * (1_000_000 // len(normal) + 1)
response["huge"] = serve(tf.constant([huge])).numpy().tolist()
response["huge_chars"] = len(huge)
response["huge_prefix"] = serve(tf.constant([huge[:50_000]])).numpy().tolist()

try:
    serve(tf.constant([1.0, 2.0]))
    response["non_string"] = "accepted"
except (TypeError, ValueError) as error:
    response["non_string"] = f"{type(error).__name__}: {error}"
"""


def test_language_model_targets_are_the_neighbouring_tokens():
    import tensorflow as tf

    ids = tf.constant([[5, 2, 7, 3, 0, 0], [4, 0, 0, 0, 0, 0]], tf.int32)
    batches = tf.data.Dataset.from_tensors((ids, tf.zeros([2])))

    def language_model(bidirectional):
        backbone = rnn_keras.RecurrentBackbone(
            vocabulary_size=10, units=2, embedding_dim=2, bidirectional=bidirectional
        )
        return rnn_keras.LanguageModel(backbone, vocabulary_size=6)

    inputs, targets, weights = next(iter(language_model(True).examples(batches)))
    np.testing.assert_array_equal(inputs, ids)
    # id 7 is outside the 6 predicted words: it is predicted as [UNK] (id 1).
    np.testing.assert_array_equal(targets[0], [[2, 1, 3, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(targets[1], [[0, 5, 2, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(weights[0], [[1, 1, 1, 0, 0, 0], [0] * 6])
    np.testing.assert_array_equal(weights[1], [[0, 1, 1, 1, 0, 0], [0] * 6])
    forward_only, _ = next(iter(language_model(False).examples(batches)))[1:]
    np.testing.assert_array_equal(forward_only, targets[0])


@pytest.mark.parametrize("bidirectional", [True, False])
def test_pretraining_trains_the_classifiers_own_backbone(bidirectional):
    """The language model and the classifier share one backbone object, hence its weights."""
    args = imdb.parse_train_args(["--quick", "--cell", "gru"])
    args.bidirectional = bidirectional
    preprocessor = rnn_keras.TextClassifierPreprocessor(max_tokens=50, sequence_length=8)
    preprocessor.adapt([" ".join(a + b for a in "abcdefgh" for b in "abcdefgh")])
    assert preprocessor.vocabulary_size() == 50
    classifier = imdb.new_classifier(args, preprocessor)
    language_model = rnn_keras.LanguageModel(classifier.backbone, args.pretrain_vocabulary)
    assert len(language_model.outputs) == (2 if bidirectional else 1)
    ids = np.array([[3, 4, 5, 0], [7, 8, 0, 0]], "int32")
    logits = keras.tree.flatten(language_model(ids))
    assert [x.shape for x in logits] == [(2, 4, args.pretrain_vocabulary)] * len(logits)
    before = classifier.predict(ids, verbose=0)
    language_model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    targets = [np.roll(ids, -1, axis=1)] * len(logits)
    language_model.fit(ids, targets if bidirectional else targets[0], epochs=2, verbose=0)
    assert classifier.backbone is language_model.backbone
    assert not np.allclose(classifier.predict(ids, verbose=0), before)


def test_score_reviews_keeps_the_order_of_the_texts():
    # Lengths from 1 to 110 words fall in different length buckets, which the
    # pipeline batches apart; each score must still land at its text's index.
    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "film", "plot", "actor", "dull", "great", "the"])
    lengths = [110, 3, 57, 1, 95, 12, 60, 7, 101]
    texts = np.array([" ".join(rng.choice(words, n)) for n in lengths], dtype=object)
    args = imdb.parse_train_args(["--quick"])
    preprocessor = rnn_keras.TextClassifierPreprocessor(max_tokens=20, sequence_length=120)
    preprocessor.adapt(texts)
    vectorizer = preprocessor.tokenizer
    classifier = imdb.new_classifier(args, preprocessor)
    scores = rnn_keras.text.score_texts(classifier, vectorizer, texts, batch_size=2)
    expected = classifier(vectorizer(texts), training=False).numpy().reshape(-1)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert len(set(np.round(expected, 6))) > 1  # distinct scores, so a mix-up would show


# --- the library pieces experiments/imdb.py is wired from --------------------------------------

REVIEWS = np.array(
    ["a good film", "bad bad film", "good acting, good plot", "awful plot", "great", "terrible"]
    * 4,
    dtype=object,
)
REVIEW_LABELS = np.array([1, 0, 1, 0, 1, 0] * 4, "float32")


def tiny_student(name="sentiment_classifier"):
    keras.utils.set_random_seed(3)
    preprocessor = rnn_keras.TextClassifierPreprocessor(max_tokens=40, sequence_length=6)
    preprocessor.adapt(REVIEWS)
    return rnn_keras.SequenceClassifier.from_preprocessor(
        preprocessor,
        1,
        backbone_args={"cell": "gru", "units": 3, "embedding_dim": 4, "num_layers": 2},
        pooling="max",
        activation="sigmoid",
        name=name,
    )


def test_classifier_from_preprocessor_sizes_its_backbone_to_the_vocabulary():
    classifier = tiny_student()
    backbone, preprocessor = classifier.backbone, classifier.preprocessor
    assert backbone.vocabulary_size == preprocessor.vocabulary_size() == 11  # 9 words + 2
    assert (backbone.cell, backbone.units, backbone.num_layers) == ("gru", 3, 2)
    assert (classifier.pooling, classifier.activation, classifier.num_classes) == (
        "max",
        "sigmoid",
        1,
    )
    assert classifier.predict(REVIEWS[:3], verbose=0).shape == (3, 1)
    with pytest.raises(ValueError, match="no `vocabulary_size` in `backbone_args`"):
        rnn_keras.SequenceClassifier.from_preprocessor(
            preprocessor, 1, backbone_args={"units": 2, "vocabulary_size": 9}
        )
    with pytest.raises(ValueError, match="Expected: a TextClassifierPreprocessor"):
        rnn_keras.SequenceClassifier.from_preprocessor(None, 1)


def test_compile_binary_classifier_counts_a_soft_label_as_the_class_it_leans_to():
    classifier = recipes.compile_binary_classifier(
        tiny_student(), 0.01, clipnorm=0.5, weight_decay=0.1, decay_steps=10
    )
    optimizer = classifier.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.global_clipnorm == 0.5
    schedule = optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay" and schedule["config"]["decay_steps"] == 10
    assert not classifier.jit_compile
    probabilities = classifier.predict(REVIEWS, verbose=0)[:, 0]
    soft = np.where(probabilities >= 0.5, 0.7, 0.3).astype("float32")  # each leans as predicted
    logs = classifier.evaluate(REVIEWS, soft, verbose=0, return_dict=True)
    assert logs["accuracy"] == 1.0
    logs = classifier.evaluate(REVIEWS, 1 - soft, verbose=0, return_dict=True)
    assert logs["accuracy"] == 0.0
    plain = recipes.compile_binary_classifier(tiny_student(), 0.01)
    assert type(plain.optimizer) is keras.optimizers.Adam
    assert plain.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)


def test_mixture_figures_name_each_weight_of_the_mixing_curve():
    first, second = np.array([0.9, 0.2, 0.6, 0.4]), np.array([0.6, 0.7, 0.1, 0.2])
    labels = np.array([1, 0, 1, 0])
    figures = ensembles.mixture_figures(first, second, labels, {"a": 1.0, "b": 0.0, "mix": 0.3})
    assert list(figures) == ["a_accuracy", "a_loss", "b_accuracy", "b_loss"] + [
        "mix_accuracy", "mix_loss",
    ]  # fmt: skip
    assert figures["a_accuracy"] == 1.0 and figures["b_accuracy"] == 0.5
    assert figures["a_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.6, 0.6])))
    (point,) = ensembles.mixing_curve(first, second, labels, weights=[0.3])
    assert (figures["mix_accuracy"], figures["mix_loss"]) == (point["accuracy"], point["loss"])
    with pytest.raises(ValueError, match=r"each weight must be in \[0, 1\]"):
        ensembles.mixture_figures(first, second, labels, {"too_much": 1.5})


def test_ensemble_with_teacher_chooses_the_weight_on_validation_and_tests_it(tmp_path, capsys):
    student = tiny_student()
    teacher = recipes.ngram_classifier(REVIEWS, REVIEW_LABELS, max_tokens=60, ngrams=2)
    teacher.get_layer("logistic").set_weights(
        [np.random.default_rng(0).normal(size=(teacher.get_layer("nb_ratios").size, 1)), np.ones(1)]
    )
    texts, labels = REVIEWS[:12], REVIEW_LABELS[:12]
    first, second = recipes.student_and_teacher_scores(student, teacher, texts, batch_size=4)
    np.testing.assert_allclose(first, student.predict(texts, verbose=0)[:, 0], atol=1e-5)
    np.testing.assert_allclose(second, teacher.predict(texts, verbose=0)[:, 0], atol=1e-6)

    served, record = recipes.ensemble_with_teacher(
        student, teacher, (texts, labels), 4, tmp_path / "weight.png"
    )
    curve = ensembles.mixing_curve(first, second, labels)
    weight = ensembles.mixing_weight(curve)
    assert record["student_weight"] == weight and record["validation_curve"] == curve
    chosen = [p["accuracy"] for p in curve if p["weight"] == weight]
    assert [record["validation_accuracy"]] == chosen
    assert isinstance(served, rnn_keras.TextEnsemble) and served.name == "imdb"
    assert [m.name for m in served.members] == ["sentiment_classifier", "ngram_teacher"]
    np.testing.assert_allclose(served.member_weights, [weight, 1 - weight])
    assert (tmp_path / "weight.png").stat().st_size > 5_000
    assert f"ensemble: the student's weight {weight:.2f}" in capsys.readouterr().out

    test = (REVIEWS[12:], REVIEW_LABELS[12:])
    figures = recipes.ensemble_test(student, teacher, weight, test, batch_size=4)
    first, second = recipes.student_and_teacher_scores(student, teacher, test[0])
    weights = {"student": 1.0, "teacher": 0.0, "ensemble": weight}
    assert figures == ensembles.mixture_figures(first, second, test[1], weights)
    assert figures["student_accuracy"] == np.mean((first >= 0.5) == test[1])
    assert "test accuracy: student" in capsys.readouterr().out
    with pytest.raises(ValueError, match="expected at least one text"):
        recipes.ensemble_with_teacher(student, teacher, (REVIEWS[:0], REVIEW_LABELS[:0]))


def test_serve_strings_calls_a_saved_models_string_endpoint(tmp_path):
    import tensorflow as tf

    from rnn_keras.export.saved_model import serve_strings, write_saved_model

    signature = [tf.TensorSpec([None], tf.string, name="text")]
    write_saved_model(tmp_path / "lengths", {"serve": (tf.strings.length, signature)})
    np.testing.assert_array_equal(serve_strings(tmp_path / "lengths", ["abc", "", "de"]), [3, 0, 2])
    assert serve_strings(tmp_path / "lengths", []).shape == (0,)
    with pytest.raises(ValueError, match="has no endpoint 'classify'. Received signatures"):
        serve_strings(tmp_path / "lengths", ["abc"], endpoint="classify")


def test_the_imdb_scripts_share_the_validation_flags_and_the_split(monkeypatch):
    import common
    import imdb_baseline

    assert imdb.parse_train_args(["--skip-test"]).skip_test
    assert not imdb.parse_train_args([]).skip_test
    assert imdb_baseline.parse_args(["--skip-test", "--validation", "review"]).skip_test
    calls = []

    def load_split(data_dir, name, count=None):
        calls.append((data_dir, name, count))
        return REVIEWS, REVIEW_LABELS

    monkeypatch.setattr(imdb_reviews, "load_split", load_split)
    args = imdb.parse_train_args(["--data-dir", "here", "--train-examples", "24"])
    args.validation, args.val_fraction = "review", 0.25
    (train, train_labels), (validation, _), how = common.imdb_train_split(args)
    assert calls == [("here", "train", 24)] and how["by"] == "review"
    assert len(train) == len(train_labels) == 18 and len(validation) == 6
    assert not set(train) - set(REVIEWS) and len(train) + len(validation) == len(REVIEWS)


@pytest.mark.parametrize("confidence", ["0.4", "1", "-0.2"])
def test_pseudo_label_confidence_outside_half_to_one_is_rejected(confidence, capsys):
    with pytest.raises(SystemExit):
        imdb.parse_train_args(["--pseudo-label-confidence", confidence])
    assert "--pseudo-label-confidence must be 0 (off) or at least 0.5" in capsys.readouterr().err


@pytest.mark.integration
def test_quick_run_with_self_training_and_its_resume(tmp_path, tfds_data_dir):
    # A barely trained teacher scores near 0.5, so a confidence just above 0.5
    # keeps most reviews; the code path is the one the real run takes.
    flags = ("--pseudo-label-confidence", "0.5001", "--teacher", "rnn", "--pseudo-labels", "hard")
    flags += ("--distill-variants", "2")
    metrics = run_quick(tmp_path, tfds_data_dir, *flags)
    record = metrics["self_training"]
    teacher, labelling, variants = record["teacher"], record["pseudo_labels"], record["variants"]
    assert labelling["unlabelled_reviews"] == 300 and labelling["confidence"] == 0.5001
    saved = np.load(tmp_path / "pseudo_labels.npz")
    assert 0 < labelling["kept"] == len(saved["indices"]) == len(saved["labels"]) <= 300
    assert set(np.unique(saved["labels"])) <= {0.0, 1.0}
    assert np.all(np.diff(saved["indices"]) > 0) and saved["indices"][-1] < 300
    assert labelling["kept_positive_fraction"] == pytest.approx(saved["labels"].mean())
    assert len(teacher["history"]["val_accuracy"]) == 1
    assert len(metrics["history"]["val_accuracy"]) == metrics["epochs_run"] == 1
    # Two variants of each of the student's reviews (the labelled ones and the kept ones),
    # each with the teacher's probability.
    student_reviews = metrics["train_reviews"] + labelling["kept"]
    variant_labels = np.load(tmp_path / "variant_labels.npy")
    assert variants["copies"] == 2 and variants["variants"] == 2 * student_reviews
    assert variant_labels.shape == (2 * student_reviews,)
    assert np.all((variant_labels > 0) & (variant_labels < 1))
    steps = teacher["seconds"] + labelling["seconds"] + variants["seconds"]
    assert metrics["train_seconds"] >= steps
    assert (tmp_path / "teacher.weights.h5").exists()
    # Run again in the same folder: the teacher and its labels are reused, not redone.
    again = run_quick(tmp_path, tfds_data_dir, *flags)
    assert again["self_training"] == record
    assert 0.0 <= again["test_accuracy"] <= 1.0
    # Only an n-gram teacher is mixed into the served model; a recurrent one is not.
    assert again["served_model"] == "SequenceClassifier" and again["ensemble"] is None


def test_text_variants_are_masked_crops_of_at_least_half_the_words():
    texts = np.array(["one two three four five six seven eight<br /><br />nine ten", "solo"])
    words = [text.replace("<br /><br />", " ").split() for text in texts]
    variants = recipes.text_variants(texts, 50, seed=3)
    assert len(variants) == 100
    masks = 0
    for index, variant in enumerate(variants):
        source = words[index % 2]  # copy-major: the first copy of every text, then the next
        crop = variant.split()
        assert len(source) / 2 <= len(crop) <= len(source)
        starts = [
            start
            for start in range(len(source) - len(crop) + 1)
            if all(w in ("xxmask", s) for w, s in zip(crop, source[start:], strict=False))
        ]
        assert starts, f"{variant!r} is not a crop of {source}"
        masks += crop.count("xxmask")
    assert 0 < masks < 0.25 * sum(len(v.split()) for v in variants)
    again = recipes.text_variants(texts, 50, seed=3)
    assert list(again) == list(variants)
    assert list(recipes.text_variants(texts, 50, seed=4)) != list(variants)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, tfds_data_dir):
    """One --quick training run: a few hundred reviews, one epoch, export included."""
    run_dir = tmp_path_factory.mktemp("imdb_quick")
    run_quick(run_dir, tfds_data_dir)
    return run_dir


def run_quick(run_dir, tfds_data_dir, *flags):
    data = ["--data-dir", tfds_data_dir] if tfds_data_dir else []
    return helpers.run_quick(IMDB_SCRIPT, run_dir, *flags, *data)


@pytest.mark.integration
def test_quick_run_with_language_model_pretraining(tmp_path, tfds_data_dir):
    metrics = run_quick(tmp_path, tfds_data_dir, "--pretrain-epochs", "1")
    pretraining = metrics["pretraining"]
    assert pretraining["reviews"] == 300 and pretraining["epochs"] == 1
    assert pretraining["predicted_vocabulary"] == 500
    history = pretraining["history"]
    assert np.isfinite(history["val_loss"][0]) and np.isfinite(history["next_token_loss"][0])
    assert metrics["train_seconds"] >= pretraining["seconds"] > 0
    assert (tmp_path / "pretrained.weights.h5").exists()
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


@pytest.mark.integration
def test_quick_run_writes_its_run_folder(quick_run):
    config = json.loads((quick_run / "config.json").read_text())
    assert config["args"]["quick"] is True and config["args"]["epochs"] == 1
    metrics = json.loads((quick_run / "metrics.json").read_text())
    # Validation: whole movies (36 of the 355 among the first 400 training reviews).
    assert metrics["validation"] == {
        "by": "movie",
        "movies": 355,
        "validation_movies": 36,
        "unmatched_reviews": 0,
    }
    assert metrics["train_reviews"] == 355 and metrics["validation_reviews"] == 45
    assert metrics["test_reviews"] == 200
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and np.isfinite(metrics["test_loss"])
    assert len(metrics["history"]["val_accuracy"]) == metrics["epochs_run"] == 1
    assert metrics["train_seconds"] > 0 and metrics["machine"]["cpu_cores"] >= 1
    assert metrics["pretraining"] is None  # off by default
    # Self-training is on by default: the NB n-gram teacher's probabilities on all 300
    # unlabelled reviews of --quick.
    teacher, labelling = (
        metrics["self_training"]["teacher"],
        metrics["self_training"]["pseudo_labels"],
    )
    assert teacher["model"] == "nb-ngrams" and len(teacher["history"]["val_accuracy"]) == 2
    assert labelling == {**labelling, "confidence": 0.5, "labels": "soft", "kept": 300}
    saved = np.load(quick_run / "pseudo_labels.npz")
    np.testing.assert_array_equal(saved["indices"], np.arange(300))
    assert np.all((saved["labels"] > 0) & (saved["labels"] < 1))
    assert len(np.unique(saved["labels"])) > 100  # probabilities, not 0/1 labels
    assert labelling["kept_positive_fraction"] == pytest.approx((saved["labels"] >= 0.5).mean())
    assert (quick_run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for phase in ("teacher", "student"):  # self-training's two fits, each with its logs
        assert any((quick_run / f"tensorboard_{phase}").rglob("events.out.tfevents.*"))
    # The served model: the student and its teacher mixed with the weight most accurate on
    # validation (ties: the lower log loss), then the test split's one read.
    ensemble = metrics["ensemble"]
    assert metrics["served_model"] == "TextEnsemble"
    curve = ensemble["validation_curve"]
    assert [point["weight"] for point in curve] == pytest.approx(np.linspace(0, 1, 21))
    best = max(curve, key=lambda point: (point["accuracy"], -point["loss"]))
    assert ensemble["student_weight"] == best["weight"]
    assert ensemble["validation_accuracy"] == best["accuracy"]
    figures = ensemble["test"]
    assert metrics["test_accuracy"] == figures["ensemble_accuracy"]
    assert {"student_accuracy", "teacher_accuracy", "ensemble_loss"} <= set(figures)
    assert (quick_run / "ensemble_weight.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Atomic export leaves no temporary siblings behind.
    assert sorted(p.name for p in (quick_run / "export").iterdir()) == ["imdb", "imdb.keras"]


@pytest.mark.integration
def test_a_seed_makes_the_run_repeatable(quick_run, tmp_path, tfds_data_dir):
    first = json.loads((quick_run / "metrics.json").read_text())
    (tmp_path / "same").mkdir()
    again = run_quick(tmp_path / "same", tfds_data_dir)
    assert again["history"] == first["history"]  # bit for bit, every recorded float
    assert again["test_loss"] == first["test_loss"]
    (tmp_path / "other").mkdir()
    other = run_quick(tmp_path / "other", tfds_data_dir, "--seed", "7")
    assert other["history"]["loss"] != first["history"]["loss"]


@pytest.mark.integration
def test_export_serves_raw_text_without_rnn_keras(quick_run):
    texts = ["A wonderful, moving film.", "Dreadful. <br /><br />Two hours I will never get back."]
    code = """
import tensorflow as tf
loaded = tf.saved_model.load(request["model"])
out = loaded.serve(tf.constant(request["texts"]))
members = loaded.serve_members(tf.constant(request["texts"]))
response = {"dtype": out.dtype.name, "shape": out.shape.as_list(), "values": out.numpy().tolist(),
            "members": {name: value.numpy().tolist() for name, value in members.items()}}
"""
    served = run_without_rnn_keras(
        code, {"model": str(quick_run / "export" / "imdb"), "texts": texts}, cwd=quick_run
    )
    assert served["dtype"] == "float32" and served["shape"] == [2]
    # The .keras file is the same model, for load_model and further fit.
    model = keras.saving.load_model(quick_run / "export" / "imdb.keras")
    expected = model.predict(np.array(texts, dtype=object), verbose=0).reshape(-1)
    np.testing.assert_allclose(served["values"], expected, rtol=1e-5, atol=1e-6)
    # serve_members: the recurrent student and the n-gram teacher, each alone.
    assert sorted(served["members"]) == ["ngram_teacher", "sentiment_classifier"]
    student = rnn_keras.ensembles.recurrent_member(model)
    np.testing.assert_allclose(
        served["members"]["sentiment_classifier"],
        student.predict(np.array(texts, dtype=object), verbose=0).reshape(-1),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.integration
def test_keras_file_keeps_training_on_raw_strings(quick_run):
    model = keras.saving.load_model(quick_run / "export" / "imdb.keras")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    texts = np.array(["good good good", "bad bad bad"], dtype=object)
    history = model.fit(texts, np.array([[1.0], [0.0]]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.integration
def test_predict_command(quick_run):
    model = quick_run / "export" / "imdb"
    result = subprocess.run(
        [sys.executable, str(IMDB_SCRIPT), "predict", "--model", str(model), "Loved it.", ""],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith("\tLoved it.")
    assert all(0.0 <= float(line.split("\t")[0]) <= 1.0 for line in lines)

    from_stdin = subprocess.run(
        [sys.executable, str(IMDB_SCRIPT), "predict", "--model", str(model)],
        input="Great fun\nBoring\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert from_stdin.returncode == 0, from_stdin.stderr[-3000:]
    assert len(from_stdin.stdout.strip().splitlines()) == 2


def check_bad_inputs(model_dir, cwd):
    served = run_without_rnn_keras(SERVE_BAD_INPUTS, {"model": str(model_dir)}, cwd=cwd)
    expected_sizes = {
        "empty_string": 1,
        "only_empty_strings": 3,
        "zero_strings": 0,
        "non_ascii": 2,
        "html": 1,
        "invalid_utf8": 1,
    }
    for name, size in expected_sizes.items():
        case = served[name]
        assert case["shape"] == [size] and case["dtype"] == "float32", name
        assert all(0.0 <= p <= 1.0 for p in case["values"]), (name, case["values"])
    # All-empty inputs are all padding: one well-defined probability for each.
    assert len(set(served["only_empty_strings"]["values"])) == 1
    # The model reads a capped prefix of a 1,000,000-character review: same answer as
    # for its first 50,000 characters, well past the cap.
    assert served["huge_chars"] >= 1_000_000
    assert 0.0 <= served["huge"][0] <= 1.0
    np.testing.assert_allclose(served["huge"], served["huge_prefix"], rtol=1e-6)
    assert served["non_string"].startswith(("TypeError", "ValueError"))
    assert "string" in served["non_string"]


@pytest.mark.integration
def test_bad_inputs_to_exported_model(quick_run):
    check_bad_inputs(quick_run / "export" / "imdb", cwd=quick_run)


COMMITTED_MODEL = REPO_ROOT / "saved_models" / "imdb"

SCORE_REVIEWS = """
import numpy as np
import tensorflow as tf

loaded = tf.saved_model.load(request["model"])
batches = [tf.constant(request["texts"][i : i + 250]) for i in range(0, len(request["texts"]), 250)]
served = np.concatenate([loaded.serve(batch).numpy() for batch in batches])
lstm = np.concatenate(
    [loaded.serve_members(batch)["sentiment_classifier"].numpy() for batch in batches]
)
labels = np.array(request["labels"])
response = {"accuracy": float(np.mean((served > 0.5) == labels)),
            "lstm_accuracy": float(np.mean((lstm > 0.5) == labels)),
            "count": int(len(served))}
"""


@pytest.mark.integration
def test_committed_model_scores_the_first_2000_test_reviews(tfds_data_dir, tmp_path):
    texts, labels = imdb_reviews.load_split(tfds_data_dir, "test", 2000)
    served = run_without_rnn_keras(
        SCORE_REVIEWS,
        {
            "model": str(COMMITTED_MODEL),
            "texts": [text.decode("utf-8") for text in texts],
            "labels": labels.astype(int).tolist(),
        },
        cwd=tmp_path,
    )
    assert served["count"] == 2000
    # Measured for the committed model: 91.80% served, its LSTM member alone 91.05%.
    assert served["accuracy"] >= 0.915 and served["lstm_accuracy"] >= 0.905, served


@pytest.mark.integration
def test_bad_inputs_to_committed_model(tmp_path):
    check_bad_inputs(COMMITTED_MODEL, cwd=tmp_path)


@pytest.mark.integration
def test_committed_keras_file_loads_and_computes_what_the_saved_model_does(tfds_data_dir):
    """imdb.keras is the SavedModel's model, Unicode line breaks included."""
    import tensorflow as tf

    texts, _ = imdb_reviews.load_split(tfds_data_dir, "test", 64)
    texts = [*texts, "Dull\x85 and long\u2028 at that.".encode(), "Fine\u2029 film.".encode()]
    model = keras.saving.load_model(REPO_ROOT / "saved_models" / "imdb.keras")
    assert isinstance(model, rnn_keras.TextEnsemble)
    student = rnn_keras.ensembles.recurrent_member(model)
    assert isinstance(student, rnn_keras.SequenceClassifier)
    assert isinstance(student.backbone, rnn_keras.RecurrentBackbone)
    assert isinstance(student.preprocessor, rnn_keras.TextClassifierPreprocessor)
    assert getattr(model, "optimizer", None) is None  # saved without optimizer state
    served = tf.saved_model.load(str(COMMITTED_MODEL))
    np.testing.assert_allclose(
        model.predict(tf.constant(texts), verbose=0).reshape(-1),
        served.serve(tf.constant(texts)).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
