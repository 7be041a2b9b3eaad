"""Tasks that own their preprocessing: raw inputs in fit/evaluate/predict, strings in and out,
`.keras` round trips with the preprocessor, `task.export` served without rnn_keras."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from helpers import run_without_rnn_keras

import rnn_keras

REVIEWS = [
    "A moving, beautifully acted film.",
    "Dull, predictable and far too long.",
    "I loved every minute of it, a joy!",
    "Terrible script; I left early.",
]
LABELS = [1, 0, 1, 0]
TEXT = "ROMEO: But soft, what light through yonder window breaks?\nJULIET: Ay me!\n" * 6


def text_classifier(num_classes=2, activation=None, sequence_length=16, seed=1):
    keras.utils.set_random_seed(seed)
    preprocessor = rnn_keras.TextClassifierPreprocessor(
        max_tokens=200, sequence_length=sequence_length
    )
    preprocessor.adapt(REVIEWS)
    backbone = rnn_keras.RecurrentBackbone(
        "lstm",
        8,
        bidirectional=True,
        vocabulary_size=preprocessor.vocabulary_size(),
        embedding_dim=8,
    )
    return rnn_keras.SequenceClassifier(
        backbone, num_classes, "max", activation=activation, preprocessor=preprocessor
    )


def char_model(split="characters", cell="gru", seed=2):
    keras.utils.set_random_seed(seed)
    preprocessor = rnn_keras.LanguageModelPreprocessor(split=split)
    preprocessor.adapt([TEXT])
    backbone = rnn_keras.RecurrentBackbone(
        cell, 16, vocabulary_size=preprocessor.vocabulary_size(), embedding_dim=8, mask_zero=False
    )
    return rnn_keras.LanguageModel(backbone, preprocessor=preprocessor)


# -- text classifier -------------------------------------------------------------------------


def test_text_preprocessor_ids_are_cut_to_the_longest_text_of_the_batch():
    preprocessor = rnn_keras.TextClassifierPreprocessor(max_tokens=50, sequence_length=6)
    preprocessor.adapt(["one two three four five six seven", "two three"])
    ids = preprocessor(tf.constant(["two three", "one", "unseen"]))
    assert ids.dtype == tf.int32 and ids.shape == (3, 2)
    assert ids.numpy()[2, 0] == 1 and ids.numpy()[2, 1] == 0  # out-of-vocabulary, padding
    assert preprocessor(tf.constant(["one two three four five six seven"])).shape == (1, 6)
    assert preprocessor(tf.constant(["", "<br />"])).shape == (2, 1)  # at least one step
    x, y = preprocessor(tf.constant(["one"]), tf.constant([1]))
    assert x.shape == (1, 1) and y.numpy().tolist() == [1]
    with pytest.raises(ValueError, match="batch of strings of shape \\(batch,\\)"):
        preprocessor(tf.constant([["one"]]))


def test_classifier_predicts_raw_text_independently_of_the_batch():
    classifier = text_classifier()
    together = classifier.predict(REVIEWS, verbose=0)
    alone = np.concatenate([classifier.predict([text], verbose=0) for text in REVIEWS])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    ids = classifier.preprocessor(tf.constant(REVIEWS))
    np.testing.assert_allclose(classifier.predict(ids, verbose=0), together, rtol=1e-5, atol=1e-6)
    assert together.shape == (4, 2)


def test_classifier_fits_and_evaluates_raw_text_lists_and_datasets():
    classifier = text_classifier()
    classifier.compile()  # "auto": Adam, sparse categorical cross-entropy on logits, accuracy
    assert isinstance(classifier.loss, keras.losses.SparseCategoricalCrossentropy)
    history = classifier.fit(
        REVIEWS * 8,
        LABELS * 8,
        batch_size=8,
        epochs=6,
        validation_data=(REVIEWS, LABELS),
        verbose=0,
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "val_accuracy" in history.history
    dataset = tf.data.Dataset.from_tensor_slices((REVIEWS, LABELS)).batch(2)
    loss, accuracy = classifier.evaluate(dataset, verbose=0)
    assert (loss, accuracy) == pytest.approx(classifier.evaluate(REVIEWS, LABELS, verbose=0))
    assert accuracy == 1.0  # four reviews, learnt
    classifier.fit(dataset, epochs=1, verbose=0)  # a tf.data of (text, label) batches


def test_binary_classifier_compiles_with_a_probability_loss_and_threshold():
    classifier = text_classifier(num_classes=1, activation="sigmoid")
    classifier.compile()
    assert isinstance(classifier.loss, keras.losses.BinaryCrossentropy)
    assert not classifier.loss.from_logits
    classifier.fit(REVIEWS, np.array(LABELS, "float32"), epochs=1, verbose=0)


def test_classifier_round_trips_with_its_preprocessor(tmp_path):
    classifier = text_classifier(num_classes=3, activation="softmax")
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.preprocessor.get_vocabulary() == classifier.preprocessor.get_vocabulary()
    np.testing.assert_allclose(
        loaded.predict(REVIEWS, verbose=0), classifier.predict(REVIEWS, verbose=0), rtol=1e-6
    )


@pytest.mark.parametrize("num_classes,activation", [(3, "softmax"), (1, "sigmoid")])
def test_classifier_export_serves_raw_text_without_rnn_keras(tmp_path, num_classes, activation):
    classifier = text_classifier(num_classes, activation)
    classifier.export(tmp_path / "served")
    expected = classifier.predict(REVIEWS, verbose=0)
    response = run_without_rnn_keras(
        """
        import tensorflow as tf
        served = tf.saved_model.load(request["path"])
        out = served.serve(tf.constant(request["texts"]))
        empty = served.serve(tf.constant([], tf.string))
        odd = served.serve(tf.constant(["", "\\U0001F600" * 5000, "<b>bold</b>"]))
        response = {"out": out.numpy().tolist(), "empty": empty.shape.as_list(),
                    "odd": odd.shape.as_list(), "dtype": out.dtype.name}
        """,
        {"path": str(tmp_path / "served"), "texts": REVIEWS},
        cwd=tmp_path,
    )
    out = np.array(response["out"])
    if num_classes == 1:  # one probability per text: [batch]
        assert out.shape == (4,) and response["empty"] == [0] and response["odd"] == [3]
        np.testing.assert_allclose(out, expected[:, 0], rtol=1e-5)
    else:  # several classes: [batch, classes]
        assert out.shape == (4, 3) and response["empty"] == [0, 3] and response["odd"] == [3, 3]
        np.testing.assert_allclose(out, expected, rtol=1e-5)
    assert response["dtype"] == "float32"


def test_task_without_preprocessor_refuses_strings_and_exports_as_keras_does(tmp_path):
    backbone = rnn_keras.RecurrentBackbone("gru", 4, vocabulary_size=20)
    classifier = rnn_keras.SequenceClassifier(backbone, 2)
    assert classifier.preprocessor is None
    assert classifier.get_config()["preprocessor"] is None
    with pytest.raises(ValueError, match="preprocessor"):
        rnn_keras.SequenceClassifier(backbone, 2, preprocessor="text")
    classifier.export(tmp_path / "ids")  # keras.Model.export: token ids in
    served = tf.saved_model.load(str(tmp_path / "ids"))
    ids = np.array([[3, 4, 0]], "int32")
    np.testing.assert_allclose(served.serve(ids), classifier.predict(ids, verbose=0), rtol=1e-5)


# -- language model --------------------------------------------------------------------------


def test_language_model_preprocessor_tokenizes_with_a_start_token():
    preprocessor = rnn_keras.LanguageModelPreprocessor(split="characters")
    preprocessor.adapt(["abca"])
    assert preprocessor.get_vocabulary() == ["[UNK]", "\n", "a", "b", "c"]
    inputs, targets, weights = preprocessor(tf.constant(["abc", "ax"]))
    np.testing.assert_array_equal(inputs, [[1, 2, 3], [1, 2, 0]])
    np.testing.assert_array_equal(targets, [[2, 3, 4], [2, 0, 0]])
    np.testing.assert_array_equal(weights, [[1, 1, 1], [1, 1, 0]])
    assert preprocessor.detokenize(tf.constant([[2, 3, 4]])).numpy().tolist() == [b"abc"]
    words = rnn_keras.LanguageModelPreprocessor(split="words", start_token="<s>")
    words.adapt(["to be or not to be"])
    ids, lengths = words.tokenize(tf.constant(["to be  or", ""]))
    assert lengths.numpy().tolist() == [3, 0]
    assert words.detokenize(ids[:1]).numpy()[0] == b"to be or"
    with pytest.raises(ValueError, match="split"):
        rnn_keras.LanguageModelPreprocessor(split="bytes")
    with pytest.raises(ValueError, match="no vocabulary yet"):
        rnn_keras.LanguageModelPreprocessor().tokenize(tf.constant(["a"]))


def test_generate_takes_and_returns_strings_starting_with_the_prompt():
    model = char_model()
    text = model.generate("ROMEO:", max_length=30, temperature=0.8, seed=3)
    assert isinstance(text, str) and text.startswith("ROMEO:") and len(text) == 30
    assert text == model.generate("ROMEO:", max_length=30, temperature=0.8, seed=3)
    several = model.generate(["RO", "", "JULIET: Ay"], max_length=12, temperature=0.0)
    assert isinstance(several, list) and len(several) == 3
    assert [len(t) for t in several] == [12, 12, 12]
    assert several[0].startswith("RO") and several[2].startswith("JULIET: Ay")
    assert model.generate("a long prompt", max_length=4) == "a long prompt"
    assert model.generate([], max_length=4) == []
    with pytest.raises(ValueError, match="max_length"):
        model.generate("RO", max_length=-1)
    with pytest.raises(ValueError, match="temperature"):
        model.generate("RO", temperature=-0.5)


def test_greedy_generate_continues_the_prompt_as_a_loop_of_step():
    model = char_model(cell="lstm")
    preprocessor = model.preprocessor
    vocabulary = preprocessor.get_vocabulary()
    prompt = "ROMEO"
    text = model.generate(prompt, max_length=len(prompt) + 8, temperature=0.0)
    ids = [vocabulary.index(char) for char in prompt]
    state = model.initial_state(1)
    for token in ids[:-1]:
        _, state = model.step(tf.constant([token]), state)
    current, expected = tf.constant([ids[-1]]), []
    for _ in range(8):
        logits, state = model.step(current, state)
        logits += tf.one_hot(0, len(vocabulary), on_value=-1e9)
        current = tf.argmax(logits, -1, output_type=tf.int32)
        expected.append(vocabulary[int(current[0])])
    assert text == prompt + "".join(expected)


def test_score_is_nats_per_token_after_the_start_token():
    model = char_model()
    texts = ["ROMEO: soft", "Ay"]
    inputs, targets, weights = model.preprocessor(tf.constant(texts))
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, model(inputs))
    expected = tf.reduce_sum(nll * weights, axis=1) / tf.reduce_sum(weights, axis=1)
    np.testing.assert_allclose(model.score(texts), expected, rtol=1e-5)
    assert model.score("Ay") == pytest.approx(float(expected[1]), rel=1e-5)
    assert np.isnan(model.score([""])[0])


def test_language_model_fits_raw_text_and_round_trips_its_vocabulary(tmp_path):
    model = char_model(split="words")
    model.compile()
    lines = TEXT.splitlines()
    history = model.fit(lines, batch_size=4, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "lm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.preprocessor.get_vocabulary() == model.preprocessor.get_vocabulary()
    assert loaded.preprocessor.split == "words"
    greedy = model.generate("ROMEO:", max_length=6, temperature=0.0)
    assert loaded.generate("ROMEO:", max_length=6, temperature=0.0) == greedy
    assert greedy.startswith("ROMEO: ") and len(greedy.split()) == 6
    np.testing.assert_allclose(loaded.score(lines[:2]), model.score(lines[:2]), rtol=1e-6)


def test_language_model_without_preprocessor_says_what_is_missing():
    backbone = rnn_keras.RecurrentBackbone("gru", 4, vocabulary_size=10)
    with pytest.raises(ValueError, match="generate_ids"):
        rnn_keras.LanguageModel(backbone).generate("x")


def test_character_vocabulary_with_a_newline_survives_saving(tmp_path):
    model = char_model()
    assert "\n" in model.preprocessor.get_vocabulary()
    model.save(tmp_path / "chars.keras")
    loaded = keras.saving.load_model(tmp_path / "chars.keras")
    assert loaded.preprocessor.get_vocabulary() == model.preprocessor.get_vocabulary()


def test_language_model_export_serves_strings_without_rnn_keras(tmp_path):
    model = char_model()
    model.export(tmp_path / "lm")
    greedy = model.generate("ROMEO:", max_length=16, temperature=0.0)
    response = run_without_rnn_keras(
        """
        import tensorflow as tf
        served = tf.saved_model.load(request["path"])
        text = served.generate(tf.constant(["ROMEO:"]), tf.constant(10), tf.constant(0.0))
        score = served.score(tf.constant(["ROMEO: soft"]))
        state = served.initial_state(tf.constant(2))
        step = served.step(tf.constant([1, 2], tf.int32), state)
        response = {"text": text.numpy()[0].decode(), "chars": int(score["chars"][0]),
                    "logits": step["logits"].shape.as_list(),
                    "vocabulary": [t.decode() for t in served.vocabulary().numpy()]}
        """,
        {"path": str(tmp_path / "lm")},
        cwd=tmp_path,
    )
    assert response["text"] == greedy
    assert response["chars"] == len("ROMEO: soft") - 1
    assert response["vocabulary"] == model.preprocessor.get_vocabulary()
    assert response["logits"] == [2, model.preprocessor.vocabulary_size()]


# -- feature windows -------------------------------------------------------------------------


def windows(batch=5, time=6, seed=0):
    rng = np.random.default_rng(seed)
    level = rng.normal(50, 10, (batch, time)).astype("float32")
    level[0, 2] = np.nan  # a missing reading
    return {
        "level": level,
        "temperature": rng.normal(0, 3, (batch, time)).astype("float32"),
        "hour": ((np.arange(time)[None, :] + np.arange(batch)[:, None]) % 24).astype("int32"),
        "wind": rng.choice(["N", "S", "calm"], (batch, time)),
        "day": np.ones((batch, time), "int32"),
    }


def window_regressor():
    preprocessor = rnn_keras.FeatureWindowPreprocessor(
        numeric=["level", "temperature"],
        periodic={"hour": 24},
        categorical={"wind": ["N", "S"]},
        unused={"day": "int32"},
    )
    rows = np.stack([windows()["level"].ravel(), windows()["temperature"].ravel()], axis=1)
    preprocessor.adapt(rows)
    mean, std = preprocessor.target_statistics("level")
    backbone = rnn_keras.RecurrentBackbone("gru", 6, input_dim=preprocessor.feature_size)
    return rnn_keras.SequenceRegressor(
        backbone, 3, output_scale=std, output_offset=mean, preprocessor=preprocessor
    )


def test_feature_windows_become_normalized_imputed_periodic_and_one_hot_features():
    regressor = window_regressor()
    preprocessor, data = regressor.preprocessor, windows()
    features = preprocessor(data).numpy()
    assert features.shape == (5, 6, preprocessor.feature_size) == (5, 6, 9)
    rows = np.stack([data["level"], data["temperature"]], -1)[~np.isnan(data["level"])]
    np.testing.assert_allclose(
        features[..., :2][~np.isnan(data["level"])],
        (rows - rows.mean(0)) / rows.std(0),
        rtol=1e-4,
        atol=1e-4,
    )
    assert features[0, 2, 0] == 0.0 and features[0, 2, 2] == 1.0  # imputed, flagged
    np.testing.assert_allclose(features[..., 4], np.sin(2 * np.pi * data["hour"] / 24), atol=1e-6)
    np.testing.assert_array_equal(features[..., 6:].argmax(-1), [
        [{"N": 1, "S": 2, "calm": 0}[w] for w in row] for row in data["wind"]
    ])  # fmt: skip
    with pytest.raises(ValueError, match="missing input columns \\['wind'\\]"):
        preprocessor({k: v for k, v in data.items() if k != "wind"})


def test_regressor_trains_on_raw_windows_with_per_output_weights(tmp_path):
    regressor = window_regressor()
    regressor.compile()
    targets = np.full((5, 3), 50.0, "float32")
    weights = np.ones((5, 3), "float32")
    weights[0, 1] = 0.0
    targets[0, 1] = 1e6  # weight 0: must not count
    loss, mae = regressor.evaluate(windows(), targets, sample_weight=weights, verbose=0)
    predicted = regressor.predict(windows(), verbose=0)
    errors = np.abs(predicted - targets)
    assert mae == pytest.approx((errors * weights).sum() / weights.sum(), rel=1e-4)
    assert loss == pytest.approx((errors * weights).mean(), rel=1e-4)
    regressor.fit(windows(), targets, sample_weight=weights, epochs=1, verbose=0)
    path = tmp_path / "regressor.keras"
    regressor.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(windows(), verbose=0), regressor.predict(windows(), verbose=0), rtol=1e-5
    )
    regressor.export(tmp_path / "served")
    served = tf.saved_model.load(str(tmp_path / "served"))
    out = served.serve(**{k: tf.constant(v) for k, v in windows().items()})
    np.testing.assert_allclose(out, regressor.predict(windows(), verbose=0), rtol=1e-5)


# -- saving without optimizer state ----------------------------------------------------------


def test_save_model_writes_no_optimizer_state(tmp_path):
    classifier = text_classifier()
    classifier.compile()
    classifier.fit(REVIEWS, LABELS, epochs=1, verbose=0)
    rnn_keras.export.save_model(classifier, tmp_path / "light.keras")
    classifier.save(tmp_path / "full.keras")
    assert (tmp_path / "light.keras").stat().st_size < (tmp_path / "full.keras").stat().st_size
    assert classifier.compiled and classifier.optimizer.iterations.numpy() == 1  # restored
    program = textwrap.dedent(
        f"""
        import zipfile, h5py, io, keras, rnn_keras
        archive = zipfile.ZipFile({str(tmp_path / "light.keras")!r})
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")))
        assert "optimizer" not in weights, list(weights)
        model = keras.saving.load_model({str(tmp_path / "light.keras")!r})
        assert not model.compiled
        model.compile()
        model.fit({REVIEWS!r}, {LABELS!r}, epochs=1, verbose=0)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
