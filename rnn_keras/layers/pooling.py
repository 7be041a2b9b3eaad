"""Pooling a masked sequence into one vector, and splitting a bidirectional sequence's
features into its two directions."""

import keras
from keras import ops

__all__ = ["MaskedGlobalPooling1D", "SplitDirections"]

_POOLINGS = ("last", "mean", "max")


@keras.saving.register_keras_serializable(package="rnn_keras")
class MaskedGlobalPooling1D(keras.layers.Layer):
    """A sequence `(batch, time, features)` pooled into `(batch, features)`, masks respected.

    Modes:
    * "last": the final output of the recurrent layer that made the sequence:
      the output at the last unmasked step; with `bidirectional=True`, the
      second half of the features (the backward direction, returned in
      reading order) at the first unmasked step instead. (Inside
      `Bidirectional`, masked steps output zeros, so the mask is needed.)
    * "mean": the mean over unmasked steps; a sequence with no unmasked step
      pools to zeros, not NaN (unlike `keras.layers.GlobalAveragePooling1D`).
    * "max": the max over unmasked steps (padded steps, zeros inside
      `Bidirectional`, do not take part, unlike `keras.layers.GlobalMaxPooling1D`).

    Args:
        mode: "last", "mean" or "max".
        bidirectional: whether the features are `[forward, backward]` halves
            (only changes "last").
    """

    def __init__(self, mode="max", bidirectional=False, **kwargs):
        if mode not in _POOLINGS:
            raise ValueError(
                f"MaskedGlobalPooling1D: `mode` must be one of {_POOLINGS}. Received: mode={mode!r}"
            )
        super().__init__(**kwargs)
        self.mode = mode
        self.bidirectional = bidirectional
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if self.mode == "last":
            if mask is None:
                last = inputs[:, -1]
                if self.bidirectional:
                    forward, backward = ops.split(inputs, 2, axis=-1)
                    last = ops.concatenate([forward[:, -1], backward[:, 0]], axis=-1)
                return last
            last = _at_step(inputs, _last_step(mask))
            if not self.bidirectional:
                return last
            first = _at_step(inputs, ops.argmax(ops.cast(mask, "int32"), axis=1))
            forward, _ = ops.split(last, 2, axis=-1)
            _, backward = ops.split(first, 2, axis=-1)
            return ops.concatenate([forward, backward], axis=-1)
        if mask is None:
            return ops.max(inputs, axis=1) if self.mode == "max" else ops.mean(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        count = ops.sum(ops.cast(keep, inputs.dtype), axis=1)
        if self.mode == "mean":
            total = ops.sum(ops.where(keep, inputs, ops.zeros_like(inputs)), axis=1)
            return total / ops.maximum(count, 1)
        lowest = ops.full_like(inputs, float("-inf"))
        pooled = ops.max(ops.where(keep, inputs, lowest), axis=1)
        return ops.where(count > 0, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "bidirectional": self.bidirectional}


def _last_step(mask):
    """Index of each row's last unmasked step (0 for a row with none)."""
    steps = ops.shape(mask)[1]
    reversed_mask = ops.flip(ops.cast(mask, "int32"), axis=1)
    return steps - 1 - ops.argmax(reversed_mask, axis=1)


def _at_step(inputs, step):
    """`inputs[b, step[b]]` for every row b."""
    index = ops.reshape(ops.cast(step, "int32"), (-1, 1, 1))
    return ops.take_along_axis(inputs, index, axis=1)[:, 0]


@keras.saving.register_keras_serializable(package="rnn_keras")
class SplitDirections(keras.layers.Layer):
    """`[forward, backward]`: the two halves of a bidirectional sequence's features."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.split(inputs, 2, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return [mask, mask]

    def compute_output_shape(self, input_shape):
        half = None if input_shape[-1] is None else input_shape[-1] // 2
        return [(*input_shape[:-1], half)] * 2
