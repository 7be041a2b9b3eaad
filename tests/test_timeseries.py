"""experiments/timeseries.py: its year splits and weeks, a --quick run end to end, its SavedModel
and its .keras task. (Windows, baselines and errors are rnn_keras.forecasting's, tested in
test_forecasting.py.)"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import timeseries
from conftest import REPO_ROOT
from helpers import run_quick, run_without_rnn_keras

import rnn_keras
from rnn_keras import forecasting

SCRIPT = REPO_ROOT / "experiments" / "timeseries.py"


def hourly_table(first, last):
    """A table of every hour from `first` to `last`, each numeric column = the row index."""
    times = np.arange(np.datetime64(first, "h"), np.datetime64(last, "h") + 1)
    index = np.arange(len(times), dtype="float32")
    table = {name: index.copy() for name in timeseries.NUMERIC_COLUMNS}
    table["wind_direction"] = np.array(["NE"] * len(times))
    table["year"] = times.astype("datetime64[Y]").astype("int32") + 1970
    table["month"] = times.astype("datetime64[M]").astype("int32") % 12 + 1
    days = times.astype("datetime64[D]")
    table["day"] = (days - days.astype("datetime64[M]")).astype("int32") + 1
    table["hour"] = np.arange(len(times), dtype="int32") % 24
    table["time"] = times
    return table


def windows(table, starts):
    """(inputs, targets) of the experiment's windows: 72 hours of its inputs, 24 of pm2.5."""
    return forecasting.make_windows(table, starts, 72, 24, timeseries.INPUTS, "pm25")


def test_year_split_rule():
    table = hourly_table("2010-01-01T00", "2014-12-31T23")
    starts = {split: timeseries.windows_of(table, split)[0] for split in timeseries.SPLITS}
    # Every hour t of a year whose t+23 is in it too; 2010 also needs the 72 hours before t.
    assert [len(s) for s in starts.values()] == [
        (8760 - 72 - 23) + (8760 - 23) + (8784 - 23),
        8760 - 23,
        8760 - 23,
    ]
    years = {
        split: set(table["year"][s]) | set(table["year"][s + 23]) for split, s in starts.items()
    }
    assert years == {"train": {2010, 2011, 2012}, "validation": {2013}, "test": {2014}}
    times = {split: table["time"][s] for split, s in starts.items()}
    assert str(times["train"][0]) == "2010-01-04T00" and str(times["train"][-1]) == "2012-12-31T00"
    assert str(times["validation"][0]) == "2013-01-01T00"  # its inputs reach back into 2012
    assert str(times["test"][-1]) == "2014-12-31T00"
    few, inputs, targets = timeseries.windows_of(table, "test", max_windows=5)
    assert len(set(few)) == 5 and few[0] == starts["test"][0] and few[-1] == starts["test"][-1]
    assert set(inputs) == set(timeseries.INPUT_DTYPES) and targets.shape == (5, 24)
    np.testing.assert_array_equal(inputs["dew_point"], few[:, None] + np.arange(-72, 0))
    np.testing.assert_array_equal(targets, few[:, None] + np.arange(24))


def test_weeks_are_chosen_from_the_truth():
    times = np.arange(np.datetime64("2014-01-01T00", "h"), np.datetime64("2014-02-01T00", "h"))
    pm25 = np.full(len(times), 50.0)
    monday = [24 * day for day in (5, 12, 19)]  # 2014-01-06, 13 and 20 at 00:00
    pm25[monday[0] : monday[0] + 168] = 10.0  # the lowest mean, but one hour missing
    pm25[monday[0] + 3] = np.nan
    pm25[monday[1] : monday[1] + 168] = 20.0  # the lowest complete week
    pm25[monday[2] + 100] = 900.0  # the episode
    weeks = timeseries.choose_weeks(times, pm25, 0, len(times) - 1)
    assert weeks == {"clean": monday[1], "episode": monday[2]}


# --- a --quick run end to end -----------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, pm25_csv):
    run_dir = tmp_path_factory.mktemp("timeseries_quick")
    run_quick(SCRIPT, run_dir, *(["--data", pm25_csv] if pm25_csv else []), timeout=600)
    return run_dir


