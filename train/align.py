"""Stage 3: tokens, span-to-token alignment and BIO tags for the dataset.

Tokens come from the project's tokenizer (``hoptac.tokenizer``: spaCy's ``vi``
with pyvi word segmentation, which joins syllables into words: "Hà Nội" is one
token; glued abbreviation stops and place + name words are split). A character span whose boundary
falls inside a token is *expanded* to the token's boundaries (a boundary on
whitespace moves to the nearest word: that counts as expanded too). An aligned
span is *dropped*, with its reason, when it covers no word or when it would
overlap a span already kept: spans that were already exact are kept first,
then expanded ones in text order. Per label, exact + expanded + dropped = input.

BIO: ``B-X`` opens an entity, ``I-X`` continues it, ``O`` is outside. Reading
tags back, an ``I-X`` that does not continue an ``X`` opens a new entity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hoptac.model import blank_vi

EXACT, EXPANDED, DROPPED = "exact", "expanded", "dropped"
MAX_EXAMPLES = 5


def _nlp():
    return blank_vi()


def tokenize(text: str) -> tuple[list[str], list[int], list[int]]:
    """Tokens of ``text`` with their character start and end offsets."""
    doc = _nlp().make_doc(text)
    return ([t.text for t in doc], [t.idx for t in doc], [t.idx + len(t.text) for t in doc])


def spans_to_bio(n_tokens: int, token_spans: list[tuple[int, int, str]]) -> list[str]:
    """Token spans ``(first, end_exclusive, label)`` (non-overlapping) → BIO tags."""
    tags = ["O"] * n_tokens
    for first, end, label in token_spans:
        if not 0 <= first < end <= n_tokens:
            raise ValueError(f"token span {first}:{end} outside 0:{n_tokens}")
        if any(tag != "O" for tag in tags[first:end]):
            raise ValueError(f"token span {first}:{end} {label} overlaps another span")
        tags[first] = f"B-{label}"
        for k in range(first + 1, end):
            tags[k] = f"I-{label}"
    return tags


def bio_to_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """BIO tags → token spans ``(first, end_exclusive, label)``."""
    spans: list[tuple[int, int, str]] = []
    first, label = None, None
    for k, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-")
        continues = prefix == "I" and label == name
        if first is not None and not continues:
            spans.append((first, k, label))
            first, label = None, None
        if prefix in ("B", "I") and not continues:
            first, label = k, name
    return spans


@dataclass
class LabelAlignment:
    exact: int = 0
    expanded: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason → count
    examples: dict[str, list[str]] = field(default_factory=dict)  # "expanded"/"dropped" → examples

    @property
    def total(self) -> int:
        return self.exact + self.expanded + sum(self.dropped.values())

    @property
    def kept(self) -> int:
        return self.exact + self.expanded


@dataclass
class AlignmentReport:
    """Per label: how many input spans were kept exact, expanded or dropped (and why)."""

    labels: dict[str, LabelAlignment] = field(default_factory=dict)

    def label(self, name: str) -> LabelAlignment:
        return self.labels.setdefault(name, LabelAlignment())

    def add(self, name: str, status: str, reason: str = "", example: str = "") -> None:
        entry = self.label(name)
        if status == EXACT:
            entry.exact += 1
        elif status == EXPANDED:
            entry.expanded += 1
        else:
            entry.dropped[reason] += 1
        shown = entry.examples.setdefault(status, []) if status != EXACT else None
        if example and shown is not None and len(shown) < MAX_EXAMPLES:
            shown.append(example)

    def rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """(label, input, exact, expanded, dropped, kept)."""
        return [(n, e.total, e.exact, e.expanded, sum(e.dropped.values()), e.kept)
                for n, e in self.labels.items()]

    def table(self) -> str:
        lines = [f"{'label':<14}{'input':>7}{'exact':>7}{'expanded':>10}{'dropped':>9}{'kept':>7}"]
        lines += [f"{n:<14}{i:>7}{x:>7}{e:>10}{d:>9}{k:>7}" for n, i, x, e, d, k in self.rows()]
        for name, entry in self.labels.items():
            for reason, count in sorted(entry.dropped.items()):
                lines.append(f"  dropped {name}: {count} × {reason}")
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = ["| label | input spans | kept exact | expanded to token boundaries | dropped | kept |",
                 "| --- | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {n} | {i} | {x} | {e} | {d} | {k} |" for n, i, x, e, d, k in self.rows()]
        details = []
        for name, entry in self.labels.items():
            details += [f"- {name} dropped: {count} × {reason}" for reason, count in sorted(entry.dropped.items())]
            for status in (EXPANDED, DROPPED):
                details += [f"- {name} {status}: {example}" for example in entry.examples.get(status, [])]
        if details:
            lines += ["", f"Reasons, and examples (at most {MAX_EXAMPLES} per label and outcome):", "", *details]
        return "\n".join(lines)


def align_spans(text: str, starts: list[int], ends: list[int], tokens: list[str],
                spans: list[tuple[int, int, str]], report: AlignmentReport,
                where: str = "") -> list[tuple[int, int, str]]:
    """Character spans → non-overlapping token spans ``(first, end_exclusive, label)``.

    Every input span is recorded in ``report`` as exact, expanded or dropped.
    """
    candidates = []
    for start, end, label in spans:
        covered = [k for k in range(len(tokens))
                   if starts[k] < end and ends[k] > start and tokens[k].strip()]
        if not covered:
            report.add(label, DROPPED, "covers no word", f"{where} {text[start:end]!r}")
            continue
        first, last = covered[0], covered[-1] + 1
        exact = starts[first] == start and ends[last - 1] == end
        candidates.append((not exact, start, first, last, label, (start, end)))
    kept: list[tuple[int, int, str]] = []
    taken: dict[int, tuple[int, int, str]] = {}
    for expanded, _, first, last, label, (start, end) in sorted(candidates):
        clash = next((taken[k] for k in range(first, last) if k in taken), None)
        shown = f"{where} {text[start:end]!r} → {text[starts[first]:ends[last - 1]]!r}"
        if clash is not None:
            other = text[starts[clash[0]]:ends[clash[1] - 1]]
            report.add(label, DROPPED, f"overlaps a kept {clash[2]} span after expansion",
                       f"{shown} overlaps {clash[2]} {other!r}")
            continue
        report.add(label, EXPANDED if expanded else EXACT, example=shown)
        span = (first, last, label)
        kept.append(span)
        for k in range(first, last):
            taken[k] = span
    return sorted(kept)
