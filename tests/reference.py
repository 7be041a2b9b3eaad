"""Independent NumPy implementations of the guide's equations, for the tests.

Written from `rnn_guide.md`, one step at a time, in the guide's column-vector
form (`W @ [x; h] + b`). The fused Keras weights are split back into the
guide's per-gate matrices first, so a mistake in the gate order or in a
transpose of the library shows up as a mismatch. Nothing here imports rnn_keras.
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def split_gates(kernel, recurrent_kernel, bias, names):
    """Fused `(in, G*u)`, `(u, G*u)`, `(G*u,)` -> {gate: (W (u, in+u), b (u, 1))}.

    W acts on the guide's concatenation `[x_t; h_{t-1}]` as a column vector.
    """
    units = recurrent_kernel.shape[0]
    gates = {}
    for index, name in enumerate(names):
        block = slice(index * units, (index + 1) * units)
        w_x = kernel[:, block].T  # (units, input_dim)
        w_h = recurrent_kernel[:, block].T  # (units, units)
        b = bias[block].reshape(-1, 1) if bias is not None else np.zeros((units, 1))
        gates[name] = (np.concatenate([w_x, w_h], axis=1), b)
    return gates


def simple_rnn(x_sequence, kernel, recurrent_kernel, bias, h0=None):
    """The guide's SimpleRNN.forward for one sequence `(time, input_dim)`.

    Returns the hidden states `(time, units)`.
    """
    units = recurrent_kernel.shape[0]
    w_xh, w_hh, b_h = kernel.T, recurrent_kernel.T, bias.reshape(-1, 1)
    h = np.zeros((units, 1)) if h0 is None else h0.reshape(-1, 1)
    states = []
    for x_t in x_sequence:
        h = np.tanh(w_hh @ h + w_xh @ x_t.reshape(-1, 1) + b_h)
        states.append(h.ravel())
    return np.array(states)


def lstm(x_sequence, kernel, recurrent_kernel, bias, h0=None, c0=None):
    """The guide's LSTM.forward for one sequence; Keras gate order i, f, c, o.

    Returns `(hidden_states, cell_states)`, each `(time, units)`.
    """
    g = split_gates(kernel, recurrent_kernel, bias, ["i", "f", "c", "o"])
    units = recurrent_kernel.shape[0]
    h = np.zeros((units, 1)) if h0 is None else h0.reshape(-1, 1)
    c = np.zeros((units, 1)) if c0 is None else c0.reshape(-1, 1)
    hs, cs = [], []
    for x_t in x_sequence:
        concat = np.vstack((x_t.reshape(-1, 1), h))
        f_t = sigmoid(g["f"][0] @ concat + g["f"][1])
        i_t = sigmoid(g["i"][0] @ concat + g["i"][1])
        o_t = sigmoid(g["o"][0] @ concat + g["o"][1])
        c_tilde = np.tanh(g["c"][0] @ concat + g["c"][1])
        c = f_t * c + i_t * c_tilde
        h = o_t * np.tanh(c)
        hs.append(h.ravel())
        cs.append(c.ravel())
    return np.array(hs), np.array(cs)


def gru(x_sequence, kernel, recurrent_kernel, bias, h0=None):
    """The guide's GRU.forward for one sequence; Keras gate order z, r, h.

    Returns the hidden states `(time, units)`.
    """
    g = split_gates(kernel, recurrent_kernel, bias, ["z", "r", "h"])
    units = recurrent_kernel.shape[0]
    h = np.zeros((units, 1)) if h0 is None else h0.reshape(-1, 1)
    states = []
    for x_t in x_sequence:
        x_col = x_t.reshape(-1, 1)
        concat = np.vstack((x_col, h))
        z_t = sigmoid(g["z"][0] @ concat + g["z"][1])
        r_t = sigmoid(g["r"][0] @ concat + g["r"][1])
        h_tilde = np.tanh(g["h"][0] @ np.vstack((x_col, r_t * h)) + g["h"][1])
        h = (1 - z_t) * h + z_t * h_tilde
        states.append(h.ravel())
    return np.array(states)


def simple_rnn_bptt(x_sequence, y_true, w_xh, w_hh, b_h, w_hy, b_y):
    """The guide's `compute_gradients` (BPTT) for loss = 0.5 * sum_t ||y_t - y_true_t||^2.

    Column-vector weights as in the guide: `w_xh (H, I)`, `w_hh (H, H)`,
    `b_h (H, 1)`, `w_hy (O, H)`, `b_y (O, 1)`. The guide's `hidden_states[t-1]`
    at t = 0 must be the initial state h_{-1} = 0, not Python's `[-1]` (the last
    state); that indexing is done explicitly here.
    """
    hidden = w_hh.shape[0]
    h = np.zeros((hidden, 1))
    hidden_states, outputs = [], []
    for x_t in x_sequence:
        h = np.tanh(w_hh @ h + w_xh @ x_t.reshape(-1, 1) + b_h)
        hidden_states.append(h)
        outputs.append(w_hy @ h + b_y)

    dw_hh, dw_xh, dw_hy = np.zeros_like(w_hh), np.zeros_like(w_xh), np.zeros_like(w_hy)
    db_h, db_y = np.zeros_like(b_h), np.zeros_like(b_y)
    dh_next = np.zeros((hidden, 1))
    for t in range(len(x_sequence) - 1, -1, -1):
        dy = outputs[t] - y_true[t].reshape(-1, 1)
        dw_hy += dy @ hidden_states[t].T
        db_y += dy
        dh = w_hy.T @ dy + dh_next
        dh_raw = (1 - hidden_states[t] ** 2) * dh
        h_prev = hidden_states[t - 1] if t > 0 else np.zeros((hidden, 1))
        dw_hh += dh_raw @ h_prev.T
        dw_xh += dh_raw @ x_sequence[t].reshape(-1, 1).T
        db_h += dh_raw
        dh_next = w_hh.T @ dh_raw
    return dw_hh, dw_xh, dw_hy, db_h, db_y
