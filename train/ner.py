"""Stage 3 (training): the spaCy NER model.

Dataset rows become ``Doc`` objects built from the dataset's own tokens (spaces
from the character offsets, so tokenization is exactly the dataset's) with
entities from ``spans`` (or, failing that, the BIO ``ner_tags``); they are
written as DocBin files and trained with spaCy's training loop from the
committed ``configs/ner.cfg`` (plus ``--set`` overrides). Labels come from the
data, never from a hard-coded list.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import spacy
from confection import ConfigValidationError
from hoptac.train.align import bio_to_spans
from spacy.tokens import Doc, DocBin, Span

from hoptac.components import LexiconFeatures
from hoptac.errors import HoptacError
from hoptac.lexicon import rules_lexicon, tokenizer_places
from hoptac.model import blank_vi
from hoptac.tokenizer import TOKENIZER, VietnameseWords

logger = logging.getLogger(__name__)


@dataclass
class NerResult:
    nlp: "spacy.language.Language"
    steps: int
    seconds: float
    best_f1: float | None  # best ents_f on the validation docs (None if no validation split)
    labels: list[str]


def parse_overrides(items: list[str]) -> dict:
    """``["training.max_steps=20", "paths.x=\\"a\\""]`` → spaCy overrides; values are JSON-ish (else strings)."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or "." not in key or not value.strip():
            raise HoptacError(f"--set {item!r}: expected section.key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def config_error(config: Path, error, overrides: dict) -> str:
    """One line for a spaCy config validation error: the key, the value and what is wrong with it,
    naming the ``--set`` override the value came from (never the whole config spaCy prints)."""
    problems = []
    for item in error.errors or []:
        loc = ".".join(str(part) for part in item.get("loc", ()))
        loc = f"{error.parent}.{loc}" if error.parent else loc
        key = next((k for k in overrides if k == loc or k.endswith(f".{loc}")), None)
        where = f"--set {key}={json.dumps(overrides[key], ensure_ascii=False)}" if key else f"{config}: {loc}"
        problems.append(f"{where}: {item.get('msg', 'invalid value')}")
    if not problems:
        return f"{config}: invalid config ({error.title or type(error).__name__})"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


HOPTAC_DEFAULTS = {"silver_size": 0, "gold_repeat": 1, "silver_seed": 0}


def hoptac_settings(config: Path, overrides: dict) -> dict:
    """The ``[hoptac]`` section of the NER config (with overrides): silver data settings."""
    if not Path(config).is_file():
        raise HoptacError(f"{config}: NER config not found")
    try:
        cfg = spacy.util.load_config(config, overrides=overrides, interpolate=False)
    except Exception as e:
        raise HoptacError(f"{config}: cannot load the NER config ({' '.join(str(e).split())[:300]})") from None
    settings = {**HOPTAC_DEFAULTS, **dict(cfg.get("hoptac", {}))}
    for key, value in settings.items():
        if key not in HOPTAC_DEFAULTS:  # a misspelt setting would otherwise be ignored without a word
            raise HoptacError(f"{config}: [hoptac] unknown setting {key!r} (known: {', '.join(HOPTAC_DEFAULTS)})")
        if not isinstance(value, int) or value < 0:
            raise HoptacError(f"{config}: [hoptac] {key} must be a whole number ≥ 0, not {value!r}")
    return settings


def spaces_from_offsets(text: str, starts: list[int], ends: list[int]) -> list[bool]:
    """A token is followed by a space when the next token (or the text end) starts later."""
    follow = list(starts[1:]) + [len(text)]
    return [end < nxt for end, nxt in zip(ends, follow)]


def row_to_doc(vocab, row: dict) -> Doc:
    """A Doc with the dataset's tokens and gold entities (from ``spans``, else from BIO tags)."""
    words = list(row["tokens"])
    if "token_starts" in row and "token_ends" in row and row.get("text") is not None:
        spaces = spaces_from_offsets(row["text"], row["token_starts"], row["token_ends"])
    else:
        spaces = [True] * len(words)
    doc = Doc(vocab, words=words, spaces=spaces)
    ents = []
    spans = row.get("spans")
    if spans is not None and doc.text == row.get("text"):
        for s in spans:
            span = doc.char_span(s["start"], s["end"], label=s["label"], alignment_mode="strict")
            if span is None:
                raise HoptacError(f"{row.get('id')}: span {s['start']}-{s['end']} {s['label']} is not on token boundaries")
            ents.append(span)
    else:
        ents = [Span(doc, first, end, label=label) for first, end, label in bio_to_spans(row.get("ner_tags") or [])]
    doc.ents = spacy.util.filter_spans(ents)
    return doc


def write_docbin(vocab, rows: list[dict], path: Path) -> int:
    db = DocBin(store_user_data=False)
    for row in rows:
        db.add(row_to_doc(vocab, row))
    db.to_disk(path)
    return len(db)


class SpacyTrainingLog:
    """Where spaCy's training loop writes its table: passed on to ``stream``, but without the
    line naming the loop's temporary output folder (deleted once the best model is kept), and
    without ANSI colour codes when ``stream`` is not a terminal (a redirected log)."""

    ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, stream) -> None:
        self.stream = stream
        self.colour = hasattr(stream, "isatty") and stream.isatty()

    def write(self, text: str) -> int:
        if "Saved pipeline to output directory" in text:
            return len(text)
        self.stream.write(text if self.colour else self.ANSI.sub("", text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def train_ner(train_rows: list[dict], dev_rows: list[dict], config: Path, work: Path,
              overrides: dict) -> NerResult:
    """Train spaCy NER in ``work`` (DocBins, model-best, model-last); return the best pipeline."""
    if not Path(config).is_file():
        raise HoptacError(f"{config}: NER config not found")
    if not any(r.get("spans") or any(t != "O" for t in r.get("ner_tags") or []) for r in train_rows):
        raise HoptacError("the training split has no entity: nothing for NER to learn")
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_loop

    work.mkdir(parents=True, exist_ok=True)
    vocab = blank_vi().vocab
    train_path, dev_path = work / "train.spacy", work / "dev.spacy"
    write_docbin(vocab, train_rows, train_path)
    # spaCy's loop needs a dev corpus: without a validation split, score on train (said in the log).
    if not dev_rows:
        logger.info("ner: no validation paragraphs: scoring checkpoints on the training split")
    write_docbin(vocab, dev_rows or train_rows, dev_path)
    all_overrides = {"paths.train": str(train_path), "paths.dev": str(dev_path), **overrides}
    try:
        cfg = spacy.util.load_config(config, overrides=all_overrides, interpolate=False)
    except Exception as e:  # bad override key or config syntax
        raise HoptacError(f"{config}: cannot load the NER config ({' '.join(str(e).split())[:300]})") from None
    cfg["training"]["before_update"] = {"@callbacks": STEP_COUNTER}
    _STEPS["last"] = 0
    started = time.time()
    try:
        nlp = init_nlp(cfg, use_gpu=-1)
    except ConfigValidationError as e:  # a value of the wrong type, from --set or the config file
        raise HoptacError(config_error(config, e, overrides)) from None
    if isinstance(nlp.tokenizer, VietnameseWords):
        nlp.tokenizer.set_places(tokenizer_places())
        logger.info(f"ner: tokenizer {TOKENIZER} with {len(nlp.tokenizer.places)} places")
    for name, pipe in nlp.pipeline:
        if isinstance(pipe, LexiconFeatures):
            phrases, first = rules_lexicon()
            pipe.set_lexicon(phrases, first)
            logger.info(f"ner: lexicon features '{name}': " + ", ".join(f"{k} {len(v)}" for k, v in {**phrases, **first}.items()))
    labels = list(nlp.get_pipe("ner").labels)
    logger.info(f"ner: labels {', '.join(labels)}; {len(train_rows)} train / {len(dev_rows)} validation paragraphs")
    out = work / "ner"
    out.mkdir(parents=True, exist_ok=True)
    log = SpacyTrainingLog(sys.stderr)  # spaCy's progress table, without its temporary paths
    nlp, _ = train_loop(nlp, out, use_gpu=-1, stdout=log, stderr=log)
    seconds = time.time() - started
    best_dir = out / "model-best"
    best = spacy.load(best_dir if best_dir.exists() else out / "model-last")
    perf = best.meta.get("performance", {}) or {}
    return NerResult(best, _STEPS["last"], seconds, perf.get("ents_f") if dev_rows else None, labels)


STEP_COUNTER = "hoptac.count_steps.v1"
_STEPS = {"last": 0}


@spacy.registry.callbacks(STEP_COUNTER)
def _count_steps():
    """``training.before_update`` hook (set at train time only): remembers the last step number."""
    def before_update(nlp, info):
        _STEPS["last"] = int(info.get("step", 0)) + 1
    return before_update
