"""Stage 3: word vectors from unlabelled news (``hoptac pretrain``), used by ``hoptac train --vectors``.

A one-off step before training: the NER learns from a few thousand annotated
paragraphs, the vectors from every paragraph of the unlabelled news.

1. The inputs are read as paragraphs (``corpus/read.py``, any corpus input) and
   tokenized by the project's tokenizer (``hoptac/tokenizer.py``), so the vectors
   are keyed on the very tokens the NER sees ("Hà Nội" is one token). Each token
   is taken in its ``NORM`` form (lower case).
2. fastText CBOW vectors with character n-grams (``VectorSettings``) are trained on
   those tokens with floret, Explosion's maintained fork of fastText (its
   ``fasttext`` mode). A token's spaces become ``_`` for fastText, and back.
3. Every word seen at least ``min_count`` times gets its vector (n-grams included)
   in a spaCy pipeline folder holding only the vocabulary's vectors, under the
   word's case forms (``case_keyed_vectors``). It is the ``[initialize] vectors``
   setting of ``configs/ner.cfg`` (``paths.vectors``).

``hoptac train --vectors DIR`` sets ``paths.vectors`` to ``DIR/vectors`` and turns on
``include_static_vectors`` in the tok2vec's embedding (``vector_overrides``). The
vectors are then saved inside the trained model. Vectors made from a research
corpus stay outside the repository, like any model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy
import spacy
from spacy.vectors import Vectors

from hoptac.corpus.read import ReadSummary, read_paragraphs
from hoptac.errors import HoptacError
from hoptac.model import new_blank
from hoptac.output import atomic_dir, check_output
from hoptac.progress import progress

logger = logging.getLogger(__name__)

VECTORS = "vectors"          # the spaCy vectors folder inside a pretrain output
META = "pretrain.json"       # what was read, the settings, the counts and the time


@dataclass(frozen=True)
class VectorSettings:
    """fastText settings (the defaults of ``hoptac pretrain``)."""

    dim: int = 100         # vector width
    min_count: int = 3     # words seen fewer times get no vector of their own
    epochs: int = 5
    min_n: int = 2         # character n-grams of 2–4 characters
    max_n: int = 4
    window: int = 5


@dataclass
class PretrainResult:
    output: Path
    paragraphs: int
    tokens: int
    words: int
    dim: int
    seconds: float
    read: ReadSummary

    def summary(self) -> str:
        return "\n".join([f"pretrained {self.output} in {self.seconds:.0f}s: {self.words} word vectors "
                          f"({self.dim} dimensions) from {self.tokens} tokens in {self.paragraphs} paragraphs",
                          *self.read.lines(),
                          f"train with: hoptac train DATASET -o MODEL --vectors {self.output}"])


def pretrain(inputs: list[Path], output: Path, settings: VectorSettings = VectorSettings(),
             force: bool = False) -> PretrainResult:
    """Train word vectors on the paragraphs of ``inputs``; write them to the folder ``output``."""
    try:
        import floret
    except ImportError:
        raise HoptacError("hoptac pretrain needs floret: pip install 'hoptac[pretrain]'") from None
    check_output(output, kind="folder", inputs=inputs, force=force)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hoptac-pretrain-") as tmp:
        text = Path(tmp) / "tokens.txt"
        paragraphs, tokens, read = _write_tokens(inputs, text)
        if tokens == 0:
            raise HoptacError(f"{', '.join(map(str, inputs))}: no text to learn vectors from")
        logger.info(f"pretrain: fastText CBOW on {tokens} tokens ({settings})")
        model = floret.train_unsupervised(
            str(text), model="cbow", mode="fasttext", dim=settings.dim, minCount=settings.min_count,
            epoch=settings.epochs, minn=settings.min_n, maxn=settings.max_n, ws=settings.window,
            thread=max(1, os.cpu_count() or 1), verbose=0)
        words = [w for w in model.get_words() if w != "</s>"]
        if not words:
            raise HoptacError(f"{', '.join(map(str, inputs))}: no word occurs {settings.min_count} times; "
                              "lower --min-count or give more text")
        data = numpy.asarray([model.get_word_vector(w) for w in words], dtype="float32")
        seconds = time.perf_counter() - started
        with atomic_dir(output, inputs=inputs, force=force, command="hoptac pretrain") as folder:
            nlp = spacy.blank("vi")
            nlp.vocab.vectors = case_keyed_vectors(nlp.vocab.strings, words, data)
            nlp.to_disk(folder / VECTORS)
            meta = {"inputs": [str(p) for p in inputs], "paragraphs": paragraphs, "tokens": tokens,
                    "words": len(words), "keys": len(nlp.vocab.vectors.key2row), "settings": asdict(settings),
                    "seconds": round(seconds, 1)}
            (folder / META).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return PretrainResult(Path(output), paragraphs, tokens, len(words), settings.dim, seconds, read)


def case_keyed_vectors(strings, words: list[str], data) -> Vectors:
    """A spaCy vectors table: row ``i`` is the vector of ``words[i]`` (lower case, ``_`` for a space
    inside a token), found under the word and its upper, title and sentence case forms.

    spaCy looks vectors up by ``ORTH``: a table keyed on ``NORM`` (``spacy init vectors --attr NORM``)
    keeps its attribute only in floret mode (spaCy 3.8 saves ``attr`` for floret tables only, and
    ``Vocab.deduplicate_vectors`` drops it), and floret's hashed n-grams would not see "hà_nội"
    and the token "hà nội" as the same string. So each vector is keyed on the case forms a word
    takes in news text: "hà nội", "Hà Nội", "HÀ NỘI", "Hà nội".
    """
    table = Vectors(strings=strings, data=data, name="hoptac_news_vectors")
    for row, word in enumerate(words):
        word = word.replace("_", " ")
        for form in dict.fromkeys((word, word.title(), word.upper(), word.capitalize())):
            table.add(form, row=row)
    return table


def _write_tokens(inputs: list[Path], path: Path) -> tuple[int, int, ReadSummary]:
    """One line per paragraph: its tokens' NORM forms, spaces inside a token as ``_``."""
    nlp = new_blank()
    stream = read_paragraphs(inputs)
    paragraphs = tokens = 0
    with path.open("w", encoding="utf-8") as f:
        bar = progress(desc="pretrain: tokenizing")
        for doc in nlp.pipe((p.text for p in stream), batch_size=1000):
            words = [t.norm_.replace(" ", "_") for t in doc if not t.is_space]
            f.write(" ".join(words) + "\n")
            paragraphs += 1
            tokens += len(words)
            bar.update()
        bar.close()
    return paragraphs, tokens, stream.summary


def vector_overrides(vectors: Path) -> list[str]:
    """The ``--set`` overrides that train the NER with the vectors of a ``hoptac pretrain`` folder."""
    folder = Path(vectors) / VECTORS
    if not (Path(vectors) / META).is_file() or not (folder / "vocab").is_dir():
        raise HoptacError(f"{vectors}: not a `hoptac pretrain` output (no {META} and {VECTORS}/)")
    return [f"paths.vectors={json.dumps(str(folder.resolve()))}",
            "components.tok2vec.model.embed.include_static_vectors=true"]
