"""Running the `.tflite` files of `rnn_keras.export.to_litert` with LiteRT alone.

This module imports NumPy and `ai_edge_litert` only (no TensorFlow, Keras or
rnn_keras), so it can be copied to a device beside the model files and run
there:

    python on_device.py generate saved_models/char_rnn_step.tflite "ROMEO:" --chars 200
    python on_device.py classify saved_models/imdb.tflite "A moving, beautiful film."
    python on_device.py ops saved_models/imdb.tflite

Each model file has a JSON file beside it (same name, `.json`) with what its
signature cannot hold: a char model's vocabulary and start token; a review
classifier's vocabulary and the rule that turns a review into token ids
(string ops are not LiteRT builtins, so the tokenizer is the pure-Python
`review_token_ids` below, the same rule as the SavedModel's
`ReviewStandardizer` + `TextVectorization`).

* `op_names(path)`: the ops of a `.tflite` file (what a device must support).
* `CharGenerator`: a step-by-step loop over a language model's `step`
  signature, states passed in and out: `generate` (sampled or greedy text) and
  `nats` (the negative log-likelihood of a text, for checking the export).
* `ReviewClassifier`: a review's probability of being positive.

**A fused LSTM op keeps its state from one call to the next.** LiteRT's
`UNIDIRECTIONAL_SEQUENCE_LSTM` holds its hidden and cell states in variable
tensors of the interpreter, starting from zeros and updated by every
`invoke()` (the converter refuses any other form of initial state). That is
how LiteRT streams a sequence in chunks; to read independent sequences, call
`interpreter.reset_all_variables()` before each one, as `ReviewClassifier`
does. (Resizing an input also resets them, by reallocating the tensors.)
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

try:
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter
except ImportError as error:  # this file imports nothing of rnn_keras: the message is here
    if error.name is None or not error.name.startswith("ai_edge_litert"):
        raise
    raise ImportError(
        "rnn_keras's on-device runner needs LiteRT's interpreter (ai-edge-litert), which "
        'rnn-keras installs with an extra. Expected it installed: pip install "rnn-keras[litert]". '
        f"Received: {error}"
    ) from error

__all__ = [
    "REVIEW_RULE",
    "CharGenerator",
    "ReviewClassifier",
    "metadata_path",
    "op_names",
    "review_token_ids",
]

_OP_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if name.isupper()}


def op_names(model):
    """The op of every node of a `.tflite` model (a path or its bytes), in order.

    Builtin ops by name (e.g. "UNIDIRECTIONAL_SEQUENCE_LSTM", "WHILE");
    custom ops, Flex (Select TF) ops included, as "CUSTOM:<their name>".
    """
    if isinstance(model, (str, Path)):
        model = Path(model).read_bytes()
    flat = schema.Model.GetRootAs(model, 0)
    codes = [flat.OperatorCodes(i) for i in range(flat.OperatorCodesLength())]
    names = []
    for g in range(flat.SubgraphsLength()):
        subgraph = flat.Subgraphs(g)
        for i in range(subgraph.OperatorsLength()):
            code = codes[subgraph.Operators(i).OpcodeIndex()]
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                names.append(f"CUSTOM:{code.CustomCode().decode()}")
            else:
                names.append(_OP_NAMES[builtin])
    return names


def metadata_path(model_path):
    """The JSON file beside a model: the same path with `.json`."""
    return Path(model_path).with_suffix(".json")


def _read_metadata(model_path, kind):
    path = metadata_path(model_path)
    if not path.exists():
        raise FileNotFoundError(f"{kind}: {model_path} needs its metadata beside it, at {path}")
    metadata = json.loads(path.read_text(encoding="utf-8"))
    if metadata.get("kind") != kind:
        raise ValueError(
            f"{kind}: {path} describes a {metadata.get('kind')!r} model. Expected: {kind!r}"
        )
    return metadata


class CharGenerator:
    """A language model's `step` signature run one token at a time, states explicit.

    Args:
        model_path: a `.tflite` of `to_litert(language_model, path, function="step")`,
            with its JSON beside it (`vocabulary`, id 0 unknown; `start_id`;
            `separator`, "" for characters).
        num_threads: interpreter threads (None: LiteRT's default).
    """

    def __init__(self, model_path, num_threads=None):
        self.metadata = _read_metadata(model_path, "language_model_step")
        self.vocabulary = self.metadata["vocabulary"]
        self.ids = {token: i for i, token in enumerate(self.vocabulary)}
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
        runner = self.interpreter.get_signature_runner("step")
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        del runner  # the loop below sets and reads the tensors directly (no copies, no checks)
        self.interpreter.allocate_tensors()
        self._ids, self._state = inputs["ids"]["index"], inputs["state"]["index"]
        self._logits, self._new_state = outputs["logits"]["index"], outputs["state"]["index"]
        self.state_size = self.metadata["state_size"]

    def _tokens(self, text):
        return list(text) if not self.metadata["separator"] else text.split()

    def token_ids(self, text):
        """The ids of `text`'s tokens (0 for a token outside the vocabulary)."""
        return [self.ids.get(token, 0) for token in self._tokens(text)]

    def initial_state(self):
        return np.zeros([1, self.state_size], np.float32)

    def step(self, token_id, state):
        """One token from `state` (float32 `[1, S]`): `(logits [V], new state [1, S])`."""
        interpreter = self.interpreter
        interpreter.set_tensor(self._ids, np.array([token_id], np.int32))
        interpreter.set_tensor(self._state, state)
        interpreter.invoke()
        return interpreter.get_tensor(self._logits)[0], interpreter.get_tensor(self._new_state)

    def read(self, ids, state=None):
        """Reads `ids` from `state` (zeros): `(logits after the last, state)`."""
        state = self.initial_state() if state is None else state
        logits = None
        for token_id in ids:
            logits, state = self.step(token_id, state)
        return logits, state

    def generate(self, prompt, num_chars, temperature=1.0, seed=None):
        """`prompt` followed by `num_chars` new tokens (temperature 0: the most likely).

        As the SavedModel's `generate`: the prompt is read from the zero state
        (an empty prompt starts after the start token), then each new token is
        drawn from softmax(logits / temperature), never id 0.
        """
        if num_chars < 0 or not temperature >= 0 or math.isinf(temperature):
            raise ValueError(
                "CharGenerator.generate: expected num_chars >= 0 and a finite temperature >= 0. "
                f"Received: num_chars={num_chars!r}, temperature={temperature!r}"
            )
        rng = np.random.default_rng(seed)
        ids = self.token_ids(prompt) or [self.metadata["start_id"]]
        logits, state = self.read(ids)
        new = []
        for _ in range(num_chars):
            logits = logits.astype(np.float64)
            logits[0] = -np.inf
            if temperature == 0:
                token_id = int(np.argmax(logits))
            else:  # inverse CDF of softmax(logits / temperature)
                scaled = logits / temperature
                cumulative = np.cumsum(np.exp(scaled - scaled.max()))
                token_id = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], "right"))
            new.append(self.vocabulary[token_id])
            logits, state = self.step(token_id, state)
        separator = self.metadata["separator"]
        joined = separator.join(new)
        return prompt + (separator if separator and prompt and new else "") + joined

    def nats(self, text):
        """`(nats, scored)`: the negative log-likelihood of tokens 2..n given those before
        (the SavedModel's `score`)."""
        ids = self.token_ids(text)
        state, total = self.initial_state(), 0.0
        for current, following in zip(ids[:-1], ids[1:], strict=True):
            logits, state = self.step(current, state)
            logits = logits.astype(np.float64)
            top = logits.max()
            total += top + math.log(np.exp(logits - top).sum()) - logits[following]
        return total, max(len(ids) - 1, 0)


