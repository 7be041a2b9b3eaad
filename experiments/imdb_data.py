"""IMDB data for experiments/imdb.py: the tfds splits, the validation split, the vectorizer.

Everything here reads data as a user would (tensorflow-datasets, with
`data_dir` as one location among others) and returns NumPy arrays or tf.data
pipelines.
"""


def load_split(data_dir, name, count=None):
    """(texts, labels) NumPy arrays of one `imdb_reviews` split, through tensorflow-datasets.

    `name` is "train", "test" or "unsupervised" (50,000 reviews, label -1); `count`
    keeps the first reviews only.
    """
    import numpy as np
    import tensorflow_datasets as tfds

    spec = name if count is None else f"{name}[:{count}]"
    dataset = tfds.load("imdb_reviews", split=spec, data_dir=data_dir, as_supervised=True)
    texts, labels = [], []
    for text, label in tfds.as_numpy(dataset):
        texts.append(text)
        labels.append(label)
    return np.array(texts, dtype=object), np.array(labels, dtype="float32")


def validation_split(texts, labels, fraction, seed):
    """A fixed, seeded split of the training reviews into (train, validation)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(texts))
    n_val = int(round(fraction * len(texts)))
    val, train = order[:n_val], order[n_val:]
    return (texts[train], labels[train]), (texts[val], labels[val])


def make_vectorizer(texts, max_tokens, max_length, max_chars_per_token=20):
    """TextVectorization adapted on `texts` (training reviews only)."""
    import keras
    import tensorflow as tf

    import rnn_keras.text

    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=rnn_keras.text.ReviewStandardizer(max_chars=max_chars_per_token * max_length),
        output_sequence_length=max_length,
        name="vectorizer",
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    return vectorizer


def token_dataset(vectorizer, texts, labels, batch_size, shuffle_seed=None):
    import rnn_keras.text

    return rnn_keras.text.length_bucketed_batches(
        vectorizer, texts, labels, batch_size, shuffle_seed=shuffle_seed
    )
