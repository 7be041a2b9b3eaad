"""Char-level language model on tiny-shakespeare with truncated BPTT, exported as a generator.

    python experiments/char_text.py                      # train the default model
    python experiments/char_text.py --quick --out /tmp/run    # a minutes-long smoke run
    python experiments/char_text.py generate --model saved_models/char_rnn \\
        --prompt "ROMEO:" --chars 500 --temperature 0.8

Truncated BPTT as the guide describes it: the training text is cut into
`--batch-size` contiguous streams, and batch k holds window k of every stream,
so row j of a batch continues row j of the previous one. A stateful recurrent
stack carries its state from window to window (gradients stop at the window
border); the state is reset at the start of every epoch and before evaluation.

A run folder (`--out`, default `runs/char_text-<time>`) gets `config.json`,
`metrics.json` (validation and test loss in nats/char and bits/char, per-epoch
history, the global gradient norm of every step, wall time, machine),
`learning_curve.png`, `samples.txt` (temperatures 0.5, 0.8 and 1.0), TensorBoard
logs and the `BackupAndRestore` checkpoint. Exports go to `--export-dir`
(default `saved_models/`; the run folder with `--quick`):

* `char_rnn/`: a SavedModel with the endpoints `generate`, `score`,
  `initial_state`, `step` and `vocabulary` (`LanguageModel.export`), served by
  `tf.saved_model.load` with no code of ours;
* `char_rnn.keras`: the `LanguageModel` with its `LanguageModelPreprocessor`
  (`rnn_keras.export.save_model`: no optimizer state), for `generate` and
  `score` on strings or further training.

The model is `rnn_keras.LanguageModel` on a stateful `RecurrentBackbone`, its
vocabulary a `LanguageModelPreprocessor(split="characters")` of the training
text's characters (id 0: unknown); the stream windows and the state resets are
`rnn_keras.windows`'.
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from rnn_keras.datasets import char_windows as windows  # noqa: E402

DEFAULTS = {
    "cell": "lstm",
    "layers": 2,
    "units": 512,
    "embedding_dim": 64,
    "seq_len": 100,
    "batch_size": 64,
    "dropout": 0.25,
    "epochs": 20,
    "lr": 2e-3,
    "clipnorm": 5.0,
    "patience": 3,
    "seed": 1337,
    "max_chars": None,  # all
}
QUICK = {
    "max_chars": 6000,
    "layers": 1,
    "units": 32,
    "embedding_dim": 8,
    "seq_len": 20,
    "batch_size": 8,
    "epochs": 1,
}
HELP = {
    "seq_len": "truncated-BPTT window", "batch_size": "parallel streams",
    "epochs": "at most; early stopping", "lr": "Adam learning rate", "clipnorm": "global-norm clip",
}  # fmt: skip
SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)
SAMPLE_PROMPT = "ROMEO:"
SAMPLE_CHARS = 600


# --- data -------------------------------------------------------------------------------------


def load_splits(data_dir, manual_dir=None, max_chars=None):
    """{"train", "validation", "test"}: the text of each tiny_shakespeare split."""
    import tensorflow_datasets as tfds

    kwargs = {}
    if manual_dir:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        kwargs["download_and_prepare_kwargs"] = {"download_config": config}
    texts = {}
    for split in ("train", "validation", "test"):
        dataset = tfds.load("tiny_shakespeare", split=split, data_dir=data_dir, **kwargs)
        (example,) = list(tfds.as_numpy(dataset))
        texts[split] = example["text"].decode("utf-8")[:max_chars]
    return texts


# --- training ---------------------------------------------------------------------------------


def parse_train_args(argv):
    parser = argparse.ArgumentParser(
        description="Train a char-level language model on tiny-shakespeare with truncated BPTT.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    common.add_flags(parser, DEFAULTS, HELP, {"cell": ["simple", "lstm", "gru"]})
    common.add_run_flags(parser, "char_text", "char_rnn/ and char_rnn.keras", strategy=True)
    parser.add_argument(
        "--manual-dir",
        help="folder with tiny-shakespeare's input.txt, for tfds to prepare the data offline",
    )
    return common.parse_args(parser, argv, QUICK)


def train(argv):
    args = parse_train_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    import rnn_keras

    run_dir, export_dir = common.start_run(args, "char_text")
    keras.utils.set_random_seed(args.seed)
    started = time.time()

    texts = load_splits(args.data_dir, args.manual_dir, args.max_chars)
    # Ids in code-point order of the training text's characters ("\n", the start token, first).
    preprocessor = rnn_keras.LanguageModelPreprocessor(
        vocabulary=sorted(set(texts["train"])), split="characters", name="preprocessor"
    )
    ids = {split: preprocessor.tokenize([text])[0][0].numpy() for split, text in texts.items()}
    print(
        f"characters: train {len(ids['train'])}, validation {len(ids['validation'])}, "
        f"test {len(ids['test'])}; vocabulary {preprocessor.vocabulary_size()} (id 0 = unknown)"
    )

    # Stateful: under a strategy of several replicas the layers refuse to build (the
    # states of the batch's rows cannot follow the rows to their replicas).
    with common.strategy(args).scope():
        backbone = rnn_keras.RecurrentBackbone(
            cell=args.cell,
            units=args.units,
            num_layers=args.layers,
            vocabulary_size=preprocessor.vocabulary_size(),
            embedding_dim=args.embedding_dim,
            mask_zero=False,  # id 0 is the lookup's out-of-vocabulary character, not padding
            dropout=args.dropout,
            stateful=True,
            batch_size=args.batch_size,
        )
        model = rnn_keras.LanguageModel(
            backbone, dropout=args.dropout, preprocessor=preprocessor, name="char_rnn"
        )
        monitor = rnn_keras.GradientNormMonitor(
            keras.optimizers.Adam(args.lr, global_clipnorm=args.clipnorm)
        )
        # loss "auto": sparse categorical cross-entropy on the logits
        model.compile(optimizer=monitor, metrics=[monitor.metric], jit_compile=False)
    model.summary(print_fn=lambda line, **_: print(line))

    # Truncated BPTT: each pass over the streams, and each evaluation, from zero state.
    history, train_seconds = common.fit(
        model,
        args,
        run_dir,
        windows.stream_dataset(ids["train"], args.batch_size, args.seq_len),
        windows.stream_dataset(ids["validation"], args.batch_size, args.seq_len),
        callbacks=[windows.ResetStatesEachPass(backbone)],
        step_logs=["gradient_norm"],
        update_freq=1,
    )

    exports = common.export_task(model, export_dir, "char_rnn")

    # Final figures through the exported model: each split scored as one stream.
    served = tf.saved_model.load(str(export_dir / "char_rnn"))
    figures = {}
    for split in ("validation", "test"):
        result = served.score(tf.constant([texts[split]]))
        nats = float(result["nats"][0]) / int(result["chars"][0])
        figures[split] = {
            "nats_per_char": nats,
            "bits_per_char": nats / math.log(2),
            "chars": int(result["chars"][0]),
        }
        print(f"{split}: {nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char")

    samples = {}
    for temperature in SAMPLE_TEMPERATURES:
        text = served.generate(
            tf.constant([SAMPLE_PROMPT]),
            tf.constant(SAMPLE_CHARS),
            tf.constant(temperature, tf.float32),
        )
        samples[temperature] = text.numpy()[0].decode("utf-8")
    (run_dir / "samples.txt").write_text(
        "".join(f"=== temperature {t} ===\n{s}\n\n" for t, s in samples.items())
    )

    metrics = {
        "validation": figures["validation"],
        "test": figures["test"],
        "best_epoch_val_loss_streams": float(np.min(history.history["val_loss"])),
        "epochs_run": len(history.history["loss"]),
        "gradient_norm_per_step": history.step_logs["gradient_norm"],
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "parameters": int(model.count_params()),
        "vocabulary_size": int(preprocessor.vocabulary_size()),
        "samples": {str(t): s for t, s in samples.items()},
    }
    nats = figures["validation"]["nats_per_char"]
    title = f"tiny-shakespeare {args.cell}: validation {nats:.3f} nats/char"
    metrics = common.write_metrics(run_dir, metrics, history, ["loss"], title)
    print(f"training {train_seconds / 60:.1f} min")
    common.report_run(run_dir, *exports)
    return metrics


def generate(argv):
    parser = argparse.ArgumentParser(
        prog="char_text.py generate",
        description="Generate text from a char_rnn SavedModel (its `generate` endpoint) or a "
        "char_rnn.keras file (`LanguageModel.generate`).",
    )
    parser.add_argument("--model", default=str(common.REPO_ROOT / "saved_models" / "char_rnn"))
    parser.add_argument("--prompt", default=SAMPLE_PROMPT)
    parser.add_argument("--chars", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument(
        "--timing",
        action="store_true",
        help="also report generation speed on stderr (median of 3 calls after a warm-up)",
    )
    args = parser.parse_args(argv)
    if args.chars < 0 or args.temperature < 0:
        parser.error("--chars and --temperature must be >= 0")

    import tensorflow as tf

    if args.model.endswith(".keras"):
        import keras

        import rnn_keras  # noqa: F401  (registers the classes the file holds)

        model = keras.saving.load_model(args.model)
        length = len(args.prompt) + args.chars  # characters, the prompt's included

        def continue_prompt():
            return model.generate(args.prompt, max_length=length, temperature=args.temperature)

    else:
        loaded = tf.saved_model.load(args.model)
        call_args = (
            tf.constant([args.prompt]),
            tf.constant(args.chars, tf.int32),
            tf.constant(args.temperature, tf.float32),
        )

        def continue_prompt():
            return loaded.generate(*call_args).numpy()[0].decode("utf-8")

    print(continue_prompt())
    if args.timing:
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            continue_prompt()
            seconds.append(time.perf_counter() - started)
        median = statistics.median(seconds)
        print(
            f"generated {args.chars} characters after a {len(args.prompt)}-character prompt "
            f"in {median:.3f} s: {args.chars / median:,.0f} characters/s (one stream)",
            file=sys.stderr,
        )


def main(argv=None):
    return common.dispatch(argv, {"generate": generate, "train": train}, train)


if __name__ == "__main__":
    main()
