"""What the experiment scripts share: run folders and command-line flags."""

import argparse
import datetime
import os
import sys
from pathlib import Path

# Before TensorFlow loads: no C++ start-up chatter (CUDA probing on a CPU machine).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rnn_keras.datasets.imdb import MOVIE_MAP  # noqa: E402
from rnn_keras.training import distribute  # noqa: E402
from rnn_keras.training.fit import write_json  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def strategy(args):
    """The run's tf.distribute strategy, from `--strategy` (one device without the flag)."""
    return distribute.strategy(getattr(args, "strategy", "default"))


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

    Makes the run's strategy first (`args.strategy`). Under a multi-worker
    strategy every worker is given the same `--out`; the chief's folder is the
    run folder and receives the exports, every other worker works in its own
    (`rnn_keras.training.distribute.worker_run_dir`), which `report_run` deletes.
    """
    run_strategy = strategy(args)
    chief = distribute.is_chief(run_strategy)
    if distribute.multi_worker(run_strategy) and args.out is None:
        raise ValueError(
            "--strategy multi-worker: every worker must be given the same run folder. "
            "Expected: --out DIR. Received: no --out"
        )
    run_dir = distribute.worker_run_dir(run_strategy, new_run_dir(args.out, experiment))
    default_export = run_dir / "export" if args.quick or not chief else REPO_ROOT / "saved_models"
    export_dir = Path((getattr(args, "export_dir", None) if chief else None) or default_export)
    write_json(run_dir / "config.json", {"command": sys.argv, "args": dict(vars(args))})
    return run_dir, export_dir


def fit(model, args, run_dir, train_ds, val_ds, monitor="val_loss", mode="min", phase="", **kw):
    """`rnn_keras.training.resumable_fit` with the run's flags: at most `args.epochs`
    epochs (or `kw["epochs"]`), `args.patience`, one line per epoch with `--quick`."""
    from rnn_keras.training.fit import resumable_fit

    kw.setdefault("epochs", args.epochs)
    kw.setdefault("patience", args.patience)
    verbose = 2 if args.quick else "auto"
    return resumable_fit(
        model,
        train_ds,
        val_ds,
        run_dir=run_dir,
        monitor=monitor,
        mode=mode,
        phase=phase,
        verbose=verbose,
        **kw,
    )


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
            choices=distribute.STRATEGIES,
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


def export_task(task, export_dir, name, **export_kwargs):
    """`task.export(..., **export_kwargs)` to `export_dir/<name>` (the serving SavedModel) and
    the task without optimizer state to `export_dir/<name>.keras`, each swapped in atomically;
    returns both paths."""
    from rnn_keras.export import save_model
    from rnn_keras.training.fit import atomic_replace

    paths = (Path(export_dir) / name, Path(export_dir) / f"{name}.keras")
    atomic_replace(lambda tmp: task.export(tmp, **export_kwargs), paths[0])
    atomic_replace(lambda tmp: save_model(task, tmp), paths[1])
    return paths


def write_metrics(run_dir, metrics, history, plotted, title):
    """`run_dir/metrics.json` (`metrics`, with the per-epoch history and the machine) and
    `run_dir/learning_curve.png` (the `plotted` metrics per epoch); returns the metrics."""
    from rnn_keras.training.fit import history_dict, machine_info, plot_history

    metrics = {**metrics, "history": history_dict(history), "machine": machine_info()}
    write_json(Path(run_dir) / "metrics.json", metrics)
    plot_history(metrics["history"], Path(run_dir) / "learning_curve.png", plotted, title)
    return metrics


def report_run(run_dir, *exports):
    """The closing lines of a training run: where its record and its exports are.

    A multi-worker run's non-chief worker deletes its temporary folder instead.
    """
    if distribute.remove_worker_run_dir(run_dir):
        print(f"run folder: {run_dir.parent} (this worker's temporary folder is deleted)")
        return
    print(f"run folder: {run_dir}")
    print("exported: " + ", ".join(str(path) for path in exports))


def add_validation_flags(parser):
    """`--validation`, `--movie-map` and `--skip-test`, for the IMDB experiments."""
    parser.add_argument(
        "--validation",
        choices=["movie", "review"],
        default="movie",
        help="hold out --val-fraction of the training movies (all their reviews), or of the "
        "reviews (movies then on both sides: validation overstates accuracy on new movies)",
    )
    parser.add_argument(
        "--movie-map",
        default=str(MOVIE_MAP),
        help="review -> movie map: the shipped compact map, or imdb_reviews_movies.csv "
        "(without one, validation falls back to --validation review, with a warning)",
    )
    parser.add_argument(
        "--skip-test",
        action="store_true",
        help="do not read the test split (for choosing hyperparameters on validation)",
    )


def imdb_train_split(args):
    """(train, validation, how): the IMDB training reviews (`--train-examples` of them), split
    by `rnn_keras.datasets.imdb.validation_split` as `add_validation_flags`' flags say."""
    from rnn_keras.datasets.imdb import load_split, validation_split

    texts, labels = load_split(args.data_dir, "train", args.train_examples)
    return validation_split(
        texts, labels, args.val_fraction, args.seed, args.validation, args.movie_map
    )
