"""Forecasting baselines and the error per horizon: `persistence` (the last reading, for
every hour ahead), `seasonal_naive` (the reading one season before), and `fit_ridge`
(linear least squares with an L2 penalty, on any features, e.g. a preprocessor's
flattened window: `rnn_keras.datasets.feature_windows.flatten_batches`). A missing target
(NaN) counts in no error.

    errors = horizon_errors(persistence(inputs["pm25"], 24, fallback=98.6), targets)
"""

import numpy as np

__all__ = ["persistence", "seasonal_naive", "fit_ridge", "horizon_errors"]


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
