"""Read articles from plain-text files and JSONL(.gz) files, streaming.

Text files: the first non-empty line is the title; every non-empty line is a
paragraph (index 0 is the title). JSONL records: ``{"id", "title", "text"}``,
``text`` holding the paragraphs one per line, the first being the title.

A line ends wherever ``str.splitlines`` ends one: LF, CR alone, CR LF, VT (Word's
soft return), FF, NEL, U+2028, U+2029 and the FS/GS/RS controls, so none of them
glues two paragraphs together.

Every paragraph is normalised by :func:`hoptac.corpus.text.normalise` (the rules
are in that module's docstring): Unicode NFC; a tab becomes a space; other
control characters are removed; a zero-width space (U+200B) becomes a space
between two non-space characters and nothing elsewhere (it marks a word
boundary); the invisible characters that live inside a word are removed: soft
hyphen U+00AD ("Bắc\\u00adNinh" → "BắcNinh", as shown), ZWNJ U+200C, ZWJ U+200D,
word joiner U+2060, BOM/ZWNBSP U+FEFF. No other character changes.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hoptac.corpus.text import normalise

from hoptac.errors import HoptacError

TEXT_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class Article:
    doc_id: str
    paragraphs: tuple[str, ...]  # paragraphs[0] is the title
    source: str  # "file" or "file:line"

    @property
    def title(self) -> str:
        return self.paragraphs[0]


@dataclass(frozen=True)
class Paragraph:
    id: str
    doc_id: str
    index: int
    title: str
    text: str

    def to_dict(self) -> dict:
        return {"id": self.id, "doc_id": self.doc_id, "index": self.index,
                "title": self.title, "text": self.text}


@dataclass
class ReadSummary:
    """What was read: the counts must add up, so nothing is lost silently."""

    files: int = 0
    documents: int = 0
    paragraphs: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (place, reason)
    ignored: list[str] = field(default_factory=list)  # files in folders, not articles

    def skip(self, place: str, reason: str) -> None:
        self.skipped.append((place, reason))

    def lines(self) -> list[str]:
        out = [f"files read: {self.files}", f"documents:  {self.documents}",
               f"paragraphs: {self.paragraphs}", f"skipped:    {len(self.skipped)}"]
        out += [f"  - {place}: {reason}" for place, reason in self.skipped]
        out.append(f"ignored:    {len(self.ignored)} file(s) not .txt/.jsonl/.jsonl.gz")
        out += [f"  - {path}" for path in self.ignored]
        return out


def split_paragraphs(text: str) -> list[str]:
    """Non-empty lines, normalised; a line ends wherever ``str.splitlines`` ends one."""
    return [p for p in (normalise(line) for line in text.splitlines()) if p.strip()]


def paragraph_id(doc_id: str, index: int) -> str:
    """Stable id of a paragraph: the same input gives the same id everywhere."""
    return f"{doc_id}:{index}"


def input_files(inputs: list[Path], summary: ReadSummary) -> list[Path]:
    """Expand folders (recursively, sorted); unknown files in folders are ignored and listed."""
    files: list[Path] = []
    for path in inputs:
        if not path.exists():
            raise HoptacError(f"{path}: no such file or directory")
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if _kind(child):
                    files.append(child)
                else:
                    summary.ignored.append(str(child))
        else:
            files.append(path)
    return files


def read_articles(inputs: list[Path], summary: ReadSummary | None = None) -> Iterator[Article]:
    """Stream the articles of every input, in order; fills ``summary`` as it goes."""
    summary = summary if summary is not None else ReadSummary()
    seen: dict[str, str] = {}
    for path in input_files(inputs, summary):
        summary.files += 1
        reader = _read_jsonl if _kind(path) == "jsonl" else _read_text
        for article in reader(path, summary):
            if article.doc_id in seen:
                raise HoptacError(
                    f"{article.source}: document id {article.doc_id!r} already used at {seen[article.doc_id]}"
                )
            seen[article.doc_id] = article.source
            summary.documents += 1
            summary.paragraphs += len(article.paragraphs)
            yield article


def read_paragraphs(inputs: list[Path], summary: ReadSummary | None = None) -> Iterator[Paragraph]:
    for article in read_articles(inputs, summary):
        for index, text in enumerate(article.paragraphs):
            yield Paragraph(paragraph_id(article.doc_id, index), article.doc_id, index,
                            article.title, text)


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def _decode(data: bytes, place: str) -> str:
    nul = data.find(b"\x00")
    if nul >= 0:
        raise HoptacError(f"{place}: binary file (NUL byte at byte offset {nul}), expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise HoptacError(f"{place}: not UTF-8 (invalid byte 0x{data[e.start]:02x} at byte offset {e.start})") from None


def _read_text(path: Path, summary: ReadSummary) -> Iterator[Article]:
    paragraphs = split_paragraphs(_decode(path.read_bytes(), str(path)))
    if not paragraphs:
        summary.skip(str(path), "empty file")
        return
    yield Article(doc_id=path.stem, paragraphs=tuple(paragraphs), source=str(path))


def _jsonl_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            yield from enumerate(f, start=1)
    except (OSError, EOFError, zlib.error) as e:
        raise HoptacError(f"{path}: cannot read ({e})") from None


def _read_jsonl(path: Path, summary: ReadSummary) -> Iterator[Article]:
    records = 0
    for number, raw in _jsonl_lines(path):
        place = f"{path}:{number}"
        line = _decode(raw, place)
        if not line.strip():
            continue
        records += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise HoptacError(f"{place}: malformed JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(record, dict):
            raise HoptacError(f"{place}: expected a JSON object with 'id', 'title', 'text'")
        doc_id, text = record.get("id"), record.get("text")
        if not isinstance(doc_id, (str, int)) or str(doc_id).strip() == "":
            raise HoptacError(f"{place}: record has no 'id'")
        if not isinstance(text, str):
            raise HoptacError(f"{place}: record {doc_id!r} has no 'text' string")
        paragraphs = split_paragraphs(text)
        if not paragraphs:
            summary.skip(place, f"record {doc_id!r} has empty text")
            continue
        yield Article(doc_id=str(doc_id), paragraphs=tuple(paragraphs), source=place)
    if records == 0:
        summary.skip(str(path), "empty file")
