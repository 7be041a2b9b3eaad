"""Polyphonic music: the note-by-note output against enumeration and NumPy, the task's
scores, generation and exports, and the piano-roll tools."""

import itertools
import json
from pathlib import Path

import keras
import mido
import numpy as np
import pytest
import reference
from helpers import randomize_weights, run_quick, run_without_rnn_keras

from rnn_keras import RecurrentBackbone, piano_rolls
from rnn_keras.music import NatsPerFrame, NoteByNote, PolyphonicModel, frame_nll

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "music.py"


def random_rolls(rng, lengths, keys=88, density=0.06):
    return [(rng.random([length, keys]) < density).astype("float32") for length in lengths]


def small_model(frame_output, keys=88, seed=0, **backbone_kwargs):
    keras.utils.set_random_seed(seed)
    backbone = RecurrentBackbone("lstm", 8, input_dim=keys, **backbone_kwargs)
    model = PolyphonicModel(backbone, frame_output=frame_output, hidden_units=6)
    for layer in (backbone.recurrent_layers[0], model.frame_head):
        randomize_weights(layer, seed)
    return model


def nade_reference(context, frame, layer):
    """The NADE equations of NoteByNote's docstring, one key at a time, in NumPy."""
    (b_kernel, b_bias), (c_kernel, c_bias) = (
        [w.numpy() for w in dense.weights] for dense in (layer.visible_bias, layer.hidden_bias)
    )
    w, v = layer.input_weights.numpy(), layer.output_weights.numpy()
    b, a = context @ b_kernel + b_bias, context @ c_kernel + c_bias
    logits = []
    for i in range(len(frame)):
        logits.append(b[i] + v[i] @ reference.sigmoid(a))
        a = a + frame[i] * w[i]
    return np.array(logits)


def test_note_by_note_matches_the_nade_equations():
    rng = np.random.default_rng(0)
    layer = NoteByNote(num_keys=7, hidden_units=5)
    context = rng.normal(size=[2, 3, 4]).astype("float32")
    frames = (rng.random([2, 3, 7]) < 0.4).astype("float32")
    layer([context, frames])  # builds the weights
    randomize_weights(layer, 1)
    logits = layer([context, frames]).numpy()
    for b, t in itertools.product(range(2), range(3)):
        expected = nade_reference(context[b, t], frames[b, t], layer)
        np.testing.assert_allclose(logits[b, t], expected, rtol=1e-5, atol=1e-5)


def test_note_by_note_probabilities_sum_to_one_over_all_chords():
    keys = 5
    layer = NoteByNote(num_keys=keys, hidden_units=3)
    chords = np.array(list(itertools.product([0.0, 1.0], repeat=keys)), "float32")  # 32
    context = np.random.default_rng(2).normal(size=[3, 1, 4]).astype("float32")
    layer([context[:, :, :], chords[None, :1].repeat(3, 0)])
    randomize_weights(layer, 3, scale=1.5)
    contexts = np.repeat(context, len(chords), axis=1)  # (3, 32, 4): each context x each chord
    frames = np.repeat(chords[None], 3, axis=0)
    nats = frame_nll(frames, layer([contexts, frames])).numpy()
    np.testing.assert_allclose(np.exp(-nats).sum(axis=1), 1.0, rtol=1e-5)
    # and the chords are not modelled as independent notes: the joint is not the product
    # of its marginals
    p = np.exp(-nats[0])
    marginals = (p[:, None] * chords).sum(axis=0)
    independent = np.prod(np.where(chords > 0, marginals, 1 - marginals), axis=1)
    assert np.abs(p - independent).max() > 1e-3


def test_independent_score_matches_numpy():
    """Nats per step of a known roll: LSTM over the previous frames, Dense, Bernoulli NLL."""
    model = small_model("independent", keys=6)
    roll = np.array([[1, 0, 0, 1, 0, 0], [0, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0],
                     [1, 1, 1, 0, 0, 1], [0, 0, 1, 0, 1, 0]], "float32")  # fmt: skip
    lstm = model.backbone.recurrent_layers[0]
    kernel, recurrent_kernel, bias = (w.numpy() for w in lstm.weights)
    previous = np.concatenate([np.zeros([1, 6]), roll[:-1]])
    hidden, _ = reference.lstm(previous, kernel, recurrent_kernel, bias)
    head_kernel, head_bias = (w.numpy() for w in model.frame_head.weights)
    p = reference.sigmoid(hidden @ head_kernel + head_bias)
    expected = -np.mean(np.sum(roll * np.log(p) + (1 - roll) * np.log(1 - p), axis=1))
    assert model.score(roll) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("frame_output", ["independent", "note_by_note"])
