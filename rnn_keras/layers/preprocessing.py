"""Preprocessing layers for sensor time series, to put inside an exported model.

A SavedModel that serves raw sensor windows has to cope with what sensors
send: missing readings (NaN) and calendar fields. These layers do it in the
graph, with `keras.ops`, so the exported model needs no Python of ours.
"""

import math

import keras
from keras import ops

__all__ = ["ImputeMissing", "CyclicalEncoding"]


@keras.saving.register_keras_serializable(package="rnn_keras")
class ImputeMissing(keras.layers.Layer):
    """Missing readings (NaN, and infinities) replaced by `fill_value`, plus an indicator.

    `(..., features)` -> `(..., 2 * features)`: the readings with every
    non-finite value replaced by `fill_value`, then one 0/1 indicator per
    feature, 1 where the reading was missing. After a `Normalization`,
    `fill_value=0` imputes the training mean; the indicator lets the model tell
    an imputed value from a real one.

    Args:
        fill_value: the value that replaces a missing reading.
    """

    def __init__(self, fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.fill_value = float(fill_value)

    def call(self, inputs):
        missing = ops.logical_not(ops.isfinite(inputs))
        filled = ops.where(missing, ops.full_like(inputs, self.fill_value), inputs)
        return ops.concatenate([filled, ops.cast(missing, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        features = None if input_shape[-1] is None else 2 * input_shape[-1]
        return (*input_shape[:-1], features)

    def get_config(self):
        return {**super().get_config(), "fill_value": self.fill_value}


@keras.saving.register_keras_serializable(package="rnn_keras")
class CyclicalEncoding(keras.layers.Layer):
    """A periodic integer (hour of day, month, ...) as `[sin, cos]` of its phase.

    `(...)` -> `(..., 2)`: `[sin(2 pi (x - offset) / period), cos(...)]`, so that
    the last value of a cycle sits next to the first (hour 23 beside hour 0).

    Args:
        period: the length of the cycle (24 for hours, 12 for months).
        offset: the value at phase 0 (1 for months numbered from 1).
    """

    def __init__(self, period, offset=0, **kwargs):
        super().__init__(**kwargs)
        if not period > 0:
            raise ValueError(
                f"CyclicalEncoding: `period` must be positive. Received: period={period!r}"
            )
        self.period = period
        self.offset = offset

    def call(self, inputs):
        phase = (ops.cast(inputs, self.compute_dtype) - self.offset) * (2 * math.pi / self.period)
        return ops.stack([ops.sin(phase), ops.cos(phase)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape, 2)

    def get_config(self):
        return {**super().get_config(), "period": self.period, "offset": self.offset}
