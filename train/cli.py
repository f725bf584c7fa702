"""Stage 3 commands: ``hoptac dataset …``, ``pretrain``, ``train``, ``train-curve``, ``evaluate``, ``package``, ``predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hoptac.errors import HoptacError
from hoptac.output import FORCE_HELP
from hoptac.resources import NER_CONFIG, SECTORS_CONFIG

dataset_app = typer.Typer(help="Label Studio exports or CoNLL files → Hugging Face dataset.", no_args_is_help=True,
                          rich_markup_mode=None)


@dataset_app.command("build")
def dataset_build(
    exports: Annotated[list[Path], typer.Argument(help="Label Studio JSON export files.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Dataset folder to write.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    dev: Annotated[float, typer.Option("--dev", min=0.0, max=0.9, help="Share of articles for validation.")] = 0.1,
    test: Annotated[float, typer.Option("--test", min=0.0, max=0.9, help="Share of articles for test.")] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Split seed.")] = 0,
    policy: Annotated[str, typer.Option("--policy", help="Merge policy: 'ground-truth' (then latest) or 'ground-truth+majority-sectors'.")] = "ground-truth",
) -> None:
    """Build train/validation/test splits (grouped by article) with a dataset card."""
    from hoptac.train.dataset import build_dataset

    report = build_dataset(exports, output, dev=dev, test=test, seed=seed, policy=policy, force=force)
    typer.echo(report.summary())


@dataset_app.command("from-conll")
def dataset_from_conll(
    train: Annotated[Path, typer.Option("--train", help="BIO-tagged CoNLL file for training.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Dataset folder to write.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    dev: Annotated[Optional[Path], typer.Option("--dev", help="Validation CoNLL file.")] = None,
    test: Annotated[Optional[Path], typer.Option("--test", help="Test CoNLL file.")] = None,
) -> None:
    """Import BIO CoNLL files; the label set comes from their tags."""
    from hoptac.train.conll import dataset_from_conll as build

    typer.echo(build(train, output, dev=dev, test=test, force=force).summary())


@dataset_app.command("to-conll")
def dataset_to_conll(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for one CoNLL file per split.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Write each split as a BIO CoNLL file."""
    from hoptac.train.conll import dataset_to_conll as write

    typer.echo(write(dataset, output, force=force).summary())


@dataset_app.command("stats")
def dataset_stats(dataset: Annotated[Path, typer.Argument(help="Dataset folder.")]) -> None:
    """Paragraphs, articles, entities per label and sectors per split."""
    from hoptac.train.dataset import stats_table

    typer.echo(stats_table(dataset))


def train_command(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder from `hoptac dataset build`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder (a spaCy pipeline).")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    config: Annotated[Path, typer.Option("--config", help="spaCy NER training config (configs/ner-accurate.cfg: more accurate, slower to predict).")] = NER_CONFIG,
    sectors_config: Annotated[Path, typer.Option("--sectors-config", help="Sector classifier hyper-parameters.")] = SECTORS_CONFIG,
    only: Annotated[Optional[str], typer.Option("--only", help="Train only 'ner' or 'sectors'.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Config override section.key=value (repeatable).")] = None,
    silver: Annotated[Optional[list[Path]], typer.Option("--silver", help="Unlabelled news to draw rules-annotated training paragraphs from ([hoptac] silver_size in the config).")] = None,
    vectors: Annotated[Optional[Path], typer.Option("--vectors", help="Word vectors from `hoptac pretrain` for the NER to embed (saved in the model).")] = None,
) -> None:
    """Train the NER and the sector classifier: one spaCy pipeline."""
    from hoptac.train.pipeline import train_pipeline

    if only not in (None, "ner", "sectors"):
        raise HoptacError(f"--only must be 'ner' or 'sectors', not {only!r}")
    result = train_pipeline(dataset, output, config=config, sectors_config=sectors_config,
                            only=only, overrides=overrides or [], silver=silver or None, vectors=vectors,
                            force=force)
    typer.echo(result.summary())


