"""`SimpleRNN`, `LSTM` and `GRU`: the cells as whole-sequence layers, with a fast path.

Each layer is a `keras.layers.RNN` over the matching cell (so it has every
`RNN` feature, and the same weights, maths and config story), with the same
constructor arguments as Keras's built-in layer of that name. On the
TensorFlow backend it runs the sequence through the kernels of
`rnn_keras.fast` (input projection hoisted out of the loop, hand-written BPTT
with one large matmul for the recurrent-kernel gradient); the results equal the
generic `keras.layers.RNN(cell)` loop, which the layer falls back to where the
fast path does not apply:

* another Keras backend than TensorFlow;
* `unroll=True`;
* an `activation` other than tanh, or a `recurrent_activation` other than
  sigmoid (the hand-written gradients assume those).

Masks, `dropout`/`recurrent_dropout`, `return_sequences`/`return_state`,
`stateful`, `go_backwards`, `initial_state`, stacking and `Bidirectional` all
take the fast path.
"""

import keras
from keras import activations, ops

from rnn_keras.cells import GRUCell, LSTMCell, SimpleRNNCell, get_cell

__all__ = ["SimpleRNN", "LSTM", "GRU", "LAYERS", "get_layer"]

_RNN_ARGS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
)
_LAYER_ARGS = ("name", "dtype", "trainable")


class _SequenceLayer(keras.layers.RNN):
    """An RNN that owns its cell and may run the whole sequence in one fused kernel."""

    cell_class = None

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        layer_kwargs = {k: kwargs.pop(k) for k in _LAYER_ARGS if k in kwargs}
        cell = self.cell_class(
            units,
            dtype=layer_kwargs.get("dtype"),
            trainable=layer_kwargs.get("trainable", True),
            name=f"{self.cell_class.__name__.lower()}",
            **kwargs,
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **layer_kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)

    # -- fast path -------------------------------------------------------------

    def uses_fast_path(self):
        """Whether calls run the fused kernel (True) or the generic per-step loop."""
        cell = self.cell
        return (
            keras.backend.backend() == "tensorflow"
            and not self.unroll
            and cell.activation is activations.tanh
            and getattr(cell, "recurrent_activation", activations.sigmoid) is activations.sigmoid
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self.uses_fast_path():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        import tensorflow as tf

        from rnn_keras import fast

        cell = self.cell
        cell._check_step_input(sequences[:, 0])
        if training and cell.dropout > 0.0:
            sequences = sequences * ops.expand_dims(cell.get_dropout_mask(sequences[:, 0]), 1)
        recurrent_mask = None
        if training and cell.recurrent_dropout > 0.0:
            recurrent_mask = cell.get_recurrent_dropout_mask(initial_state[0])

        # Time-major, in processing order.
        inputs = tf.transpose(sequences, [1, 0, 2])
        step_mask = None
        if mask is not None:
            step_mask = tf.cast(tf.transpose(mask, [1, 0])[:, :, None], inputs.dtype)
        if self.go_backwards:
            inputs = tf.reverse(inputs, [0])
            step_mask = None if step_mask is None else tf.reverse(step_mask, [0])

        # One matmul for the input projection of every step.
        projection = tf.matmul(
            tf.reshape(inputs, [-1, inputs.shape[-1]]), tf.convert_to_tensor(cell.kernel)
        )
        if cell.use_bias:
            projection += tf.convert_to_tensor(cell.bias)
        projection = tf.reshape(
            projection, tf.concat([tf.shape(inputs)[:2], [projection.shape[-1]]], 0)
        )
        hidden, states = fast.in_batch_parts(
            self._run_kernel,
            projection,
            tf.convert_to_tensor(cell.recurrent_kernel),
            list(initial_state),
            step_mask,
            recurrent_mask,
            parts=1 if self._inside_bidirectional() else None,
        )

        # Outputs as keras.layers.RNN defines them: at a padded step, the previous output
        # (zero before the first real step), or zero with zero_output_for_mask.
        outputs = hidden
        if step_mask is not None:
            if self.zero_output_for_mask:
                outputs = hidden * step_mask
            else:
                outputs = hidden * tf.cast(tf.cumsum(step_mask, axis=0) > 0, hidden.dtype)
        last_output = outputs[-1]
        if self.return_sequences:
            outputs = tf.transpose(outputs, [1, 0, 2])
        else:
            outputs = last_output[:, None]
        return last_output, outputs, states

    def _run_kernel(self, projection, recurrent_kernel, initial_state, mask, recurrent_mask):
        """(hidden states (T, B, H), final states list) from the cell's fused kernel."""
        raise NotImplementedError

    def _inside_bidirectional(self):
        """Whether this is one of the two copies `keras.layers.Bidirectional` makes.

        Its two directions already run at the same time, so splitting the batch
        into more time loops (`fast.in_batch_parts`) only adds overhead there
        (measured). Bidirectional names its copies "forward_..." and "backward_...".
        """
        return self.name.startswith(("forward_", "backward_"))

    # -- config ----------------------------------------------------------------

    @property
    def units(self):
        return self.cell.units

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "cell"}
        cell_config = self.cell.get_config()
        for key in ("name", "dtype", "trainable"):
            cell_config.pop(key, None)
        return {**cell_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="rnn_keras")
