"""One recurrent backbone and the task models built on it, in the manner of keras-hub.

`RecurrentBackbone` is the encoder: token ids (or float features) -> optional
`Embedding` -> stacked, optionally bidirectional rnn_keras layers -> the
sequence of the last layer's outputs. A task wraps a backbone object and adds a
head: `SequenceClassifier` and `SequenceRegressor` pool the sequence into one
vector; `LanguageModel` predicts the next token at every step (the guide's
`CharRNN`) and owns what a language model is used for: `initial_state`/`step`,
`score` and `generate`. Every model here is a functional `keras.Model` whose
`get_config` returns its constructor arguments (a task's backbone serialized in
it), and holds its layers as attributes: code that needs the embedding or the
recurrent layers asks the backbone for them, never for a layer name. Sharing a
backbone object between two tasks shares its weights: language-model
pretraining followed by classification is `SequenceClassifier(lm.backbone)`.
"""

import keras
from keras import ops

from rnn_keras.layers import get_layer
from rnn_keras.preprocessors import LanguageModelPreprocessor, _Preprocessor

__all__ = [
    "recurrent_layer",
    "MaskedGlobalPooling1D",
    "SplitDirections",
    "RecurrentBackbone",
    "SequenceClassifier",
    "SequenceRegressor",
    "LanguageModel",
]

_POOLINGS = ("last", "mean", "max")
# Steps read at a time by `score` and by `generate`'s prompt: bounds memory on long texts.
READ_CHUNK = 256


def recurrent_layer(
    cell,
    units,
    *,
    bidirectional=False,
    merge_mode="concat",
    return_sequences=False,
    stateful=False,
    name=None,
    **layer_kwargs,
):
    """An rnn_keras recurrent layer (fast path included), optionally inside `Bidirectional`.

    Inside `Bidirectional` the layer gets `batch_splits=1` unless told otherwise:
    the two directions already run at the same time, and more concurrent loops
    only add overhead there (docs/benchmark.md).

    Args:
        cell: "simple", "lstm" or "gru".
        units: state size of the cell (per direction).
        bidirectional: wrap the layer in `keras.layers.Bidirectional`.
        merge_mode: how `Bidirectional` merges the two directions.
        return_sequences, stateful: as in `keras.layers.RNN`.
        name: layer name (of the `Bidirectional` wrapper when bidirectional).
        **layer_kwargs: the layer's other arguments (`dropout`,
            `recurrent_dropout`, initializers, `use_fused`, ...).
    """
    if bidirectional:
        layer_kwargs.setdefault("batch_splits", 1)
    layer = get_layer(cell)(
        units,
        return_sequences=return_sequences,
        stateful=stateful,
        name=None if bidirectional else name,
        **layer_kwargs,
    )
    if bidirectional:
        return keras.layers.Bidirectional(layer, merge_mode=merge_mode, name=name)
    return layer


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


