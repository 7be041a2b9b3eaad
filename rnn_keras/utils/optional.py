"""Optional dependencies, imported when a feature needs them.

`import rnn_keras` imports none of them. A feature used without its extra raises
an ImportError that names the command that installs it:

    plt = optional.import_module("matplotlib.pyplot", extra="plots", feature="plot_history")
"""

import importlib

__all__ = ["EXTRAS", "import_module"]

# The extras of pyproject.toml, by the top-level module each one provides.
EXTRAS = {
    "matplotlib": "plots",
    "mido": "music",
    "sacrebleu": "translate",
    "sacremoses": "translate",
    "ai_edge_litert": "litert",
    "tensorboard": "tensorboard",
}


def import_module(name, extra=None, feature=None):
    """`importlib.import_module(name)`, or an ImportError naming the extra that provides it.

    Args:
        name: the module, e.g. "matplotlib.pyplot".
        extra: the rnn-keras extra that installs it (default: from `EXTRAS`).
        feature: what needs it, for the message (e.g. "write_midi").
    """
    top = name.split(".")[0]
    extra = extra or EXTRAS.get(top, "all")
    try:
        return importlib.import_module(name)
    except ImportError as error:
        if error.name is not None and error.name.split(".")[0] != top:
            raise  # the module is there; something it imports is broken
        needed_by = f"{feature} needs" if feature else "This feature needs"
        raise ImportError(
            f"{needed_by} {top!r}, which rnn-keras installs with an extra. Expected it "
            f'installed: pip install "rnn-keras[{extra}]". Received: {error}'
        ) from error
