"""`SimpleRNN`, `LSTM` and `GRU`: the cells as whole-sequence layers, with a fused fast path.

Each layer is a `keras.layers.RNN` over the matching cell (so it has every
`RNN` feature, and the same weights, maths and config story) and takes the
arguments of Keras's built-in layer of that name, with the same meaning. On the
TensorFlow backend it can run the whole sequence through the kernels of
`rnn_keras.fast` (input projection hoisted out of the loop, hand-written BPTT
with one large matmul for the recurrent-kernel gradient); the results equal the
generic `keras.layers.RNN(cell)` loop.

Which loop runs is chosen by the `use_fused` argument (after Keras's `use_cudnn`),
never by the layer's name or context:

* `"auto"` (default): the fused kernel where it applies (`fused_unavailable_reason`
  returns None), else the generic loop;
* `True`: the fused kernel, or a ValueError at construction that says why it
  cannot apply;
* `False`: always `keras.layers.RNN`'s loop over the cell.

The fused kernel applies on the TensorFlow backend, with `unroll=False`, `tanh`
as `activation` and `sigmoid` as `recurrent_activation` (its gradients are
written for those), however the user named them (`"tanh"`, `keras.ops.tanh`,
`tf.tanh`, ...). Masks, `dropout`/`recurrent_dropout`, `return_sequences`/
`return_state`, `stateful`, `go_backwards`, `initial_state`, stacking and
`Bidirectional` all take it.

Two arguments are accepted for Keras compatibility and change nothing here:

* `implementation` (1 or 2, default 2) has Keras's meaning, a performance hint
  on how the cell splits its matmuls. Both give the same results in Keras, and
  here they run the same code: the value is stored and saved, nothing more.
  (Up to rnn_keras 0.3, `implementation` chose the loop as "auto"/"fused"/"generic";
  `from_config` reads those saved values as `use_fused` "auto"/True/False.)
* `use_cudnn` ("auto", True or False) asks Keras for its cuDNN kernel, which
  only exists on CUDA GPUs; these layers run their own kernels, so it is stored
  and saved and has no effect (`use_fused` chooses the kernel).

Every keyword `keras.layers.SimpleRNN`/`LSTM`/`GRU` accept is accepted here
with the same meaning (so `from_config` reads their configs too), except that
`GRU` refuses `reset_after=True` (see `GRUCell`).
"""

import numbers

import keras
from keras import activations, ops, regularizers

from rnn_keras.layers.cells import GRUCell, LSTMCell, SimpleRNNCell, get_cell

__all__ = ["SimpleRNN", "LSTM", "GRU", "LAYERS", "get_layer", "fused_unavailable_reason"]

