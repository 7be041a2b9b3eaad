import os, time; os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import numpy as np, keras, rnn_keras
from rnn_keras import spoken_digits
from rnn_keras.speech import SpeechRecognizer
rec = spoken_digits.load_recordings("/work/shared/data/fsdd")
train, _ = spoken_digits.official_split(rec)
test = train & (rec.indices >= 45)  # validation: repetitions 45-49, held out of training
train = train & (rec.indices < 45)
keras.utils.set_random_seed(0)
from rnn_keras.audio import LogMelFrontEnd
U = int(os.environ.get("UNITS", 128)); A = int(os.environ.get("AUG", 2))
bb = rnn_keras.RecurrentBackbone("lstm", U, num_layers=2, bidirectional=True, input_dim=40, dropout=float(os.environ.get("DROP", 0.1)))
fe = LogMelFrontEnd(time_masks=A, max_time_mask=8, frequency_masks=A, max_frequency_mask=6, seed=0, name="front_end")
m = SpeechRecognizer(bb, spoken_digits.DIGIT_WORDS, front_end=fe)
m.compile()
tr = rec.subset(train); te = rec.subset(test)
order = np.argsort(tr.lengths())
import tensorflow as tf
def gen(seed):
    groups = [order[i:i+32] for i in range(0, len(order), 32)]
    np.random.default_rng(seed).shuffle(groups)
    for g in groups:
        yield m.audio_batch([tr.waveforms[i] for i in g]), m.label_ids([[spoken_digits.DIGIT_WORDS[d]] for d in tr.digits[g]])
sig = ({"waveforms": tf.TensorSpec([None, None], tf.float32), "lengths": tf.TensorSpec([None], tf.int32)}, tf.TensorSpec([None, None], tf.int32))
epochs = int(os.environ.get("EPOCHS", 6))
for e in range(epochs):
    ds = tf.data.Dataset.from_generator(lambda e=e: gen(e), output_signature=sig)
    t = time.time(); h = m.fit(ds, epochs=1, verbose=0)
    out = m.transcribe(te.waveforms)
    acc = np.mean([o == spoken_digits.DIGIT_WORDS[d] for o, d in zip(out, te.digits)])
    print(f"epoch {e+1} loss {h.history['loss'][-1]:.3f} val {acc:.3f} {time.time()-t:.0f}s", flush=True)
print("val clips", len(te), "train clips", len(tr)); print(m.transcribe(te.waveforms[:3], beam_width=8), [spoken_digits.DIGIT_WORDS[d] for d in te.digits[:3]])
m.save("/tmp/speech.keras"); m2 = keras.saving.load_model("/tmp/speech.keras")
print("reload equal", m2.transcribe(te.waveforms[:20]) == m.transcribe(te.waveforms[:20]))
