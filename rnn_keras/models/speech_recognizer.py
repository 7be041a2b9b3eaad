"""Speech to text with CTC: `SpeechRecognizer` (raw audio in, token strings out) and `CTCLoss`.

The network: `LogMelFrontEnd` (waveforms + lengths -> masked log-mel frames)
-> a `RecurrentBackbone` (typically bidirectional) -> `Dense(len(vocabulary) + 1)`:
per frame, the logits of the blank (id 0) and of each token (ids 1..V).

Padding frames are made to emit the blank with probability 1 (their logits are
`[0, -1e4, ..., -1e4]`), so CTC over all frames of a padded batch is CTC over
each clip's real frames, and `model.fit` can use `CTCLoss` on the plain
`(logits, labels)` pair: no lengths need to reach the loss.
"""

import keras
from keras import ops

from rnn_keras.layers.audio import LogMelFrontEnd
from rnn_keras.models.backbone import RecurrentBackbone
from rnn_keras.models.task import Task
from rnn_keras.utils.optional import import_module

__all__ = [
    "CTCLoss",
    "SequenceAccuracy",
    "SpeechRecognizer",
    "edit_distance",
    "error_rates",
    "plot_transcription",
]

_NEVER = -1e4  # a logit whose probability is 0 in float32 next to a logit of 0


