"""Stage 3 (serve): the local store of annotations submitted in Label Studio, crash-safe.

``hoptac serve`` appends every annotation event Label Studio sends to its
``/webhook`` here before it answers, and retrains from what the store holds.

The store is one SQLite database in WAL mode with ``synchronous=FULL``: each
event is one transaction, committed (and so on disk) before the webhook is
answered. SQLite's journal makes a write interrupted by a crash (power cut,
``kill -9``) roll back as a whole on the next open: it loses nothing that was
acknowledged and corrupts nothing. Each record also carries the SHA-256 of its
JSON, so that damage SQLite cannot see (a flipped byte inside a record, a hand
edit) is found too.

:func:`open_store` checks the file at start-up (``PRAGMA integrity_check``,
the table layout, every record's checksum and JSON) and refuses a damaged or
partial store with a one-line error naming the file and the record: such a
store is never used silently. The only things kept per annotation are what
training needs: the task's id and ``data`` (text, title, doc_id, para_id), and
the annotation's id, result, author id, flags and times. Project settings and
tokens that a webhook payload also carries are not stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from hoptac.errors import HoptacError

SCHEMA_VERSION = 1
_TABLES = {
    "meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "events": ("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, "
               "task_id INTEGER NOT NULL, annotation_id INTEGER, record TEXT NOT NULL, sha256 TEXT NOT NULL)"),
}
TASK_DATA_KEYS = ("text", "title", "doc_id", "para_id")
ANNOTATION_KEYS = ("id", "result", "completed_by", "was_cancelled", "ground_truth", "created_at", "updated_at",
                   "lead_time")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    action: str
    task: dict  # {"id", "data"}
    annotation: dict | None


class AnnotationStore:
    """Append-only annotation events in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path, connection: sqlite3.Connection, events: int) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.Lock()
        self.events = events

    # ------------------------------------------------------------ writing

    def append(self, action: str, task: dict, annotation: dict | None) -> int:
        """Store one event durably (committed and synced when this returns); its sequence number."""
        record = json.dumps({"action": action, "task": task, "annotation": annotation}, ensure_ascii=False,
                            sort_keys=True)
        annotation_id = annotation.get("id") if isinstance(annotation, dict) else None
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT INTO events (action, task_id, annotation_id, record, sha256) VALUES (?, ?, ?, ?, ?)",
                (action, int(task["id"]), annotation_id if isinstance(annotation_id, int) else None, record,
                 _digest(record)))
            self.events += 1
            return int(cursor.lastrowid)

    # ------------------------------------------------------------ reading

    def read(self) -> list[StoredEvent]:
        with self._lock:
            rows = self._db.execute("SELECT seq, record, sha256 FROM events ORDER BY seq").fetchall()
        return [_event(self.path, *row) for row in rows]

    def export_tasks(self) -> list[dict]:
        """The stored annotations as Label Studio export tasks: one task per task id (its latest data),
        each annotation once (its latest event). Deletions in Label Studio are not followed."""
        tasks: dict[int, dict] = {}
        annotations: dict[int, dict[int, dict]] = {}
        for event in self.read():
            task_id = int(event.task["id"])
            tasks[task_id] = event.task
            kept = annotations.setdefault(task_id, {})
            annotation = event.annotation
            if annotation is not None:
                kept[annotation.get("id")] = annotation
        return [{"id": task_id, "data": tasks[task_id]["data"], "annotations": list(annotations[task_id].values())}
                for task_id in tasks if annotations[task_id]]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(path: str | Path) -> AnnotationStore:
    """Open (or create) the store at ``path``, checked whole; a damaged store is a one-line error."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise HoptacError(f"{path}: the annotation store is not a file")
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        _check_header(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if new:
            with db:
                for sql in _TABLES.values():
                    db.execute(sql)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        events = _check(path, db)
    except sqlite3.DatabaseError as e:
        raise HoptacError(f"{path}: the annotation store is damaged ({e}); it was not used — "
                          "restore it from a backup or move it away to start a new one") from None
    return AnnotationStore(path, db, events)


def _check_header(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(100)
    if not head.startswith(b"SQLite format 3\x00"):
        raise HoptacError(f"{path}: not an annotation store (not an SQLite database); it was not used")
    if len(head) < 100:
        raise HoptacError(f"{path}: the annotation store is cut short ({len(head)} bytes); it was not used")


def _check(path: Path, db: sqlite3.Connection) -> int:
    problems = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise HoptacError(f"{path}: the annotation store is damaged ({'; '.join(problems[:3])}); it was not used — "
                          "restore it from a backup or move it away to start a new one")
    tables = {name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type='table'")}
    for name, sql in _TABLES.items():
        if tables.get(name) != sql:
            raise HoptacError(f"{path}: not a hoptac annotation store (table {name!r} missing or different); "
                              "it was not used")
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if not version or version[0] != str(SCHEMA_VERSION):
        raise HoptacError(f"{path}: annotation store version {version[0] if version else 'missing'}, "
                          f"expected {SCHEMA_VERSION}; it was not used")
    count = 0
    for seq, record, sha in db.execute("SELECT seq, record, sha256 FROM events ORDER BY seq"):
        _event(path, seq, record, sha)
        count += 1
    return count


def _event(path: Path, seq: int, record: str, sha: str) -> StoredEvent:
    if _digest(record) != sha:
        raise HoptacError(f"{path}: record {seq} of the annotation store does not match its checksum "
                          "(damaged); the store was not used")
    try:
        raw = json.loads(record)
        return StoredEvent(seq, raw["action"], raw["task"], raw["annotation"])
    except (ValueError, KeyError, TypeError):
        raise HoptacError(f"{path}: record {seq} of the annotation store is not a stored event; "
                          "the store was not used") from None


STORED_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


def event_parts(payload: dict) -> tuple[str, dict | None, dict | None]:
    """(action, task, annotation) of a webhook payload, reduced to what the store keeps; task and
    annotation are None for an action the store does not keep (:data:`STORED_ACTIONS`).

    Raises ValueError with a clear message for a stored action whose payload has not the shape of one."""
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError("'action' must be a non-empty string")
    if action not in STORED_ACTIONS:
        return action, None, None
    task = payload.get("task")
    annotation = payload.get("annotation")
    if not isinstance(task, dict) or not isinstance(task.get("id"), int) or not isinstance(task.get("data"), dict):
        raise ValueError("'task' must be an object with an integer 'id' and a 'data' object")
    if not isinstance(task["data"].get("text"), str):
        raise ValueError("'task.data.text' must be a string")
    if not isinstance(annotation, dict) or not isinstance(annotation.get("result"), list):
        raise ValueError("'annotation' must be an object with a 'result' list")
    kept_task = {"id": task["id"], "data": {k: task["data"][k] for k in TASK_DATA_KEYS if k in task["data"]}}
    kept_annotation = {k: annotation[k] for k in ANNOTATION_KEYS if k in annotation}
    if isinstance(kept_annotation.get("completed_by"), dict):
        kept_annotation["completed_by"] = kept_annotation["completed_by"].get("id")
    return action, kept_task, kept_annotation
