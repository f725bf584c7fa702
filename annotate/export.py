"""Stage 2 → 3: read Label Studio JSON exports into typed records.

A Label Studio "JSON" export is a list of tasks; each task holds ``data``
(``text``, ``title``, ``doc_id``, ``para_id``) and ``annotations``, each with a
``result`` list. Results are keyed on their ``type``, never on ``from_name``
(other projects name their controls differently):

- ``type: "labels"``  → one :class:`Span` per label in ``value.labels``;
- ``type: "choices"`` → the paragraph's sectors (``value.choices``);
- any other type (relations, text areas, ratings…) is counted and ignored.

Text is normalised as every raw text of hoptac is
(:func:`hoptac.corpus.text.normalise`: NFC, control characters removed…):
``data.text`` and ``data.title`` of each task, and the span offsets are mapped
exactly from the exported text to the normalised one
(:func:`hoptac.corpus.text.normalise_with_offsets`), so an export whose text is
decomposed (NFD) gives the same tasks as its NFC form. ``Task.normalised`` says
whether the text changed.

Structural problems (not JSON, not a list of tasks, a task without
``data.text``, a span without integer offsets) raise :class:`HoptacError`
naming the file and the task. Content problems (offsets out of range, unknown
labels, overlaps…) are loaded as they are: ``annotate/check.py`` reports them.
A folder argument stands for the ``*.json`` files inside it, sorted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from hoptac.corpus.text import Normalised, is_normal, normalise, normalise_with_offsets

from hoptac.errors import HoptacError

SPAN_TYPE = "labels"
CHOICE_TYPE = "choices"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str
    text: str  # as exported in ``value.text``; the task text at start:end when absent


@dataclass(frozen=True)
class Annotation:
    id: int | None
    completed_by: int | None
    spans: tuple[Span, ...]
    sectors: tuple[str, ...]
    cancelled: bool = False
    ground_truth: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    span_text_given: tuple[bool, ...] = ()  # per span: did the export carry value.text?

    @property
    def name(self) -> str:
        return f"annotation {self.id}" if self.id is not None else "annotation"


@dataclass(frozen=True)
class Task:
    id: int | str
    data: dict
    annotations: tuple[Annotation, ...]
    source: str  # "file#index"
    ignored_results: Counter = field(default_factory=Counter, compare=False)  # type → count
    normalised: bool = False  # data.text changed by normalisation (offsets remapped)
    ls_id: int | str | None = None  # the task's Label Studio ``id`` (None: the export gave none)

    @property
    def text(self) -> str:
        return self.data["text"]

    @property
    def title(self) -> str:
        title = self.data.get("title")
        return str(title) if title is not None else ""

    @property
    def para_id(self) -> str:
        """``data.para_id``; else ``data.id``; else ``<file stem>#<task id>``."""
        return self._data_para_id() or f"{Path(self.file).stem}#{self.id}"

    def _data_para_id(self) -> str | None:
        for key in ("para_id", "id"):
            value = self.data.get(key)
            if value is not None and str(value).strip():
                return str(value)
        return None

    @property
    def doc_id(self) -> str:
        """The article: ``data.doc_id``; else the ``doc_id`` part of a ``doc_id:index`` para_id
        (``data.para_id`` or ``data.id``); else ``data.title``; else the para_id (the paragraph
        alone: :attr:`doc_id_from` says ``"none"``)."""
        return self._article()[0]

    @property
    def doc_id_from(self) -> str:
        """Where :attr:`doc_id` comes from: ``"doc_id"``, ``"para_id"``, ``"title"`` or ``"none"``."""
        return self._article()[1]

    def _article(self) -> tuple[str, str]:
        value = self.data.get("doc_id")
        if value is not None and str(value).strip():
            return str(value), "doc_id"
        para = self._data_para_id()
        if para is not None and ":" in para:
            return para.rsplit(":", 1)[0], "para_id"
        if self.title.strip():
            return self.title, "title"
        return self.para_id, "none"

    @property
    def file(self) -> str:
        return self.source.rsplit("#", 1)[0]

    @property
    def place(self) -> str:
        """How errors name this task: ``file: task ID (para_id P)``."""
        return f"{self.file}: task {self.id} (para_id {self.para_id})"

    @property
    def submitted(self) -> list[Annotation]:
        """Annotations that were not cancelled (skipped) by the annotator."""
        return [a for a in self.annotations if not a.cancelled]


