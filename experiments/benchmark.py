"""Throughput of rnn_keras layers against Keras's built-in layers and PyTorch, on this machine.

    python experiments/benchmark.py                 # the full run (about 15 minutes on 2 cores)
    python experiments/benchmark.py --tiny          # seconds: keeps the script working (tests)

In one process, for each shape and implementation: build the model, warm up
(excluded), then time `--repeats` repetitions of `--steps` training steps
(forward + backward + Adam step) and of `--steps` inference batches, and report
the median tokens per second. Keras models are timed with `jit_compile` off
and on, and the faster of the two is reported (the column `xla` says which),
so every Keras implementation is compared at its best. Achieved FLOP/s of the
recurrent layers (LSTM 24*H*(I+H) training FLOPs per token per layer and
direction, GRU 18*H*(I+H), simple RNN 6*H*(I+H); inference a third of that)
is reported as a fraction of this machine's float32 matmul throughput.

Writes a JSON file (`--out`) and prints a Markdown table.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from rnn_keras import training  # noqa: E402
from rnn_keras.evaluation import benchmarking  # noqa: E402

SHAPES = {
    # name: batch, steps, embedding, units, layers, bidirectional, vocabulary, sequence output
    "imdb": dict(
        batch=64,
        time=200,
        embedding=128,
        units=128,
        layers=1,
        bidirectional=False,
        vocabulary=20000,
        per_step_output=False,
    ),
    "imdb-bi": dict(
        batch=64,
        time=200,
        embedding=128,
        units=128,
        layers=1,
        bidirectional=True,
        vocabulary=20000,
        per_step_output=False,
    ),
    "char": dict(
        batch=64,
        time=100,
        embedding=64,
        units=512,
        layers=2,
        bidirectional=False,
        vocabulary=65,
        per_step_output=True,
    ),
}
TINY = dict(batch=4, time=6, embedding=8, units=8, layers=1, vocabulary=50)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes")
    parser.add_argument("--steps", type=int, default=5, help="steps per repetition")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions (median)")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated substrings: time only implementations matching",
    )
    parser.add_argument("--no-xla", action="store_true", help="time Keras without jit_compile")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, 1 step, 1 repeat")
    parser.add_argument(
        "--out", default=str(common.REPO_ROOT / "experiments" / "results" / "benchmark.json")
    )
    args = parser.parse_args(argv)
    torch_version = benchmarking.torch_version()
    shapes = {name: dict(SHAPES[name]) for name in args.shapes.split(",")}
    if args.tiny:
        for shape in shapes.values():
            shape.update(TINY)
        args.steps, args.repeats = 1, 1
    peak = benchmarking.matmul_flops(512 if args.tiny else 4096)
    print(f"float32 matmul: {peak / 1e9:.1f} GFLOP/s")

    results = []
    jit_compile = (False,) if args.no_xla else (False, True)
    timing = {"steps": args.steps, "repeats": args.repeats, "peak_flops": peak}
    for shape_name, shape in shapes.items():
        for implementation in benchmarking.implementations(include_torch=bool(torch_version)):
            name = implementation.name
            if args.only and not any(s in name for s in args.only.split(",")):
                continue
            measured = benchmarking.measure_throughput(
                implementation, jit_compile=jit_compile, **timing, **shape
            )
            row = {"shape": shape_name, **measured}
            results.append(row)
            print(
                f"{shape_name:8s} {name:38s} train {row['train_tokens_per_s']:9.0f} tok/s"
                f"  infer {row['infer_tokens_per_s']:9.0f} tok/s  (xla={row['xla']})",
                flush=True,
            )

    report = {
        "machine": training.machine_info(),
        "matmul_flops": peak,
        "shapes": shapes,
        "steps": args.steps,
        "repeats": args.repeats,
        "torch": torch_version,
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    training.write_json(out, report)
    print(markdown_table(report))
    return report


def markdown_table(report):
    """Tokens/s and the ratio of each rnn_keras layer to the built-in and torch of its cell."""
    lines = [
        "| shape | implementation | train tok/s | infer tok/s | train FLOP/s of peak |"
        " rnn_keras train / this | rnn_keras infer / this |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ours = {(r["shape"], r["cell"]): r for r in report["results"] if r["family"] == "rnn_keras"}
    for row in report["results"]:
        mine = ours.get((row["shape"], row["cell"]))
        ratios = ("", "")
        if mine and row["family"] != "rnn_keras":
            ratios = (
                f"{mine['train_tokens_per_s'] / row['train_tokens_per_s']:.2f}x",
                f"{mine['infer_tokens_per_s'] / row['infer_tokens_per_s']:.2f}x",
            )
        lines.append(
            f"| {row['shape']} | {row['implementation']} | {row['train_tokens_per_s']:,.0f} | "
            f"{row['infer_tokens_per_s']:,.0f} | {row['train_flops_fraction']:.0%} | "
            f"{ratios[0]} | {ratios[1]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
