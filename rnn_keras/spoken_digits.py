"""The Free Spoken Digit Dataset (FSDD): recordings, its splits, and connected digit strings.

3,000 recordings of single spoken digits, 8 kHz mono, by six speakers (all
male), fifty repetitions of each digit each (Jakobovski et al.,
`Jakobovski/free-spoken-digit-dataset`). File `{digit}_{speaker}_{index}.wav`.

* `load_recordings(data_dir)`: every recording, as float32 waveforms in [-1, 1].
* `official_split`: the dataset's test split, indices 0-4 of every speaker and digit.
* `speaker_split`: one speaker held out (the unseen-speaker condition).
* `digit_strings`: utterances of several digits, joined from recordings with short
  silences and a little noise, seeded (speech-to-text with CTC).
"""

import re
import wave
from pathlib import Path

import numpy as np

__all__ = [
    "ARCHIVE_URL",
    "DIGIT_WORDS",
    "SAMPLE_RATE",
    "SPEAKERS",
    "Recordings",
    "clip_features",
    "digit_strings",
    "dtw_distances",
    "logistic_regression",
    "mean_log_mel",
    "nearest_neighbour_dtw",
    "plot_confusion",
    "load_recordings",
    "official_split",
    "read_wav",
    "speaker_split",
]

SAMPLE_RATE = 8000
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMIT = "26eb9aa"  # the version of ../shared/data/fsdd
ARCHIVE_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{COMMIT}.tar.gz"
_FILE_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def read_wav(path):
    """A 16-bit PCM WAV file (first channel) as float32 samples in [-1, 1) and its rate."""
    with wave.open(str(path)) as file:
        if file.getsampwidth() != 2:
            raise ValueError(
                f"read_wav: {path} must hold 16-bit PCM samples. Received: "
                f"{8 * file.getsampwidth()}-bit"
            )
        frames = file.readframes(file.getnframes())
        channels, rate = file.getnchannels(), file.getframerate()
    samples = np.frombuffer(frames, "<i2").reshape(-1, channels)[:, 0]
    return samples.astype("float32") / 32768.0, rate


class Recordings:
    """FSDD's recordings: `waveforms` (a list of float32 arrays) and, per recording,
    `digits` (int), `speakers` (str) and `indices` (the repetition, 0-49) as arrays."""

    def __init__(self, waveforms, digits, speakers, indices):
        self.waveforms = list(waveforms)
        self.digits = np.asarray(digits, "int32")
        self.speakers = np.asarray(speakers)
        self.indices = np.asarray(indices, "int32")
        sizes = {len(self.waveforms), len(self.digits), len(self.speakers), len(self.indices)}
        if len(sizes) != 1:
            raise ValueError(f"Recordings: every field needs one entry per recording: {sizes}")

    def __len__(self):
        return len(self.waveforms)

    def subset(self, selection):
        """The recordings where the boolean `selection` is True (or at its indices)."""
        chosen = np.arange(len(self))[selection]
        return Recordings(
            [self.waveforms[i] for i in chosen],
            self.digits[chosen],
            self.speakers[chosen],
            self.indices[chosen],
        )

    def lengths(self):
        return np.array([len(w) for w in self.waveforms], "int32")


def _recordings_folder(data_dir):
    """`data_dir/recordings` when it is there, else the downloaded archive's (Keras's cache,
    or `data_dir`)."""
    import keras

    if data_dir is not None and (Path(data_dir) / "recordings").is_dir():
        return Path(data_dir) / "recordings"
    where = {"cache_dir": str(data_dir), "cache_subdir": ""} if data_dir else {}
    extracted = keras.utils.get_file(
        f"free-spoken-digit-dataset-{COMMIT}.tar.gz", ARCHIVE_URL, extract=True, **where
    )
    found = sorted(Path(extracted).parent.glob("**/recordings"))
    if not found:
        raise FileNotFoundError(f"No recordings/ folder in the FSDD archive at {extracted}")
    return found[0]


