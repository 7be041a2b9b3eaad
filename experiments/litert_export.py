"""The committed models on device: LiteRT files, checked against their SavedModels, and timed.

    python experiments/litert_export.py --data-dir ../shared/data/tensorflow_datasets \\
        --pm25-csv ../shared/data/beijing_pm25/PRSA_data_2010.1.1-2014.12.31.csv
    python experiments/litert_export.py --quick --out /tmp/run    # smoke run: no copy

Exports with `rnn_keras.export.to_litert`, into `--export-dir` (default `saved_models/`):
`imdb.tflite` (the classifier's network on token ids, float32) and `imdb_int8.tflite`
(`quantize="dynamic"`), each with its vocabulary and tokenizing rule beside it (`.json`);
`char_rnn_step.tflite` and `char_rnn_step_int8.tflite` (the char model's one-step function,
states in and out) with its vocabulary; `pm25.tflite` (the forecaster's network on the
preprocessed features) with the preprocessing it needs. Then, in this one process (every
interpreter with one thread per CPU core, as TensorFlow runs the SavedModels):

* the same figures as the SavedModels: IMDB test accuracy (float32 and dynamic), char nats
  per character on the test text, PM2.5 test MAE; and the pure-Python review tokenizer of
  `rnn_keras.export.on_device` against the SavedModel's;
* latency: a review through the fused-LSTM file, the `WHILE`-loop conversion of the same
  model (`fuse_lstm=False`) and the SavedModel; generation through a Python loop over the
  step file against the SavedModel's in-graph `generate`; GRU and SimpleRNN as loop and
  unrolled.

Writes `metrics.json` in the run folder and prints a Markdown summary.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import timeseries  # noqa: E402

from rnn_keras.evaluation import benchmarking  # noqa: E402
from rnn_keras.export import on_device, to_litert  # noqa: E402

QUICK = {"reviews": 48, "chars": 1000, "windows": 48, "generate": 100, "repeats": 5}
FULL = {"reviews": None, "chars": None, "windows": None, "generate": 1000, "repeats": 30}
# The unrolling measurement: (cell, time steps), 64 units over 8 features, batch 1.
UNROLL_SHAPES = [(cell, t) for cell in ("GRU", "SimpleRNN") for t in (20, 50, 100, 400)]
QUICK_UNROLL_SHAPES = [("GRU", 20), ("SimpleRNN", 20)]


# --- the models -------------------------------------------------------------------------------


def imdb(args, sizes, export_dir, scratch, models_dir):
    """IMDB test accuracy through the SavedModel and the two .tflite files; latencies."""
    import keras
    import tensorflow as tf

    from rnn_keras.datasets import imdb as imdb_reviews
    from rnn_keras.models.text_ensemble import recurrent_member

    # The device file is the recurrent network; an ensemble's SavedModel serves it alone too.
    task = recurrent_member(keras.saving.load_model(models_dir / "imdb.keras"))
    served = tf.saved_model.load(str(models_dir / "imdb"))

    def serve(text):
        if hasattr(served, "serve_members"):
            return served.serve_members(text)[task.name]
        return served.serve(text)

    texts, labels = imdb_reviews.load_split(args.data_dir, "test", sizes["reviews"])
    saved = benchmarking.in_batches(lambda batch: serve(tf.constant(batch)), texts)
    served_model = benchmarking.in_batches(lambda batch: served.serve(tf.constant(batch)), texts)
    review_ids = []  # each review's ids at its true length (0 pads only)
    for batch in benchmarking.batches(texts):
        review_ids += [row[row != 0] for row in task.preprocessor.token_ids(batch).numpy()]

    figures = {
        "reviews": len(texts),
        "savedmodel": {"accuracy": float(np.mean((saved >= 0.5) == labels))},
        "savedmodel_served": {"accuracy": float(np.mean((served_model >= 0.5) == labels))},
    }
    classifiers = {}
    for name, quantize in (("imdb", None), ("imdb_int8", "dynamic")):
        path = to_litert(task, export_dir / f"{name}.tflite", quantize=quantize)
        classifiers[name] = on_device.ReviewClassifier(path, num_threads=os.cpu_count())
        probabilities, seconds = benchmarking.timed_map(classifiers[name].predict_ids, review_ids)
        figures[name] = {
            "quantize": quantize,
            **benchmarking.binary_agreement(probabilities, saved, labels),
            "seconds": seconds,
            **benchmarking.file_facts(path),
        }
        print(f"IMDB {name}: accuracy {figures[name]['accuracy']:.4%}", flush=True)
    figures["pure_python_tokenizer_agreement"] = benchmarking.token_agreement(
        classifiers["imdb"].token_ids, texts, review_ids
    )

    # Latency of one review of median length: fused, the WHILE loop, the SavedModel.
    lengths = np.array([len(ids) for ids in review_ids])
    index = int(np.argsort(lengths)[len(lengths) // 2])
    loop_path = to_litert(task, scratch / "imdb_loop.tflite", fuse_lstm=False)
    runner, input_name = benchmarking.serve_runner(loop_path)
    ids = review_ids[index].reshape(1, -1)

    def ms(call):
        return 1e3 * benchmarking.median_call_seconds(call, sizes["repeats"])

    figures["latency_ms"] = {
        "tokens": int(lengths[index]),
        "fused": ms(lambda: classifiers["imdb"].predict_ids(ids)),
        "fused_int8": ms(lambda: classifiers["imdb_int8"].predict_ids(ids)),
        "while_loop": ms(lambda: runner(**{input_name: ids})),
        "savedmodel_text": ms(lambda: serve(tf.constant([texts[index]]))),
    }
    difference = runner(**{input_name: ids})["output"].reshape(-1)[0]
    difference -= classifiers["imdb"].predict_ids(ids)
    figures["while_loop"] = {
        **benchmarking.file_facts(loop_path),
        "max_abs_difference_on_the_review": float(abs(difference)),
    }
    return figures


def char_model(args, sizes, export_dir, scratch, models_dir):
    """Nats per character through the SavedModel and the step file; generation speed."""
    import char_text
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(models_dir / "char_rnn.keras")
    served = tf.saved_model.load(str(models_dir / "char_rnn"))
    text = char_text.load_splits(args.data_dir, max_chars=sizes["chars"])["test"]
    result = served.score(tf.constant([text]))
    saved_nats, saved_chars = float(result["nats"][0]), int(result["chars"][0])

    preprocessor = model.preprocessor
    figures = {"savedmodel": {"nats_per_char": saved_nats / saved_chars, "chars": saved_chars}}
    generators = {}
    for name, quantize in (("char_rnn_step", None), ("char_rnn_step_int8", "dynamic")):
        path = to_litert(model, export_dir / f"{name}.tflite", quantize=quantize, function="step")
        generators[name] = on_device.CharGenerator(path, num_threads=os.cpu_count())
        nats, chars = generators[name].nats(text)
        figures[name] = {
            "quantize": quantize,
            "nats_per_char": nats / chars,
            "chars": chars,
            **benchmarking.file_facts(path),
        }
        print(f"char {name}: {nats / chars:.6f} nats/char", flush=True)

    count, repeats = sizes["generate"], max(3, sizes["repeats"] // 10)
    prompt = "ROMEO:"

    def chars_per_second(generate):
        return count / benchmarking.median_call_seconds(generate, repeats)

    def ms_per_step(step):
        return 1e3 * benchmarking.median_call_seconds(step, 10 * repeats)

    state = tf.zeros([1, model.state_size])
    ids = tf.constant([int(preprocessor.start_id)])
    step_ms = {
        name: ms_per_step(lambda g=g: g.step(1, g.initial_state()))
        for name, g in generators.items()
    }
    step_ms["savedmodel_step"] = ms_per_step(lambda: served.step(ids, state))
    figures["generation"] = {
        "chars": count,
        "chars_per_second": {
            "litert_python_loop": chars_per_second(
                lambda: generators["char_rnn_step"].generate(prompt, count, 1.0, seed=0)
            ),
            "litert_python_loop_int8": chars_per_second(
                lambda: generators["char_rnn_step_int8"].generate(prompt, count, 1.0, seed=0)
            ),
            "savedmodel_generate": chars_per_second(
                lambda: served.generate(tf.constant([prompt]), tf.constant(count), 1.0)
            ),
        },
        "step_ms": step_ms,
        "sample": generators["char_rnn_step"].generate(prompt, 200, 0.8, seed=1),
    }
    speeds = figures["generation"]["chars_per_second"]
    figures["generation"]["litert_over_savedmodel"] = (
        speeds["litert_python_loop"] / speeds["savedmodel_generate"]
    )
    return figures


def pm25(args, sizes, export_dir, scratch, models_dir):
    """PM2.5 test MAE through the SavedModel and pm25.tflite (on the preprocessed features)."""
    import keras
    import tensorflow as tf

    from rnn_keras.evaluation import forecast_baselines

    forecaster = keras.saving.load_model(models_dir / "pm25.keras")
    served = tf.saved_model.load(str(models_dir / "pm25"))
    table = timeseries.read_table(args.pm25_csv, args.pm25_dir)
    _, inputs, targets = timeseries.windows_of(table, "test", sizes["windows"])
    saved = benchmarking.in_batches(
        lambda part: served.serve(**{n: tf.constant(v) for n, v in part.items()}), inputs, 512
    )
    features = benchmarking.in_batches(forecaster.preprocessor, inputs, 512)
    path = to_litert(forecaster, export_dir / "pm25.tflite")
    runner, input_name = benchmarking.serve_runner(path)
    litert, seconds = benchmarking.timed_map(
        lambda f: runner(**{input_name: f[None]})["output"][0], features
    )
    figures = {
        "windows": len(targets),
        "savedmodel": {"mae": forecast_baselines.horizon_errors(saved, targets)["mean_mae"]},
        "pm25": {
            "mae": forecast_baselines.horizon_errors(litert, targets)["mean_mae"],
            "max_abs_difference": float(np.max(np.abs(litert - saved))),
            "ms_per_window": 1e3 * seconds / len(targets),
            **benchmarking.file_facts(path),
        },
    }
    print(f"PM2.5: MAE {figures['pm25']['mae']:.3f}", flush=True)
    return figures


def unrolling(shapes, repeats, scratch):
    """Interpreter latency (µs) of GRU and SimpleRNN layers as the loop and unrolled."""
    rows = []
    for cell, steps in shapes:
        row = benchmarking.unrolling_latency(cell, steps, repeats, scratch / "unroll.tflite")
        rows.append(row)
        print(f"{cell} {steps}: loop {row['loop_us']:.0f} µs, unrolled {row['unrolled_us']:.0f}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_run_flags(parser, "litert", "the .tflite files and their .json")
    parser.add_argument("--pm25-csv", default=None, help="the Beijing PM2.5 CSV (else get_file)")
    parser.add_argument("--pm25-dir", default=None, help="get_file's cache dir for the CSV")
    parser.add_argument("--models-dir", default=str(common.REPO_ROOT / "saved_models"))
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    run_dir = common.new_run_dir(args.out, "litert")
    default_export = run_dir / "export" if args.quick else common.REPO_ROOT / "saved_models"
    export_dir = Path(args.export_dir or default_export)
    export_dir.mkdir(parents=True, exist_ok=True)
    models_dir = Path(args.models_dir)

    from rnn_keras.training.fit import machine_info

    metrics = {"command": sys.argv, "machine": machine_info(), "sizes": sizes}
    with tempfile.TemporaryDirectory() as scratch:  # the files only timed
        for name, measure in (("imdb", imdb), ("char", char_model), ("pm25", pm25)):
            metrics[name] = measure(args, sizes, export_dir, Path(scratch), models_dir)
            common.write_json(run_dir / "metrics.json", metrics)
        shapes = QUICK_UNROLL_SHAPES if args.quick else UNROLL_SHAPES
        metrics["unrolling"] = unrolling(shapes, sizes["repeats"], Path(scratch))
    common.write_json(run_dir / "metrics.json", metrics)
    print(summary(metrics))
    print(f"run folder: {run_dir}\nexported to: {export_dir}")
    return metrics


def summary(metrics):
    """The Markdown tables of the run."""
    i, c, p = metrics["imdb"], metrics["char"], metrics["pm25"]
    speeds = c["generation"]["chars_per_second"]
    lines = [
        "| model | SavedModel | LiteRT float32 | LiteRT dynamic int8 | .tflite KB |",
        "|---|---|---|---|---|",
        f"| IMDB test accuracy ({i['reviews']} reviews) | {i['savedmodel']['accuracy']:.4%} | "
        f"{i['imdb']['accuracy']:.4%} | {i['imdb_int8']['accuracy']:.4%} | "
        f"{i['imdb']['kb']:.0f} / {i['imdb_int8']['kb']:.0f} |",
        f"| char nats/char (test, {c['savedmodel']['chars']} chars) | "
        f"{c['savedmodel']['nats_per_char']:.6f} | {c['char_rnn_step']['nats_per_char']:.6f} | "
        f"{c['char_rnn_step_int8']['nats_per_char']:.6f} | {c['char_rnn_step']['kb']:.0f} / "
        f"{c['char_rnn_step_int8']['kb']:.0f} |",
        f"| PM2.5 test MAE ({p['windows']} windows) | {p['savedmodel']['mae']:.4f} | "
        f"{p['pm25']['mae']:.4f} | | {p['pm25']['kb']:.0f} |",
        "",
        f"IMDB review of {i['latency_ms']['tokens']} tokens, ms: "
        + ", ".join(f"{k} {v:.2f}" for k, v in i["latency_ms"].items() if k != "tokens"),
        "char generation, chars/s: "
        + ", ".join(f"{k} {v:.0f}" for k, v in speeds.items())
        + f" (LiteRT / SavedModel: {c['generation']['litert_over_savedmodel']:.2f}x)",
        "",
        "| cell | steps | loop µs | unrolled µs | loop KB | unrolled KB |",
        "|---|---|---|---|---|---|",
    ]
    for row in metrics["unrolling"]:
        lines.append(
            f"| {row['cell']} | {row['steps']} | {row['loop_us']:.0f} | {row['unrolled_us']:.0f}"
            f" | {row['loop_kb']:.0f} | {row['unrolled_kb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
