"""`FeatureWindowPreprocessor`: named raw windows `{name: (batch, time)}` to float features
`(batch, time, features)`: numeric columns normalized with missing readings imputed and
flagged, periodic columns as sin/cos, categories one-hot."""

import keras
import numpy as np

from rnn_keras.layers.preprocessing import CyclicalEncoding, ImputeMissing
from rnn_keras.models.preprocessor import Preprocessor

__all__ = ["FeatureWindowPreprocessor"]


_INPUT_DTYPES = {"numeric": "float32", "periodic": "int32", "categorical": "string"}


@keras.saving.register_keras_serializable(package="rnn_keras")
class FeatureWindowPreprocessor(Preprocessor):
    """Named raw windows `{name: (batch, time)}` -> float features `(batch, time, features)`.

    For sensor windows as they arrive: numeric columns go through a
    `Normalization` (learnt by `adapt`) and `ImputeMissing` (a missing reading,
    NaN, becomes 0, the training mean, beside a 0/1 indicator per column);
    periodic integer columns (hour, month) become `[sin, cos]` of their phase
    (`CyclicalEncoding`); categorical string columns become one-hot vectors
    (`StringLookup`, with an out-of-vocabulary slot). Columns in `unused` are
    accepted (a served model takes them) and ignored. Features, in order:
    normalized numeric, their indicators, each periodic column, each
    categorical column.

    Args:
        numeric: names of the float32 columns.
        periodic: `{name: period}` or `{name: [period, offset]}` (offset: the
            value at phase 0, e.g. 1 for months numbered from 1); int32 columns.
        categorical: `{name: vocabulary}`; string columns.
        unused: `{name: dtype}` of columns accepted and ignored.
        sequence_length: time steps per window; when set, a window of another
            length is refused (and the exported `serve` signature fixes it).
            None: any length.
        **kwargs: `name`, `dtype`.
    """

    def __init__(
        self,
        numeric=(),
        periodic=None,
        categorical=None,
        unused=None,
        sequence_length=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sequence_length = None if sequence_length is None else int(sequence_length)
        self.numeric = list(numeric)
        self.periodic = {
            name: list(spec) if isinstance(spec, list | tuple) else [spec, 0]
            for name, spec in (periodic or {}).items()
        }
        self.categorical = {name: list(values) for name, values in (categorical or {}).items()}
        self.unused = dict(unused or {})
        names = [*self.numeric, *self.periodic, *self.categorical, *self.unused]
        if not names or len(set(names)) != len(names):
            raise ValueError(
                "FeatureWindowPreprocessor: expected at least one column and distinct names. "
                f"Received: {names}"
            )
        self.normalization = None
        if self.numeric:  # built now, so a loaded preprocessor receives its statistics
            self.normalization = keras.layers.Normalization(name="normalize")
            self.normalization.build((None, len(self.numeric)))
        self.impute = ImputeMissing(0.0, name="impute_missing")
        self.encodings = [
            CyclicalEncoding(period, offset=offset, name=f"{name}_phase")
            for name, (period, offset) in self.periodic.items()
        ]
        self.lookups = [
            keras.layers.StringLookup(vocabulary=values, num_oov_indices=1, name=f"{name}_lookup")
            for name, values in self.categorical.items()
        ]

    @property
    def input_dtypes(self):
        """`{name: dtype}` of every input column, in the order of the arguments."""
        return {
            **dict.fromkeys(self.numeric, _INPUT_DTYPES["numeric"]),
            **dict.fromkeys(self.periodic, _INPUT_DTYPES["periodic"]),
            **dict.fromkeys(self.categorical, _INPUT_DTYPES["categorical"]),
            **self.unused,
        }

    @property
    def feature_size(self):
        return (
            2 * len(self.numeric)
            + 2 * len(self.periodic)
            + sum(len(values) + 1 for values in self.categorical.values())
        )

    def adapt(self, rows):
        """Learns the numeric columns' mean and variance from `rows` `(n, len(numeric))`
        (complete rows only: a row with a missing reading is left out)."""
        rows = np.asarray(rows, dtype="float32")
        if rows.ndim != 2 or rows.shape[1] != len(self.numeric):
            raise ValueError(
                f"FeatureWindowPreprocessor.adapt expects rows of the {len(self.numeric)} numeric "
                f"columns {self.numeric}. Received: shape={rows.shape}"
            )
        self.normalization.adapt(rows[~np.isnan(rows).any(axis=1)])

    def target_statistics(self, column):
        """(mean, standard deviation) that `adapt` learnt for a numeric `column`."""
        index = self.numeric.index(column)
        mean = np.asarray(self.normalization.mean).reshape(-1)[index]
        variance = np.asarray(self.normalization.variance).reshape(-1)[index]
        return float(mean), float(np.sqrt(variance))

    def is_raw(self, x):
        return isinstance(x, dict)

    def call(self, x, y=None, sample_weight=None):
        from keras import ops

        missing = sorted(set(self.input_dtypes) - set(x))
        if missing:
            raise ValueError(
                f"FeatureWindowPreprocessor: missing input columns {missing}. Expected: "
                f"{list(self.input_dtypes)}. Received: {sorted(x)}"
            )
        for name in self.input_dtypes:
            length = x[name].shape[-1] if len(x[name].shape) == 2 else None
            if None not in (length, self.sequence_length) and length != self.sequence_length:
                raise ValueError(
                    f"FeatureWindowPreprocessor: column {name!r} must hold windows of "
                    f"{self.sequence_length} steps. Received: {length} steps"
                )
        parts = []
        if self.numeric:
            numeric = ops.stack([ops.cast(x[name], "float32") for name in self.numeric], axis=-1)
            parts.append(self.impute(self.normalization(numeric)))
        for encoding, name in zip(self.encodings, self.periodic, strict=True):
            parts.append(encoding(x[name]))
        for lookup, (name, values) in zip(self.lookups, self.categorical.items(), strict=True):
            # ids, then one-hot (the lookup's own one_hot mode fails inside tf.data's map)
            parts.append(ops.one_hot(lookup(x[name]), len(values) + 1))
        features = ops.concatenate([ops.cast(part, "float32") for part in parts], axis=-1)
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    # -- serving -------------------------------------------------------------------------------

    def serving_endpoint(self, predict):
        """`(function, input_signature)` of an endpoint on named raw windows: one argument per
        column, `[None, sequence_length]` of its dtype, so the endpoint is called as
        `serve(pm25=..., hour=...)`; `predict` (the task's outputs on features) after this
        preprocessor."""
        import inspect

        import tensorflow as tf

        names = list(self.input_dtypes)

        def serve(*columns):
            return predict(self(dict(zip(names, columns, strict=True))))

        serve.__signature__ = inspect.Signature(
            [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
        )
        signature = [
            tf.TensorSpec([None, self.sequence_length], dtype, name=name)
            for name, dtype in self.input_dtypes.items()
        ]
        return serve, signature

    def litert_metadata(self):
        """What a device needs to build the features the `.tflite` file reads: this
        preprocessor's config and its normalisation statistics."""
        normalization = self.normalization
        return {
            "kind": "feature_windows",
            "features": (
                "each numeric column normalised, (x - mean) / sqrt(variance), a missing reading "
                "(NaN) 0; one 0/1 missing indicator per numeric column; [sin, cos] of each "
                "periodic column's phase 2 pi (value - offset) / period; a one-hot vector of "
                "each categorical column, its vocabulary's order from index 1 (index 0: a "
                "value outside it)"
            ),
            "preprocessor": self.get_config(),
            "mean": np.asarray(normalization.mean).reshape(-1).tolist() if normalization else [],
            "variance": (
                np.asarray(normalization.variance).reshape(-1).tolist() if normalization else []
            ),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "numeric": self.numeric,
            "periodic": self.periodic,
            "categorical": self.categorical,
            "unused": self.unused,
            "sequence_length": self.sequence_length,
        }
