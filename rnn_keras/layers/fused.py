"""Whole-sequence kernels for the TensorFlow backend, with hand-written BPTT gradients.

`keras.layers.RNN(cell)` runs the cell once per time step inside a generic
`tf.while_loop` and lets autodiff walk back through it. On a CPU that spends
most of the backward pass on one small matmul per weight per step. These
kernels compute the same maths as the cells (`rnn_keras.cells`), structured the
way cuDNN and oneDNN do it:

* the input projection `x_t @ kernel + bias` for all steps is one large matmul,
  done by the caller before the loop;
* the time loop only does `h_{t-1} @ recurrent_kernel` and the gate maths,
  and keeps the gate activations it needs for the backward pass;
* the backward pass is the guide's BPTT, written out per cell
  (`tf.custom_gradient`): the loop only carries `dh` (and `dc`) back in time
  and collects the pre-activation gradients `dz_t`; the recurrent-kernel
  gradient is then one large matmul over all steps, `sum_t h_{t-1}^T dz_t`.

All tensors are time-major here: `projection (T, B, G*H)`, `mask (T, B, 1)`
(1.0 = real step, 0.0 = padding: the state is carried through unchanged) or
None, `recurrent_mask (B, H)` (the sequence's recurrent-dropout mask) or None.
Each kernel returns the sequence of carried hidden states `(T, B, H)` (and the
LSTM its last cell state), from which the layer derives outputs and states.
"""

import tensorflow as tf


