"""Synthetic long-range tasks: the adding problem (Hochreiter & Schmidhuber 1997).

    inputs, targets = rnn_keras.datasets.adding_problem(length=100, size=2000, seed=1337)
    stream = rnn_keras.datasets.adding_problem_dataset(length=100, batch_size=32, seed=1337)

Each sequence has T steps x_t = (v_t, m_t): a value v_t ~ U[0, 1] and a marker
m_t in {0, 1}. Exactly two steps are marked, one uniformly in [0, T // 2) and one
in [T // 2, T), so the two marked values lie about T / 2 apart and the first one
must be held across the second half. The target is

    y = sum_t m_t v_t,

whose mean is 1: predicting the constant 1 (ignoring the input) scores an MSE of
Var(v_i + v_j) = 2 / 12 = 1/6, the level a model must get well below.

The data is made with TensorFlow's stateless random ops (`tf.data` is the input
pipeline of Keras on every backend), so one seed gives the same data on every
run and machine: training batch i of length T comes from (seed, stream 0, T, i),
the fixed test set of length T from (seed, stream 1, T), so the two never share
a sequence, and every model trained with one seed sees the same batches.
"""

from functools import reduce

__all__ = ["adding_problem", "adding_problem_batch", "adding_problem_dataset"]

_TRAIN_STREAM, _TEST_STREAM = 0, 1


def adding_problem_batch(length, batch_size, seed):
    """One batch of the adding problem as tensors, from a stateless seed (usable in-graph).

    Args:
        length: T, the number of steps (>= 2).
        batch_size: the number of sequences.
        seed: a stateless seed, an int32 tensor of shape [2] (same seed, same batch).

    Returns:
        (inputs (batch_size, T, 2) float32: channel 0 the values, channel 1 the markers,
        targets (batch_size, 1) float32: the sum of the two marked values).
    """
    import tensorflow as tf

    _check_length(length)
    seeds, half = tf.random.experimental.stateless_split(seed, 3), length // 2
    values = tf.random.stateless_uniform([batch_size, length], seeds[0])
    first = tf.random.stateless_uniform([batch_size], seeds[1], 0, half, tf.int32)
    second = tf.random.stateless_uniform([batch_size], seeds[2], half, length, tf.int32)
    markers = tf.one_hot(first, length) + tf.one_hot(second, length)
    targets = tf.reduce_sum(values * markers, axis=1, keepdims=True)
    return tf.stack([values, markers], axis=-1), targets


def adding_problem(length, size, seed=0):
    """The fixed test set of the adding problem at one length, as NumPy arrays.

    Args:
        length: T, the number of steps (>= 2).
        size: the number of sequences.
        seed: an integer; the set depends on (seed, T) and on no other call.

    Returns:
        (inputs (size, T, 2), targets (size, 1)), float32 (see `adding_problem_batch`).
    """
    batch = adding_problem_batch(length, size, _stateless_seed(seed, _TEST_STREAM, length))
    return tuple(array.numpy() for array in batch)


def adding_problem_dataset(length, batch_size, seed=0):
    """An infinite `tf.data.Dataset` of adding-problem training batches, made in-graph.

    Batch i comes from (seed, T, i): the stream is the same on every iteration and
    run, and shares no sequence with `adding_problem(length, size, seed)`.

    Args:
        length: T, the number of steps (>= 2).
        batch_size: sequences per batch.
        seed: an integer.

    Returns:
        A dataset of (inputs (batch_size, T, 2), targets (batch_size, 1)) batches.
    """
    import tensorflow as tf

    _check_length(length)
    batches = tf.data.Dataset.counter().map(
        lambda i: adding_problem_batch(
            length, batch_size, _stateless_seed(seed, _TRAIN_STREAM, length, i)
        )
    )
    return batches.prefetch(tf.data.AUTOTUNE)


def _stateless_seed(seed, stream, *numbers):
    """A stateless seed: (seed, stream) with each of `numbers` (length, batch index) folded in."""
    import tensorflow as tf

    return reduce(tf.random.experimental.stateless_fold_in, numbers, tf.constant([seed, stream]))


def _check_length(length):
    if int(length) < 2:
        raise ValueError(
            "adding problem: `length` must be at least 2 (one marker in each half). "
            f"Received: length={length}"
        )
