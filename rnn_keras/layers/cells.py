"""The guide's recurrent cells as Keras 3 layers.

Each cell processes one time step and is meant to be wrapped by
`keras.layers.RNN` (or `keras.layers.Bidirectional(keras.layers.RNN(...))`),
which supplies the time loop, masking, statefulness and `go_backwards`.

Conventions shared by all cells:

* Row-vector convention, as Keras: a step input `x_t` has shape
  `(batch, input_dim)` and a state `h_t` has shape `(batch, units)`, so the
  guide's `W_xh x_t` is `x_t @ kernel` and `W_hh h_{t-1}` is
  `h_{t-1} @ recurrent_kernel`, i.e. `kernel = W_xh^T`.
* Weights are fused across the G gates of a cell: `kernel` has shape
  `(input_dim, G * units)`, `recurrent_kernel` `(units, G * units)` and `bias`
  `(G * units,)`. Gate blocks sit side by side along the last axis in the same
  order as Keras's built-in cells, so weights move between the two with
  `set_weights(other.get_weights())` (see each cell for the GRU sign flip).
* `dropout` and `recurrent_dropout` draw one mask per sequence, reused at
  every step (variational dropout, Gal & Ghahramani 2016), as Keras's cells
  do: `rnn_keras.layers.dropout.DropoutMasks`.
"""

import keras
from keras import activations, constraints, initializers, ops, regularizers

from rnn_keras.layers.dropout import DropoutMasks

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "CELLS", "get_cell"]


class _FusedCell(keras.layers.Layer, DropoutMasks):
    """Shared constructor, weights, input checks and config of the fused cells.

    Subclasses set `num_gates` and `num_states` and implement `call`.
    """

    num_gates = 1
    num_states = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                f"{type(self).__name__}: `units` must be a positive integer. "
                f"Received: units={units!r}"
            )
        for arg_name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(
                    f"{type(self).__name__}: `{arg_name}` must be a rate in [0, 1). "
                    f"Received: {arg_name}={rate!r}"
                )
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = self.units if self.num_states == 1 else [self.units] * self.num_states
        self.output_size = self.units

    # -- weights ---------------------------------------------------------------

    def _make_bias_initializer(self):
        """The initializer of the fused bias; the LSTM folds in its forget bias."""
        return self.bias_initializer

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects each time step as a rank-2 "
                "tensor (batch, features) with a known feature size, i.e. sequences of shape "
                "(batch, time, features) in keras.layers.RNN. Received: a time step of shape "
                f"{input_shape} (sequences of rank {len(input_shape) + 1})."
            )
        super().build(input_shape)
        self.input_dim = int(input_shape[-1])
        fused = self.num_gates * self.units
        self.kernel = self.add_weight(
            shape=(self.input_dim, fused),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, fused),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(fused,),
                name="bias",
                initializer=self._make_bias_initializer(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None

    # -- per-step helpers ------------------------------------------------------

    def _check_step_input(self, inputs):
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects floating-point inputs "
                f"(float16, bfloat16, float32 or float64); integer token ids need a "
                f"keras.layers.Embedding first. Received: inputs with dtype={dtype} and "
                f"shape={tuple(inputs.shape)}."
            )
        features = inputs.shape[-1]
        if len(inputs.shape) != 2 or (features is not None and features != self.input_dim):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' was built for time steps of shape "
                f"(batch, {self.input_dim}), i.e. sequences (batch, time, {self.input_dim}). "
                f"Received: a time step of shape {tuple(inputs.shape)}."
            )

    def _input_matmul(self, inputs, training):
        """`x_t @ kernel`, after the sequence's input dropout mask."""
        self._check_step_input(inputs)
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        return ops.matmul(inputs, self.kernel)

    def _pre_activation(self, inputs, h_prev, training):
        """`x_t @ kernel + h_{t-1} @ recurrent_kernel + bias`, after the dropout masks.

        The bias is added last, to the sum: TensorFlow's graph optimizer fuses a
        MatMul directly followed by its BiasAdd into one oneDNN call, which is
        slower at these small per-step shapes (docs/benchmark.md).
        """
        z = self._input_matmul(inputs, training) + ops.matmul(
            self._recurrent_input(h_prev, training), self.recurrent_kernel
        )
        return ops.add(z, self.bias) if self.use_bias else z

    def _recurrent_input(self, h_prev, training):
        """`h_{t-1}` after the sequence's recurrent dropout mask."""
        if training and self.recurrent_dropout > 0.0:
            return h_prev * self.get_recurrent_dropout_mask(h_prev)
        return h_prev

    def get_initial_state(self, batch_size=None):
        # keras.layers.RNN asks for the zero state once per call, before its loop: a new
        # sequence, so new dropout masks.
        self.reset_dropout_masks()
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
            for _ in range(self.num_states)
        ]

    # -- config ----------------------------------------------------------------

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


