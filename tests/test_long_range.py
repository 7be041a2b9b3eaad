"""experiments/long_range.py: the adding-problem data, dL/dh_t against its closed form, --quick."""

import itertools
import json
import math

import keras
import long_range
import numpy as np
import pytest

import rnn_keras


def _check_adding_batch(inputs, targets, length):
    values, markers = inputs[..., 0], inputs[..., 1]
    assert inputs.shape[1:] == (length, 2) and targets.shape == (len(inputs), 1)
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert np.isin(markers, [0.0, 1.0]).all()
    half = length // 2
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1)  # one in the first half
    np.testing.assert_array_equal(markers[:, half:].sum(axis=1), 1)  # one in the second
    np.testing.assert_allclose(targets[:, 0], (values * markers).sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 1337])
@pytest.mark.parametrize("length", [2, 11, 50])
def test_adding_problem_data(seed, length):
    inputs, targets = long_range.test_set(length, 300, seed)
    _check_adding_batch(inputs, targets, length)
    again = long_range.test_set(length, 300, seed)
    np.testing.assert_array_equal(inputs, again[0])  # same seed, same data
    assert not np.array_equal(inputs, long_range.test_set(length, 300, seed + 1)[0])

    stream = long_range.train_dataset(length, 16, seed)
    batches = [(x.numpy(), y.numpy()) for x, y in stream.take(3)]
    for x, y in batches:
        _check_adding_batch(x, y, length)
    assert not np.array_equal(batches[0][0], batches[1][0])  # a stream, not one batch repeated
    assert not np.array_equal(batches[0][0], inputs[:16])  # separate train and test streams
    for (x, _), (x_again, _) in zip(batches, stream.take(3), strict=True):
        np.testing.assert_array_equal(x, x_again.numpy())
    other_seed = next(iter(long_range.train_dataset(length, 16, seed + 1)))[0].numpy()
    assert not np.array_equal(batches[0][0], other_seed)


def test_constant_predictor_scores_one_sixth():
    _, targets = long_range.test_set(100, 20000, 5)
    assert long_range.constant_mse(targets) == pytest.approx(1 / 6, abs=0.006)  # ~4 std. errors


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

    distances, norms = long_range.gradient_through_time(recurrent, head, inputs, targets)
    assert distances == list(range(length))
    np.testing.assert_allclose(norms, closed_form(recurrent_kernel.T, distances), rtol=1e-5)
    # The transposed convention gives other numbers: the check can tell them apart.
    assert not np.allclose(norms, closed_form(recurrent_kernel, distances), rtol=1e-3)

    distances, norms = long_range.gradient_through_time(
        recurrent, head, inputs, targets, num_points=4
    )
    assert distances == [0, 3, 6, 9]  # a stride of 12 // 4, T itself included
    np.testing.assert_allclose(norms, closed_form(recurrent_kernel.T, distances), rtol=1e-5)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_gradient_through_time_fused_equals_the_generic_loop(cell):
    """The fused kernels' backward pass gives the dL/dh_t of autodiff through the cell loop."""
    inputs, targets = long_range.test_set(30, 8, 3)
    _, recurrent, head = long_range.build_model(cell, 30, 6, seed=0)
    generic = rnn_keras.get_layer(cell)(6, use_fused=False)
    generic.build((None, None, 2))
    generic.set_weights(recurrent.get_weights())
    assert recurrent.uses_fast_path() and not generic.uses_fast_path()
    fused = long_range.gradient_through_time(recurrent, head, inputs, targets, num_points=10)
    loop = long_range.gradient_through_time(generic, head, inputs, targets, num_points=10)
    assert fused[0] == loop[0] == list(range(0, 30, 3))
    np.testing.assert_allclose(fused[1], loop[1], rtol=1e-5)
    assert all(n > 0 for n in fused[1])


