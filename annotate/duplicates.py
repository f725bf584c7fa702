"""Stage 2 → 3: one task per Label Studio task id, whatever the number of exports it is in.

``hoptac annotate pull`` writes a new file at every pull, so a folder of pulls
holds the same tasks several times. Tasks are the same when they carry the same
Label Studio task ``id`` (tasks without an ``id`` are never merged; ``check``
still reports two tasks with one ``para_id``):

- identical copies (same ``data`` after normalisation, same annotations) are read
  once and counted (:class:`Duplicates`);
- copies that differ (a pull made before annotators changed something) are
  *conflicts*. ``check`` and ``dataset build`` report them as errors (which pull
  is right is not theirs to guess: build from the latest pull); ``agreement``
  (``merge=True``) merges them: one copy of each annotation id, the most recent
  (:func:`hoptac.annotate.merge.recency`), provided the task text is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hoptac.annotate.export import Annotation, Task
from hoptac.annotate.merge import recency

from hoptac.errors import HoptacError


@dataclass
class Duplicates:
    tasks: int = 0  # task copies dropped (identical, or merged)
    annotations: int = 0  # annotation copies dropped with them
    conflicts: list[tuple[Task, Task]] = field(default_factory=list)  # (later copy, first copy): they differ

    def note(self) -> str | None:
        """One line for the reports: what was read once."""
        if not self.tasks:
            return None
        return (f"{self.tasks} duplicate task(s) (same Label Studio task id in several exports) and "
                f"{self.annotations} duplicate annotation(s) in them were read once")

    @staticmethod
    def conflict_message(copy: Task, first: Task) -> str:
        return (f"{copy.place}: task id {copy.ls_id} is also in {first.file} with other content (two pulls "
                f"made at different times?); give only the latest pull")


def dedupe_tasks(tasks: list[Task], merge: bool = False) -> tuple[list[Task], Duplicates]:
    """``tasks`` with each Label Studio task id once, in first-appearance order (see the module doc)."""
    out: list[Task] = []
    where: dict[object, int] = {}  # task id → position in ``out``
    found = Duplicates()
    for task in tasks:
        if task.ls_id is None:
            out.append(task)
            continue
        position = where.get(task.ls_id)
        if position is None:
            where[task.ls_id] = len(out)
            out.append(task)
            continue
        kept = out[position]
        if kept.data == task.data and kept.annotations == task.annotations:
            found.tasks += 1
            found.annotations += len(task.annotations)
        elif not merge:
            found.conflicts.append((task, kept))
            out.append(task)
        elif kept.text != task.text:
            raise HoptacError(f"{task.place}: task id {task.ls_id} has another text in {kept.file}: "
                              f"exports of different projects or servers?")
        else:
            annotations, dropped = _merge_annotations(kept.annotations, task.annotations)
            out[position] = replace(kept, annotations=annotations)
            found.tasks += 1
            found.annotations += dropped
    return out, found


def _merge_annotations(first: tuple[Annotation, ...], later: tuple[Annotation, ...]) -> tuple[tuple[Annotation, ...], int]:
    """Both copies' annotations, each annotation id once (the most recent copy); the number dropped."""
    merged = list(first)
    dropped = 0
    for annotation in later:
        same = next((k for k, a in enumerate(merged)
                     if (a.id is not None and a.id == annotation.id) or a == annotation), None)
        if same is None:
            merged.append(annotation)
            continue
        dropped += 1
        if recency(annotation) > recency(merged[same]):
            merged[same] = annotation
    return tuple(merged), dropped
