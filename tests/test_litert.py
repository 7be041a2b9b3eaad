"""LiteRT export: fused LSTM ops, builtin ops only, outputs equal to Keras's, the step of a
language model, the on-device runners, clear refusals, and the committed .tflite files."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from helpers import randomize_weights, run_quick, run_without_rnn_keras

import rnn_keras
from rnn_keras import on_device
from rnn_keras.export import to_litert

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "experiments" / "litert_export.py"
FUSED = "UNIDIRECTIONAL_SEQUENCE_LSTM"


def run_litert(path, *inputs):
    """The `serve` signature of a .tflite file on `inputs` (resized to their shapes)."""
    runner = Interpreter(model_path=str(path)).get_signature_runner("serve")
    names = list(runner.get_input_details())
    outputs = runner(**dict(zip(names, inputs, strict=True)))
    return outputs["output"] if "output" in outputs else outputs


def randomized(model, seed=0):
    for layer in model.layers:
        if layer.weights:
            randomize_weights(layer, seed)
    return model


def assert_builtin_only(ops):
    assert ops and not any(op.startswith("CUSTOM") for op in ops), ops


def features(steps=13, dim=5, batch=1, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, steps, dim)).astype("float32")


LSTM_MODELS = {
    # name: (builder, fused ops expected)
    "plain": (lambda: keras.Sequential([keras.Input((None, 5)), rnn_keras.LSTM(7)]), 1),
    "go_backwards": (
        lambda: keras.Sequential(
            [keras.Input((None, 5)), rnn_keras.LSTM(7, go_backwards=True, return_sequences=True)]
        ),
        1,
    ),
    "stacked": (
        lambda: keras.Sequential(
            [
                keras.Input((None, 5)),
                rnn_keras.LSTM(7, return_sequences=True),
                rnn_keras.LSTM(6, return_sequences=True),
                rnn_keras.LSTM(4),
                keras.layers.Dense(3),
            ]
        ),
        3,
    ),
    "bidirectional": (
        lambda: keras.Sequential(
            [
                keras.Input((None, 5)),
                keras.layers.Bidirectional(rnn_keras.LSTM(7, return_sequences=True)),
                keras.layers.Bidirectional(rnn_keras.LSTM(4), merge_mode="sum"),
            ]
        ),
        4,
    ),
    "keras_lstm": (
        lambda: keras.Sequential([keras.Input((None, 5)), keras.layers.LSTM(7, use_bias=False)]),
        1,
    ),
}


@pytest.mark.parametrize("name", sorted(LSTM_MODELS))
def test_every_lstm_becomes_one_fused_op_with_keras_outputs(tmp_path, name):
    build, fused = LSTM_MODELS[name]
    model = randomized(build())
    path = to_litert(model, tmp_path / "model.tflite")
    ops = on_device.op_names(path)
    assert ops.count(FUSED) == fused, ops
    assert "WHILE" not in ops
    assert_builtin_only(ops)
    for steps in (13, 1, 40):  # the time axis stays dynamic
        x = features(steps)
        np.testing.assert_allclose(run_litert(path, x), model.predict(x, verbose=0), atol=1e-5)


def test_functional_stacked_model_inside_a_task_backbone(tmp_path):
    keras.utils.set_random_seed(0)
    backbone = rnn_keras.RecurrentBackbone("lstm", 6, num_layers=2, input_dim=5)
    task = rnn_keras.SequenceRegressor(backbone, num_outputs=2)
    randomized(backbone)
    path = to_litert(task, tmp_path / "task.tflite")
    assert on_device.op_names(path).count(FUSED) == 2
    x = features(9)
    np.testing.assert_allclose(run_litert(path, x), task.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("cell", ["GRU", "SimpleRNN"])
@pytest.mark.parametrize("unroll", [False, True, "auto"])
def test_cells_without_a_fused_op_convert_with_builtin_ops(tmp_path, cell, unroll):
    layer = getattr(rnn_keras, cell)
    model = randomized(
        keras.Sequential(
            [
                keras.Input((12, 5)),
                layer(6, return_sequences=True),
                keras.layers.Bidirectional(layer(4, go_backwards=False)),
            ]
        )
    )
    path = to_litert(model, tmp_path / "model.tflite", unroll=unroll)
    ops = on_device.op_names(path)
    assert_builtin_only(ops)
    if unroll != "auto":  # "auto": whichever runs faster here
        assert ("WHILE" in ops) == (not unroll), ops
    x = features(12)
    np.testing.assert_allclose(run_litert(path, x), model.predict(x, verbose=0), atol=1e-5)


def test_fuse_lstm_false_is_the_while_loop_with_the_same_outputs(tmp_path):
    model = randomized(LSTM_MODELS["stacked"][0]())
    path = to_litert(model, tmp_path / "loop.tflite", fuse_lstm=False)
    ops = on_device.op_names(path)
    assert "WHILE" in ops and FUSED not in ops
    x = features(10)
    np.testing.assert_allclose(run_litert(path, x), model.predict(x, verbose=0), atol=1e-5)


def masked_classifier():
    return randomized(
        keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                keras.layers.Embedding(50, 6, mask_zero=True),
                keras.layers.Bidirectional(rnn_keras.LSTM(5, return_sequences=True)),
                rnn_keras.MaskedGlobalPooling1D("max", bidirectional=True),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
    )


def test_a_masked_model_runs_one_sequence_at_its_true_length(tmp_path):
    model = masked_classifier()
    path = to_litert(model, tmp_path / "masked.tflite")
    assert on_device.op_names(path).count(FUSED) == 2
    rng = np.random.default_rng(3)
    sequences = [rng.integers(1, 50, size=n).astype("int32") for n in (11, 4, 1)]
    padded = np.zeros([3, 11], "int32")
    for row, ids in enumerate(sequences):
        padded[row, : len(ids)] = ids
    in_a_padded_batch = model.predict(padded, verbose=0)
    for row, ids in enumerate(sequences):
        got = run_litert(path, ids[None])
        np.testing.assert_allclose(got, in_a_padded_batch[row : row + 1], atol=1e-5)


@pytest.mark.parametrize("quantize", ["dynamic", "float16"])
def test_quantized_files_keep_the_fused_op_and_stay_close(tmp_path, quantize):
    model = keras.Sequential(
        [keras.Input((None, 40)), rnn_keras.LSTM(64, return_sequences=True), rnn_keras.LSTM(32)]
    )
    float_path = to_litert(model, tmp_path / "float.tflite")
    path = to_litert(model, tmp_path / "small.tflite", quantize=quantize)
    assert on_device.op_names(path).count(FUSED) == 2
    assert path.stat().st_size < 0.6 * float_path.stat().st_size
    x = features(20, 40)
    np.testing.assert_allclose(run_litert(path, x), model.predict(x, verbose=0), atol=0.03)


@pytest.fixture(scope="module")
def text_tasks():
    """A small character LanguageModel and review classifier, with adapted preprocessors."""
    keras.utils.set_random_seed(0)
    texts = ["the cat sat on the mat.", "Dogs don't like cats!", "a <b>bold</b> film, truly"]
    lm_pre = rnn_keras.LanguageModelPreprocessor()
    lm_pre.adapt(texts)
    lm_backbone = rnn_keras.RecurrentBackbone(
        "lstm", 12, num_layers=2, vocabulary_size=lm_pre.vocabulary_size(), embedding_dim=8,
        mask_zero=False,
    )  # fmt: skip
    language_model = rnn_keras.LanguageModel(lm_backbone, preprocessor=lm_pre)
    randomized(lm_backbone, seed=2)
    clf_pre = rnn_keras.TextClassifierPreprocessor(max_tokens=30, sequence_length=6)
    clf_pre.adapt(texts * 3)
    clf_backbone = rnn_keras.RecurrentBackbone(
        "lstm", 5, bidirectional=True, vocabulary_size=30, embedding_dim=4
    )
    classifier = rnn_keras.SequenceClassifier(
        clf_backbone, num_classes=1, activation="sigmoid", pooling="max", preprocessor=clf_pre
    )
    randomized(clf_backbone, seed=3)
    return language_model, classifier


def test_language_model_step_runs_generation_and_scoring_on_the_interpreter(tmp_path, text_tasks):
    import tensorflow as tf

    language_model, _ = text_tasks
    path = to_litert(language_model, tmp_path / "step.tflite", function="step")
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert metadata["state_size"] == language_model.state_size == 2 * 2 * 12
    assert "WHILE" not in on_device.op_names(path)
    generator = on_device.CharGenerator(path)
    # One step: logits and the packed state equal the model's.
    state = np.random.default_rng(0).normal(size=[1, language_model.state_size]).astype("f")
    logits, new_state = generator.step(3, state)
    want_logits, want_state = language_model.step(tf.constant([3]), tf.constant(state))
    np.testing.assert_allclose(logits, want_logits.numpy()[0], atol=1e-5)
    np.testing.assert_allclose(new_state, want_state.numpy(), atol=1e-5)
    # Scoring: tokens 2..n given those before, as the SavedModel's `score`.
    text = "the mat sat on the cat"
    ids, lengths = language_model.preprocessor.tokenize(tf.constant([text]))
    nats, scored = language_model.score_ids(ids, lengths)
    got_nats, got_scored = generator.nats(text)
    assert got_scored == int(scored[0]) == len(text) - 1
    np.testing.assert_allclose(got_nats, float(nats[0]), rtol=1e-5)
    # Greedy generation: the same text as the model's own loop.
    want = language_model.generate("the ", max_length=20, temperature=0.0)
    assert generator.generate("the ", 20 - len("the "), temperature=0.0) == want
    sampled = generator.generate("", 15, temperature=1.0, seed=5)
    assert len(sampled) == 15 and sampled == generator.generate("", 15, 1.0, seed=5)
    with pytest.raises(ValueError, match="temperature"):
        generator.generate("a", 3, temperature=-1.0)


REVIEWS = [
    "A GREAT film!<br /><br />Don't miss it...",
    "tabs\tand\nnew lines\r\nand\x85nel and\u2028separators",
    "emoji 🎬🍿 and ünïcödé WÖRDS, dogs' cats'",
    "",
    "!!!",
    "cat " * 20,
]


def test_review_classifier_tokenizes_in_pure_python_as_the_savedmodel(tmp_path, text_tasks):
    _, classifier = text_tasks
    path = to_litert(classifier, tmp_path / "review.tflite")
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert metadata["max_tokens"] == 6 and metadata["vocabulary"][:2] == ["", "[UNK]"]
    device = on_device.ReviewClassifier(path)
    batch_ids = classifier.preprocessor.token_ids(REVIEWS).numpy()
    for text, ids in zip(REVIEWS, batch_ids, strict=True):
        np.testing.assert_array_equal(device.token_ids(text), ids[ids != 0])
    want = classifier.predict(REVIEWS, verbose=0)
    got = [device.predict(text) for text in REVIEWS]
    np.testing.assert_allclose(got, want.reshape(-1), atol=1e-5)
    invalid_utf8 = b"bad \xff\xfe bytes"
    assert device.token_ids(invalid_utf8).tolist() == [
        i for i in classifier.preprocessor.token_ids([invalid_utf8]).numpy()[0] if i
    ]


def test_the_runners_need_neither_tensorflow_nor_rnn_keras(tmp_path, text_tasks):
    language_model, _ = text_tasks
    path = to_litert(language_model, tmp_path / "step.tflite", function="step")
    want = json.loads(json.dumps(on_device.CharGenerator(path).generate("the", 12, 0.0)))
    code = """
    import runpy, sys
    sys.modules["tensorflow"] = None
    sys.modules["keras"] = None
    device = runpy.run_path(request["module"])
    generator = device["CharGenerator"](request["model"])
    response = {"text": generator.generate("the", 12, 0.0),
                "ops": sorted(set(device["op_names"](request["model"])))}
    """
    payload = {"module": on_device.__file__, "model": str(path)}
    response = run_without_rnn_keras(code, payload, cwd=tmp_path, fresh=True)
    assert response["text"] == want
    assert FUSED not in response["ops"] and "FULLY_CONNECTED" in response["ops"]


def test_what_cannot_be_exported_is_refused_by_name(tmp_path):
    def x():
        return keras.Input((None, 5))

    path = tmp_path / "refused.tflite"
    relu = keras.Sequential([x(), rnn_keras.LSTM(4, activation="relu", name="relu_lstm")])
    with pytest.raises(ValueError, match="relu_lstm.*activation is not tanh.*fuse_lstm=False"):
        to_litert(relu, path)
    to_litert(relu, path, fuse_lstm=False)  # the loop computes any activation
    np.testing.assert_allclose(
        run_litert(path, features(6)), relu.predict(features(6), verbose=0), atol=1e-5
    )
    stateful = keras.Sequential(
        [keras.Input(batch_shape=(1, 3, 5)), rnn_keras.GRU(4, stateful=True, name="carried")]
    )
    with pytest.raises(ValueError, match="'carried' is stateful"):
        to_litert(stateful, path)
    inputs = keras.Input((None, 5))
    _, h, c = rnn_keras.LSTM(4, return_state=True, name="states")(inputs)
    with pytest.raises(ValueError, match="'states'.*return_state"):
        to_litert(keras.Model(inputs, h), path)
    with pytest.raises(ValueError, match="Expected: batch_size=1. Received: batch_size=2"):
        to_litert(masked_classifier(), path, batch_size=2)
    with pytest.raises(ValueError, match="unroll=True.*fixed number of time steps"):
        to_litert(keras.Sequential([x(), rnn_keras.GRU(3)]), path, unroll=True)

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="subclassed Subclassed"):
        to_litert(Subclassed(), path)
    plain = keras.Sequential([x(), rnn_keras.LSTM(2)])
    for bad, match in [
        ({"quantize": "int4"}, "quantize"),
        ({"function": "generate"}, "function"),
        ({"unroll": "yes"}, "unroll"),
        ({"batch_size": 0}, "batch_size"),
        ({"function": "step"}, "LanguageModel"),
    ]:
        with pytest.raises(ValueError, match=match):
            to_litert(plain, path, **bad)


def test_op_names_reads_the_flatbuffer(tmp_path):
    model = keras.Sequential([keras.Input((4, 3)), rnn_keras.SimpleRNN(2, unroll=False)])
    path = to_litert(model, tmp_path / "simple.tflite", unroll=False)
    ops = on_device.op_names(path)
    assert ops == on_device.op_names(path.read_bytes())
    assert "WHILE" in ops and "TANH" in ops  # the loop's body is a subgraph of its own


# --- rnn_keras.evaluation.benchmarking: what experiments/litert_export.py measures ---------


def test_median_call_seconds_warms_up_once_then_times_each_call():
    from rnn_keras.evaluation import benchmarking

    calls = []
    seconds = benchmarking.median_call_seconds(lambda: calls.append(1), repeats=4)
    assert len(calls) == 5 and 0 <= seconds < 0.1
    with pytest.raises(ValueError, match="`repeats` must be a positive integer"):
        benchmarking.median_call_seconds(lambda: None, 0)


def test_file_facts_and_serve_runner_of_a_converted_file(tmp_path):
    from rnn_keras.evaluation import benchmarking

    model = randomized(keras.Sequential([keras.Input((6, 5)), rnn_keras.LSTM(3)]))
    path = to_litert(model, tmp_path / "lstm.tflite")
    facts = benchmarking.file_facts(path)
    assert facts["kb"] == path.stat().st_size / 1024
    assert facts["ops"] == sorted(set(on_device.op_names(path))) and FUSED in facts["ops"]
    runner, name = benchmarking.serve_runner(path, num_threads=1)
    x = features(6)
    np.testing.assert_allclose(
        runner(**{name: x})["output"], model.predict(x, verbose=0), atol=1e-5
    )
    first, second = keras.Input((4,)), keras.Input((4,))
    two = keras.Model([first, second], keras.layers.Add()([first, second]))
    with pytest.raises(ValueError, match="`serve` signature with one input"):
        benchmarking.serve_runner(to_litert(two, tmp_path / "two.tflite"))


def test_binary_agreement_timed_map_and_token_agreement():
    from rnn_keras.evaluation import benchmarking

    figures = benchmarking.binary_agreement(
        [0.9, 0.4, 0.6, 0.1], [0.8, 0.6, 0.6, 0.2], [1, 0, 0, 0]
    )
    assert figures == {
        "accuracy": 0.75,  # 0.6 is wrong
        "same_label_as_savedmodel": 0.75,  # 0.4 against the reference's 0.6
        "max_abs_difference": pytest.approx(0.2),
    }
    with pytest.raises(ValueError, match="one probability, reference and label per input"):
        benchmarking.binary_agreement([0.9], [0.8, 0.1], [1])
    outputs, seconds = benchmarking.timed_map(lambda row: 2 * row, np.arange(6).reshape(3, 2))
    np.testing.assert_array_equal(outputs, [[0, 2], [4, 6], [8, 10]])
    assert seconds >= 0
    with pytest.raises(ValueError, match="at least one row"):
        benchmarking.timed_map(len, [])
    ids = [np.array([4, 2]), np.array([3])]
    assert (
        benchmarking.token_agreement(
            lambda text: [len(w) for w in text.split()], ["abcd ab", "abc"], ids
        )
        == 1.0
    )
    assert benchmarking.token_agreement(lambda text: [len(text)], ["abcd ab", "abc"], ids) == 0.5
    with pytest.raises(ValueError, match="one id sequence per text"):
        benchmarking.token_agreement(len, ["a"], ids)


def test_batches_slice_arrays_and_dicts_alike_and_in_batches_concatenates():
    from rnn_keras.evaluation import benchmarking

    texts = np.array(["a", "b", "c", "d", "e"], dtype=object)
    assert [list(b) for b in benchmarking.batches(texts, 2)] == [["a", "b"], ["c", "d"], ["e"]]
    table = {"x": np.arange(5), "y": np.arange(5) * 10}
    parts = list(benchmarking.batches(table, 3))
    assert [list(p["y"]) for p in parts] == [[0, 10, 20], [30, 40]]
    assert [list(p["x"]) for p in parts] == [[0, 1, 2], [3, 4]]
    sums = benchmarking.in_batches(lambda p: p["x"] + p["y"], table, 2)
    np.testing.assert_array_equal(sums, np.arange(5) * 11)
    tensors = benchmarking.in_batches(lambda p: keras.ops.convert_to_tensor(p["x"] * 2), table, 3)
    assert isinstance(tensors, np.ndarray) and list(tensors) == [0, 2, 4, 6, 8]
    with pytest.raises(ValueError, match="the same number of rows"):
        list(benchmarking.batches({"x": np.arange(3), "y": np.arange(4)}))
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        list(benchmarking.batches(texts, 0))


def test_unrolling_latency_times_the_loop_and_the_unrolled_file(tmp_path):
    from rnn_keras.evaluation import benchmarking

    path = tmp_path / "unroll.tflite"
    row = benchmarking.unrolling_latency("GRU", 5, 2, path, units=4, features=3, num_threads=1)
    assert list(row) == ["cell", "steps", "loop_us", "loop_kb", "unrolled_us", "unrolled_kb"]
    assert (row["cell"], row["steps"]) == ("GRU", 5)
    assert row["loop_us"] > 0 and row["unrolled_us"] > 0
    assert row["unrolled_kb"] == path.stat().st_size / 1024  # the last file written
    with pytest.raises(ValueError, match="`cell` must be 'GRU', 'SimpleRNN' or 'LSTM'"):
        benchmarking.unrolling_latency("Dense", 5, 2, path)


# --- integration: the committed files and the experiment -----------------------------------

SAVED = REPO_ROOT / "saved_models"


@pytest.mark.integration
def test_committed_tflite_files_match_their_savedmodels(tfds_data_dir):
    import tensorflow as tf

    from rnn_keras import imdb_reviews

    ops = on_device.op_names(SAVED / "imdb.tflite")
    assert ops.count(FUSED) == 2 and "WHILE" not in ops
    texts, _ = imdb_reviews.load_split(tfds_data_dir, "test", 40)
    served = tf.saved_model.load(str(SAVED / "imdb"))  # the ensemble; its recurrent member:
    want = served.serve_members(tf.constant(texts))["sentiment_classifier"].numpy()
    device = on_device.ReviewClassifier(SAVED / "imdb.tflite")
    np.testing.assert_allclose([device.predict(t) for t in texts], want, atol=1e-4)
    quantized = on_device.ReviewClassifier(SAVED / "imdb_int8.tflite")
    assert np.mean([(quantized.predict(t) >= 0.5) for t in texts] == (want >= 0.5)) >= 0.9

    generator = on_device.CharGenerator(SAVED / "char_rnn_step.tflite")
    char_model = tf.saved_model.load(str(SAVED / "char_rnn"))
    text = "ROMEO:\nWhat light through yonder window breaks?"
    score = char_model.score(tf.constant([text]))
    nats, chars = generator.nats(text)
    assert chars == int(score["chars"][0])
    np.testing.assert_allclose(nats, float(score["nats"][0]), rtol=1e-4)
    assert on_device.op_names(SAVED / "pm25.tflite")
    metrics = json.loads((REPO_ROOT / "experiments/results/litert/metrics.json").read_text())
    assert metrics["imdb"]["imdb"]["accuracy"] == metrics["imdb"]["savedmodel"]["accuracy"]


@pytest.mark.integration
def test_quick_experiment_checks_each_file_against_its_savedmodel(
    tmp_path, tfds_data_dir, pm25_csv
):
    flags = [] if tfds_data_dir is None else ["--data-dir", tfds_data_dir]
    flags += [] if pm25_csv is None else ["--pm25-csv", pm25_csv]
    metrics = run_quick(SCRIPT, tmp_path, *flags)
    imdb, char, pm25 = metrics["imdb"], metrics["char"], metrics["pm25"]
    assert imdb["imdb"]["accuracy"] == imdb["savedmodel"]["accuracy"]
    assert imdb["imdb"]["max_abs_difference"] < 1e-4
    assert FUSED in imdb["imdb"]["ops"] and "WHILE" in imdb["while_loop"]["ops"]
    assert imdb["pure_python_tokenizer_agreement"] == 1.0
    np.testing.assert_allclose(
        char["char_rnn_step"]["nats_per_char"], char["savedmodel"]["nats_per_char"], rtol=1e-5
    )
    np.testing.assert_allclose(pm25["pm25"]["mae"], pm25["savedmodel"]["mae"], rtol=1e-5)
    assert (tmp_path / "export" / "imdb.json").exists()
    assert all(row["loop_us"] > 0 and row["unrolled_us"] > 0 for row in metrics["unrolling"])


def test_the_fused_op_carries_its_state_until_reset(tmp_path):
    """LiteRT's fused LSTM streams: each invoke starts from the last one's final state."""
    model = randomized(keras.Sequential([keras.Input((None, 5)), rnn_keras.LSTM(7)]))
    path = to_litert(model, tmp_path / "model.tflite")
    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serve")
    (name,) = runner.get_input_details()
    first, second = features(6, seed=1), features(6, seed=2)
    runner(**{name: first})
    carried = runner(**{name: second})["output"]
    interpreter.reset_all_variables()
    alone = runner(**{name: second})["output"]
    np.testing.assert_allclose(alone, model.predict(second, verbose=0), atol=1e-5)
    streamed = model.predict(np.concatenate([first, second], axis=1), verbose=0)
    np.testing.assert_allclose(carried, streamed, atol=1e-5)  # the two chunks as one sequence
