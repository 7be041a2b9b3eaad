"""IMDB sentiment with rnn_keras: train, evaluate on the 25,000 test reviews, export.

    python experiments/imdb.py                     # train the default model (the main job)
    python experiments/imdb.py --quick --out /tmp/run   # a minutes-long smoke run
    python experiments/imdb.py predict "A moving, beautifully shot film."

A run folder (`--out`, default `runs/imdb-<time>`) gets `config.json`, `metrics.json`,
`learning_curve.png`, TensorBoard logs and checkpoints: a killed run resumes, skipping
the steps it had finished. Exports go to `--export-dir` (default `saved_models/`; the
run folder with `--quick`): `imdb/`, a SavedModel whose `serve` maps raw text
`tf.string [None]` to the probability positive `float32 [None]` (and `serve_members` to
each member's), and `imdb.keras`.

The default: an NBSVM teacher (words, bigrams and trigrams) labels the unlabelled reviews
and a variant of every review; a bidirectional-LSTM student learns them; the served model
is a `rnn_keras.TextEnsemble` of the student and its teacher, the student's weight chosen
on validation. Validation holds out a seeded 10% of the training movies with all their
reviews; the test split is read once, after every choice, for the final figures of the
student, the teacher and the ensemble (docs/imdb.md).
"""

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import keras  # noqa: E402  (after common: TensorFlow's start-up logging is set there)

from rnn_keras.datasets.imdb import load_split  # noqa: E402
from rnn_keras.datasets.text_batches import length_bucketed_batches  # noqa: E402
from rnn_keras.export.saved_model import serve_strings  # noqa: E402
from rnn_keras.models import SequenceClassifier, TextClassifierPreprocessor  # noqa: E402
from rnn_keras.training import distribute, recipes  # noqa: E402

# The default configuration, the one whose figures docs/imdb.md reports, by group.
MODEL = {"cell": "lstm", "bidirectional": True, "layers": 1, "units": 128, "embedding_dim": 128}
HEAD = {"pooling": "max", "dropout": 0.4, "recurrent_dropout": 0.0}
TEXT = {"max_tokens": 30000, "max_length": 800, "train_examples": None, "test_examples": None}
FIT = {"epochs": 3, "batch_size": 64, "lr": 1e-3, "lr_schedule": "cosine", "clipnorm": 1.0}
RUN = {"weight_decay": 0.0, "patience": 3, "val_fraction": 0.1, "seed": 1337}
PRETRAINING = {"pretrain_epochs": 0, "pretrain_reviews": None, "pretrain_vocabulary": 4000}
TEACHER = {"pseudo_label_confidence": 0.5, "pseudo_label_reviews": None, "teacher": "nb-ngrams"}
TEACHER |= {"teacher_ngrams": 3, "teacher_tokens": 300_000}
STUDENT = {"pseudo_labels": "soft", "distill_variants": 1, "ensemble": True}
DEFAULTS = {**MODEL, **HEAD, **TEXT, **FIT, **RUN, **PRETRAINING, **TEACHER, **STUDENT}
# --quick: the same code path on a few hundred reviews, for tests and smoke runs.
QUICK = {"train_examples": 400, "test_examples": 200, "units": 16, "embedding_dim": 16}
QUICK |= {"max_tokens": 2000, "max_length": 64, "epochs": 1, "batch_size": 32}
QUICK |= {"pretrain_reviews": 300, "pretrain_vocabulary": 500, "pseudo_label_reviews": 300}
QUICK |= {"teacher_tokens": 5000}
TEACHER_QUICK = {"epochs": 2}  # the n-gram teacher's (else recipes')
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
    "teacher": "self-training's teacher: a classifier trained as the default, or a logistic "
    "regression on tf-idf or NB-weighted n-grams (rnn_keras.training.recipes; imdb_baseline.py)",
    "teacher_ngrams": "an n-gram teacher reads words and n-grams up to this length",
    "teacher_tokens": "an n-gram teacher's vocabulary (the most frequent words and n-grams)",
    "ensemble": "with an n-gram teacher, export the student and the teacher averaged in logit "
    "space (rnn_keras.TextEnsemble, the student's weight chosen on validation); else the "
    "student alone",
    "pseudo_labels": "the student learns the teacher's 0/1 labels, or its probabilities",
    "distill_variants": "self-training: the student also learns the teacher's probability on "
    "this many random variants of each of its reviews (a crop of 50-100%% of the words, "
    "10%% of them masked)",
}
CHOICES = {"cell": ["simple", "lstm", "gru"], "pooling": ["last", "mean", "max"]}
CHOICES |= {"lr_schedule": ["constant", "cosine"], "pseudo_labels": ["hard", "soft"]}
CHOICES |= {"teacher": ["rnn", *recipes.NGRAM_TEACHERS]}  # an RNN's, or an n-gram teacher


