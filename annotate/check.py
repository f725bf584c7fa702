"""Stage 2 → 3: check Label Studio exports before they become a dataset.

``check_exports(paths, schema)`` counts what the exports hold (tasks, articles,
annotations, cancelled and missing ones, double annotation, spans and sectors
per label) and lists every content error, one line each, naming the file, the
task and the place. Counts of the *primary* annotation follow the merge policy
of ``annotate/merge.py`` (``ground-truth``, then most recent); "all submitted"
counts every annotation that was not cancelled. Cancelled annotations are
counted, never validated (their results are not used).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hoptac.annotate.duplicates import Duplicates, dedupe_tasks
from hoptac.annotate.export import Annotation, Task, export_files, load_exports
from hoptac.annotate.merge import GROUND_TRUTH, primary_annotation

from hoptac.schema import LabelSchema

# error category → what the table calls it
CATEGORIES = {
    "text_mismatch": "span text ≠ task text at start:end",
    "out_of_range": "span offsets out of range",
    "unknown_label": "unknown entity labels",
    "unknown_sector": "unknown sectors",
    "overlap": "overlapping spans (one annotation)",
    "duplicate_task": "duplicate tasks (same para_id, or same task id with other content)",
    "empty_span": "empty or blank spans",
}
MAX_LISTED = 50  # error lines the table shows
MAX_PER_TASK = 20  # error lines kept per task (every error is counted)


@dataclass
class CheckReport:
    files: list[str]
    entity_names: list[str]
    sector_names: list[str]
    tasks: int = 0
    articles: set[str] = field(default_factory=set)
    annotations: int = 0
    cancelled: int = 0
    unannotated_tasks: int = 0
    unsubmitted_tasks: int = 0  # no annotation, or only cancelled ones
    double_annotated_tasks: int = 0
    double_annotated_articles: set[str] = field(default_factory=set)
    entities_primary: Counter = field(default_factory=Counter)
    entities_all: Counter = field(default_factory=Counter)
    sectors_primary: Counter = field(default_factory=Counter)
    paragraphs_with_sectors: int = 0
    edge_whitespace_spans: int = 0  # a warning: guidelines keep spaces out of spans
    normalised_tasks: int = 0  # text not normal (NFD, controls…): normalised, offsets remapped
    articles_from: Counter = field(default_factory=Counter)  # Task.doc_id_from → tasks
    duplicates: Duplicates = field(default_factory=Duplicates)  # identical copies read once
    ignored_results: Counter = field(default_factory=Counter)
    # (category, message): at most MAX_PER_TASK per task, then one "… and N more" line (category "")
    problems: list[tuple[str, str]] = field(default_factory=list)
    problem_counts: Counter = field(default_factory=Counter)  # category → every error, listed or not

    @property
    def errors(self) -> list[str]:
        """The error lines kept (the first ``MAX_PER_TASK`` of each task, then how many more)."""
        return [message for _, message in self.problems]

    @property
    def error_total(self) -> int:
        return sum(self.problem_counts.values())

    def error_counts(self) -> Counter:
        counts = Counter({category: 0 for category in CATEGORIES})
        counts.update(self.problem_counts)
        return counts

    def counts(self) -> dict:
        """The figures, under the keys of the gold's ``counts.json``."""
        return {
            "tasks": self.tasks,
            "articles": len(self.articles),
            "annotations": self.annotations,
            "cancelled": self.cancelled,
            "unannotated_tasks": self.unannotated_tasks,
            "double_annotated_tasks": self.double_annotated_tasks,
            "entities_primary": {name: self.entities_primary[name] for name in self.entity_names},
            "entities_all_annotations": {name: self.entities_all[name] for name in self.entity_names},
            "sectors_primary": {name: self.sectors_primary[name] for name in self.sector_names},
            "paragraphs_with_sectors_primary": self.paragraphs_with_sectors,
            "double_annotated_articles": sorted(self.double_annotated_articles),
        }

    def error_summary(self) -> str:
        """One line: how many errors of which kind, and the first one."""
        if not self.error_total:
            return f"{_names(self.files)}: no errors"
        counts = self.error_counts()
        kinds = ", ".join(f"{n} {CATEGORIES[c]}" for c, n in counts.items() if n)
        return f"{_names(self.files)}: {self.error_total} error(s) ({kinds}); first: {self.errors[0]}"

    def table(self) -> str:
        rows = [
            ("tasks (paragraphs)", self.tasks),
            ("articles", len(self.articles)),
            ("annotations, all", self.annotations),
            ("cancelled annotations", self.cancelled),
            ("tasks without annotation", self.unannotated_tasks),
            ("tasks without a submitted annotation", self.unsubmitted_tasks),
            ("double-annotated tasks (≥2 submitted)", self.double_annotated_tasks),
            ("paragraphs with ≥1 sector (primary)", self.paragraphs_with_sectors),
        ]
        width = max(len(k) for k, _ in rows) + 2
        lines = [f"Label Studio export check: {_names(self.files)} ({len(self.files)} file(s))", ""]
        lines += [f"{k:<{width}}{v:>10}" for k, v in rows]
        lines += ["", f"{'entity spans':<{width}}{'primary':>10}  {'all submitted':>13}"]
        lines += [f"  {n:<{width - 2}}{self.entities_primary[n]:>10}  {self.entities_all[n]:>13}"
                  for n in self.entity_names]
        lines += ["", f"{'sectors (primary)':<{width}}{'paragraphs':>10}"]
        lines += [f"  {n:<{width - 2}}{self.sectors_primary[n]:>10}" for n in self.sector_names]
        lines += ["", f"{'errors':<{width}}{self.error_total:>10}"]
        lines += [f"  {CATEGORIES[c]:<{width - 2}}{n:>10}" for c, n in self.error_counts().items()]
        if self.edge_whitespace_spans:
            lines.append(f"warning: {self.edge_whitespace_spans} span(s) start or end with whitespace")
        if self.articles_from["title"]:
            lines.append(f"warning: {self.articles_from['title']} task(s) have no data.doc_id and no doc_id:index "
                         f"para_id: their article is their data.title")
        if self.articles_from["none"]:
            lines.append(f"warning: {self.articles_from['none']} task(s) have no data.doc_id, no doc_id:index "
                         f"para_id and no data.title: each is counted as an article of its own")
        if self.duplicates.note():
            lines.append(f"note: {self.duplicates.note()}")
        if self.normalised_tasks:
            lines.append(f"note: {self.normalised_tasks} task text(s) normalised (NFC, control characters "
                         f"removed…), span offsets remapped to the normalised text")
        if self.ignored_results:
            kinds = ", ".join(f"{n} '{k}'" for k, n in sorted(self.ignored_results.items()))
            lines.append(f"ignored results (not 'labels'/'choices'): {kinds}")
        if self.problems:
            lines += [""] + [f"error: {m}" for m in self.errors[:MAX_LISTED]]
            if len(self.problems) > MAX_LISTED:
                lines.append(f"… and {len(self.problems) - MAX_LISTED} more error line(s)")
        return "\n".join(lines)