def load_recordings(data_dir=None):
    """Every FSDD recording, sorted by file name, as `Recordings`.

    Reads `data_dir/recordings/*.wav` when it is there (an offline copy), else
    downloads the repository's archive with `keras.utils.get_file` (to
    `data_dir`, or Keras's cache without it). Every file must be 8 kHz.
    """
    folder = _recordings_folder(data_dir)
    waveforms, digits, speakers, indices = [], [], [], []
    for path in sorted(folder.glob("*.wav")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            continue
        samples, rate = read_wav(path)
        if rate != SAMPLE_RATE:
            raise ValueError(f"load_recordings: {path} is at {rate} Hz, expected {SAMPLE_RATE}")
        waveforms.append(samples)
        digits.append(int(match[1]))
        speakers.append(match[2])
        indices.append(int(match[3]))
    if not waveforms:
        raise FileNotFoundError(
            f"load_recordings: no {{digit}}_{{speaker}}_{{index}}.wav in {folder}"
        )
    return Recordings(waveforms, digits, speakers, indices)


def official_split(recordings):
    """(train, test) boolean masks: the dataset's test split is repetitions 0-4 of every
    speaker and digit (300 of 3,000)."""
    test = recordings.indices < 5
    return ~test, test


def speaker_split(recordings, speaker):
    """(train, test) boolean masks with `speaker`'s recordings held out."""
    if speaker not in set(recordings.speakers.tolist()):
        raise ValueError(
            f"speaker_split: unknown speaker {speaker!r}. Expected one of "
            f"{sorted(set(recordings.speakers.tolist()))}"
        )
    test = recordings.speakers == speaker
    return ~test, test


def digit_strings(
    recordings,
    count,
    seed,
    min_digits=1,
    max_digits=7,
    silence_seconds=(0.05, 0.3),
    noise_level=0.003,
):
    """`count` connected digit strings built from `recordings`, seeded.

    Each string has a number of digits drawn uniformly from `min_digits` to
    `max_digits`; each digit is a recording drawn at random (with its own
    digit); the recordings are joined with silences of a duration drawn
    uniformly from `silence_seconds` (also before the first and after the
    last), and Gaussian noise of standard deviation `noise_level` is added to
    the whole, then clipped to [-1, 1].

    Returns:
        (waveforms, labels): a list of float32 arrays and a list of int32
        arrays (the digits spoken, in order).
    """
    if not 1 <= min_digits <= max_digits:
        raise ValueError(
            "digit_strings: expected 1 <= min_digits <= max_digits. Received: "
            f"min_digits={min_digits}, max_digits={max_digits}"
        )
    if len(recordings) == 0:
        raise ValueError("digit_strings: no recordings to build strings from")
    rng = np.random.default_rng(seed)
    low, high = (int(s * SAMPLE_RATE) for s in silence_seconds)
    waveforms, labels = [], []
    for _ in range(count):
        chosen = rng.integers(0, len(recordings), size=rng.integers(min_digits, max_digits + 1))
        parts = [np.zeros(rng.integers(low, high + 1), "float32")]
        for i in chosen:
            parts += [recordings.waveforms[i], np.zeros(rng.integers(low, high + 1), "float32")]
        audio = np.concatenate(parts)
        audio = audio + rng.normal(0.0, noise_level, size=audio.shape).astype("float32")
        waveforms.append(np.clip(audio, -1.0, 1.0).astype("float32"))
        labels.append(recordings.digits[chosen].astype("int32"))
    return waveforms, labels


# --- baselines ------------------------------------------------------------------------------


def _frames_of_each_clip(waveforms, front_end, features, batch_size):
    """`features(front_end, batch)` (`(batch, frames, d)`) cut to each clip's real frames, a
    list of arrays; `front_end` a `LogMelFrontEnd` (the default one when None)."""
    from rnn_keras.audio import LogMelFrontEnd
    from rnn_keras.speech import SpeechRecognizer

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
    `(train_x, train_y)`; the one most accurate on `(val_x, val_y)` is returned as
    `(predict, {"penalty", "val_accuracy"})`, `predict(x)` giving class ids.
    """
    import keras

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
        )
        model.fit((train_x - mean) / std, train_y, batch_size=len(train_x), epochs=500, verbose=0)
        predicted = np.asarray(model((val_x - mean) / std)).argmax(axis=1)
        accuracy = float((predicted == val_y).mean())
        if best is None or accuracy > best[1]["val_accuracy"]:
            best = model, {"penalty": penalty, "val_accuracy": accuracy}
    model, chosen = best

    def predict(x):
        return np.asarray(model((x - mean) / std)).argmax(axis=1)

    return predict, chosen


def plot_confusion(true, predicted, path, title, labels=DIGIT_WORDS):
    """A confusion matrix picture (rows: the truth; columns: the answer, "other" for an answer
    outside `labels`, e.g. an empty or two-word transcript) written to `path`."""
    import matplotlib

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
