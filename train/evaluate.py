"""Stage 3 (evaluation): ``hoptac evaluate`` — per-label scores of a model, beside the rules baseline.

One scoring code path (:func:`score`) serves the model and the baseline, on the
same gold rows. NER is scored strictly (character start, end and label all
equal); boundary-tolerant figures (overlap + same label, one-to-one) are kept
apart under ``ner_lenient``. Sectors are scored per label on the sets of labels
each system assigns (model: ``doc._.sectors``, i.e. the probabilities in
``doc.cats`` over the thresholds tuned at training time; a system that sets no
``doc._.sectors``, like the rules, is read as ``doc.cats >= 0.5``).

Macro averages are over the labels that have gold support in the data. The 95%
interval of strict micro-F1 is a bootstrap over articles (``doc_id``), fixed
seed, 1000 resamples.

Outputs in REPORT_DIR: ``metrics.json``, ``report.md``, ``ner_f1.png`` (per-label
F1, model vs baseline) and ``confusion.png`` (entity-type confusion of the model).

Figures that would mislead are said to: when the model and the data have
different entity (or sector) labels, or the data has no gold entity at all
(NER recall and F1 are then undefined: the summary and the report show "n/a",
not 0.000), the summary prints a ``warning:`` line for each and ``metrics.json``
gets a ``warnings`` list (the key is there only when there is a warning).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hoptac.annotate.rules import rules_pipeline
from hoptac.train.dataset import dataset_labels, examples_from_exports
from hoptac.train.eval_report import interval, write_charts, write_report
from hoptac.train.pipeline import decoded_rows, open_dataset

from hoptac.errors import HoptacError
from hoptac.model import load_model
from hoptac.output import atomic_dir, check_output

NONE = "(none)"
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0
ERROR_TYPES = ("wrong label", "wrong boundary", "wrong label and boundary", "missed", "spurious")
EXAMPLES_PER_TYPE = 5


# ---------------------------------------------------------------- inputs

def load_data(data: Path) -> tuple[list[dict], str, list[str], list[str] | None]:
    """(gold rows, source, entity labels, sector labels or None) from a dataset folder or an export file."""
    data = Path(data)
    if not data.exists():
        raise HoptacError(f"{data}: no such dataset folder or export file")
    if data.is_dir():
        ds = open_dataset(data)
        if "test" not in ds or len(ds["test"]) == 0:
            raise HoptacError(f"{data}: the test split is empty: nothing to evaluate on")
        entities, sectors = dataset_labels(ds)
        return decoded_rows(ds, "test"), f"{data} (test split)", entities, (sectors or None)
    rows, report = examples_from_exports([data])
    if not rows:
        raise HoptacError(f"{data}: no annotated paragraph to evaluate on")
    sector_names = list(report.sector_labels)
    for row in rows:
        row["sectors"] = [sector_names[s] if isinstance(s, int) else s for s in row.get("sectors") or []]
    return rows, f"{data} (all {len(rows)} annotated paragraphs)", list(report.entity_labels), (sector_names or None)


# ---------------------------------------------------------------- predictions

def predict(nlp, texts: list[str]) -> list[dict]:
    """Per text: ``ents`` [(start, end, label)] and ``sectors`` (a set of labels)."""
    out = []
    for doc in nlp.pipe(texts, batch_size=64):
        sectors = doc._.get("sectors") if doc.has_extension("sectors") else None
        if sectors is None:
            sectors = [label for label, score in doc.cats.items() if score >= 0.5]
        out.append({"ents": [(e.start_char, e.end_char, e.label_) for e in doc.ents],
                    "sectors": set(sectors), "has_cats": bool(doc.cats)})
    return out


def rules_baseline():
    return rules_pipeline()


# ---------------------------------------------------------------- scoring (one code path for every system)

def prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def _table(counts: dict[str, list[int]], labels: list[str]) -> dict:
    """counts[label] = [tp, fp, fn] → micro, macro (labels with gold support), per_label (with support: gold
    count, and predicted count)."""
    per_label = {}
    for label in labels + sorted(set(counts) - set(labels)):
        tp, fp, fn = counts.get(label, [0, 0, 0])
        per_label[label] = {**prf(tp, fp, fn), "support": tp + fn, "predicted": tp + fp}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    supported = [v for v in per_label.values() if v["support"] > 0]
    macro = {k: (sum(v[k] for v in supported) / len(supported) if supported else 0.0)
             for k in ("precision", "recall", "f1")}
    return {"micro": prf(tp, fp, fn), "macro": macro, "per_label": per_label}


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score_ner(gold: list[list[tuple]], pred: list[list[tuple]], doc_ids: list[str], labels: list[str]) -> dict:
    """Strict and lenient tables, the bootstrap CI, error analysis and the confusion counts."""
    strict: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    lenient: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    per_doc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    errors: Counter = Counter()
    examples: dict[str, list[tuple]] = defaultdict(list)
    confusion: Counter = Counter()
    for index, (g, p, doc_id) in enumerate(zip(gold, pred, doc_ids)):
        gs, ps = set(g), set(p)
        for span in gs & ps:
            strict[span[2]][0] += 1
        for span in ps - gs:
            strict[span[2]][1] += 1
        for span in gs - ps:
            strict[span[2]][2] += 1
        per_doc[doc_id][0] += len(gs & ps)
        per_doc[doc_id][1] += len(ps - gs)
        per_doc[doc_id][2] += len(gs - ps)
        _lenient_counts(gs, ps, lenient)
        _errors(index, gs, ps, errors, examples)
        _confusion(gs, ps, confusion)
    table = _table(dict(strict), labels)
    table["micro_f1_ci95"] = bootstrap_f1(list(per_doc.values()))
    return {"strict": table, "lenient": _table(dict(lenient), labels), "errors": dict(errors),
            "examples": dict(examples), "confusion": dict(confusion)}


def _lenient_counts(gs: set, ps: set, counts) -> None:
    unmatched = sorted(gs)
    for span in sorted(ps):
        match = next((g for g in unmatched if g[2] == span[2] and _overlap(g, span)), None)
        if match is None:
            counts[span[2]][1] += 1
        else:
            unmatched.remove(match)
            counts[span[2]][0] += 1
    for g in unmatched:
        counts[g[2]][2] += 1


def _errors(index: int, gs: set, ps: set, errors: Counter, examples) -> None:
    """Every predicted span that is not exactly right, and every gold span nothing overlaps, gets one error type."""
    for span in sorted(ps - gs):
        overlapping = [g for g in gs if _overlap(g, span)]
        if any(g[:2] == span[:2] for g in overlapping):
            kind, gold = "wrong label", next(g for g in overlapping if g[:2] == span[:2])
        elif any(g[2] == span[2] for g in overlapping):
            kind, gold = "wrong boundary", next(g for g in overlapping if g[2] == span[2])
        elif overlapping:
            kind, gold = "wrong label and boundary", overlapping[0]
        else:
            kind, gold = "spurious", None
        errors[kind] += 1
        if len(examples[kind]) < EXAMPLES_PER_TYPE:
            examples[kind].append((index, gold, span))
    for g in sorted(gs - ps):
        if not any(_overlap(g, span) for span in ps):
            errors["missed"] += 1
            if len(examples["missed"]) < EXAMPLES_PER_TYPE:
                examples["missed"].append((index, g, None))


def _confusion(gs: set, ps: set, confusion: Counter) -> None:
    """(gold label, predicted label) for overlapping spans; (label, none) missed; (none, label) spurious."""
    used = set()
    for g in sorted(gs):
        overlapping = [p for p in ps if _overlap(g, p)]
        best = next((p for p in overlapping if p[2] == g[2]), overlapping[0] if overlapping else None)
        confusion[(g[2], best[2] if best else NONE)] += 1
        used.update(overlapping)
    for p in ps - used:
        confusion[(NONE, p[2])] += 1


def bootstrap_f1(per_doc: list[list[int]], samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> list[float]:
    """95% percentile interval of micro-F1, resampling articles with replacement."""
    if not per_doc:
        return [0.0, 0.0]
    counts = np.asarray(per_doc, dtype=float)  # (docs, [tp, fp, fn])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(counts), size=(samples, len(counts)))
    sums = counts[picks].sum(axis=1)
    denom = 2 * sums[:, 0] + sums[:, 1] + sums[:, 2]
    f1 = np.divide(2 * sums[:, 0], denom, out=np.zeros(samples), where=denom > 0)
    lo, hi = np.percentile(f1, [2.5, 97.5])
    return [float(lo), float(hi)]


def score_sectors(gold: list[set], pred: list[set], labels: list[str]) -> dict:
    counts: dict[str, list[int]] = {label: [0, 0, 0] for label in labels}
    for g, p in zip(gold, pred):
        for label in g | p:
            c = counts.setdefault(label, [0, 0, 0])
            c[0 if (label in g and label in p) else (1 if label in p else 2)] += 1
    return _table(counts, labels)


def score(rows: list[dict], predictions: list[dict], entity_labels: list[str], sector_labels: list[str] | None,
          with_sectors: bool) -> dict:
    """Score one system's predictions against the gold rows (the same function for model and baseline)."""
    gold_ents = [[(s["start"], s["end"], s["label"]) for s in row.get("spans") or []] for row in rows]
    ner = score_ner(gold_ents, [p["ents"] for p in predictions], [row["doc_id"] for row in rows], entity_labels)
    result = {"ner": ner["strict"], "ner_lenient": ner["lenient"], "_ner_detail": ner}
    if sector_labels and with_sectors:
        result["sectors"] = score_sectors([set(row.get("sectors") or []) for row in rows],
                                          [p["sectors"] for p in predictions], sector_labels)
    return result


