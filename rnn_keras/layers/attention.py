"""Attention over an encoder's masked sequence output: the guide's answer to long-term
dependencies, as Bahdanau et al. (2015) and Luong et al. (2015) score it.

    attention = SequenceAttention(score="additive", units=128)
    context, weights = attention(decoder_states, encoder_outputs, memory_mask=source_mask)

Keras's own `AdditiveAttention` and `Attention` score a query against keys of the
same width with no learned projection; these scores carry theirs, so a decoder
state and a (bidirectional) encoder output of other widths can be compared.
"""

import keras
from keras import ops

__all__ = ["SCORES", "AttentionDecoder", "SequenceAttention"]

SCORES = ("additive", "general", "dot")
_MASKED = -1e9  # the score of a padded source position: exp(-1e9 - max) is 0 in float32


@keras.saving.register_keras_serializable(package="rnn_keras")
class SequenceAttention(keras.layers.Layer):
    """Scores each memory position s (an encoder output k_s) against a query q (a decoder
    state), normalises the scores over the unmasked positions and averages the memory:

        additive (Bahdanau):  e_s = v^T tanh(W_q q + W_k k_s + b)
        general (Luong):      e_s = q^T W k_s
        dot (Luong):          e_s = q^T k_s            (q and k_s of one width)
        a_s = exp(e_s) / sum_{s' unmasked} exp(e_s')   (0 where masked)
        context = sum_s a_s k_s

    Args:
        score: "additive", "general" or "dot".
        units: the width of the additive score's hidden layer (v, W_q, W_k); ignored
            by the other scores (None there).
        use_bias: whether the additive score has the bias b.
        kernel_initializer: initializer of W_q, W_k, W and v.
        **kwargs: `name`, `dtype`.

    Call arguments:
        query: `(batch, query_dim)` (one decoder step) or `(batch, steps, query_dim)`
            (every step at once, as in teacher forcing).
        memory: `(batch, source_steps, memory_dim)`.
        memory_mask: boolean `(batch, source_steps)`, True for real positions
            (default: the memory's Keras mask, else every position). A row with no
            real position gets weights 0 and a context of zeros.

    Returns:
        `(context, weights)`: `(batch, [steps,] memory_dim)` and
        `(batch, [steps,] source_steps)`.
    """

    def __init__(
        self,
        score="additive",
        units=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(
                f"SequenceAttention: `score` must be one of {SCORES}. Received: score={score!r}"
            )
        if score == "additive" and (not isinstance(units, int) or units < 1):
            raise ValueError(
                "SequenceAttention: the additive score needs `units`, a positive integer. "
                f"Received: units={units!r}"
            )
        self.score = score
        self.units = units if score == "additive" else None
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, query_shape, memory_shape):
        query_dim, memory_dim = query_shape[-1], memory_shape[-1]
        if query_dim is None or memory_dim is None:
            raise ValueError(
                "SequenceAttention: the last axes of query and memory must be known. "
                f"Received: query_shape={query_shape}, memory_shape={memory_shape}"
            )
        if self.score == "dot" and query_dim != memory_dim:
            raise ValueError(
                "SequenceAttention: the dot score needs a query and memory of one width. "
                f"Received: query width {query_dim}, memory width {memory_dim}"
            )
        initializer = self.kernel_initializer
        if self.score == "additive":
            self.query_kernel = self.add_weight(
                shape=(query_dim, self.units), initializer=initializer, name="query_kernel"
            )
            self.memory_kernel = self.add_weight(
                shape=(memory_dim, self.units), initializer=initializer, name="memory_kernel"
            )
            self.score_vector = self.add_weight(
                shape=(self.units,), initializer=initializer, name="score_vector"
            )
            self.bias = None
            if self.use_bias:
                self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        elif self.score == "general":
            self.kernel = self.add_weight(
                shape=(query_dim, memory_dim), initializer=initializer, name="kernel"
            )

    def keys(self, memory):
        """What the score reads of the memory, once per source: W_k k_s for the additive
        score, the memory itself for the others. A decoder computes it before its loop."""
        return ops.matmul(memory, self.memory_kernel) if self.score == "additive" else memory

    def scores(self, query, keys):
        """Unnormalised scores e, `(batch, steps, source_steps)` for a query
        `(batch, steps, query_dim)` and the memory's `keys`."""
        if self.score == "additive":
            q = ops.matmul(query, self.query_kernel)[:, :, None, :]  # (B, T, 1, U)
            hidden = q + keys[:, None, :, :]  # (B, T, S, U)
            hidden = hidden if self.bias is None else hidden + self.bias
            return ops.sum(ops.tanh(hidden) * self.score_vector, axis=-1)
        if self.score == "general":
            query = ops.matmul(query, self.kernel)
        return ops.matmul(query, ops.transpose(keys, (0, 2, 1)))

    def call(self, query, memory, memory_mask=None, keys=None, mask=None):
        if memory_mask is None and isinstance(mask, list | tuple) and len(mask) == 2:
            memory_mask = mask[1]
        if len(query.shape) not in (2, 3) or len(memory.shape) != 3:
            raise ValueError(
                "SequenceAttention: expected a query (batch, [steps,] width) and a memory "
                f"(batch, source_steps, width). Received: query shape {query.shape}, memory "
                f"shape {memory.shape}"
            )
        single_step = len(query.shape) == 2
        if single_step:
            query = query[:, None, :]
        keys = self.keys(memory) if keys is None else keys
        scores = ops.cast(self.scores(query, keys), "float32")  # softmax in float32
        if memory_mask is not None:
            real = ops.cast(memory_mask, "bool")[:, None, :]
            scores = ops.where(real, scores, _MASKED)
        weights = ops.softmax(scores, axis=-1)
        if memory_mask is not None:  # an all-padding row: weights 0, context 0
            weights = weights * ops.cast(real, weights.dtype)
        weights = ops.cast(weights, memory.dtype)
        context = ops.matmul(weights, memory)
        if single_step:
            return context[:, 0], weights[:, 0]
        return context, weights

    def compute_mask(self, query, memory, memory_mask=None, keys=None, mask=None):
        return None

    def compute_output_shape(self, query_shape, memory_shape):
        leading = tuple(query_shape[:-1])
        return leading + (memory_shape[-1],), leading + (memory_shape[1],)

    def get_config(self):
        return {
            **super().get_config(),
            "score": self.score,
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="rnn_keras")
class AttentionDecoder(keras.layers.Layer):
    """Luong et al. (2015)'s attentional decoder, with input feeding, over an rnn_keras cell:

        x'_t = [x_t; h~_{t-1}]              (input feeding; x'_t = x_t without it)
        h_t, s_t = cell(x'_t, s_{t-1})      (s: the cell's states, h_t its output)
        c_t, a_t = attention(h_t, memory)   (a_t: weights over the source, 0 where masked)
        h~_t = tanh(W_c [c_t; h_t])         (the attentional vector, `units` wide)

    with h~_0 = 0. Teacher forcing: `call` runs every step of a target sequence
    (x_t the embedding of the previous target token); `step` runs one, for
    greedy and beam search.

    Args:
        cell: an rnn_keras (or Keras) RNN cell, e.g. `rnn_keras.LSTMCell(256)`.
        attention: a `SequenceAttention`, or None for the same decoder without attention
            (h~_t = tanh(W_c h_t); the weights it returns are zeros): the baseline that
            sees the source only through its initial state.
        units: the width of h~ (default: the cell's).
        input_feeding: whether h~_{t-1} joins the next input.
        **kwargs: `name`, `dtype`.

    Call arguments:
        inputs: `(batch, steps, input_dim)`.
        memory: the encoder's outputs, `(batch, source_steps, memory_dim)`.
        memory_mask: boolean `(batch, source_steps)` (default: the memory's Keras mask).
        initial_state: the cell's states (a list; default zeros), e.g. from the encoder.
        training: passed to the cell.

    Returns:
        `(attentional, weights, state)`: h~ `(batch, steps, units)`, the attention
        weights `(batch, steps, source_steps)` and the final state (the cell's
        states, then h~), which `step` continues from.
    """

    def __init__(self, cell, attention, units=None, input_feeding=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if isinstance(attention, dict):
            attention = keras.saving.deserialize_keras_object(attention)
        if attention is not None and not isinstance(attention, SequenceAttention):
            raise ValueError(
                "AttentionDecoder: `attention` must be an rnn_keras.SequenceAttention or None. "
                f"Received: attention={attention!r}"
            )
        self.cell = cell
        self.attention = attention
        self.units = units or cell.output_size
        self.input_feeding = input_feeding
        self.combine = keras.layers.Dense(
            self.units, activation="tanh", use_bias=False, name="attentional"
        )
        self.supports_masking = True

    @property
    def _state_sizes(self):
        sizes = self.cell.state_size
        return list(sizes) if isinstance(sizes, list | tuple) else [sizes]

    def build(self, inputs_shape, memory_shape):
        input_dim = inputs_shape[-1] + (self.units if self.input_feeding else 0)
        batch = inputs_shape[0]
        context_dim = 0 if self.attention is None else memory_shape[-1]
        sublayers = (  # a loaded decoder's cell and attention come built from their configs
            (self.cell, [(batch, input_dim)]),
            (self.attention, [(batch, self.cell.output_size), memory_shape]),
            (self.combine, [(batch, context_dim + self.cell.output_size)]),
        )
        for layer, shapes in sublayers:
            if layer is not None and not layer.built:
                layer.build(*shapes)

    def initial_state(self, batch_size):
        """Zeros: the cell's states, then h~_0."""
        sizes = [*self._state_sizes, self.units]
        return [ops.zeros((batch_size, size), self.compute_dtype) for size in sizes]

    def step(self, inputs, state, memory, memory_mask=None, training=False, keys=None):
        """One step: `inputs` `(batch, input_dim)`, `state` as `call` returns it ->
        `(h~ (batch, units), weights (batch, source_steps), new state)`. `keys`:
        `attention.keys(memory)`, computed once per source (default: here)."""
        *cell_state, attentional = state
        if self.input_feeding:
            inputs = ops.concatenate([inputs, attentional], axis=-1)
        output, cell_state = self.cell(inputs, cell_state, training=training)
        cell_state = list(cell_state) if isinstance(cell_state, list | tuple) else [cell_state]
        if self.attention is None:
            weights = ops.zeros((ops.shape(memory)[0], ops.shape(memory)[1]), output.dtype)
            attentional = self.combine(output)
        else:
            context, weights = self.attention(output, memory, memory_mask, keys=keys)
            attentional = self.combine(ops.concatenate([context, output], axis=-1))
        return attentional, weights, [*cell_state, attentional]

    def call(self, inputs, memory, memory_mask=None, initial_state=None, training=False, mask=None):
        if memory_mask is None and isinstance(mask, list | tuple) and len(mask) == 2:
            memory_mask = mask[1]
        batch_size = ops.shape(inputs)[0]
        state = self.initial_state(batch_size)
        if initial_state is not None:
            state = [*list(initial_state), state[-1]]

        # Keras's TensorFlow scan stacks outputs shaped as the carry, so the carry also holds
        # the step's attention weights and the outputs are the carries of every step.
        weights = ops.zeros((batch_size, ops.shape(memory)[1]), self.compute_dtype)

        keys = None if self.attention is None else self.attention.keys(memory)  # once

        def body(carry, x_t):
            _, weights, state = self.step(x_t, carry[:-1], memory, memory_mask, training, keys)
            carry = [*state, ops.cast(weights, self.compute_dtype)]
            return carry, carry

        carry, steps = ops.scan(body, [*state, weights], ops.transpose(inputs, (1, 0, 2)))
        attentional, weights = steps[-2], steps[-1]
        return (
            ops.transpose(attentional, (1, 0, 2)),
            ops.transpose(weights, (1, 0, 2)),
            carry[:-1],
        )

    def compute_mask(self, inputs, memory, memory_mask=None, initial_state=None, mask=None):
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "cell": keras.saving.serialize_keras_object(self.cell),
            "attention": None
            if self.attention is None
            else keras.saving.serialize_keras_object(self.attention),
            "units": self.units,
            "input_feeding": self.input_feeding,
        }
