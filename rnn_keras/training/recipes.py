"""The recipes behind the shipped models: n-gram teachers, distillation data, and
language-model pretraining, each a step of a run that a killed run does not redo.

The IMDB model (experiments/imdb.py) is trained as Tang et al. (2019) distil a
teacher into a small recurrent student (`compile_binary_classifier`):

    teacher, record = recipes.ngram_teacher(labelled, validation, run_dir=run)   # NB-SVM
    texts, labels, _ = recipes.pseudo_labels(teacher_scores, unlabelled, run_dir=run)
    variants, soft, _ = recipes.labelled_variants(teacher_scores, texts, copies=2, seed=1,
                                                  run_dir=run)

then the student (a `SequenceClassifier`) fits the labelled reviews, the
teacher's probabilities on the unlabelled ones and on random variants of both;
`ensemble_with_teacher` serves the two mixed, the student's weight chosen on
validation, and `ensemble_test` measures the student, the teacher and the mixture.
Every step records itself in `run_dir` (`rnn_keras.training.saved_step`), so a
run killed and started again skips what it had finished.
"""

import re
import time
from pathlib import Path

import numpy as np

from rnn_keras.training.fit import history_dict, resumable_fit, saved_step

__all__ = [
    "compile_binary_classifier",
    "distillation_data",
    "ensemble_test",
    "ensemble_with_teacher",
    "labelled_variants",
    "ngram_classifier",
    "ngram_teacher",
    "ngram_training",
    "optimizer",
    "predict_texts",
    "pretrain_language_model",
    "pseudo_labels",
    "self_training_data",
    "student_and_teacher_scores",
    "text_batches",
    "text_variants",
    "train_ngram_classifier",
    "train_once",
    "training_record",
]

NGRAM_FEATURES = ("tf_idf", "nb")
NGRAM_TEACHERS = {"ngrams": "tf_idf", "nb-ngrams": "nb"}  # teacher name: its features


def text_batches(texts, labels, batch_size, seed=None):
    """tf.data of `(raw text, label)` batches; reshuffled every epoch when `seed` is given."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((texts, labels))
    if seed is not None:
        data = data.shuffle(len(texts), seed=seed)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def ngram_classifier(texts, labels=None, *, max_tokens=100_000, ngrams=2, max_chars=30_000):
    """Raw strings `(batch,)` -> probability positive `(batch, 1)`: logistic regression on n-grams.

    A `TextVectorization` of words and n-grams up to `ngrams` (the `max_tokens`
    most frequent in `texts`, standardized by `ReviewStandardizer`, which reads
    the first `max_chars` bytes of a text: all of any IMDB review, at most 14,282
    bytes, while a huge input costs no more than that) feeds one
    `Dense(1, activation="sigmoid")`. Without `labels`: tf-idf features. With
    the training `labels` (0/1): NBSVM features (Wang & Manning 2012), each
    n-gram's presence x_i in {0, 1} times its naive-Bayes log-count ratio

        r_i = log((p_i / |p|) / (q_i / |q|)),

    p_i and q_i its counts in positive and negative texts plus one.
    """
    import keras
    import tensorflow as tf

    from rnn_keras.layers.text_preprocessing import FeatureWeights, ReviewStandardizer

    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=ReviewStandardizer(max_chars=max_chars),
        ngrams=ngrams,
        output_mode="tf_idf" if labels is None else "multi_hot",
        name="ngrams",
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    text = keras.Input(shape=(), dtype="string", name="text")
    features = vectorizer(text)
    if labels is not None:
        counts = np.ones((2, vectorizer.vocabulary_size()))
        for batch, batch_labels in text_batches(texts, labels, 1024):
            present = vectorizer(batch).numpy()
            for label in (0, 1):
                counts[label] += present[batch_labels.numpy() == label].sum(axis=0)
        ratio = np.log(counts[1] / counts[1].sum()) - np.log(counts[0] / counts[0].sum())
        features = FeatureWeights(len(ratio), ratio.astype("float32"), name="nb_ratios")(features)
    probability = keras.layers.Dense(1, activation="sigmoid", name="logistic")(features)
    return keras.Model(text, probability, name="ngram_baseline")


def ngram_training(
    train,
    validation,
    *,
    run_dir,
    features="tf_idf",
    max_tokens=100_000,
    ngrams=2,
    epochs=30,
    batch_size=256,
    learning_rate=1e-3,
    patience=2,
    seed=1337,
    phase="",
    verbose="auto",
):
    """(compiled model, fit): `ngram_classifier` on `train` = (texts, labels), and the call
    `fit()` -> (History, seconds) that trains it.

    Adam, binary cross-entropy, early stopping on `validation`'s accuracy (best
    weights restored), through `rnn_keras.training.resumable_fit` in `run_dir`.
    `features`: "tf_idf" or "nb" (NBSVM).
    """
    import keras

    if features not in NGRAM_FEATURES:
        raise ValueError(
            f"ngram_training: `features` must be one of {NGRAM_FEATURES}. "
            f"Received: features={features!r}"
        )
    texts, labels = train
    model = ngram_classifier(
        texts, labels if features == "nb" else None, max_tokens=max_tokens, ngrams=ngrams
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )

    def fit():
        return resumable_fit(
            model,
            text_batches(texts, labels, batch_size, seed),
            text_batches(*validation, batch_size),
            run_dir=run_dir,
            epochs=epochs,
            patience=patience,
            monitor="val_accuracy",
            mode="max",
            phase=phase,
            verbose=verbose,
        )

    return model, fit


def train_ngram_classifier(train, validation, **kwargs):
    """(model, History, seconds): `ngram_training`'s model (`kwargs` are its), trained."""
    model, fit = ngram_training(train, validation, **kwargs)
    return (model, *fit())


