"""rnn_keras 0.3's module paths, kept working in 1.0.

Before 1.0 the package was one flat folder of modules. Each old path is now an
alias: a module that moved whole is the same module under its old name too
(`rnn_keras.speech` is `rnn_keras.models.speech_recognizer`); a module that was
split is a module of its own that holds the public names of its parts
(`rnn_keras.piano_rolls`: the loaders of `datasets.chorales` and the statistics
of `evaluation.music_baselines`). `import rnn_keras.speech`,
`from rnn_keras.piano_rolls import load_chorales` and `rnn_keras.text.score_texts`
all work; each alias is made when first asked for, so `import rnn_keras` imports
no optional dependency. `rnn_keras.layers`, `models`, `datasets`, `training` and `export` are
packages now, whose `__init__` holds the old module's names.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types

# old module: the module(s) that hold its names now, relative to the package.
MOVED = {
    "attention": ("layers.attention",),
    "audio": ("layers.audio",),
    "benchmarking": ("evaluation.benchmarking",),
    "cells": ("layers.cells",),
    "diagnostics": ("evaluation.diagnostics",),
    "distribute": ("training.distribute",),
    "ensembles": ("models.text_ensemble",),
    "fast": ("layers.fused",),
    "forecasting": ("datasets.feature_windows", "evaluation.forecast_baselines"),
    "imdb_reviews": ("datasets.imdb",),
    "monitoring": ("training.monitoring",),
    "music": ("models.polyphonic_model",),
    "on_device": ("export.on_device",),
    "piano_rolls": ("datasets.chorales", "evaluation.music_baselines"),
    "preprocessing": ("layers.preprocessing",),
    "preprocessors": (
        "models.text_classifier_preprocessor",
        "models.language_model_preprocessor",
        "models.feature_window_preprocessor",
    ),
    "recipes": ("training.recipes",),
    "speech": ("models.speech_recognizer",),
    "spoken_digits": ("datasets.fsdd", "evaluation.speech_baselines"),
    "text": ("layers.text_preprocessing", "datasets.text_batches"),
    "translation": (
        "models.translator",
        "models.translator_preprocessor",
        "datasets.multi30k",
    ),
    "windows": ("datasets.char_windows",),
}


def _public(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name in vars(module) if not name.startswith("_")]
    return set(names)


def alias(package, old):
    """The module that stands for `package.old`: the moved module itself, or a module holding
    the names of the modules it was split into."""
    modules = [importlib.import_module(f"{package}.{name}") for name in MOVED[old]]
    if len(modules) == 1:
        return modules[0]
    joined = types.ModuleType(
        f"{package}.{old}",
        f"rnn_keras 0.3's `{old}`, now split into "
        + ", ".join(f"`{package}.{name}`" for name in MOVED[old])
        + ".",
    )
    for module in modules:
        for name, value in vars(module).items():
            if not name.startswith("__"):  # constants and helpers, as before
                setattr(joined, name, value)
    joined.__all__ = sorted(set().union(*(_public(m) for m in modules)))
    return joined


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `package.old` as its alias, when first asked for (no extra is imported before
    a module that needs it is)."""

    def __init__(self, package):
        self.package = package

    def find_spec(self, fullname, path=None, target=None):
        parent, _, old = fullname.rpartition(".")
        if parent == self.package and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return alias(self.package, spec.name.rpartition(".")[2])

    def exec_module(self, module):
        """Nothing to run: the alias was made whole by `create_module`."""


def install(package):
    """Makes every old path of `package` (the name "rnn_keras") importable, lazily."""
    if not any(isinstance(f, _Finder) and f.package == package for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(package))


def getattr_of_package(package, name):
    """The package's `__getattr__`: `rnn_keras.speech` and the like, imported when asked for."""
    if name in MOVED:
        return importlib.import_module(f"{package}.{name}")
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
