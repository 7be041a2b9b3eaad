import os, time; os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import numpy as np, keras, tensorflow as tf, rnn_keras
from rnn_keras import spoken_digits as sd
from rnn_keras.speech import SpeechRecognizer
from rnn_keras.audio import LogMelFrontEnd
rec = sd.load_recordings("/work/shared/data/fsdd")
tr_sel = rec.indices >= 5; va_sel = tr_sel & (rec.indices >= 45); tr_sel = tr_sel & (rec.indices < 45)
tr, va = rec.subset(tr_sel), rec.subset(va_sel)
N = int(os.environ.get("N", 3000))
tw, tl = sd.digit_strings(tr, N, seed=1); vw, vl = sd.digit_strings(va, 300, seed=2)
W = sd.DIGIT_WORDS
keras.utils.set_random_seed(0)
bb = rnn_keras.RecurrentBackbone("lstm", 128, num_layers=2, bidirectional=True, input_dim=40, dropout=0.1)
fe = LogMelFrontEnd(time_masks=2, max_time_mask=8, frequency_masks=2, max_frequency_mask=6, seed=0, name="front_end")
m = SpeechRecognizer(bb, W, front_end=fe); m.compile()
order = np.argsort([len(w) for w in tw])
def gen(seed):
    groups = [order[i:i+16] for i in range(0, len(order), 16)]
    np.random.default_rng(seed).shuffle(groups)
    for g in groups:
        yield m.audio_batch([tw[i] for i in g]), m.label_ids([[W[d] for d in tl[i]] for i in g])
sig = ({"waveforms": tf.TensorSpec([None, None], tf.float32), "lengths": tf.TensorSpec([None], tf.int32)}, tf.TensorSpec([None, None], tf.int32))
def edits(a, b):
    d = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        prev, d[0] = d.copy(), i
        for j in range(1, len(b) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1]
for e in range(int(os.environ.get("EPOCHS", 6))):
    t = time.time(); h = m.fit(tf.data.Dataset.from_generator(lambda e=e: gen(e), output_signature=sig), epochs=1, verbose=0)
    out = m.transcribe(vw)
    errs = sum(edits(o.split(), [W[d] for d in ref]) for o, ref in zip(out, vl)); total = sum(len(r) for r in vl)
    acc = np.mean([o.split() == [W[d] for d in ref] for o, ref in zip(out, vl)])
    print(f"epoch {e+1} loss {h.history['loss'][-1]:.3f} val DER {errs/total:.4f} strings {acc:.3f} {time.time()-t:.0f}s", flush=True)
