"""Baselines for spoken digits that need no recurrent network: dynamic time warping with
one nearest neighbour on log-mel frames, and logistic regression on clip means; and the
confusion picture. (`experiments/speech.py` reports them beside the CTC recognizer.)"""

import time

import numpy as np

from rnn_keras.datasets.fsdd import DIGIT_WORDS
from rnn_keras.layers.audio import LogMelFrontEnd
from rnn_keras.models.speech_recognizer import SpeechRecognizer
from rnn_keras.utils.optional import import_module

__all__ = [
    "baseline_accuracies",
    "clip_features",
    "dtw_distances",
    "logistic_regression",
    "mean_log_mel",
    "nearest_neighbour_dtw",
    "plot_confusion",
]


def _frames_of_each_clip(waveforms, front_end, features, batch_size):
    """`features(front_end, batch)` (`(batch, frames, d)`) cut to each clip's real frames, a
    list of arrays; `front_end` a `LogMelFrontEnd` (the default one when None)."""

    front_end = front_end or LogMelFrontEnd()
    per_clip = []
    for start in range(0, len(waveforms), batch_size):
        batch = SpeechRecognizer.audio_batch(waveforms[start : start + batch_size])
        frames = batch["lengths"] // front_end.frame_step + 1
        values = np.asarray(features(front_end, batch))
        per_clip += [v[:n] for v, n in zip(values, frames, strict=True)]
    return per_clip


def clip_features(waveforms, front_end=None, batch_size=64):
    """Each clip's normalised log-mel frames, a list of float32 `(frames, bands)` arrays
    (`front_end`: a `rnn_keras.audio.LogMelFrontEnd`, the default one when None)."""
    return _frames_of_each_clip(waveforms, front_end, lambda layer, batch: layer(batch), batch_size)


def dtw_distances(query, templates):
    """Dynamic-time-warping distance from `query` `(n, d)` to each of `templates` (a list of
    `(m_k, d)` arrays): Euclidean frame costs, steps (1, 0), (0, 1), (1, 1), the total cost
    divided by n + m_k.

    Vectorised over the templates and along anti-diagonals (each cell needs only the two
    diagonals before it), so the Python loop runs n + m times, not n * m.
    """
    query = np.asarray(query, "float32")
    lengths = np.array([len(t) for t in templates])
    longest, n = int(lengths.max()), len(query)
    stacked = np.zeros([len(templates), longest, query.shape[1]], "float32")
    for k, template in enumerate(templates):
        stacked[k, : len(template)] = template
    squared = (
        (query**2).sum(-1)[None, :, None]
        + (stacked**2).sum(-1)[:, None, :]
        - 2.0 * np.einsum("nd,kmd->knm", query, stacked)
    )
    cost = np.sqrt(np.maximum(squared, 0.0))  # (K, n, m)
    total = np.full([len(templates), n + 1, longest + 1], np.inf)
    total[:, 0, 0] = 0.0
    for diagonal in range(2, n + longest + 1):  # cells (i, j) with i + j = diagonal
        i = np.arange(max(1, diagonal - longest), min(n, diagonal - 1) + 1)
        j = diagonal - i
        best = np.minimum(
            np.minimum(total[:, i - 1, j], total[:, i, j - 1]), total[:, i - 1, j - 1]
        )
        total[:, i, j] = cost[:, i - 1, j - 1] + best
    return total[np.arange(len(templates)), n, lengths] / (n + lengths)


def nearest_neighbour_dtw(train_features, train_labels, test_features, group=256, verbose=0):
    """The label of each test clip's nearest training clip under `dtw_distances`.

    The templates are compared in groups of similar length (`group` at a time), so short
    templates are not padded to the longest one. `verbose=1` shows a progress bar.
    """
    import keras

    train_labels = np.asarray(train_labels)
    order = np.argsort([len(t) for t in train_features], kind="stable")
    groups = [order[k : k + group] for k in range(0, len(order), group)]
    predictions = []
    progress = keras.utils.Progbar(len(test_features), verbose=verbose, unit_name="clip")
    for query in test_features:
        progress.add(1)
        distances = np.empty(len(train_features))
        for chosen in groups:
            distances[chosen] = dtw_distances(query, [train_features[k] for k in chosen])
        predictions.append(train_labels[np.argmin(distances)])
    return np.array(predictions)


