"""Stage 3 (training): silver paragraphs — unlabelled news annotated by the rules (a teacher for the model).

``hoptac train --silver NEWS`` adds ``silver_size`` paragraphs (``[hoptac]``
section of ``configs/ner.cfg``), drawn with a fixed seed from anything ``hoptac
corpus build`` reads, to the training split: their entities and sectors are the
rules' predictions (``hoptac.annotate.rules``). Articles of the dataset (any split),
by id or by title, are never drawn, so nothing of the test split leaks in. The gold training paragraphs
are repeated ``gold_repeat`` times so that they outweigh the silver ones where
the two disagree. Only labels the dataset has are kept; a dataset whose labels
the rules do not produce gets no silver data.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from hoptac.annotate.rules import rules_pipeline
from hoptac.corpus.read import read_paragraphs
from hoptac.errors import HoptacError
from hoptac.progress import progress
from hoptac.schema import load_schema

logger = logging.getLogger(__name__)

MIN_CHARS, MAX_CHARS = 40, 800
OVERSAMPLE = 3  # draw this many times silver_size, keep the first silver_size with an entity


def title_key(title: str | None) -> str:
    """Case- and space-insensitive key of an article title (to spot a copy of a dataset article under another id)."""
    return " ".join((title or "").lower().split())


def sample_paragraphs(inputs: list[Path], size: int, exclude_docs: set[str], seed: int = 0,
                      exclude_titles: set[str] = frozenset()) -> tuple[list[dict], int]:
    """Reservoir sample of ``size`` paragraphs (not titles, 40–800 chars); returns (rows, paragraphs seen).

    Articles whose id is in ``exclude_docs`` or whose title (:func:`title_key`) is in
    ``exclude_titles`` are never drawn: a corpus may hold a dataset article twice under two
    ids (the shared news corpus holds one of the batch-2 articles a second time)."""
    rng = random.Random(seed)
    sample: list[dict] = []
    seen = 0
    bar = progress(desc="silver draw")
    for paragraph in read_paragraphs(list(inputs)):
        bar.update(1)
        if paragraph.doc_id in exclude_docs or paragraph.index == 0:
            continue
        if exclude_titles and title_key(paragraph.title) in exclude_titles:
            continue
        if not (MIN_CHARS <= len(paragraph.text) <= MAX_CHARS):
            continue
        seen += 1
        row = paragraph.to_dict()
        if len(sample) < size:
            sample.append(row)
        else:
            k = rng.randrange(seen)
            if k < size:
                sample[k] = row
    bar.close()
    return sample, seen


def silver_rows(inputs: list[Path], size: int, exclude_docs: set[str], entity_labels: list[str],
                sector_labels: list[str], seed: int = 0, exclude_titles: set[str] = frozenset()) -> list[dict]:
    """Dataset-like rows (tokens, offsets, spans, sectors as names) annotated by the rules."""
    for path in inputs:
        if not Path(path).exists():
            raise HoptacError(f"{path}: no such silver corpus file or folder")
    rule_labels = set(load_schema().entity_names)  # the rules produce the schema's labels
    wanted = set(entity_labels)
    if not (rule_labels & wanted):
        logger.info(f"[silver] the rules label {', '.join(sorted(rule_labels))}, the dataset {', '.join(entity_labels)}: no silver data")
        return []
    sample, seen = sample_paragraphs(inputs, size * OVERSAMPLE, exclude_docs, seed, exclude_titles)
    nlp = rules_pipeline()
    rows = []
    sectors = set(sector_labels)
    for row, doc in zip(sample, nlp.pipe([r["text"] for r in sample], batch_size=64)):
        if len(rows) >= size:
            break
        if not any(e.label_ in wanted for e in doc.ents):
            continue  # keep paragraphs the rules find something in: the news at large is mostly off-topic
        rows.append({
            "id": row["id"], "doc_id": row["doc_id"], "text": row["text"],
            "tokens": [t.text for t in doc],
            "token_starts": [t.idx for t in doc], "token_ends": [t.idx + len(t.text) for t in doc],
            "spans": [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text}
                      for e in doc.ents if e.label_ in wanted],
            "sectors": [name for name, score in doc.cats.items() if score >= 0.5 and name in sectors],
        })
    entities = sum(len(r["spans"]) for r in rows)
    logger.info(f"[silver] {len(rows)} paragraphs with an entity, of {len(sample)} drawn (seed {seed}) from {seen} eligible, "
        f"annotated by the rules: "
        f"{entities} entities, {sum(1 for r in rows if r['sectors'])} with a sector")
    return rows