def test_main_lstm_is_the_forget_bias_one_orthogonal_variant():
    """The initialisation part reuses the main LSTM run as (bias 1, orthogonal)."""
    cell = rnn_keras.LSTM(4).cell
    assert cell.unit_forget_bias is True
    assert isinstance(cell.recurrent_initializer, keras.initializers.Orthogonal)


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--lengths", "0,50"], ["--lengths", "integers >= 2", "'0,50'"]),
        (["--lengths", "50,50"], ["--lengths", "distinct", "'50,50'"]),
        (["--cells", "simple,rnn"], ["--cells", "simple, lstm, gru", "'simple,rnn'"]),
        (["--units", "-3"], ["--units", "an integer >= 1", "'-3'"]),
        (["--lr", "0"], ["--lr", "a number > 0", "'0'"]),
        (["--steps", "150", "--eval-every", "100"], ["--steps", "--eval-every=100", "150"]),
    ],
)
def test_bad_flags_are_rejected_with_a_message(flags, named, capsys):
    with pytest.raises(SystemExit) as error:
        long_range.parse_args(flags)
    assert error.value.code == 2
    message = capsys.readouterr().err
    for text in named:
        assert text in message


def test_quick_run_end_to_end(tmp_path):
    long_range.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    config = json.loads((tmp_path / "config.json").read_text())["args"]
    lengths, steps = config["lengths"], config["steps"]
    assert lengths == [10, 20] and config["cells"] == ["simple", "lstm", "gru"]

    results = metrics["results"]
    assert {(r["cell"], r["length"]) for r in results} == set(
        itertools.product(("simple", "lstm", "gru"), lengths)
    )
    assert len(results) == 6
    for r in results:
        assert isinstance(r["test_mse"], float) and 0 < r["test_mse"] < 10
        assert isinstance(r["seconds"], float) and r["seconds"] > 0
        solved = r["solved_at_step"]
        assert solved is None or (isinstance(solved, int) and 0 < solved <= steps)
        assert r["steps"] == (solved if solved else steps)
        assert r["curve"]["step"][0] == 0 and r["curve"]["step"][-1] == r["steps"]
        assert r["curve"]["test_mse"][-1] == r["test_mse"]

    targets = np.concatenate(
        [long_range.test_set(t, config["test_size"], 1337)[1] for t in lengths]
    )
    assert metrics["baseline_mse"] == pytest.approx(long_range.constant_mse(targets), rel=1e-6)
    assert metrics["baseline_mse"] == pytest.approx(1 / 6, abs=0.02)  # 4,000 targets: ~6 s.e.

    flow = metrics["gradient_flow"]
    assert flow["length"] == 20 and flow["distance"] == list(range(20))
    assert set(flow["cells"]) == {"simple", "lstm", "gru"}
    for measured in flow["cells"].values():
        for phase in ("initial", "trained"):
            assert len(measured[phase]) == 20
            assert all(math.isfinite(n) and n >= 0 for n in measured[phase])
            assert measured[phase][0] > 0

    clipping = metrics["clipping"]
    assert clipping["spectral_radius"] == pytest.approx(config["clip_gain"], rel=1e-4)
    runs = clipping["runs"]
    assert [(run["optimizer"], run["clipnorm"]) for run in runs] == [
        ("adam", config["clipnorm"]),
        ("adam", None),
        ("sgd", config["clipnorm"]),
        ("sgd", None),
    ]
    for run in runs:
        assert len(run["gradient_norms"]) == config["clip_steps"]
        assert run["max_gradient_norm"] == max(n for n in run["gradient_norms"] if n is not None)
        # Same seed: the same starting weights and first batch, whatever the optimizer.
        assert run["curve"]["test_mse"][0] == runs[0]["curve"]["test_mse"][0]
        assert run["gradient_norms"][0] == runs[0]["gradient_norms"][0] > 0

    variants = metrics["initialization"]
    assert {(v["unit_forget_bias"], v["recurrent_initializer"]) for v in variants} == set(
        itertools.product((True, False), ("orthogonal", "glorot_uniform"))
    )
    for v in variants:
        assert v["length"] in lengths
        assert v["solved_at_step"] is None or isinstance(v["solved_at_step"], int)
    assert metrics["machine"]["cpu_cores"] >= 1

    for name in ("test_mse.png", "gradient_flow.png", "clipping.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 10_000
