"""``hoptac corpus``: build the paragraph corpus."""

from pathlib import Path
from typing import Annotated

import typer
from hoptac.corpus.build import build_corpus

from hoptac.output import FORCE_HELP

app = typer.Typer(help="Stage 1: seed articles → paragraph corpus (JSONL).", no_args_is_help=True,
                  rich_markup_mode=None)


@app.command()
def build(
    inputs: Annotated[list[Path], typer.Argument(help="Text files, JSONL(.gz) files or folders of them.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Corpus file to write (JSONL).")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Split articles into paragraphs: one JSON line each (id, doc_id, index, title, text)."""
    summary = build_corpus(inputs, output, force=force)
    for line in summary.lines():
        typer.echo(line)
    for place, reason in summary.skipped:
        typer.echo(f"warning: skipped {place}: {reason}", err=True)
    typer.echo(f"wrote {summary.paragraphs} paragraphs to {output}")
