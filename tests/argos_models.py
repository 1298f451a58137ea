"""Real Argos Translate packages with random weights, built here, offline, for tests and benchmarks.

A package is what the Argos package index serves: a zip (`.argosmodel`) of one folder holding
metadata.json, a CTranslate2 Transformer in `model/` and `sentencepiece.model`. The model has
the right architecture and random weights, so it translates into nonsense of the right shape:
tests check what is stored and how, never the words. It ships no sentence splitter (Stanza,
MiniSBD): the gateway splits sentences itself and never fetches one.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LANGUAGE_NAMES = {"en": "English", "fr": "French", "zh": "Chinese", "sw": "Swahili"}
# What the tokenizer learns its pieces from: a few lines in the languages the tests use.
TRAINING_LINES = [
    "Since March 2026 the river next to the mine is orange.",
    "Children who bathe in it have rashes.",
    "Stop the discharge and clean the river.",
    "The discharge pipe of the mine ends in the river.",
    "Depuis mars 2026, la rivière à côté de la mine est orange.",
    "Les enfants qui s'y baignent ont des boutons.",
    "Arrêtez le rejet et nettoyez la rivière.",
    "冶炼厂的废水流进了村里的水田。",
    "停止排放并赔偿损失。",
    "有照片和村民证言。",
    "Mto karibu na mgodi ni wa rangi ya machungwa.",
]


@dataclass(frozen=True)
class ModelSize:
    """The shape of the Transformer."""

    layers: int = 2
    width: int = 64
    heads: int = 2
    feed_forward: int = 128
    vocabulary: int = 0  # 0: the tokenizer's pieces only; more pads the vocabulary
    quantization: str | None = None
    # Added to the end-of-sentence logit: random weights rarely end a sentence by themselves,
    # so a tiny model would decode to the length limit every time.
    end_bias: float = 0.0


TINY = ModelSize(end_bias=2.0)
# The size of Argos's own packages: 6 encoder and 6 decoder layers, width 512.
REALISTIC = ModelSize(layers=6, width=512, heads=8, feed_forward=2048, vocabulary=32_000,
                      quantization="int8")


def build_package(folder: Path, source: str, target: str, version: str = "1.0",
                  size: ModelSize = TINY, seed: int = 0,
                  lines: Sequence[str] = TRAINING_LINES) -> Path:
    """Write `translate-<source>_<target>-<version>.argosmodel` into `folder`; its path.

    The tokenizer learns from `lines`: text like them is cut into as many pieces as a real
    package would cut it (about a word each), other text into letters."""
    name = f"translate-{source}_{target}-{version.replace('.', '_')}"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / name
        (root / "model").mkdir(parents=True)
        vocabulary = _train_tokenizer(root / "sentencepiece.model", lines, size.vocabulary)
        _random_transformer(root / "model", vocabulary, size, seed)
        (root / "metadata.json").write_text(json.dumps({
            "package_version": version, "argos_version": "1.9.0", "type": "translate",
            "from_code": source, "from_name": LANGUAGE_NAMES.get(source, source),
            "to_code": target, "to_name": LANGUAGE_NAMES.get(target, target),
        }), encoding="utf-8")
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / f"{name}.argosmodel"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
            for path in sorted(root.rglob("*")):
                zipped.write(path, path.relative_to(scratch).as_posix())
    return archive


def _train_tokenizer(path: Path, lines: Sequence[str], vocabulary_size: int) -> list[str]:
    """A SentencePiece model learnt from `lines`; the model's vocabulary."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(list(lines) * 4), model_writer=model,
        vocab_size=max(200, min(8000, len(" ".join(lines).split()))),
        hard_vocab_limit=False, character_coverage=1.0, minloglevel=2)
    path.write_bytes(model.getvalue())
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(path))
    vocabulary = [pieces.id_to_piece(i) for i in range(pieces.get_piece_size())]
    return vocabulary + [f"▁x{i}" for i in range(vocabulary_size - len(vocabulary))]


def _random_transformer(folder: Path, vocabulary: list[str], size: ModelSize, seed: int) -> None:
    """A CTranslate2 Transformer spec with every weight drawn at random, saved to `folder`."""
    import numpy as np
    from ctranslate2.specs import transformer_spec

    spec = transformer_spec.TransformerSpec.from_config((size.layers, size.layers), size.heads)
    random = np.random.default_rng(seed)
    for name, value in spec.variables().items():
        if value is None:
            shape = _shape(name, len(vocabulary), size)
            leaf = name.rsplit("/", 1)[-1]
            weight = (np.ones(shape) if leaf == "gamma" else np.zeros(shape) if leaf == "beta"
                      else random.standard_normal(shape) / np.sqrt(shape[-1]))
            _set(spec, name, weight.astype(np.float32))
    bias = np.zeros(len(vocabulary), dtype=np.float32)
    bias[vocabulary.index("</s>")] = size.end_bias
    for silent in ("<unk>", "<s>", "▁"):  # pieces that decode to nothing: never say only these
        bias[vocabulary.index(silent)] = -20.0
    spec.decoder.projection.bias = bias
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    spec.validate()
    spec.optimize(quantization=size.quantization)
    spec.save(str(folder))


def _shape(name: str, vocabulary: int, size: ModelSize) -> tuple[int, ...]:
    """The shape of one weight, from where it sits in the Transformer."""
    *_, block, layer, leaf = name.split("/")
    width, hidden = size.width, size.feed_forward
    if layer.startswith("embeddings") or layer == "projection":
        return (vocabulary, width)
    if leaf in ("gamma", "beta"):
        return (width,)
    if block == "ffn":
        return (hidden, width) if layer == "linear_0" else (width, hidden)
    if block == "self_attention":  # queries, keys and values in one matrix, then the output
        return (3 * width, width) if layer == "linear_0" else (width, width)
    # encoder-decoder attention: queries; keys and values; the output
    return {"linear_0": (width, width), "linear_1": (2 * width, width),
            "linear_2": (width, width)}[layer]


def _set(spec: object, name: str, value: object) -> None:
    """Assign a weight by its path ("decoder/layer_0/ffn/linear_0/weight")."""
    *path, leaf = name.split("/")
    node = spec
    for part in path:
        base, _, index = part.rpartition("_")
        if index.isdigit() and isinstance(getattr(node, base, None), list):
            node = getattr(node, base)[int(index)]
        else:
            node = getattr(node, part)
    setattr(node, leaf, value)
