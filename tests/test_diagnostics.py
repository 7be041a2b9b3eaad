"""rnn_keras.datasets, .diagnostics and .benchmarking against independent NumPy computations."""

import itertools
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_keras
from rnn_keras import benchmarking
from rnn_keras.datasets import adding_problem, adding_problem_batch, adding_problem_dataset
from rnn_keras.diagnostics import (
    LearningCurveRecorder,
    fit_and_record,
    gradient_through_time,
    last_state_regressor,
    spectral_radius,
)

# -- datasets ------------------------------------------------------------------------------


def _check_adding_batch(inputs, targets, length):
    values, markers = inputs[..., 0], inputs[..., 1]
    assert inputs.shape[1:] == (length, 2) and targets.shape == (len(inputs), 1)
    assert inputs.dtype == targets.dtype == np.float32
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert np.isin(markers, [0.0, 1.0]).all()
    half = length // 2
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1)  # one in the first half
    np.testing.assert_array_equal(markers[:, half:].sum(axis=1), 1)  # one in the second
    np.testing.assert_allclose(targets[:, 0], (values * markers).sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 1337])
@pytest.mark.parametrize("length", [2, 11, 50])
def test_adding_problem_data(seed, length):
    inputs, targets = adding_problem(length, 300, seed)
    _check_adding_batch(inputs, targets, length)
    again = adding_problem(length, 300, seed)
    np.testing.assert_array_equal(inputs, again[0])  # same seed, same data
    assert not np.array_equal(inputs, adding_problem(length, 300, seed + 1)[0])

    stream = adding_problem_dataset(length, 16, seed)
    batches = [(x.numpy(), y.numpy()) for x, y in stream.take(3)]
    for x, y in batches:
        _check_adding_batch(x, y, length)
    assert not np.array_equal(batches[0][0], batches[1][0])  # a stream, not one batch repeated
    assert not np.array_equal(batches[0][0], inputs[:16])  # separate train and test streams
    for (x, _), (x_again, _) in zip(batches, stream.take(3), strict=True):
        np.testing.assert_array_equal(x, x_again.numpy())
    other_seed = next(iter(adding_problem_dataset(length, 16, seed + 1)))[0].numpy()
    assert not np.array_equal(batches[0][0], other_seed)


def test_adding_problem_markers_cover_each_half():
    """Every position of each half is drawn (uniform marker positions), none outside it."""
    inputs, _ = adding_problem(8, 2000, 0)
    first = inputs[:, :4, 1].argmax(axis=1)
    second = inputs[:, 4:, 1].argmax(axis=1) + 4
    assert set(first) == {0, 1, 2, 3} and set(second) == {4, 5, 6, 7}
    assert np.bincount(first).min() > 400  # 500 expected each


def test_adding_problem_batch_is_a_function_of_its_seed():
    seed = tf.constant([4, 2])
    x, y = adding_problem_batch(7, 5, seed)
    x_again, y_again = adding_problem_batch(7, 5, seed)
    np.testing.assert_array_equal(x.numpy(), x_again.numpy())
    _check_adding_batch(x.numpy(), y.numpy(), 7)


@pytest.mark.parametrize("make", [adding_problem, adding_problem_dataset])
def test_adding_problem_refuses_a_length_below_two(make):
    with pytest.raises(ValueError, match="length=1"):
        make(1, 4, 0)


# -- diagnostics ---------------------------------------------------------------------------


def _generic_loop_copy(layer):
    """A layer of the same class and weights that runs the generic cell loop.

    The one place these tests choose the loop (the layers' fused-vs-generic argument).
    """
    generic = type(layer)(layer.units, use_fused=False)
    generic.build((None, None, 2))
    generic.set_weights(layer.get_weights())
    assert layer.uses_fast_path() and not generic.uses_fast_path()
    return generic


