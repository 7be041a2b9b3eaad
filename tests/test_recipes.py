"""rnn_keras.recipes and the run-folder helpers of rnn_keras.training and rnn_keras.distribute:
each step once per run folder, resumed from what it saved."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_keras import distribute, recipes, training


def test_saved_step_computes_once_and_reloads_on_resume(tmp_path):
    calls = []

    def step():
        return training.saved_step(
            tmp_path,
            "teacher",
            load=lambda: calls.append("load"),
            compute=lambda: calls.append("compute") or {"seconds": 1.5},
            save=lambda: calls.append("save"),
        )

    assert step() == {"seconds": 1.5}
    assert step() == {"seconds": 1.5}
    assert calls == ["compute", "save", "load"]
    assert json.loads((tmp_path / "teacher.json").read_text()) == {"seconds": 1.5}


def test_atomic_replace_keeps_the_old_target_when_writing_fails(tmp_path):
    target = tmp_path / "export"
    training.atomic_replace(lambda tmp: tmp.mkdir() or (tmp / "a").write_text("1"), target)
    assert (target / "a").read_text() == "1"

    def broken(tmp):
        tmp.mkdir()
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        training.atomic_replace(broken, target)
    assert (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no leftovers
    training.atomic_replace(lambda tmp: tmp.mkdir() or (tmp / "b").write_text("2"), target)
    assert sorted(p.name for p in target.iterdir()) == ["b"]


def test_one_process_works_in_the_run_folder_itself(tmp_path):
    strategy = tf.distribute.get_strategy()
    assert not distribute.multi_worker(strategy) and distribute.is_chief(strategy)
    assert distribute.worker_run_dir(strategy, tmp_path) == tmp_path
    assert not distribute.remove_worker_run_dir(tmp_path) and tmp_path.is_dir()
    worker = tmp_path / f"{distribute.WORKER_FOLDER}1"
    worker.mkdir()
    assert distribute.remove_worker_run_dir(worker) and not worker.exists()
    with pytest.raises(ValueError, match="strategy: expected one of"):
        distribute.strategy("tpu")


def test_pseudo_labels_keep_the_confident_texts_and_are_not_scored_again(tmp_path):
    texts = np.array(["a", "b", "c", "d", "e"], dtype=object)
    scores = np.array([0.95, 0.5, 0.05, 0.8, 0.25], "float32")
    scored = []

    def score(batch):
        scored.append(len(batch))
        return scores

    kept, labels, record = recipes.pseudo_labels(score, texts, confidence=0.8, run_dir=tmp_path)
    assert list(kept) == ["a", "c", "d"]
    np.testing.assert_allclose(labels, [0.95, 0.05, 0.8])
    assert record["kept"] == 3 and record["kept_positive_fraction"] == pytest.approx(2 / 3)
    again = recipes.pseudo_labels(score, texts, confidence=0.8, run_dir=tmp_path)
    assert list(again[0]) == list(kept) and scored == [5]  # loaded, not scored again
    hard = recipes.pseudo_labels(
        score, texts, confidence=0.8, soft=False, run_dir=tmp_path / "hard"
    )
    np.testing.assert_array_equal(hard[1], [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"`confidence` must be in \[0.5, 1\)"):
        recipes.pseudo_labels(score, texts, confidence=0.4, run_dir=tmp_path)


def test_distillation_data_is_labelled_then_pseudo_labelled_then_variants(tmp_path):
    labelled = (np.array(["good film", "bad film"], dtype=object), np.array([1.0, 0.0]))
    unlabelled = np.array(["great acting here", "dull", "so so"], dtype=object)

    def score(texts):  # a teacher: the share of the letter "g"
        return np.array([t.count("g") / max(len(t), 1) * 5 for t in texts], "float32").clip(0, 1)

    (texts, labels), record = recipes.distillation_data(
        score, labelled, unlabelled, confidence=0.5, copies=2, seed=3, run_dir=tmp_path
    )
    assert len(texts) == len(labels) == (2 + 3) * 3  # each text and two variants of it
    assert list(texts[:5]) == ["good film", "bad film", *unlabelled]
    np.testing.assert_allclose(labels[5:], score(texts[5:]), rtol=1e-6)
    np.testing.assert_array_equal(texts[5:], recipes.text_variants(texts[:5], 2, seed=3))
    assert record["variants"]["variants"] == 10 and record["pseudo_labels"]["kept"] == 3


def test_optimizer_recipe():
    adam = recipes.optimizer(1e-2, clipnorm=0.5)
    assert isinstance(adam, keras.optimizers.Adam) and adam.global_clipnorm == 0.5
    adamw = recipes.optimizer(1e-2, weight_decay=0.1, decay_steps=10)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.1
    schedule = adamw.learning_rate if callable(adamw.learning_rate) else adamw._learning_rate
    # Cosine decay: half the peak half way, 0 at the end.
    assert float(schedule(5)) == pytest.approx(5e-3) and float(schedule(10)) == pytest.approx(0)


def test_train_once_loads_the_weights_in_a_resumed_run(tmp_path):
    x = np.random.default_rng(0).standard_normal((16, 2)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    fits = []

    def run():
        net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
        net.compile("sgd", "binary_crossentropy", metrics=["accuracy"])

        def fit():
            fits.append(1)
            return training.resumable_fit(
                net, data, data, run_dir=tmp_path, epochs=2, patience=2, verbose=0
            )

        return net, recipes.train_once(net, fit, run_dir=tmp_path, label="dense")

    first, record = run()
    again, same = run()
    assert len(fits) == 1 and same == record and record["model"] == "dense"
    assert record["best_val_accuracy"] == max(record["history"]["val_accuracy"])
    for got, expected in zip(again.get_weights(), first.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
