"""Stage 3 (training): ``hoptac train-curve`` — would more annotation help, and for which label?

As Prodigy's ``train-curve``: the pipeline is trained on 25, 50, 75 and 100% of the
*articles* of the training split (the same seeded order every run, so each share
holds the smaller ones), with the validation split unchanged, and each model is
scored on the test split by ``hoptac evaluate``'s code. A curve still rising at
100% says more annotation will pay; a label whose F1 rises most says where.

Each step trains in a temporary folder; the output folder gets ``curve.json``
(per step: articles, paragraphs, per-label and micro F1, sector micro-F1),
``curve.md`` and ``curve.png``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from datasets import DatasetDict

from hoptac.errors import HoptacError
from hoptac.output import atomic_dir, check_output
from hoptac.train.evaluate import evaluate
from hoptac.train.pipeline import open_dataset, train_pipeline

logger = logging.getLogger(__name__)

DEFAULT_SHARES = (0.25, 0.5, 0.75, 1.0)


@dataclass
class CurveStep:
    share: float
    articles: int
    paragraphs: int
    ner_f1: dict[str, float]  # label → strict F1 on the test split, and "micro"
    sectors_f1: float | None
    seconds: float


@dataclass
class CurveResult:
    output: Path
    labels: list[str]
    steps: list[CurveStep] = field(default_factory=list)

    def table(self) -> str:
        head = ["share", "articles", "paragraphs", *self.labels, "micro", "sectors"]
        rows = [" | ".join(head), " | ".join("---" if i < 1 else "---:" for i in range(len(head)))]
        for s in self.steps:
            cells = [f"{s.share:.0%}", str(s.articles), str(s.paragraphs),
                     *(f"{s.ner_f1.get(label, 0.0):.3f}" for label in self.labels), f"{s.ner_f1['micro']:.3f}",
                     "n/a" if s.sectors_f1 is None else f"{s.sectors_f1:.3f}"]
            rows.append(" | ".join(cells))
        return "\n".join(f"| {row} |" for row in rows)

    def summary(self) -> str:
        last, first = self.steps[-1], self.steps[0]
        gains = {label: last.ner_f1.get(label, 0.0) - (self.steps[-2].ner_f1.get(label, 0.0) if len(self.steps) > 1
                                                       else 0.0) for label in self.labels}
        rising = max(gains, key=gains.get) if gains else None
        lines = [self.table(), "",
                 f"micro-F1 {first.ner_f1['micro']:.3f} with {first.share:.0%} of the articles → "
                 f"{last.ner_f1['micro']:.3f} with {last.share:.0%}"]
        if rising is not None and len(self.steps) > 1:
            lines.append(f"largest gain over the last step: {rising} ({gains[rising]:+.3f}); "
                         "a curve still rising there says more annotation of it will pay")
        lines.append(f"wrote {self.output / 'curve.md'}, curve.json, curve.png")
        return "\n".join(lines)


def article_order(doc_ids: list[str], seed: int) -> list[str]:
    """The training articles in a seeded random order: share k takes the first ceil(k × n)."""
    order = sorted(set(doc_ids))
    random.Random(seed).shuffle(order)
    return order


def train_curve(dataset: Path, output: Path, config: Path, sectors_config: Path | None = None,
                shares: tuple[float, ...] = DEFAULT_SHARES, overrides: list[str] | None = None,
                silver: list[Path] | None = None, seed: int = 0, force: bool = False,
                vectors: Path | None = None) -> CurveResult:
    """Train on growing shares of the training articles; score each model on the test split.

    ``silver`` and ``vectors`` are passed to every training, as ``hoptac train`` takes them."""
    shares = tuple(sorted(set(shares)))
    if not shares or any(not 0 < s <= 1 for s in shares):
        raise HoptacError(f"--shares must be fractions in (0, 1], not {', '.join(map(str, shares))}")
    inputs = [dataset, *(silver or []), *([vectors] if vectors else [])]
    check_output(output, kind="folder", inputs=inputs, force=force)
    ds = open_dataset(dataset)
    if "test" not in ds or len(ds["test"]) == 0:
        raise HoptacError(f"{dataset}: the test split is empty: nothing to score the curve on")
    seen = set(ds["train"]["doc_id"]) | (set(ds["validation"]["doc_id"]) if "validation" in ds else set())
    shared = sorted(set(ds["test"]["doc_id"]) & seen)
    if shared:  # split by paragraph (too few articles): the test split would score trained-on articles
        raise HoptacError(f"{dataset}: {len(shared)} article(s) of the test split are also in train or validation "
                          f"(e.g. {shared[0]}): the curve needs a test split of held-out articles")
    order = article_order(list(ds["train"]["doc_id"]), seed)
    result = CurveResult(Path(output), [])
    with tempfile.TemporaryDirectory(prefix="hoptac-curve-") as tmp:
        for share in shares:
            n = max(1, math.ceil(share * len(order)))
            keep = set(order[:n])
            subset = dict(ds)  # the splits as read once above; only train is replaced
            subset["train"] = subset["train"].filter(lambda row: row["doc_id"] in keep)
            step_dir = Path(tmp) / f"{share:.2f}"
            DatasetDict(subset).save_to_disk(str(step_dir / "ds"))
            logger.info(f"[curve] {share:.0%}: {n} of {len(order)} articles, {len(subset['train'])} paragraphs")
            started = time.perf_counter()
            train_pipeline(step_dir / "ds", step_dir / "model", config, sectors_config,
                           overrides=overrides, silver=silver, vectors=vectors)
            scores = evaluate(str(step_dir / "model"), step_dir / "ds", step_dir / "report").metrics
            per_label = {label: v["f1"] for label, v in scores["ner"]["per_label"].items()}
            if not result.labels:
                result.labels = sorted(per_label)
            result.steps.append(CurveStep(share, n, len(subset["train"]), {**per_label, "micro": scores["ner"]["micro"]["f1"]},
                                          scores.get("sectors", {}).get("micro", {}).get("f1"),
                                          time.perf_counter() - started))
    with atomic_dir(output, inputs=inputs, force=force,
                    command=f"hoptac train-curve {dataset}") as folder:
        (folder / "curve.json").write_text(json.dumps([vars(s) for s in result.steps], indent=1), encoding="utf-8")
        (folder / "curve.md").write_text(f"# Training curve: {dataset}\n\nStrict F1 on the test split.\n\n"
                                         f"{result.table()}\n", encoding="utf-8")
        _plot(result, folder / "curve.png")
    return result


def _plot(result: CurveResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = [s.share * 100 for s in result.steps]
    for label in [*result.labels, "micro"]:
        ax.plot(x, [s.ner_f1.get(label, 0.0) for s in result.steps], marker="o",
                linewidth=2.5 if label == "micro" else 1.2, label=label)
    ax.set_xlabel("% of training articles")
    ax.set_ylabel("strict F1 (test split)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