class _GatedCell(_FusedCell):
    """A fused cell with gates, which adds `recurrent_activation` (the gates' sigmoid)."""

    def __init__(self, units, *, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
        }


@keras.saving.register_keras_serializable(package="rnn_keras")
class SimpleRNNCell(_FusedCell):
    """The guide's simple (Elman) RNN cell.

    Equation (row-vector form of the guide's `h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)`):

        h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)

    with `activation = tanh` by default. One gate (G = 1):

    * `kernel`: `(input_dim, units)`, the guide's `W_xh` transposed;
    * `recurrent_kernel`: `(units, units)`, `W_hh` transposed;
    * `bias`: `(units,)`, `b_h`.

    State: `h` of shape `(batch, units)`; the output is `h_t`. The guide's output
    layer `y_t = W_hy h_t + b_y` is a `keras.layers.Dense` on the RNN's
    sequence output. Weights are laid out exactly as `keras.layers.SimpleRNNCell`.

    Example:

    >>> layer = keras.layers.RNN(SimpleRNNCell(32), return_sequences=True)
    >>> layer(np.zeros((4, 10, 8), "float32")).shape
    (4, 10, 32)
    """

    num_gates = 1
    num_states = 1

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        h = self.activation(self._pre_activation(inputs, h_prev, training))
        new_states = [h] if isinstance(states, (list, tuple)) else h
        return h, new_states