def label_warnings(nlp, rows: list[dict], entity_labels: list[str], sector_labels: list[str] | None) -> list[str]:
    """What makes the scores of ``nlp`` on ``rows`` mislead: labels on one side only, no gold entity."""
    warnings = []
    model_labels = list(nlp.get_pipe("ner").labels) if "ner" in nlp.pipe_names else []
    only_model = [label for label in model_labels if label not in entity_labels]
    only_data = [label for label in entity_labels if label not in model_labels]
    if only_model:
        warnings.append(f"entity labels only in the model: {', '.join(only_model)} "
                        f"(every prediction of them counts as a false positive)")
    if only_data:
        warnings.append(f"entity labels only in the data: {', '.join(only_data)} "
                        f"(the model never predicts them: their recall is 0)")
    if "sector_classifier" in nlp.pipe_names and sector_labels:
        model_sectors = list(getattr(nlp.get_pipe("sector_classifier"), "labels", []))
        if set(model_sectors) != set(sector_labels):
            warnings.append(f"sectors differ: only in the model: {', '.join(s for s in model_sectors if s not in sector_labels) or 'none'}; "
                            f"only in the data: {', '.join(s for s in sector_labels if s not in model_sectors) or 'none'}")
    if not any(row.get("spans") for row in rows):
        warnings.append(NO_GOLD_ENTITY)
    return warnings


