"""rnn_keras: the classic recurrent cells as exact, tested Keras 3 layers, and models on them."""

from rnn_keras import (
    benchmarking,
    datasets,
    diagnostics,
    export,
    piano_rolls,
    spoken_digits,
    translation,
)
from rnn_keras.attention import AttentionDecoder, SequenceAttention
from rnn_keras.audio import LogMelFrontEnd
from rnn_keras.cells import CELLS, GRUCell, LSTMCell, SimpleRNNCell, get_cell
from rnn_keras.ensembles import TextEnsemble
from rnn_keras.layers import GRU, LAYERS, LSTM, SimpleRNN, fused_unavailable_reason, get_layer
from rnn_keras.models import (
    LanguageModel,
    MaskedGlobalPooling1D,
    RecurrentBackbone,
    SequenceClassifier,
    SequenceRegressor,
    SplitDirections,
    per_output_absolute_error,
    recurrent_layer,
)
from rnn_keras.monitoring import GradientNorm, GradientNormMonitor, rounded_binary_accuracy
from rnn_keras.music import FrameNLL, NatsPerFrame, NoteByNote, PolyphonicModel, PreviousFrames
from rnn_keras.preprocessing import CyclicalEncoding, ImputeMissing
from rnn_keras.preprocessors import (
    FeatureWindowPreprocessor,
    LanguageModelPreprocessor,
    TextClassifierPreprocessor,
)
from rnn_keras.speech import CTCLoss, SequenceAccuracy, SpeechRecognizer
from rnn_keras.text import ReviewStandardizer
from rnn_keras.translation import Translator, TranslatorPreprocessor

__version__ = "0.3.0"

__all__ = [
    "AttentionDecoder",
    "CELLS",
    "CyclicalEncoding",
    "FeatureWindowPreprocessor",
    "LanguageModelPreprocessor",
    "TextClassifierPreprocessor",
    "per_output_absolute_error",
    "GRU",
    "LAYERS",
    "LSTM",
    "GRUCell",
    "GradientNorm",
    "GradientNormMonitor",
    "ImputeMissing",
    "LSTMCell",
    "LanguageModel",
    "MaskedGlobalPooling1D",
    "RecurrentBackbone",
    "ReviewStandardizer",
    "SequenceClassifier",
    "SequenceRegressor",
    "SimpleRNN",
    "SimpleRNNCell",
    "SplitDirections",
    "benchmarking",
    "datasets",
    "diagnostics",
    "export",
    "piano_rolls",
    "spoken_digits",
    "translation",
    "CTCLoss",
    "LogMelFrontEnd",
    "SequenceAccuracy",
    "SequenceAttention",
    "SpeechRecognizer",
    "TextEnsemble",
    "Translator",
    "TranslatorPreprocessor",
    "FrameNLL",
    "NatsPerFrame",
    "NoteByNote",
    "PolyphonicModel",
    "PreviousFrames",
    "fused_unavailable_reason",
    "get_cell",
    "rounded_binary_accuracy",
    "get_layer",
    "recurrent_layer",
]
