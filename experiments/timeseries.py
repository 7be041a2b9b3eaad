"""Beijing PM2.5 24 hours ahead from the 72 hours before, against three baselines; a SavedModel.

    python experiments/timeseries.py                      # train the default model
    python experiments/timeseries.py --quick --out /tmp/run    # a minute-long smoke run
    python experiments/timeseries.py forecast --at "2014-06-01 12:00"

UCI "Beijing PM2.5" (Liang et al. 2015). A window is rows t-72..t-1; its targets are pm2.5
at t..t+23, in the year of t: training 2010-2012, validation 2013, test 2014 (read once, after
training). Missing readings stay NaN for the model to impute; missing targets get weight 0 and
count in no figure. Model: `SequenceRegressor` + `FeatureWindowPreprocessor`; windows,
baselines and errors: `rnn_keras.datasets.feature_windows`, `evaluation.forecast_baselines`.
Exports (`task.export`, `rnn_keras.export.save_model`): `pm25/`, a SavedModel whose
`serve(pm25=..., ..., hour=...)` maps the 11 named inputs [batch, time] (72 hours in training)
to float32 [batch, 24], and `pm25.keras`, the task with its preprocessor.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from rnn_keras.datasets import feature_windows  # noqa: E402
from rnn_keras.datasets.feature_windows import flatten_batches  # noqa: E402
from rnn_keras.evaluation import forecast_baselines  # noqa: E402
from rnn_keras.evaluation.forecast_baselines import horizon_errors  # noqa: E402
from rnn_keras.training import distribute  # noqa: E402

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
INPUTS = list(INPUT_DTYPES)
SPLIT_YEARS = {"train": (2010, 2011, 2012), "validation": (2013,), "test": (2014,)}
SPLITS = tuple(SPLIT_YEARS)
RIDGE_ALPHAS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
METHODS = ("persistence", "seasonal_naive", "ridge", "rnn")
TARGET = {"ratio_to_persistence": 0.90, "horizons": (6, 12, 24), "train_minutes": 20}

# The default configuration (chosen on validation; see docs/timeseries.md). None: all windows.
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


def new_forecaster(args, table):
    """The forecaster: `FeatureWindowPreprocessor` (numeric columns normalized on the training
    years, a missing reading imputed as the training mean beside a 0/1 indicator, hour and
    month as sin/cos, wind one-hot; `day` unused: it has no cycle, the season is in the month,
    and the day of the week would need the year) -> GRU -> 24 outputs rescaled to µg/m³."""
    import keras

    import rnn_keras

    preprocessor = rnn_keras.FeatureWindowPreprocessor(
        numeric=list(NUMERIC_COLUMNS), periodic={"hour": 24, "month": [12, 1]},
        categorical={"wind_direction": WIND_DIRECTIONS}, unused={"day": "int32"},
        sequence_length=HISTORY, name="preprocessor",
    )  # fmt: skip
    train_rows = np.isin(table["year"], SPLIT_YEARS["train"])
    preprocessor.adapt(np.stack([table[name][train_rows] for name in NUMERIC_COLUMNS], axis=1))
    mean, std = preprocessor.target_statistics("pm25")
    with common.strategy(args).scope():  # the preprocessor's statistics stay outside it
        backbone = rnn_keras.RecurrentBackbone(
            cell=args.cell, units=args.units, num_layers=args.layers,
            input_dim=preprocessor.feature_size, dropout=args.dropout,
        )  # fmt: skip
        regressor = rnn_keras.SequenceRegressor(
            backbone, num_outputs=HORIZON, pooling="last", output_scale=std, output_offset=mean,
            preprocessor=preprocessor, name="pm25_forecaster",
        )  # fmt: skip
        optimizer = keras.optimizers.Adam(args.lr, global_clipnorm=args.clipnorm)
        regressor.compile(optimizer, jit_compile=False)  # per-hour absolute error, weighted "mae"
    return regressor


def windows_of(table, split, max_windows=None):
    """(starts, inputs, targets) of a split's windows."""
    years = SPLIT_YEARS[split]
    starts = feature_windows.window_starts(table["year"], years, HISTORY, HORIZON, max_windows)
    return (starts, *feature_windows.make_windows(table, starts, HISTORY, HORIZON, INPUTS, "pm25"))


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

    run_dir, export_dir = common.start_run(args, "timeseries")
    keras.utils.set_random_seed(args.seed)
    started = time.time()
    table = read_table(args.data, args.data_dir)
    windows = {split: windows_of(table, split, args.max_windows) for split in SPLITS[:2]}
    forecaster = new_forecaster(args, table)
    forecaster.summary(print_fn=lambda line, **_: print(line))

    def batches(split, batch_size=512, targets=None, seed=None):  # features [and targets]
        return feature_windows.window_dataset(
            windows[split][1], targets, batch_size, seed, forecaster.preprocessor
        )

    train_ds = batches("train", args.batch_size, windows["train"][2], args.seed)
    val_ds = batches("validation", args.batch_size, windows["validation"][2])
    history, train_seconds = common.fit(forecaster, args, run_dir, train_ds, val_ds, "val_mae")

    # Baselines: the training mean where a window has no pm2.5; ridge on the model's features.
    fallback = float(np.nanmean(table["pm25"][np.isin(table["year"], SPLIT_YEARS["train"])]))
    ridge = forecast_baselines.fit_ridge(
        flatten_batches(batches("train")), windows["train"][2], RIDGE_ALPHAS
    )
    val_features = flatten_batches(batches("validation"))
    by_alpha = {
        alpha: horizon_errors(fit(val_features), windows["validation"][2])["mean_mae"]
        for alpha, fit in ridge.items()
    }
    alpha = min(by_alpha, key=by_alpha.get)
    splits = list(SPLITS[1:2] if args.skip_test else SPLITS[1:])
    for split in splits[1:]:  # the test windows: read once, after training and every choice
        windows[split] = windows_of(table, split, args.max_windows)
    predicted, figures = {}, {}
    for split in splits:
        pm25, targets = windows[split][1]["pm25"], windows[split][2]
        predicted[split] = {
            "persistence": forecast_baselines.persistence(pm25, HORIZON, fallback),
            "seasonal_naive": forecast_baselines.seasonal_naive(pm25, HORIZON, DAY, fallback),
            "ridge": ridge[alpha](flatten_batches(batches(split))),
            "rnn": distribute.predict(forecaster, batches(split)),
        }
        figures[split] = {m: horizon_errors(f, targets) for m, f in predicted[split].items()}
    exports = common.export_task(forecaster, export_dir, "pm25")

    # The last split's weeks, among hours whose 1..24-hour-ahead forecasts all exist.
    year = SPLIT_YEARS[split][0]
    year_rows = np.flatnonzero(table["year"] == year)
    weeks = choose_weeks(table["time"], table["pm25"], year_rows[0] + 23, year_rows[-1] - 23)
    starts, rnn, title = windows[split][0], predicted[split]["rnn"], f"{split} {year}"
    plot_results(run_dir, table, figures[split], weeks, starts, rnn, title)
    val_mae = history.history["val_mae"]
    best = f"best validation MAE {min(val_mae):.2f}"
    metrics = {
        **figures,
        "target": {split: target_check(figures[split], train_seconds) for split in splits},
        "ridge_alpha": alpha,
        "ridge_validation_mean_mae_by_alpha": {str(a): v for a, v in by_alpha.items()},
        "windows": {split: len(windows[split][0]) for split in windows},
        "weeks": {label: str(table["time"][row]) for label, row in weeks.items()},
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "epochs_run": len(val_mae),
        "best_epoch": int(np.argmin(val_mae)) + 1,
        "parameters": int(forecaster.count_params()),
    }
    title = f"{args.cell}: {best}"
    metrics = common.write_metrics(run_dir, metrics, history, ["mae"], title)
    for split in splits:
        means = ", ".join(f"{m} {figures[split][m]['mean_mae']:.2f}" for m in METHODS)
        print(f"{split} mean MAE (µg/m³): {means}; target: {metrics['target'][split]}")
    print(f"training {train_seconds / 60:.1f} min, {metrics['epochs_run']} epochs ({best})")
    common.report_run(run_dir, *exports)
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

    inputs, truth = feature_windows.make_windows(table, [row + 1], HISTORY, HORIZON, INPUTS, "pm25")
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
