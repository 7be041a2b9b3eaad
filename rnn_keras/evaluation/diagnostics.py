"""Measuring the guide's challenges: gradient flow through time, learning curves, clipping.

    from rnn_keras import diagnostics

    model, recurrent, head = diagnostics.last_state_regressor("lstm", length=400, units=32)
    distances, norms = diagnostics.gradient_through_time(recurrent, head, x_test, y_test)
    run = diagnostics.fit_and_record(
        model, train_stream, (x_test, y_test), optimizer=keras.optimizers.Adam(5e-3),
        steps=6000, eval_every=200, stop_when_solved=True,
    )

`gradient_through_time` measures vanishing and exploding gradients directly:
the norm of dL/dh_t against the distance T - t. `fit_and_record` trains with
`rnn_keras.GradientNormMonitor`, so every step's global gradient norm (before any
clipping) is recorded next to the test-MSE curve: what clipping acts on, and
whether training diverged. `spectral_radius` says where a linear recurrence
h_t = R^T h_{t-1} explodes (> 1) or vanishes (< 1).
"""

import math
import time

import keras
import numpy as np

from rnn_keras.models.backbone import recurrent_layer
from rnn_keras.training.monitoring import GradientNormMonitor

__all__ = [
    "LearningCurveRecorder",
    "fit_and_record",
    "gradient_through_time",
    "last_state_regressor",
    "spectral_radius",
]


