"""Stage 2 (tasks): corpus paragraphs → Label Studio import tasks, pre-annotated.

One task per corpus row: ``data`` holds ``text``, ``title``, ``doc_id`` and
``para_id`` (the corpus id ``doc_id:index``); ``predictions`` holds one
prediction whose results use the control names of the labelling config
(:mod:`annotate.config`): ``labels`` spans on ``ner``, ``choices`` on ``sectors``.

Pre-annotations (``pre``):

* ``"rules"``: :mod:`hoptac.annotate.rules`, with the rules' exact character spans;
  ``model_version`` is ``hoptac-rules-<version>``. The rules have no confidence:
  ``score`` is 1.0.
* ``"none"``: no predictions.
* a trained MODEL_DIR (a spaCy pipeline folder): its ``doc.ents`` and its
  sectors (``doc._.sectors`` when the pipeline sets it, i.e. over the thresholds
  tuned at training, else ``doc.cats >= 0.5``). ``score`` is the sector
  classifier's confidence, the mean over sectors of ``max(p, 1 - p)`` (1.0 when
  every sector is certain, 0.5 when every sector is a coin toss); the NER has no
  beam-free confidence, so it does not enter the score. ``order="uncertainty"``
  sorts the tasks by that score, least confident first (ties keep corpus order).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from hoptac.annotate.config import NER_CONTROL, SECTOR_CONTROL, TEXT_OBJECT
from hoptac.annotate.rules import default_rules, model_version

from hoptac.errors import HoptacError
from hoptac.model import load_model

ORDERS = ("corpus", "uncertainty")
CHOICE_THRESHOLD = 0.5
Prediction = tuple[list[tuple[int, int, str]], list[str], float | None]  # spans, sectors, score


def make_tasks(rows: Iterable[dict], pre: str = "rules", order: str = "corpus") -> list[dict]:
    """Label Studio import tasks for corpus ``rows``, one each, pre-annotated by ``pre``."""
    if order not in ORDERS:
        raise HoptacError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    rows = list(rows)
    datas = [task_data(row, n) for n, row in enumerate(rows, start=1)]
    if order == "uncertainty" and pre in ("rules", "none"):
        raise HoptacError(f"--order uncertainty needs --pre MODEL_DIR: {pre!r} gives no confidence to sort by")
    predictor, version = annotator(pre)
    tasks = []
    for data, prediction in zip(datas, predictor([d["text"] for d in datas])):
        task = {"data": data}
        if prediction is not None:
            task["predictions"] = [prediction_json(data["text"], prediction, version)]
        tasks.append(task)
    if order == "uncertainty":
        if any(t["predictions"][0].get("score") is None for t in tasks):
            raise HoptacError(f"{pre}: the model has no sector classifier, so no confidence to sort by")
        tasks.sort(key=lambda t: t["predictions"][0]["score"])  # stable: ties keep corpus order
    return tasks


def task_data(row: dict, number: int) -> dict:
    """The task's ``data`` from a corpus row (``number`` is its line, for errors)."""
    if not isinstance(row, dict):
        raise HoptacError(f"corpus row {number}: expected an object, got {type(row).__name__}")
    missing = [k for k in ("id", "doc_id", "title", "text") if k not in row]
    if missing:
        raise HoptacError(f"corpus row {number}: lacks {', '.join(missing)}")
    if not isinstance(row["text"], str) or not isinstance(row["title"], str):
        raise HoptacError(f"corpus row {number} ({row['id']}): 'text' and 'title' must be strings")
    return {"text": row["text"], "title": row["title"], "doc_id": str(row["doc_id"]), "para_id": str(row["id"])}


def prediction_json(text: str, prediction: Prediction, version: str, span_control: str = NER_CONTROL,
                    choice_control: str | None = SECTOR_CONTROL, to_name: str = TEXT_OBJECT,
                    choice_to_name: str | None = None) -> dict:
    """One Label Studio prediction: entity spans, then the sector choices (if any).

    The control and object names default to this project's labelling config; ``hoptac serve``
    passes the names read from the config Label Studio sends (``choice_control=None``: no choices)."""
    spans, sectors, score = prediction
    result = []
    for n, (start, end, label) in enumerate(spans, start=1):
        result.append({
            "id": f"e{n}", "from_name": span_control, "to_name": to_name, "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]},
        })
    if sectors and choice_control:
        result.append({
            "id": "sectors", "from_name": choice_control, "to_name": choice_to_name or to_name, "type": "choices",
            "value": {"choices": list(sectors)},
        })
    out = {"model_version": version, "result": result}
    if score is not None:
        out["score"] = round(score, 4)
    return out


# ---------------------------------------------------------------------- annotators


def annotator(pre: str) -> tuple[Callable[[list[str]], Iterable[Prediction | None]], str]:
    """``(predict(texts), model_version)`` for ``pre``: 'rules', 'none' or a model folder."""
    if pre == "none":
        return (lambda texts: [None] * len(texts)), ""
    if pre == "rules":
        rules = default_rules()
        return (lambda texts: (_rules_prediction(rules, t) for t in texts)), model_version()
    path = Path(pre)
    if path.is_dir():
        nlp = load_model(path)
        return (lambda texts: (model_prediction(doc) for doc in nlp.pipe(texts))), model_version_of(nlp, path)
    raise HoptacError(f"--pre {pre!r}: expected 'rules', 'none' or a trained model folder (no such folder)")


def _rules_prediction(rules, text: str) -> Prediction:
    sectors = [name for name, v in rules.sectors(text).items() if v >= CHOICE_THRESHOLD]
    return rules.entities(text), sectors, 1.0


def model_version_of(nlp, path: Path) -> str:
    """``<name>-<version>@<training time, UTC>`` from the model's meta (``model-<folder>@…`` without a
    name): the model and when it was trained, so a retrained model has another version."""
    meta = getattr(nlp, "meta", {}) or {}
    name, version = meta.get("name"), meta.get("version")
    named = f"{name}-{version}" if name and version else f"model-{Path(path).name}"
    return f"{named}@{trained_at(nlp, path)}"


def trained_at(nlp, path: Path) -> str:
    """When the model was trained (its meta's ``hoptac.trained_at``, else when meta.json was written), UTC."""
    stamp = ((getattr(nlp, "meta", {}) or {}).get("hoptac") or {}).get("trained_at")
    if isinstance(stamp, str) and stamp:
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            pass
    meta = Path(path) / "meta.json"
    seconds = meta.stat().st_mtime if meta.exists() else time.time()
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_prediction(doc) -> Prediction:
    """A model's entities, sectors and confidence for one Doc (see the module docstring for ``score``)."""
    spans = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
    cats = dict(doc.cats)
    chosen = getattr(doc._, "sectors", None) if doc.has_extension("sectors") else None
    if chosen is None:
        chosen = [name for name, p in cats.items() if p >= CHOICE_THRESHOLD]
    score = sum(max(p, 1.0 - p) for p in cats.values()) / len(cats) if cats else None
    return spans, list(chosen), score
