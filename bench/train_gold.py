"""Benchmark (stage 3): the trained model against the rules on the gold news, over training seeds.

Two views (issue 16), each written to its own section of ``BENCHMARKS.md``:

* ``both`` (default, ``<!-- bench:train_gold -->``): the dataset is built from both gold exports
  (``news-gold.json``, ``news-gold-2.json``), the model trained on its train split, chosen on its
  validation split and scored on its test split. The rules are in-sample for batch-1 articles.
* ``batch2`` (``<!-- bench:train_gold_batch2 -->``): the dataset is built from batch 1 only and
  the model scored on all of batch 2, annotated after the rules were written: the fair yardstick.
  The silver paragraphs are drawn from the news without the batch-2 articles, by id and by title
  (the news corpus holds one of them a second time under another id).

Each seed (``--seeds 0,1,2``) trains one model with ``system.seed`` set; the section gives per
label the mean and the range over the seeds, on validation and on test, beside the rules. A
single run moves by about ±0.01 with the seed alone, so a lever is worth keeping only when it
moves the mean by more than the range. Everything made from the gold data (datasets, models,
reports, the filtered news) is written to a temporary folder, or to ``--keep`` outside the repo.

    .venv/bin/python bench/train_gold.py [--view both|batch2] [--seeds 0,1,2] [--vectors DIR]
        [--set section.key=value …] [--no-silver] [--keep DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks_md import BENCHMARKS, markers, write_section  # bench/benchmarks_md.py

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GOLD_DIR = REPO.parent / "shared" / "data" / "gold"
GOLD1, GOLD2 = GOLD_DIR / "news-gold.json", GOLD_DIR / "news-gold-2.json"
NEWS = REPO.parent / "shared" / "data" / "news" / "unlabeled.jsonl.gz"
MARKERS = {"both": "train_gold", "batch2": "train_gold_batch2"}
VIEWS = {
    "both": "dataset from both gold exports; trained on its train split, chosen on its validation split, "
            "scored on its test split (the rules are in-sample for batch-1 articles: they were refined on batch 1)",
    "batch2": "dataset from batch 1 (`news-gold.json`); scored on all of batch 2 (`news-gold-2.json`), annotated "
              "after the rules were written: the fair yardstick of model against rules",
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        ram = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores (nproc {_nproc()}), {cpu}, {ram} RAM, Python {platform.python_version()}"


def _nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def news_without(tasks: list[dict], news: Path, out: Path) -> tuple[int, int]:
    """Copy ``news`` to ``out`` without the articles of the export's ``tasks`` (by id or by title); (kept, left out)."""
    from hoptac.train.silver import title_key

    ids = {t["data"].get("doc_id") for t in tasks} - {None}
    titles = {title_key(t["data"].get("title")) for t in tasks} - {""}
    kept = left = 0
    with gzip.open(news, "rt", encoding="utf-8") as src, gzip.open(out, "wt", encoding="utf-8") as dst:
        for line in src:
            article = json.loads(line)
            if article.get("id") in ids or title_key(article.get("title")) in titles:
                left += 1
                continue
            dst.write(line)
            kept += 1
    return kept, left


def validation_scores(model_dir: Path, dataset: Path) -> dict:
    """Strict F1 per label, micro and sector micro-F1 of the model and of the rules on the validation split."""
    from hoptac.model import load_model
    from hoptac.train.dataset import dataset_labels
    from hoptac.train.evaluate import predict, rules_baseline, score
    from hoptac.train.pipeline import decoded_rows, open_dataset

    ds = open_dataset(dataset)
    entity_labels, sector_labels = dataset_labels(ds)
    rows = decoded_rows(ds, "validation")
    texts = [r["text"] for r in rows]
    out = {}
    for name, nlp in (("model", load_model(model_dir)), ("rules", rules_baseline())):
        result = score(rows, predict(nlp, texts), entity_labels, sector_labels, True)
        out[name] = flat(result)
    return out


def flat(result: dict) -> dict:
    """``{label: F1, "micro": F1, "sectors": micro-F1}`` of a scored system (evaluate's metrics or score's result)."""
    scores = {label: v["f1"] for label, v in result["ner"]["per_label"].items()}
    scores["micro"] = result["ner"]["micro"]["f1"]
    if "sectors" in result:
        scores["sectors"] = result["sectors"]["micro"]["f1"]
    return scores


def cell(values: list[float]) -> str:
    """Mean, and the range when there is more than one value."""
    mean = statistics.fmean(values)
    return f"{mean:.3f}" if len(values) == 1 else f"{mean:.3f} ({min(values):.3f}–{max(values):.3f})"


