"""The unlabelled reviews in experiments/imdb.py: language-model pretraining and self-training.

`--pretrain-epochs`: ELMo-style pretraining of the classifier's own backbone.
`--pseudo-label-confidence`: self-training, a teacher, then labels:

A teacher (a classifier trained as the default, or imdb_baseline.py's logistic
regression on tf-idf or NB-weighted n-grams) scores the unlabelled reviews; the
ones it is confident about join the training data of a fresh student (the run's
classifier), with hard or soft labels. Each stage is saved in the run folder, so
a resumed run skips what it had finished.
"""

import re
import time

import common
import imdb_baseline
from imdb_data import load_split, token_dataset


def pretrain(args, run_dir, vectorizer, val_texts, classifier):
    """ELMo-style pretraining: a `LanguageModel` on the classifier's own backbone object.

    Trained on the unlabelled reviews (validation texts measure its held-out
    loss), it trains the classifier's embedding and recurrent layers. Returns
    the record for metrics.json (saved: a resumed run skips it).
    """
    import keras
    import numpy as np

    import rnn_keras

    weights_path = str(run_dir / "pretrained.weights.h5")
    with classifier.distribute_strategy.scope():
        language_model = rnn_keras.LanguageModel(classifier.backbone, args.pretrain_vocabulary)

    def batches(texts, seed):
        labels = np.zeros(len(texts), "float32")
        return language_model.examples(
            token_dataset(vectorizer, texts, labels, args.batch_size, seed)
        )

    def compute():
        texts, _ = load_split(args.data_dir, "unsupervised", args.pretrain_reviews)
        print(f"pretraining: language model on {len(texts)} unlabelled reviews")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        with classifier.distribute_strategy.scope():
            language_model.compile(
                optimizer=keras.optimizers.Adam(args.lr, global_clipnorm=args.clipnorm),
                loss=[loss] * len(language_model.outputs),
                jit_compile=False,
            )
        history, seconds = common.fit(
            language_model,
            args,
            run_dir,
            batches(texts, args.seed),
            batches(val_texts, None),
            phase="_pretraining",
            epochs=args.pretrain_epochs,
        )
        return {
            "reviews": len(texts),
            "epochs": args.pretrain_epochs,
            "predicted_vocabulary": args.pretrain_vocabulary,
            "seconds": round(seconds, 1),
            "history": common.history_dict(history),
        }

    return common.saved_step(
        run_dir,
        "pretraining",
        lambda: language_model.load_weights(weights_path),
        compute,
        lambda: language_model.save_weights(weights_path),
    )


def pseudo_labelled_data(args, run_dir, vectorizer, labelled, validation, new_classifier, fit):
    """(the student's training data, the record for metrics.json).

    `labelled` and `validation` are the (texts, labels) of the training and
    validation data, `new_classifier()` returns a compiled classifier and
    `fit(model, phase)` trains it as the run's classifier is trained, returning
    (History, seconds). `args.teacher` picks the teacher: "rnn" (a classifier
    trained as the default), "ngrams" or "nb-ngrams" (imdb_baseline.py's model with
    tf-idf or NB features).
    """
    import numpy as np

    import rnn_keras.text

    if args.teacher == "rnn":
        teacher, teacher_record = train_teacher(run_dir, new_classifier, fit)

        def score(texts):
            return rnn_keras.text.score_texts(teacher, vectorizer, texts, args.batch_size)

    else:
        teacher, teacher_record = train_ngram_teacher(args, run_dir, labelled, validation)

        def score(texts):
            data = imdb_baseline.batches(texts, np.zeros(len(texts)), 1024)
            return teacher.predict(data, verbose=0)[:, 0]

    texts, labels, labelling = pseudo_label(args, run_dir, score)
    texts, labels = np.concatenate([labelled[0], texts]), np.concatenate([labelled[1], labels])
    variant_record = None
    if args.distill_variants:
        variants, variant_labels, variant_record = labelled_variants(args, run_dir, texts, score)
        texts = np.concatenate([texts, variants])
        labels = np.concatenate([labels, variant_labels])
    student_ds = token_dataset(vectorizer, texts, labels, args.batch_size, args.seed)
    record = {"teacher": teacher_record, "pseudo_labels": labelling, "variants": variant_record}
    return student_ds, record


def teacher_record(model, history, seconds):
    """The teacher's entry in metrics.json."""
    return {
        "model": model,
        "history": common.history_dict(history),
        "best_val_accuracy": float(max(history.history["val_accuracy"])),
        "seconds": round(seconds, 1),
    }