def mean_log_mel(waveforms, front_end=None, batch_size=64):
    """`(clips, bands)` float32: each clip's log-mel energies (dB, before normalisation)
    averaged over its frames (`front_end`: a `LogMelFrontEnd`, the default one when None)."""
    frames = _frames_of_each_clip(
        waveforms, front_end, lambda layer, batch: layer.log_mel(batch["waveforms"]), batch_size
    )
    return np.array([f.mean(axis=0) for f in frames], "float32")


def logistic_regression(train_x, train_y, val_x, val_y, penalties=(0.0, 1e-4, 1e-3, 1e-2), seed=0):
    """A softmax regression on standardised features, its L2 penalty chosen on validation.

    Each candidate trains full-batch with Adam (500 steps, learning rate 0.05) on
    `(train_x, train_y)`, the 500 steps in compiled loops of 100 (one Python call per 100
    steps, not per step: 40x faster than 500 epochs of `fit`); the one most accurate on
    `(val_x, val_y)` is returned as `(predict, {"penalty", "val_accuracy"})`, `predict(x)`
    giving class ids.
    """
    import keras
    import tensorflow as tf

    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    classes = int(max(train_y.max(), val_y.max())) + 1
    best = None
    for penalty in penalties:
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [
                keras.Input((train_x.shape[1],)),
                keras.layers.Dense(classes, kernel_regularizer=keras.regularizers.L2(penalty)),
            ]
        )
        model.compile(
            keras.optimizers.Adam(0.05),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            steps_per_execution=100,
        )
        batch = (((train_x - mean) / std).astype("float32"), np.asarray(train_y))
        model.fit(tf.data.Dataset.from_tensors(batch).repeat(500), epochs=1, verbose=0)
        predicted = np.asarray(model((val_x - mean) / std)).argmax(axis=1)
        accuracy = float((predicted == val_y).mean())
        if best is None or accuracy > best[1]["val_accuracy"]:
            best = model, {"penalty": penalty, "val_accuracy": accuracy}
    model, chosen = best

    def predict(x):
        return np.asarray(model((x - mean) / std)).argmax(axis=1)

    return predict, chosen


def baseline_accuracies(train, validation, test, name=None, verbose=0):
    """The test accuracy of both baselines on FSDD `Recordings` splits: `{"logistic_regression",
    "logistic_regression_penalty", "dtw_1nn", "baseline_seconds"}`.

    The logistic regression (`mean_log_mel` features) is fit on `train`, its penalty chosen on
    `validation`; DTW 1-NN takes `train` and `validation` as its templates (nothing is chosen
    for it). With `verbose`, a line names the templates (and `name`, the split) and the DTW
    search shows its progress (`nearest_neighbour_dtw`).
    """
    if min(len(train), len(validation), len(test)) == 0:
        raise ValueError(
            "baseline_accuracies: every split needs recordings. Received: "
            f"train {len(train)}, validation {len(validation)}, test {len(test)}"
        )
    started = time.time()
    fit_x, val_x, test_x = (mean_log_mel(list(r.waveforms)) for r in (train, validation, test))
    predict, chosen = logistic_regression(fit_x, train.digits, val_x, validation.digits)
    regression = float((predict(test_x) == test.digits).mean())
    templates = clip_features(list(train.waveforms) + list(validation.waveforms))
    labels = np.concatenate([train.digits, validation.digits])
    if verbose:
        print(f"DTW 1-NN over {len(templates)} templates" + (f" ({name})" if name else ""))
    nearest = nearest_neighbour_dtw(
        templates, labels, clip_features(list(test.waveforms)), verbose=verbose
    )
    return {
        "logistic_regression": regression,
        "logistic_regression_penalty": chosen["penalty"],
        "dtw_1nn": float((nearest == test.digits).mean()),
        "baseline_seconds": time.time() - started,
    }


def plot_confusion(true, predicted, path, title, labels=DIGIT_WORDS):
    """A confusion matrix picture (rows: the truth; columns: the answer, "other" for an answer
    outside `labels`, e.g. an empty or two-word transcript) written to `path`."""
    matplotlib = import_module("matplotlib", feature="plot_confusion")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*labels, "other"]
    index = {name: i for i, name in enumerate(labels)}
    counts = np.zeros([len(labels), len(names)], int)
    for t, p in zip(true, predicted, strict=True):
        counts[index[t], index.get(p, len(labels))] += 1
    figure, axes = plt.subplots(figsize=(7, 6))
    axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        if count:
            colour = "white" if count > counts.max() / 2 else "black"
            axes.text(column, row, count, ha="center", va="center", color=colour, fontsize=8)
    axes.set_xticks(range(len(names)), names, rotation=45)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("transcript")
    axes.set_ylabel("spoken digit")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return counts
