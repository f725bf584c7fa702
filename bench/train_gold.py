"""Benchmark (stage 3): train on the gold news export and compare with the rules baseline.

Builds the dataset from ``../shared/data/gold/news-gold.json`` into a temporary
folder outside the repo, trains ``hoptac train`` with the committed configs,
evaluates the test split with ``--baseline rules`` and writes its section of
``BENCHMARKS.md`` (between ``<!-- bench:train_gold -->`` markers; other
sections are left as they are). Nothing made from the gold data is kept in the
repo.

    .venv/bin/python bench/train_gold.py [--keep DIR] [--set section.key=value …] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GOLD = REPO.parent / "shared" / "data" / "gold" / "news-gold.json"
NEWS = REPO.parent / "shared" / "data" / "news" / "unlabeled.jsonl.gz"
BENCHMARKS = REPO / "BENCHMARKS.md"
START, END = "<!-- bench:train_gold -->", "<!-- /bench:train_gold -->"
CAVEAT = ("- caveat: the rules baseline is not held out — `tests/test_rules.py` scores the rules on this whole gold "
          "export and the rules were refined with it in view, test split included; the model never sees the test "
          "articles (split by article; silver paragraphs come from other articles)")
HEADER = "# Benchmarks\n\nEach section is written by the script it names; rerun the script to update it.\n"


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


def section(metrics: dict, train_line: str, train_seconds: float, dataset_line: str, overrides: list[str],
            silver: str) -> str:
    ner, base = metrics["ner"], metrics["baseline"]["ner"]
    lines = [START, "## train_gold: NER + sectors on the gold news export vs the rules baseline", "",
             f"`bench/train_gold.py` on `shared/data/gold/news-gold.json` ({dataset_line}); "
             f"evaluated on the test split: {metrics['data']['paragraphs']} paragraphs, "
             f"{metrics['data']['entities']} entities. Strict NER (start, end, label equal).", "",
             "| label | support | model F1 | rules F1 | model beats rules |", "| --- | ---: | ---: | ---: | :---: |"]
    for label, v in ner["per_label"].items():
        b = base["per_label"].get(label, {"f1": 0.0})["f1"]
        lines.append(f"| {label} | {v['support']} | {v['f1']:.3f} | {b:.3f} | {'yes' if v['f1'] > b else '**no**'} |")
    lo, hi = ner["micro_f1_ci95"]
    blo, bhi = base["micro_f1_ci95"]
    lines.append(f"| **micro** | | **{ner['micro']['f1']:.3f}** [{lo:.3f}, {hi:.3f}] | {base['micro']['f1']:.3f} "
                 f"[{blo:.3f}, {bhi:.3f}] | {'yes' if ner['micro']['f1'] > base['micro']['f1'] else '**no**'} |")
    lines.append(f"| macro | | {ner['macro']['f1']:.3f} | {base['macro']['f1']:.3f} | |")
    lines += ["", "Brackets: 95% bootstrap interval over articles (1000 resamples, seed 0).", ""]
    if "sectors" in metrics and "sectors" in metrics["baseline"]:
        s, sb = metrics["sectors"], metrics["baseline"]["sectors"]
        lines += ["| sectors | model | rules keywords |", "| --- | ---: | ---: |",
                  f"| micro-F1 | {s['micro']['f1']:.3f} | {sb['micro']['f1']:.3f} |",
                  f"| macro-F1 | {s['macro']['f1']:.3f} | {sb['macro']['f1']:.3f} |", ""]
    lines += [f"- training: {train_seconds:.0f} s wall clock ({train_line})",
              f"- silver training data: {silver}",
              f"- overrides: {' '.join(overrides) if overrides else 'none (committed configs/ner.cfg, configs/sectors.yml)'}",
              CAVEAT,
              f"- machine: {machine()}",
              f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}", END]
    return "\n".join(lines)


def write_section(text: str) -> None:
    current = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else HEADER
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    BENCHMARKS.write_text(updated, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="Keep dataset, model and report in this folder (outside the repo).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="NER config override.")
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    parser.add_argument("--no-silver", action="store_true", help="Train on the gold paragraphs only.")
    args = parser.parse_args()
    if not GOLD.exists():
        print(f"train_gold: {GOLD} not found", file=sys.stderr)
        return 2
    from hoptac.train.dataset import build_dataset
    from hoptac.train.evaluate import evaluate
    from hoptac.train.pipeline import train_pipeline

    with tempfile.TemporaryDirectory(prefix="hoptac-bench-") as tmp:
        work = args.keep or Path(tmp)
        if work.resolve().is_relative_to(REPO):
            print("train_gold: --keep must be outside the repo (nothing made from gold data goes in it)", file=sys.stderr)
            return 2
        work.mkdir(parents=True, exist_ok=True)
        report = build_dataset([GOLD], work / "dataset", dev=0.1, test=0.2, seed=0, policy="ground-truth")
        print(report.summary())
        started = time.time()
        training = train_pipeline(work / "dataset", work / "model", config=REPO / "configs" / "ner.cfg",
                                  sectors_config=REPO / "configs" / "sectors.yml", overrides=args.overrides,
                                  silver=None if args.no_silver or not NEWS.exists() else [NEWS])
        seconds = time.time() - started
        print(training.summary())
        evaluation = evaluate(str(work / "model"), work / "dataset", work / "report", baseline="rules")
        print(evaluation.summary())
        metrics = evaluation.metrics
        dataset_line = ", ".join(f"{split} {c['paragraphs']}" for split, c in report.counts.items()) + " paragraphs"
    silver = ("none (gold only)" if not training.silver_paragraphs else
              f"{training.silver_paragraphs} paragraphs drawn from `shared/data/news/unlabeled.jsonl.gz` (gold articles "
              f"excluded), annotated by the rules; gold training paragraphs repeated")
    text = section(metrics, "; ".join(training.parts()), seconds, dataset_line, args.overrides, silver)
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"updated {BENCHMARKS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