def test_padded_batches_give_each_roll_its_own_nats(frame_output):
    """fit/evaluate's batches: padding weighs nothing, so a batch of rolls of different lengths
    gives the nats per step of all their real frames, exactly."""
    model = small_model(frame_output)
    model.compile()
    rolls = random_rolls(np.random.default_rng(4), [7, 3, 12, 5])
    alone = model.score(rolls)
    lengths = np.array([7, 3, 12, 5])
    expected = float(np.sum(alone * lengths) / lengths.sum())
    batches = piano_rolls.roll_batches(rolls, batch_size=3)  # two batches, padded to 12 and 5
    result = model.evaluate(batches, verbose=0, return_dict=True)
    assert result["nats_per_frame"] == pytest.approx(expected, rel=1e-5)
    assert result["loss"] == pytest.approx(expected, rel=0.3)  # per-batch means, averaged
    metric = NatsPerFrame()
    for x, y, weights in batches:
        metric.update_state(y, model(x), weights)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("frame_output", ["independent", "note_by_note"])
def test_generation_step_by_step_agrees_with_the_whole_sequence(frame_output):
    """generate's cells, one step at a time (dropout off), against the layers over the sequence."""
    model = small_model(frame_output, dropout=0.3, recurrent_dropout=0.3)
    roll = random_rolls(np.random.default_rng(5), [9])[0]
    greedy = model.predicted_frames(roll[None]).numpy()[0]
    for prompt_length in (0, 4, 8):
        prompt = roll[:prompt_length] if prompt_length else None
        frame = model.generate(1, temperature=0.0, prompt=prompt)
        np.testing.assert_array_equal(frame[0], greedy[prompt_length])
    first = model.generate(30, temperature=1.0, seed=7)
    assert first.shape == (30, 88) and set(np.unique(first)) <= {0.0, 1.0}
    np.testing.assert_array_equal(model.generate(30, temperature=1.0, seed=7), first)
    assert not np.array_equal(model.generate(30, temperature=1.0, seed=8), first)
    assert model.generate(0).shape == (0, 88)


def test_bad_inputs_are_refused_with_clear_errors():
    model = small_model("independent")
    with pytest.raises(ValueError, match=r"\(time, 88\).*Received: shape \(4, 87\)"):
        model.score(np.zeros([4, 87]))
    with pytest.raises(ValueError, match="0 \\(silent\\) or 1"):
        model.score(np.full([4, 88], 0.5))
    with pytest.raises(ValueError, match="num_steps` must be in"):
        model.generate(100_000)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(5, temperature=-1.0)
    assert np.isnan(model.score(np.zeros([0, 88])))
    with pytest.raises(ValueError, match="must be one of"):
        PolyphonicModel(RecurrentBackbone(input_dim=88), frame_output="chords")
    with pytest.raises(ValueError, match="left to right"):
        PolyphonicModel(RecurrentBackbone(input_dim=88, bidirectional=True))


def test_keras_round_trip(tmp_path):
    model = small_model("note_by_note")
    model.compile()
    rolls = random_rolls(np.random.default_rng(6), [10, 6])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.frame_head, NoteByNote) and loaded.hidden_units == 6
    np.testing.assert_allclose(loaded.score(rolls), model.score(rolls), rtol=1e-6)
    np.testing.assert_array_equal(loaded.generate(12, seed=1), model.generate(12, seed=1))
    loaded.fit(piano_rolls.roll_batches(rolls), epochs=1, verbose=0)  # compiled as saved


SERVE = """
import numpy as np, tensorflow as tf
served = tf.saved_model.load(request["path"])
rolls = np.array(request["rolls"], "float32")
response = {"score": served.score(rolls).numpy().tolist(),
            "generated": served.generate(num_steps=12, temperature=1.0, seed=1).numpy().tolist(),
            "empty": served.score(np.zeros([2, 0, 88], "float32")).numpy().tolist(),
            "no_rolls": served.score(np.zeros([0, 5, 88], "float32")).numpy().shape[0],
            "long": served.score(np.zeros([1, 100_000, 88], "float32")).numpy().tolist(),
            "zero_steps": list(served.generate(0, 1.0, 0).shape)}
refused = {"keys": (np.zeros([1, 5, 87], "float32"),), "values": (np.full([1, 5, 88], 0.5),),
           "nan": (np.full([1, 5, 88], np.nan),)}
for name, args in refused.items():
    try:
        served.score(np.asarray(args[0], "float32"))
        response[name] = "answered"
    except tf.errors.InvalidArgumentError as error:
        response[name] = error.message
for name, args in {"too_many": (100_000, 1.0, 0), "negative": (-1, 1.0, 0),
                   "hot": (5, -1.0, 0), "nan_temperature": (5, float("nan"), 0)}.items():
    try:
        served.generate(*args)
        response[name] = "answered"
    except tf.errors.InvalidArgumentError as error:
        response[name] = error.message
"""


