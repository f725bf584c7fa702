"""Stage 3 (training): ``hoptac train`` — one spaCy pipeline with ``ner`` and ``sector_classifier``.

Reads a dataset folder (``datasets.load_from_disk``: train/validation/test),
takes its labels from the features (entity labels from the BIO ``ner_tags``
ClassLabel, sectors from the ``sectors`` ClassLabel when that column exists),
trains the NER model (``train/ner.py``) and the sector classifier
(``train/sectors.py``), and writes MODEL_DIR, loadable with ``spacy.load`` once
``hoptac.components`` is imported. ``only="ner"``/``"sectors"`` retrains one part
and keeps the other from the MODEL_DIR already there (if any).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import spacy
from hoptac.train.dataset import class_names, dataset_labels, load_dataset_dir
from hoptac.train.ner import hoptac_settings, parse_overrides, train_ner
from hoptac.train.pretrain import vector_overrides
from hoptac.train.sectors import load_sectors_config, train_sectors
from hoptac.train.silver import silver_rows, title_key

from hoptac import components  # noqa: F401  (registers the sector_classifier factory; the tokenizer: hoptac.tokenizer)
from hoptac.errors import HoptacError
from hoptac.model import new_blank
from hoptac.output import atomic_dir, check_output

SECTOR_PIPE = components.FACTORY
logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- dataset access

def open_dataset(path: Path):
    """The DatasetDict at ``path`` (``hoptac.train.dataset.load_dataset_dir``), checked for what training needs."""
    path = Path(path)
    if not path.exists():
        raise HoptacError(f"{path}: no such dataset folder")
    ds = load_dataset_dir(path)
    if "train" not in ds:
        raise HoptacError(f"{path}: expected a dataset with a 'train' split (has {', '.join(ds) or 'none'})")
    missing = {"tokens", "ner_tags"} - set(ds["train"].column_names)
    if missing:
        raise HoptacError(f"{path}: dataset lacks column(s) {', '.join(sorted(missing))}")
    return ds


def decoded_rows(ds, split: str) -> list[dict]:
    """Rows of one split with ClassLabel ids turned into names (``ner_tags``, ``sectors``)."""
    if split not in ds or len(ds[split]) == 0:
        return []
    data = ds[split]
    tag_names = class_names(data.features["ner_tags"])
    sector_names = class_names(data.features["sectors"]) if "sectors" in data.features else None
    rows = []
    for row in data:
        row = dict(row)
        row["ner_tags"] = [tag_names[t] if isinstance(t, int) else t for t in row["ner_tags"]]
        if sector_names is not None:
            row["sectors"] = [sector_names[s] if isinstance(s, int) else s for s in row["sectors"] or []]
        rows.append(row)
    return rows


# ---------------------------------------------------------------- training

@dataclass
class TrainResult:
    """What ``hoptac train`` made: the model folder and the numbers of each part.

    ``ner``/``sectors`` say what became of each part: ``"trained"``, ``"kept"`` (from
    the previous model, with ``only``), or ``"none"`` (``sectors_note`` says why)."""

    model_dir: Path
    seconds: float
    ner: str = "none"
    ner_steps: int | None = None
    ner_seconds: float | None = None
    ner_best_dev_f1: float | None = None  # None: no validation split
    ner_labels: list[str] = field(default_factory=list)
    sectors: str = "none"
    sectors_note: str = ""
    sector_labels: list[str] = field(default_factory=list)
    sector_dev_micro_f1: float | None = None  # None: no validation split
    silver_paragraphs: int = 0

    def summary(self) -> str:
        return f"trained {self.model_dir} in {self.seconds:.0f}s: " + "; ".join(self.parts())

    def parts(self) -> list[str]:
        """What became of each part, without the model's path (for reports kept elsewhere)."""
        parts = []
        if self.ner == "trained":
            best = f"{self.ner_best_dev_f1:.3f}" if self.ner_best_dev_f1 is not None else "n/a (no validation split)"
            parts.append(f"ner: {self.ner_steps} steps in {self.ner_seconds:.0f}s, best dev F1 {best}")
        if self.sectors == "trained":
            parts.append(f"sector dev micro-F1 {self.sector_dev_micro_f1:.3f}" if self.sector_dev_micro_f1 is not None
                         else "sectors: trained (no validation split)")
        elif self.sectors == "kept":
            parts.append("sectors: kept from the previous model")
        elif self.sectors_note:
            parts.append(f"sectors: none ({self.sectors_note})")
        return parts