def training_record(name, history, seconds):
    """A trained model's entry in a run's metrics: its name, history, best validation
    accuracy and training seconds."""
    return {
        "model": name,
        "history": history_dict(history),
        "best_val_accuracy": float(max(history.history["val_accuracy"])),
        "seconds": round(seconds, 1),
    }


def train_once(model, fit, *, run_dir, name="teacher", label=None):
    """Trains `model` with `fit()` (returning History and seconds) once per run folder.

    Its weights go to `run_dir/<name>.weights.h5` and its `training_record` (named
    `label`, default `name`) to `run_dir/<name>.json`; in a resumed run the weights
    are loaded instead. Returns the record.
    """
    weights_path = str(Path(run_dir) / f"{name}.weights.h5")
    return saved_step(
        run_dir,
        name,
        lambda: model.load_weights(weights_path),
        lambda: training_record(label or name, *fit()),
        lambda: model.save_weights(weights_path),
    )


def predict_texts(model, texts, batch_size=1024):
    """A raw-text model's first output for each text, as a NumPy vector."""
    data = text_batches(texts, np.zeros(len(texts), "float32"), batch_size)
    return model.predict(data, verbose=0)[:, 0]


def ngram_teacher(train, validation, *, run_dir, teacher="nb-ngrams", name="teacher", **kwargs):
    """(model, record): `ngram_training`'s model as a teacher, trained once per run folder.

    `teacher`: "ngrams" (tf-idf features) or "nb-ngrams" (NBSVM). A resumed
    run rebuilds the model (the vocabulary and NB ratios from `train` again)
    and loads the weights saved by `train_once`. `kwargs` are `ngram_training`'s.
    """
    if teacher not in NGRAM_TEACHERS:
        raise ValueError(
            f"ngram_teacher: `teacher` must be one of {tuple(NGRAM_TEACHERS)}. "
            f"Received: teacher={teacher!r}"
        )
    model, fit = ngram_training(
        train,
        validation,
        run_dir=run_dir,
        features=NGRAM_TEACHERS[teacher],
        phase=f"_{name}",
        **kwargs,
    )
    return model, train_once(model, fit, run_dir=run_dir, name=name, label=teacher)


