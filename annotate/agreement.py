"""Stage 2: inter-annotator agreement on tasks annotated by two or more people.

Only submitted (not cancelled) annotations count; every pair of annotations of a
task is compared.

- Spans, per entity label: exact-match F1 (start, end and label equal), micro
  over all pairs: 2·matches / (spans of A + spans of B). An overlap F1 (same
  label, overlapping characters) is shown beside it to tell boundary
  disagreements from missed entities; it is never mixed into the exact figure.
- Sectors, per sector: Cohen's kappa (scikit-learn) over all task pairs, with
  the raw agreement and how many paragraphs each side gave the sector. Kappa is
  undefined when neither side varies (e.g. nobody chose the sector): shown "n/a".
- The ``top`` most disputed tasks: differing spans plus differing sectors.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from hoptac.annotate.duplicates import dedupe_tasks
from hoptac.annotate.export import Annotation, Task, load_exports

from hoptac.schema import LabelSchema


@dataclass
class LabelAgreement:
    a: int = 0  # spans on the first side of the pairs
    b: int = 0
    exact: int = 0
    overlap: int = 0

    def f1(self, matched: int) -> float | None:
        total = self.a + self.b
        return 2 * matched / total if total else None


@dataclass
class Disagreement:
    para_id: str
    spans: int
    sectors: int
    text: str

    @property
    def total(self) -> int:
        return self.spans + self.sectors


@dataclass
class Agreement:
    tasks: int = 0
    pairs: int = 0
    annotators: set[int] = field(default_factory=set)
    labels: dict[str, LabelAgreement] = field(default_factory=dict)
    sector_pairs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    disputed: list[Disagreement] = field(default_factory=list)

    def micro(self) -> LabelAgreement:
        total = LabelAgreement()
        for value in self.labels.values():
            total.a += value.a
            total.b += value.b
            total.exact += value.exact
            total.overlap += value.overlap
        return total

    def kappa(self, sector: str) -> float | None:
        from sklearn.metrics import cohen_kappa_score

        pairs = self.sector_pairs.get(sector, [])
        if not pairs:
            return None
        left, right = zip(*pairs)
        if len(set(left) | set(right)) < 2:
            return None  # nobody varies: kappa is 0/0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = cohen_kappa_score(left, right)
        return None if value != value else float(value)  # NaN → undefined


def compare(tasks: list[Task], schema: LabelSchema) -> Agreement:
    """Agreement figures over the tasks with ≥2 submitted annotations."""
    result = Agreement(labels={name: LabelAgreement() for name in schema.entity_names},
                       sector_pairs={name: [] for name in schema.sector_names})
    for task in tasks:
        submitted = task.submitted
        if len(submitted) < 2:
            continue
        result.tasks += 1
        result.annotators.update(a.completed_by for a in submitted if a.completed_by is not None)
        span_diff = sector_diff = 0
        for a, b in combinations(submitted, 2):
            result.pairs += 1
            span_diff += _compare_spans(a, b, result.labels)
            sector_diff += _compare_sectors(a, b, result.sector_pairs)
        result.disputed.append(Disagreement(task.para_id, span_diff, sector_diff, task.text))
    result.disputed.sort(key=lambda d: (-d.total, -d.spans, d.para_id))
    return result


def _compare_spans(a: Annotation, b: Annotation, labels: dict[str, LabelAgreement]) -> int:
    """Adds one pair's counts per label; returns the number of spans not matched exactly."""
    left = {(s.start, s.end, s.label) for s in a.spans}
    right = {(s.start, s.end, s.label) for s in b.spans}
    for label, counts in labels.items():
        mine = {s for s in left if s[2] == label}
        theirs = {s for s in right if s[2] == label}
        counts.a += len(mine)
        counts.b += len(theirs)
        counts.exact += len(mine & theirs)
        counts.overlap += _overlap_matches(sorted(mine), sorted(theirs))
    return len(left ^ right)


def _overlap_matches(mine: list[tuple], theirs: list[tuple]) -> int:
    """Greedy one-to-one matching of same-label spans that share at least one character."""
    used: set[int] = set()
    matches = 0
    for start, end, _ in mine:
        for k, (s2, e2, _) in enumerate(theirs):
            if k not in used and start < e2 and s2 < end:
                used.add(k)
                matches += 1
                break
    return matches


def _compare_sectors(a: Annotation, b: Annotation, sector_pairs: dict[str, list]) -> int:
    left, right = set(a.sectors), set(b.sectors)
    for sector, pairs in sector_pairs.items():
        pairs.append((int(sector in left), int(sector in right)))
    return len(left ^ right)


def agreement_report(paths: list[Path], schema: LabelSchema, top: int = 10) -> str:
    """The agreement of the exports as a text report. A task in several exports (pulls of one
    project) is compared once, each annotation id once (:func:`dedupe_tasks`, merging)."""
    tasks, duplicates = dedupe_tasks(load_exports(paths), merge=True)
    report = render(compare(tasks, schema), top=top)
    return report + (f"\n\nnote: {duplicates.note()}" if duplicates.note() else "")


def render(result: Agreement, top: int = 10) -> str:
    if not result.tasks:
        return "agreement: no task has two or more submitted annotations: nothing to compare"
    lines = [f"agreement over {result.tasks} task(s) with ≥2 submitted annotations "
             f"({result.pairs} pair(s), annotators {sorted(result.annotators)})", ""]
    lines.append(f"{'entity label':<18}{'spans A':>8}{'spans B':>8}{'exact':>7}{'exact F1':>10}{'overlap F1':>12}")
    rows = list(result.labels.items()) + [("micro", result.micro())]
    for name, c in rows:
        lines.append(f"{name:<18}{c.a:>8}{c.b:>8}{c.exact:>7}{_fmt(c.f1(c.exact)):>10}{_fmt(c.f1(c.overlap)):>12}")
    lines += ["", f"{'sector':<18}{'kappa':>8}{'agree':>8}{'A yes':>7}{'B yes':>7}"]
    kappas = []
    for sector, pairs in result.sector_pairs.items():
        kappa = result.kappa(sector)
        if kappa is not None:
            kappas.append(kappa)
        agree = sum(x == y for x, y in pairs) / len(pairs) if pairs else None
        lines.append(f"{sector:<18}{_fmt(kappa):>8}{_fmt(agree):>8}"
                     f"{sum(x for x, _ in pairs):>7}{sum(y for _, y in pairs):>7}")
    mean = sum(kappas) / len(kappas) if kappas else None
    lines.append(f"{'mean kappa':<18}{_fmt(mean):>8}  (over {len(kappas)} sector(s) with a defined kappa)")
    if top:
        lines += ["", f"most disputed tasks (top {min(top, len(result.disputed))}):"]
        for d in result.disputed[:top]:
            snippet = d.text if len(d.text) <= 70 else d.text[:69] + "…"
            lines.append(f"  {d.para_id}: {d.spans} span(s), {d.sectors} sector(s) differ — {snippet}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def disagreement_counts(result: Agreement) -> Counter:
    """para_id → number of differing spans + sectors (for tests and tools)."""
    return Counter({d.para_id: d.total for d in result.disputed})
