"""Read articles from plain-text files and JSONL(.gz) files, streaming.

Text files: the first non-empty line is the title; every non-empty line is a
paragraph (index 0 is the title). JSONL records: ``{"id", "title", "text"}``,
``text`` holding the paragraphs one per line, the first being the title. A JSONL
file whose first record has ``doc_id`` and ``index`` is a corpus file (what
``hoptac corpus build`` writes, one paragraph per record): it is read back as
those paragraphs, with the same ids, indexes and titles. Folders, links,
unreadable and unwanted inputs: see :func:`input_files`.

A line ends wherever ``str.splitlines`` ends one: LF, CR alone, CR LF, VT (Word's
soft return), FF, NEL, U+2028, U+2029 and the FS/GS/RS controls, so none of them
glues two paragraphs together.

Every paragraph is normalised by :func:`hoptac.corpus.text.normalise` (the rules
are in that module's docstring): Unicode NFC; a tab becomes a space; other
control characters are removed; the invisible characters are removed, the text
reading as it is shown: zero-width space U+200B (in the news corpus it sits
next to spaces or inside words: "L\\u200biên hợp quốc" → "Liên hợp quốc"), soft
hyphen U+00AD ("tăng cư\\u00adờng" → "tăng cường", "Bắc\\u00adNinh" → "BắcNinh"),
ZWNJ U+200C, ZWJ U+200D, word joiner U+2060, BOM/ZWNBSP U+FEFF. No other
character changes.
"""

from __future__ import annotations

import gzip
import json
import os
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
    paragraphs: tuple[str, ...]  # paragraphs[0] is the title (unless read back from a corpus file)
    source: str  # "file" or "file:line"
    indexes: tuple[int, ...] = ()  # a corpus file read back: each paragraph's own index
    given_title: str | None = None  # a corpus file read back: the records' title

    @property
    def title(self) -> str:
        return self.given_title if self.given_title is not None else self.paragraphs[0]


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
    split: list[tuple[str, int, int]] = field(default_factory=list)  # predict: (id, characters, parts)

    def skip(self, place: str, reason: str) -> None:
        self.skipped.append((place, reason))

    def lines(self) -> list[str]:
        out = [f"files read: {self.files}", f"documents:  {self.documents}",
               f"paragraphs: {self.paragraphs}", f"skipped:    {len(self.skipped)}"]
        out += [f"  - {place}: {reason}" for place, reason in self.skipped]
        out.append(f"ignored:    {len(self.ignored)} file(s) not .txt/.jsonl/.jsonl.gz")
        out += [f"  - {path}" for path in self.ignored]
        if self.split:
            out.append(f"split:      {len(self.split)} paragraph(s) longer than the model's max_length, "
                       f"predicted in parts")
            out += [f"  - {pid}: {chars} characters, {parts} parts" for pid, chars, parts in self.split]
        return out


def split_paragraphs(text: str) -> list[str]:
    """Non-empty lines, normalised; a line ends wherever ``str.splitlines`` ends one."""
    return [p for p in (normalise(line) for line in text.splitlines()) if p.strip()]


def paragraph_id(doc_id: str, index: int) -> str:
    """Stable id of a paragraph: the same input gives the same id everywhere."""
    return f"{doc_id}:{index}"


def input_files(inputs: list[Path], summary: ReadSummary) -> list[Path]:
    """The files to read, in order: folders expanded recursively (entries sorted by name).

    In a folder, files that are not ``.txt``/``.jsonl``/``.jsonl.gz`` (and what is not a
    regular file) are ignored and listed. A symbolic link to a folder is followed, unless it
    points to a folder being read already (a loop: a named, counted skip); a file reached
    twice through links is read once (the second path is a named, counted skip). A folder
    that cannot be listed, a file that cannot be read and a broken link are one-line errors,
    as is a folder holding no article file and a ``.json`` file named directly (not articles;
    most likely a Label Studio export).
    """
    files: list[Path] = []
    reached: dict[Path, Path] = {}  # real path of a file → the path it was read by
    for path in inputs:
        path = Path(path)
        if not path.exists():
            raise HoptacError(f"{path}: {'broken symbolic link' if path.is_symlink() else 'no such file or directory'}")
        if path.is_dir():
            before, ignored = len(files), len(summary.ignored)
            _walk(path, (path.resolve(),), files, reached, summary)
            if len(files) == before:
                others = len(summary.ignored) - ignored
                raise HoptacError(f"{path}: folder holds no article file (*.txt, *.jsonl, *.jsonl.gz)"
                                  + (f"; {others} other file(s) in it" if others else ""))
        elif path.name.lower().endswith(".json"):
            raise HoptacError(f"{path}: a .json file is not read as articles (articles are .txt or .jsonl(.gz) "
                              f"files); a Label Studio export? use `hoptac dataset build` or `hoptac evaluate`")
        else:
            _add_file(path, files, reached, summary)
    return files


def _add_file(path: Path, files: list[Path], reached: dict[Path, Path], summary: ReadSummary) -> None:
    """Read ``path`` once: a file reached again (through a link, or named twice) is a counted skip."""
    real = path.resolve()
    if real in reached:
        summary.skip(str(path), f"same file as {reached[real]}")
        return
    reached[real] = path
    files.append(path)