def train_pipeline(dataset: Path, output: Path, config: Path, sectors_config: Path | None = None,
                   only: str | None = None, overrides: list[str] | None = None,
                   silver: list[Path] | None = None, vectors: Path | None = None,
                   force: bool = False) -> TrainResult:
    """Train NER and/or the sector classifier into MODEL_DIR ``output``; progress is logged.

    ``silver``: unlabelled news (anything ``hoptac corpus build`` reads) from which
    ``[hoptac] silver_size`` rules-annotated paragraphs join the training split (``train/silver.py``).
    ``vectors``: a ``hoptac pretrain`` folder; the NER embeds its word vectors (``train/pretrain.py``).
    """
    if only not in (None, "ner", "sectors"):
        raise HoptacError(f"--only must be 'ner' or 'sectors', not {only!r}")
    output = Path(output)
    inputs = [Path(dataset), *(Path(p) for p in silver or []), *([Path(vectors)] if vectors else [])]
    if vectors is not None:
        overrides = [*vector_overrides(vectors), *(overrides or [])]
    check_output(output, kind="folder", inputs=inputs, force=force)  # before hours of training, not after
    ds = open_dataset(dataset)
    entity_labels, sector_labels = dataset_labels(ds)
    train_rows, dev_rows = decoded_rows(ds, "train"), decoded_rows(ds, "validation")
    if not train_rows:
        raise HoptacError(f"{dataset}: the train split is empty")
    spacy_overrides = parse_overrides(overrides or [])
    settings = hoptac_settings(Path(config), spacy_overrides)
    result = TrainResult(output, 0.0)
    if silver and settings["silver_size"] > 0:
        exclude = {doc_id for split in ds.values() for doc_id in split["doc_id"]}
        titles = {title_key(t) for split in ds.values() if "title" in split.column_names for t in split["title"]} - {""}
        extra = silver_rows(list(silver), settings["silver_size"], exclude, entity_labels, sector_labels,
                            seed=settings["silver_seed"], exclude_titles=titles)
        if extra:
            train_rows = train_rows * max(1, settings["gold_repeat"]) + extra
            result.silver_paragraphs = len(extra)
            logger.info(f"[silver] training on {len(train_rows)} paragraphs: gold ×{max(1, settings['gold_repeat'])} + "
                        f"{len(extra)} silver")
    sector_cfg = load_sectors_config(sectors_config) if only != "ner" else None
    previous = _load_previous(output) if only else None
    started = time.time()
    meta_extra: dict = {"trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "dataset": str(dataset), "silver": [str(p) for p in silver or []],
                        "silver_size": settings["silver_size"] if silver else 0,
                        "vectors": str(vectors) if vectors else None,
                        TRAINING_ARTICLES: training_articles(train_rows + dev_rows, previous)}

    with tempfile.TemporaryDirectory(prefix="hoptac-train-") as tmp:
        if only != "sectors":
            logger.info(f"[ner] training from {config} ({len(train_rows)} train, {len(dev_rows)} validation paragraphs)")
            ner = train_ner(train_rows, dev_rows, Path(config), Path(tmp), spacy_overrides)
            nlp = ner.nlp
            unseen = [label for label in entity_labels if label not in ner.labels]
            if unseen:
                logger.info(f"[ner] labels with no training example (not learnt): {', '.join(unseen)}")
            result.ner, result.ner_steps, result.ner_seconds = "trained", ner.steps, ner.seconds
            result.ner_best_dev_f1, result.ner_labels = ner.best_f1, list(ner.labels)
            meta_extra["ner"] = {"steps": ner.steps, "seconds": round(ner.seconds, 1),
                                 "best_dev_f1": ner.best_f1, "labels": ner.labels}
        else:
            nlp = previous if previous is not None else new_blank()
            if previous is None:
                logger.info(f"[ner] no previous model in {output}: the pipeline has no ner")
            else:
                meta_extra["ner"] = previous.meta.get("hoptac", {}).get("ner")
                result.ner = "kept" if "ner" in previous.pipe_names else "none"

        if only != "ner":
            if SECTOR_PIPE in nlp.pipe_names:
                nlp.remove_pipe(SECTOR_PIPE)
            _add_sectors(nlp, train_rows, dev_rows, sector_labels, sector_cfg, meta_extra, result)
        elif previous is not None and SECTOR_PIPE in previous.pipe_names:
            nlp.add_pipe(SECTOR_PIPE, source=previous)
            meta_extra["sectors"] = previous.meta.get("hoptac", {}).get("sectors")
            result.sectors, result.sector_labels = "kept", list(nlp.get_pipe(SECTOR_PIPE).labels)

        _set_meta(nlp, meta_extra)
        with atomic_dir(output, inputs=inputs, force=force, command="hoptac train") as folder:
            nlp.to_disk(folder)
    result.seconds = time.time() - started
    return result


