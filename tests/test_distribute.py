"""rnn_keras under tf.distribute: MirroredStrategy over two logical CPUs against one device,
and stateful layers under several replicas."""

import json
import os
import subprocess
import sys

import numpy as np

# Runs in a fresh process: logical devices must be set before TensorFlow initialises its own.
TWO_CPUS = """
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
import rnn_keras
"""

MIRRORED_TRAINING = """
rng = np.random.default_rng(0)
ids = rng.integers(1, 20, (32, 9)).astype("int32")
for row, length in enumerate(rng.integers(2, 10, 32)):
    ids[row, length:] = 0  # right padding, masked: every row has its own length
labels = rng.integers(0, 2, (32, 1)).astype("float32")


def model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 6, mask_zero=True)(inputs)
    for layer, units, return_sequences in (
        (rnn_keras.SimpleRNN, 5, True),
        (rnn_keras.LSTM, 5, True),
        (rnn_keras.GRU, 4, False),
    ):  # the fused kernel (the default), each direction in two batch slices (on a CPU)
        x = keras.layers.Bidirectional(layer(units, return_sequences=return_sequences))(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(keras.optimizers.SGD(0.5), "binary_crossentropy", jit_compile=False)
    return model


response = {}
for name, strategy in (
    ("one_device", tf.distribute.get_strategy()),
    ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
):
    with strategy.scope():
        trained = model()
    # 16 rows per step, 8 per replica; 2 steps per epoch, 3 epochs.
    history = trained.fit(ids, labels, batch_size=16, epochs=3, shuffle=False, verbose=0)
    layers = [
        layer
        for layer in trained._flatten_layers()
        if isinstance(layer, (rnn_keras.SimpleRNN, rnn_keras.LSTM, rnn_keras.GRU))
    ]
    response[name] = {
        "replicas": strategy.num_replicas_in_sync,
        "layers": [type(layer).__name__ for layer in layers],
        "fast_path": [layer.uses_fast_path() for layer in layers],
        "batch_splits": [layer.resolved_batch_splits() for layer in layers],
        "loss": history.history["loss"],
        "weights": [w.tolist() for w in trained.get_weights()],
    }
"""


def run_on_two_cpus(code, tmp_path):
    program = "import json\n" + TWO_CPUS + code + "\nprint('@@' + json.dumps(response))\n"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout[result.stdout.rindex("@@") + 2 :])


def test_mirrored_training_equals_one_device_for_every_cell(tmp_path):
    """The same global batches on two replicas and on one device: the same losses and weights.

    SimpleRNN, LSTM and GRU, masked and bidirectional, stacked, on the fused fast path with
    its batch split. Tolerance: 1e-5 relative, 1e-6 absolute (float32 sums in another order:
    each replica's half of the batch, then the all-reduce).
    """
    runs = run_on_two_cpus(MIRRORED_TRAINING, tmp_path)
    one, mirrored = runs["one_device"], runs["mirrored"]
    assert (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert one["layers"] == mirrored["layers"]
    assert sorted(set(one["layers"])) == ["GRU", "LSTM", "SimpleRNN"] and len(one["layers"]) == 6
    assert one["fast_path"] == mirrored["fast_path"] == [True] * 6
    assert one["batch_splits"] == [2] * 6
    np.testing.assert_allclose(mirrored["loss"], one["loss"], rtol=1e-5, atol=1e-6)
    assert one["loss"][-1] < one["loss"][0]  # it trained
    assert len(mirrored["weights"]) == len(one["weights"]) == 1 + 6 * 3 + 2
    for index, (got, expected) in enumerate(zip(mirrored["weights"], one["weights"], strict=True)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=f"weight {index}")


STATEFUL_UNDER_TWO_REPLICAS = """
response = {}
for replicas in (1, 2):
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
    try:
        with strategy.scope():
            rnn_keras.RecurrentBackbone(
                "gru", 4, vocabulary_size=9, embedding_dim=3, stateful=True, batch_size=8
            )
        response[replicas] = "built"
    except ValueError as error:
        response[replicas] = str(error)
"""


def test_a_stateful_backbone_refuses_several_replicas_and_builds_under_one(tmp_path):
    results = run_on_two_cpus(STATEFUL_UNDER_TWO_REPLICAS, tmp_path)
    assert results["1"] == "built"
    assert results["2"].startswith("GRU(stateful=True) cannot run under a tf.distribute")
    assert "the 8 rows of the whole batch" in results["2"]
    assert "Received: MirroredStrategy with 2 replicas in sync" in results["2"]
