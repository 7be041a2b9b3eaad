"""Speech: the FSDD loader, its splits and the connected digit strings."""

import wave
from pathlib import Path

import numpy as np
import pytest

from rnn_keras import spoken_digits


def write_wav(path, samples, rate=8000, width=2):
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(width)
        file.setframerate(rate)
        file.writeframes((np.asarray(samples) * 32767).astype("<i2").tobytes())


@pytest.fixture
def tiny_fsdd(tmp_path):
    """Two speakers x three digits x six repetitions of short tones, plus a stray file."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for speaker in ("ann", "bob"):
        for digit in (0, 3, 7):
            for index in range(6):
                length = 400 + 40 * index
                write_wav(folder / f"{digit}_{speaker}_{index}.wav", rng.uniform(-0.5, 0.5, length))
    (folder / "README.txt").write_text("not a recording")
    return tmp_path


def test_load_recordings_parses_names_and_samples(tiny_fsdd):
    recordings = spoken_digits.load_recordings(tiny_fsdd)
    assert len(recordings) == 36
    assert sorted(set(recordings.speakers.tolist())) == ["ann", "bob"]
    assert sorted(set(recordings.digits.tolist())) == [0, 3, 7]
    first = recordings.subset(
        (recordings.speakers == "bob") & (recordings.digits == 3) & (recordings.indices == 2)
    )
    samples, rate = spoken_digits.read_wav(tiny_fsdd / "recordings" / "3_bob_2.wav")
    assert rate == 8000 and len(first) == 1
    np.testing.assert_array_equal(first.waveforms[0], samples)
    assert first.lengths()[0] == 480 and np.abs(samples).max() <= 1.0


def test_splits_hold_out_repetitions_and_speakers(tiny_fsdd):
    recordings = spoken_digits.load_recordings(tiny_fsdd)
    train, test = spoken_digits.official_split(recordings)
    assert test.sum() == 2 * 3 * 5 and not (train & test).any()
    assert (recordings.indices[test] < 5).all() and (recordings.indices[train] >= 5).all()
    train, test = spoken_digits.speaker_split(recordings, "ann")
    assert set(recordings.speakers[test].tolist()) == {"ann"}
    assert set(recordings.speakers[train].tolist()) == {"bob"}
    with pytest.raises(ValueError, match="unknown speaker 'cid'"):
        spoken_digits.speaker_split(recordings, "cid")


def test_load_recordings_refuses_other_rates_and_widths(tmp_path):
    (tmp_path / "recordings").mkdir()
    write_wav(tmp_path / "recordings" / "1_ann_0.wav", np.zeros(10), rate=16000)
    with pytest.raises(ValueError, match="16000 Hz, expected 8000"):
        spoken_digits.load_recordings(tmp_path)


def test_digit_strings_are_seeded_and_built_from_the_recordings(tiny_fsdd):
    recordings = spoken_digits.load_recordings(tiny_fsdd)
    waves, labels = spoken_digits.digit_strings(recordings, 20, seed=3, max_digits=4)
    again, again_labels = spoken_digits.digit_strings(recordings, 20, seed=3, max_digits=4)
    for a, b in zip(waves, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(np.array_equal(a, b) for a, b in zip(labels, again_labels, strict=True))
    assert all(1 <= len(label) <= 4 and set(label.tolist()) <= {0, 3, 7} for label in labels)
    low, high = 400 * 1, 640  # the shortest and longest recording
    for audio, label in zip(waves, labels, strict=True):
        silences = (len(label) + 1) * np.array([400, 2400])  # 0.05-0.3 s at 8 kHz
        assert len(label) * low + silences[0] <= len(audio) <= len(label) * high + silences[1]
        assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    other, _ = spoken_digits.digit_strings(recordings, 20, seed=4, max_digits=4)
    assert any(
        len(a) != len(b) or not np.array_equal(a, b) for a, b in zip(waves, other, strict=True)
    )
    with pytest.raises(ValueError, match="min_digits <= max_digits"):
        spoken_digits.digit_strings(recordings, 1, seed=0, min_digits=3, max_digits=2)


def test_load_recordings_keeps_the_first_repetitions(tiny_fsdd):
    from rnn_keras.datasets import fsdd

    everything = fsdd.load_recordings(tiny_fsdd)
    first = fsdd.load_recordings(tiny_fsdd, max_repetitions=2)
    assert len(first) == 2 * 3 * 2 and set(first.indices.tolist()) == {0, 1}
    expected = everything.subset(everything.indices < 2)
    for a, b in zip(first.waveforms, expected.waveforms, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.speakers, expected.speakers)
    with pytest.raises(ValueError, match="`max_repetitions` must be at least 1"):
        fsdd.load_recordings(tiny_fsdd, max_repetitions=0)


def synthetic_recordings(repetitions=12, speakers=("ann", "bob"), digits=(0, 3, 7)):
    """`Recordings` without files: each clip a constant, so every clip can be recognised."""
    rows = [(d, s, i) for s in speakers for d in digits for i in range(repetitions)]
    waveforms = [np.full(100 + i, (d + 1) / 10 + i / 1000, "float32") for d, _, i in rows]
    from rnn_keras.datasets import fsdd

    return fsdd.Recordings(waveforms, *zip(*rows, strict=True))


def test_train_validation_test_carves_validation_from_the_last_training_repetitions():
    from rnn_keras.datasets.fsdd import train_validation_test

    recordings = synthetic_recordings()
    train, validation, test = train_validation_test(recordings)
    assert set(test.indices.tolist()) == {0, 1, 2, 3, 4} and len(test) == 2 * 3 * 5
    assert set(validation.indices.tolist()) == {7, 8, 9, 10, 11}  # the last 5 of 0-11
    assert set(train.indices.tolist()) == {5, 6} and len(train) == 2 * 3 * 2
    train, validation, test = train_validation_test(recordings, "ann", validation_repetitions=2)
    assert set(test.speakers.tolist()) == {"ann"} and len(test) == 3 * 12
    assert set(train.speakers.tolist()) == set(validation.speakers.tolist()) == {"bob"}
    assert set(validation.indices.tolist()) == {10, 11} and set(train.indices.tolist()) == set(
        range(10)
    )
    with pytest.raises(ValueError, match="`validation_repetitions` must be at least 1"):
        train_validation_test(recordings, validation_repetitions=0)
    with pytest.raises(ValueError, match="unknown speaker 'cid'"):
        train_validation_test(recordings, "cid")


def test_digit_words_and_the_digit_string_sets_of_a_held_out_speaker():
    from rnn_keras.datasets import fsdd

    assert fsdd.digit_words(np.array([3, 0, 9], "int32")) == ["three", "zero", "nine"]
    assert fsdd.digit_words([]) == []
    with pytest.raises(ValueError, match="expected digits 0-9. Received: \\[3, 10\\]"):
        fsdd.digit_words([3, 10])
    recordings = synthetic_recordings()
    sets = fsdd.digit_string_sets(recordings, "ann", train_count=6, eval_count=3)
    bob = recordings.subset(recordings.speakers == "bob")
    train, validation, test = fsdd.train_validation_test(bob)
    ann = recordings.subset(recordings.speakers == "ann")
    expected = {
        "train": fsdd.digit_strings(train, 6, seed=1),
        "validation": fsdd.digit_strings(validation, 3, seed=2),
        "test_seen": fsdd.digit_strings(test, 3, seed=3),
        "test_unseen": fsdd.digit_strings(ann, 3, seed=4),
    }
    assert list(sets) == list(expected)
    for name, (waveforms, digits) in expected.items():
        assert len(sets[name][0]) == len(waveforms)
        for got, want in zip(sets[name][0], waveforms, strict=True):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(sets[name][1], digits, strict=True):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="unknown speaker 'cid'"):
        fsdd.digit_string_sets(recordings, "cid", 1, 1)


def test_baseline_accuracies_of_the_regression_and_of_dtw_on_splits(capsys, monkeypatch):
    from rnn_keras.datasets.fsdd import train_validation_test
    from rnn_keras.evaluation import speech_baselines

    recordings = synthetic_recordings(repetitions=8)
    train, validation, test = train_validation_test(recordings, "ann", validation_repetitions=2)
    means = {
        name: speech_baselines.mean_log_mel(list(split.waveforms))
        for name, split in (("train", train), ("validation", validation), ("test", test))
    }

    def regression(train_x, train_y, val_x, val_y):
        # A stand-in for the (slow) regression: fit on train, chosen on validation.
        np.testing.assert_allclose(train_x, means["train"], atol=1e-5)
        np.testing.assert_allclose(val_x, means["validation"], atol=1e-5)
        np.testing.assert_array_equal(train_y, train.digits)
        np.testing.assert_array_equal(val_y, validation.digits)

        def predict(x):  # right on every other test clip
            np.testing.assert_allclose(x, means["test"], atol=1e-5)
            return np.where(np.arange(len(x)) % 2 == 0, test.digits, -1)

        return predict, {"penalty": 1e-3, "val_accuracy": 1.0}

    monkeypatch.setattr(speech_baselines, "logistic_regression", regression)
    figures = speech_baselines.baseline_accuracies(train, validation, test, "ann", verbose=2)
    assert "DTW 1-NN over 24 templates (ann)" in capsys.readouterr().out
    assert figures["logistic_regression"] == 0.5  # 24 test clips, every other one right
    assert figures["logistic_regression_penalty"] == 1e-3
    templates = speech_baselines.clip_features(list(train.waveforms) + list(validation.waveforms))
    nearest = speech_baselines.nearest_neighbour_dtw(
        templates,
        np.concatenate([train.digits, validation.digits]),
        speech_baselines.clip_features(list(test.waveforms)),
    )
    assert figures["dtw_1nn"] == float((nearest == test.digits).mean())
    assert figures["baseline_seconds"] > 0
    speech_baselines.baseline_accuracies(train, validation, test)  # verbose=0: no line
    assert "DTW" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="every split needs recordings"):
        speech_baselines.baseline_accuracies(train, validation.subset([]), test)


def test_saved_model_step_keeps_the_model_and_its_record_for_a_resumed_run(tmp_path):
    import keras

    from rnn_keras.training.fit import saved_model_step

    def compute():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        return model, {"score": 0.5}

    model, record = saved_model_step(tmp_path, "result_a", compute, "a.keras")
    assert record == {"score": 0.5} and (tmp_path / "a.keras").exists()

    def fail():
        raise AssertionError("a finished step must not be computed again")

    again, record_again = saved_model_step(tmp_path, "result_a", fail, "a.keras")
    assert record_again == record and again is not model
    for got, want in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    _, first = saved_model_step(tmp_path, "result_b", compute)  # no model file: nothing kept
    assert first == {"score": 0.5} and not (tmp_path / "b.keras").exists()
    assert saved_model_step(tmp_path, "result_b", fail) == (None, first)
    with pytest.raises(ValueError, match="`model_file` must end in .keras"):
        saved_model_step(tmp_path, "result_c", compute, "c.h5")


def test_the_whole_dataset_and_its_official_split(fsdd_dir):
    recordings = spoken_digits.load_recordings(fsdd_dir)
    assert len(recordings) == 3000
    assert sorted(set(recordings.speakers.tolist())) == list(spoken_digits.SPEAKERS)
    train, test = spoken_digits.official_split(recordings)
    assert (test.sum(), train.sum()) == (300, 2700)
    seconds = recordings.lengths() / spoken_digits.SAMPLE_RATE
    assert 0.1 < seconds.min() and seconds.max() < 2.5


def front_end_model(**kwargs):
    import keras

    import rnn_keras
    from rnn_keras.audio import LogMelFrontEnd

    waveforms = keras.Input((None,), name="waveforms")
    lengths = keras.Input((), dtype="int32", name="lengths")
    front_end = LogMelFrontEnd(**kwargs)
    features = front_end({"waveforms": waveforms, "lengths": lengths})
    x = keras.layers.Bidirectional(rnn_keras.LSTM(6, return_sequences=True))(features)
    pooled = rnn_keras.MaskedGlobalPooling1D("max", bidirectional=True)(x)
    inputs = {"waveforms": waveforms, "lengths": lengths}
    return keras.Model(inputs, [features, pooled]), front_end


def padded(clips):
    batch = np.zeros([len(clips), max(len(c) for c in clips)], "float32")
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    return {"waveforms": batch, "lengths": np.array([len(c) for c in clips], "int32")}


def test_front_end_gives_a_clip_in_a_padded_batch_what_it_gives_alone():
    model, front_end = front_end_model()
    rng = np.random.default_rng(0)
    clips = [rng.uniform(-0.5, 0.5, n).astype("float32") for n in (1000, 3001, 80)]
    features, pooled = model.predict(padded(clips), verbose=0)
    mask = front_end.frame_mask(padded(clips)).numpy()
    for row, clip in enumerate(clips):
        frames = len(clip) // 80 + 1
        assert mask[row].sum() == frames
        alone_features, alone_pooled = model.predict(padded([clip]), verbose=0)
        np.testing.assert_allclose(features[row, :frames], alone_features[0, :frames], atol=1e-4)
        np.testing.assert_allclose(pooled[row], alone_pooled[0], atol=1e-5)
        real = features[row, :frames]  # normalised over the real frames, padding 0
        np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-3)
        assert np.all(features[row, frames:] == 0.0)


def test_spec_augment_masks_only_in_training():
    import keras

    from rnn_keras.audio import LogMelFrontEnd

    front_end = LogMelFrontEnd(time_masks=2, max_time_mask=5, frequency_masks=2, seed=1)
    clip = np.random.default_rng(1).uniform(-0.5, 0.5, [1, 4000]).astype("float32")
    inputs = {"waveforms": clip, "lengths": np.array([4000], "int32")}
    plain = front_end(inputs).numpy()
    np.testing.assert_array_equal(plain, front_end(inputs, training=False).numpy())
    augmented = front_end(inputs, training=True).numpy()
    zeroed = (augmented == 0) & (plain != 0)
    assert zeroed.any() and np.all((augmented == plain) | zeroed)
    restored = keras.layers.deserialize(keras.layers.serialize(front_end))
    assert restored.get_config() == front_end.get_config()
    with pytest.raises(ValueError, match="fft_length"):
        LogMelFrontEnd(frame_length=300, fft_length=256)


def test_blank_padding_makes_ctc_over_all_frames_the_ctc_of_each_clip():
    from keras import ops

    from rnn_keras.speech import BlankPadding, CTCLoss

    rng = np.random.default_rng(2)
    logits = rng.normal(size=[2, 9, 4]).astype("float32")
    frames = np.array([5, 9], "int32")
    labels = np.array([[1, 3], [2, 0]], "int32")
    mask = np.arange(9)[None, :] < frames[:, None]
    padded = BlankPadding()(logits, mask=mask)
    per_clip = CTCLoss(reduction=None)(labels, padded)
    true_lengths = ops.ctc_loss(labels, logits, np.array([2, 1]), frames, mask_index=0)
    np.testing.assert_allclose(per_clip, true_lengths, rtol=1e-4)


def test_speech_recognizer_transcribes_a_clip_in_a_batch_as_alone(tmp_path):
    import keras

    import rnn_keras
    from rnn_keras.speech import SpeechRecognizer

    keras.utils.set_random_seed(0)
    backbone = rnn_keras.RecurrentBackbone("lstm", 8, bidirectional=True, input_dim=40)
    model = SpeechRecognizer(backbone, ["a", "b", "c"], separator="")
    rng = np.random.default_rng(0)
    clips = [rng.uniform(-0.5, 0.5, n).astype("float32") for n in (900, 2500, 300)]
    together = model.frame_probabilities(clips)
    for clip, probabilities in zip(clips, together, strict=True):
        (alone,) = model.frame_probabilities([clip])
        assert probabilities.shape == (len(clip) // 80 + 1, 4)
        np.testing.assert_allclose(probabilities, alone, atol=1e-5)
    assert model.transcribe(clips) == [model.transcribe([clip])[0] for clip in clips]
    model.compile()
    labels = model.label_ids(["ab", "c", "cab"])
    np.testing.assert_array_equal(labels, [[1, 2, 0], [3, 0, 0], [3, 1, 2]])
    model.fit(model.audio_batch(clips), labels, epochs=1, verbose=0)
    model.save(tmp_path / "speech.keras")
    restored = keras.saving.load_model(tmp_path / "speech.keras")
    for a, b in zip(
        restored.frame_probabilities(clips), model.frame_probabilities(clips), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.label_ids(["abd"])


def naive_dtw(a, b):
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    total = np.full([len(a) + 1, len(b) + 1], np.inf)
    total[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            total[i, j] = cost[i - 1, j - 1] + min(
                total[i - 1, j], total[i, j - 1], total[i - 1, j - 1]
            )
    return total[-1, -1] / (len(a) + len(b))


def test_dtw_distances_and_nearest_neighbour_against_the_plain_recursion():
    rng = np.random.default_rng(4)
    query = rng.normal(size=[7, 3]).astype("float32")
    templates = [rng.normal(size=[m, 3]).astype("float32") for m in (1, 4, 7, 12)]
    want = [naive_dtw(query, t) for t in templates]
    np.testing.assert_allclose(spoken_digits.dtw_distances(query, templates), want, rtol=1e-4)
    stretched = np.repeat(query, 2, axis=0)  # the same sequence, twice as slow: distance 0
    assert spoken_digits.dtw_distances(query, [stretched])[0] < 1e-3
    labels = np.array([0, 1, 2, 3, 4])
    predicted = spoken_digits.nearest_neighbour_dtw(
        [*templates, stretched], labels, [query, templates[2] + 0.01], group=2
    )
    np.testing.assert_array_equal(predicted, [4, 2])


# -- decoding, metrics and batches ------------------------------------------------------------


def greedy_reference(logits):
    """NumPy greedy CTC: the best class per frame, repeats merged, blanks (0) dropped."""
    best = logits.argmax(-1)
    return [[int(c) for i, c in enumerate(row) if c != 0 and (i == 0 or c != row[i - 1])]
            for row in best]  # fmt: skip


def test_sequence_accuracy_and_decoding_match_a_numpy_greedy_decoder():
    import keras

    import rnn_keras
    from rnn_keras.speech import SequenceAccuracy

    rng = np.random.default_rng(3)
    logits = rng.normal(size=[6, 7, 4]).astype("float32") * 3
    paths = greedy_reference(logits)
    labels = np.zeros([6, 8], "int32")
    for row, path in enumerate(paths):
        right = path if row % 2 == 0 else [*path, 1]  # odd rows: one token too many
        labels[row, : len(right)] = right
    metric = SequenceAccuracy()
    metric.update_state(labels, logits)
    assert float(metric.result()) == pytest.approx(0.5)
    # Labels narrower and wider than the frames: the path [1, 2] from frames 1 1 0 2.
    frames = np.eye(4, dtype="float32")[[1, 1, 0, 2]][None] * 10
    for label, right in (([1, 2], 1.0), ([1], 0.0), ([1, 2, 0, 0, 0, 0, 0, 0], 1.0)):
        metric.reset_state()
        metric.update_state(np.array([label]), frames)
        assert float(metric.result()) == right, label
    backbone = rnn_keras.RecurrentBackbone("lstm", 4, input_dim=40)
    model = rnn_keras.SpeechRecognizer(backbone, ["a", "b", "c"], separator="")
    decoded = model.decode_ids(logits)
    assert [row.tolist() for row in decoded] == paths
    beam = model.decode_ids(logits, beam_width=8)
    assert len(beam) == 6 and all(set(row.tolist()) <= {1, 2, 3} for row in beam)
    assert keras.metrics.deserialize(keras.metrics.serialize(metric)).name == metric.name


def test_edit_distance_and_error_rates():
    from rnn_keras.speech import edit_distance, error_rates

    assert edit_distance("one two three".split(), "one two three".split()) == 0
    assert edit_distance(["one", "three"], ["one", "two", "three"]) == 1  # a deletion
    assert edit_distance(["one", "two", "two", "four"], ["one", "two", "three"]) == 2
    assert edit_distance([], ["one", "two"]) == 2 and edit_distance(["x"], []) == 1
    rates = error_rates(["one two", "three", ""], [["one", "two"], ["four"], ["five", "six"]])
    assert rates == {"token_error_rate": 3 / 5, "sequence_accuracy": 1 / 3, "errors": 3,
                     "tokens": 5, "sequences": 3}  # fmt: skip
    with pytest.raises(ValueError, match="2 transcripts for 1 references"):
        error_rates(["a", "b"], ["a"])


def test_dataset_batches_clips_of_similar_length_and_shuffles_each_epoch():
    import rnn_keras

    backbone = rnn_keras.RecurrentBackbone("lstm", 4, input_dim=40)
    model = rnn_keras.SpeechRecognizer(backbone, ["a", "b", "c"], separator="")
    rng = np.random.default_rng(4)
    lengths = rng.integers(100, 3000, 10)
    clips = [rng.uniform(-0.5, 0.5, n).astype("float32") for n in lengths]
    transcripts = ["abc"[: 1 + i % 3] for i in range(10)]
    dataset = model.dataset(clips, transcripts, batch_size=4, shuffle=True, seed=7)
    epochs = [list(dataset.as_numpy_iterator()) for _ in range(2)]
    sorted_lengths = np.sort(lengths)
    for batches in epochs:
        assert sorted(len(b[0]["lengths"]) for b in batches) == [2, 4, 4]
        seen = np.sort(np.concatenate([b[0]["lengths"] for b in batches]))
        np.testing.assert_array_equal(seen, sorted_lengths)
        for inputs, labels in batches:
            assert inputs["waveforms"].shape[1] == inputs["lengths"].max()
            row = int(np.flatnonzero(lengths == inputs["lengths"][0])[0])
            assert inputs["waveforms"][0, : lengths[row]].tolist() == clips[row].tolist()
            expected = model.label_ids([transcripts[row]])[0]
            assert labels[0][labels[0] > 0].tolist() == expected[expected > 0].tolist()
            assert labels.shape[1] == (labels > 0).sum(axis=1).max()
    orders = [[b[0]["lengths"][0] for b in batches] for batches in epochs]
    again = [b[0]["lengths"][0] for b in model.dataset(clips, transcripts, 4, True, 7)]
    assert again == orders[0]  # seeded
    in_order = [b[0]["lengths"][0] for b in model.dataset(clips, transcripts, 4)]
    assert in_order == sorted(in_order)
    with pytest.raises(ValueError, match="10 waveforms for 9 transcripts"):
        model.dataset(clips, transcripts[:9])


# -- export -----------------------------------------------------------------------------------

TRANSCRIBE = """
import numpy as np, tensorflow as tf
served = tf.saved_model.load(request["path"])
waveforms = np.array(request["waveforms"], "float32")
lengths = np.array(request["lengths"], "int32")
def text(w, n):
    return [t.decode() for t in served.transcribe(np.asarray(w, "float32"),
                                                  np.asarray(n, "int32")).numpy().tolist()]
