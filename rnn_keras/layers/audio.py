"""An audio front end as a Keras layer: raw waveforms in, masked log-mel frames out.

`LogMelFrontEnd` takes `{"waveforms": float32 (batch, samples), "lengths":
int32 (batch,)}` (waveforms zero-padded after their `lengths` samples) and gives
`(batch, frames, num_mel_bins)` float32 features with a Keras mask on the
frames of real audio, so the recurrent layers after it skip the padding and a
padded batch gives each clip what it gives alone (tested).

Per clip: log-mel energies (`keras.layers.MelSpectrogram`'s power, in dB
floored `top_db` below the clip's loudest: Keras's own dB floor is relative to
the whole batch), optionally their DCT (MFCCs, `cepstra`), normalised to zero
mean and unit variance per feature over the clip's real frames, padding set
to 0. In training only, SpecAugment-style masking (Park et al. 2019):
`time_masks` spans of up to `max_time_mask` frames and `frequency_masks`
spans of up to `max_frequency_mask` bands, set to 0 (the normalised mean).
"""

import keras
from keras import ops

__all__ = ["LogMelFrontEnd"]


@keras.saving.register_keras_serializable(package="rnn_keras")
class LogMelFrontEnd(keras.layers.Layer):
    """Raw audio -> normalised log-mel frames, masked after each clip's length.

    Frame t is centred on sample `t * frame_step`; a clip of n samples has
    `n // frame_step + 1` frames. Each waveform gets `fft_length // 2` zeros
    after it before the transform, so the frames of a clip do not depend on
    how much padding follows it in a batch.

    Args:
        sample_rate: samples per second of the input.
        frame_length: samples per analysis window (default 25 ms at 8 kHz).
        frame_step: samples between frames (default 10 ms at 8 kHz).
        fft_length: FFT size (>= frame_length).
        num_mel_bins: mel bands.
        min_frequency, max_frequency: the mel filters' range in Hz (max: the
            Nyquist frequency when None).
        time_masks, max_time_mask: SpecAugment time masks per clip in training,
            and the longest (frames).
        frequency_masks, max_frequency_mask: the same over mel bands.
        seed: of the training masks.
        cepstra: when set, the first `cepstra` coefficients of the DCT of the
            log-mel energies (MFCCs) instead of the energies.
        top_db: each clip's dynamic range: its energies are floored at `top_db`
            dB below its loudest.
        **kwargs: `name`, `dtype`.
    """

    def __init__(
        self,
        sample_rate=8000,
        frame_length=200,
        frame_step=80,
        fft_length=256,
        num_mel_bins=40,
        min_frequency=20.0,
        max_frequency=None,
        time_masks=0,
        max_time_mask=10,
        frequency_masks=0,
        max_frequency_mask=8,
        seed=None,
        cepstra=None,
        top_db=80.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if fft_length < frame_length:
            raise ValueError(
                "LogMelFrontEnd: `fft_length` must be at least `frame_length`. Received: "
                f"fft_length={fft_length}, frame_length={frame_length}"
            )
        self.sample_rate = sample_rate
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.fft_length = fft_length
        self.num_mel_bins = num_mel_bins
        self.min_frequency = min_frequency
        self.max_frequency = max_frequency
        self.time_masks = time_masks
        self.max_time_mask = max_time_mask
        self.frequency_masks = frequency_masks
        self.max_frequency_mask = max_frequency_mask
        self.seed = seed
        if cepstra is not None and not 0 < cepstra <= num_mel_bins:
            raise ValueError(
                "LogMelFrontEnd: `cepstra` must be between 1 and `num_mel_bins` "
                f"({num_mel_bins}). Received: cepstra={cepstra}"
            )
        self.cepstra = cepstra
        self.top_db = top_db
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.spectrogram = keras.layers.MelSpectrogram(
            fft_length=fft_length,
            sequence_stride=frame_step,
            sequence_length=frame_length,
            sampling_rate=sample_rate,
            num_mel_bins=num_mel_bins,
            min_freq=min_frequency,
            max_freq=max_frequency or sample_rate / 2,
            power_to_db=False,  # dB per clip below: Keras's floor is the whole batch's
            dtype="float32",
        )
        self.supports_masking = True

    @property
    def feature_size(self):
        """Features per frame: `cepstra` when set, else `num_mel_bins`."""
        return self.cepstra or self.num_mel_bins

    def build(self, input_shape):
        self.spectrogram.build((None, None))
        self.built = True

    def _dct(self):
        """(num_mel_bins, cepstra) orthonormal DCT-II basis: log-mel bands -> cepstra."""
        import numpy as np

        bands = self.num_mel_bins
        k = np.arange(self.cepstra)[None, :]
        n = np.arange(bands)[:, None]
        basis = np.cos(np.pi / bands * (n + 0.5) * k) * np.sqrt(2.0 / bands)
        basis[:, 0] /= np.sqrt(2.0)
        return ops.convert_to_tensor(basis.astype("float32"))

    def _padded(self, waveforms):
        return ops.pad(ops.cast(waveforms, "float32"), [[0, 0], [0, self.fft_length // 2]])

    def log_mel(self, waveforms):
        """(batch, frames, num_mel_bins) log-mel energies in dB, each clip floored at
        `top_db` below its loudest value, before normalisation (the frames after each clip's
        length included)."""
        power = ops.transpose(self.spectrogram(self._padded(waveforms)), (0, 2, 1))
        decibels = 10.0 * ops.log10(ops.maximum(power, 1e-10))
        # Each clip's floor: `top_db` below its loudest band and frame (padding is silent).
        floor = ops.max(decibels, axis=(1, 2), keepdims=True) - self.top_db
        return ops.maximum(decibels, floor)

    def frame_mask(self, inputs):
        """(batch, frames) bool: the frames of each clip's real samples."""
        padded = self._padded(inputs["waveforms"])
        # One entry per frame (samples // frame_step + 1), built with symbolic-friendly ops.
        one_per_frame = ops.pad(ops.ones_like(padded), [[0, 0], [0, 1]])[:, :: self.frame_step]
        positions = ops.cumsum(one_per_frame, axis=1) - 1
        frames = ops.cast(ops.cast(inputs["lengths"], "int32") // self.frame_step + 1, "float32")
        return positions < frames[:, None]

    def call(self, inputs, training=False):
        if not isinstance(inputs, dict) or set(inputs) != {"waveforms", "lengths"}:
            raise ValueError(
                "LogMelFrontEnd expects {'waveforms': (batch, samples), 'lengths': (batch,)}. "
                f"Received: {type(inputs).__name__}"
                + (f" with keys {sorted(inputs)}" if isinstance(inputs, dict) else "")
            )
        features = self.log_mel(inputs["waveforms"])
        if self.cepstra:
            features = ops.matmul(features, self._dct())
        real = ops.cast(self.frame_mask(inputs), "float32")[..., None]
        count = ops.maximum(ops.sum(real, axis=1, keepdims=True), 1.0)
        mean = ops.sum(features * real, axis=1, keepdims=True) / count
        variance = ops.sum(ops.square(features - mean) * real, axis=1, keepdims=True) / count
        features = (features - mean) * ops.rsqrt(variance + 1e-3) * real
        if training and (self.time_masks or self.frequency_masks):
            features = self._spec_augment(features)
        return features

    def _spans(self, batch, size, count, longest):
        """(batch, size) float: 0 inside `count` random spans of up to `longest`, else 1."""
        keep = ops.ones((batch, size))
        positions = ops.arange(size, dtype="float32")[None, :]
        for _ in range(count):
            width = keras.random.randint((batch, 1), 0, longest + 1, seed=self.seed_generator)
            start = keras.random.uniform((batch, 1), seed=self.seed_generator)
            start = ops.floor(start * ops.cast(ops.maximum(size - width, 1), "float32"))
            inside = (positions >= start) & (positions < start + ops.cast(width, "float32"))
            keep = keep * (1.0 - ops.cast(inside, "float32"))
        return keep

    def _spec_augment(self, features):
        batch, frames, bands = ops.shape(features)[0], ops.shape(features)[1], self.feature_size
        time_keep = self._spans(batch, frames, self.time_masks, self.max_time_mask)
        band_keep = self._spans(batch, bands, self.frequency_masks, self.max_frequency_mask)
        return features * time_keep[:, :, None] * band_keep[:, None, :]

    def compute_mask(self, inputs, mask=None):
        return self.frame_mask(inputs)

    def compute_output_shape(self, input_shape):
        samples = input_shape["waveforms"][1]
        frames = (
            None if samples is None else (samples + self.fft_length // 2) // self.frame_step + 1
        )
        return (input_shape["waveforms"][0], frames, self.feature_size)

    def get_config(self):
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "fft_length": self.fft_length,
            "num_mel_bins": self.num_mel_bins,
            "min_frequency": self.min_frequency,
            "max_frequency": self.max_frequency,
            "time_masks": self.time_masks,
            "max_time_mask": self.max_time_mask,
            "frequency_masks": self.frequency_masks,
            "max_frequency_mask": self.max_frequency_mask,
            "seed": self.seed,
            "cepstra": self.cepstra,
            "top_db": self.top_db,
        }