_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~]')
_TAGS = re.compile(r"<[^>]*>")
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")
# What TensorFlow's `unicode_transcode(replace_control_characters=True)` replaces with U+FFFD:
# the C0 control characters, tab, line feed and carriage return included.
_CONTROL = re.compile("[\x00-\x1f]")


# The tokenizing rule of `review_token_ids`, also written into a review classifier's JSON.
REVIEW_RULE = (
    "keep the first max_bytes bytes of the UTF-8 text (invalid bytes become U+FFFD, as do the "
    "C0 control characters U+0000-U+001F, tab and line feed included), lowercase, replace "
    "U+0085, U+2028, U+2029 and HTML tags <...> with a space, drop apostrophes, replace other "
    "ASCII punctuation with a space, split at spaces, look each word up in the vocabulary (id 1 "
    "for a word outside it; id 0 pads) and keep the first max_tokens ids"
)


def review_token_ids(text, vocabulary_ids, max_tokens, max_bytes):
    """The token ids of a review by `REVIEW_RULE`, the rule of the IMDB model's
    `ReviewStandardizer` and `TextVectorization` (tested to give the same ids)."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    text = text[:max_bytes].decode("utf-8", "replace")
    text = _CONTROL.sub("\ufffd", text).lower()
    text = _TAGS.sub(" ", _LINE_BREAKS.sub(" ", text)).replace("'", "")
    words = _PUNCTUATION.sub(" ", text).split(" ")  # no other ASCII whitespace is left
    ids = [vocabulary_ids.get(word, 1) for word in words if word]
    return np.array(ids[:max_tokens], np.int32)


class ReviewClassifier:
    """A review classifier's network on token ids, with its tokenizer in pure Python.

    Args:
        model_path: a `.tflite` of `to_litert(classifier, path)` (signature
            `serve`, token ids `[1, None]`), with its JSON beside it
            (`vocabulary`, id 0 padding and 1 unknown; `max_tokens`, `max_bytes`).
        num_threads: interpreter threads (None: LiteRT's default).
    """

    def __init__(self, model_path, num_threads=None):
        self.metadata = _read_metadata(model_path, "review_classifier")
        self.vocabulary_ids = {word: i for i, word in enumerate(self.metadata["vocabulary"])}
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
        runner = self.interpreter.get_signature_runner("serve")
        (details,) = runner.get_input_details().values()
        self._input = details["index"]
        self._output = runner.get_output_details()["output"]["index"]
        del runner  # `predict_ids` resizes, resets and invokes the interpreter itself
        self._length = None

    def token_ids(self, text):
        return review_token_ids(
            text, self.vocabulary_ids, self.metadata["max_tokens"], self.metadata["max_bytes"]
        )

    def predict_ids(self, ids):
        """The probability of a review given as token ids (one review at its true length;
        no ids: one padding step, as the SavedModel reads an empty review)."""
        ids = np.asarray(ids, np.int32).reshape(1, -1)
        if ids.shape[1] == 0:
            ids = np.zeros([1, 1], np.int32)
        interpreter = self.interpreter
        if ids.shape[1] != self._length:  # reallocating also zeroes the fused LSTMs' states
            interpreter.resize_tensor_input(self._input, ids.shape)
            interpreter.allocate_tensors()
            self._length = ids.shape[1]
        else:  # the fused LSTMs' states, left by the last review: back to zeros
            interpreter.reset_all_variables()
        interpreter.set_tensor(self._input, ids)
        interpreter.invoke()
        return float(interpreter.get_tensor(self._output).reshape(-1)[0])

    def predict(self, text):
        """The probability that the review `text` is positive."""
        return self.predict_ids(self.token_ids(text))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run rnn_keras's .tflite models with LiteRT.")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="text from a language model's step")
    generate.add_argument("model")
    generate.add_argument("prompt")
    generate.add_argument("--chars", type=int, default=200)
    generate.add_argument("--temperature", type=float, default=0.8)
    generate.add_argument("--seed", type=int, default=None)
    classify = commands.add_parser("classify", help="a review's probability of being positive")
    classify.add_argument("model")
    classify.add_argument("texts", nargs="+")
    ops = commands.add_parser("ops", help="the ops of a .tflite file")
    ops.add_argument("model")
    args = parser.parse_args(argv)
    if args.command == "generate":
        generator = CharGenerator(args.model)
        print(generator.generate(args.prompt, args.chars, args.temperature, args.seed))
    elif args.command == "classify":
        classifier = ReviewClassifier(args.model)
        for text in args.texts:
            print(f"{classifier.predict(text):.4f}\t{text}")
    else:
        for name in sorted(set(op_names(args.model))):
            print(name)


if __name__ == "__main__":
    sys.exit(main())