def section(view: str, runs: list[dict], seeds: list[int], args, counts: str, silver: str) -> str:
    marker = MARKERS[view]
    start, end = markers(marker)
    keys = [k for k in runs[0]["test"]["model"] if k not in ("micro", "sectors")] + ["micro", "sectors"]
    lines = [start,
             f"## {marker}: the model against the rules on the gold news ({view})", "",
             f"`bench/train_gold.py --view {view}`: {VIEWS[view]}. {counts}. Strict NER (start, end and label "
             f"equal); sectors: micro-F1 over paragraphs. Model: mean over {len(seeds)} seed(s) "
             f"({', '.join(map(str, seeds))}), range in brackets.", "",
             "| | validation: model | validation: rules | test: model | test: rules | model above the rules on test |",
             "| --- | ---: | ---: | ---: | ---: | :---: |"]
    for key in keys:
        if key not in runs[0]["test"]["model"]:
            continue
        val = [r["validation"]["model"][key] for r in runs]
        test = [r["test"]["model"][key] for r in runs]
        rules_val, rules_test = runs[0]["validation"]["rules"][key], runs[0]["test"]["rules"][key]
        above = "yes" if min(test) > rules_test else ("**no**" if max(test) < rules_test else "rules inside the range")
        name = f"**{key}**" if key == "micro" else key
        lines.append(f"| {name} | {cell(val)} | {rules_val:.3f} | {cell(test)} | {rules_test:.3f} | {above} |")
    seconds = [r["seconds"] for r in runs]
    lines += ["",
              f"- training: {statistics.fmean(seconds):.0f} s wall clock per model ({min(seconds):.0f}–{max(seconds):.0f});"
              f" seed {runs[0]['seed']}: {runs[0]['parts']}",
              f"- silver training data: {silver}",
              f"- word vectors: {'`hoptac pretrain` folder given with --vectors' if args.vectors else 'none'}",
              f"- overrides: {' '.join(args.overrides) if args.overrides else 'none (committed configs/ner.cfg, configs/sectors.yml)'}",
              f"- machine: {machine()}",
              f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
              end]
    return "\n".join(lines)




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--view", choices=sorted(VIEWS), default="both", help="Which yardstick (see above).")
    parser.add_argument("--seeds", default="0", help="Training seeds, comma-separated (system.seed).")
    parser.add_argument("--vectors", type=Path, help="A `hoptac pretrain` folder, passed to the training.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="NER config override.")
    parser.add_argument("--no-silver", action="store_true", help="Train on the gold paragraphs only.")
    parser.add_argument("--keep", type=Path, help="Keep datasets, models and reports in this folder (outside the repo).")
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"train_gold: --seeds {args.seeds!r}: expected whole numbers like 0,1,2", file=sys.stderr)
        return 2
    for path in (GOLD1, GOLD2):
        if not path.exists():
            print(f"train_gold: {path} not found", file=sys.stderr)
            return 2
    if not seeds:
        print("train_gold: --seeds is empty", file=sys.stderr)
        return 2
    from hoptac.train.dataset import build_dataset
    from hoptac.train.evaluate import evaluate
    from hoptac.train.pipeline import train_pipeline

    runs = []
    with tempfile.TemporaryDirectory(prefix="hoptac-bench-") as tmp:
        work = args.keep or Path(tmp)
        if work.resolve().is_relative_to(REPO):
            print("train_gold: --keep must be outside the repo (nothing made from gold data goes in it)", file=sys.stderr)
            return 2
        work.mkdir(parents=True, exist_ok=True)
        exports = [GOLD1, GOLD2] if args.view == "both" else [GOLD1]
        report = build_dataset(exports, work / "dataset", dev=0.1, test=0.2, seed=0, policy="ground-truth")
        print(report.summary())
        counts = ", ".join(f"{split} {c['paragraphs']}" for split, c in report.counts.items()) + " paragraphs"
        if args.view == "batch2":
            batch2 = json.loads(GOLD2.read_text(encoding="utf-8"))
            counts += f"; test: the {len(batch2)} tasks of batch 2"
        silver_inputs, silver_note = None, "none (gold only)"
        if not args.no_silver and NEWS.exists():
            silver_inputs = [NEWS]
            silver_note = "drawn from `shared/data/news/unlabeled.jsonl.gz` without the dataset's articles (by id and title)"
            if args.view == "batch2":
                filtered = work / "news-without-batch2.jsonl.gz"
                kept, left = news_without(batch2, NEWS, filtered)
                print(f"news without batch 2: {kept} articles kept, {left} left out")
                silver_inputs = [filtered]
                silver_note += f" and without batch 2's ({left} article(s) of the news left out by id or title)"
        for seed in seeds:
            model = work / f"model-seed{seed}"
            started = time.time()
            training = train_pipeline(work / "dataset", model, config=REPO / "configs" / "ner.cfg",
                                      sectors_config=REPO / "configs" / "sectors.yml",
                                      overrides=[*args.overrides, f"system.seed={seed}"],
                                      silver=silver_inputs, vectors=args.vectors)
            seconds = time.time() - started
            print(training.summary())
            test_data = work / "dataset" if args.view == "both" else GOLD2
            evaluation = evaluate(str(model), test_data, work / f"report-seed{seed}", baseline="rules")
            print(evaluation.summary())
            runs.append({"seed": seed, "seconds": seconds, "parts": "; ".join(training.parts()),
                         "validation": validation_scores(model, work / "dataset"),
                         "test": {"model": flat(evaluation.metrics), "rules": flat(evaluation.metrics["baseline"])}})
    if training.silver_paragraphs:
        silver_note = (f"{training.silver_paragraphs} paragraphs {silver_note}, annotated by the rules; the gold "
                       f"training paragraphs repeated (`[hoptac]` in configs/ner.cfg)")
    text = section(args.view, runs, seeds, args, counts, silver_note)
    print(text)
    if not args.no_write:
        write_section(text, MARKERS[args.view])
        print(f"updated {BENCHMARKS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
