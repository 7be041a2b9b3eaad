"""Self-training for experiments/imdb.py (`--pseudo-label-confidence`): teacher, then labels.

A teacher trained exactly as the default classifier scores the unlabelled
reviews; the ones it is confident about join the training data of a fresh
student (the run's classifier). Each stage is saved in the run folder, so a
resumed run skips what it had finished.
"""

import time

import common
from imdb_data import load_split, token_dataset


def pseudo_labelled_data(args, run_dir, vectorizer, labelled, new_classifier, fit):
    """(the student's training data, the record for metrics.json).

    `labelled` is the (texts, labels) of the training data, `new_classifier()`
    returns a compiled classifier and `fit(model, phase)` trains it as the
    run's classifier is trained, returning (History, seconds).
    """
    import numpy as np

    teacher, teacher_record = train_teacher(run_dir, new_classifier, fit)
    texts, labels, labelling = pseudo_label(args, run_dir, vectorizer, teacher)
    student_ds = token_dataset(
        vectorizer,
        np.concatenate([labelled[0], texts]),
        np.concatenate([labelled[1], labels]),
        args.batch_size,
        args.seed,
    )
    return student_ds, {"teacher": teacher_record, "pseudo_labels": labelling}


def train_teacher(run_dir, new_classifier, fit):
    """Self-training's first model, trained as usual; saved so a resumed run skips it."""
    weights_path = str(run_dir / "teacher.weights.h5")
    teacher = new_classifier()

    def compute():
        history, seconds = fit(teacher, "_teacher")
        return {
            "history": common.history_dict(history),
            "best_val_accuracy": float(max(history.history["val_accuracy"])),
            "seconds": round(seconds, 1),
        }

    record = common.saved_step(
        run_dir,
        "teacher",
        lambda: teacher.load_weights(weights_path),
        compute,
        lambda: teacher.save_weights(weights_path),
    )
    return teacher, record


def pseudo_label(args, run_dir, vectorizer, teacher):
    """Self-training's data: the unlabelled reviews the teacher is confident about.

    Keeps the reviews scored >= c or <= 1 - c (c = --pseudo-label-confidence),
    labelled 1 or 0. Returns (texts, labels, record); the labels and the record
    are saved in the run folder, so a resumed run does not score them again.
    """
    import numpy as np

    import rnn_keras.text

    labels_path = run_dir / "pseudo_labels.npz"
    texts, _ = load_split(args.data_dir, "unsupervised", args.pseudo_label_reviews)
    kept = {}

    def compute():
        started = time.time()
        scores = rnn_keras.text.score_texts(teacher, vectorizer, texts, args.batch_size)
        confidence = args.pseudo_label_confidence
        kept["indices"] = np.flatnonzero((scores >= confidence) | (scores <= 1.0 - confidence))
        kept["labels"] = labels = (scores[kept["indices"]] >= 0.5).astype("float32")
        print(
            f"self-training: the teacher labels {len(labels)} of {len(texts)} unlabelled "
            f"reviews (confidence >= {confidence}; {labels.mean() if len(labels) else 0:.1%} "
            "positive)"
        )
        return {
            "confidence": confidence,
            "unlabelled_reviews": len(texts),
            "kept": len(labels),
            "kept_positive_fraction": float(labels.mean()) if len(labels) else None,
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