def pseudo_labels(score, texts, *, confidence=0.5, soft=True, run_dir, name="pseudo_labels"):
    """Self-training data: the `texts` the teacher is confident about, with its labels.

    `score(texts)` returns the teacher's probability positive p. Keeps the texts
    with p >= c or p <= 1 - c (c = `confidence`; 0.5 keeps all), labelled p
    (`soft`) or 1[p >= 0.5]. Returns (texts, labels, record); the labels are
    saved in `run_dir`, so a resumed run does not score again.
    """
    if not 0.5 <= confidence < 1.0:
        raise ValueError(
            f"pseudo_labels: `confidence` must be in [0.5, 1). Received: confidence={confidence}"
        )
    labels_path = Path(run_dir) / f"{name}.npz"
    kept = {}

    def compute():
        started = time.time()
        scores = score(texts)
        kept["indices"] = np.flatnonzero((scores >= confidence) | (scores <= 1.0 - confidence))
        chosen = scores[kept["indices"]]
        kept["labels"] = labels = (chosen if soft else chosen >= 0.5).astype("float32")
        positive = float((labels >= 0.5).mean()) if len(labels) else None
        kind = "soft" if soft else "hard"
        print(
            f"self-training: the teacher labels {len(labels)} of {len(texts)} unlabelled "
            f"reviews (confidence >= {confidence}; {positive or 0:.1%} positive, {kind} labels)"
        )
        return {
            "confidence": confidence,
            "labels": kind,
            "unlabelled_reviews": len(texts),
            "kept": len(labels),
            "kept_positive_fraction": positive,
            "seconds": round(time.time() - started, 1),
        }

    record = saved_step(
        run_dir,
        name,
        lambda: kept.update(np.load(labels_path)),
        compute,
        lambda: np.savez(labels_path, **kept),
    )
    return texts[kept["indices"]], kept["labels"], record


def distillation_data(
    score, labelled, unlabelled, *, confidence=0.5, soft=True, copies=2, seed=0, run_dir
):
    """The student's training data: `labelled` = (texts, labels), the `unlabelled` texts the
    teacher is confident about with its labels (`pseudo_labels`), and `copies` variants
    of each of these texts labelled with the teacher's probability (`labelled_variants`;
    none when `copies` is 0). Returns ((texts, labels), record)."""
    texts, labels, labelling = pseudo_labels(
        score, unlabelled, confidence=confidence, soft=soft, run_dir=run_dir
    )
    texts = np.concatenate([labelled[0], texts])
    labels = np.concatenate([labelled[1], labels])
    variant_record = None
    if copies:
        variants, variant_labels, variant_record = labelled_variants(
            score, texts, copies=copies, seed=seed, run_dir=run_dir
        )
        texts = np.concatenate([texts, variants])
        labels = np.concatenate([labels, variant_labels])
    return (texts, labels), {"pseudo_labels": labelling, "variants": variant_record}


def self_training_data(
    labelled,
    validation,
    unlabelled,
    *,
    run_dir,
    teacher="nb-ngrams",
    fit_teacher=None,
    confidence=0.5,
    soft=True,
    copies=2,
    seed=0,
    batch_size=64,
    verbose="auto",
    **ngram_kwargs,
):
    """Self-training and distillation: ((texts, labels) for the student, record, teacher).

    The teacher is trained once per run folder: `teacher` "ngrams" or "nb-ngrams"
    is `ngram_teacher` with tf-idf or NBSVM features (`ngram_kwargs` are
    `ngram_training`'s); a `SequenceClassifier` with a
    `TextClassifierPreprocessor` is trained by `fit_teacher()` (`train_once`).
    It then scores the `unlabelled` texts and the variants for
    `distillation_data` (`confidence`, `soft`, `copies`, `seed`). The record
    holds each step's and their total `seconds`.
    """
    from rnn_keras.datasets.text_batches import score_texts

    if teacher in NGRAM_TEACHERS:
        model, record = ngram_teacher(
            labelled,
            validation,
            run_dir=run_dir,
            teacher=teacher,
            seed=seed,
            verbose=verbose,
            **ngram_kwargs,
        )

        def score(texts):
            return predict_texts(model, texts)

    else:
        model = teacher
        record = train_once(teacher, fit_teacher, run_dir=run_dir, label="rnn")

        def score(texts):
            return score_texts(teacher, teacher.preprocessor.tokenizer, texts, batch_size)

    data, records = distillation_data(
        score,
        labelled,
        unlabelled,
        confidence=confidence,
        soft=soft,
        copies=copies,
        seed=seed,
        run_dir=run_dir,
    )
    records = {"teacher": record, **records}
    records["seconds"] = sum((step or {}).get("seconds", 0.0) for step in records.values())
    return data, records, model


