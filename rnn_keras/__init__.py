"""rnn_keras: the classic recurrent cells as exact, tested Keras 3 layers, and models on them.

The package, by kind (docs/layout.md):

    layers/      cells, sequence layers and their fused kernels, attention, audio front
                 end, pooling and preprocessing layers
    models/      the recurrent backbone; one module per task with its preprocessor and
                 its serving endpoints
    datasets/    loaders, splits and tf.data batching of every experiment's data
    export/      SavedModel and LiteRT machinery (it knows no task), the on-device runner
    training/    resumable fit, distribution, recipes, gradient monitoring
    evaluation/  diagnostics, benchmarks, baselines
    utils/       timing, optional dependencies

Lower folders never import higher ones (tests/test_layout.py), in this order:
utils, layers, datasets, export, models, training, evaluation.
"""

from rnn_keras import _legacy, datasets, evaluation, export, layers, models, training, utils
from rnn_keras.evaluation import benchmarking, diagnostics
from rnn_keras.layers import (
    CELLS,
    GRU,
    LAYERS,
    LSTM,
    AttentionDecoder,
    CyclicalEncoding,
    GRUCell,
    ImputeMissing,
    LogMelFrontEnd,
    LSTMCell,
    MaskedGlobalPooling1D,
    ReviewStandardizer,
    SequenceAttention,
    SimpleRNN,
    SimpleRNNCell,
    SplitDirections,
    fused_unavailable_reason,
    get_cell,
    get_layer,
)
from rnn_keras.models import (
    CTCLoss,
    FeatureWindowPreprocessor,
    FrameNLL,
    LanguageModel,
    LanguageModelPreprocessor,
    NatsPerFrame,
    NoteByNote,
    PolyphonicModel,
    PreviousFrames,
    RecurrentBackbone,
    SequenceAccuracy,
    SequenceClassifier,
    SequenceRegressor,
    SpeechRecognizer,
    TextClassifierPreprocessor,
    TextEnsemble,
    Translator,
    TranslatorPreprocessor,
    per_output_absolute_error,
    recurrent_layer,
)
from rnn_keras.training.monitoring import (
    GradientNorm,
    GradientNormMonitor,
    rounded_binary_accuracy,
)

__version__ = "1.0.0"

# rnn_keras 0.3's module paths (`rnn_keras.piano_rolls`, `from rnn_keras.speech import ...`),
# kept working: each names the module (or modules) that holds its names now.
_legacy.install(__name__)


def __getattr__(name):
    return _legacy.getattr_of_package(__name__, name)


__all__ = [
    "AttentionDecoder",
    "CELLS",
    "CTCLoss",
    "CyclicalEncoding",
    "FeatureWindowPreprocessor",
    "FrameNLL",
    "GRU",
    "GRUCell",
    "GradientNorm",
    "GradientNormMonitor",
    "ImputeMissing",
    "LAYERS",
    "LSTM",
    "LSTMCell",
    "LanguageModel",
    "LanguageModelPreprocessor",
    "LogMelFrontEnd",
    "MaskedGlobalPooling1D",
    "NatsPerFrame",
    "NoteByNote",
    "PolyphonicModel",
    "PreviousFrames",
    "RecurrentBackbone",
    "ReviewStandardizer",
    "SequenceAccuracy",
    "SequenceAttention",
    "SequenceClassifier",
    "SequenceRegressor",
    "SimpleRNN",
    "SimpleRNNCell",
    "SpeechRecognizer",
    "SplitDirections",
    "TextClassifierPreprocessor",
    "TextEnsemble",
    "Translator",
    "TranslatorPreprocessor",
    "benchmarking",
    "datasets",
    "diagnostics",
    "evaluation",
    "export",
    "fused_unavailable_reason",
    "get_cell",
    "get_layer",
    "layers",
    "models",
    "per_output_absolute_error",
    "piano_rolls",
    "recurrent_layer",
    "rounded_binary_accuracy",
    "spoken_digits",
    "training",
    "translation",
    "utils",
]
