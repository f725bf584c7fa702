"""``hoptac annotate``: Label Studio config, pre-annotated tasks, pull, check, agreement."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from hoptac.errors import HoptacError
from hoptac.output import FORCE_HELP, check_output, write_text
from hoptac.schema import load_schema

app = typer.Typer(help="Stage 2: Label Studio: config, tasks, pull, check, agreement.", no_args_is_help=True,
                  rich_markup_mode=None)

LS_URL = typer.Option("--ls-url", envvar="LABEL_STUDIO_URL", help="Label Studio server URL (or $LABEL_STUDIO_URL).")
API_KEY_ENV = "LABEL_STUDIO_API_KEY"


def api_key() -> str:
    """The Label Studio API key, from the environment only (never a flag, never printed)."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise HoptacError(f"set {API_KEY_ENV} in the environment to talk to Label Studio")
    return key


@app.command()
def config(
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the XML here (default: stdout).")] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Print the Label Studio labelling config generated from configs/labels.yml."""
    from hoptac.annotate.config import labelling_config

    xml = labelling_config(load_schema())
    if output:
        write_text(output, xml, kind="labelling config", force=force)
        typer.echo(f"wrote {output}")
    else:
        typer.echo(xml)


@app.command()
def export(
    corpus: Annotated[Path, typer.Argument(help="Corpus JSONL from `hoptac corpus build`.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write Label Studio import JSON here.")] = None,
    pre: Annotated[str, typer.Option("--pre", help="Pre-annotations: 'rules', 'none', or a trained MODEL_DIR.")] = "rules",
    order: Annotated[str, typer.Option("--order", help="'corpus' order, or 'uncertainty' (least confident first).")] = "corpus",
    ls_url: Annotated[Optional[str], LS_URL] = None,
    project: Annotated[str, typer.Option("--project", help="Label Studio project title (created or reused).")] = "hoptac",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Tasks per import request.")] = 200,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Turn a corpus into Label Studio tasks, pre-annotated; write them to a file and/or a live server."""
    from hoptac.annotate.tasks import make_tasks
    from hoptac.corpus.build import read_corpus

    if output is None and not ls_url:
        raise HoptacError("say where the tasks go: -o FILE and/or --ls-url URL")
    if order not in ("corpus", "uncertainty"):
        raise HoptacError(f"--order must be 'corpus' or 'uncertainty', not {order!r}")
    if output:
        check_output(output, kind="tasks", inputs=[corpus], force=force)
    rows = read_corpus(corpus)
    tasks = make_tasks(rows, pre=pre, order=order)
    typer.echo(f"{len(rows)} paragraphs → {len(tasks)} tasks (pre-annotations: {pre})")
    if output:
        write_text(output, json.dumps(tasks, ensure_ascii=False, indent=1), kind="tasks", inputs=[corpus], force=force)
        typer.echo(f"wrote {output}")
    if ls_url:
        from hoptac.annotate.studio import push_tasks

        result = push_tasks(ls_url, api_key(), project, tasks, batch_size=batch_size)
        typer.echo(result.summary())


@app.command()
def pull(
    ls_url: Annotated[str, LS_URL],
    project: Annotated[str, typer.Option("--project", help="Label Studio project title.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the timestamped export file.")],
) -> None:
    """Download the project's full JSON export into a new timestamped file in the folder."""
    from hoptac.annotate.studio import pull_export

    path, counts = pull_export(ls_url, api_key(), project, output)
    typer.echo(f"wrote {path}")
    for key, value in counts.items():
        typer.echo(f"{key}: {value}")


@app.command()
def connect(
    ls_url: Annotated[str, LS_URL],
    project: Annotated[str, typer.Option("--project", help="Label Studio project title.")],
    backend_url: Annotated[str, typer.Option("--backend-url", help="Where Label Studio reaches `hoptac serve` (e.g. http://127.0.0.1:9090).")],
    title: Annotated[str, typer.Option("--title", help="The ML backend's title in Label Studio.")] = "hoptac",
) -> None:
    """Connect a running `hoptac serve` to the project as its ML backend (idempotent)."""
    from hoptac.annotate.studio import connect_backend

    typer.echo(connect_backend(ls_url, api_key(), project, backend_url, title=title).summary())


@app.command()
def prioritise(
    ls_url: Annotated[str, LS_URL],
    project: Annotated[str, typer.Option("--project", help="Label Studio project title.")],
    model: Annotated[Path, typer.Option("--model", help="Trained model folder whose scores order the tasks.")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Predictions per import request.")] = 200,
) -> None:
    """Order the project's unlabelled tasks least confident first (Label Studio's uncertainty sampling)."""
    from hoptac.annotate.studio import prioritise as order_tasks

    typer.echo(order_tasks(ls_url, api_key(), project, model, batch_size=batch_size).summary())


@app.command()
def check(
    exports: Annotated[list[Path], typer.Argument(help="Label Studio JSON export files.")],
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Pass even when no task has a submitted annotation (an import file, a fresh project).")] = False,
) -> None:
    """Validate exports: offsets, labels, overlaps, cancelled and missing annotations, duplicates."""
    from hoptac.annotate.check import check_exports

    report = check_exports(exports, load_schema())
    typer.echo(report.table())
    if report.errors:
        raise HoptacError(report.error_summary())
    if report.tasks and report.unsubmitted_tasks == report.tasks and not allow_empty:
        raise HoptacError(f"{', '.join(map(str, exports))}: none of the {report.tasks} tasks has a submitted "
                          "annotation (an import file, or a project nobody has annotated yet?); "
                          "pass --allow-empty to accept that")


@app.command()
def agreement(
    exports: Annotated[list[Path], typer.Argument(help="Label Studio JSON export files.")],
    top: Annotated[int, typer.Option("--top", min=0, help="How many most-disputed tasks to list.")] = 10,
) -> None:
    """Inter-annotator agreement: span F1 per label, Cohen's kappa per sector, most-disputed tasks."""
    from hoptac.annotate.agreement import agreement_report

    typer.echo(agreement_report(exports, load_schema(), top=top))
