"""The translator: preprocessing, masking, greedy and beam search, round trips, bad input."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from helpers import randomize_weights, run_without_rnn_keras

import rnn_keras
from rnn_keras.export import save_model
from rnn_keras.training import TimeBudget
from rnn_keras.translation import END_ID, START_ID, load_multi30k, split_words

GERMAN = [
    "Ein Hund läuft im Schnee.",
    "Zwei Männer spielen Fußball auf einem Feld.",
    "Eine Frau mit rotem Hut liest ein Buch.",
    "Kinder spielen im Park.",
    "Ein Mann fährt Fahrrad.",
    "Ein Mädchen isst einen Apfel.",
]
ENGLISH = [
    "A dog runs in the snow.",
    "Two men play soccer on a field.",
    "A woman with a red hat reads a book.",
    "Children play in the park.",
    "A man rides a bike.",
    "A girl eats an apple.",
]
BAD_INPUTS = {
    "empty": [""],
    "all_empty": ["", "  ", ""],
    "zero_size": [],
    "long": [" ".join(["Hund"] * 5000)],
    "unseen_scripts": ["🐕🎉 日本語のテキスト Привет мир", "ééé ßßß"],
    "html": ["<p>Ein <b>Hund</b> läuft &amp; springt</p><script>alert(1)</script>"],
}


def preprocessor(**kwargs):
    p = rnn_keras.TranslatorPreprocessor(min_count=1, **kwargs)
    p.adapt(GERMAN, ENGLISH)
    return p


def random_translator(attention="general", seed=0, **kwargs):
    model = rnn_keras.Translator.from_preprocessor(
        preprocessor(), units=8, embedding_dim=6, attention=attention, **kwargs
    )
    randomize_weights(model, seed, scale=0.8)
    return model


@pytest.fixture(scope="module")
def translator():
    return random_translator()


def test_split_words_gives_moses_tokens():
    texts = [
        "A man's hat, isn't it?",
        "„Welcome Bikers“ steht auf dem Schild: (groß)!",
        "ÄRGER im ÖL; Ende.",
    ]
    words = [[w.decode() for w in row] for row in split_words(texts).to_list()]
    assert words == [
        ["a", "man", "'s", "hat", ",", "is", "n't", "it", "?"],
        [
            '"',
            "welcome",
            "bikers",
            '"',
            "steht",
            "auf",
            "dem",
            "schild",
            ":",
            "(",
            "groß",
            ")",
            "!",
        ],
        ["ärger", "im", "öl", ";", "ende", "."],
    ]


def test_preprocessor_teacher_forcing_triple_and_config():
    p = preprocessor(max_source_length=4, max_target_length=3)
    assert p.source_words[:2] == ["", "[UNK]"] and p.target_words[:4][2:] == ["[START]", "[END]"]
    x, y, w = p(tf.constant(["Ein Hund läuft im Schnee.", "Unbekannt"]), tf.constant(ENGLISH[:2]))
    source = x["source_ids"].numpy()
    assert source.shape == (2, 4)  # cut to 4 words
    assert list(p.source_tokens(source[0])) == ["ein", "hund", "läuft", "im"]
    assert list(source[1]) == [1, 0, 0, 0]  # an unknown word, then padding
    words = [p.target_words.index(t) for t in ["a", "dog", "runs"]]
    np.testing.assert_array_equal(x["target_ids"].numpy()[0], [START_ID, *words])
    np.testing.assert_array_equal(y.numpy()[0], [*words, END_ID])
    np.testing.assert_array_equal(w.numpy(), np.ones((2, 4)))
    # An empty batch row and an all-empty batch still give one (padding) step.
    assert p.source_ids(tf.constant(["", ""])).numpy().tolist() == [[0], [0]]
    assert p.detokenize([[*words, END_ID, words[0]], [0] * 5]).numpy().tolist() == [
        b"a dog runs",
        b"",
    ]
    clone = rnn_keras.TranslatorPreprocessor.from_config(p.get_config())
    assert clone.source_words == p.source_words and clone.target_words == p.target_words
    assert clone.max_source_length == 4 and clone.max_target_length == 3


def test_preprocessor_refuses_bad_arguments():
    with pytest.raises(ValueError, match="no vocabularies yet"):
        rnn_keras.TranslatorPreprocessor().source_ids(["x"])
    with pytest.raises(ValueError, match="`max_source_length` must be a positive integer"):
        rnn_keras.TranslatorPreprocessor(max_source_length=0)
    with pytest.raises(ValueError, match="give both vocabularies or neither"):
        rnn_keras.TranslatorPreprocessor(source_vocabulary=["a"])
    with pytest.raises(ValueError, match=r"reserved: \['\[END\]'\]"):
        rnn_keras.TranslatorPreprocessor(source_vocabulary=["a"], target_vocabulary=["[END]"])


def test_translator_refuses_bad_arguments(translator):
    with pytest.raises(
        ValueError, match="`attention` must be 'additive', 'general', 'dot' or None"
    ):
        random_translator(attention="luong")
    with pytest.raises(ValueError, match="`beam_size` must be a positive integer"):
        translator.translate(["x"], beam_size=0)
    with pytest.raises(ValueError, match="`length_penalty_alpha` must be >= 0"):
        translator.translate(["x"], length_penalty_alpha=-1.0)
    bare = rnn_keras.Translator(translator.backbone, translator.target_vocabulary_size)
    with pytest.raises(ValueError, match="needs a preprocessor"):
        bare.translate(["x"])


def test_a_padded_batch_gives_what_each_sentence_gives_alone(translator):
    p = translator.preprocessor
    x, _, weights = p(tf.constant(GERMAN), tf.constant(ENGLISH))
    assert len({int(n) for n in (x["source_ids"].numpy() > 0).sum(axis=1)}) > 1  # real padding
    together = translator(x).numpy()
    ids, logp, _, attention = (t.numpy() for t in translator.search_ids(x["source_ids"], 3))
    for i, sentence in enumerate(GERMAN):
        alone_x, _, _ = p(tf.constant([sentence]), tf.constant([ENGLISH[i]]))
        steps = int(weights.numpy()[i].sum())
        alone = translator(alone_x).numpy()[0]
        np.testing.assert_allclose(together[i, :steps], alone[:steps], atol=1e-5)
        one = [t.numpy()[0] for t in translator.search_ids(alone_x["source_ids"], 3)]
        width = one[0].shape[0]
        np.testing.assert_array_equal(ids[i, :width], one[0])
        assert not ids[i, width:].any()
        np.testing.assert_allclose(logp[i], one[1], atol=1e-5)
        sources = one[3].shape[1]
        np.testing.assert_allclose(attention[i, :width, :sources], one[3], atol=1e-5)
        assert not attention[i, :, sources:].any()  # padding gets no attention


def test_greedy_picks_the_argmax_of_the_teacher_forced_network(translator):
    source = translator.preprocessor.source_ids(tf.constant(GERMAN))
    ids, logp, _, _ = translator.search_ids(source, beam_size=1)
    ids = ids.numpy()
    inputs = np.concatenate([np.full((len(GERMAN), 1), START_ID), ids[:, :-1]], axis=1)
    logits = translator({"source_ids": source, "target_ids": tf.constant(inputs)}).numpy()
    logits[:, :, [0, START_ID]] = -np.inf  # never produced
    for i in range(len(GERMAN)):
        real = ids[i] > 0
        np.testing.assert_array_equal(ids[i][real], logits[i].argmax(-1)[real])
    np.testing.assert_allclose(logp, translator.score_ids(source, ids), atol=1e-4)


def test_beam_size_one_is_greedy(translator):
    source = translator.preprocessor.source_ids(tf.constant(GERMAN))
    encoded = translator.encode(source)
    steps = translator._max_steps(source, 100)
    for alpha in (0.0, 0.6):
        greedy = translator._greedy(encoded, steps, alpha)
        beam = translator._beam(encoded, steps, 1, alpha)  # the beam machinery, one beam
        for a, b in zip(greedy, beam, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_search_never_scores_below_greedy(alpha):
    model = random_translator(seed=3)
    rng = np.random.default_rng(0)
    words = model.preprocessor.source_words[2:]
    sources = [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in range(40)]
    source = model.preprocessor.source_ids(tf.constant(sources))
    greedy = [t.numpy() for t in model.search_ids(source, 1, length_penalty_alpha=alpha)]
    beam = [t.numpy() for t in model.search_ids(source, 4, length_penalty_alpha=alpha)]
    assert (beam[2] >= greedy[2] - 1e-5).all()  # the length-normalised score
    assert (beam[2] > greedy[2] + 1e-4).any()  # and the beam finds better ones
    # The log-probability the search reports is the network's for the ids it returns.
    np.testing.assert_allclose(beam[1], model.score_ids(source, beam[0]), atol=1e-4)


def test_fit_on_raw_strings_learns_to_translate():
    keras.utils.set_random_seed(0)
    model = rnn_keras.Translator.from_preprocessor(preprocessor(), units=32, embedding_dim=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(GERMAN * 16, ENGLISH * 16, batch_size=8, epochs=10, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    want = [" ".join(w.decode() for w in row) for row in split_words(ENGLISH).to_list()]
    assert model.translate(GERMAN, beam_size=1) == want
    assert model.translate(GERMAN, beam_size=3) == want
    source, target, weights = model.attention_map(GERMAN[0])
    assert source == ["ein", "hund", "läuft", "im", "schnee", "."]
    assert target == [*want[0].split(), "[END]"]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)


def test_no_attention_is_the_same_network_without_its_context():
    model = random_translator(attention=None)
    assert model.decoder.attention is None
    attentive = random_translator()
    # Only the score's W (8 x 8) and the context's half of W_c (8 x 8) are missing.
    assert attentive.count_params() - model.count_params() == 2 * 8 * 8
    assert tuple(model.decoder.combine.kernel.shape) == (8, 8)
    source = model.preprocessor.source_ids(tf.constant(GERMAN))
    _, _, _, attention = model.search_ids(source, 2)
    assert not attention.numpy().any()


def test_keras_file_round_trip_in_a_fresh_process(translator, tmp_path):
    translator.compile()
    translator.optimizer.build(translator.trainable_variables)
    save_model(translator, tmp_path / "translator.keras")
    texts = [*GERMAN, ""]
    expected = translator.translate(texts, beam_size=3)
    code = (
        "import json, sys, keras, rnn_keras\n"
        f"m = keras.saving.load_model({str(tmp_path / 'translator.keras')!r})\n"
        "print(json.dumps(m.translate(json.loads(sys.argv[1]), beam_size=3)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(texts)],
        capture_output=True, text=True, cwd=REPO_ROOT, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


SERVE = """
import tensorflow as tf
loaded = tf.saved_model.load(request["model"])
response = {
    name: [t.decode("utf-8") for t in loaded.translate(tf.constant(texts, tf.string)).numpy()]
    for name, texts in request["inputs"].items()
}
"""


def test_export_serves_raw_text_and_every_bad_input_without_rnn_keras(translator, tmp_path):
    translator.export(tmp_path / "served", beam_size=3, length_penalty_alpha=0.6)
    inputs = {"normal": GERMAN, **BAD_INPUTS}
    served = run_without_rnn_keras(
        SERVE, {"model": str(tmp_path / "served"), "inputs": inputs}, cwd=tmp_path
    )
    assert served["normal"] == translator.translate(GERMAN, beam_size=3)
    for name, texts in BAD_INPUTS.items():
        assert len(served[name]) == len(texts), name
        assert served[name] == translator.translate(texts, beam_size=3), name
    # The output is bounded: at most 100 words, whatever the input's length.
    assert all(len(text.split()) <= 100 for text in served["long"])


def test_time_budget_stops_fit_before_the_budget_passes():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    budget = TimeBudget(seconds=1e-3)
    history = model.fit(np.ones((8, 2)), np.ones(8), epochs=5, callbacks=[budget], verbose=0)
    assert len(history.history["loss"]) == 1 and budget.stopped_epoch == 0
    spent = TimeBudget(seconds=3600, spent=lambda: 0.0)
    history = model.fit(np.ones((8, 2)), np.ones(8), epochs=3, callbacks=[spent], verbose=0)
    assert len(history.history["loss"]) == 3 and spent.stopped_epoch is None


def test_load_multi30k_reads_the_official_files(multi30k_dir):
    if multi30k_dir is None:
        pytest.skip("Multi30K is not available offline here (no ../shared/data/multi30k)")
    german, english = load_multi30k("val", multi30k_dir)
    (tokenized,) = load_multi30k("val", multi30k_dir, tokenized=True, languages=("en",))
    assert len(german) == len(english) == len(tokenized) == 1014
    assert "&apos;" not in " ".join(tokenized) and "'s" in " ".join(tokenized)
    assert tokenized[0] == english[0].lower().replace(".", " .").replace(",", " ,")
    with pytest.raises(FileNotFoundError, match="expected .*raw/val.de.gz"):
        load_multi30k("val", multi30k_dir + "/nowhere")
    with pytest.raises(ValueError, match="`split` must be one of"):
        load_multi30k("test", multi30k_dir)


# -- scoring and pictures of experiments/translate.py --------------------------------------------


def test_bleu_scores_tokenized_lowercased_and_cased_after_detokenizing():
    from rnn_keras.models.translator import bleu_scores, tokenized_bleu

    tokenized = ["a dog runs in the snow .", "two men play soccer on a field ."]
    # translate() writes lowercase Moses tokens: detokenized and capitalised, they are the raw
    # references exactly; lowercasing makes case irrelevant to the tokenized figure.
    assert bleu_scores(tokenized, ENGLISH[:2], tokenized) == pytest.approx((100.0, 100.0))
    assert tokenized_bleu(["A Dog runs in the SNOW .", tokenized[1]], tokenized) == pytest.approx(
        100
    )
    wrong = ["a cat sleeps in the house .", tokenized[1]]
    tokenized_score, cased = bleu_scores(wrong, ENGLISH[:2], tokenized)
    assert 0 < tokenized_score < 100 and 0 < cased < 100
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        bleu_scores(tokenized, ENGLISH[:3], tokenized)


def test_bleu_by_length_scores_each_bucket_of_source_lengths_alone():
    from rnn_keras.models.translator import bleu_by_length, length_bucket, tokenized_bleu

    assert [length_bucket(n) for n in (0, 1, 10, 11, 15, 16, 20, 21, 99)] == [
        None, "1-10", "1-10", "11-15", "11-15", "16-20", "16-20", "21+", "21+",
    ]  # fmt: skip
    sources = [" ".join(["wort"] * n) for n in (3, 12, 25, 7)]
    references = [
        "a dog runs in the snow .",
        "two men play soccer on a field .",
        "a woman with a red hat reads a book .",
        "children play in the park .",
    ]
    hypotheses = [references[0], "two men play chess in a room .", references[2], "kids run ."]
    by_length = bleu_by_length(hypotheses, sources, references)
    assert list(by_length) == ["1-10", "11-15", "21+"]  # in bucket order; 16-20 is empty
    assert by_length["1-10"] == (tokenized_bleu(hypotheses[::3], references[::3]), 2)
    assert by_length["11-15"] == (tokenized_bleu(hypotheses[1:2], references[1:2]), 1)
    assert by_length["21+"] == (pytest.approx(100.0), 1)
    assert 0 < by_length["1-10"][0] < 100 and by_length["11-15"][0] < 100
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        bleu_by_length(hypotheses, sources[:2], references)


def test_decoding_grid_tries_greedy_then_each_beam_setting():
    from rnn_keras.models.translator import decoding_grid

    assert decoding_grid([3, 5], [0.6, 1.0]) == [
        ("greedy", 1, 0.0),
        ("beam 3, alpha 0.6", 3, 0.6),
        ("beam 3, alpha 1", 3, 1.0),
        ("beam 5, alpha 0.6", 5, 0.6),
        ("beam 5, alpha 1", 5, 1.0),
    ]
    with pytest.raises(ValueError, match="`beam_size` must be a positive integer"):
        decoding_grid([0], [0.6])
    with pytest.raises(ValueError, match="`length_penalty_alpha` must be >= 0"):
        decoding_grid([3], [-1.0])


def test_plots_of_bleu_by_length_and_of_attention_maps(translator, tmp_path):
    from rnn_keras.models.translator import plot_attention_maps, plot_bleu_by_length

    by_length = {"attention": {"1-10": (30.0, 4), "21+": (10.0, 1)}, "none": {"1-10": (20.0, 4)}}
    plot_bleu_by_length(by_length, tmp_path / "by_length.png", "BLEU by length")
    assert (tmp_path / "by_length.png").stat().st_size > 5_000
    maps = plot_attention_maps(translator, GERMAN[:2], tmp_path / "attention.png", beam_size=2)
    assert (tmp_path / "attention.png").stat().st_size > 5_000
    for sentence, drawn in zip(GERMAN[:2], maps, strict=True):
        source, target, _ = translator.attention_map(sentence, 2, 100, 0.0)
        assert drawn == {"source": source, "target": target}
    with pytest.raises(ValueError, match="at least one sentence"):
        plot_attention_maps(translator, [], tmp_path / "none.png")
    with pytest.raises(ValueError, match="at least one model"):
        plot_bleu_by_length({}, tmp_path / "none.png")


# -- the experiment and the committed model -----------------------------------------------------

SCRIPT = REPO_ROOT / "experiments" / "translate.py"
SAVED_MODEL = REPO_ROOT / "saved_models" / "translate_de_en"


@pytest.mark.integration
def test_quick_run_reports_bleu_both_ways_exports_and_resumes(tmp_path, multi30k_dir):
    from helpers import run_quick

    flags = ["--data-dir", multi30k_dir] if multi30k_dir else []
    metrics = run_quick(SCRIPT, tmp_path, *flags, timeout=900)
    results = metrics["results"]
    for name in ("attention", "no_attention"):
        assert set(results[name]["test"]) == {
            f"{split} {decoding}"
            for split in ("test_2016_flickr", "test_2017_flickr", "test_2017_mscoco")
            for decoding in ("greedy", "beam")
        }
        for value in results[name]["test"].values():
            assert 0 <= value["bleu"] <= 100 and 0 <= value["sacrebleu"] <= 100
        assert set(results[name]["val"]) == {"greedy", "beam 3, alpha 0.6"}
        assert set(results[name]["by_length"]) <= {"1-10", "11-15", "16-20", "21+"}
        assert results[name]["training"]["epochs"] == 2
    assert len(results["heatmaps"]) == 2 and metrics["export"]["beam_size"] == 3
    for picture in ("bleu_by_length.png", "attention.png", "learning_curve_attention.png"):
        assert (tmp_path / picture).stat().st_size > 10_000
    served = run_without_rnn_keras(
        SERVE,
        {"model": str(tmp_path / "export" / "translate_de_en"), "inputs": BAD_INPUTS},
        cwd=tmp_path,
    )
    assert {name: len(texts) for name, texts in served.items()} == {
        name: len(texts) for name, texts in BAD_INPUTS.items()
    }
    # A rerun in the same folder reloads both trained models instead of training again.
    command = [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path), *flags]
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "train_attention: resumed" in rerun.stdout
    assert "train_no_attention: resumed" in rerun.stdout
    assert (
        json.loads((tmp_path / "metrics.json").read_text())["results"]["attention"]["test"]
        == results["attention"]["test"]
    )


@pytest.mark.integration
def test_committed_model_serves_what_its_keras_file_translates(multi30k_dir):
    """saved_models/translate_de_en, loaded without rnn_keras, against the .keras file on the first
    50 sentences of test_2016_flickr, at the card's beam (5, alpha 1.0)."""
    german, _ = load_multi30k("test_2016_flickr", multi30k_dir)
    served = run_without_rnn_keras(
        SERVE, {"model": str(SAVED_MODEL), "inputs": {"test": german[:50]}}, cwd=REPO_ROOT
    )["test"]
    model = keras.saving.load_model(f"{SAVED_MODEL}.keras", compile=False)
    assert served == model.translate(german[:50], beam_size=5, length_penalty_alpha=1.0)
    assert served[2].startswith("a girl in a karate uniform")