def pretrain_command(
    inputs: Annotated[list[Path], typer.Argument(help="Unlabelled news: corpus JSONL(.gz), text files or folders, as for `hoptac corpus build`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the vectors.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    dim: Annotated[Optional[int], typer.Option("--dim", min=8, max=1000, help="Vector width (default in train/pretrain.py: VectorSettings).")] = None,
    min_count: Annotated[Optional[int], typer.Option("--min-count", min=1, help="Words seen fewer times get no vector of their own.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Passes over the text.")] = None,
) -> None:
    """Word vectors from unlabelled news, for `hoptac train --vectors` (a one-off step)."""
    from hoptac.train.pretrain import VectorSettings, pretrain

    given = {"dim": dim, "min_count": min_count, "epochs": epochs}
    settings = VectorSettings(**{k: v for k, v in given.items() if v is not None})
    typer.echo(pretrain(inputs, output, settings, force=force).summary())


def train_curve_command(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder from `hoptac dataset build` (split by article).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for curve.md, curve.json and curve.png.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    shares: Annotated[str, typer.Option("--shares", help="Shares of the training articles to train on, comma-separated.")] = "0.25,0.5,0.75,1",
    config: Annotated[Path, typer.Option("--config", help="spaCy NER training config.")] = NER_CONFIG,
    sectors_config: Annotated[Path, typer.Option("--sectors-config", help="Sector classifier settings.")] = SECTORS_CONFIG,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Config override section.key=value (repeatable).")] = None,
    silver: Annotated[Optional[list[Path]], typer.Option("--silver", help="Unlabelled news for rules-annotated training paragraphs, as for `hoptac train`.")] = None,
    vectors: Annotated[Optional[Path], typer.Option("--vectors", help="A `hoptac pretrain` folder, as for `hoptac train`.")] = None,
) -> None:
    """Per-label F1 after training on 25/50/75/100% of the articles."""
    from hoptac.train.curve import train_curve

    try:
        fractions = tuple(float(x) for x in shares.split(",") if x.strip())
    except ValueError:
        raise HoptacError(f"--shares {shares!r}: expected fractions like 0.25,0.5,1") from None
    result = train_curve(dataset, output, config, sectors_config, fractions, overrides or [], silver or None,
                         force=force, vectors=vectors)
    typer.echo(result.summary())


def evaluate_command(
    model: Annotated[Path, typer.Argument(help="Model folder (or installed package name).")],
    data: Annotated[Path, typer.Argument(help="Dataset folder (its test split) or a Label Studio export file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Report folder.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Also score a baseline: 'rules'.")] = None,
    allow_training_data: Annotated[bool, typer.Option("--allow-training-data", help="Score articles the model was trained or tuned on (refused by default; the report then says so).")] = False,
) -> None:
    """Per-label evaluation: metrics.json, report.md and charts."""
    from hoptac.train.evaluate import evaluate

    if baseline not in (None, "rules"):
        raise HoptacError(f"--baseline must be 'rules', not {baseline!r}")
    typer.echo(evaluate(str(model), data, output, baseline=baseline, force=force,
                        allow_training_data=allow_training_data).summary())


def package_command(
    model: Annotated[Path, typer.Argument(help="Trained model folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the wheel.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    name: Annotated[str, typer.Option("--name", help="Installed package name, loadable with spacy.load (the language prefix vi_ is added if missing).")] = "vi_hoptac",
    version: Annotated[str, typer.Option("--version", help="Package version X.Y.Z.")] = "0.1.0",
    metrics: Annotated[Optional[Path], typer.Option("--metrics", help="metrics.json from `hoptac evaluate` (default: one next to the model).")] = None,
) -> None:
    """A model folder as a pip-installable wheel (spacy package)."""
    from hoptac.train.package import package_model

    result = package_model(model, output, name=name, version=version, metrics=metrics, force=force)
    if result.metrics_path is None:
        typer.echo("warning: no evaluation report (metrics.json) found next to the model and no --metrics given: "
                   "the model card has no per-label scores", err=True)
    typer.echo(result.summary())


def predict_command(
    model: Annotated[str, typer.Argument(help="Model folder or installed package name.")],
    inputs: Annotated[list[Path], typer.Argument(help="Anything `hoptac corpus build` reads.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Predictions (JSONL, one line per paragraph); with --engine ray a folder of JSONL parts.")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Paragraphs per batch through the pipeline (and per chunk sent to a worker).")] = 256,
    n_process: Annotated[int, typer.Option("--n-process", min=1, help="Worker processes (forked; each runs the whole pipeline). 2 on this project's 2-core machines.")] = 1,
    engine: Annotated[str, typer.Option("--engine", help="'local' (this machine) or 'ray' (a Ray cluster; -o is then a folder of JSONL parts; needs hoptac[ray]).")] = "local",
    address: Annotated[Optional[str], typer.Option("--address", help="With --engine ray: the cluster ('auto' or ray://HOST:PORT); default: start Ray on this machine.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="With --engine ray: actors, each with the model loaded once (default 2).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="With --engine ray: continue an unfinished run in the -o folder, skipping its complete shards.")] = False,
) -> None:
    """Entities and sector scores for every paragraph, streamed."""
    if engine == "ray":
        if n_process != 1:
            raise HoptacError("--n-process is for --engine local; with --engine ray use --workers")
        from hoptac.train.ray_predict import predict_on_ray

        typer.echo(predict_on_ray(model, inputs, output, address=address, workers=workers or 2,
                                  batch_size=batch_size, force=force, resume=resume).summary())
        return
    if engine != "local":
        raise HoptacError(f"--engine must be 'local' or 'ray', not {engine!r}")
    if address is not None or workers is not None:
        raise HoptacError("--address and --workers are for --engine ray")
    if resume:
        raise HoptacError("--resume is for --engine ray (the local engine writes one file, replaced only "
                          "when complete: rerun it)")
    from hoptac.train.predict import predict

    typer.echo(predict(model, inputs, output, batch_size=batch_size, n_process=n_process, force=force).summary())


def serve_command(
    model: Annotated[Path, typer.Argument(help="Model folder to serve (a hoptac spaCy pipeline).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 9090,
    workdir: Annotated[Path, typer.Option("--workdir", help="Folder for the annotation store and the retraining rounds.")] = Path("work") / "serve",
    store: Annotated[Optional[Path], typer.Option("--store", help="Annotation store (SQLite; default WORKDIR/annotations.sqlite3).")] = None,
    retrain_every: Annotated[int, typer.Option("--retrain-every", min=0, help="Retrain after this many new annotations (0: never).")] = 50,
    exports: Annotated[Optional[list[Path]], typer.Option("--exports", help="Label Studio exports pulled so far, trained on with the new annotations (repeatable).")] = None,
    config: Annotated[Path, typer.Option("--config", help="spaCy NER training config for retraining.")] = NER_CONFIG,
    sectors_config: Annotated[Path, typer.Option("--sectors-config", help="Sector classifier settings for retraining.")] = SECTORS_CONFIG,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Training config override for retraining, section.key=value (repeatable).")] = None,
    max_chars: Annotated[int, typer.Option("--max-chars", min=1, help="Longest task text accepted by /predict.")] = 20_000,
    max_tasks: Annotated[int, typer.Option("--max-tasks", min=1, help="Most tasks accepted in one /predict request.")] = 1_000,
) -> None:
    """Serve a model to Label Studio as its ML backend; learn from submitted annotations."""
    from hoptac.train.serve import serve

    typer.echo(serve(model, host=host, port=port, workdir=workdir, store=store, retrain_every=retrain_every,
                     exports=exports, overrides=overrides, config=config, sectors_config=sectors_config,
                     max_chars=max_chars, max_tasks=max_tasks).summary())
