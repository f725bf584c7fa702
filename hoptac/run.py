"""``hoptac run``: the whole loop on the embedded seed data (or given exports)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hoptac.schema import REPO_ROOT

SEEDS = REPO_ROOT / "seeds"


def run_command(
    data: Annotated[Optional[list[Path]], typer.Option("--data", help="Label Studio exports (default: seeds/annotations/).")] = None,
    workdir: Annotated[Path, typer.Option("-o", "--output", help="Work folder for every artefact.")] = REPO_ROOT / "models" / "run",
) -> None:
    """Seeds → corpus → pre-annotated tasks → dataset → trained model → evaluation report."""
    from corpus.build import build_corpus

    workdir.mkdir(parents=True, exist_ok=True)
    corpus_path = workdir / "corpus.jsonl"
    summary = build_corpus([SEEDS], corpus_path)
    typer.echo(f"[1/5] corpus: {summary.documents} document(s), {summary.paragraphs} paragraphs → {corpus_path}")
