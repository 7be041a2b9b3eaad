"""Beijing PM2.5 24 hours ahead from the 72 hours before, against three baselines; a SavedModel.

    python experiments/timeseries.py                      # train the default model
    python experiments/timeseries.py --quick --out /tmp/run    # a minute-long smoke run
    python experiments/timeseries.py forecast --at "2014-06-01 12:00"

UCI "Beijing PM2.5" (Liang et al. 2015). A window is rows t-72..t-1; its targets are pm2.5
at t..t+23, in the year of t: training 2010-2012, validation 2013, test 2014 (read once, after
training). Missing readings stay NaN for the model to impute; missing targets get weight 0 and
count in no figure. Exports: `pm25/`, a SavedModel whose `serve(pm25=..., ..., hour=...)` maps
the 11 inputs [batch, 72] to float32 [batch, 24], and `pm25.keras`.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from rnn_keras import distribute, training  # noqa: E402

DATA_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00381/"
DATA_FILE = "PRSA_data_2010.1.1-2014.12.31.csv"
HISTORY, HORIZON, DAY, WEEK = 72, 24, 24, 168
# Model input: CSV column. Float32 [batch, 72], NaN where missing.
NUMERIC_COLUMNS = dict(
    pm25="pm2.5", dew_point="DEWP", temperature="TEMP", pressure="PRES", wind_speed="Iws",
    snow_hours="Is", rain_hours="Ir",
)  # fmt: skip
CALENDAR_COLUMNS = ("month", "day", "hour")
WIND_DIRECTIONS = ["NE", "NW", "SE", "cv"]  # the CSV's cbwd
INPUT_DTYPES = {  # each [batch, 72]
    **dict.fromkeys(NUMERIC_COLUMNS, "float32"), "wind_direction": "string",
    **dict.fromkeys(CALENDAR_COLUMNS, "int32"),
}  # fmt: skip
SPLIT_YEARS = {"train": (2010, 2011, 2012), "validation": (2013,), "test": (2014,)}
RIDGE_ALPHAS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
METHODS = ("persistence", "seasonal_naive", "ridge", "rnn")
TARGET = {"ratio_to_persistence": 0.90, "horizons": (6, 12, 24), "train_minutes": 20}

# The default configuration (chosen on validation; see the README). None: all windows.
DEFAULTS = dict(
    cell="gru", layers=1, units=64, dropout=0.0, epochs=30, batch_size=64, lr=1e-3,
    clipnorm=100.0, patience=3, seed=1337, max_windows=None,
)  # fmt: skip
# --quick: the same code path on a few hundred windows, for tests and smoke runs.
QUICK = {"max_windows": 300, "layers": 1, "units": 8, "epochs": 1}
HELP = {
    "dropout": "on each recurrent layer's inputs", "clipnorm": "global norm (loss in µg/m³)",
    "max_windows": "per split, evenly spaced (default: all)", "patience": "early stopping",
}  # fmt: skip


def read_table(data=None, data_dir=None):
    """The CSV (`data`, else `get_file`'s, in `data_dir`) by input name, `year`, `time`."""
    import keras

    where = {"cache_dir": str(data_dir), "cache_subdir": ""} if data_dir else {}
    path = data or keras.utils.get_file(DATA_FILE, DATA_URL + DATA_FILE, **where)
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    table = {
        name: np.array([float("nan") if r[col] == "NA" else float(r[col]) for r in rows], "float32")
        for name, col in NUMERIC_COLUMNS.items()
    }
    table["wind_direction"] = np.array([r["cbwd"] for r in rows])
    for name in ("year", *CALENDAR_COLUMNS):
        table[name] = np.array([r[name] for r in rows], "int32")
    months = ((table["year"] - 1970) * 12 + table["month"] - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (table["day"] - 1)
    table["time"] = days.astype("datetime64[h]") + table["hour"]
    if np.any(np.diff(table["time"]) != np.timedelta64(1, "h")):
        raise ValueError(f"read_table: {path} must hold consecutive hours, one row each.")
    return table


def window_starts(years, split_years, max_windows=None):
    """Each t from row 72 with t..t+23 in one of `split_years`; `max_windows`, evenly spaced."""
    starts = np.arange(HISTORY, len(years) - HORIZON + 1)
    same_year = years[starts] == years[starts + HORIZON - 1]
    starts = starts[same_year & np.isin(years[starts], split_years)]
    if max_windows is None or len(starts) <= max_windows:
        return starts
    return starts[np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]


def make_windows(table, starts):
    """(inputs: rows t-72..t-1 per start t, targets: pm2.5 at t..t+23), NaN where missing."""
    history = starts[:, None] + np.arange(-HISTORY, 0)
    inputs = {name: table[name][history] for name in INPUT_DTYPES}
    pm25 = np.concatenate([table["pm25"], np.full(HORIZON, np.nan, "float32")])
    return inputs, pm25[starts[:, None] + np.arange(HORIZON)]


def window_dataset(inputs, targets, batch_size, seed=None):
    """Batches of (inputs, targets (n, 24, 1), weights (n, 24)): a missing target is 0, weight 0."""
    import tensorflow as tf

    present = ~np.isnan(targets)
    values = np.where(present, targets, 0.0).astype("float32")[..., None]
    dataset = tf.data.Dataset.from_tensor_slices((inputs, values, present.astype("float32")))
    if seed is not None:
        dataset = dataset.shuffle(len(values), seed=seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def persistence(pm25_history, fallback):
    """(n, 72) -> (n, 24): the last reading present, for every hour; `fallback` if none is."""
    present = ~np.isnan(pm25_history)
    last_index = pm25_history.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)
    last = pm25_history[np.arange(len(pm25_history)), last_index]
    last = np.where(present.any(axis=1), last, fallback)
    return np.repeat(last[:, None], HORIZON, axis=1).astype("float32")


def seasonal_naive(pm25_history, fallback):
    """(n, 72) -> (n, 24): for horizon h, hour t+h-24; where that is missing, persistence."""
    yesterday = pm25_history[:, HISTORY - DAY : HISTORY - DAY + HORIZON]
    return np.where(np.isnan(yesterday), persistence(pm25_history, fallback), yesterday)


def fit_ridge(features, targets, alphas):
    """{alpha: predict(features) -> (n, 24)}: ridge (intercept unpenalized), closed form on the
    rows with all 24 targets, one eigendecomposition of the centered Gram matrix for all alphas."""
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
    """MAE and RMSE per horizon (lists of 24), and the mean MAE, over the present targets only."""
    present = ~np.isnan(targets)
    error = np.where(present, forecast - np.nan_to_num(targets), 0.0)
    count = present.sum(axis=0)
    mae, rmse = np.abs(error).sum(axis=0) / count, np.sqrt((error**2).sum(axis=0) / count)
    return {"mae": mae.tolist(), "rmse": rmse.tolist(), "mean_mae": float(mae.mean())}


def target_check(figures, train_seconds):
    """The issue's target, part by part, on one split's figures."""
    ratio = figures["rnn"]["mean_mae"] / figures["persistence"]["mean_mae"]
    best = np.min([figures[method]["mae"] for method in METHODS[:-1]], axis=0)  # of baselines
    beats = {h: bool(figures["rnn"]["mae"][h - 1] < best[h - 1]) for h in TARGET["horizons"]}
    holds = ratio <= TARGET["ratio_to_persistence"] and all(beats.values())
    holds = bool(holds and train_seconds <= 60 * TARGET["train_minutes"])
    return {"ratio_to_persistence": ratio, "rnn_below_every_baseline_at": beats, "holds": holds}


def choose_weeks(times, pm25, first, last):
    """First rows of two Monday-Sunday weeks in rows first..last, chosen from the truth only:
    "clean" (no pm2.5 missing, the lowest mean) and "episode" (the highest hour)."""
    hours = times[first : last - WEEK + 2].astype("int64")
    mondays = first + np.flatnonzero((hours // 24 + 3) % 7 + hours % 24 == 0)  # 1970-01-01: Thu
    weeks = np.stack([pm25[row : row + WEEK] for row in mondays])
    means = np.where(np.isnan(weeks).any(axis=1), np.inf, weeks.mean(axis=1))
    episode = np.nanargmax(np.nanmax(weeks, axis=1))
    return {"clean": int(mondays[np.argmin(means)]), "episode": int(mondays[episode])}


def build_forecaster(args, normalization_rows):
    """(forecaster, preprocessor): named raw windows -> pm2.5 (n, 24) in µg/m³, -> features.

    A missing reading stays NaN through `Normalization` (adapted on `normalization_rows`), then
    is 0, the training mean, beside a 0/1 indicator. `day` is unused: it has no cycle, the season
    is in the month, and the day of the week would need the year.
    """
    import keras
    from keras import ops

    import rnn_keras

    normalization = keras.layers.Normalization(name="normalize")
    normalization.adapt(normalization_rows)
    inputs = {n: keras.Input((HISTORY,), dtype=d, name=n) for n, d in INPUT_DTYPES.items()}
    numeric = ops.stack([inputs[name] for name in NUMERIC_COLUMNS], axis=-1)
    parts = [
        rnn_keras.ImputeMissing(0.0, name="impute_missing")(normalization(numeric)),
        rnn_keras.CyclicalEncoding(24, name="hour_of_day")(inputs["hour"]),
        rnn_keras.CyclicalEncoding(12, offset=1, name="month_of_year")(inputs["month"]),
        keras.layers.StringLookup(
            vocabulary=WIND_DIRECTIONS,
            num_oov_indices=1,
            output_mode="one_hot",
            name="wind_one_hot",
        )(inputs["wind_direction"]),
    ]
    features = ops.concatenate(parts, axis=-1)
    backbone = rnn_keras.RecurrentBackbone(
        cell=args.cell, units=args.units, num_layers=args.layers, input_dim=features.shape[-1],
        dropout=args.dropout,
    )  # fmt: skip
    regressor = rnn_keras.SequenceRegressor(backbone, num_outputs=HORIZON, pooling="last")
    mean = float(np.asarray(normalization.mean).reshape(-1)[0])
    std = float(np.sqrt(np.asarray(normalization.variance).reshape(-1)[0]))
    forecast = keras.layers.Rescaling(std, offset=mean, name="micrograms")(regressor(features))
    return keras.Model(inputs, forecast, name="pm25_forecaster"), keras.Model(inputs, features)


def export_saved_model(forecaster, path):
    """A SavedModel: `serve`, the 11 named inputs [batch, 72] -> float32 [batch, 24]."""
    import keras
    import tensorflow as tf

    # fmt: off
    def serve(pm25, dew_point, temperature, pressure, wind_speed, snow_hours, rain_hours,
              wind_direction, month, day, hour):
        arguments = locals()
        inputs = {name: arguments[name] for name in INPUT_DTYPES}
        return tf.cast(forecaster(inputs, training=False), tf.float32)
    # fmt: on

    archive = keras.export.ExportArchive()
    archive.track(forecaster)
    signature = [tf.TensorSpec([None, HISTORY], d, n) for n, d in INPUT_DTYPES.items()]
    archive.add_endpoint("serve", serve, input_signature=signature)
    archive.write_out(str(path), verbose=False)


def plot_results(run_dir, table, figures, weeks, starts, forecast, title):
    """mae_by_horizon.png (every method); forecast_weeks.png (truth, RNN 1/6/24 h ahead)."""
    import matplotlib.pyplot as plt

    plt.switch_backend("Agg")
    fig, axis = plt.subplots(figsize=(7, 4), layout="constrained")
    for method in METHODS:
        axis.plot(range(1, HORIZON + 1), figures[method]["mae"], marker=".", label=method)
    axis.set(xlabel="hours ahead", ylabel="MAE (µg/m³)", title=f"{title}: MAE by horizon")
    axis.legend()
    fig.savefig(run_dir / "mae_by_horizon.png", dpi=110, bbox_inches="tight")
    fig, axes = plt.subplots(len(weeks), 1, figsize=(11, 7), squeeze=False, layout="constrained")
    for axis, (label, first) in zip(axes[:, 0], weeks.items(), strict=True):
        hours = np.arange(first, first + WEEK)
        axis.plot(table["time"][hours], table["pm25"][hours], "k", lw=2, label="truth")
        for h in (1, 6, 24):
            ahead = np.full(len(table["pm25"]), np.nan, "float32")
            ahead[starts + h - 1] = forecast[:, h - 1]  # each hour's forecast made h hours before
            axis.plot(table["time"][hours], ahead[hours], lw=1, label=f"{h} h ahead")
        axis.set(title=f"{title}: {label} week", ylabel="pm2.5 (µg/m³)")
        axis.legend(ncol=4, fontsize=8)
    fig.savefig(run_dir / "forecast_weeks.png", dpi=110, bbox_inches="tight")
    plt.close("all")


def train(argv):
    parser = argparse.ArgumentParser(
        description="Train, evaluate and export a 24-hour Beijing PM2.5 forecaster.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    common.add_flags(parser, DEFAULTS, HELP, {"cell": ["simple", "lstm", "gru"]})
    common.add_run_flags(
        parser, "timeseries", "pm25/ and pm25.keras", "the folder that holds or gets the CSV", True
    )
    parser.add_argument("--data", help="the CSV (default: keras.utils.get_file, in --data-dir)")
    parser.add_argument("--skip-test", action="store_true", help="leave the 2014 test unread")
    args = common.parse_args(parser, argv, QUICK)
    import keras
    import tensorflow as tf

    run_dir, export_dir = common.start_run(args, "timeseries")
    keras.utils.set_random_seed(args.seed)
    started = time.time()
    table = read_table(args.data, args.data_dir)
    windows = {}

    def add_windows(*splits):
        for split in splits:
            starts = window_starts(table["year"], SPLIT_YEARS[split], args.max_windows)
            windows[split] = (starts, *make_windows(table, starts))

    add_windows("train", "validation")
    train_rows = np.isin(table["year"], SPLIT_YEARS["train"])
    numeric = np.stack([table[name] for name in NUMERIC_COLUMNS], axis=1)
    complete = train_rows & ~np.isnan(numeric).any(axis=1)
    with common.strategy(args).scope():
        forecaster, preprocessor = build_forecaster(args, numeric[complete])
        # "mae" averages the last axis before it weighs: a (n, 24, 1) view weighs each hour alone.
        hours = keras.layers.Reshape((HORIZON, 1), name="hours")(forecaster.output)
        training_view = keras.Model(forecaster.input, hours, name="pm25_training_view")
        optimizer = keras.optimizers.Adam(args.lr, global_clipnorm=args.clipnorm)
        mae = keras.metrics.MeanAbsoluteError(name="mae")  # over the present targets (weighted)
        training_view.compile(optimizer, loss="mae", weighted_metrics=[mae], jit_compile=False)
    forecaster.summary(print_fn=lambda line, **_: print(line))
    train_ds = window_dataset(*windows["train"][1:], args.batch_size, args.seed)
    val_ds = window_dataset(*windows["validation"][1:], args.batch_size)
    history, train_seconds = common.fit(training_view, args, run_dir, train_ds, val_ds, "val_mae")

    # Baselines: the training mean where a window has no pm2.5; ridge on the model's features.
    fallback = float(np.nanmean(table["pm25"][train_rows]))

    def predict(model, split):
        batches = tf.data.Dataset.from_tensor_slices(windows[split][1]).batch(512)
        return distribute.predict(model, batches).reshape(len(windows[split][0]), -1)

    ridge = fit_ridge(predict(preprocessor, "train"), windows["train"][2], RIDGE_ALPHAS)
    val_features = predict(preprocessor, "validation")
    by_alpha = {
        alpha: horizon_errors(fit(val_features), windows["validation"][2])["mean_mae"]
        for alpha, fit in ridge.items()
    }
    alpha = min(by_alpha, key=by_alpha.get)
    splits = ["validation"] + ([] if args.skip_test else ["test"])
    add_windows(*splits[1:])  # the test windows: read once, after training and every choice
    predicted, figures = {}, {}
    for split in splits:
        pm25 = windows[split][1]["pm25"]
        predicted[split] = {
            "persistence": persistence(pm25, fallback),
            "seasonal_naive": seasonal_naive(pm25, fallback),
            "ridge": ridge[alpha](predict(preprocessor, split)),
            "rnn": predict(forecaster, split),
        }
        targets = windows[split][2]
        figures[split] = {m: horizon_errors(f, targets) for m, f in predicted[split].items()}
    training.atomic_replace(lambda tmp: export_saved_model(forecaster, tmp), export_dir / "pm25")
    training.atomic_replace(lambda tmp: forecaster.save(tmp), export_dir / "pm25.keras")

    # The last split's weeks, among hours whose 1..24-hour-ahead forecasts all exist.
    year = SPLIT_YEARS[split][0]
    year_rows = np.flatnonzero(table["year"] == year)
    weeks = choose_weeks(table["time"], table["pm25"], year_rows[0] + 23, year_rows[-1] - 23)
    starts, rnn, title = windows[split][0], predicted[split]["rnn"], f"{split} {year}"
    plot_results(run_dir, table, figures[split], weeks, starts, rnn, title)
    history = training.history_dict(history)
    best = f"best validation MAE {min(history['val_mae']):.2f}"
    training.plot_history(history, run_dir / "learning_curve.png", ["mae"], f"{args.cell}: {best}")
    metrics = {
        **figures,
        "target": {split: target_check(figures[split], train_seconds) for split in splits},
        "ridge_alpha": alpha,
        "ridge_validation_mean_mae_by_alpha": {str(a): v for a, v in by_alpha.items()},
        "windows": {split: len(windows[split][0]) for split in windows},
        "weeks": {label: str(table["time"][row]) for label, row in weeks.items()},
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "epochs_run": len(history["loss"]),
        "best_epoch": int(np.argmin(history["val_mae"])) + 1,
        "history": history,
        "parameters": int(forecaster.count_params()),
        "machine": training.machine_info(),
    }
    training.write_json(run_dir / "metrics.json", metrics)
    for split in splits:
        means = ", ".join(f"{m} {figures[split][m]['mean_mae']:.2f}" for m in METHODS)
        print(f"{split} mean MAE (µg/m³): {means}; target: {metrics['target'][split]}")
    print(f"training {train_seconds / 60:.1f} min, {metrics['epochs_run']} epochs ({best})")
    common.report_run(run_dir, export_dir / "pm25", export_dir / "pm25.keras")
    return metrics


def forecast(argv):
    parser = argparse.ArgumentParser(
        prog="timeseries.py forecast",
        description="A SavedModel's pm2.5 forecast for the 24 hours after --at, from the 72 "
        "hours of the CSV up to and including --at, beside the truth.",
    )
    parser.add_argument(
        "--at", required=True, type=np.datetime64, help='the last hour read: "2014-06-01 12:00"'
    )
    parser.add_argument("--model", default=str(common.REPO_ROOT / "saved_models" / "pm25"))
    parser.add_argument("--data", help="the CSV (default: keras.utils.get_file, in --data-dir)")
    parser.add_argument("--data-dir", help="the folder that holds (or gets) the CSV")
    args = parser.parse_args(argv)
    table = read_table(args.data, args.data_dir)
    row = int(np.searchsorted(table["time"], args.at.astype("datetime64[h]")))
    if not HISTORY - 1 <= row < len(table["time"]):
        first, last = table["time"][HISTORY - 1], table["time"][-1]
        parser.error(f"--at must be an hour from {first} to {last}. Received: {args.at}")
    import tensorflow as tf

    inputs, truth = make_windows(table, np.array([row + 1]))
    loaded = tf.saved_model.load(args.model)  # keep a reference: it owns the variables
    predicted = loaded.serve(**{name: tf.constant(value) for name, value in inputs.items()})
    print(f"pm2.5 forecast (µg/m³) at {table['time'][row]}\nhour           forecast  truth")
    for h, (value, true) in enumerate(zip(predicted.numpy()[0], truth[0], strict=True), start=1):
        when = str(table["time"][row] + np.timedelta64(h, "h"))
        print(f"{when}  {value:8.1f}  {'NA' if np.isnan(true) else f'{true:.0f}':>5}")
    return predicted.numpy()[0]


def main(argv=None):
    return common.dispatch(argv, {"forecast": forecast, "train": train}, train)


if __name__ == "__main__":
    main()
