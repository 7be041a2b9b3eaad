"""What the experiments share: run folders, strategies, training, machine facts, plots, exports."""

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from strategies import (
    STRATEGIES,
    barrier,
    is_chief,
    multi_worker,
    strategy,
    trainer,
    weights_digest,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER_FOLDER = "workertemp_"  # + task id: a non-chief worker's folder in the run folder


def quiet_tensorflow():
    """Silence TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def new_run_dir(out, experiment):
    """The run folder: `out` if given, else `runs/<experiment>-<UTC timestamp>`."""
    if out is None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = REPO_ROOT / "runs" / f"{experiment}-{stamp}"
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def start_run(args, experiment):
    """(run folder, export folder) for a training run; writes the run's config.json.

    Exports go to `args.export_dir`, else `saved_models/` (the run folder's
    `export/` with `--quick`, so smoke runs never replace the committed models).

    Makes the run's strategy first (`strategy(args)`). Under a multi-worker
    strategy every worker is given the same `--out`, and TensorFlow's saving
    pattern applies: the chief's folder is the run folder and receives the
    exports; every other worker works in `<out>/workertemp_<task id>` (its
    exports included), which `report_run` deletes. That folder starts as a copy
    of the chief's, so a resumed run resumes every worker from the chief's
    checkpoints and records.
    """
    run_strategy = strategy(args)
    chief = is_chief(run_strategy)
    if multi_worker(run_strategy) and args.out is None:
        raise ValueError(
            "--strategy multi-worker: every worker must be given the same run folder. "
            "Expected: --out DIR. Received: no --out"
        )
    run_dir = new_run_dir(args.out, experiment)
    if multi_worker(run_strategy):
        if not chief:
            worker_dir = run_dir / f"{WORKER_FOLDER}{run_strategy.cluster_resolver.task_id}"
            _remove(worker_dir)
            ignore = shutil.ignore_patterns(f"{WORKER_FOLDER}*", "tensorboard*", "export", "*.tmp")
            shutil.copytree(run_dir, worker_dir, ignore=ignore)
            run_dir = worker_dir
        barrier(run_strategy)  # the chief writes again only once every worker has copied
    default_export = run_dir / "export" if args.quick or not chief else REPO_ROOT / "saved_models"
    export_dir = Path((getattr(args, "export_dir", None) if chief else None) or default_export)
    write_json(run_dir / "config.json", {"command": sys.argv, "args": dict(vars(args))})
    return run_dir, export_dir


def history_dict(history):
    """A Keras `History`'s per-epoch values as plain floats (for JSON)."""
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def machine_info():
    """Facts that make a measured figure comparable: CPU, cores, library versions."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "platform": platform.platform(),
    }


def write_json(path, data):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def plot_history(history, path, metrics, title):
    """One learning-curve PNG: each metric for train and validation, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + metric)
            if values:
                axis.plot(range(1, len(values) + 1), values, marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def atomic_replace(write, target):
    """Call `write(tmp_path)` beside `target`, then move the result into place.

    An interrupted write leaves the previous `target` untouched and at most a
    `.tmp-*` sibling. A file is swapped in one atomic rename. A directory cannot
    be, so an existing one is first renamed aside, the new one renamed in, and
    the old one deleted: `target` is never a partial export, only briefly absent.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The suffix stays last: Keras picks the format of a saved model by it.
    tmp = target.with_name(f"{target.stem}.tmp-{os.getpid()}{target.suffix}")
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    for leftover in (tmp, old):
        _remove(leftover)
    try:
        write(tmp)
        if target.is_dir() and not target.is_symlink():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        _remove(tmp)
        _remove(old)
    return target


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def fit(
    model,
    args,
    run_dir,
    train_ds,
    val_ds,
    monitor="val_loss",
    mode="min",
    phase="",
    step_logs=(),
    **kw,
):
    """`model.fit` as every experiment trains: returns (History, seconds).

    Callbacks: `BackupAndRestore` in `run_dir/backup<phase>` (a killed run
    resumes where it stopped), `EarlyStopping` on `monitor` with
    `args.patience`, restoring the best weights, and TensorBoard in
    `run_dir/tensorboard<phase>` (other `kw` are its arguments); `kw["callbacks"]`
    come first. At most `kw["epochs"]` (default `args.epochs`) epochs; progress
    bars, one line per epoch with `--quick`.

    A resumed fit accounts for the whole run: every finished epoch's logs (and
    the per-step values of the logs named in `step_logs`, as
    `History.step_logs[name]`) and the training seconds at its end go to
    `run_dir/history<phase>.json` as training goes, so the History holds every
    epoch of the run and the seconds are the whole run's (the killed attempt's
    unfinished epoch is not counted); early stopping carries on with the best
    value, patience count and best weights of the epochs before the restart.

    Under a strategy of several replicas the model trains through
    `trainer(model)`; under a multi-worker strategy each worker prints the
    digest of its weights after training (the same on every worker).
    """
    import keras

    epochs = kw.pop("epochs", args.epochs)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, patience=args.patience, restore_best_weights=True
    )
    record = _EpochRecord(run_dir / f"history{phase}.json", early_stopping, step_logs)
    callbacks = [
        *kw.pop("callbacks", []),
        early_stopping,
        record.callback,  # after early stopping (its best epoch), before the backup
        keras.callbacks.BackupAndRestore(str(run_dir / f"backup{phase}")),
        keras.callbacks.TensorBoard(str(run_dir / f"tensorboard{phase}"), **kw),
    ]
    started = time.time()
    history = trainer(model).fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=2 if args.quick else "auto",
    )
    history.history = record.history
    history.epoch = list(range(len(record.seconds)))
    history.step_logs = {name: sum(record.steps[name], []) for name in step_logs}
    if multi_worker(model.distribute_strategy):
        resolver = model.distribute_strategy.cluster_resolver
        print(
            f"{resolver.task_type} {resolver.task_id}: weights after training: "
            f"sha256 {weights_digest(model)}"
        )
    return history, record.seconds_before + time.time() - started


class _EpochRecord:
    """The per-epoch record of a fit that a BackupAndRestore restart continues.

    `callback` writes every finished epoch's logs, the per-step values of the
    logs named in `step_logs` and the training seconds at the epoch's end
    (cumulative over restarts) to `path`. On a restarted fit's first
    epoch it drops the record's epochs from there on (a kill may have come
    after the record and before the backup), replays the earlier epochs into
    `early_stopping` and gives it the best weights saved beside `path`.
    """

    def __init__(self, path, early_stopping, step_logs=()):
        import keras

        self.path = Path(path)
        self.best_weights_path = self.path.with_name(self.path.stem + ".best_weights.npz")
        self.early_stopping, self.step_logs = early_stopping, tuple(step_logs)
        self.history, self.steps, self.seconds, self.seconds_before = {}, {}, [], 0.0
        self.callback = keras.callbacks.LambdaCallback(
            on_train_begin=self._begin,
            on_epoch_begin=self._epoch_begin,
            on_epoch_end=self._epoch_end,
            on_train_end=lambda logs: _remove(self.best_weights_path),
            # Per-step logs only where asked: reading them waits for every step.
            **({"on_train_batch_end": self._step_end} if self.step_logs else {}),
        )

    def _begin(self, logs):
        self.started, self.first_epoch = time.time(), None
        saved = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.history, self.seconds = saved.get("history", {}), saved.get("seconds", [])
        self.steps = saved.get("steps", {name: [] for name in self.step_logs})
        self.seconds_before = self.seconds[-1] if self.seconds else 0.0

    def _epoch_begin(self, epoch, logs):
        if self.first_epoch is not None:
            return
        import numpy as np

        self.first_epoch = epoch
        if len(self.seconds) < epoch:
            raise RuntimeError(
                f"{self.path} records {len(self.seconds)} epochs, but the fit resumes at epoch "
                f"{epoch + 1}: the record of the run before the restart is missing. Expected: "
                "a record of every epoch before it (start a new run folder)"
            )
        self.history = {key: values[:epoch] for key, values in self.history.items()}
        self.steps = {name: epochs[:epoch] + [[]] for name, epochs in self.steps.items()}
        self.seconds = self.seconds[:epoch]
        self.seconds_before = self.seconds[-1] if epoch else 0.0
        stopping = self.early_stopping
        for past in range(epoch):
            stopping.on_epoch_end(past, {key: v[past] for key, v in self.history.items()})
        if epoch and stopping.best_weights is not None:
            with np.load(self.best_weights_path) as saved:
                stopping.best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]

    def _step_end(self, batch, logs):
        for name in self.step_logs:
            self.steps[name][-1].append(float(logs[name]))

    def _epoch_end(self, epoch, logs):
        import numpy as np

        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.seconds.append(self.seconds_before + time.time() - self.started)
        if self.early_stopping.best_epoch == epoch:
            tmp = self.best_weights_path.with_name(self.best_weights_path.name + ".tmp.npz")
            np.savez(tmp, *self.early_stopping.best_weights)
            os.replace(tmp, self.best_weights_path)
        write_json(
            self.path, {"history": self.history, "steps": self.steps, "seconds": self.seconds}
        )
        for epochs in self.steps.values():
            epochs.append([])  # the next epoch's


def saved_step(run_dir, name, load, compute, save):
    """Runs a step of a training run once per run folder; a resumed run reloads it.

    If `run_dir/<name>.json` (the step's record) exists, calls `load()` and
    returns the saved record; else `record = compute()`, `save()`, writes the
    record and returns it.
    """
    record_path = run_dir / f"{name}.json"
    if record_path.exists():
        load()
        print(f"{name}: resumed from {run_dir}")
        return json.loads(record_path.read_text())
    record = compute()
    save()
    write_json(record_path, record)
    return record


def add_flags(parser, defaults, helps=None, choices=None):
    """One `--flag-name` per key of `defaults`, typed by its default value.

    A bool default gives `--flag/--no-flag`; a None default takes an int.
    `helps` and `choices` map keys to a flag's help text and allowed values.
    """
    helps, choices = helps or {}, choices or {}
    for key, default in defaults.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=helps.get(key)
            )
            continue
        kind = int if default is None else type(default)
        parser.add_argument(
            flag, type=kind, default=default, choices=choices.get(key), help=helps.get(key)
        )


def dispatch(argv, commands, default):
    """Runs `commands[argv[0]](argv[1:])` for a known command word, else `default(argv)`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    return default(argv)


def add_run_flags(parser, experiment, exports, data_help=None, strategy=False):
    """`--data-dir`, `--out`, `--export-dir`, `--quick` and, with `strategy`, `--strategy`."""
    add = parser.add_argument
    if strategy:
        add(
            "--strategy",
            choices=STRATEGIES,
            default="default",
            help="tf.distribute strategy. default: one device; mirrored: MirroredStrategy over "
            "every local device; multi-worker: MultiWorkerMirroredStrategy, the cluster and this "
            "process's task from $TF_CONFIG (start one process per worker, each with the same "
            "--out; the chief exports). --batch-size is the global batch, split across the "
            "replicas; --lr is used as given, not scaled with the number of replicas",
        )
    add(
        "--data-dir",
        help=data_help or "tensorflow-datasets data dir (default: $TFDS_DATA_DIR or tfds's own)",
    )
    add("--out", help=f"run folder (default: runs/{experiment}-<UTC time>)")
    if exports:
        add(
            "--export-dir",
            help=f"where {exports} go (default: saved_models/, or the run folder with --quick)",
        )
    add("--quick", action="store_true", help="a tiny, minutes-long run of the same code path")


def parse_args(parser, argv, quick):
    """`parser.parse_args(argv)`, with `quick`'s values over the defaults under `--quick`.

    Flags given on the command line win over both: `--quick --epochs 3` trains 3 epochs.
    """
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)
    return args


def report_run(run_dir, *exports):
    """The closing lines of a training run: where its record and its exports are.

    A multi-worker run's non-chief worker deletes its temporary folder instead.
    """
    if run_dir.name.startswith(WORKER_FOLDER):
        shutil.rmtree(run_dir)
        print(f"run folder: {run_dir.parent} (this worker's temporary folder is deleted)")
        return
    print(f"run folder: {run_dir}")
    print("exported: " + ", ".join(str(path) for path in exports))
