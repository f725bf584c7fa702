"""The ``hoptac`` command: one sub-command (or sub-app) per stage.

Bad input raises :class:`hoptac.errors.HoptacError`; :func:`main` prints it on
one line (``hoptac: error: …``) and exits with status 2, never a traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from hoptac import __version__
from hoptac.errors import HoptacError
from hoptac.output import FORCE_HELP

# The commands in the order a paragraph meets them (help lists them so).
PIPELINE_ORDER = ("corpus", "annotate", "dataset", "pretrain", "train", "train-curve", "evaluate", "package", "predict",
                  "serve", "run")


class PipelineOrder(TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        return [n for n in PIPELINE_ORDER if n in names] + [n for n in names if n not in PIPELINE_ORDER]


app = typer.Typer(
    name="hoptac",
    cls=PipelineOrder,
    help="Vietnamese cooperation news: corpus → Label Studio → dataset → spaCy model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: no type tags, wrapped (not cut) at any width
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
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """The whole loop on the seed: corpus to evaluation report."""
    from hoptac.run import run

    typer.echo(run(data, workdir, overrides, force=force).summary())


def _register() -> None:
    # The stage commands import their library modules when they run, so that
    # `hoptac --help` starts without loading spaCy, datasets and scikit-learn.
    from hoptac.annotate.cli import app as annotate_app
    from hoptac.corpus.cli import app as corpus_app
    from hoptac.train import cli as train_cli

    app.add_typer(corpus_app, name="corpus")
    app.add_typer(annotate_app, name="annotate")
    app.add_typer(train_cli.dataset_app, name="dataset")
    app.command("pretrain")(train_cli.pretrain_command)
    app.command("train")(train_cli.train_command)
    app.command("train-curve")(train_cli.train_curve_command)
    app.command("evaluate")(train_cli.evaluate_command)
    app.command("package")(train_cli.package_command)
    app.command("predict")(train_cli.predict_command)
    app.command("serve")(train_cli.serve_command)
    app.command("run")(run_command)


_register()


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that the output
    being written is cleaned up (``hoptac.output``) before the process exits 143."""


def _terminate(signum, frame) -> None:
    raise Terminated()


INTERRUPTED = 130  # 128 + SIGINT
TERMINATED = 143  # 128 + SIGTERM


def configure_logging() -> None:
    """Progress and messages of the library (loggers under ``hoptac``): plain lines on stderr, INFO and up."""
    logger = logging.getLogger("hoptac")
    if not any(getattr(h, "_hoptac", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._hoptac = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main() -> None:
    """Run the CLI; errors are one line, Ctrl-C exits 130 and SIGTERM 143, outputs left as they were."""
    signal.signal(signal.SIGTERM, _terminate)
    configure_logging()
    try:
        code = app(standalone_mode=False)  # typer turns KeyboardInterrupt into a returned 130
    except HoptacError as e:
        typer.echo(f"hoptac: error: {e}", err=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = INTERRUPTED
    except Terminated:
        typer.echo("hoptac: terminated", err=True)
        sys.exit(TERMINATED)
    except Exception as e:  # usage errors (typer ships its own copy of click's exceptions)
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        raise
    if code == INTERRUPTED:
        typer.echo("hoptac: interrupted", err=True)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
