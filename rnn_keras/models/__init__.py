"""Models: the recurrent backbone and the tasks on it, each task in its own module with its
preprocessor and its serving endpoints (keras-hub's task = backbone + preprocessor).

    backbone.py                       RecurrentBackbone, recurrent_layer
    task.py, preprocessor.py          Task, SteppedTask, Preprocessor: what tasks share
    sequence_classifier.py            SequenceClassifier, SequenceRegressor
    text_classifier_preprocessor.py   TextClassifierPreprocessor (raw text)
    feature_window_preprocessor.py    FeatureWindowPreprocessor (named sensor windows)
    language_model.py                 LanguageModel (+ language_model_preprocessor.py)
    translator.py                     Translator (+ translator_preprocessor.py)
    speech_recognizer.py              SpeechRecognizer, CTCLoss, SequenceAccuracy
    polyphonic_model.py               PolyphonicModel, NoteByNote, FrameNLL, NatsPerFrame
    text_ensemble.py                  TextEnsemble

A new task is one new module here: it declares `serving_endpoints()` (and, for
devices, `litert_metadata` / `litert_function`); nothing else changes.
"""

# rnn_keras 0.3's `rnn_keras.models` module also held the pooling layers.
from rnn_keras.layers.pooling import MaskedGlobalPooling1D, SplitDirections  # noqa: E402, I001
from rnn_keras.models.backbone import RecurrentBackbone, recurrent_layer
from rnn_keras.models.feature_window_preprocessor import FeatureWindowPreprocessor
from rnn_keras.models.language_model import READ_CHUNK, LanguageModel
from rnn_keras.models.language_model_preprocessor import LanguageModelPreprocessor
from rnn_keras.models.polyphonic_model import (
    FrameNLL,
    NatsPerFrame,
    NoteByNote,
    PolyphonicModel,
    PreviousFrames,
)
from rnn_keras.models.preprocessor import Preprocessor
from rnn_keras.models.sequence_classifier import (
    SequenceClassifier,
    SequenceRegressor,
    per_output_absolute_error,
)
from rnn_keras.models.speech_recognizer import CTCLoss, SequenceAccuracy, SpeechRecognizer
from rnn_keras.models.task import SteppedTask, Task
from rnn_keras.models.text_classifier_preprocessor import TextClassifierPreprocessor
from rnn_keras.models.text_ensemble import TextEnsemble
from rnn_keras.models.translator import Translator
from rnn_keras.models.translator_preprocessor import TranslatorPreprocessor

__all__ = [
    "CTCLoss",
    "FeatureWindowPreprocessor",
    "FrameNLL",
    "LanguageModel",
    "LanguageModelPreprocessor",
    "MaskedGlobalPooling1D",
    "NatsPerFrame",
    "NoteByNote",
    "PolyphonicModel",
    "Preprocessor",
    "PreviousFrames",
    "READ_CHUNK",
    "RecurrentBackbone",
    "SequenceAccuracy",
    "SequenceClassifier",
    "SequenceRegressor",
    "SpeechRecognizer",
    "SplitDirections",
    "SteppedTask",
    "Task",
    "TextClassifierPreprocessor",
    "TextEnsemble",
    "Translator",
    "TranslatorPreprocessor",
    "per_output_absolute_error",
    "recurrent_layer",
]