USE_FUSED = USE_CUDNN = ("auto", True, False)  # the values of each switch
IMPLEMENTATIONS = (1, 2)
# `implementation` before it took Keras's meaning (saved configs may hold these): the
# `use_fused` value each one means.
_LEGACY_IMPLEMENTATIONS = {"auto": "auto", "fused": True, "generic": False}
# Arguments that belong to keras.layers.RNN.
_RNN_ARGS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
    "activity_regularizer",
)
# Arguments of a layer's cell (each layer adds its cell's own, e.g. `unit_forget_bias`).
_CELL_ARGS = (
    "activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)
# Arguments the layer itself stores and saves.
_LAYER_ARGS = ("use_fused", "implementation", "use_cudnn", "batch_splits", "steps_per_iteration")


def activation_set(name):
    """Every callable that computes the activation `name`, as users may pass it."""
    functions = {activations.get(name), getattr(ops, name)}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        functions.add(getattr(tf.math, name))
    return functions


def fused_unavailable_reason(layer):
    """Why `layer` cannot run the fused kernel, or None where it can.

    The one eligibility rule of the fast path (compare `cudnn_ok` in Keras's
    TensorFlow backend); `use_fused="auto"` falls back to the generic loop
    where it returns a reason, and `use_fused=True` raises it.
    """
    cell = layer.cell
    if keras.backend.backend() != "tensorflow":
        return f"the fused kernel is TensorFlow-only (backend: {keras.backend.backend()!r})"
    if layer.unroll:
        return "unroll=True asks for keras.layers.RNN's unrolled loop"
    if cell.activation not in activation_set("tanh"):
        return (
            f"its gradient is written for activation=tanh (received: "
            f"{activations.serialize(cell.activation)!r})"
        )
    recurrent_activation = getattr(cell, "recurrent_activation", None)
    if recurrent_activation is not None and recurrent_activation not in activation_set("sigmoid"):
        return (
            f"its gradient is written for recurrent_activation=sigmoid (received: "
            f"{activations.serialize(recurrent_activation)!r})"
        )
    return None


def _check_stateful_replicas(name, batch_size):
    """Raises where a stateful layer is built under a tf.distribute strategy of several replicas.

    A stateful layer's state variables hold one state per row of the batch it was
    built for; under a strategy each replica runs a slice of every batch, and
    Keras's state variables cannot hold a different slice on each replica.
    """
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if strategy.num_replicas_in_sync > 1:
        raise ValueError(
            f"{name}(stateful=True) cannot run under a tf.distribute strategy with more than "
            f"one replica: its states are carried for the {batch_size} rows of the whole "
            "batch, while each replica runs a slice of it. Expected: no strategy or one "
            "replica in sync (or stateful=False). Received: "
            f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replicas in sync"
        )


def _arguments(local_variables):
    """A subclass constructor's arguments (its `locals()`), `**kwargs` merged in."""
    arguments = {k: v for k, v in local_variables.items() if k not in ("self", "__class__")}
    kwargs = arguments.pop("kwargs")
    return {**arguments, **kwargs}


def _is_one_of(value, allowed):
    """`value in allowed`, but without 1 == True or 0 == False (or 2.0 == 2) passing."""
    return any(type(value) is type(a) and value == a for a in allowed)


class SequenceLayer(keras.layers.RNN):
    """An RNN that owns its cell and may run the whole sequence in one fused kernel.

    Subclasses set `cell_class`, `cell_arguments` and `_run_kernel`, and list
    their arguments explicitly (Keras's order and defaults); everything arrives
    here by name. The cell's arguments go to the cell, `keras.layers.RNN`'s to
    it, this layer's own (`use_fused`, ...) are stored, and the rest (`name`,
    `dtype`, `trainable`, `input_shape`, ...) go to `keras.layers.Layer`.
    """

    cell_class = None
    cell_arguments = _CELL_ARGS

    def __init__(
        self,
        units,
        use_fused="auto",
        implementation=2,
        use_cudnn="auto",
        batch_splits="auto",
        steps_per_iteration=4,
        **arguments,
    ):
        name = type(self).__name__
        if not _is_one_of(use_fused, USE_FUSED):
            raise ValueError(
                f"{name}: `use_fused` must be 'auto', True or False. "
                f"Received: use_fused={use_fused!r}"
            )
        if isinstance(implementation, str) and implementation in _LEGACY_IMPLEMENTATIONS:
            raise ValueError(
                f"{name}: `implementation` has Keras's meaning now, 1 or 2 (no effect on the "
                f"results), and `use_fused` chooses the loop. Received: "
                f"implementation={implementation!r}; for the loop it chose, pass "
                f"use_fused={_LEGACY_IMPLEMENTATIONS[implementation]!r}"
            )
        if isinstance(implementation, numbers.Integral) and not isinstance(implementation, bool):
            implementation = int(implementation)  # a NumPy integer, say
        if not _is_one_of(implementation, IMPLEMENTATIONS):
            raise ValueError(
                f"{name}: `implementation` must be 1 or 2, as in Keras. "
                f"Received: implementation={implementation!r}"
            )
        if not _is_one_of(use_cudnn, USE_CUDNN):
            raise ValueError(
                f"{name}: `use_cudnn` must be 'auto', True or False, as in Keras. "
                f"Received: use_cudnn={use_cudnn!r}"
            )
        if batch_splits != "auto" and (
            not isinstance(batch_splits, int) or isinstance(batch_splits, bool) or batch_splits < 1
        ):
            raise ValueError(
                f"{name}: `batch_splits` must be 'auto' or a positive integer. "
                f"Received: batch_splits={batch_splits!r}"
            )
        if (
            not isinstance(steps_per_iteration, int)
            or isinstance(steps_per_iteration, bool)
            or steps_per_iteration < 1
        ):
            raise ValueError(
                f"{name}: `steps_per_iteration` must be a positive integer. "
                f"Received: steps_per_iteration={steps_per_iteration!r}"
            )
        shared_cell = arguments.pop("cell", None)
        cell_arguments = {k: arguments.pop(k) for k in self.cell_arguments if k in arguments}
        rnn_arguments = {k: arguments.pop(k) for k in _RNN_ARGS if k in arguments}
        layer_arguments = arguments  # name, dtype, trainable, input_shape, ...
        cell = shared_cell or self.cell_class(
            units,
            dtype=layer_arguments.get("dtype"),
            trainable=layer_arguments.get("trainable", True),
            name=self.cell_class.__name__.lower(),
            **cell_arguments,
        )
        super().__init__(cell, **rnn_arguments, **layer_arguments)
        self.input_spec = keras.layers.InputSpec(ndim=3)
        self.use_fused = use_fused
        self.implementation = implementation
        self.use_cudnn = use_cudnn
        self.batch_splits = batch_splits
        self.steps_per_iteration = steps_per_iteration
        if use_fused is True:
            reason = fused_unavailable_reason(self)
            if reason is not None:
                raise ValueError(
                    f"{name}(use_fused=True) cannot run the fused kernel: {reason}. "
                    "Use use_fused='auto' (falls back to the generic loop) or False."
                )

    def build(self, sequences_shape, initial_state_shape=None):
        if self.stateful:
            _check_stateful_replicas(type(self).__name__, sequences_shape[0])
        super().build(sequences_shape, initial_state_shape)

    # -- fast path -------------------------------------------------------------

    def uses_fast_path(self):
        """Whether calls run the fused kernel (True) or the generic per-step loop."""
        return self.use_fused is not False and fused_unavailable_reason(self) is None

    def resolved_batch_splits(self):
        """The number of concurrent time loops: `batch_splits`, with "auto" resolved.

        "auto" is 2 on a CPU (independent loops over halves of the batch keep
        two cores busy) and 1 where a GPU is visible.
        """
        if self.batch_splits != "auto":
            return self.batch_splits
        import tensorflow as tf

        return 1 if tf.config.list_physical_devices("GPU") else 2

    def call(self, sequences, initial_state=None, mask=None, training=False):
        # One dropout mask per sequence: drawn in `inner_loop`, before the time loop, and
        # forgotten after the call.
        self.cell.reset_dropout_masks()
        try:
            return super().call(sequences, initial_state, mask=mask, training=training)
        finally:
            self.cell.reset_dropout_masks()

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self.uses_fast_path():
            self.cell.get_dropout_mask(sequences[:, 0])
            self.cell.get_recurrent_dropout_mask(initial_state[0])
            return super().inner_loop(sequences, initial_state, mask, training=training)
        import tensorflow as tf

        from rnn_keras.layers import fused

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
        hidden, states = fused.in_batch_parts(
            self._run_kernel,
            projection,
            tf.convert_to_tensor(cell.recurrent_kernel),
            list(initial_state),
            step_mask,
            recurrent_mask,
            parts=self.resolved_batch_splits(),
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

    def sharing_weights(self, **overrides):
        """A layer of the same class and config (with `overrides`) that uses this layer's cell.

        The two layers read and train the same weights. For example, a stateful
        layer trained with truncated BPTT and a stateless copy that serves
        sequences of any batch size: `layer.sharing_weights(stateful=False)`.
        Overrides of the cell's own arguments (`units`, `dropout`, ...) are
        refused, since the cell is shared as it is.
        """
        cell_arguments = set(self.cell.get_config()) - {"name", "dtype", "trainable"}
        refused = sorted(set(overrides) & cell_arguments)
        if refused:
            raise ValueError(
                f"{type(self).__name__}.sharing_weights: the cell is shared as it is, so its "
                f"arguments cannot change. Received overrides of: {refused}"
            )
        return type(self)(**{**self.get_config(), "name": None, **overrides, "cell": self.cell})

    # -- config ----------------------------------------------------------------

    @property
    def units(self):
        return self.cell.units

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "cell"}
        cell_config = self.cell.get_config()
        for key in ("name", "dtype", "trainable"):
            cell_config.pop(key, None)
        # Always present, as in Keras's layers (keras.layers.Layer omits it when None).
        config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        own = {k: getattr(self, k) for k in _LAYER_ARGS}
        return {**cell_config, **config, **own}

    @classmethod
    def from_config(cls, config):
        """The layer of `config`: ours, `keras.layers.SimpleRNN`/`LSTM`/`GRU`'s, or a legacy one.

        Configs saved by rnn_keras 0.3 and before hold "auto", "fused" or
        "generic" in `implementation`, which chose the loop; they load as
        `use_fused` "auto", True or False, with Keras's `implementation=2`.
        """
        config = dict(config)
        legacy = config.get("implementation")
        if isinstance(legacy, str) and legacy in _LEGACY_IMPLEMENTATIONS:
            if "use_fused" in config:
                raise ValueError(
                    f"{cls.__name__}.from_config: a config holds either a legacy "
                    "`implementation` string or `use_fused`, not both. Received: "
                    f"implementation={legacy!r}, use_fused={config['use_fused']!r}"
                )
            config["use_fused"] = _LEGACY_IMPLEMENTATIONS[legacy]
            config["implementation"] = 2
        return cls(**config)


_ARGS_DOC = """
    Args:
        units: positive integer, the size of the state `h_t`.
        activation: the cell's output activation (default tanh).{recurrent_activation}
        use_bias: whether the cell has a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of
            `kernel`, `recurrent_kernel` and `bias`.{unit_forget_bias}
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers of
            the same weights.
        activity_regularizer: regularizer of the layer's output.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints of the
            same weights.
        dropout: rate in [0, 1) of the input dropout; one mask per sequence.
        recurrent_dropout: rate in [0, 1) of the dropout on `h_{{t-1}}`; one mask per
            sequence.
        seed: seed of the dropout masks.
        return_sequences: return every step's output, not only the last.
        return_state: also return the final states.
        go_backwards: read the sequence backwards (and return the outputs reversed).
        stateful: carry the final states into the next batch (needs a fixed batch size).
        unroll: unroll the time loop in Python (the generic loop; short sequences only).
        zero_output_for_mask: output zeros, not the previous output, at masked steps.{reset_after}
        use_fused: which loop runs (module docstring): "auto" (the fused kernel where
            it applies, else the generic loop), True (the fused kernel, or a
            ValueError at construction saying why not) or False (the generic loop).
        implementation: 1 or 2, Keras's performance hint; stored and saved, no effect
            here (both give the same results, as in Keras).
        use_cudnn: "auto", True or False, Keras's switch for its cuDNN kernel (CUDA
            GPUs only); stored and saved, no effect here (`use_fused` chooses the kernel).
        batch_splits: "auto" or a positive integer: the fused kernel runs this many
            independent time loops over slices of the batch at once, so that the
            cores of a CPU work in parallel. "auto" is 2 without a GPU, 1 with one.
            Inside `Bidirectional`, whose two directions already run side by side,
            1 is faster (`rnn_keras.recurrent_layer` sets it).
        steps_per_iteration: time steps per iteration of the fused kernel's
            `tf.while_loop` (partial unrolling, which shares the loop's control-flow
            cost among the steps).
        **kwargs: the arguments of `keras.layers.Layer` (`name`, `dtype`, `trainable`,
            ...).
"""
_RECURRENT_ACTIVATION_DOC = """
        recurrent_activation: the gates' activation (default sigmoid)."""


def _args_doc(recurrent_activation=False, unit_forget_bias=False, reset_after=False):
    return _ARGS_DOC.format(
        recurrent_activation=_RECURRENT_ACTIVATION_DOC if recurrent_activation else "",
        unit_forget_bias="\n        unit_forget_bias: add 1 to the forget gate's initial bias."
        if unit_forget_bias
        else "",
        reset_after="\n        reset_after: must be False: this is the guide's GRU, with the "
        "reset gate\n            applied before the recurrent matmul (keras.layers.GRU has "
        "True)."
        if reset_after
        else "",
    )


@keras.saving.register_keras_serializable(package="rnn_keras")
class SimpleRNN(SequenceLayer):
    """`keras.layers.RNN(rnn_keras.SimpleRNNCell(units, ...))` with the fused fast path.

    The same arguments as `keras.layers.SimpleRNN`; see `SimpleRNNCell` for the
    equation and weights.
    """

    cell_class = SimpleRNNCell

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
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        seed=None,
        zero_output_for_mask=False,
        use_fused="auto",
        implementation=2,
        batch_splits="auto",
        steps_per_iteration=4,
        **kwargs,
    ):
        super().__init__(**_arguments(locals()))

    def _run_kernel(self, projection, recurrent_kernel, initial_state, mask, recurrent_mask):
        from rnn_keras.layers import fused

        hidden = fused.simple_rnn_sequence(
            projection,
            recurrent_kernel,
            initial_state[0],
            mask,
            recurrent_mask,
            steps_per_iteration=self.steps_per_iteration,
        )
        return hidden, [hidden[-1]]


