"""IMDB sentiment with rnn_keras cells: train, evaluate on the 25,000 test reviews, export.

    python experiments/imdb.py                     # train the default model (the main job)
    python experiments/imdb.py --quick --out /tmp/run   # a minutes-long smoke run
    python experiments/imdb.py predict "A moving, beautifully shot film."
    echo "Dull and far too long." | python experiments/imdb.py predict

A run folder (`--out`, default `runs/imdb-<time>`) gets `config.json`, `metrics.json`,
`learning_curve.png`, TensorBoard logs and the `BackupAndRestore` checkpoints (a
killed run resumes, skipping pretraining, teacher or pseudo-labels it had
finished). Exports go to `--export-dir` (default `saved_models/`; the run folder
with `--quick`): `imdb/`, a SavedModel whose `serve` maps raw text `tf.string [None]`
to the probability positive `float32 [None]` with no code of ours, and `imdb.keras`.

Validation holds out a fixed, seeded 10% of the training split's movies with all
their reviews (`--validation movie`), so that, like the test split, it holds
movies the model has not seen; the test split is read once, after training, for
the final figure.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import imdb_unlabelled  # noqa: E402
import strategies  # noqa: E402
from imdb_data import (  # noqa: E402
    add_validation_flags,
    load_split,
    make_vectorizer,
    token_dataset,
    validation_split,
)

common.quiet_tensorflow()

# The default configuration: the one whose figures saved_models/README.md reports.
DEFAULTS = {
    "cell": "lstm",
    "bidirectional": True,
    "layers": 1,
    "units": 128,
    "embedding_dim": 128,
    "pooling": "max",
    "max_tokens": 30000,
    "max_length": 800,
    "dropout": 0.4,
    "recurrent_dropout": 0.0,
    "epochs": 3,
    "batch_size": 64,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "clipnorm": 1.0,
    "weight_decay": 0.0,
    "patience": 3,
    "val_fraction": 0.1,
    "seed": 1337,
    "pretrain_epochs": 0,
    "pretrain_reviews": None,
    "pretrain_vocabulary": 4000,
    "pseudo_label_confidence": 0.5,
    "pseudo_label_reviews": None,
    "teacher": "nb-ngrams",
    "pseudo_labels": "soft",
    "distill_variants": 2,
    "train_examples": None,  # all
    "test_examples": None,
}
# --quick: the same code path on a few hundred reviews, for tests and smoke runs.
QUICK = {
    "train_examples": 400,
    "test_examples": 200,
    "units": 16,
    "embedding_dim": 16,
    "max_tokens": 2000,
    "max_length": 64,
    "epochs": 1,
    "batch_size": 32,
    "pretrain_reviews": 300,
    "pretrain_vocabulary": 500,
    "pseudo_label_reviews": 300,
}
SERVE_SIGNATURE_NAME = "serve"
BACKBONE_ARGS = ("cell", "units", "bidirectional", "embedding_dim", "dropout", "recurrent_dropout")


HELP = {
    "layers": "stacked recurrent layers",
    "units": "units per direction",
    "max_tokens": "vocabulary size",
    "max_length": "tokens read per review (the first ones)",
    "epochs": "at most; early stopping",
    "lr": "Adam learning rate (the peak, with --lr-schedule cosine)",
    "lr_schedule": "constant, or cosine decay to 0 over --epochs",
    "clipnorm": "global-norm clip",
    "weight_decay": "decoupled weight decay (AdamW) when > 0",
    "patience": "early-stopping patience",
    "pretrain_epochs": "epochs of language-model pretraining on the unlabelled reviews (0: none)",
    "pretrain_reviews": "unlabelled reviews to pretrain on (default: all 50,000)",
    "pretrain_vocabulary": "the language model predicts the most frequent words (others: [UNK])",
    "pseudo_label_confidence": "self-training: a teacher labels the unlabelled reviews it scores "
    "at least this confident; a fresh student trains on both (0: off)",
    "pseudo_label_reviews": "unlabelled reviews the teacher scores (default: all 50,000)",
    "teacher": "self-training's teacher: a classifier trained as the default, or "
    "experiments/imdb_baseline.py's logistic regression on tf-idf or NB-weighted n-grams",
    "pseudo_labels": "the student learns the teacher's 0/1 labels, or its probabilities",
    "distill_variants": "self-training: the student also learns the teacher's probability on "
    "this many random variants of each of its reviews (a crop of 50-100%% of the words, "
    "10%% of them masked)",
}
CHOICES = {
    "cell": ["simple", "lstm", "gru"],
    "pooling": ["last", "mean", "max"],
    "lr_schedule": ["constant", "cosine"],
    "teacher": ["rnn", "ngrams", "nb-ngrams"],
    "pseudo_labels": ["hard", "soft"],
}


def parse_train_args(argv):
    parser = argparse.ArgumentParser(
        description="Train, evaluate and export an IMDB sentiment classifier built from "
        "rnn_keras cells.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    common.add_flags(parser, DEFAULTS, HELP, CHOICES)
    common.add_run_flags(parser, "imdb", "imdb/ and imdb.keras", strategy=True)
    add_validation_flags(parser)
    parser.add_argument(
        "--skip-test",
        action="store_true",
        help="do not read the test split (for choosing hyperparameters on validation)",
    )
    args = common.parse_args(parser, argv, QUICK)
    if args.pseudo_label_confidence and not 0.5 <= args.pseudo_label_confidence < 1.0:
        parser.error(
            "--pseudo-label-confidence must be 0 (off) or at least 0.5 (0.5 keeps every "
            "review) and below 1. "
            f"Received: {args.pseudo_label_confidence}"
        )
    return args


# --- model ------------------------------------------------------------------------------------


def build_classifier(args, vocabulary_size):
    import rnn_keras

    backbone = rnn_keras.RecurrentBackbone(
        **{key: getattr(args, key) for key in BACKBONE_ARGS},
        num_layers=args.layers,
        vocabulary_size=vocabulary_size,
    )
    return rnn_keras.SequenceClassifier(
        backbone, 1, args.pooling, args.dropout, "sigmoid", name="sentiment_classifier"
    )


def text_model(vectorizer, classifier):
    """Raw strings (batch,) -> probability positive (batch, 1): vectorizer + classifier."""
    import keras

    text = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(text, classifier(vectorizer(text)), name="imdb_sentiment")


# --- commands ---------------------------------------------------------------------------------


def new_classifier(args, run_dir, vectorizer, val_texts, steps_per_epoch):
    """A compiled classifier, with the language model's weights when pretraining is on.

    With `--lr-schedule cosine` the learning rate decays from `--lr` to 0 over
    `--epochs` epochs of `steps_per_epoch` steps.

    Returns (classifier, pretraining record or None). Pretraining runs once per
    run folder; a second call (self-training's student) reuses its weights. The
    classifier is built and compiled in the scope of the run's strategy.
    """
    import keras

    import rnn_keras

    with strategies.strategy(args).scope():
        classifier = build_classifier(args, vectorizer.vocabulary_size())
    pretraining = None
    if args.pretrain_epochs:
        pretraining = imdb_unlabelled.pretrain(args, run_dir, vectorizer, val_texts, classifier)
    lr = args.lr
    if args.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(args.lr, args.epochs * steps_per_epoch)
    with strategies.strategy(args).scope():
        optimizer = (
            keras.optimizers.AdamW(
                lr, weight_decay=args.weight_decay, global_clipnorm=args.clipnorm
            )
            if args.weight_decay
            else keras.optimizers.Adam(lr, global_clipnorm=args.clipnorm)
        )
        classifier.compile(
            optimizer=optimizer,
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[  # soft pseudo-labels count as the class they lean to
                keras.metrics.MeanMetricWrapper(rnn_keras.rounded_binary_accuracy, name="accuracy")
            ],
            jit_compile=False,  # XLA makes the recurrent loop slower on this CPU (measured)
        )
    return classifier, pretraining


def fit_classifier(args, run_dir, classifier, train_ds, val_ds, phase=""):
    """Early stopping on validation accuracy; `phase` names the backup and TensorBoard folders."""
    return common.fit(classifier, args, run_dir, train_ds, val_ds, "val_accuracy", "max", phase)


def train(argv):
    args = parse_train_args(argv)
    import keras

    import rnn_keras

    run_dir, export_dir = common.start_run(args, "imdb")
    keras.utils.set_random_seed(args.seed)

    started = time.time()
    train_texts, train_labels = load_split(args.data_dir, "train", args.train_examples)
    test_texts, test_labels = load_split(args.data_dir, "test", args.test_examples)
    (fit_texts, fit_labels), (val_texts, val_labels), validation = validation_split(
        train_texts, train_labels, args.val_fraction, args.seed, args.validation, args.movie_map
    )
    print(
        f"reviews: train {len(fit_texts)}, validation {len(val_texts)} (held out by "
        f"{validation['by']}), test {len(test_texts)}"
    )

    vectorizer = make_vectorizer(fit_texts, args.max_tokens, args.max_length)
    train_ds = token_dataset(vectorizer, fit_texts, fit_labels, args.batch_size, args.seed)
    val_ds = token_dataset(vectorizer, val_texts, val_labels, args.batch_size)

    self_training, extra_seconds = None, 0.0
    if args.pseudo_label_confidence:
        train_ds, self_training = imdb_unlabelled.pseudo_labelled_data(
            args,
            run_dir,
            vectorizer,
            (fit_texts, fit_labels),
            (val_texts, val_labels),
            lambda: new_classifier(args, run_dir, vectorizer, val_texts, len(train_ds))[0],
            lambda model, phase: fit_classifier(args, run_dir, model, train_ds, val_ds, phase),
        )
        extra_seconds = sum(
            (self_training[step] or {}).get("seconds", 0.0)
            for step in ("teacher", "pseudo_labels", "variants")
        )
        keras.utils.set_random_seed(args.seed + 1)  # the student's start, also on resume
    classifier, pretraining = new_classifier(args, run_dir, vectorizer, val_texts, len(train_ds))
    classifier.summary(print_fn=lambda line, **_: print(line))
    history, train_seconds = fit_classifier(
        args, run_dir, classifier, train_ds, val_ds, "_student" if self_training else ""
    )
    pretrain_seconds = pretraining["seconds"] if pretraining else 0.0
    test_loss = test_accuracy = None
    if not args.skip_test:
        test_ds = token_dataset(vectorizer, test_texts, test_labels, args.batch_size)
        test_loss, test_accuracy = strategies.evaluate(classifier, test_ds)
        print(
            f"test accuracy {test_accuracy:.4f}, loss {test_loss:.4f} ({len(test_texts)} reviews)"
        )
    total_train_seconds = pretrain_seconds + extra_seconds + train_seconds
    print(
        f"training {total_train_seconds / 60:.1f} min (pretraining {pretrain_seconds / 60:.1f}, "
        f"teacher and pseudo-labelling {extra_seconds / 60:.1f}, classifier "
        f"{train_seconds / 60:.1f}); best validation accuracy "
        f"{max(history.history['val_accuracy']):.4f}"
    )

    model = text_model(vectorizer, classifier)
    common.atomic_replace(
        lambda tmp: rnn_keras.export.export_text_classifier(model, tmp, SERVE_SIGNATURE_NAME),
        export_dir / "imdb",
    )
    common.atomic_replace(lambda tmp: model.save(tmp), export_dir / "imdb.keras")

    metrics = {
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "test_loss": None if test_loss is None else float(test_loss),
        "test_reviews": None if args.skip_test else len(test_texts),
        "train_reviews": len(fit_texts),
        "validation_reviews": len(val_texts),
        "validation": validation,
        "best_val_accuracy": float(max(history.history["val_accuracy"])),
        "epochs_run": len(history.history["loss"]),
        "history": common.history_dict(history),
        "train_seconds": round(total_train_seconds, 1),
        "classifier_train_seconds": round(train_seconds, 1),
        "pretraining": pretraining,
        "self_training": self_training,
        "total_seconds": round(time.time() - started, 1),
        "parameters": int(classifier.count_params()),
        "machine": common.machine_info(),
        "exported_to": str(export_dir),
        "tensorflow_dataset": "imdb_reviews/plain_text (tensorflow-datasets)",
    }
    common.write_json(run_dir / "metrics.json", metrics)
    common.plot_history(
        history.history,
        run_dir / "learning_curve.png",
        ["loss", "accuracy"],
        f"IMDB {args.cell}: best validation accuracy {max(history.history['val_accuracy']):.4f}",
    )
    common.report_run(run_dir, export_dir / "imdb", export_dir / "imdb.keras")
    return metrics


def predict(argv):
    parser = argparse.ArgumentParser(
        prog="imdb.py predict",
        description="Print the probability that each review is positive, from a SavedModel "
        "(texts as arguments, or one per line on stdin).",
    )
    parser.add_argument("texts", nargs="*", help="review texts (default: read stdin)")
    parser.add_argument("--model", default=str(common.REPO_ROOT / "saved_models" / "imdb"))
    args = parser.parse_args(argv)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]

    import tensorflow as tf

    loaded = tf.saved_model.load(args.model)  # keep a reference: it owns the variables
    serve = getattr(loaded, SERVE_SIGNATURE_NAME)
    probabilities = serve(tf.constant(texts, dtype=tf.string)).numpy()
    for text, probability in zip(texts, probabilities, strict=True):
        preview = text if len(text) <= 70 else text[:67] + "..."
        print(f"{probability:.4f}\t{preview}")
    return probabilities


def main(argv=None):
    return common.dispatch(argv, {"predict": predict, "train": train}, train)


if __name__ == "__main__":
    main()
