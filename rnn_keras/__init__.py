"""rnn_keras: the classic recurrent cells as exact, tested Keras 3 layers."""

from rnn_keras.cells import CELLS, GRUCell, LSTMCell, SimpleRNNCell, get_cell
from rnn_keras.layers import GRU, LAYERS, LSTM, SimpleRNN, get_layer
from rnn_keras.models import CharRNN, MaskedGlobalPooling1D, SequenceClassifier, recurrent_layer
from rnn_keras.text import ReviewStandardizer

__version__ = "0.1.0"

__all__ = [
    "CELLS",
    "CharRNN",
    "GRU",
    "LAYERS",
    "LSTM",
    "GRUCell",
    "LSTMCell",
    "MaskedGlobalPooling1D",
    "ReviewStandardizer",
    "SequenceClassifier",
    "SimpleRNN",
    "SimpleRNNCell",
    "get_cell",
    "get_layer",
    "recurrent_layer",
]
