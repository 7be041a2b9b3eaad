"""Piano rolls: JSB Chorales, training batches, MIDI files, pictures, statistics, baselines.

A roll is float32 `(time, 88)`: column `p - 21` is 1 while MIDI pitch `p`
(21-108, the piano's keys) sounds during a time step. At the quarter-note
resolution of the published JSB Chorales figures, held and repeated notes look
the same (the data does not tell them apart).
"""

import json
from pathlib import Path

import numpy as np

__all__ = [
    "LOWEST_PITCH",
    "NUM_KEYS",
    "load_chorales",
    "to_roll",
    "to_pitches",
    "roll_batches",
    "write_midi",
    "plot_rolls",
    "roll_statistics",
    "frame_accuracy",
    "independent_nll",
    "key_frequencies",
    "previous_frame_regression",
]

LOWEST_PITCH, NUM_KEYS = 21, 88
DATA_URL = "https://raw.githubusercontent.com/czhuang/JSB-Chorales-dataset/master/"
SPLITS = ("train", "valid", "test")
RESOLUTIONS = ("quarter", "8th", "16th")


def load_chorales(data_dir=None, resolution="quarter"):
    """JSB Chorales with the split of Boulanger-Lewandowski et al. (2012): `{"train",
    "valid", "test"}` -> lists of rolls (229 / 76 / 77 chorales at quarter notes).

    Reads `jsb-chorales-<resolution>.json` from `data_dir` when it is there,
    else downloads it there (or to Keras's cache without `data_dir`) with
    `keras.utils.get_file` from czhuang/JSB-Chorales-dataset.
    """
    import keras

    if resolution not in RESOLUTIONS:
        raise ValueError(
            f"load_chorales: `resolution` must be one of {RESOLUTIONS}. "
            f"Received: resolution={resolution!r}"
        )
    name = f"jsb-chorales-{resolution}.json"
    where = {"cache_dir": str(data_dir), "cache_subdir": ""} if data_dir else {}
    path = keras.utils.get_file(name, DATA_URL + name, **where)
    data = json.loads(Path(path).read_text())
    return {split: [to_roll(chorale) for chorale in data[split]] for split in SPLITS}


def to_roll(steps):
    """A roll from a list of time steps, each the list of MIDI pitches sounding."""
    roll = np.zeros([len(steps), NUM_KEYS], "float32")
    for t, pitches in enumerate(steps):
        keys = np.asarray(pitches, dtype="int64") - LOWEST_PITCH
        if keys.size and (keys.min() < 0 or keys.max() >= NUM_KEYS):
            raise ValueError(
                f"to_roll: pitches must be MIDI 21-108 (the piano). Received at step {t}: "
                f"{list(pitches)}"
            )
        roll[t, keys] = 1.0
    return roll


def to_pitches(roll):
    """The MIDI pitches sounding at each step of `roll`, a list of lists."""
    return [(np.flatnonzero(frame) + LOWEST_PITCH).tolist() for frame in np.asarray(roll)]


def roll_batches(rolls, batch_size=16, shuffle=False, transpose=0, seed=None):
    """A tf.data of `(rolls, rolls, weights)` for `PolyphonicModel.fit`/`evaluate`.

    Rolls are padded with silence to the longest of their batch; `weights`
    `(batch, time)` is 1 on real steps, 0 on padding. `transpose` > 0 shifts
    every roll (each time it is read) by a random whole number of semitones in
    [-transpose, transpose], never pushing a note off the keyboard; use it on
    training data only.
    """
    import tensorflow as tf

    lengths = [len(roll) for roll in rolls]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(rolls), output_signature=tf.TensorSpec([None, NUM_KEYS], tf.float32)
    ).apply(tf.data.experimental.assert_cardinality(len(lengths)))
    if shuffle:
        dataset = dataset.shuffle(len(lengths), seed=seed, reshuffle_each_iteration=True)
    if transpose:  # a new draw per roll and epoch (reproducible for a given `seed`)
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(dataset, draws).map(
            lambda roll, draw: _transposed(roll, transpose, draw)
        )
    dataset = dataset.map(lambda roll: (roll, tf.ones(tf.shape(roll)[:1])))
    dataset = dataset.padded_batch(batch_size)
    return dataset.map(lambda roll, weights: (roll, roll, weights)).prefetch(tf.data.AUTOTUNE)


