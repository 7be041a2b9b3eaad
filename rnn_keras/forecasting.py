"""Multi-horizon forecasting from windows of an hourly table: windows, their training data,
three baselines and the error per horizon.

A table is a dict of equally long 1-D NumPy columns, one row per time step. A
forecast made at row t reads the `history` rows t-history..t-1 and predicts a
target column at t..t+horizon-1. Missing readings are NaN: they stay NaN in the
input windows (for a model to impute: `FeatureWindowPreprocessor`), and a
missing target gets weight 0 in training and counts in no error.

    starts = window_starts(table["year"], (2013,), history=72, horizon=24)
    inputs, targets = make_windows(table, starts, 72, 24, ["pm25", "hour"], "pm25")
    errors = horizon_errors(persistence(inputs["pm25"], 24, fallback=98.6), targets)

Baselines: `persistence` (the last reading, for every hour ahead),
`seasonal_naive` (the reading one season before), and `fit_ridge` (linear
least squares with an L2 penalty, on any features, e.g. a preprocessor's
flattened window: `flatten_batches`).
"""

import numpy as np

__all__ = [
    "window_starts",
    "make_windows",
    "window_dataset",
    "flatten_batches",
    "persistence",
    "seasonal_naive",
    "fit_ridge",
    "horizon_errors",
]


def window_starts(periods, keep, history, horizon, max_windows=None):
    """The rows t that start a forecast: t >= `history`, t + horizon - 1 in the table and in
    the same period as t (e.g. the year), that period in `keep`.

    Args:
        periods: 1-D array, each row's period (e.g. its year).
        keep: the periods whose windows are wanted (a split: training years, ...).
        history: rows read before t.
        horizon: rows predicted from t on.
        max_windows: at most this many starts, evenly spaced over the wanted
            ones, the first and last included (None: all).
    """
    periods = np.asarray(periods)
    starts = np.arange(history, len(periods) - horizon + 1)
    same_period = periods[starts] == periods[starts + horizon - 1]
    starts = starts[same_period & np.isin(periods[starts], list(keep))]
    if max_windows is None or len(starts) <= max_windows:
        return starts
    return starts[np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]


def make_windows(table, starts, history, horizon, inputs, target):
    """`({name: (n, history)}, targets (n, horizon))` for each start t: the `inputs` columns
    at rows t-history..t-1 and the `target` column at t..t+horizon-1 (NaN past the end).
    Missing values stay NaN; nothing is filled."""
    starts = np.asarray(starts)
    rows = starts[:, None] + np.arange(-history, 0)
    windows = {name: table[name][rows] for name in inputs}
    column = np.asarray(table[target], dtype="float32")
    padded = np.concatenate([column, np.full(horizon, np.nan, "float32")])
    return windows, padded[starts[:, None] + np.arange(horizon)]


def window_dataset(inputs, targets=None, batch_size=32, seed=None, preprocessor=None):
    """A `tf.data.Dataset` of window batches: `(x, targets, weights)`, or `x` without targets.

    A missing target (NaN) becomes 0 with weight 0, a present one has weight
    1; targets and weights are float32 `(batch, horizon)`, so a loss that keeps
    the horizon axis (`per_output_absolute_error`) weighs each hour on its own.
    With `seed` the windows are shuffled (once per iteration, reproducibly)
    before batching. With a `preprocessor` (e.g. a `FeatureWindowPreprocessor`)
    it is mapped over the batches, so `x` is the model's float features: what a
    `tf.distribute` replica can take (raw windows hold strings).
    """
    import tensorflow as tf

    if targets is None:
        dataset = tf.data.Dataset.from_tensor_slices(inputs)
    else:
        present = ~np.isnan(targets)
        values = np.where(present, targets, 0.0).astype("float32")
        dataset = tf.data.Dataset.from_tensor_slices((inputs, values, present.astype("float32")))
    if seed is not None:
        dataset = dataset.shuffle(int(dataset.cardinality()), seed=seed)
    dataset = dataset.batch(batch_size)
    if preprocessor is not None:
        dataset = dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def flatten_batches(batches):
    """A dataset (or iterable) of feature batches `(batch, ...)` -> one array `(n, features)`:
    each window's features in one row (for `fit_ridge`)."""
    rows = [np.asarray(batch).reshape(len(batch), -1) for batch in batches]
    return np.concatenate(rows, axis=0)


def persistence(history, horizon, fallback):
    """`(n, time) -> (n, horizon)`: each window's last reading present, for every hour ahead;
    `fallback` (e.g. the training mean) for a window with none."""
    history = np.asarray(history, dtype="float32")
    present = ~np.isnan(history)
    last_index = history.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)
    last = history[np.arange(len(history)), last_index]
    last = np.where(present.any(axis=1), last, fallback)
    return np.repeat(last[:, None], horizon, axis=1).astype("float32")


def seasonal_naive(history, horizon, season, fallback):
    """`(n, time) -> (n, horizon)`: for h = 1..horizon, the reading at t + h - `season` (one
    season before the hour predicted); where that is missing, `persistence`.

    Needs `horizon <= season <= time`: the hour a season before is in the window.
    """
    history = np.asarray(history, dtype="float32")
    time = history.shape[1]
    if not horizon <= season <= time:
        raise ValueError(
            "seasonal_naive: the hour one season before each predicted hour must be in the "
            f"window. Expected: horizon <= season <= window length. Received: horizon={horizon}, "
            f"season={season}, window length={time}"
        )
    before = history[:, time - season : time - season + horizon]
    return np.where(np.isnan(before), persistence(history, horizon, fallback), before)


def fit_ridge(features, targets, alphas):
    """`{alpha: predict}` with `predict(features) -> (n, outputs)` float32: ridge regression.

    For each alpha, W = (X'X + alpha I)^-1 X'(Y - mean(Y)) on the centered
    features X (the intercept is not penalized), fitted in float64 on the rows
    with every target present. One eigendecomposition X'X = V diag(e) V' serves
    all alphas: W = V diag(1 / (e + alpha)) V' X'(Y - mean(Y)).

    Args:
        features: `(n, features)`.
        targets: `(n, outputs)`, NaN where missing (such rows are left out).
        alphas: the penalties to fit.
    """
    keep = ~np.isnan(targets).any(axis=1)
    x, y = features[keep].astype("float64"), targets[keep].astype("float64")
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    x -= x_mean
    eigenvalues, eigenvectors = np.linalg.eigh(x.T @ x)
    projected = eigenvectors.T @ (x.T @ (y - y_mean))

    def predictor(alpha):
        weights = eigenvectors @ (projected / (eigenvalues + alpha)[:, None])
        return lambda f: ((f.astype("float64") - x_mean) @ weights + y_mean).astype("float32")

    return {alpha: predictor(alpha) for alpha in alphas}


def horizon_errors(forecast, targets):
    """`{"mae", "rmse"}` per horizon (lists) and `"mean_mae"` (their mean) of `forecast`
    `(n, horizon)` against `targets`, over the present (non-NaN) targets only."""
    present = ~np.isnan(targets)
    error = np.where(present, forecast - np.nan_to_num(targets), 0.0)
    count = present.sum(axis=0)
    mae, rmse = np.abs(error).sum(axis=0) / count, np.sqrt((error**2).sum(axis=0) / count)
    return {"mae": mae.tolist(), "rmse": rmse.tolist(), "mean_mae": float(mae.mean())}