@keras.saving.register_keras_serializable(package="rnn_keras")
class LSTMCell(_GatedCell):
    """The guide's LSTM cell (Hochreiter & Schmidhuber 1997, with forget gate).

    Equations, with `[x_t, h_{t-1}] @ W` written as `x_t @ kernel + h_{t-1} @ recurrent_kernel`:

        i_t  = sigmoid(x_t @ W_i + h_{t-1} @ U_i + b_i)        input gate
        f_t  = sigmoid(x_t @ W_f + h_{t-1} @ U_f + b_f)        forget gate
        c~_t = tanh   (x_t @ W_c + h_{t-1} @ U_c + b_c)        candidate cell
        o_t  = sigmoid(x_t @ W_o + h_{t-1} @ U_o + b_o)        output gate
        c_t  = f_t * c_{t-1} + i_t * c~_t
        h_t  = o_t * tanh(c_t)

    `sigmoid` is `recurrent_activation` and `tanh` is `activation`. Four gates
    (G = 4) fused in Keras's order **i, f, c, o**:

    * `kernel`: `(input_dim, 4 * units)` = `[W_i | W_f | W_c | W_o]`;
    * `recurrent_kernel`: `(units, 4 * units)` = `[U_i | U_f | U_c | U_o]`;
    * `bias`: `(4 * units,)` = `[b_i | b_f | b_c | b_o]`.

    The guide's `W_f` of shape `(hidden, input + hidden)` acting on the column
    `[x_t; h_{t-1}]` is `concat([W_f_block, U_f_block], axis=0)` transposed.

    States: `[h, c]`, each `(batch, units)`; the output is `h_t`.
    `unit_forget_bias=True` (default) initialises `b_f` to 1 and the other
    biases with `bias_initializer`: the guide's "proper initialization"
    (Jozefowicz et al. 2015). Weights are laid out exactly as
    `keras.layers.LSTMCell`, so `keras.layers.RNN(LSTMCell(n))` with
    `keras.layers.LSTM(n)`'s weights computes the same function.
    """

    num_gates = 4
    num_states = 2

    def __init__(self, units, *, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = unit_forget_bias

    def _make_bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def bias_with_forget_ones(_, *args, **kwargs):
            return ops.concatenate(
                [
                    base((units,), *args, **kwargs),
                    initializers.get("ones")((units,), *args, **kwargs),
                    base((2 * units,), *args, **kwargs),
                ]
            )

        return bias_with_forget_ones

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        z = self._pre_activation(inputs, h_prev, training)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_prev + i * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@keras.saving.register_keras_serializable(package="rnn_keras")
class GRUCell(_GatedCell):
    """The guide's GRU cell (Cho et al. 2014), exactly in the guide's form.

    Equations:

        z_t  = sigmoid(x_t @ W_z + h_{t-1} @ U_z + b_z)          update gate
        r_t  = sigmoid(x_t @ W_r + h_{t-1} @ U_r + b_r)          reset gate
        h~_t = tanh   (x_t @ W_h + (r_t * h_{t-1}) @ U_h + b_h)  candidate
        h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

    Two conventions differ between GRU implementations; this cell uses the
    guide's (and Cho et al.'s, and PyTorch's reset placement is *not* this):

    * **Reset before the recurrent matmul**: `r_t` multiplies `h_{t-1}` before
      `U_h` (Keras's `reset_after=False`; PyTorch and Keras's default
      `reset_after=True` apply it after).
    * **z weights the candidate**: `h_t = (1 - z) h_{t-1} + z h~`. Keras's GRU
      uses the opposite sign, `h_t = z h_{t-1} + (1 - z) h~`. Since
      `1 - sigmoid(a) = sigmoid(-a)`, negating the z-gate columns of `kernel`,
      `recurrent_kernel` and `bias` converts weights between the two.

    Three gates (G = 3) fused in Keras's order **z, r, h**:

    * `kernel`: `(input_dim, 3 * units)` = `[W_z | W_r | W_h]`;
    * `recurrent_kernel`: `(units, 3 * units)` = `[U_z | U_r | U_h]`;
    * `bias`: `(3 * units,)` = `[b_z | b_r | b_h]` (a single bias, as
      `keras.layers.GRUCell(reset_after=False)`).

    State: `h` of shape `(batch, units)`; the output is `h_t`. Recurrent dropout
    masks the `h_{t-1}` that enters the matmuls, not the carried `h_{t-1}` of
    the last equation (as Keras).
    """

    num_gates = 3
    num_states = 1

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        units = self.units
        x_zr, x_h = ops.split(self._input_matmul(inputs, training), [2 * units], axis=-1)
        h_rec = self._recurrent_input(h_prev, training)
        a_zr = x_zr + ops.matmul(h_rec, self.recurrent_kernel[:, : 2 * units])
        if self.use_bias:  # added after the sums; see _pre_activation
            a_zr = a_zr + self.bias[: 2 * units]
        z, r = ops.split(self.recurrent_activation(a_zr), 2, axis=-1)
        a_h = x_h + ops.matmul(r * h_rec, self.recurrent_kernel[:, 2 * units :])
        if self.use_bias:
            a_h = a_h + self.bias[2 * units :]
        candidate = self.activation(a_h)
        h = h_prev + z * (candidate - h_prev)  # = (1 - z) h_prev + z candidate
        new_states = [h] if isinstance(states, (list, tuple)) else h
        return h, new_states


CELLS = {"simple": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}


def get_cell(name):
    """The cell class for `name`: "simple", "lstm" or "gru" (case-insensitive)."""
    key = str(name).lower()
    if key not in CELLS:
        raise ValueError(
            f"Unknown cell {name!r}: expected one of {sorted(CELLS)}. Received: cell={name!r}"
        )
    return CELLS[key]