def _transposed(roll, most, draw):
    import tensorflow as tf

    sounding = tf.where(tf.reduce_any(roll > 0, axis=0))[:, 0]
    low = tf.cast(tf.reduce_min(tf.concat([sounding, [NUM_KEYS]], 0)), tf.int32)
    high = tf.cast(tf.reduce_max(tf.concat([sounding, [-1]], 0)), tf.int32)
    down = tf.minimum(most, low)
    up = tf.maximum(tf.minimum(most, NUM_KEYS - 1 - high), 0)
    shift = tf.cast(draw % tf.cast(up + down + 1, tf.int64), tf.int32) - down
    return tf.roll(roll, shift, axis=1)


def write_midi(roll, path, beats_per_minute=80, program=19, velocity=80):
    """Writes `roll` as a standard MIDI file (one track), one quarter note per time step.

    A key that sounds on consecutive steps is one held note (the quarter-note
    data does not tell held from repeated notes). `program` is the General MIDI
    instrument, 0-based (19: church organ).
    """
    import mido

    roll = np.asarray(roll) > 0
    ticks = 480
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(beats_per_minute)))
    track.append(mido.Message("program_change", program=program, time=0))
    padded = np.concatenate([np.zeros([1, NUM_KEYS], bool), roll, np.zeros([1, NUM_KEYS], bool)])
    waited = 0
    for t in range(1, len(padded)):
        for key in np.flatnonzero(padded[t - 1] & ~padded[t]):
            track.append(mido.Message("note_off", note=int(key) + LOWEST_PITCH, time=waited))
            waited = 0
        for key in np.flatnonzero(padded[t] & ~padded[t - 1]):
            track.append(
                mido.Message(
                    "note_on", note=int(key) + LOWEST_PITCH, velocity=velocity, time=waited
                )
            )
            waited = 0
        waited += ticks
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(ticks_per_beat=ticks)
    midi.tracks.append(track)
    midi.save(str(path))
    return Path(path)