@keras.saving.register_keras_serializable(package="rnn_keras")
class RecurrentBackbone(keras.Model):
    """The recurrent encoder shared by the task models.

    Layers: [`Embedding` when `vocabulary_size` is given, id 0 as padding
    unless `mask_zero=False`] -> [`Dropout`] -> `num_layers` x rnn_keras recurrent layer
    (optionally `Bidirectional`), with `Dropout` between them. The output is the
    last layer's sequence, `(batch, time, output_dim)`, masked where the input
    was padding. The layers are the attributes `token_embedding` (None for
    float features) and `recurrent_layers` (a list).

    Args:
        cell: "simple", "lstm" or "gru".
        units: state size of each recurrent layer (per direction).
        num_layers: number of stacked recurrent layers.
        bidirectional: run each recurrent layer in both directions.
        vocabulary_size: when given, inputs are int token ids `(batch, time)`.
        embedding_dim: width of the embedding (with `vocabulary_size`).
        mask_zero: whether id 0 is padding, masked (True), or a token like any
            other (False; e.g. a character lookup's out-of-vocabulary id).
        input_dim: feature size of float inputs `(batch, time, input_dim)`
            (without `vocabulary_size`).
        dropout: rate of `Dropout` on the recurrent layers' inputs.
        recurrent_dropout: the cells' `recurrent_dropout`.
        stateful: carry the recurrent states from one batch to the next
            (truncated BPTT); needs `batch_size`. `reset_states()` zeroes them.
        batch_size: the static batch size (required when `stateful`).
        **kwargs: `name`, `dtype`, `trainable`.
    """

    def __init__(
        self,
        cell="lstm",
        units=64,
        num_layers=1,
        bidirectional=False,
        vocabulary_size=None,
        embedding_dim=128,
        mask_zero=True,
        input_dim=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        stateful=False,
        batch_size=None,
        **kwargs,
    ):
        if (vocabulary_size is None) == (input_dim is None):
            raise ValueError(
                "RecurrentBackbone needs exactly one of `vocabulary_size` (token-id inputs) "
                "and `input_dim` (float feature inputs). Received: "
                f"vocabulary_size={vocabulary_size!r}, input_dim={input_dim!r}"
            )
        if stateful and batch_size is None:
            raise ValueError(
                "RecurrentBackbone(stateful=True) carries states between batches, so it needs "
                "a fixed `batch_size`. Received: batch_size=None"
            )
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(
                f"RecurrentBackbone: `num_layers` must be a positive integer. "
                f"Received: num_layers={num_layers!r}"
            )
        get_layer(cell)  # fail early on an unknown cell name

        # === Layers ===
        self.token_embedding = None
        if vocabulary_size is not None:
            self.token_embedding = keras.layers.Embedding(
                vocabulary_size, embedding_dim, mask_zero=mask_zero, name="token_embedding"
            )
        self.recurrent_layers = [
            recurrent_layer(
                cell,
                units,
                bidirectional=bidirectional,
                return_sequences=True,
                stateful=stateful,
                recurrent_dropout=recurrent_dropout,
                name=f"recurrent_{index}",
            )
            for index in range(num_layers)
        ]
        self.dropout_layers = [
            keras.layers.Dropout(dropout, name=f"dropout_{index}") if dropout else None
            for index in range(num_layers)
        ]

        # === Functional model ===
        if vocabulary_size is not None:
            inputs = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="token_ids")
            x = self.token_embedding(inputs)
        else:
            inputs = keras.Input(batch_shape=(batch_size, None, input_dim), name="features")
            x = inputs
        for dropout_layer, layer in zip(self.dropout_layers, self.recurrent_layers, strict=True):
            if dropout_layer is not None:
                x = dropout_layer(x)
            x = layer(x)
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        # A mask on float features (e.g. `LogMelFrontEnd`'s) reaches the recurrent layers,
        # and the output carries it.
        self.supports_masking = True

        # === Config ===
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.mask_zero = mask_zero
        self.input_dim = input_dim
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.stateful = stateful
        self.batch_size = batch_size

    @property
    def output_dim(self):
        """Features per step of the output: `units`, twice that when bidirectional."""
        return self.units * (2 if self.bidirectional else 1)

    def reset_states(self):
        """Zero the carried state of every recurrent layer (a no-op when not stateful).

        Truncated BPTT calls this at the start of every pass and before evaluation.
        """
        for layer in self.recurrent_layers:
            layer.reset_state()

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "mask_zero": self.mask_zero,
            "input_dim": self.input_dim,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "stateful": self.stateful,
            "batch_size": self.batch_size,
        }