@keras.saving.register_keras_serializable(package="rnn_keras")
class LSTM(SequenceLayer):
    """`keras.layers.RNN(rnn_keras.LSTMCell(units, ...))` with the fused fast path.

    The same arguments as `keras.layers.LSTM`; see `LSTMCell` for the equations,
    the gate order i, f, c, o and the weights. States `[h, c]`.
    """

    cell_class = LSTMCell
    cell_arguments = (*_CELL_ARGS, "recurrent_activation", "unit_forget_bias")

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        zero_output_for_mask=False,
        use_fused="auto",
        implementation=2,
        batch_splits="auto",
        steps_per_iteration=4,
        **kwargs,
    ):
        super().__init__(**_arguments(locals()))

    def _run_kernel(self, projection, recurrent_kernel, initial_state, mask, recurrent_mask):
        from rnn_keras.layers import fused

        hidden, c_last = fused.lstm_sequence(
            projection,
            recurrent_kernel,
            initial_state[0],
            initial_state[1],
            mask,
            recurrent_mask,
            steps_per_iteration=self.steps_per_iteration,
        )
        return hidden, [hidden[-1], c_last]


@keras.saving.register_keras_serializable(package="rnn_keras")
class GRU(SequenceLayer):
    """`keras.layers.RNN(rnn_keras.GRUCell(units, ...))` with the fused fast path.

    The arguments of `keras.layers.GRU`, except that `reset_after` must be False
    (the default here): this is the guide's GRU, with the reset gate applied
    before the recurrent matmul and `h_t = (1 - z) h_{t-1} + z h~`, the opposite
    sign of `keras.layers.GRU` (see `GRUCell`).
    """

    cell_class = GRUCell
    cell_arguments = (*_CELL_ARGS, "recurrent_activation")

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        reset_after=False,
        use_cudnn="auto",
        zero_output_for_mask=False,
        use_fused="auto",
        implementation=2,
        batch_splits="auto",
        steps_per_iteration=4,
        **kwargs,
    ):
        if reset_after is not False:
            raise ValueError(
                "GRU: rnn_keras's GRU is the guide's, with the reset gate applied before the "
                "recurrent matmul, so `reset_after` must be False. Received: "
                f"reset_after={reset_after!r} (keras.layers.GRU implements reset_after=True)"
            )
        arguments = _arguments(locals())
        arguments.pop("reset_after")
        super().__init__(**arguments)

    def _run_kernel(self, projection, recurrent_kernel, initial_state, mask, recurrent_mask):
        from rnn_keras.layers import fused

        hidden = fused.gru_sequence(
            projection,
            recurrent_kernel,
            initial_state[0],
            mask,
            recurrent_mask,
            steps_per_iteration=self.steps_per_iteration,
        )
        return hidden, [hidden[-1]]

    def get_config(self):
        return {**super().get_config(), "reset_after": False}


if SimpleRNN.__doc__:  # None under python -OO
    SimpleRNN.__doc__ += _args_doc()
    LSTM.__doc__ += _args_doc(recurrent_activation=True, unit_forget_bias=True)
    GRU.__doc__ += _args_doc(recurrent_activation=True, reset_after=True)

LAYERS = {"simple": SimpleRNN, "lstm": LSTM, "gru": GRU}


def get_layer(name):
    """The layer class for `name`: "simple", "lstm" or "gru" (case-insensitive)."""
    get_cell(name)  # validates the name
    return LAYERS[str(name).lower()]