def parse_train_args(argv):
    parser = argparse.ArgumentParser(
        description="Train, evaluate and export an IMDB sentiment classifier built from "
        "rnn_keras cells.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    common.add_flags(parser, DEFAULTS, HELP, CHOICES)
    common.add_run_flags(parser, "imdb", "imdb/ and imdb.keras", strategy=True)
    common.add_validation_flags(parser)  # and --skip-test
    args = common.parse_args(parser, argv, QUICK)
    if args.pseudo_label_confidence and not 0.5 <= args.pseudo_label_confidence < 1.0:
        parser.error(
            "--pseudo-label-confidence must be 0 (off) or at least 0.5 (0.5 keeps every "
            f"review) and below 1. Received: {args.pseudo_label_confidence}"
        )
    return args


# --- commands ---------------------------------------------------------------------------------


def new_classifier(args, preprocessor):
    """A `SequenceClassifier` that reads raw text, built in the run's strategy scope."""
    backbone = {key: getattr(args, key) for key in BACKBONE_ARGS} | {"num_layers": args.layers}
    head = {"pooling": args.pooling, "dropout": args.dropout, "activation": "sigmoid"}
    with common.strategy(args).scope():
        return SequenceClassifier.from_preprocessor(
            preprocessor, 1, backbone_args=backbone, **head, name="sentiment_classifier"
        )


def compile_classifier(args, classifier, steps_per_epoch):
    """`recipes.compile_binary_classifier`: Adam(W) clipped by global norm, cosine decay to 0
    over --epochs with --lr-schedule cosine; soft pseudo-labels count as the class they lean to."""
    cosine = args.lr_schedule == "cosine"
    return recipes.compile_binary_classifier(
        classifier,
        args.lr,
        clipnorm=args.clipnorm,
        weight_decay=args.weight_decay,
        decay_steps=args.epochs * steps_per_epoch if cosine else None,
    )


def self_training_data(args, run_dir, preprocessor, labelled, validation, steps, fit):
    """`recipes.self_training_data`: (the student's texts and labels, the record, the teacher)."""
    teacher = args.teacher
    if teacher == "rnn":
        teacher = compile_classifier(args, new_classifier(args, preprocessor), steps)
    unlabelled, _ = load_split(args.data_dir, "unsupervised", args.pseudo_label_reviews)
    return recipes.self_training_data(
        labelled,
        validation,
        unlabelled,
        run_dir=run_dir,
        teacher=teacher,
        fit_teacher=lambda: fit(teacher, "_teacher"),
        confidence=args.pseudo_label_confidence,
        soft=args.pseudo_labels == "soft",
        copies=args.distill_variants,
        seed=args.seed,
        batch_size=args.batch_size,
        verbose=2 if args.quick else "auto",
        ngrams=args.teacher_ngrams,
        max_tokens=args.teacher_tokens,
        **(TEACHER_QUICK if args.quick else {}),
    )


def train(argv):
    args = parse_train_args(argv)
    run_dir, export_dir = common.start_run(args, "imdb")
    keras.utils.set_random_seed(args.seed)

    started = time.time()
    labelled, validation, how = common.imdb_train_split(args)
    test = load_split(args.data_dir, "test", args.test_examples)  # (texts, labels)
    sizes = f"train {len(labelled[0])}, validation {len(validation[0])} (by {how['by']})"
    print(f"reviews: {sizes}, test {len(test[0])}")

    preprocessor = TextClassifierPreprocessor(
        max_tokens=args.max_tokens, sequence_length=args.max_length
    )
    preprocessor.adapt(labelled[0])

    def batches(data, seed=None):  # token ids grouped by length: short reviews run few steps
        return length_bucketed_batches(
            preprocessor.tokenizer, *data, args.batch_size, shuffle_seed=seed
        )

    train_ds, val_ds = batches(labelled, args.seed), batches(validation)

    def fit(model, phase=""):
        return common.fit(model, args, run_dir, train_ds, val_ds, "val_accuracy", "max", phase)

    self_training, teacher, extra_seconds = None, None, 0.0
    if args.pseudo_label_confidence:
        student_data, self_training, teacher = self_training_data(
            args, run_dir, preprocessor, labelled, validation, len(train_ds), fit
        )
        train_ds = batches(student_data, args.seed)
        extra_seconds = self_training["seconds"]
        keras.utils.set_random_seed(args.seed + 1)  # the student's start, also on resume
    classifier = new_classifier(args, preprocessor)
    pretraining = None
    if args.pretrain_epochs:
        texts, _ = load_split(args.data_dir, "unsupervised", args.pretrain_reviews)
        print(f"pretraining: language model on {len(texts)} unlabelled reviews")
        pretraining = recipes.pretrain_language_model(
            classifier.backbone,
            batches((texts, np.zeros(len(texts), "float32")), args.seed),
            batches((validation[0], np.zeros(len(validation[0]), "float32"))),
            vocabulary_size=args.pretrain_vocabulary,
            run_dir=run_dir,
            epochs=args.pretrain_epochs,
            learning_rate=args.lr,
            clipnorm=args.clipnorm,
            patience=args.patience,
            verbose=2 if args.quick else "auto",
        )
        pretraining["reviews"] = len(texts)
    compile_classifier(args, classifier, len(train_ds))
    classifier.summary(print_fn=lambda line, **_: print(line))
    phase = "_student" if self_training else ""  # the fit's backup and history files
    record = recipes.train_once(  # a finished classifier is loaded, not trained again
        classifier,
        lambda: fit(classifier, phase),
        run_dir=run_dir,
        name="student" if self_training else "classifier",
    )
    history, train_seconds = SimpleNamespace(history=record["history"]), record["seconds"]
    pretrain_seconds = pretraining["seconds"] if pretraining else 0.0
    total_train_seconds = pretrain_seconds + extra_seconds + train_seconds
    best_val = max(history.history["val_accuracy"])
    print(
        f"training {total_train_seconds / 60:.1f} min (pretraining {pretrain_seconds / 60:.1f}, "
        f"teacher and pseudo-labelling {extra_seconds / 60:.1f}, classifier "
        f"{train_seconds / 60:.1f}); best validation accuracy {best_val:.4f}"
    )
    served, mixing = classifier, None
    if args.ensemble and args.teacher in recipes.NGRAM_TEACHERS and self_training:  # not an RNN's
        served, mixing = recipes.ensemble_with_teacher(
            classifier, teacher, validation, args.batch_size, run_dir / "ensemble_weight.png"
        )

    test_loss = test_accuracy = None
    if not args.skip_test:  # the test split's one read, after every choice is made
        if mixing is None:
            test_loss, test_accuracy = distribute.evaluate(classifier, batches(test))
        else:
            mixing["test"] = figures = recipes.ensemble_test(
                classifier, teacher, mixing["student_weight"], test, args.batch_size
            )
            test_loss, test_accuracy = figures["ensemble_loss"], figures["ensemble_accuracy"]
        print(f"test accuracy {test_accuracy:.4f}, loss {test_loss:.4f} ({len(test[0])} reviews)")

    exports = common.export_task(served, export_dir, "imdb")
    metrics = {
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "test_loss": None if test_loss is None else float(test_loss),
        "served_model": type(served).__name__,
        "ensemble": mixing,
        "test_reviews": None if args.skip_test else len(test[0]),
        "train_reviews": len(labelled[0]),
        "validation_reviews": len(validation[0]),
        "validation": how,
        "best_val_accuracy": float(best_val),
        "epochs_run": len(history.history["loss"]),
        "train_seconds": round(total_train_seconds, 1),
        "classifier_train_seconds": round(train_seconds, 1),
        "pretraining": pretraining,
        "self_training": self_training,
        "total_seconds": round(time.time() - started, 1),
        "parameters": int(classifier.count_params()),
        "served_parameters": int(served.count_params()),
        "exported_to": str(export_dir),
        "tensorflow_dataset": "imdb_reviews/plain_text (tensorflow-datasets)",
    }
    title = f"IMDB {args.cell}: best validation accuracy {best_val:.4f}"
    metrics = common.write_metrics(run_dir, metrics, history, ["loss", "accuracy"], title)
    common.report_run(run_dir, *exports)
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
    probabilities = serve_strings(args.model, texts, SERVE_SIGNATURE_NAME)
    for text, probability in zip(texts, probabilities, strict=True):
        preview = text if len(text) <= 70 else text[:67] + "..."
        print(f"{probability:.4f}\t{preview}")
    return probabilities


def main(argv=None):
    return common.dispatch(argv, {"predict": predict, "train": train}, train)


if __name__ == "__main__":
    main()
