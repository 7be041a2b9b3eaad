"""Preprocessors: raw inputs (text, feature windows) to what a task's network reads.

As in keras-hub, a task holds a preprocessor and applies it in the input
pipeline: `fit`, `evaluate` and `predict` take raw inputs (lists or NumPy
arrays of strings, dicts of feature windows, or a `tf.data.Dataset` of them),
and the preprocessor is mapped over the batches, so the replicated network
only sees numbers. `task.export(path)` traces the preprocessor into the
SavedModel, which then serves raw inputs with no code of ours. A preprocessor
is a `keras.layers.Layer` whose `call(x, y=None, sample_weight=None)` returns
`x`, or `(x, y)`, or `(x, y, sample_weight)` (`keras.utils.pack_x_y_sample_weight`),
and is saved with the task in `.keras` files (vocabularies and statistics
included).
"""

import keras
import numpy as np

__all__ = ["Preprocessor"]


def _is_string_data(x):
    """Whether `x` (a Python value, NumPy array or tensor) holds strings."""
    import tensorflow as tf

    if isinstance(x, str | bytes):
        return True
    if isinstance(x, tf.Tensor | tf.RaggedTensor):
        return x.dtype == tf.string
    if isinstance(x, tf.TensorSpec | tf.RaggedTensorSpec):
        return x.dtype == tf.string
    if isinstance(x, list | tuple):
        return len(x) > 0 and all(isinstance(item, str | bytes) for item in x)
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "OSU"
    return False


class Preprocessor(keras.layers.Layer):
    """What every preprocessor shares: raw-input detection and packing of `(x, y, sw)`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def is_raw(self, x):
        """Whether `x` (a value or a `tf.data` element spec) is raw input for this preprocessor."""
        return _is_string_data(x)

    def compute_output_spec(self, *args, **kwargs):  # strings: no symbolic output spec
        raise NotImplementedError(f"{type(self).__name__} is called on data, not on keras.Input.")
