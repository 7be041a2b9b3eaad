"""Bad input raises a ValueError naming the cell, what it expected and what it received."""

import keras
import numpy as np
import pytest
from helpers import CELL_NAMES

import rnn_keras


def rnn_over(cell_name, **cell_kwargs):
    return keras.layers.RNN(rnn_keras.get_cell(cell_name)(4, name="my_cell", **cell_kwargs))


@pytest.mark.parametrize("cell_name", CELL_NAMES)
@pytest.mark.parametrize(
    "shape, received",
    [
        ((2, 7), r"a time step of shape \(2,\) \(sequences of rank 2\)"),
        ((2, 7, 3, 5), r"a time step of shape \(2, 3, 5\) \(sequences of rank 4\)"),
    ],
)
def test_wrong_rank(cell_name, shape, received):
    class_name = type(rnn_keras.get_cell(cell_name)(1)).__name__
    with pytest.raises(
        ValueError,
        match=rf"{class_name} 'my_cell' expects .*"
        rf"\(batch, time, features\).*Received: {received}",
    ):
        rnn_over(cell_name)(np.zeros(shape, "float32"))


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_wrong_feature_size(cell_name):
    layer = rnn_over(cell_name)
    layer(np.zeros((2, 7, 5), "float32"))
    with pytest.raises(
        ValueError,
        match=r"'my_cell' was built for time steps of shape "
        r"\(batch, 5\).*Received: a time step of shape \(2, 3\)",
    ):
        layer(np.zeros((2, 7, 3), "float32"))


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_integer_input(cell_name):
    with pytest.raises(
        ValueError,
        match=r"'my_cell' expects floating-point inputs.*"
        r"Received: inputs with dtype=int32",
    ):
        rnn_over(cell_name)(np.zeros((2, 7, 5), "int32"))


def test_bad_constructor_arguments():
    with pytest.raises(
        ValueError,
        match=r"LSTMCell: `units` must be a positive integer. "
        r"Received: units=0",
    ):
        rnn_keras.LSTMCell(0)
    with pytest.raises(
        ValueError,
        match=r"GRUCell: `dropout` must be a rate in \[0, 1\). "
        r"Received: dropout=1.5",
    ):
        rnn_keras.GRUCell(3, dropout=1.5)
    with pytest.raises(ValueError, match="Unknown cell 'transformer'"):
        rnn_keras.get_cell("transformer")
