"""Windows of an hourly table for multi-horizon forecasting, and their training data.

A table is a dict of equally long 1-D NumPy columns, one row per time step. A
forecast made at row t reads the `history` rows t-history..t-1 and predicts a
target column at t..t+horizon-1. Missing readings are NaN: they stay NaN in the
input windows (for a model to impute: `FeatureWindowPreprocessor`), and a
missing target gets weight 0 in training.

    starts = window_starts(table["year"], (2013,), history=72, horizon=24)
    inputs, targets = make_windows(table, starts, 72, 24, ["pm25", "hour"], "pm25")
"""

import numpy as np

__all__ = ["window_starts", "make_windows", "window_dataset", "flatten_batches"]


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
