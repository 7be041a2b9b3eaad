"""The guide's challenges, measured on the adding problem (Hochreiter & Schmidhuber 1997).

    python experiments/long_range.py                          # the default run (under 30 min)
    python experiments/long_range.py --quick --out /tmp/run   # the whole pipeline in seconds

Parts: SimpleRNN, LSTM and GRU at each length; the gradient flow ||dL/dh_t||; clipping
under a recurrent spectral radius > 1; LSTM initialisation. The run folder gets
config.json, metrics.json and three PNGs; docs/long_range.md explains each part.
"""

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import keras  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

from rnn_keras import training  # noqa: E402
from rnn_keras.datasets import adding_problem, adding_problem_dataset  # noqa: E402
from rnn_keras.evaluation.diagnostics import (  # noqa: E402
    fit_and_record,
    gradient_through_time,
    last_state_regressor,
    spectral_radius,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CELLS = ("simple", "lstm", "gru")
SOLVED_MSE = 0.01
INITIALIZERS = ("orthogonal", "glorot_uniform")  # the LSTM's recurrent kernel, compared
# The default run: at most ~28 minutes on the project's 2-core CPU (docs/long_range.md: profiling).
# fmt: off
DEFAULTS = {
    "cells": CELLS, "lengths": (50, 100, 200, 400), "units": 32, "batch_size": 32, "lr": 5e-3,
    "clipnorm": 1.0, "steps": 6000, "eval_every": 200, "test_size": 2000, "seed": 1337,
    "flow_batch": 128, "flow_points": 100,  # T = 400: every 4th step t
    "clip_gain": 1.8, "clip_length": 50, "clip_steps": 1000, "clip_sgd_lr": 0.05,
}
QUICK = {
    "lengths": (10, 20), "units": 8, "steps": 20, "batch_size": 16, "eval_every": 10,
    "flow_batch": 16, "clip_length": 10, "clip_steps": 20,
}
# fmt: on


def constant_mse(targets, constant=1.0):  # 1.0 is the target's mean
    return float(((targets - constant) ** 2).mean())


def train(model, args, test, clipnorm, steps=None, sgd_lr=None, stop=False):
    """Fit `steps` (else `args.steps`; fewer if `stop` and solved) with Adam at `args.lr`, or SGD
    (momentum 0.9) at `sgd_lr`, `global_clipnorm=clipnorm`. Gradient norms are before clipping."""
    if sgd_lr is None:
        optimizer = keras.optimizers.Adam(args.lr, global_clipnorm=clipnorm)
    else:
        optimizer = keras.optimizers.SGD(sgd_lr, momentum=0.9, global_clipnorm=clipnorm)
    data = adding_problem_dataset(model.input_shape[1], args.batch_size, args.seed)
    options = {"eval_every": args.eval_every, "solved_mse": SOLVED_MSE, "stop_when_solved": stop}
    return fit_and_record(
        model, data, test, optimizer=optimizer, steps=steps or args.steps, **options
    )


def main_comparison(args, tests):
    """Every cell at every length; the gradient flow at the longest, before and after training."""
    flow = {"length": max(args.lengths), "batch": args.flow_batch, "cells": {}}
    results = []
    for length in args.lengths:
        for cell in args.cells:
            model, recurrent, head = last_state_regressor(cell, length, args.units, args.seed)
            flow_data = [array[: args.flow_batch] for array in tests[length]]
            if length == flow["length"]:
                initial = gradient_through_time(recurrent, head, *flow_data, args.flow_points)
            run = train(model, args, tests[length], args.clipnorm, stop=args.stop_when_solved)
            if length == flow["length"]:
                trained = gradient_through_time(recurrent, head, *flow_data, args.flow_points)
                flow["distance"] = initial[0]
                flow["cells"][cell] = {"initial": initial[1], "trained": trained[1]}
            del run["gradient_norms"]
            results.append({"cell": cell, "length": length, **run})
            print(_summary(f"{cell} T={length}", run), flush=True)
    return results, flow


def clipping_experiment(args):
    """SimpleRNN, recurrent spectral radius `clip_gain`: Adam and SGD, each +- clipping. Adam
    divides steps by a running gradient scale; SGD does not (clipping's classic case)."""
    length, steps = args.clip_length, args.clip_steps
    report = {"cell": "simple", "length": length, "steps": steps, "gain": args.clip_gain}
    test, runs = adding_problem(length, args.test_size, args.seed), []
    for name, rate in (("adam", args.lr), ("sgd", args.clip_sgd_lr)):
        for clipnorm in (args.clipnorm, None):
            # Seeded here: an unseeded initializer draws its seed before last_state_regressor seeds.
            initializer = keras.initializers.Orthogonal(gain=args.clip_gain, seed=args.seed)
            model, recurrent, _ = last_state_regressor(
                "simple", length, args.units, args.seed, recurrent_initializer=initializer
            )
            report["spectral_radius"] = spectral_radius(recurrent.cell.recurrent_kernel)
            run = train(model, args, test, clipnorm, steps, rate if name == "sgd" else None)
            runs.append({"optimizer": name, "lr": rate, "clipnorm": clipnorm, **run})
            print(_summary(f"clipping {name} clipnorm={clipnorm} T={length}", run), flush=True)
    return {**report, "runs": runs}


def initialization_experiment(args, results, tests):
    """LSTM forget-gate bias 1 or 0 x orthogonal or glorot_uniform recurrent kernel, at the
    longest length the main LSTM (the defaults: 1, orthogonal) solved, else the shortest."""
    lstm = {r["length"]: r for r in results if r["cell"] == "lstm"}
    solved = [length for length, r in lstm.items() if r["solved_at_step"] is not None]
    length = max(solved) if solved else min(args.lengths)
    reason = "the longest the LSTM solved" if solved else "no LSTM run solved: the shortest"
    variants = []
    for forget_bias, initializer in itertools.product((True, False), INITIALIZERS):
        reused = forget_bias and initializer == "orthogonal" and length in lstm
        if reused:
            run = lstm[length]
        else:
            kwargs = {"unit_forget_bias": forget_bias, "recurrent_initializer": initializer}
            model, _, _ = last_state_regressor("lstm", length, args.units, args.seed, **kwargs)
            run = train(model, args, tests[length], args.clipnorm, stop=True)
            print(_summary(f"LSTM forget bias {int(forget_bias)} {initializer} T={length}", run))
        variants.append(
            {"unit_forget_bias": forget_bias, "recurrent_initializer": initializer}
            | {"length": length, "length_reason": reason, "from_main_comparison": reused}
            | {key: run[key] for key in ("test_mse", "solved_at_step", "steps", "seconds")}
        )
    return variants


def _text(value, spec=".3g"):
    return "n/a" if value is None else format(value, spec)  # None: diverged, or not solved


def _summary(label, run):
    mse, solved = _text(run["test_mse"], ".4f"), _text(run["solved_at_step"], "d")
    return f"{label:<40} test MSE {mse}  solved at {solved}  {run['seconds']:.0f} s"


def _positive(values):
    return [v if v is not None and v > 0 else math.nan for v in values]  # log axes: a gap


def write_plots(metrics, run_dir):
    """test_mse.png (a panel per length), gradient_flow.png and clipping.png."""
    results, flow, clipping = metrics["results"], metrics["gradient_flow"], metrics["clipping"]
    lengths = sorted({r["length"] for r in results})
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.6), squeeze=False)
    for axis, length in zip(axes[0], lengths, strict=True):
        for r in (r for r in results if r["length"] == length):
            axis.plot(r["curve"]["step"], _positive(r["curve"]["test_mse"]), ".-", label=r["cell"])
        axis.axhline(metrics["baseline_mse"], color="grey", linestyle="--", label="predict 1.0")
        axis.axhline(SOLVED_MSE, color="black", linestyle=":", label="solved (0.01)")
        axis.set(yscale="log", title=f"T = {length}", xlabel="training step", ylabel="test MSE")
    axis.legend()
    figures = [(fig, "test_mse.png")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for axis, phase in zip(axes, ("initial", "trained"), strict=True):
        for cell, norms in flow["cells"].items():
            axis.plot(flow["distance"], _positive(norms[phase]), label=cell)
        title = "at initialisation" if phase == "initial" else "after training"
        axis.set(yscale="log", title=title, xlabel=f"distance T - t (T = {flow['length']})")
        axis.set_ylabel("mean ||dL/dh_t|| (0 not drawn)")
    axes[1].legend()
    figures.append((fig, "gradient_flow.png"))
    optimizers = list(dict.fromkeys(run["optimizer"] for run in clipping["runs"]))
    fig, axes = plt.subplots(len(optimizers), 2, figsize=(11, 3.6 * len(optimizers)), squeeze=False)
    for (mse_axis, norm_axis), optimizer in zip(axes, optimizers, strict=True):
        for run in (run for run in clipping["runs"] if run["optimizer"] == optimizer):
            clip = f"global_clipnorm {run['clipnorm']:g}" if run["clipnorm"] else "no clipping"
            label = f"{clip} (max norm {_text(run['max_gradient_norm'])})"
            curve = _positive(run["curve"]["test_mse"])
            mse_axis.plot(run["curve"]["step"], curve, ".-", label=label)
            steps = range(1, len(run["gradient_norms"]) + 1)
            norm_axis.plot(steps, _positive(run["gradient_norms"]), label=label, alpha=0.7)
        mse_axis.set(title=f"{optimizer}, lr {run['lr']:g}", ylabel="test MSE")
        norm_axis.set(title=optimizer, ylabel="gradient norm before clipping")
        norm_axis.axhline(clipping["runs"][0]["clipnorm"], color="black", linestyle=":")
        for axis in (mse_axis, norm_axis):
            axis.set(yscale="log", xlabel="training step")
            axis.legend(fontsize="small")
    radius = clipping["spectral_radius"]
    fig.suptitle(f"SimpleRNN, T = {clipping['length']}, recurrent spectral radius {radius:.2f}")
    figures.append((fig, "clipping.png"))
    for fig, name in figures:
        for axis in fig.axes:
            axis.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run_dir / name, dpi=110)
        plt.close(fig)


