"""rnn_keras.windows: truncated-BPTT stream windows and the state resets between passes."""

import keras
import numpy as np
import pytest

import rnn_keras
from rnn_keras import windows


def reference_windows(ids, batch_size, sequence_length):
    """Window k of stream j, token by token, as the module docstring defines it."""
    stream_len = len(ids) // batch_size
    count = (stream_len - 1) // sequence_length
    inputs = np.zeros((count, batch_size, sequence_length), ids.dtype)
    targets = np.zeros_like(inputs)
    for k in range(count):
        for j in range(batch_size):
            for t in range(sequence_length):
                position = j * stream_len + k * sequence_length + t
                inputs[k, j, t], targets[k, j, t] = ids[position], ids[position + 1]
    return inputs, targets


@pytest.mark.parametrize(("length", "batch_size", "sequence_length"), [(1000, 4, 10), (97, 3, 5)])
def test_stream_windows_match_the_definition(length, batch_size, sequence_length):
    ids = np.random.default_rng(0).integers(0, 50, length).astype("int32")
    inputs, targets = windows.stream_windows(ids, batch_size, sequence_length)
    expected = reference_windows(ids, batch_size, sequence_length)
    np.testing.assert_array_equal(inputs, expected[0])
    np.testing.assert_array_equal(targets, expected[1])


def test_consecutive_batches_continue_each_row():
    ids = np.arange(1000, dtype="int32")
    inputs, targets = windows.stream_windows(ids, batch_size=4, sequence_length=10)
    assert inputs.shape == targets.shape == (24, 4, 10)  # 250 per stream -> 24 windows of 10 (+1)
    np.testing.assert_array_equal(inputs[1:, :, 0], inputs[:-1, :, -1] + 1)  # row j continues j
    np.testing.assert_array_equal(targets, inputs + 1)  # next-token targets
    np.testing.assert_array_equal(inputs[0, :, 0], [0, 250, 500, 750])  # contiguous streams
    with pytest.raises(ValueError, match="too short for one window"):
        windows.stream_windows(ids[:30], batch_size=4, sequence_length=10)
    with pytest.raises(ValueError, match="must be 1-D"):
        windows.stream_windows(ids.reshape(10, 100), batch_size=2, sequence_length=3)


def test_stream_dataset_yields_the_windows_in_order():
    ids = np.arange(200, dtype="int32")
    inputs, targets = windows.stream_windows(ids, 2, 7)
    batches = list(windows.stream_dataset(ids, 2, 7).as_numpy_iterator())
    assert len(batches) == len(inputs)
    for k, (x, y) in enumerate(batches):
        np.testing.assert_array_equal(x, inputs[k])
        np.testing.assert_array_equal(y, targets[k])


def test_truncated_bptt_reads_each_stream_as_one_sequence():
    """A stateful model fed the stream batches in order computes, for every window, what a
    stateless model computes on the whole stream; the callback resets it for the next pass."""
    ids = np.random.default_rng(1).integers(1, 9, 3 * 25).astype("int32")
    keras.utils.set_random_seed(3)
    backbone = rnn_keras.RecurrentBackbone(
        "gru", 4, vocabulary_size=10, embedding_dim=3, mask_zero=False, stateful=True, batch_size=3
    )
    model = rnn_keras.LanguageModel(backbone)
    stateless = rnn_keras.LanguageModel(
        rnn_keras.RecurrentBackbone("gru", 4, vocabulary_size=10, embedding_dim=3, mask_zero=False)
    )
    stateless.set_weights(model.get_weights())
    inputs, _ = windows.stream_windows(ids, batch_size=3, sequence_length=6)
    reset = windows.ResetStatesEachPass(backbone)
    for _ in range(2):  # the second pass equals the first: the state was reset
        reset.on_epoch_begin(0)
        stepped = np.concatenate([model(x).numpy() for x in inputs], axis=1)
        whole = stateless(np.concatenate(list(inputs), axis=1)).numpy()
        np.testing.assert_allclose(stepped, whole, rtol=1e-5, atol=1e-6)
    model(inputs[0])
    reset.on_test_begin()
    np.testing.assert_allclose(model(inputs[0]).numpy(), whole[:, :6], rtol=1e-5, atol=1e-6)
