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

__all__ = ["SCORES", "SequenceAttention"]

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

    def scores(self, query, memory):
        """Unnormalised scores e, `(batch, steps, source_steps)` for a query
        `(batch, steps, query_dim)`."""
        if self.score == "additive":
            q = ops.matmul(query, self.query_kernel)[:, :, None, :]  # (B, T, 1, U)
            k = ops.matmul(memory, self.memory_kernel)[:, None, :, :]  # (B, 1, S, U)
            hidden = q + k if self.bias is None else q + k + self.bias
            return ops.sum(ops.tanh(hidden) * self.score_vector, axis=-1)
        if self.score == "general":
            query = ops.matmul(query, self.kernel)
        return ops.matmul(query, ops.transpose(memory, (0, 2, 1)))

    def call(self, query, memory, memory_mask=None, mask=None):
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
        scores = ops.cast(self.scores(query, memory), "float32")  # softmax in float32
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

    def compute_mask(self, query, memory, memory_mask=None, mask=None):
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
