"""Datasets: loaders that download from the official source with `keras.utils.get_file` or
tensorflow-datasets (or read a copy given as `data_dir`), their splits, and `tf.data`
batching.

    adding.py           the adding problem (Hochreiter & Schmidhuber 1997)
    imdb.py             IMDB reviews and the movie-disjoint validation split
    text_batches.py     length-bucketed review batches, scoring in order
    char_windows.py     a character stream as parallel windows (truncated BPTT)
    multi30k.py         Multi30K German-English
    fsdd.py             the Free Spoken Digit Dataset and connected digit strings
    chorales.py         JSB Chorales as piano rolls, MIDI files, pictures
    feature_windows.py  forecasting windows of an hourly table (Beijing PM2.5)
"""

from rnn_keras.datasets import (
    adding,
    char_windows,
    chorales,
    feature_windows,
    fsdd,
    imdb,
    multi30k,
    text_batches,
)
from rnn_keras.datasets.adding import (
    adding_problem,
    adding_problem_batch,
    adding_problem_dataset,
)

__all__ = [
    "adding",
    "adding_problem",
    "adding_problem_batch",
    "adding_problem_dataset",
    "char_windows",
    "chorales",
    "feature_windows",
    "fsdd",
    "imdb",
    "multi30k",
    "text_batches",
]
