"""The package's structure: folders by kind, layered, no import cycle, no private Keras, no
optional dependency imported by `import rnn_keras`, and rnn_keras 0.3's module paths.

The import graph is read from the source (`ast`), function-level imports included, so
an import inside a function counts as much as one at the top of a module.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rnn_keras"
REPO = PACKAGE.parent

# Lowest first: a module may import its own folder and the folders before it, never after.
LAYERS = ("utils", "layers", "datasets", "export", "models", "training", "evaluation")
ROOT_RANK = len(LAYERS)  # rnn_keras/__init__.py and _legacy.py: the public API


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(path):
    """The rnn_keras modules `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the project imports absolutely)"
            for alias in node.names:
                # `from rnn_keras.x import y`: module `rnn_keras.x.y` when y is one, else x.
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return {name for name in found if name == "rnn_keras" or name.startswith("rnn_keras.")}


def rank(name):
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else ROOT_RANK


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def test_every_folder_is_a_known_kind():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(LAYERS) | {"datasets"}, folders
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "_legacy.py"}, f"modules outside the folders: {loose}"


def test_imports_name_existing_modules():
    for name, targets in GRAPH.items():
        unknown = {t for t in targets if t not in MODULES}
        assert not unknown, f"{name} imports {unknown}, which are not modules of rnn_keras"


def test_no_import_cycle():
    """Depth-first search for a back edge in the module graph."""
    state, stack = {}, []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_no_lower_layer_imports_a_higher_one():
    wrong = [
        f"{name} ({LAYERS[rank(name)] if rank(name) < ROOT_RANK else 'root'}) imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if rank(target) > rank(name)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checks_see_a_cycle_and_a_layer_violation():
    """The graph reader on a made-up pair of modules: the checks above can fail."""
    source = "def f():\n    from rnn_keras.models.task import Task\n"
    tree_targets = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            tree_targets.add(node.module)
    assert tree_targets == {"rnn_keras.models.task"}  # function-level imports are read
    assert rank("rnn_keras.models.task") > rank("rnn_keras.export.saved_model")


def test_export_machinery_knows_no_task():
    for name in ("rnn_keras.export.saved_model", "rnn_keras.export.litert"):
        assert not {t for t in GRAPH[name] if t.startswith("rnn_keras.models")}, name


def test_no_private_keras_import_anywhere():
    """Keras's public API only: no `keras.src` in the library, experiments, tests or tools."""
    offenders = []
    for folder in ("rnn_keras", "experiments", "tests", "tools", "notebooks"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{path}: {n}" for n in names if n.startswith("keras.src")]
    assert not offenders, offenders


OPTIONAL = ("mido", "sacrebleu", "sacremoses", "ai_edge_litert", "tensorboard", "matplotlib")


def run_without(modules, code):
    """Runs `code` in a fresh process where importing any of `modules` fails."""
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        BLOCKED = {tuple(modules)!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, Block())
        """
    ) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_import_rnn_keras_needs_no_optional_dependency_and_features_name_their_extra():
    result = run_without(
        OPTIONAL,
        """
        import numpy as np
        import rnn_keras
        from rnn_keras.piano_rolls import write_midi   # the 0.3 path, importable without mido
        for call, extra in [
            (lambda: write_midi(np.zeros((4, 88), "float32"), "x.mid"), "music"),
            (lambda: rnn_keras.training.plot_history({"loss": [1.0]}, "x.png", ["loss"], "t"),
             "plots"),
            (lambda: __import__("rnn_keras.export.on_device"), "litert"),
        ]:
            try:
                call()
            except ImportError as error:
                assert f'pip install "rnn-keras[{extra}]"' in str(error), error
            else:
                raise AssertionError(f"no ImportError for the [{extra}] feature")
        print("ok")
        """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


OLD_PATHS = {
    "attention": "SequenceAttention",
    "audio": "LogMelFrontEnd",
    "benchmarking": "median_seconds",
    "cells": "LSTMCell",
    "datasets": "adding_problem",
    "diagnostics": "gradient_through_time",
    "distribute": "trainer",
    "ensembles": "recurrent_member",
    "export": "to_litert",
    "fast": "lstm_sequence",
    "forecasting": "horizon_errors",
    "imdb_reviews": "validation_split",
    "layers": "fused_unavailable_reason",
    "models": "READ_CHUNK",
    "monitoring": "GradientNormMonitor",
    "music": "MAX_GENERATE_STEPS",
    "on_device": "ReviewClassifier",
    "piano_rolls": "load_chorales",
    "preprocessing": "CyclicalEncoding",
    "preprocessors": "FeatureWindowPreprocessor",
    "recipes": "ngram_teacher",
    "speech": "plot_transcription",
    "spoken_digits": "nearest_neighbour_dtw",
    "text": "score_texts",
    "training": "TimeBudget",
    "translation": "load_multi30k",
    "windows": "stream_windows",
}


def test_every_module_path_of_rnn_keras_0_3_still_imports():
    """`import rnn_keras.X`, `from rnn_keras.X import name` and `rnn_keras.X.name`."""
    import importlib

    import rnn_keras

    for old, name in OLD_PATHS.items():
        module = importlib.import_module(f"rnn_keras.{old}")
        assert hasattr(module, name), f"rnn_keras.{old} lost {name}"
        assert getattr(getattr(rnn_keras, old), name) is getattr(module, name)
    assert rnn_keras.text.ReviewStandardizer is rnn_keras.ReviewStandardizer
    assert rnn_keras.export.on_device.ReviewClassifier is rnn_keras.on_device.ReviewClassifier


def test_every_module_is_an_attribute_after_import_rnn_keras():
    """`import rnn_keras` then `rnn_keras.datasets.fsdd.DIGIT_WORDS` and the like, for every
    module but the on-device runner (imported on demand: it needs the [litert] extra)."""
    import functools

    import rnn_keras

    for name in MODULES:
        if name in ("rnn_keras", "rnn_keras._legacy", "rnn_keras.export.on_device"):
            continue
        path = name.split(".")[1:]
        assert functools.reduce(getattr, path, rnn_keras) is not None, name
