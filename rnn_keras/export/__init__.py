"""Export: SavedModels of tasks (`export_task`, `save_model`), LiteRT files with builtin ops
(`to_litert`), and the runner of those files on a device (`on_device`, NumPy and LiteRT
alone). The machinery knows no task: each task declares its own endpoints."""

from rnn_keras.export.litert import LITERT_QUANTIZATIONS, to_litert
from rnn_keras.export.saved_model import export_task, save_model, write_saved_model

__all__ = [
    "LITERT_QUANTIZATIONS",
    "export_task",
    "export_translator",
    "on_device",
    "save_model",
    "to_litert",
    "write_saved_model",
]


def __getattr__(name):
    # The on-device runner imports LiteRT's interpreter (the [litert] extra): on demand.
    if name == "on_device":
        import importlib

        return importlib.import_module("rnn_keras.export.on_device")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def export_translator(translator, path, beam_size=5, length_penalty_alpha=0.6, max_length=100):
    """`translator.export(path, ...)`: the `translate` SavedModel, beam search inside (kept
    from rnn_keras 0.3)."""
    export_task(
        translator,
        path,
        beam_size=beam_size,
        length_penalty_alpha=length_penalty_alpha,
        max_length=max_length,
    )
