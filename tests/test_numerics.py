"""Each cell against the independent NumPy implementation of the guide's equations."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CELL_NAMES, build_rnn
from reference import gru, lstm, simple_rnn, simple_rnn_bptt

import rnn_keras

BATCH, TIME, INPUT_DIM, UNITS = 3, 7, 5, 4


def numpy_reference(cell_name, x, weights, initial_state=None):
    """Outputs `(batch, time, units)` and final states of the guide's NumPy loop."""
    initial_state = initial_state or [None] * (2 if cell_name == "lstm" else 1)
    outputs, finals = [], []
    for row in range(x.shape[0]):
        init = [None if s is None else s[row] for s in initial_state]
        if cell_name == "lstm":
            hs, cs = lstm(x[row], *weights, h0=init[0], c0=init[1])
            finals.append([hs[-1], cs[-1]])
        else:
            step_fn = simple_rnn if cell_name == "simple" else gru
            hs = step_fn(x[row], *weights, h0=init[0])
            finals.append([hs[-1]])
        outputs.append(hs)
    return np.array(outputs), [np.array(s) for s in zip(*finals, strict=True)]


@pytest.mark.parametrize("cell_name", CELL_NAMES)
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_cell_matches_numpy_reference(cell_name, with_initial_state):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, TIME, INPUT_DIM)).astype("float32")
    layer = build_rnn(cell_name, UNITS, INPUT_DIM, seed=2, return_sequences=True, return_state=True)
    num_states = 2 if cell_name == "lstm" else 1
    initial_state = None
    if with_initial_state:
        initial_state = [
            rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(num_states)
        ]
    outputs, *states = layer(x, initial_state=initial_state)

    expected_outputs, expected_states = numpy_reference(
        cell_name,
        x.astype("float64"),
        [w.astype("float64") for w in layer.get_weights()],
        initial_state,
    )
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-5, atol=1e-5)
    assert len(states) == num_states
    for state, expected in zip(states, expected_states, strict=True):
        np.testing.assert_allclose(state, expected, rtol=1e-5, atol=1e-5)


def test_stacked_layers_match_numpy_reference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((BATCH, TIME, INPUT_DIM)).astype("float32")
    first = build_rnn("lstm", UNITS, INPUT_DIM, seed=4, return_sequences=True)
    second = build_rnn("gru", 6, UNITS, seed=5, return_sequences=True)
    outputs = second(first(x))
    hidden, _ = numpy_reference("lstm", x.astype("float64"), first.get_weights())
    expected, _ = numpy_reference("gru", hidden, second.get_weights())
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)

    # The same stack as one RNN over a list of cells (keras.layers.StackedRNNCells).
    stacked = keras.layers.RNN(
        [rnn_keras.LSTMCell(UNITS), rnn_keras.GRUCell(6)], return_sequences=True
    )
    stacked.build((None, None, INPUT_DIM))
    stacked.set_weights(first.get_weights() + second.get_weights())
    np.testing.assert_allclose(stacked(x), expected, rtol=1e-5, atol=1e-5)


def test_gru_uses_the_guides_sign_convention():
    """z weights the candidate: with z saturated at 1 the state becomes the candidate."""
    cell = rnn_keras.GRUCell(UNITS)
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer.build((None, None, INPUT_DIM))
    kernel = np.zeros((INPUT_DIM, 3 * UNITS), "float32")
    recurrent = np.zeros((UNITS, 3 * UNITS), "float32")
    bias = np.zeros(3 * UNITS, "float32")
    bias[:UNITS] = 50.0  # z = sigmoid(50) = 1
    bias[2 * UNITS :] = 0.7  # candidate = tanh(0.7) whatever the input
    layer.set_weights([kernel, recurrent, bias])
    outputs = layer(np.ones((1, 2, INPUT_DIM), "float32"))
    np.testing.assert_allclose(outputs, np.full((1, 2, UNITS), np.tanh(0.7)), rtol=1e-6)


# --- gradients --------------------------------------------------------------------------------