@keras.saving.register_keras_serializable(package="rnn_keras")
class CTCLoss(keras.losses.Loss):
    """CTC negative log-likelihood of padded label ids `(batch, L)` (0 pads; ids 1..V) given
    frame logits `(batch, T, V + 1)`, blank id 0, all T frames (padding frames must emit the
    blank, as `SpeechRecognizer`'s do). Per clip, in nats."""

    def __init__(self, name="ctc", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == 1:
            labels = labels[:, None]
        label_lengths = ops.sum(ops.cast(labels > 0, "int32"), axis=1)
        batch, frames = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
        frame_lengths = ops.full((batch,), frames, dtype="int32")
        logits = ops.cast(y_pred, "float32")
        return ops.ctc_loss(labels, logits, label_lengths, frame_lengths, mask_index=0)


def _greedy_ids(logits):
    """(batch, frames) int32: the greedy CTC path of each clip, repeats merged and blanks
    dropped, left-aligned and padded with 0."""
    batch, frames = ops.shape(logits)[0], ops.shape(logits)[1]
    lengths = ops.full((batch,), frames, dtype="int32")
    decoded, _ = ops.ctc_decode(
        ops.cast(logits, "float32"), lengths, strategy="greedy", mask_index=0
    )
    return ops.maximum(decoded[0], 0)


@keras.saving.register_keras_serializable(package="rnn_keras")
class SequenceAccuracy(keras.metrics.Mean):
    """The fraction of clips whose greedy CTC transcript equals the label ids exactly
    (labels `(batch, L)`, 0 pads; frame logits `(batch, T, V + 1)`, blank id 0)."""

    def __init__(self, name="sequence_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == 1:
            labels = labels[:, None]
        decoded = _greedy_ids(y_pred)
        width = ops.maximum(ops.shape(decoded)[1], ops.shape(labels)[1])
        decoded = ops.pad(decoded, [[0, 0], [0, width - ops.shape(decoded)[1]]])
        labels = ops.pad(labels, [[0, 0], [0, width - ops.shape(labels)[1]]])
        right = ops.all(ops.equal(decoded, labels), axis=1)
        return super().update_state(ops.cast(right, "float32"), sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def edit_distance(hypothesis, reference):
    """Levenshtein distance between two token sequences: the fewest substitutions,
    deletions and insertions that turn `reference` into `hypothesis`."""
    row = list(range(len(reference) + 1))
    for i, token in enumerate(hypothesis, start=1):
        previous, row[0] = row[:], i
        for j, expected in enumerate(reference, start=1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (token != expected))
    return row[-1]


def error_rates(hypotheses, references):
    """`{"token_error_rate", "sequence_accuracy", "errors", "tokens", "sequences"}` of
    transcripts against references (token sequences, or strings split at whitespace): the
    token error rate is the edit distance summed over the references' token count (the
    word, or digit, error rate); sequence accuracy the fraction transcribed exactly."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"error_rates: {len(hypotheses)} transcripts for {len(references)} references"
        )

    def tokens(text):
        return text.split() if isinstance(text, str) else list(text)

    pairs = [(tokens(h), tokens(r)) for h, r in zip(hypotheses, references, strict=True)]
    errors = sum(edit_distance(h, r) for h, r in pairs)
    total = sum(len(r) for _, r in pairs)
    return {
        "token_error_rate": errors / max(total, 1),
        "sequence_accuracy": sum(h == r for h, r in pairs) / max(len(pairs), 1),
        "errors": errors,
        "tokens": total,
        "sequences": len(pairs),
    }


def _resampled(waveform, factor):
    """`waveform` played `factor` times faster: linear interpolation at every `factor`-th
    sample (`len / factor` samples, at least 1)."""
    import numpy as np

    waveform = np.asarray(waveform, "float32")
    count = max(int(round(len(waveform) / factor)), 1)
    positions = np.arange(count) * factor
    return np.interp(positions, np.arange(len(waveform)), waveform).astype("float32")


@keras.saving.register_keras_serializable(package="rnn_keras")
class BlankPadding(keras.layers.Layer):
    """Frame logits `(batch, T, V + 1)` with every masked frame set to emit the blank (id 0);
    the output has no mask (a per-frame mask would reach the per-clip CTC loss)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, logits, mask=None):
        if mask is None:
            return logits
        classes = ops.shape(logits)[-1]
        blank = ops.where(ops.arange(classes) == 0, 0.0, _NEVER)
        return ops.where(mask[..., None], logits, ops.cast(blank, logits.dtype))

    def compute_mask(self, inputs, mask=None):
        return None  # every frame now counts: padding frames emit the blank


@keras.saving.register_keras_serializable(package="rnn_keras")
class SpeechRecognizer(Task):
    """Raw audio to token sequences with CTC (the guide's speech recognition).

    Inputs `{"waveforms": float32 (batch, samples) in [-1, 1], zero-padded,
    "lengths": int32 (batch,)}`; output float32 `(batch, frames, V + 1)` frame
    logits (id 0 the CTC blank, id i the token `vocabulary[i - 1]`).

    `compile()` defaults to `CTCLoss` and Adam 1e-3 with clipping; `fit` takes
    the input dict and padded label ids `(batch, L)` (0 pads), e.g. from
    `label_ids`. `transcribe(waveforms)` gives strings; `frame_probabilities`
    the per-frame posteriors for plotting.

    Args:
        backbone: a `RecurrentBackbone` on float features of `front_end`'s
            `num_mel_bins` (`input_dim`).
        vocabulary: the tokens, e.g. the ten digit words.
        separator: joins the tokens of a transcript (" " for words, "" for
            characters).
        front_end: a `LogMelFrontEnd` (default: 8 kHz, 40 bands, 10 ms frames).
        dropout: rate of `Dropout` before the output layer.
        **kwargs: `name`, `dtype`, `trainable`.
    """

    backbone_cls = RecurrentBackbone
    config_keys = ("vocabulary", "separator", "dropout")

    def __init__(self, backbone, vocabulary, separator=" ", front_end=None, dropout=0.0, **kwargs):
        self._check_backbone(backbone)
        kwargs.pop("preprocessor", None)
        vocabulary = [str(token) for token in vocabulary]
        if not vocabulary or len(set(vocabulary)) != len(vocabulary) or "" in vocabulary:
            raise ValueError(
                "SpeechRecognizer: `vocabulary` must hold distinct, non-empty tokens. "
                f"Received: {vocabulary!r}"
            )
        if isinstance(front_end, dict):
            front_end = keras.layers.deserialize(front_end)
        front_end = front_end or LogMelFrontEnd(name="front_end")
        if backbone.input_dim != front_end.feature_size:
            raise ValueError(
                "SpeechRecognizer: the backbone must read the front end's "
                f"{front_end.feature_size} features per frame. Received: "
                f"input_dim={backbone.input_dim}"
            )

        # === Layers ===
        self.backbone = backbone
        self.front_end = front_end
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.ctc_head = keras.layers.Dense(len(vocabulary) + 1, name="ctc_head")
        self.blank_padding = BlankPadding(name="blank_padding")

        # === Functional model ===
        inputs = {
            "waveforms": keras.Input((None,), name="waveforms"),
            "lengths": keras.Input((), dtype="int32", name="lengths"),
        }
        features = front_end(inputs)
        mask = front_end.compute_mask(inputs)
        x = backbone(features)  # the front end's mask reaches the recurrent layers
        logits = self.ctc_head(self.output_dropout(x))
        logits = self.blank_padding(logits, mask=mask)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.vocabulary = vocabulary
        self.separator = separator
        self.dropout = dropout
        self.preprocessor = None

    def default_loss(self):
        return CTCLoss()

    def default_metrics(self):
        return [SequenceAccuracy()]

    def dataset(self, waveforms, transcripts, batch_size=32, shuffle=False, seed=None, speed=None):
        """A `tf.data.Dataset` of `(audio_batch, label_ids)` for `fit` and `evaluate`.

        Clips are sorted by length and cut into batches of `batch_size` (little
        padding); with `shuffle`, the order of the batches changes every epoch
        (seeded by `seed` and the epoch). Shapes are dynamic, so `fit` traces
        its step once.

        `speed=(low, high)`: speed perturbation (Ko et al. 2015) for training:
        every epoch, each clip is resampled (linear interpolation) to play
        `f` times faster, `f` drawn uniformly from `[low, high]`, which shifts
        its pitch, formants and tempo together, as a different voice would.
        """
        import numpy as np
        import tensorflow as tf

        if len(waveforms) != len(transcripts):
            raise ValueError(
                f"SpeechRecognizer.dataset: {len(waveforms)} waveforms for "
                f"{len(transcripts)} transcripts"
            )
        if not len(waveforms):
            raise ValueError("SpeechRecognizer.dataset: no waveforms")
        if speed is not None and not 0 < speed[0] <= speed[1]:
            raise ValueError(
                f"SpeechRecognizer.dataset: `speed` must be (low, high) with 0 < low <= high. "
                f"Received: {speed!r}"
            )
        labels = self.label_ids(transcripts)
        order = np.argsort([len(w) for w in waveforms], kind="stable")
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        epochs = iter(range(1 << 62))

        def generate():
            rng = np.random.default_rng([seed or 0, next(epochs)])
            chosen = list(batches)
            if shuffle:
                rng.shuffle(chosen)
            for rows in chosen:
                ids = labels[rows]
                width = max(int((ids > 0).sum(axis=1).max()), 1)
                clips = [waveforms[i] for i in rows]
                if speed is not None:
                    clips = [_resampled(c, rng.uniform(*speed)) for c in clips]
                yield self.audio_batch(clips), ids[:, :width]

        signature = (
            {
                "waveforms": tf.TensorSpec([None, None], tf.float32),
                "lengths": tf.TensorSpec([None], tf.int32),
            },
            tf.TensorSpec([None, None], tf.int32),
        )
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        # A known length: `fit` shows progress against it and expects no more batches.
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))
        return dataset.prefetch(2)

    def label_ids(self, transcripts):
        """Padded int32 ids `(batch, L)` of token sequences (lists of tokens, or strings
        split at `separator`; "" splits into characters)."""
        import numpy as np

        index = {token: i + 1 for i, token in enumerate(self.vocabulary)}
        rows = []
        for transcript in transcripts:
            if isinstance(transcript, str):
                transcript = transcript.split(self.separator) if self.separator else transcript
            unknown = [t for t in transcript if str(t) not in index]
            if unknown:
                raise ValueError(
                    f"SpeechRecognizer.label_ids: tokens outside the vocabulary: {unknown}"
                )
            rows.append([index[str(t)] for t in transcript])
        ids = np.zeros([len(rows), max([len(r) for r in rows] + [1])], "int32")
        for row, values in enumerate(rows):
            ids[row, : len(values)] = values
        return ids

    @staticmethod
    def audio_batch(waveforms):
        """`{"waveforms", "lengths"}` of a list of 1-D float arrays, zero-padded.

        Raises ValueError for a clip that is not 1-D or holds NaN or Inf."""
        import numpy as np

        if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1:
            raise ValueError(
                "SpeechRecognizer: expected a list of clips (1-D arrays). Received: one 1-D "
                f"array of {len(waveforms)} samples; wrap a single clip in a list"
            )
        waveforms = [np.asarray(w, "float32") for w in waveforms]
        for index, wave in enumerate(waveforms):
            if wave.ndim != 1:
                raise ValueError(
                    f"SpeechRecognizer: clip {index} must be 1-D (samples). "
                    f"Received: shape {wave.shape}"
                )
            if not np.isfinite(wave).all():
                raise ValueError(f"SpeechRecognizer: clip {index} holds NaN or Inf samples")
        lengths = np.array([len(w) for w in waveforms], "int32")
        batch = np.zeros([len(waveforms), max([*lengths.tolist(), 1])], "float32")
        for row, wave in enumerate(waveforms):
            batch[row, : len(wave)] = wave
        return {"waveforms": batch, "lengths": lengths}

    def frame_probabilities(self, waveforms):
        """Per-frame posteriors of each clip, a list of `(frames, V + 1)` arrays (blank first)."""
        inputs = self.audio_batch(waveforms)
        logits = self(inputs, training=False)
        probabilities = ops.convert_to_numpy(ops.softmax(logits, axis=-1))
        frames = inputs["lengths"] // self.front_end.frame_step + 1
        return [p[:n] for p, n in zip(probabilities, frames, strict=True)]

    def decode_ids(self, logits, beam_width=1):
        """Token ids per clip from frame logits: greedy (`beam_width=1`) or beam CTC decoding."""
        import numpy as np

        batch, frames = ops.shape(logits)[0], ops.shape(logits)[1]
        lengths = ops.full((batch,), frames, dtype="int32")
        strategy = "greedy" if beam_width == 1 else "beam_search"
        decoded, _ = ops.ctc_decode(
            ops.cast(logits, "float32"),
            lengths,
            strategy=strategy,
            beam_width=beam_width,
            mask_index=0,
        )
        ids = ops.convert_to_numpy(decoded[0])
        return [row[row > 0] for row in np.asarray(ids)]

    def transcribe(self, waveforms, beam_width=1, batch_size=32):
        """Transcripts of a list of clips (1-D float arrays at the front end's rate)."""
        transcripts = []
        for start in range(0, len(waveforms), batch_size):
            logits = self(self.audio_batch(waveforms[start : start + batch_size]), training=False)
            for ids in self.decode_ids(logits, beam_width):
                tokens = [self.vocabulary[i - 1] for i in ids]
                transcripts.append(self.separator.join(tokens))
        return transcripts

    def has_serving_endpoints(self):
        return True  # raw audio in: the front end is part of the network

    def serving_endpoints(self):
        """The SavedModel's endpoint: `transcribe(waveforms: float32 [None, None], lengths:
        int32 [None])` -> string `[None]`: greedy CTC transcripts, tokens joined by the
        task's separator (the digit words with spaces for `experiments/speech.py`).

        Row i is read up to `lengths[i]` samples (what follows is ignored); amplitude
        does not matter (the features are normalised per clip, so int16-range values
        give the transcript of the same clip in [-1, 1]). A zero-length clip gives "", a
        zero-size batch `[0]` strings. Refused with an InvalidArgumentError that says
        which: NaN or Inf among a clip's samples, negative lengths, lengths longer than
        the array, or not one length per row.
        """
        import tensorflow as tf

        recognizer = self
        tokens = tf.constant(["", *recognizer.vocabulary])  # id 0 is the blank
        shortest = recognizer.front_end.frame_length  # samples the transform needs in a row

        def transcribe(waveforms, lengths):
            rows, samples = tf.shape(waveforms)[0], tf.shape(waveforms)[1]
            checks = [
                tf.debugging.assert_equal(
                    tf.shape(lengths)[0], rows,
                    message="transcribe: expected one length per waveform row",
                ),
                tf.debugging.assert_non_negative(
                    lengths, message="transcribe: lengths must be >= 0"
                ),
                tf.debugging.assert_less_equal(
                    lengths, samples,
                    message="transcribe: a length is longer than the waveforms array (samples)",
                ),
            ]  # fmt: skip
            with tf.control_dependencies(checks):
                inside = tf.range(samples)[None, :] < lengths[:, None]
                waveforms = tf.where(inside, waveforms, 0.0)  # what follows a clip is ignored
            finite = tf.debugging.assert_all_finite(
                waveforms, "transcribe: NaN or Inf among a clip's samples"
            )
            with tf.control_dependencies([finite]):
                waveforms = tf.pad(waveforms, [[0, 0], [0, tf.maximum(shortest - samples, 0)]])

            def run():
                logits = recognizer({"waveforms": waveforms, "lengths": lengths}, training=False)
                ids = _greedy_ids(logits)
                words = tf.gather(tokens, tf.ragged.boolean_mask(ids, ids > 0))
                text = tf.strings.reduce_join(words, axis=1, separator=recognizer.separator)
                return tf.where(lengths > 0, text, "")

            return tf.cond(rows > 0, run, lambda: tf.zeros([0], tf.string))

        signature = [
            tf.TensorSpec([None, None], tf.float32, name="waveforms"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
        ]
        return {"transcribe": (transcribe, signature)}

    def get_config(self):
        return {**super().get_config(), "front_end": keras.layers.serialize(self.front_end)}


def plot_transcription(recognizer, waveform, path=None, title=None):
    """One clip as a picture: the waveform, the log-mel frames the network reads, and the CTC
    posteriors per frame (the blank dashed); the greedy transcript in the title. Writes
    `path` when given; returns the matplotlib figure."""
    matplotlib = import_module("matplotlib", feature="plot_transcription")

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    waveform = np.asarray(waveform, "float32")
    batch = recognizer.audio_batch([waveform])
    features = np.asarray(recognizer.front_end(batch))[0]
    probabilities = recognizer.frame_probabilities([waveform])[0]
    frames = len(probabilities)
    seconds = recognizer.front_end.frame_step / recognizer.front_end.sample_rate
    transcript = recognizer.transcribe([waveform])[0]
    figure, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    axes[0].plot(np.arange(len(waveform)) / recognizer.front_end.sample_rate, waveform, lw=0.5)
    axes[0].set_ylabel("amplitude")
    axes[1].imshow(
        features[:frames].T, origin="lower", aspect="auto", cmap="magma",
        extent=[0, frames * seconds, 0, features.shape[1]],
    )  # fmt: skip
    axes[1].set_ylabel("mel band")
    time = np.arange(frames) * seconds
    axes[2].plot(time, probabilities[:, 0], "k--", lw=1, label="blank")
    for token, column in zip(recognizer.vocabulary, probabilities[:, 1:].T, strict=True):
        if column.max() > 0.1:
            axes[2].plot(time, column, lw=1.5, label=token)
    axes[2].set_ylim(0, 1.02)
    axes[2].set_ylabel("CTC posterior")
    axes[2].set_xlabel("seconds")
    axes[2].legend(loc="upper right", fontsize=8, ncol=6)
    figure.suptitle(f"{title + ': ' if title else ''}transcript {transcript!r}")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
        plt.close(figure)
    return figure
