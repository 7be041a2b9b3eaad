"""The recurrent encoder every task is built on, in the manner of keras-hub's backbones.

`RecurrentBackbone` is the encoder: token ids (or float features) -> optional
`Embedding` -> stacked, optionally bidirectional rnn_keras layers -> the
sequence of the last layer's outputs. A task (`rnn_keras.models`) wraps a
backbone object and adds a head. Every model here is a functional `keras.Model`
whose `get_config` returns its constructor arguments, and holds its layers as
attributes: code that needs the embedding or the recurrent layers asks the
backbone for them, never for a layer name. Sharing a backbone object between
two tasks shares its weights: language-model pretraining followed by
classification is `SequenceClassifier(lm.backbone)`.
"""

import keras

from rnn_keras.layers.recurrent import get_layer

__all__ = ["recurrent_layer", "RecurrentBackbone"]


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
