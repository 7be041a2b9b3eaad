"""Music baselines and statistics: how generated rolls compare with real ones, frame
accuracy, and the note-independent and previous-frame models the polyphonic network is
measured against."""

import numpy as np

from rnn_keras.datasets.chorales import LOWEST_PITCH, NUM_KEYS

__all__ = [
    "roll_statistics",
    "frame_accuracy",
    "independent_nll",
    "key_frequencies",
    "previous_frame_regression",
]


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
