"""The cells inside keras.layers.RNN and Bidirectional: masks, states, direction, dropout."""

import keras
import numpy as np
import pytest
from helpers import CELL_NAMES, build_rnn, randomize_weights

import rnn_keras

INPUT_DIM, UNITS, TIME = 5, 4, 8
LENGTHS = [8, 5, 2]


def padded_batch(seed=0):
    """A right-padded batch (zeros after each length) and its boolean mask."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(LENGTHS), TIME, INPUT_DIM)).astype("float32")
    mask = np.arange(TIME)[None, :] < np.array(LENGTHS)[:, None]
    return x * mask[..., None], mask


@pytest.mark.parametrize("cell_name", CELL_NAMES)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_batch_equals_each_sequence_alone(cell_name, go_backwards):
    x, mask = padded_batch()
    layer = build_rnn(
        cell_name,
        UNITS,
        INPUT_DIM,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
    )
    outputs, *states = layer(x, mask=mask)
    for row, length in enumerate(LENGTHS):
        alone_outputs, *alone_states = layer(x[row : row + 1, :length])
        if go_backwards:
            # Outputs come in processing order: the padded steps are read first.
            got = outputs[row, TIME - length :]
        else:
            got = outputs[row, :length]
        np.testing.assert_allclose(got, alone_outputs[0], rtol=1e-5, atol=1e-6)
        for state, alone_state in zip(states, alone_states, strict=True):
            np.testing.assert_allclose(state[row], alone_state[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_embedding_mask_zero_masks_padding(cell_name):
    ids = np.array([[3, 1, 4, 1, 5, 0, 0], [9, 2, 6, 0, 0, 0, 0]])
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, INPUT_DIM, mask_zero=True)(inputs)
    outputs = keras.layers.RNN(rnn_keras.get_cell(cell_name)(UNITS))(embedded)
    model = keras.Model(inputs, outputs)
    randomize_weights(model, seed=1)
    batch = model(ids)
    for row in range(2):
        length = int((ids[row] > 0).sum())
        np.testing.assert_allclose(
            batch[row], model(ids[row : row + 1, :length])[0], rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("cell_name", CELL_NAMES)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_every_merge_mode_with_mask(cell_name, merge_mode):
    x, mask = padded_batch(seed=2)
    layer = keras.layers.Bidirectional(
        keras.layers.RNN(
            rnn_keras.get_cell(cell_name)(UNITS), return_sequences=True, return_state=True
        ),
        merge_mode=merge_mode,
    )
    layer.build((None, None, INPUT_DIM))
    randomize_weights(layer, seed=3)
    # The backward direction is an independent copy of the cell, rebuilt from its config.
    assert type(layer.backward_layer.cell) is type(layer.forward_layer.cell)
    results = layer(x, mask=mask)
    outputs = results[:2] if merge_mode is None else results[:1]
    states = results[len(outputs) :]
    for row, length in enumerate(LENGTHS):
        alone = layer(x[row : row + 1, :length])
        alone_outputs = alone[: len(outputs)]
        for got, want in zip(outputs, alone_outputs, strict=True):
            np.testing.assert_allclose(got[row, :length], want[0], rtol=1e-5, atol=1e-6)
        for got, want in zip(states, alone[len(outputs) :], strict=True):
            np.testing.assert_allclose(got[row], want[0], rtol=1e-5, atol=1e-6)


def test_bidirectional_combines_forward_and_reversed_pass():
    x, _ = padded_batch(seed=4)
    forward = build_rnn("lstm", UNITS, INPUT_DIM, seed=5, return_sequences=True)
    backward = build_rnn("lstm", UNITS, INPUT_DIM, seed=6, return_sequences=True, go_backwards=True)
    bidirectional = keras.layers.Bidirectional(
        keras.layers.RNN(rnn_keras.LSTMCell(UNITS), return_sequences=True)
    )
    bidirectional.build((None, None, INPUT_DIM))
    bidirectional.set_weights(forward.get_weights() + backward.get_weights())
    expected = np.concatenate([forward(x), np.flip(backward(x), axis=1)], axis=-1)
    np.testing.assert_allclose(bidirectional(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_stateful_carries_state_between_calls(cell_name):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, TIME, INPUT_DIM)).astype("float32")
    whole = build_rnn(cell_name, UNITS, INPUT_DIM, seed=8, return_sequences=True)
    stateful = keras.layers.RNN(
        rnn_keras.get_cell(cell_name)(UNITS), return_sequences=True, stateful=True
    )
    stateful.build((2, None, INPUT_DIM))
    stateful.set_weights(whole.get_weights())
    halves = np.concatenate([stateful(x[:, :3]), stateful(x[:, 3:])], axis=1)
    np.testing.assert_allclose(halves, whole(x), rtol=1e-5, atol=1e-6)

    stateful.reset_state()
    np.testing.assert_allclose(stateful(x[:, :3]), whole(x[:, :3]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_unroll_equals_loop(cell_name):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, TIME, INPUT_DIM)).astype("float32")
    looped = build_rnn(cell_name, UNITS, INPUT_DIM, seed=10, return_sequences=True)
    unrolled = keras.layers.RNN(
        rnn_keras.get_cell(cell_name)(UNITS), return_sequences=True, unroll=True
    )
    unrolled.build((None, TIME, INPUT_DIM))
    unrolled.set_weights(looped.get_weights())
    np.testing.assert_allclose(unrolled(x), looped(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_dropout_only_in_training_and_repeatable_with_seed(cell_name):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, TIME, INPUT_DIM)).astype("float32")

    def make():
        cell = rnn_keras.get_cell(cell_name)(UNITS, dropout=0.4, recurrent_dropout=0.3, seed=12)
        layer = keras.layers.RNN(cell, return_sequences=True)
        layer.build((None, None, INPUT_DIM))
        randomize_weights(layer, seed=13)
        return layer

    layer, twin = make(), make()
    dropped = layer(x, training=True)
    np.testing.assert_allclose(twin(x, training=True), dropped, rtol=1e-6)
    plain = build_rnn(cell_name, UNITS, INPUT_DIM, seed=13, return_sequences=True)
    assert np.abs(dropped - plain(x)).max() > 1e-3
    np.testing.assert_allclose(layer(x, training=False), plain(x), rtol=1e-6)


def test_one_dropout_mask_per_sequence():
    """Identity weights and linear activation expose the masks."""
    cell = rnn_keras.SimpleRNNCell(
        UNITS, activation=None, dropout=0.5, recurrent_dropout=0.5, use_bias=False, seed=3
    )
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer.build((None, None, UNITS))
    eye = np.eye(UNITS, dtype="float32")

    # Input dropout alone: h_t = x_t * m (recurrent kernel 0), x_t = 1 -> the mask itself.
    layer.set_weights([eye, np.zeros_like(eye)])
    cell.recurrent_dropout = 0.0
    masks = np.asarray(layer(np.ones((16, TIME, UNITS), "float32"), training=True))
    assert set(np.unique(masks)) <= {0.0, 2.0}
    np.testing.assert_array_equal(masks, np.repeat(masks[:, :1], TIME, axis=1))
    assert len({tuple(row) for row in masks[:, 0]}) > 1  # masks differ between sequences

    # Recurrent dropout alone: h_t = (h_{t-1} * m) from h_0 = x_0 = 1 -> h_t = m^t.
    cell.dropout, cell.recurrent_dropout = 0.0, 0.5
    layer.set_weights([eye, eye])
    x = np.zeros((16, TIME, UNITS), "float32")
    x[:, 0] = 1.0
    h = np.asarray(layer(x, training=True))
    mask = h[:, 1]
    assert set(np.unique(mask)) <= {0.0, 2.0}
    for t in range(1, TIME):
        np.testing.assert_allclose(h[:, t], mask**t, rtol=1e-6)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_return_state_shapes(cell_name):
    layer = keras.layers.RNN(rnn_keras.get_cell(cell_name)(UNITS), return_state=True)
    results = layer(np.zeros((3, TIME, INPUT_DIM), "float32"))
    assert [tuple(r.shape) for r in results] == [(3, UNITS)] * (3 if cell_name == "lstm" else 2)