NO_GOLD_ENTITY = "no gold entity in the test data: NER scores are undefined"


def f1_text(table: dict, defined: bool) -> str:
    return f"{table['micro']['f1']:.3f}" if defined else "n/a"


# ---------------------------------------------------------------- the command

@dataclass
class EvaluationResult:
    """What ``hoptac evaluate`` wrote and found: ``metrics`` is the content of ``metrics.json``."""

    metrics: dict
    report_dir: Path
    paragraphs: int
    articles: int

    @property
    def report_path(self) -> Path:
        return self.report_dir / "report.md"

    @property
    def metrics_path(self) -> Path:
        return self.report_dir / "metrics.json"

    @property
    def warnings(self) -> list[str]:
        return list(self.metrics.get("warnings", []))

    def summary(self) -> str:
        metrics, base = self.metrics, self.metrics.get("baseline")
        defined = NO_GOLD_ENTITY not in self.warnings
        line = f"NER strict micro-F1 {f1_text(metrics['ner'], defined)}"
        if defined:
            line += f" {interval(metrics['ner']['micro_f1_ci95'], self.articles)}"
        if base is not None:
            line += f" (rules {f1_text(base['ner'], defined)})"
        if "sectors" in metrics:
            line += f"; sectors micro-F1 {metrics['sectors']['micro']['f1']:.3f}"
            if base is not None and "sectors" in base:
                line += f" (rules {base['sectors']['micro']['f1']:.3f})"
        return "\n".join([f"{line}; {self.paragraphs} paragraphs; report: {self.report_path}"]
                         + [f"warning: {w}" for w in self.warnings])


