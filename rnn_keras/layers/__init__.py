"""Layers: the guide's cells and the sequence layers over them (with their fused kernels),
attention, the audio front end, pooling and preprocessing layers.

    cells.py               SimpleRNNCell, LSTMCell, GRUCell (one step, one fused matmul)
    dropout.py             DropoutMasks: one dropout mask per sequence
    recurrent.py           SimpleRNN, LSTM, GRU: keras.layers.RNN with the fused fast path
    fused.py               the fused whole-sequence kernels and their hand-written BPTT
    attention.py           SequenceAttention, AttentionDecoder
    audio.py               LogMelFrontEnd
    pooling.py             MaskedGlobalPooling1D, SplitDirections
    preprocessing.py       ImputeMissing, CyclicalEncoding (sensor windows)
    text_preprocessing.py  ReviewStandardizer, FeatureWeights (text)
"""

from rnn_keras.layers.attention import AttentionDecoder, SequenceAttention
from rnn_keras.layers.audio import LogMelFrontEnd
from rnn_keras.layers.cells import CELLS, GRUCell, LSTMCell, SimpleRNNCell, get_cell
from rnn_keras.layers.dropout import DropoutMasks
from rnn_keras.layers.pooling import MaskedGlobalPooling1D, SplitDirections
from rnn_keras.layers.preprocessing import CyclicalEncoding, ImputeMissing
from rnn_keras.layers.recurrent import (
    GRU,
    IMPLEMENTATIONS,
    LAYERS,
    LSTM,
    USE_CUDNN,
    USE_FUSED,
    SequenceLayer,
    SimpleRNN,
    fused_unavailable_reason,
    get_layer,
)
from rnn_keras.layers.text_preprocessing import FeatureWeights, ReviewStandardizer

__all__ = [
    "AttentionDecoder",
    "CELLS",
    "CyclicalEncoding",
    "DropoutMasks",
    "FeatureWeights",
    "GRU",
    "GRUCell",
    "IMPLEMENTATIONS",
    "ImputeMissing",
    "LAYERS",
    "LSTM",
    "LSTMCell",
    "LogMelFrontEnd",
    "MaskedGlobalPooling1D",
    "ReviewStandardizer",
    "SequenceAttention",
    "SequenceLayer",
    "SimpleRNN",
    "SimpleRNNCell",
    "SplitDirections",
    "USE_CUDNN",
    "USE_FUSED",
    "fused_unavailable_reason",
    "get_cell",
    "get_layer",
]
