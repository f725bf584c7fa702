"""Stage 3 (use): batch prediction with a trained pipeline, streamed.

``hoptac predict MODEL INPUT... -o OUT.jsonl``: every paragraph of the inputs
(anything ``hoptac corpus build`` reads, via :func:`hoptac.corpus.read.read_paragraphs`)
goes through the spaCy pipeline and comes out as one JSON line::

    {"id": "doc:3", "doc_id": "doc", "text": "…",
     "entities": [{"text": "Hà Nội", "label": "LOCALITY", "start": 12, "end": 18}],
     "sectors": {"TRANSPORT": 0.8123, …}}

``start``/``end`` are character offsets into ``text``; ``sectors`` is ``doc.cats``
rounded to 4 decimals, ``{}`` when the pipeline has no sector classifier.

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
    }


def annotate(nlp, paragraphs: Iterator[Paragraph], batch_size: int = 256, n_process: int = 1) -> Iterator[dict]:
    """Stream ``paragraphs`` through ``nlp``; yields one :func:`doc_record` each, in input order."""
    if n_process > 1 and "fork" in mp.get_all_start_methods():
        yield from _annotate_in_workers(nlp, paragraphs, batch_size, n_process)
        return
    pending: deque[tuple[str, str]] = deque()

    def texts() -> Iterator[str]:
        for p in paragraphs:
            pending.append((p.id, p.doc_id))
            yield p.text

    for doc in nlp.pipe(texts(), batch_size=batch_size, n_process=n_process):
        paragraph_id, doc_id = pending.popleft()
        yield doc_record(paragraph_id, doc_id, doc)


# ---------------------------------------------------------------- n_process > 1

_WORKER_NLP = None  # the pipeline, inherited by forked workers (never pickled)


def _records_of_chunk(chunk: list[tuple[str, str, str]]) -> list[dict]:
    """Worker side: one chunk of (id, doc_id, text) → its records, in order."""
    docs = _WORKER_NLP.pipe([text for _, _, text in chunk], batch_size=len(chunk))
    return [doc_record(pid, doc_id, doc) for (pid, doc_id, _), doc in zip(chunk, docs)]


def _chunks(paragraphs: Iterator[Paragraph], size: int) -> Iterator[list[tuple[str, str, str]]]:
    chunk: list[tuple[str, str, str]] = []
    for p in paragraphs:
        chunk.append((p.id, p.doc_id, p.text))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _worker_signals() -> None:
    """Workers leave Ctrl-C to the parent (which stops the pool) and die quietly on its SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _annotate_in_workers(nlp, paragraphs: Iterator[Paragraph], batch_size: int, n_process: int) -> Iterator[dict]:
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
            for chunk in _chunks(paragraphs, batch_size):
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

    def lines(self) -> list[str]:
        lines = self.read.lines()
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        lines.append(f"entities:   {self.entities}")
        lines.append(f"with sector scores: {self.scored} paragraph(s)")
        lines.append(f"wrote {self.written} lines for {self.read.paragraphs} paragraphs in to {self.output} "
                     f"in {self.seconds:.1f}s ({rate:.0f} paragraphs/s)")
        return lines

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
    progress = _progress()
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


def predict(model: str | Path, inputs: list[Path], output: Path, batch_size: int = 256, n_process: int = 1,
            force: bool = False) -> PredictResult:
    """``hoptac predict``: write predictions for every paragraph of ``inputs`` to ``output``; returns the counts."""
    check_inputs(inputs, batch_size, n_process)
    check_output(output, kind="predictions", inputs=inputs, force=force)  # before loading the model
    nlp = load_model(model)
    return predict_to_file(nlp, inputs, output, batch_size, n_process, force=force)


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress():
    """A tqdm counter on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return _NoProgress()
    import shutil

    from tqdm import tqdm

    size = shutil.get_terminal_size((80, 24))  # a pty may report 0×0: tqdm would then print nothing
    return tqdm(unit=" paragraphs", file=sys.stderr, mininterval=0.5, smoothing=0.1,
                ncols=size.columns, nrows=size.lines)
