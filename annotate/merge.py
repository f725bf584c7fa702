"""Stage 2 → 3: the merge policy — which annotation of a task becomes the training example.

``ground-truth`` (the default): among the task's submitted (not cancelled)
annotations, the one marked ``ground_truth`` wins; with none marked (or several),
the most recent wins (``updated_at``, then ``created_at``, then the annotation id).

``ground-truth+majority-sectors``: the spans of that same annotation, but the
sectors voted over every submitted annotation: a sector is kept when at least
half of the annotations chose it. Ties are INCLUDED on purpose: with two
annotators a sector either one of them saw is kept (their union), because
a paragraph may speak of several sectors and a missed sector is the commoner
annotation error. With one annotator both policies give the same result.

A task with no submitted annotation has no primary annotation (``None``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from hoptac.annotate.export import Annotation, Task

from hoptac.errors import HoptacError

GROUND_TRUTH = "ground-truth"
MAJORITY_SECTORS = "ground-truth+majority-sectors"
POLICIES = (GROUND_TRUTH, MAJORITY_SECTORS)

_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise HoptacError(f"unknown merge policy {policy!r}: use one of {', '.join(POLICIES)}")
    return policy


def recency(annotation: Annotation) -> tuple:
    """Sort key: later ``updated_at``, then later ``created_at``, then higher id, sorts last."""
    return (annotation.updated_at or _EPOCH, annotation.created_at or _EPOCH,
            annotation.id if isinstance(annotation.id, int) else -1)


def primary_annotation(task: Task, policy: str = GROUND_TRUTH) -> Annotation | None:
    """The annotation that represents ``task`` under ``policy`` (``None``: nothing submitted)."""
    check_policy(policy)
    submitted = task.submitted
    if not submitted:
        return None
    marked = [a for a in submitted if a.ground_truth]
    chosen = max(marked or submitted, key=recency)
    if policy == MAJORITY_SECTORS and len(submitted) > 1:
        chosen = replace(chosen, sectors=majority_sectors(submitted, first=chosen))
    return chosen


def majority_sectors(annotations: list[Annotation], first: Annotation | None = None) -> tuple[str, ...]:
    """Sectors chosen by at least half of ``annotations`` (ties included), in order of appearance."""
    votes: dict[str, int] = {}
    ordered = ([first] if first is not None else []) + [a for a in annotations if a is not first]
    for annotation in ordered:
        for sector in dict.fromkeys(annotation.sectors):
            votes[sector] = votes.get(sector, 0) + 1
    return tuple(s for s, n in votes.items() if 2 * n >= len(annotations))


def chosen_annotators(task: Task, policy: str = GROUND_TRUTH) -> list[int]:
    """User ids behind the example: the primary annotator; every voter under majority-sectors."""
    primary = primary_annotation(task, policy)
    if primary is None:
        return []
    voters = task.submitted if policy == MAJORITY_SECTORS else [primary]
    return sorted({a.completed_by for a in voters if a.completed_by is not None})