def test_gradient_through_time_matches_the_closed_form():
    """Linear SimpleRNN, squared error: dL/dh_t = 2 (y_hat - y) w^T (R^T)^(T - t)."""
    rng = np.random.default_rng(3)
    length, batch, units = 12, 5, 3
    kernel = rng.standard_normal((2, units)).astype("float32")
    recurrent_kernel = (0.5 * rng.standard_normal((units, units))).astype("float32")  # non-normal
    head_kernel = rng.standard_normal((units, 1)).astype("float32")
    recurrent = rnn_keras.SimpleRNN(units, activation="linear", use_bias=False)
    recurrent.build((None, None, 2))
    recurrent.set_weights([kernel, recurrent_kernel])
    head = keras.layers.Dense(1, use_bias=False)
    head.build((None, units))
    head.set_weights([head_kernel])
    inputs = rng.uniform(size=(batch, length, 2)).astype("float32")
    targets = rng.uniform(size=(batch, 1)).astype("float32")

    h = np.zeros((batch, units))
    for t in range(length):  # h_t = x_t @ kernel + h_{t-1} @ recurrent_kernel
        h = inputs[:, t] @ kernel + h @ recurrent_kernel
    d_final = 2 * (h @ head_kernel - targets) * head_kernel.T

    def closed_form(matrix, distances):
        powers = [np.linalg.matrix_power(matrix, d) for d in distances]
        return [np.linalg.norm(d_final @ p, axis=-1).mean() for p in powers]

    distances, norms = gradient_through_time(recurrent, head, inputs, targets)
    assert distances == list(range(length))
    np.testing.assert_allclose(norms, closed_form(recurrent_kernel.T, distances), rtol=1e-5)
    # The transposed convention gives other numbers: the check can tell them apart.
    assert not np.allclose(norms, closed_form(recurrent_kernel, distances), rtol=1e-3)

    distances, norms = gradient_through_time(recurrent, head, inputs, targets, num_points=4)
    assert distances == [0, 3, 6, 9]  # a stride of 12 // 4, T itself included
    np.testing.assert_allclose(norms, closed_form(recurrent_kernel.T, distances), rtol=1e-5)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_gradient_through_time_fused_equals_the_generic_loop(cell):
    """The fused kernels' backward pass gives the dL/dh_t of autodiff through the cell loop."""
    inputs, targets = adding_problem(30, 8, 3)
    _, recurrent, head = last_state_regressor(cell, 30, 6, seed=0)
    generic = _generic_loop_copy(recurrent)
    fused = gradient_through_time(recurrent, head, inputs, targets, num_points=10)
    loop = gradient_through_time(generic, head, inputs, targets, num_points=10)
    assert fused[0] == loop[0] == list(range(0, 30, 3))
    np.testing.assert_allclose(fused[1], loop[1], rtol=1e-5)
    assert all(n > 0 for n in fused[1])


def test_last_state_regressor_is_seeded_and_takes_layer_arguments():
    inputs, _ = adding_problem(9, 4, 0)
    model, recurrent, head = last_state_regressor("lstm", 9, 5, seed=7, unit_forget_bias=False)
    again, _, _ = last_state_regressor("lstm", 9, 5, seed=7, unit_forget_bias=False)
    other, _, _ = last_state_regressor("lstm", 9, 5, seed=8, unit_forget_bias=False)
    assert model.input_shape == (None, 9, 2) and model.output_shape == (None, 1)
    np.testing.assert_array_equal(
        model.predict(inputs, verbose=0), again.predict(inputs, verbose=0)
    )
    assert not np.allclose(model.predict(inputs, verbose=0), other.predict(inputs, verbose=0))
    assert isinstance(recurrent, rnn_keras.LSTM) and head.units == 1
    np.testing.assert_array_equal(recurrent.cell.bias.numpy(), 0)  # no forget bias of 1


