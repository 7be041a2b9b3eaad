"""Truncated backpropagation through time (BPTT): a long token sequence as stream windows
for a stateful model, and the callback that resets its state between passes.

    ids = preprocessor.tokenize([text])[0][0].numpy()
    model.fit(stream_dataset(ids, batch_size=64, sequence_length=100),
              callbacks=[ResetStatesEachPass(model.backbone)], shuffle=False)

The maths. A sequence x_1..x_N is cut into B contiguous streams of
L = floor(N / B) tokens; stream j is x_{jL+1}..x_{(j+1)L}. With T =
`sequence_length`, window k of stream j is its tokens kT+1..kT+T (inputs) and
kT+2..kT+T+1 (targets: the next token of each input), for k = 0..K-1, K =
floor((L - 1) / T). Batch k stacks window k of every stream, so row j of batch
k + 1 continues row j of batch k, and a stateful model (`stateful=True`,
`batch_size=B`) that carries its state h from batch to batch reads each stream
from its start: the loss at step t conditions on every earlier token of the
stream, h_t = f(h_{t-1}, x_t), while the gradient of window k's loss stops at
the window's first step (d h_{kT} / d theta is not followed back into window
k - 1). That is BPTT truncated to T steps, at the cost of one forward pass.
Not read as inputs: the last ((L - 1) mod T) + 1 <= T tokens of each stream
and the N mod B tokens after the last stream.
The state must start from zero at every pass over the streams (and before an
evaluation, which reads its own streams): `ResetStatesEachPass`.
"""

import keras
import numpy as np

__all__ = ["stream_windows", "stream_dataset", "ResetStatesEachPass"]


def stream_windows(ids, batch_size, sequence_length):
    """(inputs, targets), each int `(windows, batch_size, sequence_length)`: batch k is
    window k of every one of `batch_size` contiguous streams of `ids` (see the module).

    Row j of batch k + 1 starts where row j of batch k ended; targets are the
    inputs shifted by one token. Raises ValueError when a stream is too short
    for one window (`sequence_length` + 1 tokens).

    Args:
        ids: a 1-D array of token ids (the whole text).
        batch_size: B, the number of parallel streams (the stateful model's batch size).
        sequence_length: T, the window length (steps of backpropagation).
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"stream_windows: `ids` must be 1-D. Received: shape={ids.shape}")
    stream_len = len(ids) // batch_size
    if stream_len < sequence_length + 1:
        raise ValueError(
            f"stream_windows: {len(ids)} tokens make {batch_size} streams of {stream_len}, "
            f"too short for one window of {sequence_length} (+1 target). Received: "
            f"len(ids)={len(ids)}, batch_size={batch_size}, sequence_length={sequence_length}"
        )
    streams = ids[: batch_size * stream_len].reshape(batch_size, stream_len)
    windows = (stream_len - 1) // sequence_length
    end = windows * sequence_length
    inputs = streams[:, :end].reshape(batch_size, windows, sequence_length)
    targets = streams[:, 1 : end + 1].reshape(batch_size, windows, sequence_length)
    return inputs.transpose(1, 0, 2), targets.transpose(1, 0, 2)


def stream_dataset(ids, batch_size, sequence_length):
    """`stream_windows` as a `tf.data.Dataset` of `(inputs, targets)` batches, in order.

    Do not shuffle it (the order is what carries the state across batches), and
    train with `fit(..., shuffle=False)`.
    """
    import tensorflow as tf

    inputs, targets = stream_windows(ids, batch_size, sequence_length)
    return tf.data.Dataset.from_tensor_slices((inputs, targets)).prefetch(tf.data.AUTOTUNE)


class ResetStatesEachPass(keras.callbacks.Callback):
    """Zeroes a stateful model's carried state at the start of every epoch and evaluation.

    Truncated BPTT (see the module): each pass over the streams reads them
    from their start, so it starts from zero state, and so does every
    evaluation (`fit` evaluates at the end of each epoch), whose streams are
    other texts.

    Args:
        layer: what holds the states: a `RecurrentBackbone` or any object with
            `reset_states()`.
    """

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def on_epoch_begin(self, epoch, logs=None):
        self.layer.reset_states()

    def on_test_begin(self, logs=None):
        self.layer.reset_states()