TRAINING_ARTICLES = "training_articles"


def training_articles(rows: list[dict], previous=None) -> list[str]:
    """The articles (``doc_id``) a model learnt from or was tuned on (train and validation, silver
    included), recorded in its meta so that ``hoptac evaluate`` can tell scores on seen articles.
    A part kept from a previous model (``--only``) keeps that model's articles too."""
    seen = {row["doc_id"] for row in rows}
    if previous is not None:
        seen |= set((previous.meta.get("hoptac") or {}).get(TRAINING_ARTICLES) or [])
    return sorted(seen)


def _add_sectors(nlp, train_rows, dev_rows, labels, cfg, meta_extra, result: TrainResult) -> None:
    if not labels:
        logger.info("[sectors] the dataset has no sectors column: no sector classifier")
        result.sectors_note = "dataset has no sectors"
        return
    started = time.time()
    model = train_sectors(train_rows, dev_rows, labels, cfg)
    if model is None:
        logger.info("[sectors] no paragraph in train has a sector: no sector classifier")
        result.sectors_note = "no positive paragraph in train"
        return
    seen = {name for row in train_rows for name in row["sectors"]}
    absent = [label for label in labels if label not in seen]
    if absent:
        logger.info(f"[sectors] no training paragraph for {', '.join(absent)}: those always score 0")
    pipe = nlp.add_pipe(SECTOR_PIPE, last=True, config=cfg)  # nlp.config records the settings
    pipe.set_model(model.pipeline_, model.labels_, model.thresholds_, model.keywords_)
    micro = model.validation_.get("micro_f1")
    logger.info(f"[sectors] {len(labels)} labels, thresholds tuned on {len(dev_rows)} validation paragraphs "
                f"({time.time() - started:.1f}s)")
    meta_extra["sectors"] = {"labels": model.labels_, "thresholds": model.thresholds_, "dev_micro_f1": micro}
    result.sectors, result.sector_labels, result.sector_dev_micro_f1 = "trained", list(model.labels_), micro


def _load_previous(output: Path):
    if not (output / "config.cfg").exists():
        return None
    try:
        return spacy.load(output)
    except Exception as e:
        raise HoptacError(f"{output}: cannot load the previous model to keep its other part ({' '.join(str(e).split())[:200]})") from None


def _set_meta(nlp, extra: dict) -> None:
    """Describe the model; drop the training run's temporary paths and hook from its config."""
    config = nlp.config
    for key in ("train", "dev"):
        if key in config.get("paths", {}):
            config["paths"][key] = None
    if "before_update" in config.get("training", {}):
        config["training"]["before_update"] = None
    nlp.meta.update({
        "name": nlp.meta.get("name") if nlp.meta.get("name") not in (None, "pipeline") else "hoptac",
        "description": "hoptac: Vietnamese cooperation news — NER and paragraph sectors",
        "hoptac": extra,
    })

