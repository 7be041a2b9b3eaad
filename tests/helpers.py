"""Helpers shared by the tests: cells in keras.layers.RNN with random weights."""

import keras
import numpy as np

import rnn_keras

CELL_NAMES = ("simple", "lstm", "gru")


def randomize_weights(layer, seed, scale=0.5):
    """Give every weight of `layer` random normal values (the default init is too tame)."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [scale * rng.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()]
    )


def build_rnn(cell_name, units, input_dim, seed=0, dtype=None, **rnn_kwargs):
    """A built `keras.layers.RNN` over an rnn_keras cell, with random weights."""
    cell_kwargs = {"dtype": dtype} if dtype else {}
    layer = keras.layers.RNN(
        rnn_keras.get_cell(cell_name)(units, **cell_kwargs), dtype=dtype, **rnn_kwargs
    )
    layer.build((None, None, input_dim))
    randomize_weights(layer, seed)
    return layer
