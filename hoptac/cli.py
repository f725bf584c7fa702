"""The ``hoptac`` command: one sub-command (or sub-app) per stage.

Bad input raises :class:`hoptac.errors.HoptacError`; :func:`main` prints it on
one line (``hoptac: error: …``) and exits with status 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from hoptac import __version__
from hoptac.errors import HoptacError

app = typer.Typer(
    name="hoptac",
    help="Vietnamese cooperation news: corpus → Label Studio → dataset → spaCy model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hoptac {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Vietnamese cooperation news: corpus → Label Studio → dataset → spaCy model."""


def run_command(
    data: Annotated[Optional[list[Path]], typer.Option("--data", help="Label Studio exports (default: the seed's annotation).")] = None,
    workdir: Annotated[Path, typer.Option("-o", "--output", help="Work folder for every artefact.")] = Path("models") / "run",
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Training config override section.key=value (repeatable), as for `hoptac train`.")] = None,
) -> None:
    """Seeds → corpus → pre-annotated tasks → dataset → trained model → evaluation report."""
    from hoptac.run import run

    run(data, workdir, overrides)


def _register() -> None:
    # The stage commands import their library modules when they run, so that
    # `hoptac --help` starts without loading spaCy, datasets and scikit-learn.
    from hoptac.annotate.cli import app as annotate_app
    from hoptac.corpus.cli import app as corpus_app
    from hoptac.train import cli as train_cli

    app.add_typer(corpus_app, name="corpus")
    app.add_typer(annotate_app, name="annotate")
    app.add_typer(train_cli.dataset_app, name="dataset")
    app.command("train")(train_cli.train_command)
    app.command("evaluate")(train_cli.evaluate_command)
    app.command("package")(train_cli.package_command)
    app.command("predict")(train_cli.predict_command)
    app.command("run")(run_command)


_register()


def main() -> None:
    try:
        app(standalone_mode=False)
    except HoptacError as e:
        typer.echo(f"hoptac: error: {e}", err=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("hoptac: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("hoptac: interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # usage errors (typer ships its own copy of click's exceptions)
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
