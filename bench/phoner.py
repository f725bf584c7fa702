"""Benchmark (stage 3): the default recipe on PhoNER_COVID19, a public Vietnamese NER corpus.

PhoNER_COVID19 (VinAIResearch, word-level split: 5,027 / 2,000 / 3,000 sentences, 10
entity types) is not in this repository and tests never need it. Bring it with the
search tool's ``fetch`` of ``VinAIResearch/PhoNER_COVID19`` and pass the folder that
holds ``train_word.conll``, ``dev_word.conll`` and ``test_word.conll``::

    .venv/bin/python bench/phoner.py --data PATH/data/word [--config configs/ner.cfg] [--set k=v …]
        [--vectors VECTORS] [--no-write]

It runs the toolkit as a user would, through the CLI: ``hoptac dataset from-conll``
(the labels come from the tags), ``hoptac train`` with the given config (default: the
committed one) and ``hoptac evaluate`` on the test split, in a temporary folder
outside the repository. It prints per-label strict F1 and the training time, and
writes its section of ``BENCHMARKS.md`` (between ``<!-- bench:phoner -->`` markers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks_md import markers, write_section  # bench/benchmarks_md.py

REPO = Path(__file__).resolve().parents[1]
SECTION = "phoner"
START, END = markers(SECTION)
# Published test micro-F1 on the word-level data (PhoNER_COVID19 paper, NAACL 2021) and
# spaCy's stock CPU NER config as measured for issue 16, for the table.
REFERENCES = {"PhoBERT-large (published)": 0.945, "BiLSTM-CNN-CRF (published)": 0.921,
              "spaCy stock CPU config (issue 16)": 0.918}


def hoptac(*args) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "hoptac.cli", *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"phoner: hoptac {' '.join(map(str, args[:2]))} failed:\n{result.stderr[-3000:]}")
    return result


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def run(data: Path, config: Path, overrides: list[str], work: Path, vectors: Path | None = None) -> dict:
    files = {split: data / f"{split}_word.conll" for split in ("train", "dev", "test")}
    for path in files.values():
        if not path.is_file():
            sys.exit(f"phoner: {path}: not found (pass --data PATH/data/word of PhoNER_COVID19)")
    dataset, model, report = work / "ds", work / "model", work / "report"
    hoptac("dataset", "from-conll", "--train", files["train"], "--dev", files["dev"], "--test", files["test"],
           "-o", dataset)
    started = time.perf_counter()
    sets = [x for item in overrides for x in ("--set", item)]
    extra = ["--vectors", vectors] if vectors else []
    train = hoptac("train", dataset, "-o", model, "--config", config, *sets, *extra)
    seconds = time.perf_counter() - started
    hoptac("evaluate", model, dataset, "-o", report)
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    meta = json.loads((model / "meta.json").read_text(encoding="utf-8"))
    return {"metrics": metrics, "seconds": seconds, "train_output": train.stdout.strip().splitlines()[-1:],
            "ner": (meta.get("hoptac") or {}).get("ner") or {}}


def section(result: dict, config: Path, overrides: list[str], vectors: Path | None = None) -> str:
    ner = result["metrics"]["ner"]
    rows = [f"| {label} | {v['support']} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} |"
            for label, v in sorted(ner["per_label"].items())]
    micro = ner["micro"]
    refs = "\n".join(f"| {name} | {f1:.3f} |" for name, f1 in REFERENCES.items())
    config_name = config.relative_to(REPO) if config.is_relative_to(REPO) else config.name
    return "\n".join([
        START,
        "## phoner: the default recipe on PhoNER_COVID19 (word level)",
        "",
        f"`bench/phoner.py` (`hoptac dataset from-conll` → `hoptac train --config {config_name}"
        + "".join(f" --set {o}" for o in overrides) + (" --vectors VECTORS" if vectors else "")
        + "` → `hoptac evaluate`), test split, strict match.",
        *([""] + [_vectors_line(vectors)] if vectors else []),
        "",
        "| label | support | precision | recall | F1 |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        f"| **micro** | | {micro['precision']:.3f} | {micro['recall']:.3f} | **{micro['f1']:.3f}** |",
        "",
        "| reference | test micro-F1 |",
        "| --- | ---: |",
        refs,
        "",
        f"- training: {result['seconds']:.0f} s wall clock, {result['ner'].get('steps', '?')} steps, "
        f"best dev F1 {result['ner'].get('best_dev_f1')}",
        f"- machine: {machine()}",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        END,
    ])


def _vectors_line(vectors: Path) -> str:
    meta = json.loads((vectors / "pretrain.json").read_text(encoding="utf-8"))
    return (f"VECTORS: `hoptac pretrain` on {meta['paragraphs']:,} paragraphs ({meta['tokens']:,} tokens) of "
            f"unlabelled news: {meta['words']:,} words × {meta['settings']['dim']} dimensions, "
            f"{meta['seconds']:.0f} s (a one-off step).")




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="PhoNER_COVID19's data/word folder")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "ner.cfg")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override k=v")
    parser.add_argument("--vectors", type=Path, help="a `hoptac pretrain` folder, passed to `hoptac train --vectors`")
    parser.add_argument("--keep", type=Path, help="keep the dataset, model and report in this new folder")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hoptac-phoner-") as tmp:
        work = args.keep or Path(tmp)
        vectors = args.vectors.resolve() if args.vectors else None
        result = run(args.data.resolve(), args.config.resolve(), args.overrides, work, vectors)
    text = section(result, args.config.resolve(), args.overrides, vectors)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
