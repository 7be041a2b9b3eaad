"""The README's notebook example runs as written."""

import re
import subprocess
import sys

from conftest import REPO_ROOT


def test_readme_example_runs(tmp_path):
    readme = (REPO_ROOT / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    assert "rnn_keras.LSTM" in example and "model.fit" in example
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model.keras").is_file()
    assert (tmp_path / "saved_model" / "saved_model.pb").is_file()