@pytest.mark.integration
def test_quick_run_writes_its_run_folder(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert metrics["windows"] == {"train": 300, "validation": 300, "test": 300}
    for split in ("validation", "test"):
        assert set(metrics[split]) == set(timeseries.METHODS)
        for figure in metrics[split].values():
            assert len(figure["mae"]) == len(figure["rmse"]) == 24
            assert all(
                0 < mae <= rmse < 1000
                for mae, rmse in zip(figure["mae"], figure["rmse"], strict=True)
            )
        assert set(metrics["target"][split]) == {
            "ratio_to_persistence",
            "rnn_below_every_baseline_at",
            "holds",
        }
    assert metrics["ridge_alpha"] in timeseries.RIDGE_ALPHAS and metrics["epochs_run"] == 1
    assert metrics["weeks"] == {"clean": "2014-08-11T00", "episode": "2014-01-13T00"}
    for png in ("learning_curve", "mae_by_horizon", "forecast_weeks"):
        assert (quick_run / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (quick_run / "export").iterdir()) == ["pm25", "pm25.keras"]


SERVE = """
import numpy as np
import tensorflow as tf

m = tf.saved_model.load(request["model"])
dtypes = request["dtypes"]

def serve(inputs, **cast):
    tensors = {k: tf.constant(np.array(v, dtype=dtypes[k]).reshape(-1, len(v[0]) if v else 72))
               for k, v in inputs.items()}
    tensors.update({k: tf.cast(tensors[k], dtype) for k, dtype in cast.items()})
    out = m.serve(**tensors)
    return {"shape": out.shape.as_list(), "dtype": out.dtype.name,
            "finite": bool(np.isfinite(out.numpy()).all()), "values": out.numpy().tolist()}

windows = request["windows"]
numeric = [k for k, d in dtypes.items() if d == "float32"]
cases = {
    "windows": windows,
    "all_nan_pm25": {**windows, "pm25": [[float("nan")] * 72] * 3},
    "all_nan_numeric": {**windows, **{k: [[float("nan")] * 72] * 3 for k in numeric}},
    "unknown_wind": {**windows, "wind_direction": [["XYZ"] * 72, [""] * 72, ["ne"] * 72]},
    "empty": {k: [] for k in windows},
}
response = {name: serve(inputs) for name, inputs in cases.items()}
errors = {}
for name, (inputs, cast) in {
    "float64": (windows, {"pm25": tf.float64}),
    "int_hour_as_float": (windows, {"hour": tf.float32}),
    "71_hours": ({k: [row[:71] for row in v] for k, v in windows.items()}, {}),
}.items():
    try:
        serve(inputs, **cast)
        errors[name] = "accepted"
    except (TypeError, ValueError) as error:
        errors[name] = f"{type(error).__name__}: {error}"[:400]
response["errors"] = errors
"""


@pytest.mark.integration
def test_saved_model_serves_like_the_keras_model_without_rnn_keras(quick_run, pm25_csv):
    table = timeseries.read_table(pm25_csv)
    test, all_inputs, _ = timeseries.windows_of(table, "test")
    gappy = np.isnan(all_inputs["pm25"]).any(axis=1)
    starts = np.array([test[0], test[gappy][0], test[-1]])  # the middle one has pm2.5 missing
    inputs, _ = windows(table, starts)
    model = keras.saving.load_model(quick_run / "export" / "pm25.keras")
    expected = model.predict({k: tf.constant(v) for k, v in inputs.items()}, verbose=0)
    dtypes = {k: str(v.dtype) if k != "wind_direction" else "str" for k, v in inputs.items()}
    payload = {
        "model": str(quick_run / "export" / "pm25"),
        "dtypes": dtypes,
        "windows": {k: v.tolist() for k, v in inputs.items()},
    }
    served = run_without_rnn_keras(SERVE, payload, cwd=quick_run)
    assert served["windows"]["shape"] == [3, 24] and served["windows"]["dtype"] == "float32"
    np.testing.assert_allclose(served["windows"]["values"], expected, rtol=1e-5, atol=1e-4)
    for name in ("all_nan_pm25", "all_nan_numeric", "unknown_wind"):
        assert served[name]["shape"] == [3, 24] and served[name]["finite"], name
    assert served["empty"]["shape"] == [0, 24] and served["empty"]["dtype"] == "float32"
    errors = served["errors"]
    assert "float64" in errors["float64"] and "pm25" in errors["float64"], errors
    assert "float32" in errors["int_hour_as_float"] and "hour" in errors["int_hour_as_float"]
    # The forecaster reads 72 hours: the preprocessor's sequence_length fixes the signature.
    assert "71" in errors["71_hours"] and "72" in errors["71_hours"], errors
    with pytest.raises(ValueError, match="windows of 72 steps. Received: 71 steps"):
        model.predict({k: tf.constant(v[:, :71]) for k, v in inputs.items()}, verbose=0)


@pytest.mark.integration
def test_keras_file_is_the_task_with_its_preprocessor(quick_run, pm25_csv):
    model = keras.saving.load_model(quick_run / "export" / "pm25.keras")
    assert isinstance(model, rnn_keras.SequenceRegressor) and model.num_outputs == 24
    preprocessor = model.preprocessor
    assert isinstance(preprocessor, rnn_keras.FeatureWindowPreprocessor)
    assert preprocessor.input_dtypes == timeseries.INPUT_DTYPES
    # Normalized on the training years' complete rows; the output in µg/m³ around their mean.
    table = timeseries.read_table(pm25_csv)
    rows = np.stack([table[n] for n in timeseries.NUMERIC_COLUMNS], axis=1)
    rows = rows[np.isin(table["year"], timeseries.SPLIT_YEARS["train"])]
    rows = rows[~np.isnan(rows).any(axis=1)]
    mean, std = preprocessor.target_statistics("pm25")
    np.testing.assert_allclose([mean, std], [rows[:, 0].mean(), rows[:, 0].std()], rtol=1e-4)
    assert (model.output_offset, model.output_scale) == (mean, std)
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert model.count_params() == metrics["parameters"]


@pytest.mark.integration
def test_forecast_command_prints_the_saved_models_24_hours(quick_run, pm25_csv, capsys):
    command = ["forecast", "--at", "2014-06-01 12:00", "--model", str(quick_run / "export/pm25")]
    predicted = timeseries.main(command + (["--data", pm25_csv] if pm25_csv else []))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[2].startswith("2014-06-01T13") and lines[-1].startswith("2014-06-02T12")
    assert len(lines) == 2 + 24 and predicted.shape == (24,) and np.isfinite(predicted).all()
    table = timeseries.read_table(pm25_csv)
    first = np.flatnonzero(table["time"] == np.datetime64("2014-06-01T13"))  # t: --at + 1 hour
    inputs, truth = windows(table, first)
    assert lines[2].split()[-1] == ("NA" if np.isnan(truth[0, 0]) else f"{truth[0, 0]:.0f}")
    model = keras.saving.load_model(quick_run / "export" / "pm25.keras")
    expected = model.predict({k: tf.constant(v) for k, v in inputs.items()}, verbose=0)
    np.testing.assert_allclose(predicted, expected[0], rtol=1e-5, atol=1e-4)
    with pytest.raises(SystemExit):
        timeseries.main(["forecast", "--at", "2010-01-02 00:00", "--data", pm25_csv or ""])
