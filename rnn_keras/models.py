"""The guide's two models, `SequenceClassifier` and `CharRNN`, as functional Keras models.

Both follow keras-hub's backbone pattern: the constructor builds a functional
graph from a few plain arguments and `get_config` returns exactly those
arguments, so `from_config`, `.keras` saving and `model.export()` work as for
any functional model.
"""

import keras
from keras import ops

from rnn_keras.layers import get_layer

__all__ = [
    "recurrent_layer",
    "MaskedGlobalPooling1D",
    "GradientNormMonitor",
    "SequenceClassifier",
    "CharRNN",
]

_POOLINGS = ("last", "mean", "max")


def recurrent_layer(
    cell,
    units,
    *,
    bidirectional=False,
    merge_mode="concat",
    return_sequences=False,
    stateful=False,
    name=None,
    **cell_kwargs,
):
    """An rnn_keras recurrent layer (fast path included), optionally inside `Bidirectional`.

    Args:
        cell: "simple", "lstm" or "gru".
        units: state size of the cell (per direction).
        bidirectional: wrap the RNN in `keras.layers.Bidirectional`.
        merge_mode: how `Bidirectional` merges the two directions.
        return_sequences, stateful: passed to `keras.layers.RNN`.
        name: layer name.
        **cell_kwargs: passed to the cell (`dropout`, `recurrent_dropout`,
            initializers, ...).
    """
    rnn = get_layer(cell)(
        units,
        return_sequences=return_sequences,
        stateful=stateful,
        name=None if bidirectional else name,
        **cell_kwargs,
    )
    if bidirectional:
        return keras.layers.Bidirectional(rnn, merge_mode=merge_mode, name=name)
    return rnn


@keras.saving.register_keras_serializable(package="rnn_keras")
class MaskedGlobalPooling1D(keras.layers.Layer):
    """Mean or max over the unmasked time steps: `(batch, time, features) -> (batch, features)`.

    Unlike `keras.layers.GlobalMaxPooling1D`, the max ignores padded steps
    (zeros inside `Bidirectional`, which would otherwise take part). Unlike
    `keras.layers.GlobalAveragePooling1D`, a sequence with no unmasked step (an
    empty text) pools to zeros instead of NaN.

    Args:
        mode: "mean" or "max".
    """

    def __init__(self, mode="max", **kwargs):
        if mode not in ("mean", "max"):
            raise ValueError(
                f"MaskedGlobalPooling1D: `mode` must be 'mean' or 'max'. Received: mode={mode!r}"
            )
        super().__init__(**kwargs)
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
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
        return {**super().get_config(), "mode": self.mode}


