"""Shared fixtures: where the data lives, and a clean Keras state for every test."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TFDS_DIR = REPO_ROOT.parent / "shared" / "data" / "tensorflow_datasets"
SHARED_JSB_DIR = REPO_ROOT.parent / "shared" / "data" / "jsb_chorales"
SHARED_FSDD_DIR = REPO_ROOT.parent / "shared" / "data" / "fsdd"
SHARED_MULTI30K_DIR = REPO_ROOT.parent / "shared" / "data" / "multi30k"
SHARED_PM25_CSV = (
    REPO_ROOT.parent / "shared" / "data" / "beijing_pm25" / "PRSA_data_2010.1.1-2014.12.31.csv"
)


@pytest.fixture(scope="session")
def tfds_data_dir():
    """The tfds data dir: $TFDS_DATA_DIR, else ../shared's prepared copy, else tfds's default."""
    if os.environ.get("TFDS_DATA_DIR"):
        return os.environ["TFDS_DATA_DIR"]
    if SHARED_TFDS_DIR.is_dir():
        return str(SHARED_TFDS_DIR)
    return None  # tfds's own default (~/tensorflow_datasets), downloading where needed


@pytest.fixture(scope="session")
def pm25_csv():
    """The Beijing PM2.5 CSV: $PM25_CSV, else ../shared's copy, else None (the script
    downloads it)."""
    if os.environ.get("PM25_CSV"):
        return os.environ["PM25_CSV"]
    return str(SHARED_PM25_CSV) if SHARED_PM25_CSV.is_file() else None


@pytest.fixture(scope="session")
def jsb_chorales_dir():
    """The folder of jsb-chorales-quarter.json: $JSB_CHORALES_DIR, else ../shared's copy, else
    None (the code downloads it to Keras's cache)."""
    if os.environ.get("JSB_CHORALES_DIR"):
        return os.environ["JSB_CHORALES_DIR"]
    return str(SHARED_JSB_DIR) if SHARED_JSB_DIR.is_dir() else None


@pytest.fixture(scope="session")
def fsdd_dir():
    """The folder holding FSDD's recordings/: $FSDD_DIR, else ../shared's copy, else None (the
    code downloads the archive to Keras's cache)."""
    if os.environ.get("FSDD_DIR"):
        return os.environ["FSDD_DIR"]
    return str(SHARED_FSDD_DIR) if SHARED_FSDD_DIR.is_dir() else None


@pytest.fixture(scope="session")
def multi30k_dir():
    """A copy of Multi30K's data/task1/ (raw/, tok/): $MULTI30K_DIR, else ../shared's copy, else
    None (the code downloads the files to Keras's cache)."""
    if os.environ.get("MULTI30K_DIR"):
        return os.environ["MULTI30K_DIR"]
    return str(SHARED_MULTI30K_DIR) if SHARED_MULTI30K_DIR.is_dir() else None


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from a clean Keras session and the float32 policy.

    `free_memory=False`: Keras's state is reset all the same; only the forced garbage
    collection is skipped (about 0.5 s a test with TensorFlow loaded; Python's own
    collector still runs)."""
    keras.utils.clear_session(free_memory=False)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