def seen_in_training(nlp, rows: list[dict]) -> tuple[set[str], int]:
    """(articles of ``rows`` the model was trained or tuned on, paragraphs of them), from its meta."""
    trained = set((nlp.meta.get("hoptac") or {}).get("training_articles") or [])
    seen = {row["doc_id"] for row in rows} & trained
    return seen, sum(row["doc_id"] in seen for row in rows)


def check_unseen(nlp, rows: list[dict], model, data, allow: bool) -> str | None:
    """Refuse to score a model on articles it was trained or tuned on, unless ``allow``: then a warning."""
    seen, seen_paragraphs = seen_in_training(nlp, rows)
    if not seen:
        return None
    articles = len({row["doc_id"] for row in rows})
    what = (f"{len(seen)} of the {articles} articles ({seen_paragraphs} of {len(rows)} paragraphs) of {data} "
            f"were in the training or validation data of {model}")
    if not allow:
        raise HoptacError(f"{what}: its scores on them would flatter it. Evaluate on held-out articles "
                          "(the dataset's test split, a new export), or pass --allow-training-data "
                          "to score anyway (the report says so)")
    return f"{what}: these scores overstate the model"


def evaluate(model: str, data: Path, out_dir: Path, baseline: str | None = None, force: bool = False,
             allow_training_data: bool = False) -> EvaluationResult:
    """Score ``model`` (and the baseline) on ``data``; write metrics.json, report.md, charts; return the metrics."""
    if baseline not in (None, "rules"):
        raise HoptacError(f"--baseline must be 'rules', not {baseline!r}")
    out_dir = Path(out_dir)
    inputs = [Path(data)] + ([Path(model)] if Path(model).exists() else [])
    check_output(out_dir, kind="folder", inputs=inputs, force=force)
    nlp = load_model(str(model))
    rows, source, entity_labels, sector_labels = load_data(Path(data))
    seen_warning = check_unseen(nlp, rows, model, data, allow_training_data)
    texts = [row["text"] for row in rows]
    model_has_sectors = "sector_classifier" in nlp.pipe_names
    system = score(rows, predict(nlp, texts), entity_labels, sector_labels, model_has_sectors)
    base = None
    if baseline == "rules":
        base = score(rows, predict(rules_baseline(), texts), entity_labels, sector_labels, True)
    metrics = {"ner": system["ner"], "ner_lenient": system["ner_lenient"]}
    if "sectors" in system:
        metrics["sectors"] = system["sectors"]
    if base is not None:
        metrics["baseline"] = {k: base[k] for k in ("ner", "ner_lenient", "sectors") if k in base}
    metrics["data"] = {"source": source, "paragraphs": len(rows),
                       "entities": sum(len(row.get("spans") or []) for row in rows)}
    warnings = label_warnings(nlp, rows, entity_labels, sector_labels)
    if seen_warning:
        warnings.append(seen_warning)
    if warnings:
        metrics["warnings"] = warnings
    with atomic_dir(out_dir, inputs=inputs, force=force, command=f"hoptac evaluate {model} {data}") as folder:
        (folder / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
        charts = write_charts(folder, metrics, system["_ner_detail"], entity_labels)
        write_report(folder, str(model), metrics, system, base, rows, charts)
    return EvaluationResult(metrics, out_dir, len(rows), len({r["doc_id"] for r in rows}))
