"""IMDB reviews as a user loads them: the tensorflow-datasets splits and a validation split
that holds out whole movies (the test split's reviews are of movies the training split
does not have, so validation should not have them either).

Reads data through tensorflow-datasets, with `data_dir` as one location among others,
and returns NumPy arrays. The review -> movie map of the train split ships with the
package (`rnn_keras/data/imdb_train_movies.tsv.gz`, from Maas et al. 2011's urls files).
"""

from pathlib import Path

HASH_DIGITS = 16


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


MOVIE_MAP = Path(__file__).resolve().parent / "data" / "imdb_train_movies.tsv.gz"


def write_movie_map(csv_path, out_path=MOVIE_MAP):
    """Writes the compact train-split map shipped as `data/imdb_train_movies.tsv.gz`.

    `csv_path` is `imdb_reviews_movies.csv` (split, sha256, movie, ...; see
    ../shared/data/README.md). One line per (review, movie): the first 16 hex
    digits of the review's sha256 (unique among the 24,904 distinct texts), a tab,
    the IMDB title id. `python -m rnn_keras.imdb_reviews CSV` rewrites it.
    """
    import csv
    import gzip

    with open(csv_path, newline="") as f:
        rows = sorted(
            (row["movie"], row["sha256"][:HASH_DIGITS])
            for row in csv.DictReader(f)
            if row["split"] == "train"
        )
    # No file name and no time in the gzip header: the same CSV gives the same bytes.
    with open(out_path, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as f:
        f.write(
            b"# sha256[:16] of a train review as tensorflow-datasets yields it (bytes) TAB "
            b"its IMDB movie (Maas et al. 2011, urls_*.txt)\n"
        )
        f.writelines(f"{digest}\t{movie}\n".encode() for movie, digest in rows)


def read_movie_map(path=MOVIE_MAP):
    """{sha256 prefix: set of movies} of the train split, from the compact map or the full CSV."""
    import csv
    import gzip

    movies = {}
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        if str(path).endswith(".csv"):
            rows = csv.DictReader(f)
            pairs = ((row["sha256"], row["movie"]) for row in rows if row["split"] == "train")
        else:
            pairs = (line.rstrip("\n").split("\t") for line in f if not line.startswith("#"))
        for digest, movie in pairs:
            movies.setdefault(digest[:HASH_DIGITS], set()).add(movie)
    return movies


def movie_groups(texts, movie_map):
    """One group id per review: reviews of one movie share it, and so do movies linked by a
    text that maps to both (duplicates). Returns (groups, number of unmatched reviews);
    an unmatched review is a group of its own."""
    import hashlib

    import numpy as np

    parent = {}

    def root(node):
        while parent.setdefault(node, node) != node:
            parent[node] = node = parent[parent[node]]
        return node

    nodes, unmatched = [], 0
    for index, text in enumerate(texts):
        movies = movie_map.get(hashlib.sha256(text).hexdigest()[:HASH_DIGITS])
        if not movies:
            unmatched += 1
            movies = {("review", index)}
        first, *others = sorted(movies, key=str)
        for other in others:
            parent[root(other)] = root(first)
        nodes.append(first)
    roots = [root(node) for node in nodes]
    ids = {node: i for i, node in enumerate(dict.fromkeys(roots))}
    return np.array([ids[node] for node in roots]), unmatched


def validation_split(texts, labels, fraction, seed, by="movie", movie_map_path=MOVIE_MAP):
    """A fixed, seeded split of the training reviews into (train, validation, how).

    `by="movie"` holds out a seeded `fraction` of the training *movies* with all
    their reviews, so no movie is in both; validation then scores what test scores,
    reviews of unseen movies. Without the movie map (or when no review matches it,
    as with another dataset version) it falls back, with a warning, to `by="review"`:
    a seeded `fraction` of the reviews. `how` describes what was done (for the record).
    """
    import warnings

    import numpy as np

    rng = np.random.default_rng(seed)
    if by == "movie":
        try:
            groups, unmatched = movie_groups(texts, read_movie_map(movie_map_path))
        except OSError as error:
            groups, unmatched = None, len(texts)
            reason = f"cannot read the movie map ({error})"
        else:
            reason = f"no review matches the movie map {movie_map_path}"
        if unmatched == len(texts):
            warnings.warn(
                f"Validation falls back to a random {fraction:.0%} of the reviews: {reason}. "
                "Reviews of one movie are then on both sides, so validation accuracy "
                "overstates accuracy on new movies (the test split's).",
                stacklevel=2,
            )
            by = "review"
    if by == "movie":
        order = rng.permutation(groups.max() + 1)
        held = set(order[: int(round(fraction * len(order)))].tolist())
        is_val = np.isin(groups, list(held))
        how = {
            "by": "movie",
            "movies": int(groups.max() + 1),
            "validation_movies": len(held),
            "unmatched_reviews": unmatched,
        }
    elif by == "review":
        is_val = np.zeros(len(texts), bool)
        is_val[rng.permutation(len(texts))[: int(round(fraction * len(texts)))]] = True
        how = {"by": "review"}
    else:
        raise ValueError(f"validation_split: `by` must be 'movie' or 'review'. Received: {by!r}")
    val, train = np.flatnonzero(is_val), np.flatnonzero(~is_val)
    return (texts[train], labels[train]), (texts[val], labels[val]), how


if __name__ == "__main__":
    import sys

    write_movie_map(sys.argv[1])
