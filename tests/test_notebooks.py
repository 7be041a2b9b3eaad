"""The notebooks run top to bottom in a fresh kernel, and their committed outputs are current.

Executing them is `notebooks/run.py`'s `execute`, the code that makes the committed outputs.
"""

import importlib.util

import nbformat
import pytest
from conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location("notebooks_run", REPO_ROOT / "notebooks" / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

# What each notebook must show: at least this many figures, and these lines of text.
EXPECTED = {
    "quickstart": {
        "figures": 2,  # learning curves, PM2.5 forecasts
        "text": [
            "Epoch 4/4",
            "gradient_norm:",
            "max |saved - restored| over 512 reviews: 0.0e+00",
            "optimizer steps after one more epoch",
            "max |Keras - SavedModel| over 256 reviews",
            "P(positive) = ",
            "--- temperature 0.5 ---",
            "--- temperature 1.0 ---",
            "nats/char",
            "24 h ahead: MAE over the week",
        ],
    },
    "guide_tour": {
        # truncated-BPTT gradients, temperatures, LSTM gates, clipping, long_range's three
        "figures": 7,
        "text": [
            "h_t, rnn_keras (fused) vs guide",
            "c_t, rnn_keras LSTMCell step by step vs guide",
            "h_t, rnn_keras vs guide",
            "[h_forward; h_backward], rnn_keras vs guide",
            "dL/dW_hh, rnn_keras vs guide BPTT",
            "GRU dL/drecurrent_kernel, fused vs autodiff",
            "dL/dx_t, t in window 2: truncated vs full",
            "CharRNN logits, rnn_keras vs guide",
            "--- temperature 1.5 ---",
            "SequenceClassifier logits, rnn_keras vs guide",
            "h_t, NumPy steps vs the model's forward LSTM",
            "words that open the input gate most",
            "solved at step",
            "gradient norm, monitor vs GradientTape",
            "SGD, not clipped",
        ],
    },
}


# The from-scratch runs read less data than the committed run (every cell still runs).
SMALLER = {
    "quickstart": {"TRAIN_REVIEWS": 2_000, "VALIDATION_REVIEWS": 600},
    "guide_tour": {"TEXT_CHARS": 50_000},
}


def shown(notebook):
    """(text of every stream and plain-text output, number of PNG figures, error outputs)."""
    texts, figures, errors = [], 0, []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            elif output.output_type == "error":
                errors.append(f"{output.ename}: {output.evalue}")
            else:
                texts.append(output.get("data", {}).get("text/plain", ""))
                figures += "image/png" in output.get("data", {})
    return "\n".join(texts), figures, errors


def check_outputs(name, notebook):
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    # Top to bottom in one kernel: every code cell ran, in order, once.
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1))
    text, figures, errors = shown(notebook)
    assert not errors, errors
    assert "Traceback" not in text
    assert figures >= EXPECTED[name]["figures"], f"{name}: {figures} figures"
    missing = [line for line in EXPECTED[name]["text"] if line not in text]
    assert not missing, f"{name} does not show {missing}"


@pytest.mark.parametrize("name", run.NOTEBOOKS)
def test_committed_notebook_has_current_outputs(name):
    """The committed file holds one clean top-to-bottom run of its current code and inputs."""
    notebook = nbformat.read(run.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    check_outputs(name, notebook)
    recorded = notebook.metadata.get("rnn_keras", {}).get("inputs_sha256")
    assert recorded == run.fingerprint(notebook), (
        f"notebooks/{name}.ipynb: its code, rnn_keras/, saved_models/, "
        "experiments/results/long_range/ or tests/reference.py changed since its outputs were "
        f"made: python notebooks/run.py {name}"
    )


@pytest.mark.integration
@pytest.mark.parametrize("name", run.NOTEBOOKS)
def test_notebook_runs_from_scratch(name, tfds_data_dir, monkeypatch):
    """Cleared outputs, a new kernel, every cell in order, on less data (`SMALLER`): no error,
    and everything shown."""
    if tfds_data_dir:
        monkeypatch.setenv("TFDS_DATA_DIR", tfds_data_dir)  # the kernel inherits it
    notebook, seconds = run.execute(run.NOTEBOOKS_DIR / f"{name}.ipynb", SMALLER[name])
    check_outputs(name, notebook)
    print(f"{name}: {seconds:.0f} s")