def _walk(folder: Path, ancestors: tuple[Path, ...], files: list[Path], reached: dict[Path, Path],
          summary: ReadSummary) -> None:
    try:
        with os.scandir(folder) as entries:
            names = sorted(entry.name for entry in entries)
    except OSError as e:
        raise HoptacError(f"{folder}: cannot read folder ({e.strerror or e})") from None
    for name in names:
        child = folder / name
        if child.is_symlink() and not child.exists():
            raise HoptacError(f"{child}: broken symbolic link")
        if child.is_dir():
            real = child.resolve()
            if real in ancestors:
                summary.skip(str(child), f"symbolic link loop (to {real}, a folder being read)")
                continue
            _walk(child, ancestors + (real,), files, reached, summary)
        elif not child.is_file():
            summary.ignored.append(f"{child} (not a regular file)")
        elif not _kind(child):
            summary.ignored.append(str(child))
        else:
            _add_file(child, files, reached, summary)


def read_articles(inputs: list[Path], summary: ReadSummary | None = None) -> Iterator[Article]:
    """Stream the articles of every input, in order; fills ``summary`` as it goes.

    Reading nothing at all (every file empty) is an error, not an empty corpus."""
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
    if not summary.documents:
        names = ", ".join(map(str, inputs))
        raise HoptacError(f"{names}: no article read ({summary.files} file(s), {len(summary.skipped)} skipped: "
                          + "; ".join(f"{place}: {reason}" for place, reason in summary.skipped[:3]) + ")")


class Paragraphs(Iterator[Paragraph]):
    """The paragraphs being read, and the summary of the reading, which travels with them (so
    that what a later step does with them, e.g. predict splitting one, is counted in it too)."""

    def __init__(self, inputs: list[Path], summary: ReadSummary | None = None) -> None:
        self.summary = summary if summary is not None else ReadSummary()
        self._paragraphs = _paragraphs(inputs, self.summary)

    def __next__(self) -> Paragraph:
        return next(self._paragraphs)


def read_paragraphs(inputs: list[Path], summary: ReadSummary | None = None) -> Paragraphs:
    """Stream the paragraphs of every input, in order (``.summary``: what was read)."""
    return Paragraphs(inputs, summary)


def _paragraphs(inputs: list[Path], summary: ReadSummary) -> Iterator[Paragraph]:
    for article in read_articles(inputs, summary):
        for index, text in zip(article.indexes or range(len(article.paragraphs)), article.paragraphs):
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
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HoptacError(f"{path}: cannot read ({e.strerror or e})") from None
    paragraphs = split_paragraphs(_decode(data, str(path)))
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
    """Article records; or, when the first record has ``doc_id`` and ``index``, a corpus file
    (``hoptac corpus build``'s output, one paragraph per record) read back as the same paragraphs."""
    records = 0
    corpus: bool | None = None
    group: list[tuple[str, dict]] = []  # a corpus file: the records of the current article
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
        if corpus is None:
            corpus = "doc_id" in record and "index" in record
        if corpus:
            _check_corpus_record(place, record)
            if group and str(group[0][1]["doc_id"]) != str(record["doc_id"]):
                yield from _corpus_article(group, summary)
                group = []
            if group and record["index"] <= group[-1][1]["index"]:
                raise HoptacError(f"{place}: corpus record of {record['doc_id']!r} has index {record['index']}, "
                                  f"not after index {group[-1][1]['index']} ({group[-1][0]})")
            group.append((place, record))
            continue
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
    if group:
        yield from _corpus_article(group, summary)
    if records == 0:
        summary.skip(str(path), "empty file")


def _check_corpus_record(place: str, record: dict) -> None:
    doc_id, index, text = record.get("doc_id"), record.get("index"), record.get("text")
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool) or str(doc_id).strip() == "":
        raise HoptacError(f"{place}: corpus record has no 'doc_id' (this file's first record is a corpus record)")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise HoptacError(f"{place}: corpus record needs an integer 'index' ≥ 0, got {index!r}")
    if not isinstance(text, str):
        raise HoptacError(f"{place}: corpus record {doc_id}:{index} has no 'text' string")
    if "id" in record and record["id"] != paragraph_id(str(doc_id), index):
        raise HoptacError(f"{place}: corpus record id {record['id']!r} is not doc_id:index "
                          f"({paragraph_id(str(doc_id), index)!r})")


def _corpus_article(group: list[tuple[str, dict]], summary: ReadSummary) -> Iterator[Article]:
    """The paragraphs of one article of a corpus file, with their own indexes and title."""
    kept = []
    for place, record in group:
        text = normalise(record["text"])  # one paragraph: a line break in it becomes a space
        if text.strip():
            kept.append((record["index"], text))
        else:
            summary.skip(place, f"paragraph {record['doc_id']}:{record['index']} has empty text")
    if kept:
        title = group[0][1].get("title")
        yield Article(doc_id=str(group[0][1]["doc_id"]), paragraphs=tuple(t for _, t in kept), source=group[0][0],
                      indexes=tuple(k for k, _ in kept), given_title=normalise(title) if isinstance(title, str) else None)
