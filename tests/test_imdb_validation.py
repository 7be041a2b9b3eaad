"""IMDB's movie-disjoint validation (rnn_keras.imdb_reviews) and the n-gram baseline."""

import gzip
import hashlib

import helpers
import numpy as np
import pytest
from conftest import REPO_ROOT

from rnn_keras import imdb_reviews, recipes


def write_map(path, pairs):
    with gzip.open(path, "wt") as f:
        f.write("# test map\n")
        for text, movie in pairs:
            f.write(f"{hashlib.sha256(text).hexdigest()[:16]}\t{movie}\n")


def test_movie_groups_join_movies_that_share_a_text(tmp_path):
    texts = np.array([b"a", b"b", b"c", b"d", b"e", b"f"], dtype=object)
    # "c" is filed under two movies (a duplicate text), which joins m2 and m3; "f" is unknown.
    pairs = [(b"a", "m1"), (b"b", "m2"), (b"c", "m2"), (b"c", "m3"), (b"d", "m3"), (b"e", "m4")]
    write_map(tmp_path / "map.tsv.gz", pairs)
    groups, unmatched = imdb_reviews.movie_groups(
        texts, imdb_reviews.read_movie_map(tmp_path / "map.tsv.gz")
    )
    assert unmatched == 1
    assert groups[1] == groups[2] == groups[3]
    assert len({groups[0], groups[1], groups[4], groups[5]}) == 4


def test_validation_holds_out_whole_movies(tmp_path):
    rng = np.random.default_rng(0)
    movies = [f"tt{m}" for m in rng.integers(0, 40, size=400)]
    texts = np.array([f"review {i}".encode() for i in range(400)], dtype=object)
    write_map(tmp_path / "map.tsv.gz", zip(texts, movies, strict=True))
    labels = rng.integers(0, 2, size=400).astype("float32")
    (train, train_labels), (val, val_labels), how = imdb_reviews.validation_split(
        texts, labels, 0.1, 7, "movie", tmp_path / "map.tsv.gz"
    )
    movie_of = dict(zip(texts, movies, strict=True))
    assert not {movie_of[t] for t in train} & {movie_of[t] for t in val}
    assert sorted(np.concatenate([train, val]).tolist()) == sorted(texts.tolist())
    assert how["by"] == "movie" and how["validation_movies"] == 4 and how["unmatched_reviews"] == 0
    assert {movie_of[t] for t in val} == {m for m in movies if m in {movie_of[t] for t in val}}
    # Seeded: the same seed gives the same split, another seed another.
    again = imdb_reviews.validation_split(texts, labels, 0.1, 7, "movie", tmp_path / "map.tsv.gz")
    other = imdb_reviews.validation_split(texts, labels, 0.1, 8, "movie", tmp_path / "map.tsv.gz")
    assert again[1][0].tolist() == val.tolist() and other[1][0].tolist() != val.tolist()
    np.testing.assert_array_equal(val_labels, labels[[int(t.split()[1]) for t in val]])


def test_without_a_movie_map_validation_falls_back_to_random_reviews(tmp_path):
    texts = np.array([f"review {i}".encode() for i in range(100)], dtype=object)
    labels = np.zeros(100, "float32")
    with pytest.warns(UserWarning, match="falls back to a random 10% of the reviews"):
        _, (val, _), how = imdb_reviews.validation_split(
            texts, labels, 0.1, 0, "movie", tmp_path / "missing.tsv.gz"
        )
    assert how == {"by": "review"} and len(val) == 10
    write_map(tmp_path / "other.tsv.gz", [(b"another dataset", "tt1")])
    with pytest.warns(UserWarning, match="no review matches the movie map"):
        imdb_reviews.validation_split(texts, labels, 0.1, 0, "movie", tmp_path / "other.tsv.gz")


@pytest.mark.integration
def test_shipped_movie_map_covers_every_training_review(tfds_data_dir):
    texts, labels = imdb_reviews.load_split(tfds_data_dir, "train")
    groups, unmatched = imdb_reviews.movie_groups(texts, imdb_reviews.read_movie_map())
    assert unmatched == 0
    # 3,456 movies (Maas et al.), a few joined by duplicate texts; at most 30 reviews each.
    assert 3400 < groups.max() + 1 <= 3456 and np.bincount(groups).max() <= 60
    (train, _), (val, _), how = imdb_reviews.validation_split(texts, labels, 0.1, 1337)
    assert how["by"] == "movie" and 0.08 < len(val) / len(texts) < 0.12
    held = set(val.tolist())
    in_val = np.array([text in held for text in texts])
    for group in np.unique(groups):
        assert len(set(in_val[groups == group])) == 1  # a movie is on one side only


def test_shipped_movie_map_is_the_one_written_from_the_csv(tmp_path):
    csv = REPO_ROOT.parent / "shared" / "data" / "imdb_movies" / "imdb_reviews_movies.csv"
    if not csv.exists():  # only the data machine has the full CSV; the map is what ships
        pytest.skip("no ../shared/data/imdb_movies/imdb_reviews_movies.csv here")
    imdb_reviews.write_movie_map(csv, tmp_path / "map.tsv.gz")
    assert (tmp_path / "map.tsv.gz").read_bytes() == imdb_reviews.MOVIE_MAP.read_bytes()
    assert imdb_reviews.read_movie_map(csv) == imdb_reviews.read_movie_map()


@pytest.mark.integration
def test_baseline_quick_run(tmp_path, tfds_data_dir):
    script = REPO_ROOT / "experiments" / "imdb_baseline.py"
    data = ["--data-dir", tfds_data_dir] if tfds_data_dir else []
    metrics = helpers.run_quick(script, tmp_path, *data)
    assert metrics["validation"]["by"] == "movie" and metrics["train_reviews"] > 300
    assert metrics["test_reviews"] == 200 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["best_val_accuracy"] == max(metrics["history"]["val_accuracy"])
    assert metrics["parameters"] == 5000 + 1  # one weight per n-gram, one bias


def test_nb_features_are_naive_bayes_log_count_ratios():
    texts = np.array([b"good fun", b"good good film", b"bad film", b"bad dull", b"dull fun"])
    labels = np.array([1, 1, 0, 0, 1], "float32")
    model = recipes.ngram_classifier(texts, labels, max_tokens=100, ngrams=1)
    dense = model.get_layer("logistic")
    dense.set_weights([np.ones((dense.kernel.shape[0], 1)), np.zeros(1)])
    vocabulary = model.get_layer("ngrams").get_vocabulary()
    # Reference: presence per review, counts + 1 per class, ratio of normalised counts.
    words = [w for w in vocabulary if w != "[UNK]"]
    present = np.array([[w in text.decode().split() for w in words] for text in texts], float)
    p, q = 1 + present[labels == 1].sum(0), 1 + present[labels == 0].sum(0)
    unk = np.log(1 / (p.sum() + 1)) - np.log(1 / (q.sum() + 1))  # [UNK]: counted 0, plus one
    ratio = np.log(p / (p.sum() + 1)) - np.log(q / (q.sum() + 1))
    queries = ["good film", "dull bad bad", "fun unseen"]
    expected = [
        sum(ratio[words.index(w)] for w in set(q.split()) if w in words)
        + (unk if any(w not in words for w in q.split()) else 0.0)
        for q in queries
    ]
    logits = model.predict(np.array(queries, dtype=object), verbose=0)[:, 0]
    np.testing.assert_allclose(np.log(logits / (1 - logits)), expected, rtol=1e-4, atol=1e-5)
