"""Stage 2 benchmark: how well do the pre-annotation rules match hand-made gold?

Scores :func:`hoptac.annotate.rules.find_entities` per label, strictly (start, end and
label all equal), against the seed gold (``seeds/annotations/``) and, when it is
there, the news gold export (``../shared/data/gold/news-gold.json``, read in
place). Sector keyword rules are scored per sector too. Usage::

    python bench/rules_on_seed.py [EXPORT.json ...]

Gold entities are the primary annotation of each task: the one marked
``ground_truth`` when there are several, else the first that was not cancelled.
Results are keyed on their ``type`` ("labels", "choices"), not on control names.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hoptac.annotate.rules import default_rules  # noqa: E402

from hoptac.errors import HoptacError  # noqa: E402

SEED_GOLD = REPO / "seeds" / "annotations" / "hanoi-vi-ca-nuoc.json"
NEWS_GOLD = REPO.parent / "shared" / "data" / "gold" / "news-gold.json"


@dataclass
class GoldTask:
    text: str
    entities: set[tuple[int, int, str]]
    sectors: set[str]


def primary_annotation(task: dict) -> dict | None:
    kept = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
    if not kept:
        return None
    marked = [a for a in kept if a.get("ground_truth")]
    return (marked or kept)[0]


def load_gold(path: Path) -> list[GoldTask]:
    """Tasks with a primary annotation, from a Label Studio JSON export."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise HoptacError(f"{path}: cannot read the export ({e})") from None
    if not isinstance(tasks, list):
        raise HoptacError(f"{path}: expected a JSON list of tasks")
    out = []
    for n, task in enumerate(tasks):
        ann = primary_annotation(task)
        if ann is None:
            continue
        text = task.get("data", {}).get("text")
        if not isinstance(text, str):
            raise HoptacError(f"{path}: task #{n} (id {task.get('id')}) has no data.text")
        ents, cats = set(), set()
        for r in ann.get("result", []):
            value = r.get("value", {})
            if r.get("type") == "labels":
                for label in value.get("labels", []):
                    ents.add((value["start"], value["end"], label))
            elif r.get("type") == "choices":
                cats.update(value.get("choices", []))
        out.append(GoldTask(text, ents, cats))
    return out


@dataclass
class Score:
    tp: Counter = field(default_factory=Counter)
    fp: Counter = field(default_factory=Counter)
    fn: Counter = field(default_factory=Counter)

    def add(self, predicted: set, gold: set, key=lambda x: x[2]) -> None:
        for x in predicted & gold:
            self.tp[key(x)] += 1
        for x in predicted - gold:
            self.fp[key(x)] += 1
        for x in gold - predicted:
            self.fn[key(x)] += 1

    def prf(self, label: str) -> tuple[float, float, float]:
        tp, fp, fn = self.tp[label], self.fp[label], self.fn[label]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f

    def micro(self, labels) -> tuple[float, float, float]:
        tp = sum(self.tp[x] for x in labels)
        fp = sum(self.fp[x] for x in labels)
        fn = sum(self.fn[x] for x in labels)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def table(self, labels, title: str) -> str:
        rows = [f"{title}", f"{'label':<18} {'gold':>5} {'pred':>5} {'P':>6} {'R':>6} {'F1':>6}"]
        for label in [*labels, "micro"]:
            if label == "micro":
                gold = sum(self.tp[x] + self.fn[x] for x in labels)
                pred = sum(self.tp[x] + self.fp[x] for x in labels)
                p, r, f = self.micro(labels)
            else:
                gold, pred = self.tp[label] + self.fn[label], self.tp[label] + self.fp[label]
                p, r, f = self.prf(label)
            rows.append(f"{label:<18} {gold:>5} {pred:>5} {p:>6.3f} {r:>6.3f} {f:>6.3f}")
        return "\n".join(rows)


def score_rules(tasks: list[GoldTask], rules=None) -> tuple[Score, Score]:
    """(entity score, sector score) of the rules on ``tasks``."""
    rules = rules or default_rules()
    ents, cats = Score(), Score()
    for task in tasks:
        ents.add(set(rules.entities(task.text)), task.entities)
        predicted = {name for name, v in rules.sectors(task.text).items() if v >= 0.5}
        cats.add(predicted, task.sectors, key=lambda x: x)
    return ents, cats


def report(path: Path) -> str:
    rules = default_rules()
    started = time.perf_counter()
    tasks = load_gold(path)
    ents, cats = score_rules(tasks, rules)
    took = time.perf_counter() - started
    head = f"{path} ({len(tasks)} paragraphs, {took:.1f} s)"
    return "\n\n".join([
        ents.table(rules.entity_labels, f"entities, strict match — {head}"),
        cats.table(rules.sector_labels, f"sectors (keyword rules) — {head}"),
    ])


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or [p for p in (SEED_GOLD, NEWS_GOLD) if p.exists()]
    try:
        for path in paths:
            print(report(path))
            print()
    except HoptacError as e:
        print(f"rules_on_seed: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
