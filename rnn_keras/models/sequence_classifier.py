"""Sequence classification and regression: a backbone pooled into one vector, then a head.

`SequenceClassifier` (the guide's sequence classifier) and `SequenceRegressor`
read raw text through a `TextClassifierPreprocessor` or named feature windows
through a `FeatureWindowPreprocessor`; the preprocessor supplies the serving
signature, so `export(path)` writes a SavedModel that serves raw inputs.
"""

import keras
from keras import ops

from rnn_keras.layers.pooling import MaskedGlobalPooling1D
from rnn_keras.models.preprocessor import Preprocessor
from rnn_keras.models.task import Task

__all__ = ["SequenceClassifier", "SequenceRegressor", "per_output_absolute_error"]


class _PooledTask(Task):
    """backbone -> pooling -> [Dropout] -> Dense [-> Rescaling]: one vector per sequence."""

    preprocessor_cls = Preprocessor

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

    @classmethod
    def from_preprocessor(cls, preprocessor, num_classes=2, *, backbone_args=None, **kwargs):
        """A classifier of raw text on a new `RecurrentBackbone` sized to an adapted
        `TextClassifierPreprocessor`'s vocabulary.

        `backbone_args` are the backbone's other arguments (`cell`, `units`,
        `num_layers`, `bidirectional`, `embedding_dim`, `dropout`, ...); `kwargs`
        the classifier's (`pooling`, `dropout`, `activation`, `name`).
        """
        from rnn_keras.models.backbone import RecurrentBackbone

        backbone_args = dict(backbone_args or {})
        if "vocabulary_size" in backbone_args or not hasattr(preprocessor, "vocabulary_size"):
            raise ValueError(
                "SequenceClassifier.from_preprocessor: the vocabulary size comes from a text "
                "preprocessor. Expected: a TextClassifierPreprocessor and no `vocabulary_size` "
                f"in `backbone_args`. Received: {type(preprocessor).__name__}, "
                f"backbone_args={backbone_args}"
            )
        backbone = RecurrentBackbone(
            **backbone_args, vocabulary_size=preprocessor.vocabulary_size()
        )
        return cls(backbone, num_classes, preprocessor=preprocessor, **kwargs)

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
        """`Task.compile`; "auto" metrics are the weighted mean absolute error ("mae")."""
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
