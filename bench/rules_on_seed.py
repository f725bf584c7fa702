"""Stage 2 benchmark: how well do the pre-annotation rules match hand-made gold?

Scores the rules (the ``hoptac_rules`` pipeline, :func:`hoptac.train.evaluate.rules_baseline`)
per label against the seed gold (``seeds/annotations/``) and, when it is there, the
news gold export (``../shared/data/gold/news-gold.json``, read in place). Usage::

    python bench/rules_on_seed.py [EXPORT.json ...]

Everything is the library's, the same code as ``hoptac evaluate MODEL EXPORT
--baseline rules``: the export is read, checked and merged into one example per
task by :func:`hoptac.train.evaluate.load_data` (merge policy ``ground-truth``,
``hoptac/annotate/merge.py``; gold spans aligned to the tokenizer's words as in
the dataset), and scored by :func:`hoptac.train.evaluate.score`: entities
strictly (start, end and label equal), sector keywords per sector.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hoptac.train.evaluate import load_data, predict, rules_baseline, score  # noqa: E402

from hoptac.errors import HoptacError  # noqa: E402

SEED_GOLD = REPO / "seeds" / "annotations" / "hanoi-vi-ca-nuoc.json"
NEWS_GOLD = REPO.parent / "shared" / "data" / "gold" / "news-gold.json"


def rules_scores(path: Path) -> tuple[dict, int]:
    """(``score`` of the rules on the export at ``path``: ``ner``, ``sectors``…; paragraphs scored)."""
    rows, _, entity_labels, sector_labels = load_data(Path(path))
    predictions = predict(rules_baseline(), [row["text"] for row in rows])
    return score(rows, predictions, entity_labels, sector_labels, with_sectors=True), len(rows)


def table(result: dict, title: str) -> str:
    """Per label and micro: gold count, predicted count, precision, recall, F1."""
    rows = [title, f"{'label':<18} {'gold':>5} {'pred':>5} {'P':>6} {'R':>6} {'F1':>6}"]
    per_label = result["per_label"]
    for label, v in per_label.items():
        rows.append(f"{label:<18} {v['support']:>5} {v['predicted']:>5} "
                    f"{v['precision']:>6.3f} {v['recall']:>6.3f} {v['f1']:>6.3f}")
    micro = result["micro"]
    gold = sum(v["support"] for v in per_label.values())
    predicted = sum(v["predicted"] for v in per_label.values())
    rows.append(f"{'micro':<18} {gold:>5} {predicted:>5} "
                f"{micro['precision']:>6.3f} {micro['recall']:>6.3f} {micro['f1']:>6.3f}")
    return "\n".join(rows)


def report(path: Path) -> str:
    started = time.perf_counter()
    result, paragraphs = rules_scores(path)
    head = f"{path} ({paragraphs} paragraphs, {time.perf_counter() - started:.1f} s)"
    parts = [table(result["ner"], f"entities, strict match — {head}")]
    if "sectors" in result:
        parts.append(table(result["sectors"], f"sectors (keyword rules) — {head}"))
    return "\n\n".join(parts)


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