def _time_loop(num_steps, body, carry, steps_per_iteration, reverse=False):
    """Run `body(t, *carry) -> carry` for t = 0..T-1 (or T-1..0), in tf.while_loops.

    The first loop does `steps_per_iteration` steps per iteration (partial
    unrolling: each iteration pays the loop's control flow, a Merge, Switch,
    NextIteration and Exit per loop variable, on top of the steps' own ops); a
    second one does the remaining `T % steps_per_iteration` steps.
    """
    k = steps_per_iteration
    step = -1 if reverse else 1

    def iterate(steps):
        def loop_body(i, t, *values):
            for _ in range(steps):
                values = body(t, *values)
                t = t + step
            return (i + 1, t, *values)

        return loop_body

    t = tf.convert_to_tensor(num_steps - 1 if reverse else 0, tf.int32)
    values = tuple(carry)
    for steps, iterations in (
        ((k, num_steps // k), (1, num_steps % k)) if k > 1 else ((1, num_steps),)
    ):
        _, t, *values = tf.while_loop(
            lambda i, *_, n=iterations: i < n,
            iterate(steps),
            (tf.constant(0, tf.int32), t, *values),
        )
    return tuple(values)


def in_batch_parts(run, projection, recurrent_kernel, states, mask, recurrent_mask, parts):
    """`run(projection, recurrent_kernel, states, mask, recurrent_mask)` on `parts` batch slices.

    One time loop is a chain of small ops, each waiting for the previous one,
    which keeps a multi-core CPU mostly idle at small sizes; loops over disjoint
    rows have no dependency on each other, so TensorFlow runs them at the same
    time on different cores. Each row's maths is unchanged. `run` returns
    (hidden states (T, b, H), final states [(b, H), ...]); the slices' results
    are concatenated back along the batch. Slices may be empty (a batch smaller
    than `parts`).
    """
    if parts <= 1:
        return run(projection, recurrent_kernel, states, mask, recurrent_mask)
    batch = tf.shape(projection)[1]
    bounds = [batch * k // parts for k in range(parts + 1)]
    sizes = tf.stack([bounds[k + 1] - bounds[k] for k in range(parts)])

    def split(x, axis):
        return [None] * parts if x is None else tf.split(x, sizes, axis=axis)

    slices = zip(
        split(projection, 1),
        zip(*[split(state, 0) for state in states], strict=True),
        split(mask, 1),
        split(recurrent_mask, 0),
        strict=True,
    )
    results = [run(p, recurrent_kernel, list(s), m, r) for p, s, m, r in slices]
    hidden = tf.concat([h for h, _ in results], axis=1)
    final = [tf.concat(list(f), axis=0) for f in zip(*[f for _, f in results], strict=True)]
    return hidden, final


def _array(size, like):
    return tf.TensorArray(like.dtype, size=size, element_shape=like.shape)


def _previous(sequence, first):
    """`[first, sequence[0], ..., sequence[T-2]]`: each step's incoming state."""
    return tf.concat([first[None], sequence[:-1]], axis=0)


def _recurrent_inputs(states_prev, recurrent_mask):
    return states_prev if recurrent_mask is None else states_prev * recurrent_mask


def _weight_gradient(inputs, grads):
    """`sum_t inputs_t^T grads_t` as one matmul: (T, B, H), (T, B, G) -> (H, G)."""
    return tf.matmul(
        tf.reshape(inputs, [-1, inputs.shape[-1]]),
        tf.reshape(grads, [-1, grads.shape[-1]]),
        transpose_a=True,
    )


def _carry(new, old, mask_t):
    """The masked update: the new value at real steps, the old one at padding."""
    return new if mask_t is None else old + mask_t * (new - old)


def _sigmoid_grad(y, dy):
    """dy * y * (1 - y) for y = sigmoid(x), as one op (fewer ops per step is faster)."""
    return tf.raw_ops.SigmoidGrad(y=y, dy=dy)


def _tanh_grad(y, dy):
    """dy * (1 - y^2) for y = tanh(x), as one op."""
    return tf.raw_ops.TanhGrad(y=y, dy=dy)


def _zeros_if_none(grad, like):
    return tf.zeros_like(like) if grad is None else grad


def simple_rnn_sequence(
    projection, recurrent_kernel, h0, mask=None, recurrent_mask=None, steps_per_iteration=4
):
    """h_t = tanh(projection_t + h_{t-1} @ recurrent_kernel), over all t."""
    num_steps = tf.shape(projection)[0]

    @tf.custom_gradient
    def kernel(projection, recurrent_kernel, h0):
        def forward(t, h, hs):
            h_new = tf.tanh(
                projection[t] + tf.matmul(_recurrent_inputs(h, recurrent_mask), recurrent_kernel)
            )
            h = _carry(h_new, h, None if mask is None else mask[t])
            return h, hs.write(t, h)

        _, hs = _time_loop(num_steps, forward, (h0, _array(num_steps, h0)), steps_per_iteration)
        hs = hs.stack()

        def grad(d_hs):
            d_hs = _zeros_if_none(d_hs, hs)

            def backward(t, dh, dzs):
                dh_t = d_hs[t] + dh
                dh_new = dh_t if mask is None else mask[t] * dh_t
                dz = _tanh_grad(hs[t], dh_new)
                dh_prev = tf.matmul(dz, recurrent_kernel, transpose_b=True)
                if recurrent_mask is not None:
                    dh_prev *= recurrent_mask
                if mask is not None:
                    dh_prev += dh_t - dh_new
                return dh_prev, dzs.write(t, dz)

            dh0, dzs = _time_loop(
                num_steps,
                backward,
                (tf.zeros_like(h0), _array(num_steps, h0)),
                steps_per_iteration,
                reverse=True,
            )
            dzs = dzs.stack()
            h_in = _recurrent_inputs(_previous(hs, h0), recurrent_mask)
            return dzs, _weight_gradient(h_in, dzs), dh0

        return hs, grad

    return kernel(projection, recurrent_kernel, h0)


def lstm_sequence(
    projection, recurrent_kernel, h0, c0, mask=None, recurrent_mask=None, steps_per_iteration=4
):
    """The LSTM over all t (gate order i, f, c, o). Returns (hidden states, last c)."""
    num_steps = tf.shape(projection)[0]

    @tf.custom_gradient
    def kernel(projection, recurrent_kernel, h0, c0):
        def forward(t, h, c, hs, cs, gates):
            z = projection[t] + tf.matmul(_recurrent_inputs(h, recurrent_mask), recurrent_kernel)
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            i, f, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.sigmoid(z_o)
            g = tf.tanh(z_c)
            c_new = f * c + i * g
            h_new = o * tf.tanh(c_new)
            m = None if mask is None else mask[t]
            h, c = _carry(h_new, h, m), _carry(c_new, c, m)
            return h, c, hs.write(t, h), cs.write(t, c), gates.write(t, tf.concat([i, f, g, o], -1))

        _, c_last, hs, cs, gates = _time_loop(
            num_steps,
            forward,
            (
                h0,
                c0,
                _array(num_steps, h0),
                _array(num_steps, c0),
                _array(num_steps, projection[0]),
            ),
            steps_per_iteration,
        )
        hs, cs, gates = hs.stack(), cs.stack(), gates.stack()

        def grad(d_hs, d_c_last):
            d_hs = _zeros_if_none(d_hs, hs)
            c_prevs = _previous(cs, c0)

            def backward(t, dh, dc, dzs):
                dh_t = d_hs[t] + dh
                if mask is None:
                    dh_new, dc_new = dh_t, dc
                else:
                    dh_new, dc_new = mask[t] * dh_t, mask[t] * dc
                i, f, g, o = tf.split(gates[t], 4, axis=-1)
                tanh_c = tf.tanh(cs[t])
                dc_total = dc_new + _tanh_grad(tanh_c, dh_new * o)
                dz = tf.concat(
                    [
                        _sigmoid_grad(i, dc_total * g),
                        _sigmoid_grad(f, dc_total * c_prevs[t]),
                        _tanh_grad(g, dc_total * i),
                        _sigmoid_grad(o, dh_new * tanh_c),
                    ],
                    axis=-1,
                )
                dh_prev = tf.matmul(dz, recurrent_kernel, transpose_b=True)
                if recurrent_mask is not None:
                    dh_prev *= recurrent_mask
                dc_prev = dc_total * f
                if mask is not None:
                    dh_prev += dh_t - dh_new
                    dc_prev += dc - dc_new
                return dh_prev, dc_prev, dzs.write(t, dz)

            dh0, dc0, dzs = _time_loop(
                num_steps,
                backward,
                (tf.zeros_like(h0), _zeros_if_none(d_c_last, c0), _array(num_steps, projection[0])),
                steps_per_iteration,
                reverse=True,
            )
            dzs = dzs.stack()
            h_in = _recurrent_inputs(_previous(hs, h0), recurrent_mask)
            return dzs, _weight_gradient(h_in, dzs), dh0, dc0

        return (hs, c_last), grad

    return kernel(projection, recurrent_kernel, h0, c0)


def gru_sequence(
    projection, recurrent_kernel, h0, mask=None, recurrent_mask=None, steps_per_iteration=4
):
    """The guide's GRU over all t (gate order z, r, h; reset before the matmul, z weights h~)."""
    num_steps = tf.shape(projection)[0]
    units = h0.shape[-1]

    @tf.custom_gradient
    def kernel(projection, recurrent_kernel, h0):
        gates_kernel = recurrent_kernel[:, : 2 * units]
        candidate_kernel = recurrent_kernel[:, 2 * units :]

        def forward(t, h, hs, acts):
            h_in = _recurrent_inputs(h, recurrent_mask)
            x_zr, x_h = tf.split(projection[t], [2 * units, units], axis=-1)
            zr = tf.sigmoid(x_zr + tf.matmul(h_in, gates_kernel))
            z, r = tf.split(zr, 2, axis=-1)
            candidate = tf.tanh(x_h + tf.matmul(r * h_in, candidate_kernel))
            h_new = h + z * (candidate - h)
            h = _carry(h_new, h, None if mask is None else mask[t])
            return h, hs.write(t, h), acts.write(t, tf.concat([zr, candidate], -1))

        _, hs, acts = _time_loop(
            num_steps,
            forward,
            (h0, _array(num_steps, h0), _array(num_steps, projection[0])),
            steps_per_iteration,
        )
        hs, acts = hs.stack(), acts.stack()

        def grad(d_hs):
            d_hs = _zeros_if_none(d_hs, hs)
            h_prevs = _previous(hs, h0)

            def backward(t, dh, dzs):
                dh_t = d_hs[t] + dh
                dh_new = dh_t if mask is None else mask[t] * dh_t
                z, r, candidate = tf.split(acts[t], 3, axis=-1)
                h_prev = h_prevs[t]
                h_in = _recurrent_inputs(h_prev, recurrent_mask)
                dz_h = _tanh_grad(candidate, dh_new * z)
                d_reset_input = tf.matmul(dz_h, candidate_kernel, transpose_b=True)
                dz_zr = _sigmoid_grad(
                    tf.concat([z, r], -1),
                    tf.concat([dh_new * (candidate - h_prev), d_reset_input * h_in], -1),
                )
                dh_in = d_reset_input * r + tf.matmul(dz_zr, gates_kernel, transpose_b=True)
                if recurrent_mask is not None:
                    dh_in *= recurrent_mask
                dh_prev = dh_new * (1.0 - z) + dh_in
                if mask is not None:
                    dh_prev += dh_t - dh_new
                return dh_prev, dzs.write(t, tf.concat([dz_zr, dz_h], -1))

            dh0, dzs = _time_loop(
                num_steps,
                backward,
                (tf.zeros_like(h0), _array(num_steps, projection[0])),
                steps_per_iteration,
                reverse=True,
            )
            dzs = dzs.stack()
            h_in = _recurrent_inputs(h_prevs, recurrent_mask)
            reset = acts[..., units : 2 * units]
            d_recurrent = tf.concat(
                [
                    _weight_gradient(h_in, dzs[..., : 2 * units]),
                    _weight_gradient(reset * h_in, dzs[..., 2 * units :]),
                ],
                axis=-1,
            )
            return dzs, d_recurrent, dh0

        return hs, grad

    return kernel(projection, recurrent_kernel, h0)
