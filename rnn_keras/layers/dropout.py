"""One dropout mask per sequence for a recurrent cell: variational dropout (Gal & Ghahramani
2016), the behaviour of Keras's own cells, written here on Keras's public API.

A cell mixes in `DropoutMasks`, has `dropout`, `recurrent_dropout` and a
`seed_generator` (`keras.random.SeedGenerator`), and calls
`get_dropout_mask(x_t)` and `get_recurrent_dropout_mask(h_{t-1})` at every step:
the first call of a sequence draws the mask, `keras.random.dropout` of ones
(0, or 1 / (1 - rate)), and later steps reuse it. Who forgets the masks between
sequences:

* rnn_keras's `SimpleRNN`, `LSTM` and `GRU` draw both masks before the time
  loop and forget them after every call (as `keras.layers.RNN` does for
  Keras's cells).
* Inside a bare `keras.layers.RNN`, the cell's `get_initial_state` forgets them
  (the layer calls it once per call when no `initial_state` is given), and
  TensorFlow's loop runs the first step once outside the loop, where they are
  drawn. A mask drawn in another graph (an earlier trace) is never reused.
  Given an explicit `initial_state` and run eagerly, call
  `cell.reset_dropout_masks()` between calls for fresh masks.
"""

import keras

__all__ = ["DropoutMasks"]


def _graph(tensor):
    """The graph a symbolic tensor belongs to (None for an eager one)."""
    return getattr(tensor, "graph", None)


def _reusable(mask, step_input):
    """Whether `mask` may serve `step_input`: same graph, or a graph inside the mask's (a
    loop body over the same call)."""
    mask_graph, graph = _graph(mask), _graph(step_input)
    if mask_graph is None or graph is None:
        return mask_graph is graph
    while graph is not None:
        if graph is mask_graph:
            return True
        graph = getattr(graph, "outer_graph", None)
    return False


class DropoutMasks:
    """Mixin: the cell's input and recurrent dropout masks, one of each per sequence."""

    def _draw_mask(self, like, rate):
        return keras.random.dropout(keras.ops.ones_like(like), rate=rate, seed=self.seed_generator)

    def get_dropout_mask(self, step_input):
        """The input mask of the current sequence, `(batch, input_dim)` (None at rate 0)."""
        mask = getattr(self, "_dropout_mask", None)
        if self.dropout > 0 and (mask is None or not _reusable(mask, step_input)):
            self._dropout_mask = mask = self._draw_mask(step_input, self.dropout)
        return mask if self.dropout > 0 else None

    def get_recurrent_dropout_mask(self, state):
        """The recurrent mask of the current sequence, `(batch, units)` (None at rate 0)."""
        mask = getattr(self, "_recurrent_dropout_mask", None)
        if self.recurrent_dropout > 0 and (mask is None or not _reusable(mask, state)):
            self._recurrent_dropout_mask = mask = self._draw_mask(state, self.recurrent_dropout)
        return mask if self.recurrent_dropout > 0 else None

    def reset_dropout_masks(self):
        """Forget both masks: the next step draws new ones (a new sequence)."""
        self._dropout_mask = None
        self._recurrent_dropout_mask = None
