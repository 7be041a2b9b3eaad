"""What every other part of rnn_keras may use: timing and optional dependencies."""
