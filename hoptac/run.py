"""``hoptac run``: the whole loop on the embedded seed data (or given exports).

[1/5] corpus from ``seeds/`` → [2/5] Label Studio tasks pre-annotated by the
rules (``WORKDIR/tasks.json``) → [3/5] dataset from the annotations (default
``seeds/annotations/*.json``) → [4/5] spaCy NER + sector classifier → [5/5]
evaluation against the rules baseline (``WORKDIR/report/report.md``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from hoptac.annotate.tasks import make_tasks
from hoptac.corpus.build import build_corpus, read_corpus
from hoptac.errors import HoptacError
from hoptac.output import output_folder, write_text
from hoptac.resources import NER_CONFIG, SECTORS_CONFIG, SEED_ANNOTATIONS, SEED_ARTICLES
from hoptac.train.dataset import build_dataset
from hoptac.train.evaluate import evaluate
from hoptac.train.pipeline import train_pipeline

DEFAULT_WORKDIR = Path("models") / "run"


def default_exports() -> list[Path]:
    return sorted(SEED_ANNOTATIONS.glob("*.json"))


def run(data: list[Path] | None = None, workdir: Path = DEFAULT_WORKDIR, overrides: list[str] | None = None,
        force: bool = False) -> None:
    """Seeds → corpus → pre-annotated tasks → dataset → trained model → evaluation report."""
    started = time.time()
    exports = list(data) if data else default_exports()
    for path in exports:
        if not path.is_file():
            raise HoptacError(f"{path}: no such export file")
    if not exports:
        raise HoptacError(f"{SEED_ANNOTATIONS}: no Label Studio export (*.json) to train on")
    output_folder(workdir, inputs=exports, force=force, command="hoptac run")

    corpus_path = workdir / "corpus.jsonl"
    summary = build_corpus([SEED_ARTICLES], corpus_path)
    typer.echo(f"[1/5] corpus: {summary.documents} document(s), {summary.paragraphs} paragraphs → {corpus_path}")

    tasks_path = workdir / "tasks.json"
    rows = read_corpus(corpus_path)
    tasks = make_tasks(rows, pre="rules", order="corpus")
    write_text(tasks_path, json.dumps(tasks, ensure_ascii=False, indent=1), kind="tasks")
    typer.echo(f"[2/5] tasks: {len(rows)} paragraphs → {len(tasks)} Label Studio tasks pre-annotated by the rules → {tasks_path}")

    dataset_dir = workdir / "dataset"
    report = build_dataset(exports, dataset_dir, dev=0.1, test=0.2, seed=0, policy="ground-truth")
    typer.echo(f"[3/5] dataset from {len(exports)} export(s) → {dataset_dir}")
    typer.echo("      " + str(report.summary()).replace("\n", "\n      "))

    model_dir = workdir / "model"
    typer.echo(f"[4/5] training → {model_dir}")
    typer.echo("      " + train_pipeline(dataset_dir, model_dir, config=NER_CONFIG,
                                         sectors_config=SECTORS_CONFIG, only=None, overrides=overrides or []))

    report_dir = workdir / "report"
    typer.echo(f"[5/5] evaluation against the rules baseline → {report_dir}")
    typer.echo("      " + evaluate(str(model_dir), dataset_dir, report_dir, baseline="rules"))
    typer.echo(f"done in {time.time() - started:.0f}s: report {report_dir / 'report.md'}, model {model_dir}")
