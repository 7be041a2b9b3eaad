"""rnn_keras under tf.distribute: MirroredStrategy over two logical CPUs against one device,
stateful layers under several replicas, and the experiments under `--strategy multi-worker`
(two local worker processes), killed and resumed."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT
from helpers import kill_after_first_epoch, run_without_rnn_keras, start_quick

IMDB_SCRIPT = REPO_ROOT / "experiments" / "imdb.py"

# Runs in a fresh process: logical devices must be set before TensorFlow initialises its own.
TWO_CPUS = """
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
import rnn_keras
"""

MIRRORED_TRAINING = """
rng = np.random.default_rng(0)
ids = rng.integers(1, 20, (32, 9)).astype("int32")
for row, length in enumerate(rng.integers(2, 10, 32)):
    ids[row, length:] = 0  # right padding, masked: every row has its own length
labels = rng.integers(0, 2, (32, 1)).astype("float32")


def model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 6, mask_zero=True)(inputs)
    for layer, units, return_sequences in (
        (rnn_keras.SimpleRNN, 5, True),
        (rnn_keras.LSTM, 5, True),
        (rnn_keras.GRU, 4, False),
    ):  # the fused kernel (the default), each direction in two batch slices (on a CPU)
        x = keras.layers.Bidirectional(layer(units, return_sequences=return_sequences))(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(keras.optimizers.SGD(0.5), "binary_crossentropy", jit_compile=False)
    return model


response = {}
for name, strategy in (
    ("one_device", tf.distribute.get_strategy()),
    ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
):
    with strategy.scope():
        trained = model()
    # 16 rows per step, 8 per replica; 2 steps per epoch, 3 epochs.
    history = trained.fit(ids, labels, batch_size=16, epochs=3, shuffle=False, verbose=0)
    layers = [
        layer
        for layer in trained._flatten_layers()
        if isinstance(layer, (rnn_keras.SimpleRNN, rnn_keras.LSTM, rnn_keras.GRU))
    ]
    response[name] = {
        "replicas": strategy.num_replicas_in_sync,
        "layers": [type(layer).__name__ for layer in layers],
        "fast_path": [layer.uses_fast_path() for layer in layers],
        "batch_splits": [layer.resolved_batch_splits() for layer in layers],
        "loss": history.history["loss"],
        "weights": [w.tolist() for w in trained.get_weights()],
    }
"""


def run_on_two_cpus(code, tmp_path):
    program = "import json\n" + TWO_CPUS + code + "\nprint('@@' + json.dumps(response))\n"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout[result.stdout.rindex("@@") + 2 :])


@pytest.mark.integration
def test_mirrored_training_equals_one_device_for_every_cell(tmp_path):
    """The same global batches on two replicas and on one device: the same losses and weights.

    SimpleRNN, LSTM and GRU, masked and bidirectional, stacked, on the fused fast path with
    its batch split. Tolerance: 1e-5 relative, 1e-6 absolute (float32 sums in another order:
    each replica's half of the batch, then the all-reduce).
    """
    runs = run_on_two_cpus(MIRRORED_TRAINING, tmp_path)
    one, mirrored = runs["one_device"], runs["mirrored"]
    assert (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert one["layers"] == mirrored["layers"]
    assert sorted(set(one["layers"])) == ["GRU", "LSTM", "SimpleRNN"] and len(one["layers"]) == 6
    assert one["fast_path"] == mirrored["fast_path"] == [True] * 6
    assert one["batch_splits"] == [2] * 6
    np.testing.assert_allclose(mirrored["loss"], one["loss"], rtol=1e-5, atol=1e-6)
    assert one["loss"][-1] < one["loss"][0]  # it trained
    assert len(mirrored["weights"]) == len(one["weights"]) == 1 + 6 * 3 + 2
    for index, (got, expected) in enumerate(zip(mirrored["weights"], one["weights"], strict=True)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=f"weight {index}")


STATEFUL_UNDER_TWO_REPLICAS = """
response = {}
for replicas in (1, 2):
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
    try:
        with strategy.scope():
            rnn_keras.RecurrentBackbone(
                "gru", 4, vocabulary_size=9, embedding_dim=3, stateful=True, batch_size=8
            )
        response[replicas] = "built"
    except ValueError as error:
        response[replicas] = str(error)
"""


@pytest.mark.integration
def test_a_stateful_backbone_refuses_several_replicas_and_builds_under_one(tmp_path):
    results = run_on_two_cpus(STATEFUL_UNDER_TWO_REPLICAS, tmp_path)
    assert results["1"] == "built"
    assert results["2"].startswith("GRU(stateful=True) cannot run under a tf.distribute")
    assert "the 8 rows of the whole batch" in results["2"]
    assert "Received: MirroredStrategy with 2 replicas in sync" in results["2"]


MIRRORED_SCRIPT = """
import argparse
import runpy
import sys

sys.argv = ARGV
runpy.run_path(sys.argv[0], run_name="__main__")
strategy = sys.modules["common"].strategy(argparse.Namespace(strategy="mirrored"))
response = {"replicas": strategy.num_replicas_in_sync}
"""


@pytest.mark.integration
def test_timeseries_trains_under_mirrored_on_two_cpus(tmp_path, pm25_csv):
    """Its inputs hold strings, which Keras 3.15's fit cannot reduce across replicas: the
    experiments train through `rnn_keras.distribute.trainer`."""
    argv = [
        str(REPO_ROOT / "experiments" / "timeseries.py"),
        *("--quick", "--strategy", "mirrored", "--out", str(tmp_path / "run")),
        *(["--data", pm25_csv] if pm25_csv else []),
    ]
    result = run_on_two_cpus(MIRRORED_SCRIPT.replace("ARGV", repr(argv)), tmp_path)
    assert result["replicas"] == 2
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["history"]["val_mae"][0])
    assert sorted(p.name for p in (tmp_path / "run" / "export").iterdir()) == ["pm25", "pm25.keras"]


# --- experiments/imdb.py --strategy multi-worker: two local worker processes -------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def start_workers(run_dir, flags, logs):
    """Two processes of `imdb.py --quick --strategy multi-worker`, a cluster on loopback ports."""
    workers = [f"localhost:{free_port()}" for _ in range(2)]
    processes = []
    for index, log in enumerate(logs):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            start_quick(
                IMDB_SCRIPT,
                run_dir,
                "--strategy",
                "multi-worker",
                *flags,
                log=log,
                env={"TF_CONFIG": json.dumps(config)},
            )
        )
    return processes


def worker_outputs(run_dir, flags, logs):
    """Starts the two workers and waits for both to finish; their outputs."""
    for process, log in zip(start_workers(run_dir, flags, logs), logs, strict=True):
        assert process.wait(timeout=900) == 0, log.read_text()[-4000:]
    return [log.read_text() for log in logs]


@pytest.fixture(scope="module")
def multi_worker_complete(tmp_path_factory, tfds_data_dir):
    """`imdb.py --quick --strategy multi-worker` as it comes (self-training included), run by
    two workers to completion."""
    root = tmp_path_factory.mktemp("multi_worker_complete")
    run_dir = root / "run"
    run_dir.mkdir()
    data = ["--data-dir", tfds_data_dir] if tfds_data_dir else []
    logs = [root / f"worker_{index}.log" for index in range(2)]
    return run_dir, worker_outputs(run_dir, data, logs)


@pytest.mark.integration
def test_two_workers_run_the_default_to_completion(multi_worker_complete):
    run_dir, outputs = multi_worker_complete
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["self_training"]["teacher"]["model"] == "nb-ngrams"
    assert metrics["self_training"]["variants"]["copies"] == 1
    assert metrics["served_model"] == "TextEnsemble"  # the student and its n-gram teacher
    for output in outputs:  # the teacher's two epochs, then the student's one
        assert "Epoch 2/2" in output and "ran out of data" not in output
        assert "weights after training: sha256" in output
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["imdb", "imdb.keras"]
    assert not list(run_dir.glob("workertemp_*"))


@pytest.fixture(scope="module")
def multi_worker_run(tmp_path_factory, tfds_data_dir):
    """Two workers train 2 epochs; both are SIGKILLed after epoch 1 and started again."""
    root = tmp_path_factory.mktemp("multi_worker")
    run_dir = root / "run"
    run_dir.mkdir()
    data = ["--data-dir", tfds_data_dir] if tfds_data_dir else []
    # No self-training: its teacher trains on each worker alone, as it does on one device.
    flags = [*data, "--epochs", "2", "--pseudo-label-confidence", "0"]
    killed_logs = [root / f"killed_{index}.log" for index in range(2)]
    kill_after_first_epoch(start_workers(run_dir, flags, killed_logs), run_dir / "backup")
    logs = [root / f"worker_{index}.log" for index in range(2)]
    return run_dir, [log.read_text() for log in killed_logs], worker_outputs(run_dir, flags, logs)


@pytest.mark.integration
def test_a_killed_multi_worker_run_resumes_from_its_backup_and_finishes(multi_worker_run):
    run_dir, killed, resumed = multi_worker_run
    for before, after in zip(killed, resumed, strict=True):
        # Killed within moments of epoch 1's backup: epoch 2 may have begun, not finished.
        assert "Epoch 1/2" in before and "weights after training" not in before
        assert "Epoch 2/2" in after and "Epoch 1/2" not in after  # resumed after epoch 1
        assert "ran out of data" not in before + after
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and len(metrics["history"]["val_accuracy"]) == 2
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    # The chief's folder is the run's; worker 1's temporary folder is gone.
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["imdb", "imdb.keras"]
    assert not list(run_dir.glob("workertemp_*")) and not (run_dir / "backup").exists()


@pytest.mark.integration
@pytest.mark.parametrize("run", ["complete", "resumed"])
def test_both_workers_end_with_the_same_weights(run, request):
    if run == "complete":
        _, outputs = request.getfixturevalue("multi_worker_complete")
    else:
        _, _, outputs = request.getfixturevalue("multi_worker_run")
    digests = [
        re.search(r"worker (\d): weights after training: sha256 ([0-9a-f]{64})", output).groups()
        for output in outputs
    ]
    assert [task for task, _ in digests] == ["0", "1"]
    assert digests[0][1] == digests[1][1]


@pytest.mark.integration
def test_the_chiefs_export_serves(multi_worker_complete, tmp_path):
    run_dir, _ = multi_worker_complete
    code = """
import tensorflow as tf
loaded = tf.saved_model.load(request["model"])  # a reference: it owns the variables
out = loaded.serve(tf.constant(["great film"]))
response = {"shape": out.shape.as_list(), "values": out.numpy().tolist()}
"""
    served = run_without_rnn_keras(code, {"model": str(run_dir / "export" / "imdb")}, tmp_path)
    assert served["shape"] == [1] and 0.0 <= served["values"][0] <= 1.0


# --- keras-team/keras#20585: the reason for rnn_keras.distribute.trainer --------------------

KERAS_20585 = """
import json
import sys

import keras
import numpy as np
import tensorflow as tf

from rnn_keras import distribute

strategy = distribute.strategy("multi-worker")
with strategy.scope():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
rng = np.random.default_rng(0)
ids, labels = rng.integers(1, 9, (32, 5)).astype("int32"), rng.integers(0, 2, (32, 1))
data = tf.data.Dataset.from_tensor_slices((ids, labels.astype("float32"))).batch(8)
response = {}
for name, fitted in (("keras", model), ("trainer", distribute.trainer(model))):
    try:
        response[name] = fitted.fit(data, epochs=1, verbose=0).history["loss"]
    except Exception as error:
        response[name] = f"{type(error).__name__}: {error}"[:300]
print("@@" + json.dumps(response), flush=True)
"""


@pytest.mark.integration
def test_keras_fit_under_two_workers_still_fails_on_a_nested_batch(tmp_path):
    """Canary for keras-team/keras#20585: Keras's own `fit` under a MultiWorkerMirroredStrategy
    of two workers fails on (ids, labels) batches of numbers (no strings involved), which
    `rnn_keras.distribute.trainer` trains. When this test fails because Keras's `fit` works,
    Keras has fixed the issue: remove the trainer and call `fit` directly."""
    workers = [f"localhost:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", KERAS_20585],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=tmp_path,
                env=env,
            )
        )
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    responses = [json.loads(out[out.rindex("@@") + 2 :].splitlines()[0]) for out in outputs]
    for response in responses:
        assert isinstance(response["keras"], str), "Keras's fit works: keras#20585 is fixed"
        assert "PerReplica" in response["keras"] and "unsupported type" in response["keras"]
        assert np.isfinite(response["trainer"][0])
    assert responses[0]["trainer"] == responses[1]["trainer"]  # one model, trained together