garbage = waveforms.copy()
for row, n in enumerate(lengths):
    garbage[row, n:] = np.nan
response = {
    "transcripts": text(waveforms, lengths),
    "int16": text(waveforms * 32767, lengths),
    "garbage_after": text(garbage, lengths),
    "silence": text(np.zeros([2, 8000]), [8000, 4000]),
    "zero_length": text(waveforms[:2], [0, lengths[1]]),
    "zero_samples": text(np.zeros([2, 0]), [0, 0]),
    "no_clips": list(served.transcribe(np.zeros([0, 50], "float32"),
                                       np.zeros([0], "int32")).shape),
    "minute": len(text(np.random.default_rng(0).normal(0, 0.1, [1, 480_000]), [480_000])),
}
nan, inf = waveforms.copy(), waveforms.copy()
nan[0, 3], inf[1, 5] = np.nan, np.inf
refused = {"nan": (nan, lengths), "inf": (inf, lengths), "too_long": (waveforms, lengths + 1),
           "negative": (waveforms, -lengths), "count": (waveforms, lengths[:1])}
for name, (w, n) in refused.items():
    try:
        text(w, n)
        response[name] = "answered"
    except tf.errors.InvalidArgumentError as error:
        response[name] = error.message
"""


def test_export_transcribes_raw_audio_without_rnn_keras_and_answers_bad_input(tmp_path):
    import keras

    import rnn_keras
    from tests.helpers import run_without_rnn_keras

    keras.utils.set_random_seed(5)
    backbone = rnn_keras.RecurrentBackbone("lstm", 8, bidirectional=True, input_dim=40)
    model = rnn_keras.SpeechRecognizer(backbone, spoken_digits.DIGIT_WORDS)
    for layer in (model.ctc_head,):
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 20, bias + np.linspace(-1, 1, 11).astype("float32")])
    rng = np.random.default_rng(6)
    clips = [rng.uniform(-0.5, 0.5, n).astype("float32") for n in (2000, 3500, 900)]
    batch = model.audio_batch(clips)
    model.export(tmp_path / "speech")
    payload = {"path": str(tmp_path / "speech"), "waveforms": batch["waveforms"].tolist(),
               "lengths": batch["lengths"].tolist()}  # fmt: skip
    served = run_without_rnn_keras(TRANSCRIBE, payload, cwd=tmp_path)
    expected = model.transcribe(clips)
    assert any(expected), "the test needs a model that says something"
    assert served["transcripts"] == expected
    assert served["int16"] == expected and served["garbage_after"] == expected
    assert len(served["silence"]) == 2 and served["zero_samples"] == ["", ""]
    assert served["zero_length"] == ["", expected[1]]
    assert served["no_clips"] == [0] and served["minute"] == 1
    assert "NaN or Inf" in served["nan"] and "NaN or Inf" in served["inf"]
    assert "longer than the waveforms array" in served["too_long"]
    assert "lengths must be >= 0" in served["negative"]
    assert "one length per waveform row" in served["count"]


# -- the experiment and the committed models ---------------------------------------------------

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "speech.py"
SAVED_MODELS = Path(__file__).resolve().parents[1] / "saved_models"


@pytest.mark.integration
def test_committed_models_transcribe_as_their_model_card(fsdd_dir):
    """saved_models/speech_digits: the official test split transcribed by the SavedModel in a
    fresh process without rnn_keras, the .keras file agreeing, accuracy as in the card."""
    import json

    import keras

    recordings = spoken_digits.load_recordings(fsdd_dir)
    _, test = spoken_digits.official_split(recordings)
    test = recordings.subset(test)
    card = json.loads((SAVED_MODELS.parent / "experiments" / "results" / "speech" /
                       "metrics.json").read_text())["results"]["official"]  # fmt: skip
    batch = {
        "waveforms": [w.tolist() for w in test.waveforms],
        "path": str(SAVED_MODELS / "speech_digits"),
    }
    code = (
        "import numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(request['path'])\n"
        "clips = [np.array(w, 'float32') for w in request['waveforms']]\n"
        "response = []\n"
        "for k in range(0, len(clips), 50):\n"
        "    part = clips[k:k + 50]\n"
        "    n = np.array([len(c) for c in part], 'int32')\n"
        "    x = np.zeros([len(part), n.max()], 'float32')\n"
        "    for row, c in enumerate(part):\n"
        "        x[row, :len(c)] = c\n"
        "    response += [t.decode() for t in m.transcribe(x, n).numpy()]\n"
    )
    from tests.helpers import run_without_rnn_keras

    served = run_without_rnn_keras(code, batch, cwd=SAVED_MODELS.parent)
    model = keras.saving.load_model(SAVED_MODELS / "speech_digits.keras", compile=False)
    assert model.transcribe(list(test.waveforms)) == served
    words = [spoken_digits.DIGIT_WORDS[d] for d in test.digits]
    accuracy = np.mean([s == w for s, w in zip(served, words, strict=True)])
    assert accuracy == pytest.approx(card["test_accuracy"], abs=1e-9)


@pytest.mark.integration
def test_quick_run_killed_resumed_measures_three_tasks_and_exports(tmp_path, fsdd_dir):
    """`speech.py --quick` end to end, SIGKILLed during the official model's second epoch on
    the way: the rerun resumes that fit at epoch 2 (its record holds both epochs) and measures
    the three tasks and exports; a second rerun reloads every finished phase. (One run for
    what were two tests: the quick run, and the killed run with one fold.)"""
    import json

    from tests.helpers import kill_after_first_epoch, run_without_rnn_keras, start_quick

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    flags = ["--data-dir", fsdd_dir] if fsdd_dir else []
    logs = [tmp_path / f"{name}.log" for name in ("killed", "resumed", "again")]
    killed = start_quick(SCRIPT, run_dir, *flags, log=logs[0])
    kill_after_first_epoch([killed], run_dir / "backup_official")
    before = json.loads((run_dir / "history_official.json").read_text())
    assert len(before["seconds"]) == 1
    resumed = start_quick(SCRIPT, run_dir, *flags, log=logs[1])
    assert resumed.wait(timeout=900) == 0, logs[1].read_text()[-4000:]
    output = logs[1].read_text()
    assert "Epoch 2/2" in output and "Epoch 1/2" not in output
    record = json.loads((run_dir / "history_official.json").read_text())
    assert record["seconds"][0] == before["seconds"][0] < record["seconds"][1]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    results = metrics["results"]
    official = results["official"]
    assert official["history"]["loss"] == record["history"]["loss"]
    for key in ("test_accuracy", "logistic_regression", "dtw_1nn"):
        assert 0 <= official[key] <= 1
    assert official["dtw_1nn"] > 0.5  # the baseline needs no training: it works on the tiny run
    assert np.array(official["confusion"]).sum() == 300
    assert set(results["unseen"]["folds"]) == {"george", "theo"}
    for name in ("test_seen_greedy", "test_unseen_beam"):
        assert results["strings"][name]["sequences"] == 10
    assert metrics["train_minutes"] > 0 and metrics["machine"]["cpu"]
    for picture in ("confusion_official.png", "transcription_test_seen.png"):
        assert (run_dir / picture).stat().st_size > 10_000
    code = (
        "import numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(request)\n"
        "response = m.transcribe(np.zeros([1, 800], 'float32'), np.array([800], 'int32'))"
        ".numpy().shape[0]"
    )
    for name in ("speech_digits", "speech_digit_strings"):
        assert run_without_rnn_keras(code, str(run_dir / "export" / name), cwd=run_dir) == 1

    again = start_quick(SCRIPT, run_dir, *flags, log=logs[2])
    assert again.wait(timeout=900) == 0, logs[2].read_text()[-4000:]
    output = logs[2].read_text()
    assert "Epoch 1/" not in output  # nothing trained again
    for phase in ("official", "unseen_george", "unseen_theo", "strings"):
        assert f"result_{phase}: resumed from" in output
    assert json.loads((run_dir / "metrics.json").read_text())["results"] == results


def test_python_api_refuses_bad_clips_with_clear_errors():
    import rnn_keras

    backbone = rnn_keras.RecurrentBackbone("lstm", 4, input_dim=40)
    model = rnn_keras.SpeechRecognizer(backbone, ["a", "b"], separator="")
    clip = np.zeros(800, "float32")
    assert model.transcribe([]) == []
    assert len(model.transcribe([clip, np.zeros(0, "float32")])) == 2
    with pytest.raises(ValueError, match="wrap a single clip in a list"):
        model.transcribe(clip)
    with pytest.raises(ValueError, match=r"clip 1 must be 1-D \(samples\). Received: shape"):
        model.transcribe([clip, np.zeros([2, 800])])
    with pytest.raises(ValueError, match="clip 0 holds NaN or Inf"):
        model.frame_probabilities([np.full(800, np.nan)])
    with pytest.raises(ValueError, match="features per frame"):
        rnn_keras.SpeechRecognizer(rnn_keras.RecurrentBackbone("lstm", 4, input_dim=13), ["a"])
    with pytest.raises(ValueError, match="distinct, non-empty tokens"):
        rnn_keras.SpeechRecognizer(backbone, ["a", "a"])
    with pytest.raises(ValueError, match="`speed` must be"):
        model.dataset([clip], ["a"], speed=(1.2, 0.8))
    with pytest.raises(ValueError, match="`cepstra` must be between 1 and"):
        rnn_keras.LogMelFrontEnd(cepstra=41)


def test_front_end_floors_each_clip_alone_and_computes_mfccs():
    from rnn_keras.audio import LogMelFrontEnd

    rng = np.random.default_rng(9)
    loud = rng.uniform(-0.9, 0.9, 4000).astype("float32")
    quiet = np.zeros(4000, "float32")  # digital silence, then a faint tone
    quiet[2000:] = 1e-4 * np.sin(np.arange(2000) * 0.3)
    front_end = LogMelFrontEnd(top_db=80.0)
    together = front_end(padded([loud, quiet])).numpy()
    alone = front_end(padded([quiet])).numpy()
    np.testing.assert_allclose(together[1], alone[0], atol=1e-4)
    half_silent = np.where(np.arange(4000) < 2000, 0.0, 0.5 * np.sin(np.arange(4000) * 0.3))
    log_mel = front_end.log_mel(padded([half_silent.astype("float32")])["waveforms"]).numpy()[0]
    assert log_mel.max() - 80.0 > -100.0  # the floor binds above the 1e-10 power floor
    assert log_mel.min() == pytest.approx(log_mel.max() - 80.0, abs=1e-3)
    # MFCCs: the orthonormal DCT-II of the log-mel energies, then normalised per clip.
    mfcc = LogMelFrontEnd(cepstra=13)
    assert mfcc.feature_size == 13
    bands = np.arange(40)
    basis = np.stack([np.cos(np.pi / 40 * (bands + 0.5) * k) for k in range(13)], axis=1)
    basis *= np.sqrt(2 / 40)
    basis[:, 0] /= np.sqrt(2)
    np.testing.assert_allclose(basis.T @ basis, np.eye(13), atol=1e-6)
    inputs = padded([loud])
    cepstra = front_end.log_mel(inputs["waveforms"]).numpy()[0] @ basis
    frames = len(loud) // 80 + 1
    cepstra = cepstra[:frames]
    expected = (cepstra - cepstra.mean(0)) / np.sqrt(cepstra.var(0) + 1e-3)
    np.testing.assert_allclose(mfcc(inputs).numpy()[0, :frames], expected, atol=2e-3)


def test_speed_perturbation_resamples_each_clip():
    from rnn_keras.speech import _resampled

    clip = np.arange(10, dtype="float32")
    np.testing.assert_allclose(_resampled(clip, 2.0), [0, 2, 4, 6, 8])
    np.testing.assert_allclose(_resampled(clip, 0.5)[:5], [0, 0.5, 1, 1.5, 2])
    assert len(_resampled(clip, 0.5)) == 20 and len(_resampled(clip[:1], 3.0)) == 1