def train_ngram_teacher(args, run_dir, labelled, validation):
    """experiments/imdb_baseline.py's model as teacher (its defaults, with tf-idf or NB
    features as `args.teacher` says); saved for a resumed run."""
    weights_path = str(run_dir / "teacher.weights.h5")
    baseline_args = imdb_baseline.default_args(args.quick)
    baseline_args.seed = args.seed
    baseline_args.features = {"ngrams": "tf_idf", "nb-ngrams": "nb"}[args.teacher]
    built = {}

    def train():
        built["model"], history, seconds = imdb_baseline.fit_baseline(
            baseline_args, run_dir, labelled, validation, "_teacher"
        )
        return teacher_record(args.teacher, history, seconds)

    def load():
        nb_labels = labelled[1] if baseline_args.features == "nb" else None
        built["model"] = imdb_baseline.ngram_classifier(
            labelled[0], baseline_args.max_tokens, baseline_args.ngrams, nb_labels
        )
        built["model"].load_weights(weights_path)

    record = common.saved_step(
        run_dir, "teacher", load, train, lambda: built["model"].save_weights(weights_path)
    )
    return built["model"], record


def train_teacher(run_dir, new_classifier, fit):
    """Self-training's first model, trained as usual; saved so a resumed run skips it."""
    weights_path = str(run_dir / "teacher.weights.h5")
    teacher = new_classifier()

    def compute():
        history, seconds = fit(teacher, "_teacher")
        return teacher_record("rnn", history, seconds)

    record = common.saved_step(
        run_dir,
        "teacher",
        lambda: teacher.load_weights(weights_path),
        compute,
        lambda: teacher.save_weights(weights_path),
    )
    return teacher, record


def pseudo_label(args, run_dir, score):
    """Self-training's data: the unlabelled reviews the teacher is confident about.

    `score(texts)` is the teacher's probability positive. Keeps the reviews scored
    >= c or <= 1 - c (c = --pseudo-label-confidence; 0.5 keeps all), labelled 1 or
    0, or with `--pseudo-labels soft` the teacher's probability. Returns (texts,
    labels, record); the labels and the record are saved in the run folder, so a
    resumed run does not score them again.
    """
    import numpy as np

    labels_path = run_dir / "pseudo_labels.npz"
    texts, _ = load_split(args.data_dir, "unsupervised", args.pseudo_label_reviews)
    kept = {}

    def compute():
        started = time.time()
        scores = score(texts)
        confidence = args.pseudo_label_confidence
        kept["indices"] = np.flatnonzero((scores >= confidence) | (scores <= 1.0 - confidence))
        kept["labels"] = labels = (
            scores[kept["indices"]].astype("float32")
            if args.pseudo_labels == "soft"
            else (scores[kept["indices"]] >= 0.5).astype("float32")
        )
        positive = float((labels >= 0.5).mean()) if len(labels) else None
        print(
            f"self-training: the teacher labels {len(labels)} of {len(texts)} unlabelled "
            f"reviews (confidence >= {confidence}; {positive or 0:.1%} positive, "
            f"{args.pseudo_labels} labels)"
        )
        return {
            "confidence": confidence,
            "labels": args.pseudo_labels,
            "unlabelled_reviews": len(texts),
            "kept": len(labels),
            "kept_positive_fraction": positive,
            "seconds": round(time.time() - started, 1),
        }

    record = common.saved_step(
        run_dir,
        "pseudo_labels",
        lambda: kept.update(np.load(labels_path)),
        compute,
        lambda: np.savez(labels_path, **kept),
    )
    return texts[kept["indices"]], kept["labels"], record


def text_variants(texts, copies, seed, min_fraction=0.5, mask_rate=0.1, mask="xxmask"):
    """`copies` random variants of each text (copy-major order): a contiguous crop of
    a uniform 50-100% of its words, then each word replaced by `mask` (a word no
    vocabulary holds) with probability `mask_rate` (Tang et al. 2019's distillation
    data, with crops for n-gram sampling). HTML tags are dropped first."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = [re.sub(r"<[^>]*>", " ", str(text)).split() for text in texts]
    variants = []
    for _ in range(copies):
        for review in words:
            length = max(1, round(len(review) * rng.uniform(min_fraction, 1.0)))
            start = int(rng.integers(0, max(1, len(review) - length + 1)))
            crop = review[start : start + length]
            masked = rng.random(len(crop)) < mask_rate
            variants.append(" ".join(mask if m else w for w, m in zip(crop, masked, strict=True)))
    return np.array(variants, dtype=object)


def labelled_variants(args, run_dir, texts, score):
    """Distillation data: `--distill-variants` variants of every student review
    (`text_variants`, seeded), labelled with the teacher's probability. The labels
    are saved in the run folder; the texts are drawn again (same seed) on resume.
    Returns (texts, labels, record)."""
    import numpy as np

    variants = text_variants(texts, args.distill_variants, args.seed)
    labels_path = run_dir / "variant_labels.npy"
    kept = {}

    def compute():
        started = time.time()
        kept["labels"] = score(variants).astype("float32")
        print(f"distillation: the teacher scores {len(variants)} variants of the reviews")
        return {
            "copies": args.distill_variants,
            "variants": len(variants),
            "seconds": round(time.time() - started, 1),
        }

    record = common.saved_step(
        run_dir,
        "variant_labels",
        lambda: kept.update(labels=np.load(labels_path)),
        compute,
        lambda: np.save(labels_path, kept["labels"]),
    )
    return variants, kept["labels"], record
