"""The Free Spoken Digit Dataset (FSDD): recordings, its splits, and connected digit strings.

3,000 recordings of single spoken digits, 8 kHz mono, by six speakers (all
male), fifty repetitions of each digit each (Jakobovski et al.,
`Jakobovski/free-spoken-digit-dataset`). File `{digit}_{speaker}_{index}.wav`.

* `load_recordings(data_dir)`: every recording, as float32 waveforms in [-1, 1].
* `official_split`: the dataset's test split, indices 0-4 of every speaker and digit.
* `speaker_split`: one speaker held out (the unseen-speaker condition).
* `train_validation_test`: either split, with a validation set carved from its training
  recordings (their last repetitions).
* `digit_strings`: utterances of several digits, joined from recordings with short
  silences and a little noise, seeded (speech-to-text with CTC); `digit_string_sets`:
  training, validation and test strings, one speaker held out.
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
    "digit_string_sets",
    "digit_strings",
    "digit_words",
    "load_recordings",
    "official_split",
    "read_wav",
    "speaker_split",
    "train_validation_test",
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


def load_recordings(data_dir=None, max_repetitions=None):
    """Every FSDD recording, sorted by file name, as `Recordings`.

    Reads `data_dir/recordings/*.wav` when it is there (an offline copy), else
    downloads the repository's archive with `keras.utils.get_file` (to
    `data_dir`, or Keras's cache without it). Every file must be 8 kHz. With
    `max_repetitions` N, only repetitions 0..N-1 of each speaker and digit are kept.
    """
    if max_repetitions is not None and max_repetitions < 1:
        raise ValueError(
            "load_recordings: `max_repetitions` must be at least 1 (None: all). "
            f"Received: max_repetitions={max_repetitions}"
        )
    folder = _recordings_folder(data_dir)
    waveforms, digits, speakers, indices = [], [], [], []
    for path in sorted(folder.glob("*.wav")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            continue
        if max_repetitions is not None and int(match[3]) >= max_repetitions:
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


def train_validation_test(recordings, held_out=None, validation_repetitions=5):
    """(train, validation, test) `Recordings`: the official split, or `held_out`'s recordings
    as the test (`speaker_split`). Validation: the last `validation_repetitions` repetitions
    present (of 0..max index) of the training speakers, taken out of training."""
    if validation_repetitions < 1:
        raise ValueError(
            "train_validation_test: `validation_repetitions` must be at least 1. "
            f"Received: validation_repetitions={validation_repetitions}"
        )
    if held_out is None:
        train, test = official_split(recordings)
    else:
        train, test = speaker_split(recordings, held_out)
    last = int(recordings.indices.max()) + 1
    validation = train & (recordings.indices >= last - validation_repetitions)
    train = train & ~validation
    return recordings.subset(train), recordings.subset(validation), recordings.subset(test)


def digit_words(digits):
    """The word of each digit (0-9), e.g. `[3, 0]` -> `["three", "zero"]`."""
    digits = np.asarray(digits)
    if digits.size and not ((digits >= 0) & (digits <= 9)).all():
        raise ValueError(f"digit_words: expected digits 0-9. Received: {digits.tolist()}")
    return [DIGIT_WORDS[d] for d in digits.tolist()]


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


def digit_string_sets(recordings, held_out, train_count, eval_count):
    """Digit strings (`digit_strings`) for a model that never hears `held_out`:
    `{"train", "validation", "test_seen", "test_unseen"}`, each (waveforms, digits).

    The other speakers' recordings are split by `train_validation_test` (the
    official split, validation carved from training): `train_count` training strings
    from their training recordings, then `eval_count` strings from each of their
    validation and test recordings and from `held_out`'s recordings, seeded 1 to 4.
    """
    speakers = sorted(set(recordings.speakers.tolist()))
    if held_out not in speakers:
        raise ValueError(
            f"digit_string_sets: unknown speaker {held_out!r}. Expected one of {speakers}"
        )
    seen = recordings.subset(recordings.speakers != held_out)
    unseen = recordings.subset(recordings.speakers == held_out)
    train, validation, test = train_validation_test(seen)
    return {
        "train": digit_strings(train, train_count, seed=1),
        "validation": digit_strings(validation, eval_count, seed=2),
        "test_seen": digit_strings(test, eval_count, seed=3),
        "test_unseen": digit_strings(unseen, eval_count, seed=4),
    }