class SimpleRNN(_SequenceLayer):
    """`keras.layers.RNN(rnn_keras.SimpleRNNCell(units, ...))` with the fused fast path.

    Takes `SimpleRNNCell`'s arguments (see its docstring for the equations and
    weights) and `keras.layers.RNN`'s (`return_sequences`, `return_state`,
    `go_backwards`, `stateful`, `unroll`, `zero_output_for_mask`).
    """

    cell_class = SimpleRNNCell

    def _run_kernel(self, projection, recurrent_kernel, initial_state, mask, recurrent_mask):
        from rnn_keras import fast

        hidden = fast.simple_rnn_sequence(
            projection, recurrent_kernel, initial_state[0], mask, recurrent_mask
        )
        return hidden, [hidden[-1]]


@keras.saving.register_keras_serializable(package="rnn_keras")
class LSTM(_SequenceLayer):
    """`keras.layers.RNN(rnn_keras.LSTMCell(units, ...))` with the fused fast path.

    Takes `LSTMCell`'s arguments (see its docstring for the equations, gate
    order i, f, c, o and weights) and `keras.layers.RNN`'s. States `[h, c]`.
    """

    cell_class = LSTMCell

    def _run_kernel(self, projection, recurrent_kernel, initial_state, mask, recurrent_mask):
        from rnn_keras import fast

        hidden, c_last = fast.lstm_sequence(
            projection,
            recurrent_kernel,
            initial_state[0],
            initial_state[1],
            mask,
            recurrent_mask,
        )
        return hidden, [hidden[-1], c_last]


@keras.saving.register_keras_serializable(package="rnn_keras")
class GRU(_SequenceLayer):
    """`keras.layers.RNN(rnn_keras.GRUCell(units, ...))` with the fused fast path.

    Takes `GRUCell`'s arguments (see its docstring: the guide's form, reset
    before the recurrent matmul and `h_t = (1 - z) h_{t-1} + z h~`, the opposite
    sign of `keras.layers.GRU`) and `keras.layers.RNN`'s.
    """

    cell_class = GRUCell

    def _run_kernel(self, projection, recurrent_kernel, initial_state, mask, recurrent_mask):
        from rnn_keras import fast

        hidden = fast.gru_sequence(
            projection, recurrent_kernel, initial_state[0], mask, recurrent_mask
        )
        return hidden, [hidden[-1]]


LAYERS = {"simple": SimpleRNN, "lstm": LSTM, "gru": GRU}


def get_layer(name):
    """The layer class for `name`: "simple", "lstm" or "gru" (case-insensitive)."""
    get_cell(name)  # validates the name
    return LAYERS[str(name).lower()]
