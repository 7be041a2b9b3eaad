"""Training runs that survive being killed: a resumable `fit` whose record covers every
epoch and the whole training time across restarts (early stopping included), steps that
run once per run folder, atomic writes, and the figures that make a run comparable.

    history, seconds = rnn_keras.training.resumable_fit(
        model, train_ds, val_ds, run_dir="runs/mine", epochs=10, patience=2
    )

Kill the process at any point and call it again with the same `run_dir`: training
resumes from the last finished epoch (`keras.callbacks.BackupAndRestore`) and the
returned History and seconds are those of the whole run.
"""

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import keras

from rnn_keras.utils.optional import import_module

__all__ = [
    "atomic_replace",
    "history_dict",
    "machine_info",
    "plot_history",
    "resumable_fit",
    "saved_model_step",
    "saved_step",
    "write_json",
]


def resumable_fit(
    model,
    data,
    validation_data,
    *,
    run_dir,
    epochs,
    patience,
    monitor="val_loss",
    mode="min",
    phase="",
    step_logs=(),
    callbacks=(),
    verbose="auto",
    time_budget=None,
    tensorboard="auto",
    **tensorboard_kwargs,
):
    """`model.fit` that survives being killed: returns (History, seconds).

    Callbacks: `BackupAndRestore` in `run_dir/backup<phase>` (a killed run
    resumes where it stopped), `EarlyStopping` on `monitor` with `patience`,
    restoring the best weights, `TimeBudget(time_budget)` when given (the seconds of
    training the whole run may take, a killed attempt's included), and TensorBoard in
    `run_dir/tensorboard<phase>` (`tensorboard_kwargs` are its arguments) when
    `tensorboard` is True, or "auto" and the tensorboard package (the
    `[tensorboard]` extra) is installed; `callbacks` come first. At most
    `epochs` epochs; `data` is not shuffled by `fit` (shuffle it in the pipeline).

    A resumed fit accounts for the whole run: every finished epoch's logs (and
    the per-step values of the logs named in `step_logs`, as
    `History.step_logs[name]`) and the training seconds at its end go to
    `run_dir/history<phase>.json` as training goes, so the History holds every
    epoch of the run and the seconds are the whole run's (the killed attempt's
    unfinished epoch is not counted); early stopping carries on with the best
    value, patience count and best weights of the epochs before the restart.

    The model trains through `rnn_keras.distribute.trainer(model)` (itself,
    except under several workers); under a multi-worker strategy each worker
    prints the digest of its weights after training (the same on every worker).
    """
    from rnn_keras.training.distribute import multi_worker, trainer, weights_digest

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
    )
    record = _EpochRecord(run_dir / f"history{phase}.json", early_stopping, step_logs)
    budget = [] if time_budget is None else [TimeBudget(time_budget, lambda: record.seconds_before)]
    callbacks = [
        *callbacks,
        *budget,
        early_stopping,
        record.callback,  # after early stopping (its best epoch), before the backup
        keras.callbacks.BackupAndRestore(str(run_dir / f"backup{phase}")),
    ]
    if _log_to_tensorboard(tensorboard):
        log_dir = str(run_dir / f"tensorboard{phase}")
        callbacks.append(keras.callbacks.TensorBoard(log_dir, **tensorboard_kwargs))
    started = time.time()
    history = trainer(model).fit(
        data,
        validation_data=validation_data,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=verbose,
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


def _log_to_tensorboard(tensorboard):
    """Whether `resumable_fit` logs to TensorBoard: True (the package is required), False,
    or "auto" (when it is installed)."""
    if tensorboard not in ("auto", True, False):
        raise ValueError(
            f"resumable_fit: `tensorboard` must be 'auto', True or False. Received: {tensorboard!r}"
        )
    if tensorboard is True:
        import_module("tensorboard", feature="resumable_fit(tensorboard=True)")
    if tensorboard == "auto":
        import importlib.util

        return importlib.util.find_spec("tensorboard") is not None
    return tensorboard


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


class TimeBudget(keras.callbacks.Callback):
    """Stops `fit` before its training time passes `seconds`: after an epoch, when one
    more epoch as long as the longest so far would not fit. `spent`: seconds a resumed
    run already trained (they count against the budget), or a function that returns them."""

    def __init__(self, seconds, spent=0.0):
        super().__init__()
        self.seconds = seconds
        self.spent = spent
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self._started = time.time()
        self._longest = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self._longest = max(self._longest, time.time() - self._epoch_started)
        spent = self.spent() if callable(self.spent) else self.spent
        elapsed = spent + time.time() - self._started
        if elapsed + self._longest > self.seconds:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            print(
                f"TimeBudget: stopping after epoch {epoch + 1}: {elapsed / 60:.1f} min trained, "
                f"another epoch would pass the budget of {self.seconds / 60:.1f} min"
            )


def saved_step(run_dir, name, load, compute, save):
    """Runs a step of a training run once per run folder; a resumed run reloads it.

    If `run_dir/<name>.json` (the step's record) exists, calls `load()` and
    returns the saved record; else `record = compute()`, `save()`, writes the
    record and returns it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record_path = run_dir / f"{name}.json"
    if record_path.exists():
        load()
        print(f"{name}: resumed from {run_dir}")
        return json.loads(record_path.read_text())
    record = compute()
    save()
    write_json(record_path, record)
    return record


def saved_model_step(run_dir, name, compute, model_file=None):
    """`saved_step` for a step that also makes a model: `compute() -> (model, record)`.

    The record is `run_dir/<name>.json`; with `model_file` (a `.keras` name in
    `run_dir`), the model is saved there without optimizer state and a resumed
    run loads it (uncompiled) instead of computing again. Returns `(model, record)`,
    the model None in a resumed run without `model_file`.
    """
    import keras

    from rnn_keras.export.saved_model import save_model

    if model_file is not None and not str(model_file).endswith(".keras"):
        raise ValueError(
            f"saved_model_step: `model_file` must end in .keras. Received: {model_file!r}"
        )
    path = Path(run_dir) / model_file if model_file else None
    done = {}

    def run():
        done["model"], record = compute()
        return record

    def save():
        if path is not None:
            save_model(done["model"], path)

    def load():
        if path is not None:
            done["model"] = keras.saving.load_model(path, compile=False)

    record = saved_step(run_dir, name, load, run, save)
    return done.get("model"), record


def history_dict(history):
    """A Keras `History`'s per-epoch values as plain floats (for JSON)."""
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def machine_info():
    """Facts that make a measured figure comparable: CPU, cores, library versions."""
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
    matplotlib = import_module("matplotlib", feature="plot_history")
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
