"""Multi30K task 1 (Elliott et al. 2016): German, English (and French, Czech) captions of
Flickr30K images, the machine-translation benchmark of `experiments/translate.py`."""

import gzip
from pathlib import Path

import keras

__all__ = ["MULTI30K_SPLITS", "load_multi30k"]


MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/"
MULTI30K_SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco")


def load_multi30k(split, data_dir=None, tokenized=False, languages=("de", "en")):
    """Multi30K task 1 (Elliott et al. 2016): one list of sentences per language, line i of
    each translating line i of the others.

    `tokenized=False`: the sentences as written (`raw/<split>.<lang>.gz`); True:
    lowercased and Moses-tokenized (`tok/<split>.lc.norm.tok.<lang>`, HTML entities
    such as "&apos;" written as the characters), the references of most published
    BLEU figures. Read from `data_dir` (a copy of the repository's `data/task1/`)
    when given, else downloaded once from the official repository with
    `keras.utils.get_file`.
    """
    import html

    if split not in MULTI30K_SPLITS:
        raise ValueError(
            f"load_multi30k: `split` must be one of {MULTI30K_SPLITS}. Received: split={split!r}"
        )
    sides = []
    for language in languages:
        name = f"tok/{split}.lc.norm.tok.{language}" if tokenized else f"raw/{split}.{language}.gz"
        if data_dir is not None:
            path = Path(data_dir) / name
            if not path.exists():
                raise FileNotFoundError(
                    f"load_multi30k: expected {path} (a copy of Multi30K's data/task1/). "
                    f"Received: data_dir={str(data_dir)!r}, which has no {name}"
                )
        else:
            path = keras.utils.get_file(
                f"multi30k_{name.replace('/', '_')}", MULTI30K_URL + name, cache_subdir="multi30k"
            )
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as file:
            lines = [line.rstrip("\n") for line in file]
        sides.append([html.unescape(line) for line in lines] if tokenized else lines)
    if len({len(side) for side in sides}) != 1:
        raise ValueError(f"load_multi30k: {split} has sides of {[len(s) for s in sides]} lines")
    return sides