def check_exports(paths: list[Path], schema: LabelSchema) -> CheckReport:
    """Count and validate every task of the exports (a folder stands for its *.json files)."""
    files = export_files(paths)
    report = CheckReport(files=[str(f) for f in files], entity_names=schema.entity_names,
                         sector_names=schema.sector_names)
    tasks, report.duplicates = dedupe_tasks(load_exports(files))
    return check_tasks(tasks, report)


def check_tasks(tasks: list[Task], report: CheckReport) -> CheckReport:
    seen: dict[str, Task] = {}
    conflicts = {id(copy): first for copy, first in report.duplicates.conflicts}
    for task in tasks:
        _count_task(task, report)
        problem = _TaskProblems(report)
        first = seen.setdefault(task.para_id, task)
        if id(task) in conflicts:
            problem("duplicate_task", Duplicates.conflict_message(task, conflicts[id(task)]))
        elif first is not task:
            problem("duplicate_task", f"{task.place}: duplicate task, para_id already used by task {first.id} in {first.file}")
        for annotation in task.submitted:
            _validate(task, annotation, report, problem)
        if problem.unlisted:
            report.problems.append(("", f"{task.place}: … and {problem.unlisted} more error(s) in this task"))
    return report


class _TaskProblems:
    """Counts every error of one task; keeps the text of the first ``MAX_PER_TASK``."""

    def __init__(self, report: CheckReport) -> None:
        self.report, self.listed, self.unlisted = report, 0, 0

    def __call__(self, category: str, message: str) -> None:
        self.report.problem_counts[category] += 1
        if self.listed < MAX_PER_TASK:
            self.report.problems.append((category, message))
            self.listed += 1
        else:
            self.unlisted += 1