def test_export_serves_rolls_without_rnn_keras(tmp_path):
    model = small_model("note_by_note")
    rolls = random_rolls(np.random.default_rng(8), [15, 15])
    model.export(tmp_path / "chorales")
    payload = {"path": str(tmp_path / "chorales"), "rolls": np.stack(rolls).tolist()}
    served = run_without_rnn_keras(SERVE, payload, cwd=tmp_path)
    np.testing.assert_allclose(served["score"], model.score(rolls), rtol=1e-5)
    np.testing.assert_array_equal(served["generated"], model.generate(12, 1.0, seed=1))
    assert np.isnan(served["empty"]).all() and served["no_rolls"] == 0
    assert np.isfinite(served["long"]).all()
    assert served["zero_steps"] == [0, 88]
    assert "rolls must be [batch, steps, 88]" in served["keys"]
    for name in ("values", "nan"):
        assert "0 (silent) or 1 (sounding)" in served[name]
    assert "above the limit" in served["too_many"] and "num_steps < 0" in served["negative"]
    for name in ("hot", "nan_temperature"):
        assert "temperature must be finite and >= 0" in served[name]


# -- piano rolls ------------------------------------------------------------------------------


def test_rolls_pitches_and_midi_round_trip(tmp_path):
    steps = [[60, 64, 67], [60, 64, 67], [], [21, 108], [62]]
    roll = piano_rolls.to_roll(steps)
    assert roll.shape == (5, 88) and piano_rolls.to_pitches(roll) == steps
    with pytest.raises(ValueError, match="MIDI 21-108"):
        piano_rolls.to_roll([[20]])
    path = piano_rolls.write_midi(roll, tmp_path / "c.mid")
    midi = mido.MidiFile(path)
    events, ticks = [], 0
    for message in midi.tracks[0]:
        ticks += message.time
        if message.type in ("note_on", "note_off"):
            events.append((ticks, message.type, message.note))

    def sounding_at(step):
        notes = set()
        for tick, kind, note in events:
            if tick <= step * midi.ticks_per_beat:
                (notes.add if kind == "note_on" else notes.discard)(note)
        return sorted(notes)

    # held notes are one note: C major sounds for two steps, then silence
    assert [sounding_at(t) for t in range(5)] == steps
    assert sounding_at(5) == []  # all notes end with the roll
    assert sum(m.type == "note_on" for m in midi.tracks[0]) == 3 + 2 + 1


def test_statistics_accuracy_and_baseline_figures():
    roll = piano_rolls.to_roll([[48, 60, 64, 67], [48, 60, 64, 67], [50, 62], []])
    stats = piano_rolls.roll_statistics([roll])
    assert stats["notes_per_frame"] == pytest.approx(10 / 4)
    assert stats["four_note_frames"] == 0.5 and stats["silent_frames"] == 0.25
    assert stats["repeated_frames"] == pytest.approx(1 / 3)
    assert stats["lowest_pitch"]["mean"] == pytest.approx((48 + 48 + 50) / 3)
    assert stats["highest_pitch"]["mean"] == pytest.approx((67 + 67 + 62) / 3)
    assert [stats["voices"][v]["mean"] for v in ("bass", "tenor", "alto", "soprano")] == [
        48,
        60,
        64,
        67,
    ]
    predicted = piano_rolls.to_roll([[48, 60, 64], [48, 60, 64, 65], [], [70]])
    # TP 3 + 3 + 0 + 0 = 6; union 4 + 5 + 2 + 1 = 12
    assert piano_rolls.frame_accuracy([roll], [predicted]) == pytest.approx(6 / 12)
    p = piano_rolls.key_frequencies([roll], smoothing=0.0)
    assert p[48 - 21] == 0.5 and p[50 - 21] == 0.25 and p[0] == 0.0
    smoothed = piano_rolls.key_frequencies([roll])
    expected = -np.sum(roll * np.log(smoothed) + (1 - roll) * np.log(1 - smoothed)) / 4
    assert piano_rolls.independent_nll([roll], smoothed) == pytest.approx(expected, rel=1e-6)


