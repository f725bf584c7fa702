"""Stage 3 (use): batch prediction with a trained pipeline, streamed.

``hoptac predict MODEL INPUT... -o OUT.jsonl``: every paragraph of the inputs
(anything ``hoptac corpus build`` reads, via :func:`hoptac.corpus.read.read_paragraphs`)
goes through the spaCy pipeline and comes out as one JSON line::

    {"id": "doc:3", "doc_id": "doc", "text": "…",
     "entities": [{"text": "Hà Nội", "label": "LOCALITY", "start": 12, "end": 18}],
     "sectors": {"TRANSPORT": 0.8123, …}, "sector_labels": ["TRANSPORT"]}

``start``/``end`` are character offsets into ``text``; ``sectors`` is ``doc.cats``
rounded to 4 decimals, and ``sector_labels`` the sectors over the thresholds the
model tuned at training time (``doc._.sectors``, as ``spacy.load`` users get them);
``{}`` and ``[]`` when the pipeline has no sector classifier.

Nothing is held in memory but the batches in flight: paragraphs are streamed from
the inputs through ``nlp.pipe`` to a temporary file renamed over the output at the
end (``hoptac.output``: no partial output on error or signal). With one process the pipeline is fed plain
texts, not ``as_tuples=True`` (with ``as_tuples`` spaCy tokenizes in the parent
process); the paragraph ids wait in a FIFO, and ``nlp.pipe`` keeps the input
order, so the n-th doc out belongs to the n-th id in. With ``n_process > 1``
forked workers run the whole pipeline on chunks and return finished records
(see :func:`_annotate_in_workers`).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hoptac.corpus.read import Paragraph, ReadSummary, read_paragraphs
from hoptac.errors import HoptacError
from hoptac.model import load_model
from hoptac.output import atomic_file, check_output
from hoptac.progress import progress as show_progress

SCORE_DECIMALS = 4
NER = "ner"


def doc_record(paragraph_id: str, doc_id: str, doc) -> dict:
    """The output line of one paragraph."""
    return {
        "id": paragraph_id,
        "doc_id": doc_id,
        "text": doc.text,
        "entities": [{"text": ent.text, "label": ent.label_, "start": ent.start_char, "end": ent.end_char}
                     for ent in doc.ents],
        "sectors": {label: round(float(score), SCORE_DECIMALS) for label, score in doc.cats.items()},
        "sector_labels": list(doc._.sectors or []) if doc.has_extension("sectors") else [],
    }


def annotate(nlp, paragraphs: Iterator[Paragraph], batch_size: int = 256, n_process: int = 1,
             summary: ReadSummary | None = None) -> Iterator[dict]:
    """Stream ``paragraphs`` through ``nlp``; yields one :func:`doc_record` each, in input order.

    A paragraph longer than ``nlp.max_length`` (which spaCy refuses) is cut into parts of at
    most that length, after a space where there is one; the parts go through the pipeline and
    come back as one record (entity offsets into the whole paragraph, each sector's highest
    score over the parts). Each one is counted in ``summary`` (by default the read summary that
    comes with :func:`hoptac.corpus.read.read_paragraphs`' paragraphs): ``ReadSummary.split``."""
    summary = summary if summary is not None else getattr(paragraphs, "summary", None)
    items = _items(paragraphs, nlp.max_length, summary)
    if n_process > 1 and "fork" in mp.get_all_start_methods():
        yield from _annotate_in_workers(nlp, items, batch_size, n_process)
        return
    pending: deque[Item] = deque()

    def texts() -> Iterator[str]:
        for item in items:
            pending.append(item)
            yield from _part_texts(item)

    docs = nlp.pipe(texts(), batch_size=batch_size, n_process=n_process)
    for doc in docs:
        item = pending.popleft()
        parts = [doc] + [next(docs) for _ in item[3][1:]]
        yield _record(item, parts)


# ---------------------------------------------------------------- paragraphs longer than nlp.max_length

Item = tuple[str, str, str, list[int]]  # paragraph id, doc_id, text, start offset of each part


def _items(paragraphs: Iterator[Paragraph], max_length: int, summary: ReadSummary | None) -> Iterator[Item]:
    for p in paragraphs:
        starts = part_starts(p.text, max_length)
        if len(starts) > 1 and summary is not None:
            summary.split.append((p.id, len(p.text), len(starts)))
        yield p.id, p.doc_id, p.text, starts


def part_starts(text: str, max_length: int) -> list[int]:
    """Where each part of ``text`` starts, every part at most ``max_length`` characters long,
    cut after the last space that fits (mid-word only when a part has no space)."""
    starts = [0]
    while len(text) - starts[-1] > max_length:
        start = starts[-1]
        space = text.rfind(" ", start, start + max_length)
        starts.append(space + 1 if space > start else start + max_length)
    return starts


def _part_texts(item: Item) -> list[str]:
    _, _, text, starts = item
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


def _record(item: Item, docs: list) -> dict:
    """The record of one paragraph from the docs of its parts (one doc: :func:`doc_record`)."""
    paragraph_id, doc_id, text, starts = item
    if len(docs) == 1:
        return doc_record(paragraph_id, doc_id, docs[0])
    records = [doc_record(paragraph_id, doc_id, doc) for doc in docs]
    sectors: dict[str, float] = {}
    for record in records:
        for label, score in record["sectors"].items():
            sectors[label] = max(score, sectors.get(label, score))
    merged = {
        **records[0],  # every key of doc_record; those that differ per part are merged below
        "text": "".join(record["text"] for record in records),
        "entities": [{**ent, "start": ent["start"] + offset, "end": ent["end"] + offset}
                     for offset, record in zip(starts, records) for ent in record["entities"]],
        "sectors": sectors,
    }
    for key, value in records[0].items():  # label lists (e.g. sectors decided per part): any part's
        if isinstance(value, list) and key != "entities":
            merged[key] = list(dict.fromkeys(x for record in records for x in record[key]))
    return merged


# ---------------------------------------------------------------- n_process > 1

_WORKER_NLP = None  # the pipeline, inherited by forked workers (never pickled)


def _records_of_chunk(chunk: list[Item]) -> list[dict]:
    """Worker side: one chunk of paragraphs (their parts) → their records, in order."""
    texts = [text for item in chunk for text in _part_texts(item)]
    docs = iter(_WORKER_NLP.pipe(texts, batch_size=len(texts)))
    return [_record(item, [next(docs) for _ in item[3]]) for item in chunk]


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _worker_signals() -> None:
    """Workers leave Ctrl-C to the parent (which stops the pool) and die quietly on its SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _annotate_in_workers(nlp, items: Iterator[Item], batch_size: int, n_process: int) -> Iterator[dict]:
    """Chunks of ``batch_size`` paragraphs go to ``n_process`` forked workers that run the whole
    pipeline (word segmentation included) and send back finished records, not Docs.

    spaCy's own ``nlp.pipe(n_process=…)`` ships every Doc back to the parent
    (``Doc.to_bytes`` with its tensor, then ``from_bytes``): measured here it was
    slower with two processes than with one. At most ``2 × n_process`` chunks are in
    flight, so memory stays flat whatever the input size; results are taken in
    submission order, so the output order is the input order.
    """
    global _WORKER_NLP
    _WORKER_NLP = nlp
    in_flight: deque = deque()
    with mp.get_context("fork").Pool(n_process, initializer=_worker_signals) as pool:
        try:
            for chunk in _chunks(items, batch_size):
                in_flight.append(pool.apply_async(_records_of_chunk, (chunk,)))
                if len(in_flight) >= 2 * n_process:
                    yield from in_flight.popleft().get()
            while in_flight:
                yield from in_flight.popleft().get()
        finally:
            pool.terminate()
            _WORKER_NLP = None


@dataclass
class PredictResult:
    """What one run read and wrote: paragraphs in must equal lines out."""

    read: ReadSummary
    output: Path | None = None
    written: int = 0
    entities: int = 0
    scored: int = 0  # paragraphs with sector scores
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        return [*self.read.lines(), f"entities:   {self.entities}",
                f"with sector scores: {self.scored} paragraph(s)", self.written_line()]

    def written_line(self) -> str:
        return (f"wrote {self.written} lines for {self.read.paragraphs} paragraphs to {self.output} "
                f"in {self.seconds:.1f}s ({self.rate:.0f} paragraphs/s)")

    def summary(self) -> str:
        return "\n".join(self.lines())


def check_inputs(inputs: list[Path], batch_size: int, n_process: int) -> None:
    if batch_size < 1 or n_process < 1:
        raise HoptacError(f"--batch-size and --n-process must be at least 1 (got {batch_size}, {n_process})")
    if not inputs:
        raise HoptacError("no input given")
    for path in inputs:
        if not Path(path).exists():
            raise HoptacError(f"{path}: no such file or directory")


def predict_to_file(nlp, inputs: list[Path], output: Path, batch_size: int = 256, n_process: int = 1,
                    force: bool = False) -> PredictResult:
    """Stream every paragraph of ``inputs`` through ``nlp`` into ``output`` (``hoptac.output.atomic_file``)."""
    check_inputs(inputs, batch_size, n_process)
    output = Path(output)
    stats = PredictResult(ReadSummary(), output)
    start = time.perf_counter()
    progress = show_progress(desc="predict", total=known_paragraph_total(inputs) if sys.stderr.isatty() else None)
    try:
        with atomic_file(output, kind="predictions", inputs=inputs, force=force) as out:
            paragraphs = read_paragraphs(list(map(Path, inputs)), stats.read)
            for record in annotate(nlp, paragraphs, batch_size, n_process):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                stats.written += 1
                stats.entities += len(record["entities"])
                stats.scored += bool(record["sectors"])
                progress.update(1)
            if stats.written != stats.read.paragraphs:
                raise HoptacError(f"{output}: {stats.read.paragraphs} paragraphs read but {stats.written} written")
    finally:
        progress.close()
    stats.seconds = time.perf_counter() - start
    return stats


def known_paragraph_total(inputs: list[Path]) -> int | None:
    """The number of paragraphs when every input is a plain corpus file (one paragraph a line,
    ``hoptac corpus build``'s output), for a progress bar with an ETA; else None (unknown
    before reading: articles hold any number of paragraphs)."""
    total = 0
    for path in map(Path, inputs):
        if not path.is_file() or path.suffix != ".jsonl":
            return None
        with open(path, "rb") as f:
            first = f.readline()
            if b'"doc_id"' not in first or b'"index"' not in first:
                return None
            total += 1 + sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            if not first.endswith(b"\n"):
                total -= 1
    return total


def predict(model: str | Path, inputs: list[Path], output: Path, batch_size: int = 256, n_process: int = 1,
            force: bool = False) -> PredictResult:
    """``hoptac predict``: write predictions for every paragraph of ``inputs`` to ``output``; returns the counts."""
    check_inputs(inputs, batch_size, n_process)
    check_output(output, kind="predictions", inputs=inputs, force=force)  # before loading the model
    nlp = load_model(model)
    return predict_to_file(nlp, inputs, output, batch_size, n_process, force=force)