def export_files(paths: list[Path] | list[str]) -> list[Path]:
    """Files to read: each path as given, a folder standing for its ``*.json`` files, sorted."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            if not found:
                raise HoptacError(f"{path}: folder holds no *.json export")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise HoptacError(f"{path}: no such file or directory")
    if not files:
        raise HoptacError("no Label Studio export given")
    return files


def load_exports(paths: list[Path] | list[str]) -> list[Task]:
    """Every task of every export, in file order."""
    tasks: list[Task] = []
    for path in export_files(paths):
        tasks.extend(load_export(path))
    return tasks


def load_export(path: Path) -> list[Task]:
    raw = _read_json(path)
    if isinstance(raw, dict) and "data" in raw:
        raw = [raw]  # a single task
    if not isinstance(raw, list):
        raise HoptacError(f"{path}: expected a Label Studio JSON export (a list of tasks), got a JSON {type(raw).__name__}")
    return [_task(path, index, item) for index, item in enumerate(raw)]


def _read_json(path: Path):
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HoptacError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise HoptacError(f"{path}: not UTF-8 (invalid byte 0x{data[e.start]:02x} at byte offset {e.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise HoptacError(f"{path}:{e.lineno}:{e.colno}: malformed JSON ({e.msg})") from None


def _task(path: Path, index: int, item) -> Task:
    source = f"{path}#{index}"
    if not isinstance(item, dict):
        raise HoptacError(f"{path}: task #{index} is a JSON {type(item).__name__}, expected an object")
    task_id = item.get("id", index)
    data = item.get("data")
    where = f"{path}: task {task_id} (#{index})"
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise HoptacError(f"{where}: lacks data.text (the paragraph)")
    raw_annotations = item.get("annotations") or []
    if not isinstance(raw_annotations, list):
        raise HoptacError(f"{where}: 'annotations' must be a list")
    ignored: Counter = Counter()
    norm, title = normalise_with_offsets(data["text"]), data.get("title")
    if norm.changed or (isinstance(title, str) and not is_normal(title)):
        data = {**data, "text": norm.text}
        if isinstance(title, str):
            data["title"] = normalise(title)
    annotations = tuple(
        _annotation(f"{where} annotation #{k}", norm, raw, ignored)
        for k, raw in enumerate(raw_annotations)
    )
    given_id = item.get("id")
    return Task(id=task_id, data=data, annotations=annotations, source=source, ignored_results=ignored,
                normalised=norm.changed, ls_id=given_id if isinstance(given_id, (int, str)) and not
                isinstance(given_id, bool) else None)


def _annotation(where: str, text: Normalised, raw, ignored: Counter) -> Annotation:
    if not isinstance(raw, dict):
        raise HoptacError(f"{where}: expected an object")
    results = raw.get("result") or []
    if not isinstance(results, list):
        raise HoptacError(f"{where}: 'result' must be a list")
    spans: list[Span] = []
    given: list[bool] = []
    sectors: list[str] = []
    for k, result in enumerate(results):
        place = f"{where} result #{k}"
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            raise HoptacError(f"{place}: expected an object with a 'value'")
        kind, value = result.get("type"), result["value"]
        if kind == SPAN_TYPE:
            for span in _spans(place, text, value):
                spans.append(span)
                given.append(isinstance(value.get("text"), str))
        elif kind == CHOICE_TYPE:
            sectors.extend(_strings(place, value, "choices"))
        else:
            ignored[str(kind)] += 1
    return Annotation(
        id=raw.get("id"),
        completed_by=_user(raw.get("completed_by")),
        spans=tuple(spans),
        sectors=tuple(sectors),
        cancelled=bool(raw.get("was_cancelled", False)),
        ground_truth=bool(raw.get("ground_truth", False)),
        created_at=_time(raw.get("created_at")),
        updated_at=_time(raw.get("updated_at")),
        span_text_given=tuple(given),
    )


def _spans(place: str, text: Normalised, value: dict) -> list[Span]:
    """The span's offsets mapped from the exported text to the normalised one; its exported
    ``text`` normalised with it (the normalised slice when it was the exported slice)."""
    start, end = value.get("start"), value.get("end")
    if not _is_int(start) or not _is_int(end):
        raise HoptacError(f"{place}: span needs integer 'start' and 'end', got {start!r}, {end!r}")
    labels = _strings(place, value, "labels")
    if not labels:
        labels = [""]  # reported by check as an unknown (empty) label
    new_start, new_end = text.start(int(start)), text.end(int(end))
    sliced = text.text[max(new_start, 0):max(new_end, 0)]
    given = value.get("text")
    if not isinstance(given, str) or not text.changed:
        span_text = given if isinstance(given, str) else sliced
    else:
        span_text = sliced if given == text.original[max(start, 0):max(end, 0)] else normalise(given)
    return [Span(new_start, new_end, label, span_text) for label in labels]


def _strings(place: str, value: dict, key: str) -> list[str]:
    items = value.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise HoptacError(f"{place}: '{key}' must be a list of strings")
    return items


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _user(value) -> int | None:
    """``completed_by`` is a user id (older exports: an object with ``id``); nothing else is kept."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if _is_int(value) else None


def _time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
