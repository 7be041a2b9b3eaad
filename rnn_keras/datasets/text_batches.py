"""Batches of reviews for `tf.data`: grouped by length for training, in order for scoring."""

import tensorflow as tf

__all__ = ["length_bucketed_batches", "score_texts"]


def length_bucketed_batches(
    vectorizer, texts, labels, batch_size, bucket_width=50, shuffle_seed=None
):
    """tf.data of `(int32 ids (batch, time), label)` batches, grouped by review length.

    `vectorizer` is a `TextVectorization` with `output_sequence_length`; its
    padding (id 0, which no token has) is stripped again so that texts of
    similar length share a batch and a batch of short texts runs few steps. The
    texts are vectorized once and cached; with `shuffle_seed` the order is
    reshuffled every epoch. The dataset has a known cardinality (computed from
    the texts' lengths), so progress bars count the steps of the first epoch too.
    """
    import numpy as np

    max_length = vectorizer.get_config()["output_sequence_length"]
    boundaries = list(range(bucket_width, max_length, bucket_width))

    def strip_padding(ids, label):
        length = tf.math.count_nonzero(ids, dtype=tf.int32)
        return tf.cast(ids[:length], tf.int32), label

    examples = (
        tf.data.Dataset.from_tensor_slices((texts, labels))
        .batch(1024)
        .map(lambda text, label: (vectorizer(text), label), num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(strip_padding, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
    )
    # One pass fills the cache and gives each bucket's size, hence the number of batches.
    lengths = np.fromiter(examples.map(lambda ids, _: tf.shape(ids)[0]).as_numpy_iterator(), int)
    bucket_sizes = np.bincount(np.searchsorted(boundaries, lengths, side="right"))
    num_batches = int(np.sum(-(-bucket_sizes // batch_size)))
    if shuffle_seed is not None:
        examples = examples.shuffle(len(lengths), seed=shuffle_seed, reshuffle_each_iteration=True)
    batches = examples.bucket_by_sequence_length(
        lambda ids, label: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
    )
    return batches.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(
        tf.data.AUTOTUNE
    )


def score_texts(model, vectorizer, texts, batch_size):
    """`model`'s output for each text (one value each), in the order of `texts`.

    Texts go through `length_bucketed_batches` (so short texts do not pay for
    `output_sequence_length` steps); each carries its index to put its score
    back in place.
    """
    import numpy as np

    indices = np.arange(len(texts), dtype="float32")  # exact in float32 below 2**24
    batches = length_bucketed_batches(vectorizer, texts, indices, batch_size)
    predict = tf.function(
        lambda ids: model(ids, training=False),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )
    scores = np.full(len(texts), np.nan, dtype="float32")
    for ids, index in batches:
        scores[index.numpy().astype("int64")] = predict(ids).numpy().reshape(-1)
    if np.isnan(scores).any():
        raise RuntimeError(
            f"score_texts: {int(np.isnan(scores).sum())} of {len(texts)} texts got no score "
            "from the pipeline (expected every text to be scored once)"
        )
    return scores
