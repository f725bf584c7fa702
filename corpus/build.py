"""``hoptac corpus build``: articles in, one JSON line per paragraph out."""

from __future__ import annotations

import json
from pathlib import Path

from hoptac.corpus.read import ReadSummary, read_paragraphs

from hoptac.errors import HoptacError
from hoptac.output import atomic_file
from hoptac.progress import progress


def build_corpus(inputs: list[Path], output: Path, force: bool = False) -> ReadSummary:
    """Write every paragraph of ``inputs`` to ``output`` (JSONL), atomically (``hoptac.output``)."""
    summary = ReadSummary()
    bar = progress(desc="corpus")
    try:
        with atomic_file(output, kind="corpus", inputs=inputs, force=force) as out:
            for paragraph in read_paragraphs(inputs, summary):
                out.write(json.dumps(paragraph.to_dict(), ensure_ascii=False) + "\n")
                bar.update(1)
    finally:
        bar.close()
    return summary


def read_corpus(path: Path) -> list[dict]:
    """Read a corpus file written by :func:`build_corpus`."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise HoptacError(f"{path}:{number}: malformed JSON ({e.msg})") from None
            missing = {"id", "doc_id", "index", "title", "text"} - set(row)
            if missing:
                raise HoptacError(f"{path}:{number}: corpus line lacks {', '.join(sorted(missing))}")
            rows.append(row)
    return rows
