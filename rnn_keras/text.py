"""Text standardization for `keras.layers.TextVectorization`, safe for raw user text.

Lives in the library (not in an experiment) so that a `.keras` file holding a
`TextVectorization` with this standardizer loads wherever `rnn_keras` is
importable; a SavedModel needs no Python at all, since the TensorFlow string ops
are traced into its graph.
"""

import keras
import tensorflow as tf

__all__ = ["ReviewStandardizer"]

# Keras's default punctuation set (TextVectorization's DEFAULT_STRIP_REGEX) minus the
# apostrophe, which is removed rather than replaced, so "don't" stays one token.
_PUNCTUATION = r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~]'


@keras.saving.register_keras_serializable(package="rnn_keras")
class ReviewStandardizer:
    """TextVectorization `standardize`: cap, repair, lowercase, strip tags and punctuation.

    1. Keep at most `max_chars` bytes of each text, so a huge input costs no more
       than a normal one (None keeps everything).
    2. Repair invalid UTF-8 (a multi-byte character cut by the cap, or bad bytes
       from the user) with U+FFFD instead of failing.
    3. Lowercase (Unicode-aware), replace HTML tags such as IMDB's `<br />` with a
       space, drop apostrophes, and replace other ASCII punctuation with a space.

    Args:
        max_chars: the cap in bytes, or None.
    """

    def __init__(self, max_chars=None):
        if max_chars is not None and (not isinstance(max_chars, int) or max_chars <= 0):
            raise ValueError(
                f"ReviewStandardizer: `max_chars` must be a positive integer or None. "
                f"Received: max_chars={max_chars!r}"
            )
        self.max_chars = max_chars

    def __call__(self, text):
        if self.max_chars is not None:
            text = tf.strings.substr(text, 0, self.max_chars, unit="BYTE")
        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replace_control_characters=True
        )
        text = tf.strings.lower(text, encoding="utf-8")
        text = tf.strings.regex_replace(text, r"<[^>]*>", " ")
        text = tf.strings.regex_replace(text, "'", "")
        return tf.strings.regex_replace(text, _PUNCTUATION, " ")

    def get_config(self):
        return {"max_chars": self.max_chars}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