class _Task(keras.Model):
    """A functional model on a `RecurrentBackbone`, with an optional preprocessor.

    Config = the backbone and the preprocessor (serialized) + the head's
    arguments. A subclass lists its other constructor arguments in
    `config_keys`, each stored as the attribute of that name.

    With a `preprocessor`, `fit`, `evaluate` and `predict` also take raw
    inputs (what the preprocessor reads: strings, or dicts of feature windows),
    as lists, NumPy arrays or a `tf.data.Dataset` of `(x[, y[, sample_weight]])`
    batches: the preprocessor is mapped over the batches in the input pipeline,
    so the network (and a `tf.distribute` replica) only sees numbers. Inputs
    that are already numbers go straight to the network. `export(path)` writes
    a SavedModel that serves raw inputs (see each task).
    """

    backbone_cls = RecurrentBackbone
    preprocessor_cls = None
    config_keys = ()

    def _check_backbone(self, backbone):
        if not isinstance(backbone, self.backbone_cls):
            raise ValueError(
                f"{type(self).__name__}: `backbone` must be an rnn_keras.RecurrentBackbone. "
                f"Received: backbone={backbone!r}"
            )

    def _set_preprocessor(self, preprocessor):
        if isinstance(preprocessor, dict):
            preprocessor = keras.layers.deserialize(preprocessor)
        if preprocessor is not None and not isinstance(preprocessor, self.preprocessor_cls):
            raise ValueError(
                f"{type(self).__name__}: `preprocessor` must be an rnn_keras."
                f"{self.preprocessor_cls.__name__} or None. Received: preprocessor={preprocessor!r}"
            )
        self.preprocessor = preprocessor

    # -- raw inputs --------------------------------------------------------------------------

    def _is_raw(self, x):
        """Whether `x` (data or a tf.data.Dataset) needs the preprocessor."""
        import tensorflow as tf

        if self.preprocessor is None:
            return False
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            spec = spec[0] if isinstance(spec, tuple) else spec
            return self.preprocessor.is_raw(spec)
        return self.preprocessor.is_raw(x)

    def _preprocessed(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False):
        """A tf.data of preprocessed batches from raw `x` (a dataset, or data with `y`)."""
        import tensorflow as tf

        preprocessor = self.preprocessor
        if not isinstance(x, tf.data.Dataset):
            columns = [_as_column(x)]
            columns += [_as_column(v) for v in (y, sample_weight) if v is not None]
            data = tuple(columns) if len(columns) > 1 else columns[0]
            x = tf.data.Dataset.from_tensor_slices(data)
            if shuffle:
                x = x.shuffle(int(x.cardinality()), reshuffle_each_iteration=True)
            x = x.batch(batch_size or 32)

        def apply(*batch):
            return preprocessor(*batch)

        return x.map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def fit(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        validation_data = kwargs.get("validation_data")
        if validation_data is not None:
            kwargs["validation_data"] = self._raw_validation(validation_data, batch_size)
        if self._is_raw(x):
            x = self._preprocessed(x, y, sample_weight, batch_size, kwargs.pop("shuffle", True))
            y = sample_weight = batch_size = None
            kwargs["shuffle"] = False  # shuffled above, before batching
        return super().fit(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def _raw_validation(self, data, batch_size):
        import tensorflow as tf

        if isinstance(data, tf.data.Dataset):
            return self._preprocessed(data) if self._is_raw(data) else data
        if isinstance(data, tuple | list) and data and self._is_raw(data[0]):
            return self._preprocessed(*data, batch_size=batch_size)
        return data

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        if self._is_raw(x):
            x = self._preprocessed(x, y, sample_weight, batch_size)
            y = sample_weight = batch_size = None
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        if self._is_raw(x):
            x = self._preprocessed(x, batch_size=batch_size)
            batch_size = None
        return super().predict(x, batch_size=batch_size, **kwargs)

    # -- compile defaults --------------------------------------------------------------------

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile`, where "auto" picks the task's defaults.

        optimizer "auto": Adam (learning rate 1e-3) with gradient clipping by
        global norm 1.0; loss and metrics "auto": see the task (its
        `default_loss()` and `default_metrics()`).
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3, global_clipnorm=1.0)
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = self.default_metrics()
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Compiles a loaded task as it was saved (Keras skips a custom `compile` otherwise)."""
        from keras.saving import deserialize_keras_object

        self.compile(**deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def default_loss(self):
        raise NotImplementedError

    def default_metrics(self):
        return None

    # -- export --------------------------------------------------------------------------------

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):
        """Writes the serving SavedModel (with a preprocessor: raw inputs in; see the task).

        Without a preprocessor, or with another `format`, this is `keras.Model.export`.
        """
        if self.preprocessor is None or format != "tf_saved_model" or kwargs:
            return super().export(filepath, format=format, verbose=verbose, **kwargs)
        from rnn_keras import export

        return export.export_task(self, filepath)

    # -- config ----------------------------------------------------------------------------------

    def get_config(self):
        preprocessor = getattr(self, "preprocessor", None)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "preprocessor": None if preprocessor is None else keras.layers.serialize(preprocessor),
            **{key: getattr(self, key) for key in self.config_keys},
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


def _as_column(values):
    """Data for `tf.data.Dataset.from_tensor_slices`: strings as an object array."""
    import numpy as np

    if isinstance(values, dict):
        return {key: _as_column(value) for key, value in values.items()}
    if isinstance(values, list | tuple) and values and isinstance(values[0], str | bytes):
        return np.asarray(values, dtype=object)
    return np.asarray(values) if isinstance(values, list | tuple) else values


class _PooledTask(_Task):
    """backbone -> pooling -> [Dropout] -> Dense [-> Rescaling]: one vector per sequence."""

    preprocessor_cls = _Preprocessor

    def _build_head(
        self,
        backbone,
        units,
        activation,
        pooling,
        dropout,
        head_name,
        output_scale=1.0,
        output_offset=0.0,
        **kwargs,
    ):
        self._check_backbone(backbone)

        # === Layers ===
        self.backbone = backbone
        self.pooling_layer = MaskedGlobalPooling1D(
            pooling, bidirectional=backbone.bidirectional, name=f"{pooling}_pool"
        )
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(units, activation=activation, name=head_name)
        self.output_rescaling = None
        if (output_scale, output_offset) != (1.0, 0.0):
            self.output_rescaling = keras.layers.Rescaling(
                output_scale, offset=output_offset, name="output_rescaling"
            )

        # === Functional model ===
        inputs = backbone.input
        x = self.pooling_layer(backbone(inputs))
        if dropout:
            x = self.output_dropout(x)
        outputs = self.output_dense(x)
        if self.output_rescaling is not None:
            outputs = self.output_rescaling(outputs)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.pooling = pooling
        self.dropout = dropout


@keras.saving.register_keras_serializable(package="rnn_keras")
class SequenceClassifier(_PooledTask):
    """The guide's `SequenceClassifier`: a backbone, pooled, then a Dense to classes.

    With a `TextClassifierPreprocessor`, it reads raw text:
    `classifier.fit(texts, labels)`, `classifier.predict(["A moving film."])`,
    and `classifier.export(path)` writes a SavedModel whose `serve` maps
    `tf.string [batch]` to float32 `[batch, num_classes]` (`[batch]` when
    `num_classes=1`): the output layer's values (probabilities with a
    sigmoid or softmax `activation`, logits without).

    Args:
        backbone: a `RecurrentBackbone` (on token ids, to read text).
        num_classes: width of the output layer (1 with `activation="sigmoid"`
            for a binary classifier that outputs one probability).
        pooling: how the sequence becomes one vector: "last" (the final hidden
            state, as the guide; the state at the last real token), "mean" or
            "max" over the unmasked steps (see `MaskedGlobalPooling1D`).
        dropout: rate of `Dropout` before the output layer.
        activation: activation of the output layer; None gives logits.
        preprocessor: a `TextClassifierPreprocessor`, or None (token ids in).
        **kwargs: `name`, `dtype`, `trainable`.
    """

    config_keys = ("num_classes", "pooling", "dropout", "activation")

    def __init__(
        self,
        backbone,
        num_classes=2,
        pooling="last",
        dropout=0.0,
        activation=None,
        preprocessor=None,
        **kwargs,
    ):
        self._build_head(backbone, num_classes, activation, pooling, dropout, "classes", **kwargs)
        self.num_classes = num_classes
        self.activation = activation
        self._set_preprocessor(preprocessor)

    def default_loss(self):
        """Binary cross-entropy for one output, sparse categorical cross-entropy for several
        (on logits when `activation` is None)."""
        from_logits = self.activation is None
        if self.num_classes == 1:
            return keras.losses.BinaryCrossentropy(from_logits=from_logits)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)

    def default_metrics(self):
        if self.num_classes == 1:
            threshold = 0.0 if self.activation is None else 0.5
            return [keras.metrics.BinaryAccuracy(name="accuracy", threshold=threshold)]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


@keras.saving.register_keras_serializable(package="rnn_keras")
class SequenceRegressor(_PooledTask):
    """A backbone, pooled, then a linear Dense to `num_outputs` real values per sequence.

    Takes `SequenceClassifier`'s `backbone`, `pooling`, `dropout` and
    `**kwargs`; `num_outputs` is how many values each sequence predicts (e.g.
    24 forecast hours), with no output activation. `output_scale` and
    `output_offset` rescale the outputs (`scale * y + offset`), so the
    network works in normalized units while the model predicts (and trains
    on) targets in their own. With a `FeatureWindowPreprocessor` it reads
    named raw windows, and `export(path)` writes a SavedModel whose `serve`
    takes them as named `[batch, time]` inputs and returns float32
    `[batch, num_outputs]`.

    The default loss ("auto" in `compile`) is the absolute error of each
    output on its own (`per_output_absolute_error`), so that a
    `(batch, num_outputs)` sample weight (0 for a missing target) weighs each
    output separately; the metric is the weighted mean absolute error "mae".
    """

    config_keys = ("num_outputs", "pooling", "dropout", "output_scale", "output_offset")

    def __init__(
        self,
        backbone,
        num_outputs=1,
        pooling="last",
        dropout=0.0,
        output_scale=1.0,
        output_offset=0.0,
        preprocessor=None,
        **kwargs,
    ):
        output_scale, output_offset = float(output_scale), float(output_offset)
        self._build_head(
            backbone, num_outputs, None, pooling, dropout, "outputs", output_scale, output_offset,
            **kwargs,
        )  # fmt: skip
        self.num_outputs = num_outputs
        self.output_scale = output_scale
        self.output_offset = output_offset
        self._set_preprocessor(preprocessor)

    def default_loss(self):
        return per_output_absolute_error

    def default_metrics(self):
        return []

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """`_Task.compile`; "auto" metrics are the weighted mean absolute error ("mae")."""
        if metrics == "auto" and "weighted_metrics" not in kwargs:
            kwargs["weighted_metrics"] = [
                keras.metrics.MeanMetricWrapper(per_output_absolute_error, name="mae")
            ]
        super().compile(optimizer, loss, metrics, **kwargs)


@keras.saving.register_keras_serializable(package="rnn_keras")
def per_output_absolute_error(y_true, y_pred):
    """`|y_pred - y_true|` of each output, not averaged over the last axis.

    Keras's "mae" averages the last axis before it applies sample weights; this
    keeps `(batch, outputs)`, so a `(batch, outputs)` sample weight weighs each
    output on its own (0 for a missing target), then Keras averages.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    return ops.abs(y_pred - ops.cast(y_true, y_pred.dtype))


class _SteppedTask(_Task):
    """A task on a unidirectional backbone that can also be run one step at a time.

    The state of all recurrent layers is packed into one float32 tensor
    `(batch, S)`: every layer's states (`[h, c]` for an LSTM, `[h]` otherwise)
    concatenated along the last axis, the form a serving endpoint can take
    and return.
    """

    def _state_sizes(self):
        return [[layer.units] * layer.cell.num_states for layer in self.backbone.recurrent_layers]

    @property
    def state_size(self):
        """S, the width of the packed state."""
        return sum(sum(sizes) for sizes in self._state_sizes())

    def _unpack(self, state):
        import tensorflow as tf

        sizes = self._state_sizes()
        flat = tf.split(state, [s for layer_sizes in sizes for s in layer_sizes], axis=-1)
        per_layer, start = [], 0
        for layer_sizes in sizes:
            per_layer.append(flat[start : start + len(layer_sizes)])
            start += len(layer_sizes)
        return per_layer

    @staticmethod
    def _pack(per_layer):
        import tensorflow as tf

        return tf.concat([s for states in per_layer for s in states], axis=-1)

    def initial_state(self, batch_size):
        """The packed zero state for `batch_size` sequences, float32 `(batch_size, S)`."""
        import tensorflow as tf

        tf.debugging.assert_non_negative(batch_size, message="initial_state: batch_size < 0")
        return tf.zeros([batch_size, self.state_size], tf.float32)

    def cells_step(self, x, state):
        """The recurrent layers' cells on one step's inputs `x (batch, features)`:
        `(last layer's output, new packed state)`."""
        new_states = []
        for layer, states in zip(self.backbone.recurrent_layers, self._unpack(state), strict=True):
            x, states = layer.cell(x, list(states))
            new_states.append(states if isinstance(states, (list, tuple)) else [states])
        return x, self._pack(new_states)


@keras.saving.register_keras_serializable(package="rnn_keras")
class LanguageModel(_SteppedTask):
    """The guide's `CharRNN`, for any token vocabulary: the next token's logits at every step.

    On a unidirectional backbone the output is `(batch, time, vocabulary_size)`
    float32 logits: step t predicts token t + 1. On a one-layer bidirectional
    backbone (ELMo-style pretraining) the outputs are two: the forward
    direction's prediction of token t + 1 and the backward direction's of token
    t - 1, each from its own half of the features (a stacked bidirectional
    backbone would let each direction see the tokens it predicts, so it is
    refused). `examples` turns token batches into the matching training data.

    The serving methods (unidirectional backbones; TensorFlow) work on int32 ids
    and one packed state `(batch, S)`: every layer's states (`[h, c]` for an
    LSTM, `[h]` otherwise) concatenated along the last axis. They read with
    stateless copies of the recurrent layers that share their weights, so they
    can be called on a model trained with `stateful=True` at any batch size.

    Args:
        backbone: a `RecurrentBackbone` with `vocabulary_size`.
        vocabulary_size: how many token ids the model predicts (default: the
            backbone's); targets at or above it count as id 1, the
            out-of-vocabulary id of `keras.layers.TextVectorization`.
        dropout: rate of `Dropout` before the output layer.
        **kwargs: `name`, `dtype`, `trainable`.
    """

    preprocessor_cls = LanguageModelPreprocessor
    config_keys = ("vocabulary_size", "dropout")

    def __init__(self, backbone, vocabulary_size=None, dropout=0.0, preprocessor=None, **kwargs):
        self._check_backbone(backbone)
        if backbone.vocabulary_size is None:
            raise ValueError(
                "LanguageModel: the backbone must read token ids (built with "
                "`vocabulary_size`). Received: a backbone of float features "
                f"(input_dim={backbone.input_dim})"
            )
        if backbone.bidirectional and backbone.num_layers > 1:
            raise ValueError(
                "LanguageModel: a stacked bidirectional backbone lets each direction see the "
                "tokens it has to predict, through the layer below. Use num_layers=1 with "
                f"bidirectional=True. Received: num_layers={backbone.num_layers}"
            )
        vocabulary_size = vocabulary_size or backbone.vocabulary_size

        # === Layers ===
        self.backbone = backbone
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.next_token_head = keras.layers.Dense(vocabulary_size, name="next_token")
        self.previous_token_head = None
        if backbone.bidirectional:
            self.previous_token_head = keras.layers.Dense(vocabulary_size, name="previous_token")

        # === Functional model ===
        inputs = backbone.input
        x = backbone(inputs)
        if dropout:
            x = self.output_dropout(x)
        if backbone.bidirectional:
            forward, backward = SplitDirections(name="split_directions")(x)
            outputs = (self.next_token_head(forward), self.previous_token_head(backward))
        else:
            outputs = self.next_token_head(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.dropout = dropout
        self._set_preprocessor(preprocessor)

    def default_loss(self):
        """Sparse categorical cross-entropy on the logits (one per output)."""
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return [loss] * len(self.outputs) if len(self.outputs) > 1 else loss

    # -- strings in, strings out -------------------------------------------------------------

    def _require_preprocessor(self, method):
        if self.preprocessor is None:
            raise ValueError(
                f"LanguageModel.{method} works on strings, so it needs a preprocessor. Expected: "
                "LanguageModel(..., preprocessor=rnn_keras.LanguageModelPreprocessor(...)); "
                f"on token ids, use {method}_ids. Received: preprocessor=None"
            )

    def generate(self, prompt, max_length=100, temperature=1.0, seed=None):
        """Continues each prompt: a string gives a string, a list of strings a list.

        Each result starts with its prompt and is `max_length` tokens long in
        all (characters or words, the prompt included; a prompt at least that
        long comes back as it is). `temperature` 0 picks the most likely token
        (greedy); above 0 samples from the softmax of logits / temperature,
        reproducibly for an integer `seed` (None: a seed drawn from
        TensorFlow's global random state, which `keras.utils.set_random_seed` sets). An
        empty prompt starts after the preprocessor's start token. Runs in one
        compiled TensorFlow loop (batch of prompts at once).
        """
        import numpy as np
        import tensorflow as tf

        self._require_preprocessor("generate")
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 0:
            raise ValueError(
                "LanguageModel.generate: `max_length` must be a non-negative integer. "
                f"Received: max_length={max_length!r}"
            )
        if not temperature >= 0:
            raise ValueError(
                "LanguageModel.generate: `temperature` must be >= 0 (0 is greedy). "
                f"Received: temperature={temperature!r}"
            )
        single = isinstance(prompt, str | bytes)
        prompts = [prompt] if single else list(prompt)
        prompts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in prompts]
        if not prompts:
            return []
        ids, lengths = self.preprocessor.tokenize(tf.constant(prompts))
        lengths = lengths.numpy()
        num_steps = max(0, max_length - int(lengths.min()))
        if not hasattr(self, "_generate_function"):
            signature = [
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([2], tf.int32),
            ]
            self._generate_function = tf.function(self.generate_ids, input_signature=signature)
        if seed is None:  # a fresh draw, from TensorFlow's global random state
            seed = int(tf.random.uniform([], 0, 2**31 - 1, tf.int32))
        new_ids = self._generate_function(
            ids,
            tf.constant(lengths),
            tf.constant(num_steps, tf.int32),
            tf.constant(float(temperature), tf.float32),
            self.preprocessor.start_id,
            tf.constant([int(seed), 0], tf.int32),
        ).numpy()
        separator = self.preprocessor.separator
        results = []
        for text, length, row in zip(prompts, lengths, new_ids, strict=True):
            keep = max(0, max_length - int(length))
            continuation = self.preprocessor.detokenize(row[None, :keep]).numpy()[0].decode()
            joiner = separator if text and continuation else ""
            results.append(text + joiner + continuation)
        return results[0] if single else np.array(results, dtype=object).tolist()

    def score(self, texts):
        """Nats per token of each text, read after the start token: a float for a string,
        a NumPy array for a list (NaN for an empty text)."""
        import numpy as np
        import tensorflow as tf

        self._require_preprocessor("score")
        single = isinstance(texts, str | bytes)
        batch = [texts] if single else list(texts)
        ids, lengths = self.preprocessor.tokenize(tf.constant(batch))
        start = tf.fill([len(batch), 1], self.preprocessor.start_id)
        nats, scored = self.score_ids(tf.concat([start, ids], axis=1), lengths + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_token = nats.numpy() / scored.numpy()
        return float(per_token[0]) if single else per_token

    # -- training data -----------------------------------------------------------------------

    def examples(self, token_batches):
        """`(ids, targets, sample_weights)` batches for `fit`, from a tf.data of `(ids, ...)`.

        Targets are the next tokens (and, bidirectional, the previous ones),
        with ids at or above `vocabulary_size` replaced by 1; positions with no
        token to predict (padding, the ends) get weight 0.
        """
        import tensorflow as tf

        vocabulary_size = self.vocabulary_size
        bidirectional = self.previous_token_head is not None

        def to_examples(ids, *_):
            capped = tf.where(ids >= vocabulary_size, tf.ones_like(ids), ids)
            padding = tf.zeros_like(capped[:, :1])
            targets = [tf.concat([capped[:, 1:], padding], axis=1)]
            if bidirectional:
                preceding = tf.concat([padding, capped[:, :-1]], axis=1)
                targets.append(tf.where(ids > 0, preceding, tf.zeros_like(preceding)))
            weights = [tf.cast(target > 0, tf.float32) for target in targets]
            if not bidirectional:
                return ids, targets[0], weights[0]
            return ids, tuple(targets), tuple(weights)

        return token_batches.map(to_examples, num_parallel_calls=tf.data.AUTOTUNE)

    # -- serving: state, step, score, generate -----------------------------------------------

    def _check_unidirectional(self):
        if self.backbone.bidirectional:
            raise ValueError(
                "LanguageModel: step, score and generate read left to right, so they need a "
                "unidirectional backbone. Received: bidirectional=True"
            )

    def _readers(self):
        """Stateless copies of the recurrent layers, sharing their weights and returning states."""
        self._check_unidirectional()
        return [
            layer.sharing_weights(stateful=False, return_sequences=True, return_state=True)
            for layer in self.backbone.recurrent_layers
        ]

    def step(self, ids, state):
        """One token per sequence: `(ids (batch,), state) -> (logits (batch, V), new state)`."""
        import tensorflow as tf

        self._check_unidirectional()
        # The embedding's table directly: the layer would attach a padding mask, which a
        # cell called on its own has no use for.
        embedding = self.backbone.token_embedding
        x = ops.cast(ops.take(embedding.embeddings, ids, axis=0), embedding.compute_dtype)
        x, state = self.cells_step(x, state)
        return tf.cast(self.next_token_head(x), tf.float32), state

    def read(self, ids, lengths, state, targets=None):
        """Reads padded ids `(batch, time)`, the first `lengths` of each row, from `state`.

        Returns `(state after each row's last real token, nats)`: `nats` sums the
        negative log-likelihood of `targets` (same shape as `ids`) over the real
        positions of each row, or is zeros without targets. Reads `READ_CHUNK`
        steps at a time.
        """
        import tensorflow as tf

        readers = self._readers()
        batch = tf.shape(ids)[0]
        total = tf.shape(ids)[1]
        num_chunks = (total + READ_CHUNK - 1) // READ_CHUNK
        padded = num_chunks * READ_CHUNK
        ids = tf.pad(ids, [[0, 0], [0, padded - total]])
        if targets is not None:
            targets = tf.pad(targets, [[0, 0], [0, padded - total]])
        mask = tf.range(padded)[None, :] < lengths[:, None]

        def body(k, state, nats):
            start, size = [0, k * READ_CHUNK], [batch, READ_CHUNK]
            chunk_mask = tf.slice(mask, start, size)
            x = self.backbone.token_embedding(tf.slice(ids, start, size))
            new_states = []
            for reader, states in zip(readers, self._unpack(state), strict=True):
                x, *states = reader(x, mask=chunk_mask, initial_state=list(states))
                new_states.append(states)
            state = self._pack(new_states)
            if targets is not None:
                logits = tf.cast(self.next_token_head(x), tf.float32)
                nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    tf.slice(targets, start, size), logits
                )
                nats += tf.reduce_sum(tf.where(chunk_mask, nll, 0.0), axis=1)
            return k + 1, state, nats

        _, state, nats = tf.while_loop(
            lambda k, *_: k < num_chunks,
            body,
            (0, state, tf.zeros([batch], tf.float32)),
            shape_invariants=(
                tf.TensorShape([]),
                tf.TensorShape([None, self.state_size]),
                tf.TensorShape([None]),
            ),
        )
        return state, nats

    def score_ids(self, ids, lengths):
        """Nats of each row's tokens 1..n-1 given the ones before: `(nats, scored)`, each (batch,).

        `ids` is `(batch, time)` int32, each row's first `lengths` ids real. Token
        t + 1 is scored from the state after reading tokens 0..t; the first token
        is the context, so a row of n tokens scores n - 1 (`scored`).
        """
        import tensorflow as tf

        scored = tf.maximum(lengths - 1, 0)
        _, nats = self.read(
            ids[:, :-1], scored, self.initial_state(tf.shape(ids)[0]), targets=ids[:, 1:]
        )
        return nats, scored

    def generate_ids(self, prompt_ids, lengths, num_steps, temperature, start_id, seed=None):
        """Continues each prompt by `num_steps` sampled ids, in-graph: `(batch, num_steps)` int32.

        `prompt_ids` is `(batch, time)` with `lengths` real ids per row; an empty
        prompt starts from `start_id` as the last token read. `temperature` 0
        picks the most likely id (greedy); above 0 samples from the softmax of
        logits / temperature, with `tf.random.stateless_categorical` when `seed`
        (int32 `[2]`) is given, else with TensorFlow's global random state.
        Id 0 (padding or out-of-vocabulary) is never produced.
        """
        import tensorflow as tf

        with tf.control_dependencies(
            [
                tf.debugging.assert_non_negative(
                    num_steps, message="generate: num_chars must be >= 0"
                ),
                tf.debugging.assert_non_negative(
                    temperature, message="generate: temperature must be >= 0 (0 is greedy)"
                ),
            ]
        ):
            num_steps = tf.identity(num_steps)
        batch = tf.shape(prompt_ids)[0]
        # Read all but the last prompt token as a sequence; the loop starts from the last.
        state, _ = self.read(prompt_ids, tf.maximum(lengths - 1, 0), self.initial_state(batch))
        last_index = tf.maximum(lengths - 1, 0)
        last = tf.gather(tf.pad(prompt_ids, [[0, 0], [0, 1]]), last_index, batch_dims=1)
        current = tf.where(lengths > 0, last, start_id)
        never_zero = tf.one_hot(0, self.vocabulary_size, on_value=-1e9)

        def body(i, current, state, generated):
            logits, state = self.step(current, state)
            logits += never_zero
            greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
            scaled = logits / tf.maximum(temperature, 1e-6)
            if seed is None:
                sampled = tf.random.categorical(scaled, 1)
            else:
                step_seed = tf.random.experimental.stateless_fold_in(seed, i)
                sampled = tf.random.stateless_categorical(scaled, 1, step_seed)
            sampled = tf.cast(sampled[:, 0], tf.int32)
            following = tf.where(temperature > 0, sampled, greedy)
            return i + 1, following, state, generated.write(i, following)

        _, _, _, generated = tf.while_loop(
            lambda i, *_: i < num_steps,
            body,
            (0, current, state, tf.TensorArray(tf.int32, size=num_steps, element_shape=[None])),
        )
        # An empty TensorArray of unknown element shape cannot be stacked (num_steps = 0).
        return tf.cond(
            num_steps > 0,
            lambda: tf.transpose(generated.stack()),
            lambda: tf.zeros([batch, 0], tf.int32),
        )