def test_batches_pad_with_zero_weight_and_transpose_on_the_keyboard():
    rolls = [piano_rolls.to_roll([[21, 30]] * 3), piano_rolls.to_roll([[100, 108], [104]])]
    (x, y, weights), = piano_rolls.roll_batches(rolls, batch_size=2)  # fmt: skip
    assert x.shape == (2, 3, 88) and np.array_equal(x, y)
    np.testing.assert_array_equal(weights, [[1, 1, 1], [1, 1, 0]])
    shifts, transposed = set(), piano_rolls.roll_batches(rolls, batch_size=2, transpose=6, seed=0)
    for _ in range(30):  # a new shift each time the data is read (each epoch)
        (x, _, _), = transposed  # fmt: skip
        low = np.flatnonzero(x[0, 0])
        high = np.flatnonzero(x[1, 0])
        assert low[1] - low[0] == 9 and high[1] - high[0] == 8  # intervals kept
        assert low[0] >= 0 and high[1] <= 87  # never off the keyboard
        shifts.add(int(low[0]))
        assert int(x[0].numpy().sum()) == 6
    assert shifts <= set(range(7)) and len(shifts) >= 4  # the low chorale only goes up


def test_load_chorales(jsb_chorales_dir):
    data = piano_rolls.load_chorales(jsb_chorales_dir)
    assert [len(data[split]) for split in ("train", "valid", "test")] == [229, 76, 77]
    assert sum(len(roll) for roll in data["train"]) == 13_807
    assert sum(len(roll) for roll in data["test"]) == 4_725
    with pytest.raises(ValueError, match="resolution"):
        piano_rolls.load_chorales(jsb_chorales_dir, resolution="eighth")


@pytest.mark.integration
def test_quick_run_trains_reports_samples_and_exports(tmp_path, jsb_chorales_dir):
    flags = ["--data-dir", jsb_chorales_dir] if jsb_chorales_dir else []
    metrics = run_quick(SCRIPT, tmp_path, *flags, timeout=900)
    results = metrics["results"]
    assert set(results) == {"key_frequencies", "previous_frame_regression", "independent",
                            "note_by_note"}  # fmt: skip
    for row in results.values():
        assert 0 < row["test_nats"] < 88 * np.log(2) + 1 and 0 <= row["test_frame_accuracy"] <= 1
    assert metrics["train_minutes"] > 0 and metrics["machine"]["cpu"]
    assert len(list((tmp_path / "samples").glob("note_by_note_seed*.mid"))) == 2
    assert (tmp_path / "chorales.png").stat().st_size > 10_000
    statistics = json.loads((tmp_path / "sample_statistics.json").read_text())
    assert statistics["test"]["rolls"] == 12
    served = run_without_rnn_keras(
        "import tensorflow as tf, numpy as np\n"
        "m = tf.saved_model.load(request)\n"
        "response = m.score(np.zeros([1, 4, 88], 'float32')).numpy().tolist()",
        str(tmp_path / "export" / "chorales"),
        cwd=tmp_path,
    )
    assert np.isfinite(served).all()


@pytest.mark.integration
def test_committed_model_scores_its_model_card(jsb_chorales_dir):
    """saved_models/chorales: test nats per step as in the model card (5.1151), the SavedModel
    in a fresh process without rnn_keras, and the .keras file computing the same."""
    root = Path(__file__).resolve().parents[1] / "saved_models"
    test = piano_rolls.load_chorales(jsb_chorales_dir)["test"]
    code = (
        "import numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(request['path'])\n"
        "response = [float(m.score(np.array(r, 'float32')[None]).numpy()[0]) "
        "for r in request['rolls']]"
    )
    payload = {"path": str(root / "chorales"), "rolls": [roll.tolist() for roll in test[:20]]}
    served = np.array(run_without_rnn_keras(code, payload, cwd=root.parent))
    model = keras.saving.load_model(root / "chorales.keras")
    scores = model.score(test)
    np.testing.assert_allclose(served, scores[:20], rtol=1e-5)
    lengths = np.array([len(roll) for roll in test])
    assert float(np.sum(scores * lengths) / lengths.sum()) == pytest.approx(5.1151, abs=0.001)