def optimizer(learning_rate=1e-3, *, clipnorm=1.0, weight_decay=0.0, decay_steps=None):
    """Adam clipped by global norm `clipnorm` (AdamW when `weight_decay` > 0); with
    `decay_steps`, the learning rate follows a cosine decay from `learning_rate` to 0
    over that many steps."""
    import keras

    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    if weight_decay:
        return keras.optimizers.AdamW(
            learning_rate, weight_decay=weight_decay, global_clipnorm=clipnorm
        )
    return keras.optimizers.Adam(learning_rate, global_clipnorm=clipnorm)


def compile_binary_classifier(
    classifier, learning_rate=1e-3, *, clipnorm=1.0, weight_decay=0.0, decay_steps=None
):
    """Compiles a classifier of one sigmoid output as the IMDB student is: `optimizer(...)`
    (these arguments are its), binary cross-entropy, and an accuracy that counts a soft label
    as the class it leans to (`rounded_binary_accuracy`); no XLA, which makes the recurrent
    loop slower on a CPU (measured). Compiles in the strategy scope the model was built in.
    Returns the classifier."""
    import keras

    from rnn_keras.training.monitoring import rounded_binary_accuracy

    with classifier.distribute_strategy.scope():
        classifier.compile(
            optimizer=optimizer(
                learning_rate, clipnorm=clipnorm, weight_decay=weight_decay, decay_steps=decay_steps
            ),
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[keras.metrics.MeanMetricWrapper(rounded_binary_accuracy, name="accuracy")],
            jit_compile=False,
        )
    return classifier


def student_and_teacher_scores(student, teacher, texts, batch_size=64):
    """The student's and the teacher's probabilities for `texts`: the student (a classifier
    with a `TextClassifierPreprocessor`) through length-bucketed batches (`score_texts`;
    `TextEnsemble.member_probabilities` pads each batch to its longest review, about 3x the
    recurrent steps on IMDB), the raw-text teacher through `predict_texts`."""
    from rnn_keras.datasets.text_batches import score_texts

    if not len(texts):
        raise ValueError("student_and_teacher_scores: expected at least one text. Received: none")
    scores = score_texts(student, student.preprocessor.tokenizer, texts, batch_size)
    return scores, predict_texts(teacher, texts)


def ensemble_with_teacher(student, teacher, validation, batch_size=64, plot_path=None, name="imdb"):
    """(the `TextEnsemble` of the student and its n-gram teacher, the record): the student's
    weight is the most accurate on `validation` = (texts, labels) (`mixing_curve`,
    `mixing_weight`), the curve drawn to `plot_path` when given. The teacher is renamed
    "ngram_teacher" (the ensemble's member). The record: `{"student_weight",
    "validation_accuracy", "validation_curve"}`."""
    from rnn_keras.models.text_ensemble import (
        TextEnsemble,
        mixing_curve,
        mixing_weight,
        plot_mixing_curve,
    )

    texts, labels = validation
    labels = np.asarray(labels)
    first, second = student_and_teacher_scores(student, teacher, texts, batch_size)
    curve = mixing_curve(first, second, labels)
    weight = mixing_weight(curve)
    if plot_path is not None:
        plot_mixing_curve(
            curve, plot_path, "the recurrent student", "its n-gram teacher", chosen=weight
        )
    teacher.name = "ngram_teacher"
    served = TextEnsemble([student, teacher], [weight, 1 - weight], name=name)
    chosen = next(point for point in curve if point["weight"] == weight)
    print(
        f"ensemble: the student's weight {weight:.2f}, validation accuracy "
        f"{chosen['accuracy']:.4f} (student {np.mean((first >= 0.5) == labels):.4f}, "
        f"teacher {np.mean((second >= 0.5) == labels):.4f})"
    )
    return served, {
        "student_weight": weight,
        "validation_accuracy": chosen["accuracy"],
        "validation_curve": curve,
    }


