"""Piano rolls: JSB Chorales, training batches, MIDI files and pictures.

A roll is float32 `(time, 88)`: column `p - 21` is 1 while MIDI pitch `p`
(21-108, the piano's keys) sounds during a time step. At the quarter-note
resolution of the published JSB Chorales figures, held and repeated notes look
the same (the data does not tell them apart).
"""

import json
from pathlib import Path

import numpy as np

from rnn_keras.utils.optional import import_module

__all__ = [
    "LOWEST_PITCH",
    "NUM_KEYS",
    "load_chorales",
    "to_roll",
    "to_pitches",
    "roll_batches",
    "write_midi",
    "plot_rolls",
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
    mido = import_module("mido", feature="write_midi")

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
    matplotlib = import_module("matplotlib", feature="plot_rolls")

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
