"""Probe 2 for issue 24: true lengths in CTC, normalisation over real frames, length buckets."""
import os, time, glob, re, wave; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, keras
import rnn_keras
files = sorted(glob.glob("/work/shared/data/fsdd/recordings/*.wav"))
waves, digits, idx = [], [], []
for f in files:
    d, s, i = re.match(r".*/(\d)_(\w+)_(\d+)\.wav", f).groups()
    with wave.open(f) as r:
        w = np.frombuffer(r.readframes(r.getnframes()), "<i2").reshape(-1, r.getnchannels())[:, 0]
    waves.append(w.astype("float32") / 32768.0); digits.append(int(d)); idx.append(int(i))
digits, idx = np.array(digits), np.array(idx)
STRIDE, FFT = 80, 256
def frames(n): return 1 + (n - 1) // STRIDE  # MelSpectrogram frames with center padding? measured below

class Features(keras.layers.Layer):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.mel = keras.layers.MelSpectrogram(fft_length=FFT, sequence_stride=STRIDE, sequence_length=200, sampling_rate=8000, num_mel_bins=40, max_freq=4000)
    def call(self, waves, lengths):
        f = keras.ops.transpose(self.mel(waves), (0, 2, 1))  # (B, T, mels)
        T = keras.ops.shape(f)[1]
        n = keras.ops.minimum(lengths // STRIDE + 1, T)
        mask = keras.ops.arange(T)[None, :] < n[:, None]
        m = keras.ops.cast(mask, f.dtype)[..., None]
        cnt = keras.ops.sum(m, axis=1, keepdims=True)
        mean = keras.ops.sum(f * m, axis=1, keepdims=True) / cnt
        var = keras.ops.sum(((f - mean) * m) ** 2, axis=1, keepdims=True) / cnt
        return ((f - mean) / keras.ops.sqrt(var + 1e-3)) * m, n
wav_in = keras.Input((None,)); len_in = keras.Input((), dtype="int32")
f, n = Features()(wav_in, len_in)
x = keras.layers.Bidirectional(rnn_keras.LSTM(int(os.environ.get("UNITS", 96)), return_sequences=True))(f)
x = keras.layers.Bidirectional(rnn_keras.LSTM(int(os.environ.get("UNITS", 96)), return_sequences=True))(x)
logits = keras.layers.Dense(11)(x)
model = keras.Model([wav_in, len_in], [logits, n])

opt = keras.optimizers.Adam(float(os.environ.get("LR", 1e-3)), global_clipnorm=1.0)
model_vars = model.trainable_variables
@tf.function
def train_step(w, l, y):
    with tf.GradientTape() as tape:
        logits, n = model([w, l], training=True)
        loss = tf.reduce_mean(keras.ops.ctc_loss(y, logits, tf.ones_like(l), n, mask_index=0))
    g = tape.gradient(loss, model_vars); opt.apply_gradients(zip(g, model_vars)); return loss

def batches(sel, bs, shuffle, seed=0):
    order = np.flatnonzero(sel); order = order[np.argsort([len(waves[i]) for i in order])]
    groups = [order[i:i+bs] for i in range(0, len(order), bs)]
    if shuffle: np.random.default_rng(seed).shuffle(groups)
    for g in groups:
        L = max(len(waves[i]) for i in g); W = np.zeros([len(g), L], "float32")
        for j, i in enumerate(g): W[j, :len(waves[i])] = waves[i]
        yield W, np.array([len(waves[i]) for i in g], "int32"), (digits[g] + 1).reshape(-1, 1).astype("int32"), g
test = idx < 5; train = ~test
t0 = time.time()
for epoch in range(int(os.environ.get("EPOCHS", 8))):
    losses = [float(train_step(W, l, y)) for W, l, y, _ in batches(train, 32, True, epoch)]
    correct = 0
    for W, l, y, g in batches(test, 100, False):
        logits, n = model([W, l]); dec, _ = keras.ops.ctc_decode(logits, n, mask_index=0)
        d = np.asarray(dec[0]); pred = np.array([(r[r > 0][0] - 1) if (r > 0).any() else -1 for r in d])
        correct += (pred == digits[g]).sum()
    print(f"epoch {epoch+1} loss {np.mean(losses):.3f} test acc {correct/test.sum():.3f} t {time.time()-t0:.0f}s", flush=True)
