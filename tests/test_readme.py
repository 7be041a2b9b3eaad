"""The README's notebook example runs as written."""

import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


@pytest.mark.slow
def test_readme_examples_run(tmp_path):
    """Every Python block of the README, in order, as one program (later ones use earlier ones)."""
    readme = (REPO_ROOT / "README.md").read_text()
    example = "\n".join(re.findall(r"```python\n(.*?)```", readme, flags=re.S))
    for name in ("rnn_keras.LSTM", "model.fit", "RecurrentBackbone", "GradientNormMonitor"):
        assert name in example
    (tmp_path / "saved_models").symlink_to(REPO_ROOT / "saved_models")  # examples load from it
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model.keras").is_file()
    assert (tmp_path / "saved_model" / "saved_model.pb").is_file()
    assert "Traceback" not in result.stderr
