"""rnn_keras.forecasting: windows of a table, their training data, baselines, horizon errors."""

import math

import numpy as np
import pytest

import rnn_keras
from rnn_keras import forecasting


def small_table(periods):
    """Rows 0..n-1: `x` = the row index (float32), `hour` = row % 24, `wind` a string."""
    n = len(periods)
    return {
        "period": np.asarray(periods, "int32"),
        "x": np.arange(n, dtype="float32"),
        "hour": np.arange(n, dtype="int32") % 24,
        "wind": np.array(["NE", "cv"] * (n // 2) + ["NE"] * (n % 2)),
    }


def test_window_starts_keep_history_horizon_and_period():
    periods = [0] * 10 + [1] * 8 + [2] * 6
    starts = forecasting.window_starts(periods, keep=(0, 1, 2), history=3, horizon=2)
    # t >= 3, t + 1 < 24, and t, t + 1 in one period.
    expected = [t for t in range(3, 23) if periods[t] == periods[t + 1]]
    np.testing.assert_array_equal(starts, expected)
    np.testing.assert_array_equal(
        forecasting.window_starts(periods, (1,), 3, 2), [t for t in expected if periods[t] == 1]
    )
    few = forecasting.window_starts(periods, (0, 1, 2), 3, 2, max_windows=4)
    assert len(few) == 4 and few[0] == expected[0] and few[-1] == expected[-1]
    assert set(few) <= set(expected)
    everything = forecasting.window_starts(periods, (0, 1, 2), 3, 2, max_windows=100)
    np.testing.assert_array_equal(everything, expected)


def test_make_windows_align_inputs_and_targets_and_keep_nan():
    table = small_table([0] * 12)
    table["x"][[5, 10]] = np.nan
    inputs, targets = forecasting.make_windows(table, [3, 9], 3, 4, ["x", "hour"], "x")
    np.testing.assert_array_equal(inputs["x"], [[0, 1, 2], [6, 7, 8]])
    np.testing.assert_array_equal(inputs["hour"], [[0, 1, 2], [6, 7, 8]])
    assert inputs["hour"].dtype == np.int32
    # Targets t..t+3; NaN where missing and past the end of the table (row 12).
    np.testing.assert_array_equal(targets, [[3, 4, np.nan, 6], [9, np.nan, 11, np.nan]])


def test_window_dataset_weights_missing_targets_zero_and_applies_a_preprocessor():
    table = small_table([0] * 40)
    starts = np.arange(4, 30)
    inputs, targets = forecasting.make_windows(table, starts, 4, 3, ["x", "hour", "wind"], "x")
    targets[0, 1] = targets[5, 2] = np.nan
    x, values, weights = next(iter(forecasting.window_dataset(inputs, targets, 32)))
    present = ~np.isnan(targets)
    assert values.shape == weights.shape == (len(starts), 3)  # one weight per hour ahead
    np.testing.assert_array_equal(weights.numpy(), present.astype("float32"))
    np.testing.assert_array_equal(values.numpy(), np.where(present, targets, 0.0))
    np.testing.assert_array_equal(x["x"].numpy(), inputs["x"])
    assert x["wind"].dtype.name == "string"

    shuffled = forecasting.window_dataset(inputs, targets, 5, seed=7)
    rows = np.concatenate([batch[0]["x"].numpy()[:, 0] for batch in shuffled])
    assert sorted(rows) == sorted(inputs["x"][:, 0]) and not (rows == inputs["x"][:, 0]).all()
    again = forecasting.window_dataset(inputs, targets, 5, seed=7)
    np.testing.assert_array_equal(
        rows, np.concatenate([batch[0]["x"].numpy()[:, 0] for batch in again])
    )

    preprocessor = rnn_keras.FeatureWindowPreprocessor(
        numeric=["x"], periodic={"hour": 24}, categorical={"wind": ["NE", "cv"]}
    )
    preprocessor.adapt(table["x"][:, None])
    features = list(forecasting.window_dataset(inputs, None, 10, preprocessor=preprocessor))
    assert [tuple(f.shape) for f in features] == [(10, 4, 7), (10, 4, 7), (6, 4, 7)]
    expected = preprocessor(inputs).numpy()
    np.testing.assert_allclose(np.concatenate(features), expected, rtol=1e-6)
    flat = forecasting.flatten_batches(features)
    np.testing.assert_allclose(flat, expected.reshape(len(starts), -1), rtol=1e-6)
    batch = next(iter(forecasting.window_dataset(inputs, targets, 8, preprocessor=preprocessor)))
    assert [tuple(part.shape) for part in batch] == [(8, 4, 7), (8, 3), (8, 3)]


def test_persistence_and_seasonal_naive_on_a_hand_made_series():
    history = np.tile(np.arange(72, dtype="float32"), (4, 1))
    history[1, 67:] = np.nan  # last reading present: hour 66
    history[2, :] = np.nan  # nothing present: the fallback
    history[3, [50, 71]] = np.nan  # last reading present: hour 70
    persistence = forecasting.persistence(history, 24, fallback=99.5)
    np.testing.assert_array_equal(persistence[:, 0], [71, 66, 99.5, 70])
    assert persistence.shape == (4, 24) and (persistence == persistence[:, :1]).all()

    seasonal = forecasting.seasonal_naive(history, 24, 24, fallback=99.5)
    # Horizon h takes hour t+h-24 = window position 47+h (48..71).
    np.testing.assert_array_equal(seasonal[0], np.arange(48, 72))
    np.testing.assert_array_equal(seasonal[1], [*range(48, 67), 66, 66, 66, 66, 66])
    np.testing.assert_array_equal(seasonal[2], np.full(24, 99.5))
    np.testing.assert_array_equal(seasonal[3], [48, 49, 70, *range(51, 71), 70])
    # A shorter horizon and a longer season: hour t+h-36 = position 35+h.
    np.testing.assert_array_equal(forecasting.seasonal_naive(history, 6, 36, 0.0)[0], range(36, 42))
    with pytest.raises(ValueError, match="horizon <= season <= window length"):
        forecasting.seasonal_naive(history, 24, 12, 0.0)
    with pytest.raises(ValueError, match="horizon <= season <= window length"):
        forecasting.seasonal_naive(history, 24, 168, 0.0)


def test_horizon_errors_count_present_targets_only():
    targets = np.array([[1.0, np.nan], [4.0, 2.0]])
    errors = forecasting.horizon_errors(np.array([[2.0, 9.0], [1.0, 6.0]]), targets)
    assert errors["mae"] == [2.0, 4.0] and errors["rmse"] == [math.sqrt(5.0), 4.0]
    assert errors["mean_mae"] == 3.0


def test_ridge_matches_the_normal_equations_and_skips_missing_targets():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 6)).astype("float32")
    weights = rng.normal(size=(6, 24))
    targets = (features @ weights + 3.0).astype("float32")
    targets[:20, 5] = np.nan  # rows with a missing target are left out of the fit
    targets[:20, :5] = 1e6
    fits = forecasting.fit_ridge(features, targets, alphas=(1e-6, 10.0, 1e6))
    exact = features[20:] @ weights + 3.0
    np.testing.assert_allclose(fits[1e-6](features[20:]), exact, rtol=1e-4, atol=1e-3)
    assert np.abs(fits[1e6](features[20:]) - exact).mean() > 0.5  # a large alpha shrinks
    # alpha = 10 against the normal equations on the centered complete rows.
    x, y = features[20:].astype("float64"), targets[20:].astype("float64")
    xc = x - x.mean(axis=0)
    w = np.linalg.solve(xc.T @ xc + 10.0 * np.eye(6), xc.T @ (y - y.mean(axis=0)))
    expected = (features - x.mean(axis=0)) @ w + y.mean(axis=0)
    np.testing.assert_allclose(fits[10.0](features), expected, rtol=1e-5, atol=1e-4)
