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
# The n-gram teacher's --quick values (its other arguments: rnn_keras.recipes' defaults, the
# baseline's).
TEACHER_QUICK = {"max_tokens": 5000, "epochs": 2}
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
    common.add_validation_flags(parser)
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


# --- commands ---------------------------------------------------------------------------------


def new_classifier(args, preprocessor):
    """A `SequenceClassifier` that reads raw text, built in the run's strategy scope."""
    import rnn_keras

    with common.strategy(args).scope():
        backbone = rnn_keras.RecurrentBackbone(
            **{key: getattr(args, key) for key in BACKBONE_ARGS},
            num_layers=args.layers,
            vocabulary_size=preprocessor.vocabulary_size(),
        )
        classifier = rnn_keras.SequenceClassifier(
            backbone,
            1,
            args.pooling,
            args.dropout,
            "sigmoid",
            preprocessor=preprocessor,
            name="sentiment_classifier",
        )
    return classifier


def compile_classifier(args, classifier, steps_per_epoch):
    """Adam (AdamW with --weight-decay), clipped by global norm; with `--lr-schedule cosine`
    the learning rate decays from `--lr` to 0 over `--epochs` epochs of `steps_per_epoch`
    steps. Soft pseudo-labels count as the class they lean to."""
    import keras

    import rnn_keras

    lr = args.lr
    if args.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(args.lr, args.epochs * steps_per_epoch)
    with common.strategy(args).scope():
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
    return classifier


def self_training_data(args, run_dir, preprocessor, labelled, validation, batches, fit):
    """(the student's texts and labels, the record): a teacher (`--teacher`) labels the
    unlabelled reviews it is confident about and `--distill-variants` variants of every
    student review (rnn_keras.recipes)."""
    import numpy as np

    from rnn_keras import recipes, text
    from rnn_keras.imdb_reviews import load_split
    from rnn_keras.training import saved_step

    if args.teacher == "rnn":
        teacher = compile_classifier(args, new_classifier(args, preprocessor), len(batches))
        weights = str(run_dir / "teacher.weights.h5")

        def train_teacher():
            return recipes.training_record("rnn", *fit(teacher, "_teacher"))

        save, load = (
            (lambda: teacher.save_weights(weights)),
            (lambda: teacher.load_weights(weights)),
        )
        record = saved_step(run_dir, "teacher", load, train_teacher, save)

        def score(texts):
            return text.score_texts(teacher, preprocessor.tokenizer, texts, args.batch_size)

    else:
        quick = TEACHER_QUICK if args.quick else {}
        teacher, record = recipes.ngram_teacher(
            labelled,
            validation,
            run_dir=run_dir,
            features={"ngrams": "tf_idf", "nb-ngrams": "nb"}[args.teacher],
            seed=args.seed,
            verbose=2 if args.quick else "auto",
            **quick,
        )

        def score(texts):
            data = recipes.text_batches(texts, np.zeros(len(texts)), 1024)
            return teacher.predict(data, verbose=0)[:, 0]

    unlabelled, _ = load_split(args.data_dir, "unsupervised", args.pseudo_label_reviews)
    texts, labels, labelling = recipes.pseudo_labels(
        score,
        unlabelled,
        confidence=args.pseudo_label_confidence,
        soft=args.pseudo_labels == "soft",
        run_dir=run_dir,
    )
    texts, labels = np.concatenate([labelled[0], texts]), np.concatenate([labelled[1], labels])
    variant_record = None
    if args.distill_variants:
        variants, variant_labels, variant_record = recipes.labelled_variants(
            score, texts, copies=args.distill_variants, seed=args.seed, run_dir=run_dir
        )
        texts = np.concatenate([texts, variants])
        labels = np.concatenate([labels, variant_labels])
    return (texts, labels), {
        "teacher": record,
        "pseudo_labels": labelling,
        "variants": variant_record,
    }


def train(argv):
    args = parse_train_args(argv)
    import keras
    import numpy as np

    import rnn_keras
    from rnn_keras import distribute, recipes, training
    from rnn_keras.imdb_reviews import load_split, validation_split
    from rnn_keras.text import length_bucketed_batches

    run_dir, export_dir = common.start_run(args, "imdb")
    keras.utils.set_random_seed(args.seed)

    started = time.time()
    train_texts, train_labels = load_split(args.data_dir, "train", args.train_examples)
    test_texts, test_labels = load_split(args.data_dir, "test", args.test_examples)
    labelled, validation, how = validation_split(
        train_texts, train_labels, args.val_fraction, args.seed, args.validation, args.movie_map
    )
    print(
        f"reviews: train {len(labelled[0])}, validation {len(validation[0])} (held out by "
        f"{how['by']}), test {len(test_texts)}"
    )

    preprocessor = rnn_keras.TextClassifierPreprocessor(
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

    self_training, extra_seconds = None, 0.0
    if args.pseudo_label_confidence:
        student_data, self_training = self_training_data(
            args, run_dir, preprocessor, labelled, validation, train_ds, fit
        )
        train_ds = batches(student_data, args.seed)
        extra_seconds = sum(
            (self_training[step] or {}).get("seconds", 0.0)
            for step in ("teacher", "pseudo_labels", "variants")
        )
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
    history, train_seconds = fit(classifier, "_student" if self_training else "")
    pretrain_seconds = pretraining["seconds"] if pretraining else 0.0
    test_loss = test_accuracy = None
    if not args.skip_test:
        test_loss, test_accuracy = distribute.evaluate(
            classifier, batches((test_texts, test_labels))
        )
        print(
            f"test accuracy {test_accuracy:.4f}, loss {test_loss:.4f} ({len(test_texts)} reviews)"
        )
    total_train_seconds = pretrain_seconds + extra_seconds + train_seconds
    best_val = max(history.history["val_accuracy"])
    print(
        f"training {total_train_seconds / 60:.1f} min (pretraining {pretrain_seconds / 60:.1f}, "
        f"teacher and pseudo-labelling {extra_seconds / 60:.1f}, classifier "
        f"{train_seconds / 60:.1f}); best validation accuracy {best_val:.4f}"
    )

    training.atomic_replace(classifier.export, export_dir / "imdb")
    training.atomic_replace(
        lambda tmp: rnn_keras.export.save_model(classifier, tmp), export_dir / "imdb.keras"
    )

    metrics = {
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "test_loss": None if test_loss is None else float(test_loss),
        "test_reviews": None if args.skip_test else len(test_texts),
        "train_reviews": len(labelled[0]),
        "validation_reviews": len(validation[0]),
        "validation": how,
        "best_val_accuracy": float(best_val),
        "epochs_run": len(history.history["loss"]),
        "history": training.history_dict(history),
        "train_seconds": round(total_train_seconds, 1),
        "classifier_train_seconds": round(train_seconds, 1),
        "pretraining": pretraining,
        "self_training": self_training,
        "total_seconds": round(time.time() - started, 1),
        "parameters": int(classifier.count_params()),
        "machine": training.machine_info(),
        "exported_to": str(export_dir),
        "tensorflow_dataset": "imdb_reviews/plain_text (tensorflow-datasets)",
    }
    training.write_json(run_dir / "metrics.json", metrics)
    training.plot_history(
        history.history,
        run_dir / "learning_curve.png",
        ["loss", "accuracy"],
        f"IMDB {args.cell}: best validation accuracy {best_val:.4f}",
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
