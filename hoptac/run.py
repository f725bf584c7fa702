"""``hoptac run``: the whole loop on the embedded seed data (or given exports).

[1/5] corpus from ``seeds/`` (with ``--data``: the exports' paragraphs) → [2/5]
Label Studio tasks pre-annotated by the rules (``WORKDIR/tasks.json``) → [3/5] dataset from the annotations (default
``seeds/annotations/*.json``) → [4/5] spaCy NER + sector classifier → [5/5]
evaluation against the rules baseline (``WORKDIR/report/report.md``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hoptac.annotate.export import load_exports
from hoptac.annotate.tasks import make_tasks
from hoptac.corpus.build import build_corpus, read_corpus
from hoptac.errors import HoptacError
from hoptac.output import output_folder, write_text
from hoptac.resources import NER_CONFIG, SECTORS_CONFIG, SEED_ANNOTATIONS, SEED_ARTICLES
from hoptac.train.dataset import BuildReport, build_dataset
from hoptac.train.evaluate import EvaluationResult, evaluate
from hoptac.train.pipeline import TrainResult, train_pipeline

DEFAULT_WORKDIR = Path("models") / "run"
logger = logging.getLogger(__name__)


def export_paragraphs(exports: list[Path]) -> list[dict]:
    """Corpus rows (``id``, ``doc_id``, ``index``, ``title``, ``text``) of every task of ``exports``."""
    rows, index = [], Counter()
    for task in load_exports(exports):
        rows.append({"id": f"{task.doc_id}:{index[task.doc_id]}", "doc_id": task.doc_id,
                     "index": index[task.doc_id], "title": task.title, "text": task.text})
        index[task.doc_id] += 1
    return rows


def default_exports() -> list[Path]:
    return sorted(SEED_ANNOTATIONS.glob("*.json"))


@dataclass
class RunResult:
    """Every artefact of ``hoptac run`` (in ``workdir``) and the results of its steps."""

    workdir: Path
    exports: list[Path]
    paragraphs: int
    tasks: int
    dataset: BuildReport
    training: TrainResult
    evaluation: EvaluationResult
    seconds: float

    @property
    def model_dir(self) -> Path:
        return self.training.model_dir

    @property
    def report_path(self) -> Path:
        return self.evaluation.report_path

    def lines(self) -> list[str]:
        indent = "      "
        return [f"corpus: {self.paragraphs} paragraphs → {self.workdir / 'corpus.jsonl'}; "
                f"{self.tasks} Label Studio tasks pre-annotated by the rules → {self.workdir / 'tasks.json'}",
                f"dataset from {len(self.exports)} export(s) → {self.dataset.out_dir}",
                indent + self.dataset.summary().replace("\n", "\n" + indent),
                f"training → {self.model_dir}", indent + self.training.summary(),
                f"evaluation against the rules baseline → {self.evaluation.report_dir}",
                indent + self.evaluation.summary(),
                f"done in {self.seconds:.0f}s: report {self.report_path}, model {self.model_dir}"]

    def summary(self) -> str:
        return "\n".join(self.lines())


def run(data: list[Path] | None = None, workdir: Path = DEFAULT_WORKDIR, overrides: list[str] | None = None,
        force: bool = False) -> RunResult:
    """Seeds → corpus → pre-annotated tasks → dataset → trained model → evaluation report; steps are logged."""
    started = time.time()
    exports = list(data) if data else default_exports()
    for path in exports:
        if not path.is_file():
            raise HoptacError(f"{path}: no such export file")
    if not exports:
        raise HoptacError(f"{SEED_ANNOTATIONS}: no Label Studio export (*.json) to train on")
    output_folder(workdir, inputs=exports, force=force, command="hoptac run")

    corpus_path = workdir / "corpus.jsonl"
    if data:  # the paragraphs of the given exports, not the seed's
        write_text(corpus_path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in export_paragraphs(exports)),
                   kind="corpus", inputs=exports)
        source = f"the paragraphs of {len(exports)} export(s)"
    else:
        build_corpus([SEED_ARTICLES], corpus_path)
        source = "the seed article"
    rows = read_corpus(corpus_path)
    logger.info(f"[1/5] corpus: {len({r['doc_id'] for r in rows})} document(s), {len(rows)} paragraphs "
                f"from {source} → {corpus_path}")

    tasks_path = workdir / "tasks.json"
    tasks = make_tasks(rows, pre="rules", order="corpus")
    write_text(tasks_path, json.dumps(tasks, ensure_ascii=False, indent=1), kind="tasks")
    logger.info(f"[2/5] tasks: {len(rows)} paragraphs → {len(tasks)} Label Studio tasks pre-annotated by the rules → {tasks_path}")

    dataset_dir = workdir / "dataset"
    logger.info(f"[3/5] dataset from {len(exports)} export(s) → {dataset_dir}")
    report = build_dataset(exports, dataset_dir, dev=0.1, test=0.2, seed=0, policy="ground-truth")

    model_dir = workdir / "model"
    logger.info(f"[4/5] training → {model_dir}")
    training = train_pipeline(dataset_dir, model_dir, config=NER_CONFIG, sectors_config=SECTORS_CONFIG, only=None,
                              overrides=overrides or [])

    report_dir = workdir / "report"
    logger.info(f"[5/5] evaluation against the rules baseline → {report_dir}")
    # with fewer than three articles (the seed has one) the split is by paragraph: the test paragraphs
    # then share their article with training, which the report says
    evaluation = evaluate(str(model_dir), dataset_dir, report_dir, baseline="rules",
                          allow_training_data=not report.plan.grouped)
    return RunResult(workdir, exports, len(rows), len(tasks), report, training, evaluation, time.time() - started)