def test_spectral_radius_against_numpy():
    matrix = np.random.default_rng(0).standard_normal((6, 6))
    expected = max(abs(np.linalg.eigvals(matrix)))
    assert spectral_radius(matrix) == pytest.approx(expected, rel=1e-12)
    # An orthogonal matrix times g has every eigenvalue on the circle of radius g.
    gain_kernel = keras.initializers.Orthogonal(gain=1.8, seed=1)((16, 16))
    assert spectral_radius(gain_kernel) == pytest.approx(1.8, rel=1e-5)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        spectral_radius(np.zeros((2, 3)))


def _tiny_run():
    keras.utils.set_random_seed(0)
    model, _, _ = last_state_regressor("gru", 6, 4, seed=0)
    test = adding_problem(6, 64, 0)
    data = adding_problem_dataset(6, 8, 0)
    optimizer = keras.optimizers.SGD(0.1, global_clipnorm=1e-3)
    return model, test, data, optimizer


def test_fit_and_record_curve_and_gradient_norms():
    """Step-0 test MSE and the first step's gradient norm, recomputed with a tape and NumPy."""
    model, (x_test, y_test), data, optimizer = _tiny_run()
    expected_mse = float(((model.predict(x_test, verbose=0) - y_test) ** 2).mean())
    x, y = (a.numpy() for a in next(iter(data)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    grads = tape.gradient(loss, model.trainable_variables)
    expected_norm = np.sqrt(sum((g.numpy().astype("float64") ** 2).sum() for g in grads))

    run = fit_and_record(model, data, (x_test, y_test), optimizer=optimizer, steps=6, eval_every=3)
    assert run["curve"]["step"] == [0, 3, 6] and run["steps"] == 6
    assert run["curve"]["test_mse"][0] == pytest.approx(expected_mse, rel=1e-6)
    assert run["test_mse"] == run["curve"]["test_mse"][-1]
    assert len(run["gradient_norms"]) == 6
    # Recorded before clipping: far above global_clipnorm=1e-3.
    assert run["gradient_norms"][0] == pytest.approx(expected_norm, rel=1e-5) and expected_norm > 1
    assert run["max_gradient_norm"] == max(run["gradient_norms"])
    assert run["solved_at_step"] is None and run["seconds"] > 0


def test_fit_and_record_solved_and_stopped():
    model, test, data, optimizer = _tiny_run()
    initial_mse = float(((model.predict(test[0], verbose=0) - test[1]) ** 2).mean())
    run = fit_and_record(
        model, data, test, optimizer=optimizer, steps=6, eval_every=2, solved_mse=initial_mse * 2
    )
    assert run["solved_at_step"] == 0 and run["steps"] == 6  # solved, not stopped
    with pytest.raises(ValueError, match="steps=5, eval_every=2"):
        fit_and_record(model, data, test, optimizer=optimizer, steps=5, eval_every=2)


def test_learning_curve_recorder_stops_at_the_first_solved_evaluation():
    model, test, data, _ = _tiny_run()
    model.compile(optimizer="sgd", loss="mse")
    recorder = LearningCurveRecorder(test, solved_mse=np.inf, stop_when_solved=True)
    model.fit(data, steps_per_epoch=3, epochs=4, callbacks=[recorder], verbose=0)
    assert recorder.solved_at_step == 0 and recorder.steps[0] == 0
    assert recorder.steps_taken < 12 and recorder.gradient_norms == []  # no monitor: no norms


# -- benchmarking --------------------------------------------------------------------------

STACK = dict(embedding=4, units=6, layers=2, bidirectional=True)
TINY = dict(batch=3, time=5, vocabulary=11, per_step_output=False, **STACK)


def test_recurrent_flops_per_token_by_hand():
    # LSTM, I = 4, H = 6, two bidirectional layers: 2 * 24 * 6 * (4 + 6) + 2 * 24 * 6 * (12 + 6).
    flops = benchmarking.recurrent_flops_per_token("lstm", **STACK)
    assert flops == 2880 + 5184
    assert benchmarking.recurrent_flops_per_token("lstm", **STACK, training=False) == flops / 3
    assert benchmarking.recurrent_flops_per_token("simple", embedding=4, units=6) == 6 * 6 * 10
    assert benchmarking.recurrent_flops_per_token("gru", embedding=4, units=6) == 18 * 6 * 10
    with pytest.raises(ValueError, match="cell='rnn'"):
        benchmarking.recurrent_flops_per_token("rnn", embedding=4, units=6)


def test_median_seconds_warms_up_then_takes_the_median(monkeypatch):
    calls = []
    clock = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0])  # runs of 3 s, 1 s, 2 s
    monkeypatch.setattr(benchmarking.time, "perf_counter", lambda: next(clock))
    seconds = benchmarking.median_seconds(calls.append, steps=4, repeats=3)
    assert calls == [2, 4, 4, 4]
    assert seconds == pytest.approx(2.0 / 4)