def ensemble_test(student, teacher, student_weight, test, batch_size=64):
    """The accuracy and loss on `test` = (texts, labels) of the student, the teacher and their
    mixture with `student_weight` (`mixture_figures`): `{"student_accuracy", "student_loss",
    "teacher_accuracy", ..., "ensemble_loss"}`."""
    from rnn_keras.models.text_ensemble import mixture_figures

    texts, labels = test
    first, second = student_and_teacher_scores(student, teacher, texts, batch_size)
    weights = {"student": 1.0, "teacher": 0.0, "ensemble": student_weight}
    figures = mixture_figures(first, second, np.asarray(labels), weights)
    print(
        "test accuracy: student {student_accuracy:.4f}, teacher {teacher_accuracy:.4f}, "
        "ensemble {ensemble_accuracy:.4f}".format(**figures)
    )
    return figures


def text_variants(texts, copies, seed, min_fraction=0.5, mask_rate=0.1, mask="xxmask"):
    """`copies` random variants of each text, copy-major: a contiguous crop of a uniform
    `min_fraction`-100% of its words, then each word replaced by `mask` (a word no
    vocabulary holds) with probability `mask_rate` (Tang et al. 2019's distillation
    data, with crops for n-gram sampling). HTML tags are dropped first."""
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


def labelled_variants(score, texts, *, copies, seed, run_dir, name="variant_labels"):
    """Distillation data: `text_variants(texts, copies, seed)` labelled with the teacher's
    probability `score(variants)`. The labels are saved in `run_dir`; the variants
    are drawn again (same seed) on resume. Returns (variants, labels, record)."""
    variants = text_variants(texts, copies, seed)
    labels_path = Path(run_dir) / f"{name}.npy"
    kept = {}

    def compute():
        started = time.time()
        kept["labels"] = np.asarray(score(variants)).astype("float32")
        print(f"distillation: the teacher scores {len(variants)} variants of the reviews")
        seconds = round(time.time() - started, 1)
        return {"copies": copies, "variants": len(variants), "seconds": seconds}

    record = saved_step(
        run_dir,
        name,
        lambda: kept.update(labels=np.load(labels_path)),
        compute,
        lambda: np.save(labels_path, kept["labels"]),
    )
    return variants, kept["labels"], record


def pretrain_language_model(
    backbone,
    train_data,
    validation_data,
    *,
    vocabulary_size,
    run_dir,
    epochs,
    learning_rate=1e-3,
    clipnorm=1.0,
    patience=3,
    verbose="auto",
    name="pretraining",
    weights_file="pretrained.weights.h5",
):
    """ELMo-style pretraining of `backbone` as a `LanguageModel`, once per run folder.

    `train_data` and `validation_data` are tf.data of `(token ids, anything)`
    batches, as a classifier on `backbone` reads them; the language model
    predicts the next id among the `vocabulary_size` most frequent (others are
    out-of-vocabulary). The backbone object itself is trained, so a classifier
    on it starts from the pretrained weights. Returns the record (a resumed run
    loads the weights saved in `run_dir/<weights_file>`; the record is `<name>.json`).
    """
    import keras

    from rnn_keras.models.language_model import LanguageModel

    weights_path = str(Path(run_dir) / weights_file)
    strategy = backbone.distribute_strategy
    with strategy.scope():
        language_model = LanguageModel(backbone, vocabulary_size)

    def compute():
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        with strategy.scope():
            language_model.compile(
                optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=clipnorm),
                loss=[loss] * len(language_model.outputs),
                jit_compile=False,
            )
        history, seconds = resumable_fit(
            language_model,
            language_model.examples(train_data),
            language_model.examples(validation_data),
            run_dir=run_dir,
            epochs=epochs,
            patience=patience,
            phase=f"_{name}",
            verbose=verbose,
        )
        return {
            "epochs": epochs,
            "predicted_vocabulary": vocabulary_size,
            "seconds": round(seconds, 1),
            "history": history_dict(history),
        }

    return saved_step(
        run_dir,
        name,
        lambda: language_model.load_weights(weights_path),
        compute,
        lambda: language_model.save_weights(weights_path),
    )