class GradientNormMonitor:
    """Model mixin: `fit` reports the global gradient norm of every step as `gradient_norm`.

    The guide's "monitor gradient norms". The norm is taken over all trainable
    weights' gradients of the (unscaled) loss, before any clipping the optimizer
    does, so spikes that clipping hides stay visible. It appears in the per-batch
    logs that callbacks receive (TensorBoard with `update_freq=1` plots it per
    step); the epoch logs carry the last step's value. TensorFlow backend; other
    backends train as usual, without the extra log.
    """

    def train_step(self, data):
        if keras.backend.backend() != "tensorflow":
            return super().train_step(data)
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            self._loss_tracker.update_state(loss, sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
            scaled_loss = self.optimizer.scale_loss(loss)
        weights = self.trainable_weights
        gradients = tape.gradient(scaled_loss, weights)
        # Mixed precision scales the loss (and so the gradients); undo it for the log.
        loss_scale = tf.cast(self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)
        gradient_norm = tf.linalg.global_norm([g for g in gradients if g is not None]) / loss_scale
        self.optimizer.apply_gradients(zip(gradients, weights, strict=True))
        return {**self.compute_metrics(x, y, y_pred, sample_weight), "gradient_norm": gradient_norm}


@keras.saving.register_keras_serializable(package="rnn_keras")
class SequenceClassifier(GradientNormMonitor, keras.Model):
    """The guide's `SequenceClassifier`: stacked recurrent layers, then a Dense to classes.

    Layers: [`Embedding(mask_zero=True)` when `vocabulary_size` is given] ->
    `num_layers` x recurrent layer (optionally bidirectional) -> pooling ->
    `Dropout` -> `Dense(num_classes)`.

    Args:
        num_classes: width of the output layer.
        cell: "simple", "lstm" or "gru".
        units: state size of each recurrent layer (per direction).
        num_layers: number of stacked recurrent layers.
        bidirectional: run each recurrent layer in both directions.
        pooling: how the last layer's sequence becomes one vector: "last" (the
            final hidden state, as the guide; with a mask, the state at the last
            real token), "mean" or "max" over the unmasked time steps.
        vocabulary_size: when given, inputs are int token ids of shape
            `(batch, time)` with 0 as padding, embedded with a masking
            `Embedding`. When None, inputs are float features of shape
            `(batch, time, input_dim)`.
        embedding_dim: width of the embedding (with `vocabulary_size`).
        input_dim: feature size of float inputs (without `vocabulary_size`).
        dropout: rate of `Dropout` on the embeddings, between recurrent layers
            and before the output layer.
        recurrent_dropout: the cells' `recurrent_dropout`.
        output_activation: activation of the output layer; None gives logits.
    """

    def __init__(
        self,
        num_classes=2,
        cell="lstm",
        units=64,
        num_layers=1,
        bidirectional=False,
        pooling="last",
        vocabulary_size=None,
        embedding_dim=128,
        input_dim=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        output_activation=None,
        **kwargs,
    ):
        if pooling not in _POOLINGS:
            raise ValueError(
                f"SequenceClassifier: `pooling` must be one of {_POOLINGS}. "
                f"Received: pooling={pooling!r}"
            )
        if (vocabulary_size is None) == (input_dim is None):
            raise ValueError(
                "SequenceClassifier needs exactly one of `vocabulary_size` (token-id inputs) "
                "and `input_dim` (float feature inputs). Received: "
                f"vocabulary_size={vocabulary_size!r}, input_dim={input_dim!r}"
            )
        get_layer(cell)  # fail early on an unknown cell name

        # === Layers and functional model ===
        if vocabulary_size is not None:
            inputs = keras.Input(shape=(None,), dtype="int32", name="token_ids")
            x = keras.layers.Embedding(
                vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
            )(inputs)
        else:
            inputs = keras.Input(shape=(None, input_dim), name="features")
            x = inputs
        if dropout:
            x = keras.layers.Dropout(dropout, name="input_dropout")(x)
        for index in range(num_layers):
            is_last = index == num_layers - 1
            x = recurrent_layer(
                cell,
                units,
                bidirectional=bidirectional,
                return_sequences=not (is_last and pooling == "last"),
                recurrent_dropout=recurrent_dropout,
                name=f"recurrent_{index}",
            )(x)
            if dropout and not is_last:
                x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
        if pooling != "last":
            x = MaskedGlobalPooling1D(pooling, name=f"{pooling}_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="output_dropout")(x)
        outputs = keras.layers.Dense(num_classes, activation=output_activation, name="classes")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.input_dim = input_dim
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.output_activation = output_activation

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "pooling": self.pooling,
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "input_dim": self.input_dim,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "output_activation": self.output_activation,
        }


@keras.saving.register_keras_serializable(package="rnn_keras")
class CharRNN(GradientNormMonitor, keras.Model):
    """The guide's `CharRNN`: a character-level language model.

    Layers: `Embedding` -> `num_layers` x recurrent layer (returning sequences)
    -> `Dense(vocabulary_size)`: logits of the next character at every step.
    Inputs are int ids of shape `(batch, time)`; outputs are float logits of
    shape `(batch, time, vocabulary_size)`.

    Args:
        vocabulary_size: number of character ids.
        cell: "simple", "lstm" or "gru".
        units: state size of each recurrent layer.
        num_layers: number of stacked recurrent layers.
        embedding_dim: width of the character embedding.
        dropout: rate of `Dropout` between layers (after the embedding, between
            recurrent layers, before the output layer).
        recurrent_dropout: the cells' `recurrent_dropout`.
        stateful: carry the recurrent state from one batch to the next
            (truncated BPTT); needs a fixed `batch_size`.
        batch_size: the static batch size (required when `stateful`).
    """

    def __init__(
        self,
        vocabulary_size,
        cell="lstm",
        units=256,
        num_layers=2,
        embedding_dim=64,
        dropout=0.0,
        recurrent_dropout=0.0,
        stateful=False,
        batch_size=None,
        **kwargs,
    ):
        if stateful and batch_size is None:
            raise ValueError(
                "CharRNN(stateful=True) carries states between batches, so it needs a fixed "
                "`batch_size`. Received: batch_size=None"
            )
        get_layer(cell)

        # === Layers and functional model ===
        inputs = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="char_ids")
        x = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")(inputs)
        for index in range(num_layers):
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
            x = recurrent_layer(
                cell,
                units,
                return_sequences=True,
                stateful=stateful,
                recurrent_dropout=recurrent_dropout,
                name=f"recurrent_{index}",
            )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="output_dropout")(x)
        outputs = keras.layers.Dense(vocabulary_size, name="logits")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.stateful = stateful
        self.batch_size = batch_size

    def reset_states(self):
        """Zero the carried state of every recurrent layer (a no-op when not stateful).

        Truncated BPTT calls this at the start of every epoch and before evaluation.
        """
        for layer in self.layers:
            if isinstance(layer, keras.layers.RNN):
                layer.reset_state()

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "stateful": self.stateful,
            "batch_size": self.batch_size,
        }
