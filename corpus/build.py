"""``hoptac corpus build``: articles in, one JSON line per paragraph out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hoptac.corpus.read import ReadSummary, read_paragraphs

from hoptac.errors import HoptacError


def build_corpus(inputs: list[Path], output: Path) -> ReadSummary:
    """Write every paragraph of ``inputs`` to ``output`` (JSONL). Atomic: no partial file on error."""
    summary = ReadSummary()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            for paragraph in read_paragraphs(inputs, summary):
                out.write(json.dumps(paragraph.to_dict(), ensure_ascii=False) + "\n")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
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
