"""rnn_keras.training.resumable_fit: a fit interrupted and run again resumes with the record
and the early stopping of the whole run; experiments/common.py: flags given with --quick."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_keras.training import resumable_fit

# The monitored value of each epoch, set by the test: epoch 2 (index 1) is the best.
SCORES = [0.5, 0.9, 0.6, 0.7, 0.65, 0.95]


class Scripted(keras.callbacks.Callback):
    """Sets `val_score` for each epoch; keeps every epoch's weights; raises at `stop_at`."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.stop_at, self.weights = stop_at, {}

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.stop_at:
            raise KeyboardInterrupt(f"interrupted at epoch {epoch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"] = SCORES[epoch]
        self.weights[epoch] = self.model.get_weights()


def new_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def fit(model, run_dir, scripted):
    x = np.random.default_rng(0).standard_normal((32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).batch(8)
    scored = {"monitor": "val_score", "mode": "max", "callbacks": [scripted]}
    return resumable_fit(
        model,
        data,
        data,
        run_dir=run_dir,
        epochs=len(SCORES),
        patience=2,
        verbose=0,
        step_logs=["loss"],
        **scored,
    )


def test_a_resumed_fit_records_every_epoch_and_keeps_the_best_weights_from_before(tmp_path):
    first = Scripted(stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        fit(new_model(), tmp_path, first)  # epochs 1-3 trained and backed up
    assert (tmp_path / "history.best_weights.npz").exists()

    again = Scripted()
    history, seconds = fit(new_model(), tmp_path, again)
    # Epoch 4 is the second without improvement on epoch 2 (patience 2): training stops there,
    # and the weights are epoch 2's, trained before the restart.
    assert sorted(again.weights) == [3]
    assert history.history["val_score"] == SCORES[:4]
    assert len(history.history["loss"]) == 4 and history.epoch == [0, 1, 2, 3]
    assert len(history.step_logs["loss"]) == 4 * 4  # 4 steps per epoch
    for got, expected in zip(again.model.get_weights(), first.weights[1], strict=True):
        np.testing.assert_array_equal(got, expected)
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["history"] == history.history
    assert 0 < record["seconds"][0] < record["seconds"][3] <= seconds
    assert not (tmp_path / "history.best_weights.npz").exists()
    assert not (tmp_path / "backup").exists()


def test_flags_given_with_quick_win_over_its_values():
    import imdb

    assert imdb.parse_train_args(["--quick"]).epochs == imdb.QUICK["epochs"] == 1
    args = imdb.parse_train_args(["--quick", "--epochs", "3", "--units", "8"])
    assert (args.epochs, args.units, args.batch_size) == (3, 8, imdb.QUICK["batch_size"])
    assert imdb.parse_train_args(["--epochs", "3"]).units == imdb.DEFAULTS["units"]
