"""Stage 3 (evaluation): ``report.md`` and the PNG charts of ``hoptac evaluate`` (see ``train/evaluate.py``)."""

from __future__ import annotations

from pathlib import Path

NONE = "(none)"


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


NO_GOLD_ENTITY = "no gold entity in the test data"  # the start of evaluate.NO_GOLD_ENTITY


def _undefined(table: dict) -> dict:
    """A P/R/F1 table with no gold support anywhere: recall and F1 undefined (shown n/a)."""
    def blank(v: dict) -> dict:
        return {**v, "recall": None, "f1": None}
    return {**table, "micro": blank(table["micro"]), "macro": blank(table["macro"]),
            "per_label": {k: blank(v) for k, v in table["per_label"].items()}}


def write_charts(out_dir: Path, metrics: dict, detail: dict, labels: list[str]) -> list[str]:
    """``ner_f1.png`` (per-label strict F1, model vs baseline) and ``confusion.png``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(metrics["ner"]["per_label"])
    model_f1 = [metrics["ner"]["per_label"][n]["f1"] for n in names]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names) + 2), 3.8))
    x = np.arange(len(names))
    base = metrics.get("baseline", {}).get("ner")
    width = 0.38 if base else 0.6
    ax.bar(x - (width / 2 if base else 0), model_f1, width, label="model")
    if base:
        ax.bar(x + width / 2, [base["per_label"].get(n, {}).get("f1", 0.0) for n in names], width, label="rules baseline")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylim(0, 1.15)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("strict F1")
    ax.set_title("NER per-label F1 (strict)")
    ax.legend(loc="upper center", ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(out_dir / "ner_f1.png", dpi=110)
    plt.close(fig)

    axis = [n for n in labels] + [n for n in names if n not in labels]
    seen = {k for pair in detail["confusion"] for k in pair} - {NONE}
    axis += sorted(seen - set(axis)) + [NONE]
    matrix = np.zeros((len(axis), len(axis)), dtype=int)
    for (gold, pred), count in detail["confusion"].items():
        matrix[axis.index(gold), axis.index(pred)] += count
    fig, ax = plt.subplots(figsize=(1.0 * len(axis) + 2.5, 0.9 * len(axis) + 2))
    ax.imshow(matrix, cmap="Blues")
    for i in range(len(axis)):
        for j in range(len(axis)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(axis)), axis, rotation=30, ha="right")
    ax.set_yticks(range(len(axis)), axis)
    ax.set_xlabel("predicted (overlapping span)")
    ax.set_ylabel("gold")
    ax.set_title("Entity-type confusion (model)")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=110)
    plt.close(fig)
    return ["ner_f1.png", "confusion.png"]


def _prf_table(model: dict, base: dict | None, title_cols: str) -> list[str]:
    head = f"| label | support | {title_cols} P | R | F1 |"
    sep = "| --- | ---: | ---: | ---: | ---: |"
    if base:
        head += " rules P | rules R | rules F1 |"
        sep += " ---: | ---: | ---: |"
    lines = [head, sep]
    rows = [(n, v) for n, v in model["per_label"].items()]
    if base:
        rows += [(n, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": v["support"]})
                 for n, v in base["per_label"].items() if n not in model["per_label"]]
    for name, v in rows:
        v = _supported(v)
        line = f"| {name} | {v['support']} | {_f(v['precision'])} | {_f(v['recall'])} | **{_f(v['f1'])}** |"
        if base:
            b = _supported(base["per_label"].get(name, {"precision": 0.0, "recall": 0.0, "f1": 0.0}))
            line += f" {_f(b['precision'])} | {_f(b['recall'])} | {_f(b['f1'])} |"
        lines.append(line)
    for avg in ("micro", "macro"):
        v = model[avg]
        line = f"| *{avg}* | | {_f(v['precision'])} | {_f(v['recall'])} | **{_f(v['f1'])}** |"
        if base:
            b = base[avg]
            line += f" {_f(b['precision'])} | {_f(b['recall'])} | {_f(b['f1'])} |"
        lines.append(line)
    return lines


def _span(row: dict, span) -> str:
    if span is None:
        return "—"
    return f"«{row['text'][span[0]:span[1]]}» {span[2]}"


def _context(row: dict, spans) -> str:
    starts = [s[0] for s in spans if s]
    ends = [s[1] for s in spans if s]
    lo, hi = max(0, min(starts) - 40), min(len(row["text"]), max(ends) + 40)
    text = row["text"][lo:hi].replace("|", "/")
    return ("…" if lo else "") + text + ("…" if hi < len(row["text"]) else "")


def _supported(v: dict) -> dict:
    """A label with no gold support: recall and F1 are undefined (n/a), not 0.000; so is precision
    when nothing was predicted either."""
    if v.get("support", 1) > 0:
        return v
    predicted = v.get("predicted")
    return {**v, "recall": None, "f1": None, "precision": v["precision"] if predicted else None}


def interval(ci: list[float], articles: int, digits: int = 3) -> str:
    """``[lo, hi]``, or why there is none: a bootstrap over one article always draws that article."""
    if articles < 2:
        return f"(no interval: {articles} article)"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def write_report(out_dir: Path, model: str, metrics: dict, system: dict, base: dict | None,
                 rows: list[dict], charts: list[str]) -> None:
    data = metrics["data"]
    articles = len({row["doc_id"] for row in rows})
    warnings = metrics.get("warnings", [])
    undefined = any(w.startswith(NO_GOLD_ENTITY) for w in warnings)
    if undefined:  # shown n/a, not 0.000
        metrics = {**metrics, "ner": _undefined(metrics["ner"]), "ner_lenient": _undefined(metrics["ner_lenient"])}
        if "baseline" in metrics:
            metrics["baseline"] = {**metrics["baseline"], "ner": _undefined(metrics["baseline"]["ner"]),
                                   "ner_lenient": _undefined(metrics["baseline"]["ner_lenient"])}
    strict_line = (
        "Strict micro-F1 n/a: the data has no gold entity, so recall and F1 are undefined." if undefined else
        (f"Strict micro-F1 {_f(metrics['ner']['micro']['f1'])}, 95% bootstrap interval over {articles} articles "
         f"{interval(metrics['ner']['micro_f1_ci95'], articles)}" if articles > 1 else
         f"Strict micro-F1 {_f(metrics['ner']['micro']['f1'])} (no bootstrap interval: the data is one article)") + (
            f"; rules baseline {_f(metrics['baseline']['ner']['micro']['f1'])} "
            f"{interval(metrics['baseline']['ner']['micro_f1_ci95'], articles)}"
            if base else "") + ". Macro averages are over labels with gold support.")
    out = [
        "# hoptac evaluation report", "",
        f"- model: `{model}`",
        f"- data: {data['source']}: {data['paragraphs']} paragraphs, {data['entities']} gold entities",
        f"- baseline: {'rules (annotate/rules.py), scored by the same code on the same paragraphs' if base else 'none'}",
        *[f"- **warning**: {w}" for w in warnings],
        "",
        "## Entities, strict (start, end and label all equal)", "",
        *_prf_table(metrics["ner"], metrics.get("baseline", {}).get("ner"), "model"), "",
        strict_line, "",
        "![per-label F1](ner_f1.png)", "",
        "## Entities, boundary-tolerant (overlap and same label; not part of the strict figures)", "",
        *_prf_table(metrics["ner_lenient"], metrics.get("baseline", {}).get("ner_lenient"), "model"), "",
        "## Largest error types (model)", "",
        "| error type | model |" + (" rules |" if base else ""),
        "| --- | ---: |" + (" ---: |" if base else ""),
    ]
    detail = system["_ner_detail"]
    kinds = sorted(detail["errors"], key=lambda k: -detail["errors"][k])
    base_errors = base["_ner_detail"]["errors"] if base else {}
    for kind in kinds + [k for k in base_errors if k not in kinds]:
        out.append(f"| {kind} | {detail['errors'].get(kind, 0)} |" + (f" {base_errors.get(kind, 0)} |" if base else ""))
    out.append("")
    for kind in kinds:
        out += [f"### {kind}", "", "| paragraph | gold | predicted | context |", "| --- | --- | --- | --- |"]
        for index, gold, pred in detail["examples"].get(kind, []):
            row = rows[index]
            out.append(f"| {row.get('id', index)} | {_span(row, gold)} | {_span(row, pred)} | {_context(row, [gold, pred])} |")
        out.append("")
    out += ["![entity-type confusion](confusion.png)", ""]
    if "sectors" in metrics:
        out += ["## Sectors (paragraph labels)", "",
                *_prf_table(metrics["sectors"], metrics.get("baseline", {}).get("sectors"), "model"), ""]
    else:
        out += ["## Sectors", "", "The model has no sector classifier or the data has no sectors: not scored.", ""]
    (out_dir / "report.md").write_text("\n".join(out), encoding="utf-8")
