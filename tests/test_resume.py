"""A --quick run of each training experiment, killed (SIGKILL) after its first epoch and run
again in the same folder: it resumes, and its record is the whole run's."""

import json

import pytest
from conftest import REPO_ROOT
from helpers import kill_after_first_epoch, start_quick

EXPERIMENTS = {
    # script, the phase of its (last) fit, its training-seconds key in metrics.json
    "imdb": ("imdb.py", "_student", "classifier_train_seconds"),
    "char_text": ("char_text.py", "", "train_seconds"),
    "timeseries": ("timeseries.py", "", "train_seconds"),
}


@pytest.mark.integration
@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_a_killed_run_resumes_and_records_the_whole_run(
    experiment, tmp_path, tfds_data_dir, pm25_csv
):
    script, phase, seconds_key = EXPERIMENTS[experiment]
    if experiment == "timeseries":
        data = ["--data", pm25_csv] if pm25_csv else []
    else:
        data = ["--data-dir", tfds_data_dir] if tfds_data_dir else []
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    flags = [*data, "--epochs", "2"]
    logs = [tmp_path / "killed.log", tmp_path / "resumed.log"]

    killed = start_quick(REPO_ROOT / "experiments" / script, run_dir, *flags, log=logs[0])
    kill_after_first_epoch([killed], run_dir / f"backup{phase}")
    before = json.loads((run_dir / f"history{phase}.json").read_text())
    assert len(before["seconds"]) == 1  # epoch 1 recorded, then killed during epoch 2

    resumed = start_quick(REPO_ROOT / "experiments" / script, run_dir, *flags, log=logs[1])
    assert resumed.wait(timeout=600) == 0, logs[1].read_text()[-4000:]
    output = logs[1].read_text()
    assert "Epoch 2/2" in output and "Epoch 1/2" not in output  # epoch 1 was not redone
    for log in logs:
        assert "ran out of data" not in log.read_text()

    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = metrics["history"]
    assert metrics["epochs_run"] == 2 and len(history["loss"]) == len(history["val_loss"]) == 2
    assert history["loss"][0] == before["history"]["loss"][0]  # the killed run's epoch 1
    record = json.loads((run_dir / f"history{phase}.json").read_text())
    assert record["history"] == history
    # The seconds are the whole run's: epoch 1's, counted by the killed process, then the rest.
    assert record["seconds"][0] == before["seconds"][0] < record["seconds"][1]
    assert metrics[seconds_key] >= round(record["seconds"][1], 1)
    if experiment == "char_text":  # every step's gradient norm, before and after the restart
        norms, norms_before = metrics["gradient_norm_per_step"], before["steps"]["gradient_norm"][0]
        assert len(norms) == 2 * len(norms_before) > 0
        assert norms[: len(norms_before)] == norms_before
    assert not (run_dir / f"backup{phase}").exists()  # BackupAndRestore's end of training