def plot_rolls(rolls, path, titles=None):
    """One piano-roll picture per roll (time across, pitch up), stacked, written to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rolls = [np.asarray(roll) for roll in rolls]
    sounding = np.flatnonzero(np.concatenate(rolls).any(axis=0))
    low, high = (sounding.min(), sounding.max()) if sounding.size else (0, NUM_KEYS - 1)
    figure, axes = plt.subplots(len(rolls), 1, figsize=(10, 2.2 * len(rolls)), squeeze=False)
    for index, (axis, roll) in enumerate(zip(axes[:, 0], rolls, strict=True)):
        axis.imshow(
            roll[:, low : high + 1].T,
            origin="lower",
            aspect="auto",
            cmap="Greys",
            interpolation="nearest",
            extent=(0, len(roll), low + LOWEST_PITCH - 0.5, high + LOWEST_PITCH + 0.5),
        )
        axis.set_ylabel("MIDI pitch")
        if titles:
            axis.set_title(titles[index], fontsize=9)
    axes[-1, 0].set_xlabel("time step (quarter note)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def roll_statistics(rolls):
    """Summary figures of a set of rolls, for comparing generated music with real music.

    notes_per_frame (mean), silent_frames and four_note_frames (shares),
    lowest_pitch and highest_pitch (the bass and soprano registers: mean, 5th
    and 95th percentile over sounding frames), repeated_frames (share of
    frames equal to the one before), distinct_pitches (mean per roll), voices
    (bass, tenor, alto, soprano: the four pitches of each four-note frame, low
    to high, with the same figures).
    """
    frames = np.concatenate([np.asarray(roll) for roll in rolls]) > 0
    counts = frames.sum(axis=1)
    sounding = frames[counts > 0]
    lowest = sounding.argmax(axis=1) + LOWEST_PITCH
    highest = NUM_KEYS - 1 - sounding[:, ::-1].argmax(axis=1) + LOWEST_PITCH
    repeats = [np.all(r[1:] == r[:-1], axis=1) for r in (np.asarray(x) > 0 for x in rolls)]

    four = sounding[sounding.sum(axis=1) == 4]
    voices = np.sort(np.nonzero(four)[1].reshape(-1, 4), axis=1) + LOWEST_PITCH

    def register(pitches):
        return {
            "mean": float(pitches.mean()) if pitches.size else float("nan"),
            "p5": float(np.percentile(pitches, 5)) if pitches.size else float("nan"),
            "p95": float(np.percentile(pitches, 95)) if pitches.size else float("nan"),
        }

    return {
        "rolls": len(rolls),
        "frames": int(len(frames)),
        "notes_per_frame": float(counts.mean()),
        "silent_frames": float(np.mean(counts == 0)),
        "four_note_frames": float(np.mean(counts == 4)),
        "lowest_pitch": register(lowest),
        "highest_pitch": register(highest),
        "repeated_frames": float(np.mean(np.concatenate(repeats))) if repeats else float("nan"),
        "distinct_pitches": float(np.mean([np.asarray(r).any(axis=0).sum() for r in rolls])),
        "voices": {
            voice: register(voices[:, index])
            for index, voice in enumerate(("bass", "tenor", "alto", "soprano"))
        },
    }


def frame_accuracy(true_rolls, predicted_rolls):
    """Frame-level accuracy of Bay et al. (2009): `TP / (TP + FP + FN)`, summed over all
    frames of all rolls (a pair of silent frames counts nothing)."""
    true = np.concatenate([np.asarray(r) for r in true_rolls]) > 0
    predicted = np.concatenate([np.asarray(r) for r in predicted_rolls]) > 0
    if true.shape != predicted.shape:
        raise ValueError(
            f"frame_accuracy: the rolls must match. Received: {true.shape} true frames, "
            f"{predicted.shape} predicted"
        )
    hits = np.sum(true & predicted)
    return float(hits / max(1, np.sum(true | predicted)))


def independent_nll(rolls, probabilities):
    """Nats per time step (over all frames of `rolls`) of independent notes with
    `probabilities` `(keys,)` for every frame, or `(time, keys)` per roll in a list."""
    total, steps = 0.0, 0
    for index, roll in enumerate(rolls):
        p = probabilities[index] if isinstance(probabilities, list) else probabilities
        p = np.clip(np.asarray(p, "float64"), 1e-7, 1 - 1e-7)
        total += float(-np.sum(roll * np.log(p) + (1 - roll) * np.log1p(-p)))
        steps += len(roll)
    return total / steps


def key_frequencies(rolls, smoothing=1.0):
    """Each key's share of sounding steps in `rolls`, add-`smoothing` (Laplace) estimated:
    the independent-notes baseline's probabilities `(keys,)`."""
    frames = np.concatenate([np.asarray(r) for r in rolls])
    return (frames.sum(axis=0) + smoothing) / (len(frames) + 2 * smoothing)


def previous_frame_regression(train_rolls, valid_rolls, epochs=200, seed=0):
    """The baseline of a logistic regression per key on the previous frame (a silent frame
    before the first): a `keras.Sequential` of one `Dense(88, sigmoid)`, trained with Adam
    until the validation loss stops improving (patience 5, best weights kept).

    Returns `(model, probabilities)` where `probabilities(rolls)` lists each roll's
    `(time, keys)` probabilities.
    """
    import keras

    def pairs(rolls):
        previous = [np.concatenate([np.zeros([1, NUM_KEYS], "float32"), r[:-1]]) for r in rolls]
        return np.concatenate(previous), np.concatenate(rolls)

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((NUM_KEYS,)), keras.layers.Dense(NUM_KEYS, "sigmoid")])
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    stop = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    model.fit(
        *pairs(train_rolls),
        validation_data=pairs(valid_rolls),
        epochs=epochs,
        batch_size=256,
        callbacks=[stop],
        verbose=0,
    )

    def probabilities(rolls):
        return [model.predict(pairs([roll])[0], verbose=0) for roll in rolls]

    return model, probabilities
