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

from rnn_keras.audio import LogMelFrontEnd
from rnn_keras.models import RecurrentBackbone, _Task

__all__ = ["CTCLoss", "SpeechRecognizer"]

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
class SpeechRecognizer(_Task):
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
        if backbone.input_dim != front_end.num_mel_bins:
            raise ValueError(
                "SpeechRecognizer: the backbone must read the front end's "
                f"{front_end.num_mel_bins} mel bands. Received: input_dim={backbone.input_dim}"
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
        """`{"waveforms", "lengths"}` of a list of 1-D float arrays, zero-padded."""
        import numpy as np

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

    def get_config(self):
        return {**super().get_config(), "front_end": keras.layers.serialize(self.front_end)}
