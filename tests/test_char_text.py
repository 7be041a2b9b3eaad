"""experiments/char_text.py: a --quick run end to end, its SavedModel and its .keras task.
(The truncated-BPTT windows are rnn_keras.windows', tested in test_windows.py.)"""

import json
import math
import re
import subprocess
import sys

import char_text
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from helpers import run_quick, run_without_rnn_keras

import rnn_keras

CHAR_SCRIPT = REPO_ROOT / "experiments" / "char_text.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, tfds_data_dir):
    run_dir = tmp_path_factory.mktemp("char_quick")
    run_quick(CHAR_SCRIPT, run_dir, *(["--data-dir", tfds_data_dir] if tfds_data_dir else []))
    return run_dir


@pytest.mark.integration
def test_quick_run_writes_its_run_folder(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    for split in ("validation", "test"):
        figure = metrics[split]
        assert figure["chars"] > 1000 and 0 < figure["nats_per_char"] < 10
        assert math.isclose(figure["bits_per_char"], figure["nats_per_char"] / math.log(2))
    steps = len(metrics["gradient_norm_per_step"])
    assert steps == 37 and all(n > 0 for n in metrics["gradient_norm_per_step"])
    assert set(metrics["samples"]) == {"0.5", "0.8", "1.0"}
    assert all(s.startswith("ROMEO:") for s in metrics["samples"].values())
    assert (quick_run / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "temperature 0.8" in (quick_run / "samples.txt").read_text()
    assert sorted(p.name for p in (quick_run / "export").iterdir()) == [
        "char_rnn",
        "char_rnn.keras",
    ]
    assert metrics["vocabulary_size"] == len(saved_vocabulary(quick_run))


def saved_vocabulary(run_dir):
    served = tf.saved_model.load(str(run_dir / "export" / "char_rnn"))
    return [v.decode("utf-8") for v in served.vocabulary().numpy()]


def assert_task_is_the_saved_model(keras_file, saved_model, text):
    """The .keras file is a LanguageModel with its preprocessor, computing what the SavedModel
    does: the same vocabulary, the same nats on `text`, the same greedy continuation."""
    task = keras.saving.load_model(keras_file)
    assert isinstance(task, rnn_keras.LanguageModel)
    assert isinstance(task.preprocessor, rnn_keras.LanguageModelPreprocessor)
    assert task.preprocessor.split == "characters" and task.preprocessor.start_token == "\n"
    served = tf.saved_model.load(str(saved_model))
    vocabulary = [v.decode("utf-8") for v in served.vocabulary().numpy()]
    assert task.preprocessor.get_vocabulary() == vocabulary
    scored = served.score(tf.constant([text]))
    ids, lengths = task.preprocessor.tokenize([text])
    nats, chars = task.score_ids(ids, lengths)
    assert int(chars[0]) == int(scored["chars"][0]) == len(text) - 1
    np.testing.assert_allclose(float(nats[0]), float(scored["nats"][0]), rtol=1e-5)
    greedy = served.generate(tf.constant(["ROMEO:"]), tf.constant(60), tf.constant(0.0))
    assert task.generate("ROMEO:", max_length=66, temperature=0.0) == greedy.numpy()[0].decode()
    return vocabulary


@pytest.mark.integration
def test_keras_file_is_the_task_with_its_preprocessor(quick_run, tfds_data_dir):
    text = char_text.load_splits(tfds_data_dir, max_chars=6000)["validation"][:1500]
    export = quick_run / "export"
    assert_task_is_the_saved_model(export / "char_rnn.keras", export / "char_rnn", text)


SERVE = """
import numpy as np
import tensorflow as tf

m = tf.saved_model.load(request["model"])
vocabulary = m.vocabulary()
state = m.initial_state(tf.constant(3))
stepped = m.step(tf.constant([1, 2, 3], tf.int32), state)
response = {
    "vocabulary": [v.decode() for v in vocabulary.numpy()],
    "state_shape": state.shape.as_list(),
    "step_shapes": [stepped["logits"].shape.as_list(), stepped["state"].shape.as_list()],
    "step_dtypes": [stepped["logits"].dtype.name, stepped["state"].dtype.name],
}

# Greedy generate equals a loop of step with argmax (the unknown id is never generated).
prompt = "ROMEO:"
greedy = m.generate(tf.constant([prompt]), tf.constant(40), tf.constant(0.0)).numpy()[0].decode()
index = {c: i for i, c in enumerate(response["vocabulary"])}
state = m.initial_state(tf.constant(1))
for char in prompt:
    out = m.step(tf.constant([index.get(char, 0)], tf.int32), state)
    state = out["state"]
text = prompt
for _ in range(40):
    logits = out["logits"].numpy()[0]
    logits[0] = -np.inf
    next_id = int(np.argmax(logits))
    text += response["vocabulary"][next_id]
    out = m.step(tf.constant([next_id], tf.int32), out["state"])
response["greedy"], response["stepped"] = greedy, text

texts = request["texts"]
scored = m.score(tf.constant(texts))
response["score"] = {"nats": scored["nats"].numpy().tolist(),
                     "chars": scored["chars"].numpy().tolist()}

cases = {"empty": [""], "unknown_only": ["\\u00e9\\u00e9\\u2603\\u2603"],
         "batch": ["", "ROMEO:", "\\U0001F600 x"], "long": ["To be, or not to be. " * 5000]}
response["generate"] = {}
for name, prompts in cases.items():
    out = m.generate(tf.constant(prompts), tf.constant(25), tf.constant(0.8))
    response["generate"][name] = [t.decode() for t in out.numpy()]
zero = m.generate(tf.constant(["abc", ""]), tf.constant(0), tf.constant(1.0))
response["zero_chars"] = [t.decode() for t in zero.numpy()]
long_score = m.score(tf.constant(["To be, or not to be. " * 5000]))
response["long_score_chars"] = int(long_score["chars"][0])
response["long_score_finite"] = bool(np.isfinite(long_score["nats"][0]))
errors = {}
for name, (num_chars, temperature) in {"negative_chars": (-1, 1.0),
                                       "negative_temperature": (5, -0.5)}.items():
    try:
        m.generate(tf.constant(["x"]), tf.constant(num_chars), tf.constant(temperature))
        errors[name] = "accepted"
    except tf.errors.InvalidArgumentError as error:
        errors[name] = str(error)
response["errors"] = errors
"""


def own_loss_nats(keras_file, text, vocabulary):
    """Summed next-character NLL of `text` by the trained .keras model, run as one sequence."""
    trained = keras.saving.load_model(keras_file)
    backbone_config = trained.backbone.get_config()
    backbone_config.update(stateful=False, batch_size=None, dropout=0.0)
    model = rnn_keras.LanguageModel(rnn_keras.RecurrentBackbone.from_config(backbone_config))
    model.set_weights(trained.get_weights())
    index = {c: i for i, c in enumerate(vocabulary)}
    ids = np.array([[index.get(c, 0) for c in text]], dtype="int32")
    logits = model.predict(ids[:, :-1], verbose=0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    return float(loss(ids[:, 1:], logits))


@pytest.mark.integration
def test_saved_model_endpoints_without_rnn_keras(quick_run):
    texts = ["First Citizen:\nBefore we proceed any further, hear me speak.", "ab", "", "x"]
    served = run_without_rnn_keras(
        SERVE, {"model": str(quick_run / "export" / "char_rnn"), "texts": texts}, cwd=quick_run
    )
    vocabulary = served["vocabulary"]
    size = len(vocabulary)
    assert vocabulary[0] == "[UNK]" and "\n" in vocabulary and size > 30
    state_size = served["state_shape"][1]
    assert served["state_shape"] == [3, state_size] and state_size == 2 * 32  # LSTM: [h, c]
    assert served["step_shapes"] == [[3, size], [3, state_size]]
    assert served["step_dtypes"] == ["float32", "float32"]
    assert served["greedy"] == served["stepped"]

    # score equals the model's own loss on the same text.
    assert served["score"]["chars"] == [len(t) - 1 if t else 0 for t in texts]
    assert served["score"]["nats"][2:] == [0.0, 0.0]
    for text, nats in zip(texts[:2], served["score"]["nats"][:2], strict=True):
        expected = own_loss_nats(quick_run / "export" / "char_rnn.keras", text, vocabulary)
        np.testing.assert_allclose(nats, expected, rtol=1e-4)

    # Bad input: answers, not crashes.
    generated = served["generate"]
    assert len(generated["empty"][0]) == 25
    assert generated["unknown_only"][0].startswith("\u00e9\u00e9\u2603\u2603")
    assert len(generated["unknown_only"][0]) == 4 + 25
    assert [len(t) for t in generated["batch"]] == [25, 6 + 25, 3 + 25]
    assert generated["batch"][1].startswith("ROMEO:")
    assert len(generated["long"][0]) == 21 * 5000 + 25
    assert served["zero_chars"] == ["abc", ""]
    assert served["long_score_chars"] == 21 * 5000 - 1 and served["long_score_finite"]
    assert "num_chars must be >= 0" in served["errors"]["negative_chars"]
    assert "temperature must be >= 0" in served["errors"]["negative_temperature"]


@pytest.mark.integration
def test_generate_command(quick_run):
    result = subprocess.run(
        [
            sys.executable,
            str(CHAR_SCRIPT),
            "generate",
            "--model",
            str(quick_run / "export" / "char_rnn"),
            "--prompt",
            "KING:",
            "--chars",
            "30",
            "--temperature",
            "0.5",
            "--timing",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("KING:") and len(result.stdout.rstrip("\n")) >= 5
    assert re.search(r"generated 30 characters .* characters/s \(one stream\)", result.stderr)
    # A .keras file generates through LanguageModel.generate; greedy, as the SavedModel does.
    texts = {}
    for model in ("char_rnn", "char_rnn.keras"):
        command = [sys.executable, str(CHAR_SCRIPT), "generate", "--model"]
        command += [str(quick_run / "export" / model), "--prompt", "KING:", "--chars", "30"]
        result = subprocess.run(
            [*command, "--temperature", "0"], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-3000:]
        texts[model] = result.stdout
    assert texts["char_rnn"] == texts["char_rnn.keras"]
    assert texts["char_rnn"].startswith("KING:") and len(texts["char_rnn"].rstrip("\n")) >= 35
    bad = subprocess.run(
        [sys.executable, str(CHAR_SCRIPT), "generate", "--chars", "-3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "--chars and --temperature must be >= 0" in bad.stderr


COMMITTED_MODEL = REPO_ROOT / "saved_models" / "char_rnn"
MODEL_CARD = REPO_ROOT / "saved_models" / "README.md"

SCORE_TEXT = """
import tensorflow as tf

loaded = tf.saved_model.load(request["model"])
scored = loaded.score(tf.constant([request["text"]]))
response = {"nats": float(scored["nats"][0]), "chars": int(scored["chars"][0])}
"""


@pytest.mark.integration
def test_committed_model_scores_validation_as_its_model_card(tfds_data_dir, tmp_path):
    card = MODEL_CARD.read_text()
    match = re.search(r"Validation split: \*\*([0-9.]+) nats/char\*\*", card)
    assert match, "saved_models/README.md states the char_rnn validation figure"
    texts = char_text.load_splits(tfds_data_dir)
    served = run_without_rnn_keras(
        SCORE_TEXT, {"model": str(COMMITTED_MODEL), "text": texts["validation"]}, cwd=tmp_path
    )
    assert served["chars"] == len(texts["validation"]) - 1
    assert abs(served["nats"] / served["chars"] - float(match.group(1))) <= 0.01


@pytest.mark.integration
def test_committed_keras_file_loads_and_scores_as_the_saved_model(tfds_data_dir):
    """char_rnn.keras (re-saved as a task by tools/resave_models.py) is the SavedModel's model,
    with the SavedModel's vocabulary in its preprocessor."""
    text = char_text.load_splits(tfds_data_dir)["validation"][:2000]
    keras_file = REPO_ROOT / "saved_models" / "char_rnn.keras"
    vocabulary = assert_task_is_the_saved_model(keras_file, COMMITTED_MODEL, text)
    served = tf.saved_model.load(str(COMMITTED_MODEL))  # a reference: it owns the variables
    scored = served.score(tf.constant([text]))
    np.testing.assert_allclose(
        own_loss_nats(keras_file, text, vocabulary), float(scored["nats"][0]), rtol=1e-4
    )
