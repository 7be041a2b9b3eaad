"""The cells, layers and models on another Keras backend: `backend_checks.py` under JAX."""

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


def run_backend_checks(backend):
    """Runs tests/backend_checks.py in a fresh process on `backend`; returns its stdout."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        # -n 0: eight quick checks run in this one process (two xdist workers would each
        # import TensorFlow and JAX for them).
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "backend_checks.py",
        ],
        cwd=REPO_ROOT / "tests",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\b8 passed\b", summary) and not re.search(r"\d+ failed", summary), summary
    return result.stdout


@pytest.mark.integration
def test_backend_checks_pass_under_jax():
    pytest.importorskip("jax", reason="jax is in the dev extras: pip install -e '.[dev]'")
    run_backend_checks("jax")


@pytest.mark.integration
def test_backend_checks_pass_under_tensorflow():
    run_backend_checks("tensorflow")