def _checked(kind, ok, expected, as_list=False):
    """An argparse type: `kind(text)` that passes `ok`; with `as_list`, a comma list of distinct."""

    def parse(text):
        try:
            values = [kind(item.strip()) for item in (text.split(",") if as_list else [text])]
        except ValueError:
            values = []
        if not values or not all(map(ok, values)) or len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"expected {expected}; received {text!r}")
        return tuple(values) if as_list else values[0]

    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])

    def option(flag, kind, ok, expected, help_text, as_list=False):
        key = flag[2:].replace("-", "_")
        shown = ",".join(map(str, DEFAULTS[key])) if as_list else DEFAULTS[key]
        quick = f"; --quick: {QUICK[key]}" if key in QUICK else ""
        text = f"{help_text} (default: {shown}{quick})"
        parser.add_argument(flag, type=_checked(kind, ok, expected, as_list), help=text)

    def count(flag, help_text, minimum=1):
        option(flag, int, lambda n: n >= minimum, f"an integer >= {minimum}", help_text)

    def rate(flag, help_text):
        option(flag, float, lambda x: x > 0, "a number > 0", help_text)

    option("--cells", str, CELLS.__contains__, "distinct cells: simple, lstm, gru", "cells", True)
    option("--lengths", int, lambda n: n >= 2, "distinct integers >= 2", "lengths T", True)
    count("--units", "units of every recurrent layer")
    count("--steps", "training steps per run, at most")
    count("--batch-size", "sequences per training step")
    rate("--lr", "Adam learning rate")
    rate("--clipnorm", "global_clipnorm")
    count("--eval-every", "steps between test-MSE evaluations")
    count("--test-size", "test sequences per length")
    rate("--clip-gain", "clipping: gain of the orthogonal recurrent kernel")
    count("--clip-length", "clipping: sequence length", minimum=2)
    count("--clip-steps", "clipping: training steps per run")
    option("--seed", int, lambda n: True, "an integer", "data and weight seed")
    stop_help, boolean = "default on: a main run ends once solved", argparse.BooleanOptionalAction
    parser.add_argument("--stop-when-solved", action=boolean, default=True, help=stop_help)
    parser.add_argument("--out", help="run folder (default: runs/long_range-<UTC time>)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, the whole pipeline")
    args = parser.parse_args(argv)
    for key, default in DEFAULTS.items():  # flow_* and clip_sgd_lr have no flag
        if getattr(args, key, None) is None:
            setattr(args, key, QUICK[key] if args.quick and key in QUICK else default)
    for flag, value in (("--steps", args.steps), ("--clip-steps", args.clip_steps)):
        if value % args.eval_every:
            expected = f"a multiple of --eval-every={args.eval_every}"
            parser.error(f"{flag}: expected {expected}; received {value}")
    args.export_dir = None  # for common.start_run: nothing is exported
    return args


def main(argv=None):
    args = parse_args(argv)
    (run_dir, _), start = common.start_run(args, "long_range"), time.perf_counter()
    tests = {length: adding_problem(length, args.test_size, args.seed) for length in args.lengths}
    baseline = constant_mse(np.concatenate([targets for _, targets in tests.values()]))
    metrics = {"task": "adding problem", "solved_mse": SOLVED_MSE, "baseline_mse": baseline}
    metrics["results"], metrics["gradient_flow"] = main_comparison(args, tests)
    metrics["clipping"] = clipping_experiment(args)
    metrics["initialization"] = initialization_experiment(args, metrics["results"], tests)
    metrics["seconds_total"] = round(time.perf_counter() - start, 1)
    metrics["machine"] = training.machine_info()
    training.write_json(run_dir / "metrics.json", metrics)
    write_plots(metrics, run_dir)
    print(f"\n{run_dir}: {metrics['seconds_total']:.0f} s; predicting 1.0: test MSE {baseline:.4f}")
    for r in metrics["results"]:
        print(_summary(f"{r['cell']} T={r['length']}", r))
    return metrics


if __name__ == "__main__":
    main()