def last_state_regressor(cell, length, units, seed=None, input_dim=2, **layer_kwargs):
    """(model, its recurrent layer, its Dense head): Input((T, input_dim)) -> layer -> Dense(1).

    The model regresses one number from the last state h_T, y_hat = w^T h_T + b (the
    adding problem's model). The layers are returned too, for `gradient_through_time`.

    Args:
        cell: "simple", "lstm" or "gru".
        length: T, the sequence length of the model's input.
        units: the recurrent layer's state size.
        seed: if not None, `keras.utils.set_random_seed(seed)` first, so that the
            weights are the same for one seed (an initializer object that holds
            its own seed is not affected).
        input_dim: features per step.
        **layer_kwargs: the recurrent layer's other arguments (initializers,
            `unit_forget_bias`, `implementation`, ...), by name.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    recurrent = recurrent_layer(cell, units, name="recurrent", **layer_kwargs)
    head = keras.layers.Dense(1, name="sum")
    inputs = keras.Input((length, input_dim), name="sequence")
    return keras.Model(inputs, head(recurrent(inputs))), recurrent, head


def spectral_radius(matrix):
    """max_i |lambda_i| over the eigenvalues of a square matrix (a recurrent kernel R).

    The linear recurrence h_t = R^T h_{t-1} has ||h_t|| -> 0 for every h_0 when it
    is < 1, and grows like rho^t along an eigenvector when it is > 1.
    """
    matrix = np.asarray(keras.ops.convert_to_numpy(matrix))
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"spectral_radius: expected a square matrix. Received: {matrix.shape}")
    return float(np.abs(np.linalg.eigvals(matrix)).max())


def gradient_through_time(recurrent, head, inputs, targets, num_points=None):
    """(distances T - t, batch mean of ||dL/dh_t||), through the layer's own backward pass.

    For each example, L = (head(h_T) - y)^2 and h_t is the layer's state after step t
    (1-based, h_T the last). For a linear recurrence h_t = R^T h_{t-1} + W^T x_t this is

        dL/dh_t = dL/dh_T (R^T)^(T - t),    dL/dh_T = 2 (y_hat - y) w^T,

    so the norm shrinks or grows geometrically with the distance T - t, as the
    spectrum of R says: the vanishing and exploding gradients of the guide. For
    the gated cells it is what autodiff of the real layer gives (fused kernel or
    generic loop, whichever `recurrent` runs).

    How: a copy of `recurrent` that shares its weights (`sharing_weights`) and
    returns its states reads x_1..x_t, forward only; then `recurrent` itself reads
    x_{t+1}..x_T from `initial_state=` those states under a `tf.GradientTape` that
    watches h_t. An LSTM's cell state c_t is held fixed: the gradient is the one
    through h_t alone. TensorFlow backend only (a tape on an intermediate state).

    Args:
        recurrent: an rnn_keras `SimpleRNN`, `LSTM` or `GRU`, built, that returns
            its last output (return_sequences=False).
        head: a layer from the last state to one prediction per example.
        inputs: (B, T, features) array.
        targets: (B, 1) array.
        num_points: None for every t = 1..T; else t = T, T - s, T - 2s, ... with
            stride s = T // num_points (at least 1).

    Returns:
        (distances, norms): two lists, ascending in distance T - t (0 first).
    """
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "gradient_through_time needs the TensorFlow backend (a GradientTape on a state). "
            f"Received: backend={keras.backend.backend()!r}"
        )
    length = inputs.shape[1]
    points = list(range(length, 0, -max(1, length // (num_points or length))))[::-1]
    reader = recurrent.sharing_weights(return_state=True, return_sequences=False)
    inputs, targets = tf.constant(inputs, tf.float32), tf.constant(targets, tf.float32)
    states = reader.cell.get_initial_state(inputs.shape[0])  # zeros, as the layer starts
    chunk_spec = tf.TensorSpec([None, None, inputs.shape[-1]])
    specs = [chunk_spec, [tf.TensorSpec(s.shape) for s in states]]

    @tf.function(input_signature=specs)  # one trace for every chunk length
    def read(chunk, states):
        return reader(chunk, initial_state=states)[1:]

    def state_gradient(rest, states):  # rest=None: t = T, nothing left to read
        with tf.GradientTape() as tape:
            tape.watch(states[0])
            last = states[0] if rest is None else recurrent(rest, initial_state=states)
            loss = tf.reduce_sum(tf.square(head(last) - targets))
        return tf.reduce_mean(tf.norm(tape.gradient(loss, states[0]), axis=-1))

    rest_gradient = tf.function(state_gradient, input_signature=specs)
    norms, done = [], 0
    for t in points:
        states, done = list(read(inputs[:, done:t], states)), t
        norm = rest_gradient(inputs[:, t:], states) if t < length else state_gradient(None, states)
        norms.append(float(norm))
    return [length - t for t in points][::-1], norms[::-1]


class LearningCurveRecorder(keras.callbacks.Callback):
    """Test MSE before training and after every epoch; each step's `gradient_norm` log.

    The curve is the test MSE, mean over examples of (model(x) - y)^2, against the
    number of training steps taken: step 0, then the end of each epoch (with
    `fit(..., steps_per_epoch=n)`: steps n, 2n, ...). Per-batch logs named
    `gradient_norm` (`GradientNormMonitor.metric`) are kept, one a step.

    Args:
        test: (inputs, targets) arrays.
        solved_mse: a run is solved at the first evaluation below it (None: never).
        stop_when_solved: then ask the fit to stop (Keras stops after its current step).

    Attributes:
        steps, test_mse: the curve. gradient_norms: one float a training step.
        solved_at_step: the step of the first evaluation below `solved_mse`, or None.
    """

    def __init__(self, test, solved_mse=None, stop_when_solved=False):
        super().__init__()
        self.test, self.solved_mse, self.stop_when_solved = test, solved_mse, stop_when_solved
        self.steps, self.test_mse, self.gradient_norms, self.solved_at_step = [], [], [], None
        self.steps_taken = 0

    def on_train_begin(self, logs=None):
        self._evaluate()  # step 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps_taken += 1
        if logs and "gradient_norm" in logs:
            self.gradient_norms.append(float(logs["gradient_norm"]))

    def on_epoch_end(self, epoch, logs=None):
        self._evaluate()

    def _evaluate(self):
        inputs, targets = self.test
        predictions = self.model.predict(inputs, batch_size=500, verbose=0)
        self.steps.append(self.steps_taken)
        self.test_mse.append(float(((predictions - targets) ** 2).mean()))
        solved = self.solved_mse is not None and self.test_mse[-1] < self.solved_mse
        if solved and self.solved_at_step is None:
            self.solved_at_step = self.steps_taken
            if self.stop_when_solved:
                self.model.stop_training = True


def fit_and_record(
    model,
    data,
    test,
    *,
    optimizer,
    steps,
    eval_every,
    loss="mse",
    solved_mse=0.01,
    stop_when_solved=False,
):
    """Compile and fit `model` for `steps` steps, recording the test MSE and gradient norms.

    `optimizer` is wrapped in `GradientNormMonitor`, so the recorded norm of each
    step is sqrt(sum_w ||dL/dw||^2) before the optimizer's own clipping
    (`global_clipnorm`, ...): with clipping, steps are taken with norm
    min(norm, clipnorm) and the spikes stay visible here.

    Args:
        model: a Keras model with one output (compiled here, `jit_compile=False`).
        data: an infinite `tf.data.Dataset` (or any input `fit` takes with
            `steps_per_epoch`), read without shuffling.
        test: (inputs, targets) arrays for the test MSE.
        optimizer: a Keras optimizer (not yet used by another model).
        steps: the training budget; a multiple of `eval_every`.
        eval_every: steps between test evaluations (the fit's steps per epoch).
        loss: the training loss.
        solved_mse, stop_when_solved: as in `LearningCurveRecorder`.

    Returns:
        A dict for JSON: `test_mse` (the last evaluation), `solved_at_step`,
        `seconds`, `steps` (taken), `max_gradient_norm`, `curve` ({"step",
        "test_mse"}) and `gradient_norms` (a step each); a NaN or infinite value
        (a diverged run) is None.
    """
    if steps % eval_every:
        raise ValueError(
            "fit_and_record: `steps` must be a multiple of `eval_every`. "
            f"Received: steps={steps}, eval_every={eval_every}"
        )
    monitor = GradientNormMonitor(optimizer)
    model.compile(optimizer=monitor, loss=loss, metrics=[monitor.metric], jit_compile=False)
    recorder = LearningCurveRecorder(test, solved_mse, stop_when_solved)
    start = time.perf_counter()
    model.fit(
        data,
        steps_per_epoch=eval_every,
        epochs=steps // eval_every,
        callbacks=[recorder],
        shuffle=False,
        verbose=0,
    )
    norms = [_finite(n) for n in recorder.gradient_norms]
    return {
        "test_mse": _finite(recorder.test_mse[-1]),
        "solved_at_step": recorder.solved_at_step,
        "seconds": round(time.perf_counter() - start, 2),
        "steps": recorder.steps_taken,
        "max_gradient_norm": max((n for n in norms if n is not None), default=None),
        "curve": {"step": recorder.steps, "test_mse": [_finite(v) for v in recorder.test_mse]},
        "gradient_norms": norms,
    }


def _finite(value):
    return float(value) if math.isfinite(value) else None  # JSON has no NaN or infinity
