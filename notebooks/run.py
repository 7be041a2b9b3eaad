"""Executes the notebooks top to bottom in a fresh kernel and saves them with their outputs.

    python notebooks/run.py                       # both, in place: the committed outputs
    python notebooks/run.py guide_tour            # one of them
    python notebooks/run.py --data-dir DIR        # tensorflow-datasets data (sets TFDS_DATA_DIR)
    python notebooks/run.py --out /tmp/executed   # executed copies elsewhere, the originals kept

Each notebook starts from cleared outputs in a new kernel of this Python (the kernel needs
rnn_keras importable: run it from the project's virtual environment), with `notebooks/` as its
working directory. A cell that raises stops the run and nothing is written. The notebook's
metadata records `inputs_sha256`, a fingerprint of its code and of the committed files its
outputs show (`INPUTS`), so that a test can tell when the outputs need regenerating.
"""

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = NOTEBOOKS_DIR.parent
NOTEBOOKS = ("quickstart", "guide_tour")
# Committed files the notebooks' outputs come from: the library, the models, figures and the
# guide's reference.
INPUTS = ("rnn_keras", "saved_models", "experiments/results/long_range", "tests/reference.py")
CELL_TIMEOUT = 900  # seconds; a cell that takes longer fails the run


def fingerprint(notebook):
    """sha256 of the notebook's code cells and of every file under `INPUTS`."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    for name in INPUTS:
        root = REPO_ROOT / name
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def execute(path, parameters=None):
    """The notebook at `path` executed from scratch: (notebook with outputs, seconds).

    `parameters` (`{name: value}`) replace the values of the first code cell, the
    notebook's parameters, in a cell run right after it (papermill's convention): the
    tests run the notebooks on less data; the committed outputs use the notebook's own.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    if parameters:
        first = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")
        declared = notebook.cells[first].source
        unknown = [name for name in parameters if f"{name} = " not in declared]
        if unknown:
            raise ValueError(f"{path.name}: no parameters {unknown} in its first code cell")
        source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        injected = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
        notebook.cells.insert(first + 1, injected)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        record_timing=False,
        coalesce_streams=True,  # one stream per cell; progress bars keep their final state
        # TensorFlow's C++ start-up logs go to this terminal, not into the saved outputs.
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    started = time.perf_counter()
    client.execute()
    notebook.metadata["rnn_keras"] = {"inputs_sha256": fingerprint(notebook)}
    return notebook, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"of {', '.join(NOTEBOOKS)} (default: all)")
    parser.add_argument(
        "--data-dir",
        help="tensorflow-datasets data dir (default: $TFDS_DATA_DIR, else "
        "../shared/data/tensorflow_datasets next to the repository where it exists)",
    )
    parser.add_argument("--out", type=Path, help="write the executed notebooks here instead")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NOTEBOOKS))
    if unknown:
        parser.error(f"unknown notebooks {unknown}; expected some of {list(NOTEBOOKS)}")
    if args.data_dir:
        os.environ["TFDS_DATA_DIR"] = str(Path(args.data_dir).resolve())
    import nbformat

    for name in args.names or NOTEBOOKS:
        source = NOTEBOOKS_DIR / f"{name}.ipynb"
        notebook, seconds = execute(source)
        target = source if args.out is None else args.out / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        print(f"{name}: executed in {seconds:.0f} s -> {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
