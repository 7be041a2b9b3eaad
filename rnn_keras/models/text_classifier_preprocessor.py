"""`TextClassifierPreprocessor`: raw strings to the token ids a `SequenceClassifier` reads."""

import keras
import numpy as np

from rnn_keras.layers.text_preprocessing import ReviewStandardizer
from rnn_keras.models.preprocessor import Preprocessor

__all__ = ["TextClassifierPreprocessor"]


@keras.saving.register_keras_serializable(package="rnn_keras")
class TextClassifierPreprocessor(Preprocessor):
    """Raw strings `(batch,)` -> int32 token ids `(batch, time)` for a `SequenceClassifier`.

    A `keras.layers.TextVectorization` (the `tokenizer`) standardizes and splits
    each text (by default `ReviewStandardizer`: the text capped at
    `max_chars_per_token * sequence_length` bytes, invalid UTF-8 repaired,
    lowercased, HTML tags and punctuation removed) and keeps its first
    `sequence_length` tokens; id 0 is padding, id 1 out-of-vocabulary. A batch
    is then cut to its longest text (at least one step), so short texts do not
    pay for `sequence_length` steps; the model masks the padding, so each
    text's output does not depend on the batch it is in.

    Args:
        tokenizer: a `keras.layers.TextVectorization` with
            `output_sequence_length` set (None: one is built from the arguments
            below; call `adapt` before use).
        max_tokens: vocabulary size of the built tokenizer, padding and
            out-of-vocabulary ids included.
        sequence_length: tokens kept per text (the first ones).
        max_chars_per_token: the built tokenizer reads at most this many bytes
            per token kept, so a huge input costs no more than a long one.
        **kwargs: `name`, `dtype`.
    """

    def __init__(
        self,
        tokenizer=None,
        max_tokens=20000,
        sequence_length=512,
        max_chars_per_token=20,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if tokenizer is None:
            tokenizer = keras.layers.TextVectorization(
                max_tokens=max_tokens,
                standardize=ReviewStandardizer(max_chars=max_chars_per_token * sequence_length),
                output_sequence_length=sequence_length,
                name="tokenizer",
            )
        elif isinstance(tokenizer, dict):
            tokenizer = keras.layers.deserialize(tokenizer)
        if not isinstance(tokenizer, keras.layers.TextVectorization):
            raise ValueError(
                "TextClassifierPreprocessor: `tokenizer` must be a keras.layers.TextVectorization."
                f" Received: tokenizer={tokenizer!r}"
            )
        length = tokenizer.get_config().get("output_sequence_length")
        if tokenizer.get_config().get("output_mode") != "int" or not length:
            raise ValueError(
                "TextClassifierPreprocessor: the tokenizer must output int ids with "
                "`output_sequence_length` set. Received: output_mode="
                f"{tokenizer.get_config().get('output_mode')!r}, output_sequence_length={length!r}"
            )
        self.tokenizer = tokenizer
        self.sequence_length = int(length)
        self.max_tokens = tokenizer.get_config().get("max_tokens")
        self.max_chars_per_token = max_chars_per_token

    def adapt(self, texts, batch_size=1024):
        """Learns the vocabulary from `texts` (a list, array or `tf.data` of strings)."""
        import tensorflow as tf

        if not isinstance(texts, tf.data.Dataset):
            texts = tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object))
            texts = texts.batch(batch_size)
        self.tokenizer.adapt(texts)

    def vocabulary_size(self):
        """How many ids the tokenizer gives (padding and out-of-vocabulary included)."""
        return self.tokenizer.vocabulary_size()

    def get_vocabulary(self):
        return self.tokenizer.get_vocabulary()

    def token_ids(self, x):
        """`(batch,)` strings -> int32 ids `(batch, time)`, cut to the longest text (>= 1 step)."""
        import tensorflow as tf

        x = tf.convert_to_tensor(x, tf.string)
        if x.shape.rank != 1:
            raise ValueError(
                "TextClassifierPreprocessor expects a batch of strings of shape (batch,). "
                f"Received: shape={tuple(x.shape)}"
            )
        ids = tf.cast(self.tokenizer(x), tf.int32)
        lengths = tf.math.count_nonzero(ids, axis=1, dtype=tf.int32)
        longest = tf.reduce_max(tf.concat([lengths, [1]], axis=0))  # >= 1, also for no text
        return ids[:, :longest]

    def call(self, x, y=None, sample_weight=None):
        return keras.utils.pack_x_y_sample_weight(self.token_ids(x), y, sample_weight)

    # -- serving -------------------------------------------------------------------------------

    def serving_endpoint(self, predict):
        """`(function, input_signature)` of an endpoint on raw text: `predict` (the task's
        outputs on token ids) after this preprocessor. The task's `serve(text: tf.string
        [None])`."""
        import tensorflow as tf

        signature = [tf.TensorSpec([None], tf.string, name="text")]
        return (lambda text: predict(self.token_ids(text))), signature

    def litert_metadata(self):
        """What `rnn_keras.export.on_device.ReviewClassifier` needs beside the `.tflite` file:
        the vocabulary, the length caps and the tokenizing rule (None when the tokenizer is
        not the default `ReviewStandardizer` on whitespace, which has no pure-Python twin)."""
        from rnn_keras.export.on_device import REVIEW_RULE

        config = self.tokenizer.get_config()
        standardize = config.get("standardize")
        if not isinstance(standardize, ReviewStandardizer) or config.get("split") != "whitespace":
            return None
        return {
            "kind": "review_classifier",
            "rule": REVIEW_RULE,
            "max_tokens": self.sequence_length,
            "max_bytes": standardize.max_chars,
            "vocabulary": self.get_vocabulary(),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "tokenizer": keras.layers.serialize(self.tokenizer),
            "max_tokens": self.max_tokens,
            "sequence_length": self.sequence_length,
            "max_chars_per_token": self.max_chars_per_token,
        }