def test_random_batch():
    x, y = benchmarking.random_batch(batch=3, time=5, vocabulary=11, per_step_output=False)
    assert x.shape == (3, 5) and x.dtype == np.int32 and 0 <= x.min() and x.max() < 11
    assert y.shape == (3, 1) and set(np.unique(y)) <= {0.0, 1.0}
    again = benchmarking.random_batch(batch=3, time=5, vocabulary=11, per_step_output=False)
    np.testing.assert_array_equal(x, again[0])
    _, y = benchmarking.random_batch(batch=3, time=5, vocabulary=11, per_step_output=True, seed=1)
    assert y.shape == (3, 5) and y.dtype == np.int32


@pytest.mark.parametrize("per_step_output", [False, True])
def test_benchmark_model(per_step_output):
    shape = {**TINY, "per_step_output": per_step_output}
    model, loss = benchmarking.benchmark_model(rnn_keras.GRU, **shape)
    expected = (3, 5, 11) if per_step_output else (3, 1)
    assert model.output_shape == expected
    wrappers = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert len(wrappers) == 2 and isinstance(wrappers[0].forward_layer, rnn_keras.GRU)
    assert wrappers[1].forward_layer.return_sequences is per_step_output
    expected_loss = "SparseCategoricalCrossentropy" if per_step_output else "BinaryCrossentropy"
    assert type(loss).__name__ == expected_loss


def test_implementations():
    timed = benchmarking.implementations()
    families = {(i.family, i.cell) for i in timed}
    assert families == set(itertools.product(("rnn_keras", "keras"), ("simple", "lstm", "gru")))
    by_name = {i.name: i for i in timed}
    assert by_name["keras.layers.GRU(reset_after=False)"].layer(3).reset_after is False
    assert isinstance(by_name["rnn_keras.LSTM"].layer(3, return_sequences=True), rnn_keras.LSTM)
    with_torch = benchmarking.implementations(include_torch=True)
    assert [i.name for i in with_torch[len(timed) :]] == [
        "torch.nn.RNN",
        "torch.nn.LSTM",
        "torch.nn.GRU",
    ]


def test_torch_version_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    assert benchmarking.torch_version() is None


def test_measure_throughput_row():
    implementation = benchmarking.implementations()[1]  # rnn_keras.LSTM
    shape = {**TINY, "layers": 1, "bidirectional": False}
    row = benchmarking.measure_throughput(
        implementation, steps=1, repeats=1, peak_flops=1e9, jit_compile=(False,), **shape
    )
    assert row["implementation"] == "rnn_keras.LSTM" and row["xla"] is False
    flops = benchmarking.recurrent_flops_per_token("lstm", embedding=4, units=6)
    assert row["train_flops_fraction"] == pytest.approx(row["train_tokens_per_s"] * flops / 1e9)
    assert row["infer_flops_fraction"] == pytest.approx(row["infer_tokens_per_s"] * flops / 3e9)
    assert row["train_tokens_per_s"] > 0 and row["infer_tokens_per_s"] > 0