def test_simple_rnn_gradients_equal_guide_bptt():
    """TensorFlow's gradients of RNN(SimpleRNNCell) + Dense equal the guide's hand-written BPTT."""
    rng = np.random.default_rng(6)
    input_dim, hidden, output_dim, time = 3, 5, 2, 8
    x = rng.standard_normal((time, input_dim))
    y_true = rng.standard_normal((time, output_dim))
    w_xh, w_hh = (
        rng.standard_normal((hidden, input_dim)),
        0.5 * rng.standard_normal((hidden, hidden)),
    )
    b_h, w_hy, b_y = (
        rng.standard_normal((hidden, 1)),
        rng.standard_normal((output_dim, hidden)),
        rng.standard_normal((output_dim, 1)),
    )

    rnn = keras.layers.RNN(
        rnn_keras.SimpleRNNCell(hidden, dtype="float64"), return_sequences=True, dtype="float64"
    )
    dense = keras.layers.Dense(output_dim, dtype="float64")  # the guide's y_t = W_hy h_t + b_y
    rnn.build((None, None, input_dim))
    dense.build((None, None, hidden))
    rnn.set_weights([w_xh.T, w_hh.T, b_h.ravel()])
    dense.set_weights([w_hy.T, b_y.ravel()])

    variables = rnn.trainable_variables + dense.trainable_variables
    with tf.GradientTape() as tape:
        y = dense(rnn(x[None]))[0]
        loss = 0.5 * tf.reduce_sum((y - y_true) ** 2)
    g_kernel, g_recurrent, g_bias, g_w_hy, g_b_y = tape.gradient(loss, variables)

    dw_hh, dw_xh, dw_hy, db_h, db_y = simple_rnn_bptt(x, y_true, w_xh, w_hh, b_h, w_hy, b_y)
    np.testing.assert_allclose(g_kernel, dw_xh.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_recurrent, dw_hh.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_bias, db_h.ravel(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_w_hy, dw_hy.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_b_y, db_y.ravel(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
def test_gradients_match_central_finite_differences(cell_name):
    rng = np.random.default_rng(7)
    input_dim, units, time, batch = 3, 4, 6, 2
    x = tf.constant(rng.standard_normal((batch, time, input_dim)))
    layer = build_rnn(
        cell_name,
        units,
        input_dim,
        seed=8,
        dtype="float64",
        return_sequences=True,
        return_state=True,
    )
    # A loss that reaches every output and every final state through fixed random weights.
    probes = [
        tf.constant(rng.standard_normal(s))
        for s in [(batch, time, units)] + [(batch, units)] * len(layer.cell.get_initial_state(1))
    ]

    @tf.function
    def loss_fn():
        results = layer(x)
        return sum(tf.reduce_sum(r * p) for r, p in zip(results, probes, strict=True))

    with tf.GradientTape() as tape:
        loss = loss_fn()
    analytic = tape.gradient(loss, layer.trainable_variables)

    eps = 1e-6
    for variable, grad in zip(layer.trainable_variables, analytic, strict=True):
        base = variable.numpy()
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            shifted = base.copy()
            shifted[index] += eps
            variable.assign(shifted)
            up = loss_fn().numpy()
            shifted[index] -= 2 * eps
            variable.assign(shifted)
            down = loss_fn().numpy()
            numeric[index] = (up - down) / (2 * eps)
        variable.assign(base)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7, err_msg=variable.path)


# --- Keras weight compatibility ---------------------------------------------------------------

BUILTIN = {
    "simple": lambda units: keras.layers.SimpleRNN(units, return_sequences=True, return_state=True),
    "lstm": lambda units: keras.layers.LSTM(units, return_sequences=True, return_state=True),
    "gru": lambda units: keras.layers.GRU(
        units, reset_after=False, return_sequences=True, return_state=True
    ),
}


def negate_gru_update_gate(weights, units):
    """Keras's GRU uses h = z h_prev + (1 - z) h~; ours (the guide's) the opposite: flip z."""
    flipped = [w.copy() for w in weights]
    for w in flipped:
        w[..., :units] *= -1
    return flipped


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_weights_move_between_builtin_and_rnn_keras(cell_name):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((BATCH, TIME, INPUT_DIM)).astype("float32")
    builtin = BUILTIN[cell_name](UNITS)
    builtin.build((None, None, INPUT_DIM))
    ours = build_rnn(cell_name, UNITS, INPUT_DIM, return_sequences=True, return_state=True)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in builtin.get_weights()]

    # builtin -> ours
    builtin.set_weights([0.5 * rng.standard_normal(w.shape) for w in builtin.get_weights()])
    weights = builtin.get_weights()
    if cell_name == "gru":
        weights = negate_gru_update_gate(weights, UNITS)
    ours.set_weights(weights)
    for got, want in zip(ours(x), builtin(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    # ours -> builtin
    randomize = [0.5 * rng.standard_normal(w.shape) for w in ours.get_weights()]
    ours.set_weights(randomize)
    weights = ours.get_weights()
    if cell_name == "gru":
        weights = negate_gru_update_gate(weights, UNITS)
    builtin.set_weights(weights)
    for got, want in zip(ours(x), builtin(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_lstm_forget_bias_starts_at_one():
    cell = rnn_keras.LSTMCell(UNITS)
    cell.build((None, INPUT_DIM))
    bias = keras.ops.convert_to_numpy(cell.bias)
    np.testing.assert_array_equal(bias[UNITS : 2 * UNITS], 1.0)
    np.testing.assert_array_equal(np.delete(bias, np.s_[UNITS : 2 * UNITS]), 0.0)
    plain = rnn_keras.LSTMCell(UNITS, unit_forget_bias=False)
    plain.build((None, INPUT_DIM))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(plain.bias), 0.0)