def _count_task(task: Task, report: CheckReport) -> None:
    report.tasks += 1
    report.normalised_tasks += task.normalised
    report.articles_from[task.doc_id_from] += 1
    report.articles.add(task.doc_id)
    report.annotations += len(task.annotations)
    report.cancelled += sum(a.cancelled for a in task.annotations)
    report.unannotated_tasks += not task.annotations
    report.ignored_results.update(task.ignored_results)
    submitted = task.submitted
    report.unsubmitted_tasks += not submitted
    if len(submitted) >= 2:
        report.double_annotated_tasks += 1
        report.double_annotated_articles.add(task.doc_id)
    for annotation in submitted:
        report.entities_all.update(s.label for s in annotation.spans)
    primary = primary_annotation(task, GROUND_TRUTH)
    if primary is not None:
        report.entities_primary.update(s.label for s in primary.spans)
        sectors = set(primary.sectors)
        report.sectors_primary.update(sectors)
        report.paragraphs_with_sectors += bool(sectors)


def _validate(task: Task, annotation: Annotation, report: CheckReport, problem) -> None:
    text, entity_names, sector_names = task.text, set(report.entity_names), set(report.sector_names)
    where = f"{task.place} {annotation.name}"
    for k, span in enumerate(annotation.spans):
        at = f"{where}: span {span.start}:{span.end} {span.label or '(no label)'}"
        if span.label not in entity_names:
            problem("unknown_label", f"{at}: unknown entity label {span.label!r}")
        if not 0 <= span.start <= span.end <= len(text):
            problem("out_of_range", f"{at}: offsets out of range for a text of {len(text)} characters")
            continue
        actual = text[span.start:span.end]
        given = annotation.span_text_given[k] if k < len(annotation.span_text_given) else True
        if given and span.text != actual:
            problem("text_mismatch", f"{at}: exported text {span.text!r} ≠ task text {actual!r}")
        if not actual.strip():
            problem("empty_span", f"{at}: empty or blank span {actual!r}")
        elif actual != actual.strip():
            report.edge_whitespace_spans += 1
    for sector in dict.fromkeys(annotation.sectors):
        if sector not in sector_names:
            problem("unknown_sector", f"{where}: unknown sector {sector!r}")
    in_range = [s for s in annotation.spans if 0 <= s.start <= s.end <= len(text)]
    for a, b in _overlaps(in_range):
        problem("overlap", f"{where}: span {a.start}:{a.end} {a.label} {a.text!r} overlaps "
                           f"span {b.start}:{b.end} {b.label} {b.text!r}")


def _overlaps(spans) -> Iterator[tuple]:
    """Sort and sweep, in linear memory: each span that overlaps an earlier one (in start order)
    once, with the earlier span reaching furthest. n identical spans give n - 1 overlaps, not
    n·(n-1)/2 pairs."""
    ordered = sorted((s for s in spans if s.start < s.end), key=lambda s: (s.start, s.end, s.label))
    reach = None  # the span seen so far that ends last
    for span in ordered:
        if reach is not None and span.start < reach.end:
            yield reach, span
        if reach is None or span.end > reach.end:
            reach = span


def _names(files: list[str]) -> str:
    names = [Path(f).name for f in files]
    return ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} and {len(names) - 3} more"
