"""The README's examples, and those of the reports in docs/, run as written."""

import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


def _python_blocks(path):
    """Every ```python block of a Markdown file, in order, as one program."""
    return "\n".join(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S))


def _run(program, tmp_path):
    """Runs `program` in `tmp_path`, where saved_models/ is the repository's (examples load it)."""
    (tmp_path / "saved_models").symlink_to(REPO_ROOT / "saved_models")
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.integration  # about 30 s: two small fits, three exports, the committed models
def test_readme_examples_run(tmp_path):
    """Every Python block of the README, in order, as one program (later ones use earlier ones)."""
    example = _python_blocks(REPO_ROOT / "README.md")
    for name in (
        "rnn_keras.LSTM",
        "model.fit",
        "RecurrentBackbone",
        "GradientNormMonitor",
        "TextClassifierPreprocessor",
        "predict([",
        "generate(",
        "score(",
        "SequenceRegressor",
        "PolyphonicModel",
        "SpeechRecognizer",
    ):
        assert name in example
    _run(example, tmp_path)
    assert (tmp_path / "model.keras").is_file()
    assert (tmp_path / "saved_model" / "saved_model.pb").is_file()
    assert (tmp_path / "text_classifier" / "saved_model.pb").is_file()
    assert (tmp_path / "new.mid").stat().st_size > 20


DOCS_WITH_EXAMPLES = sorted(
    path.name for path in (REPO_ROOT / "docs").glob("*.md") if "```python" in path.read_text()
)

# Runs each report's program in its own folder and namespace, one after another, in one
# process (one TensorFlow import for all of them); reports which failed, with the traceback.
_DOCS_RUNNER = """
import json, os, sys, traceback
import keras
jobs = json.load(sys.stdin)
failures = {}
for name, program, folder in jobs:
    os.chdir(folder)
    keras.backend.clear_session()
    try:
        exec(compile(program, name, "exec"), {"__name__": "__main__"})
    except BaseException:
        failures[name] = traceback.format_exc()
print("@@FAILURES@@" + json.dumps(failures))
"""


def test_docs_examples_run(tmp_path):
    """Every Python block of each report in docs/, in order, as one program per report."""
    import json

    assert len(DOCS_WITH_EXAMPLES) >= 5, DOCS_WITH_EXAMPLES
    jobs = []
    for name in DOCS_WITH_EXAMPLES:
        folder = tmp_path / name.removesuffix(".md")
        folder.mkdir()
        (folder / "saved_models").symlink_to(REPO_ROOT / "saved_models")
        jobs.append((name, _python_blocks(REPO_ROOT / "docs" / name), str(folder)))
    result = subprocess.run(
        [sys.executable, "-c", _DOCS_RUNNER],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert "@@FAILURES@@" in result.stdout, result.stderr[-3000:]
    failures = json.loads(result.stdout.rsplit("@@FAILURES@@", 1)[1])
    assert not failures, "\n\n".join(
        f"{name}:\n{error[-3000:]}" for name, error in failures.items()
    )
