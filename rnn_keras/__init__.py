"""rnn_keras: the classic recurrent cells as exact, tested Keras 3 layers."""

from rnn_keras.cells import CELLS, GRUCell, LSTMCell, SimpleRNNCell, get_cell
from rnn_keras.models import CharRNN, MaskedGlobalMaxPooling1D, SequenceClassifier, recurrent_layer

__version__ = "0.1.0"

__all__ = [
    "CELLS",
    "CharRNN",
    "GRUCell",
    "LSTMCell",
    "MaskedGlobalMaxPooling1D",
    "SequenceClassifier",
    "SimpleRNNCell",
    "get_cell",
    "recurrent_layer",
]
