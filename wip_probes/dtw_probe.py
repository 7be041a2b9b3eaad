import os, time; os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import numpy as np
from rnn_keras import spoken_digits as sd
rec = sd.load_recordings("/work/shared/data/fsdd")
train, test = sd.official_split(rec)
t = time.time(); feats = sd.clip_features(rec.waveforms); print("features s", time.time()-t)
tr = [feats[i] for i in np.flatnonzero(train)]; te = [feats[i] for i in np.flatnonzero(test)]
n = int(os.environ.get("N", 30))
t = time.time(); pred = sd.nearest_neighbour_dtw(tr, rec.digits[train], te[:n]); dt = time.time()-t
print("dtw 1-nn acc on", n, (pred == rec.digits[test][:n]).mean(), "s per query", dt / n)
