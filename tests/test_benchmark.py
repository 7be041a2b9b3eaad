"""experiments/benchmark.py keeps working: a tiny configuration, every implementation, seconds."""

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


@pytest.mark.integration
def test_benchmark_tiny_run(tmp_path):
    out = tmp_path / "benchmark.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "experiments" / "benchmark.py"),
            "--tiny",
            "--no-xla",
            "--shapes",
            "imdb-bi,char",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["matmul_flops"] > 0 and report["machine"]["cpu_cores"] >= 1
    names = {(row["shape"], row["implementation"]) for row in report["results"]}
    for shape in ("imdb-bi", "char"):
        for name in (
            "rnn_keras.LSTM",
            "rnn_keras.GRU",
            "rnn_keras.SimpleRNN",
            "keras.layers.LSTM",
            "keras.layers.GRU",
            "keras.layers.GRU(reset_after=False)",
            "keras.layers.SimpleRNN",
        ):
            assert (shape, name) in names
    for row in report["results"]:
        assert row["train_tokens_per_s"] > 0 and row["infer_tokens_per_s"] > 0
    assert "| char | keras.layers.LSTM |" in result.stdout  # the Markdown table
