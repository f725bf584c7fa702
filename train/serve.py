"""Stage 3 (serve): ``hoptac serve MODEL_DIR`` — a Label Studio ML backend for a hoptac pipeline.

Label Studio 1.23 talks to an ML backend over HTTP (``label_studio/ml/api_connector.py``):

* ``GET /health`` → ``{"status": "UP", "model_class": "hoptac", "model_version": …}``;
* ``POST /setup`` ``{project, schema, hostname, access_token, extra_params}`` → ``{"model_version": …}``
  (the labelling config in ``schema`` is checked; the access token is never stored nor logged);
* ``POST /predict`` ``{tasks, project, label_config, params}`` → ``{"results": [one prediction per
  task, in order], "model_version": …}``. Each prediction holds the entity spans as ``labels``
  results (character offsets into the task's text, exactly) and the sectors as one ``choices``
  result, under the control and object names of the ``label_config`` Label Studio sends (its
  ``Labels`` control on a ``Text`` object, and its ``Choices`` control if it has one); labels the
  config does not offer are left out. ``score`` is the sector classifier's confidence, as for
  ``hoptac annotate export --pre MODEL`` (:func:`hoptac.annotate.tasks.model_prediction`: the mean
  over sectors of ``max(p, 1 - p)``); ``model_version`` is ``<name>-<version>@<training time, UTC>`` (:func:`hoptac.annotate.tasks.model_version_of`);
* ``POST /webhook``: Label Studio's webhook events (the backend's webhook is made with it).
  ``ANNOTATION_CREATED`` / ``ANNOTATION_UPDATED`` are appended to the annotation store
  (:mod:`hoptac.train.learn_store`) before the answer; other events are acknowledged and ignored,
  but ``START_TRAINING`` (the project's "Start training" button) starts a retraining.
* ``GET /versions`` → ``{"versions": [model_version]}``.

Malformed requests (not JSON, unknown fields, a task without the config's text, a text longer
than ``max_chars``, more than ``max_tasks`` tasks, a config without a ``Labels`` control on a
``Text`` object) get a 4xx answer ``{"error": "…"}`` with a clear message; an unexpected failure is
a 500 with the error's type only. Nothing logged holds a task's text or a token.

Learning: after every ``retrain_every`` new annotations, a background process (spawned, so the
server keeps answering) builds a dataset from the annotations so far (the store, merged with the
``exports`` given at start, annotation by annotation, the store's copy winning), trains a model with
the library's ``train_pipeline`` and scores both models on that dataset's validation split. The new
model is served only if it is not worse: the mean of its strict NER micro-F1 and sector micro-F1
(the NER's alone without sectors) is at least the current model's. The swap is one assignment:
requests in flight finish with the model they started with.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing as mp
import os
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from hoptac.annotate.tasks import model_prediction, model_version_of, prediction_json
from hoptac.errors import HoptacError
from hoptac.model import load_model
from hoptac.output import check_folder, output_folder, write_new
from hoptac.train.learn_store import STORED_ACTIONS, AnnotationStore, event_parts, open_store

logger = logging.getLogger(__name__)

MODEL_CLASS = "hoptac"
DEFAULT_MAX_CHARS = 20_000
DEFAULT_MAX_TASKS = 1_000
MAX_BODY_BYTES = 64 * 1024 * 1024
PREDICT_FIELDS = {"tasks", "project", "label_config", "params", "model_version", "force_reload", "try_fetch"}
SETUP_FIELDS = {"project", "schema", "hostname", "access_token", "extra_params", "model_version"}
TRAIN_ACTION = "START_TRAINING"


class BadRequest(Exception):
    """A request the backend refuses: HTTP ``status`` with a one-line ``message``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(" ".join(message.split()))
        self.status = status


# ---------------------------------------------------------------- the labelling config Label Studio sends


@dataclass(frozen=True)
class Controls:
    span_control: str
    to_name: str
    text_key: str  # the task data key the Text object shows ($text → text)
    labels: frozenset[str]
    choice_control: str | None
    choice_to_name: str | None
    choices: frozenset[str]


@lru_cache(maxsize=64)
def read_controls(xml: str) -> Controls:
    """The ``Labels`` control on a ``Text`` object (required) and a ``Choices`` control (optional)."""
    if not isinstance(xml, str) or not xml.strip():
        raise BadRequest("the labelling config is missing or empty")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise BadRequest(f"the labelling config is not valid XML (line {e.position[0]}, column {e.position[1]})") from None
    texts = {el.get("name"): el.get("value", "") for el in root.iter("Text") if el.get("name")}
    labels = [el for el in root.iter("Labels") if el.get("toName") in texts]
    if not labels:
        raise BadRequest("the labelling config has no <Labels> control on a <Text> object: nothing to put "
                         "the model's entities in")
    span = labels[0]
    to_name = span.get("toName")
    value = texts[to_name]
    if not value.startswith("$") or len(value) < 2:
        raise BadRequest(f"the <Text name={to_name!r}> object of the labelling config does not show a task field "
                         f"(value={value!r}, expected '$field')")
    choices = next((el for el in root.iter("Choices") if el.get("toName") in texts), None)
    return Controls(
        span_control=span.get("name", ""), to_name=to_name, text_key=value[1:],
        labels=frozenset(el.get("value") for el in span.iter("Label") if el.get("value")),
        choice_control=choices.get("name") if choices is not None else None,
        choice_to_name=choices.get("toName") if choices is not None else None,
        choices=frozenset(el.get("value") for el in choices.iter("Choice") if el.get("value"))
        if choices is not None else frozenset(),
    )


# ---------------------------------------------------------------- the model served


@dataclass(frozen=True)
class ServedModel:
    nlp: object = field(repr=False)
    path: Path
    version: str


def load_served(path: str | Path) -> ServedModel:
    path = Path(path)
    nlp = load_model(path)
    return ServedModel(nlp, path, model_version_of(nlp, path))


# ---------------------------------------------------------------- the backend


@dataclass
class RetrainStatus:
    rounds: int = 0
    running: bool = False
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    last: dict = field(default_factory=dict)


class Backend:
    """The model, the annotation store and the retraining loop behind the HTTP routes."""

    def __init__(self, model_dir: Path, store: AnnotationStore, workdir: Path, retrain_every: int = 50,
                 exports: list[Path] | None = None, overrides: list[str] | None = None,
                 config: Path | None = None, sectors_config: Path | None = None,
                 max_chars: int = DEFAULT_MAX_CHARS, max_tasks: int = DEFAULT_MAX_TASKS) -> None:
        self.model = load_served(model_dir)
        self.store = store
        self.workdir = Path(workdir)
        self.retrain_every = retrain_every
        self.exports = [Path(p) for p in exports or []]
        self.overrides = list(overrides or [])
        self.config, self.sectors_config = config, sectors_config
        self.max_chars, self.max_tasks = max_chars, max_tasks
        self.status = RetrainStatus()
        self.new_annotations = 0  # since the last retraining started
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hoptac-predict")  # one nlp user at a time
        self._retrain_thread: threading.Thread | None = None
        self._child = None

    # ------------------------------------------------------------ predict

    def check_predict(self, body: dict) -> tuple[list[dict], Controls]:
        unknown = sorted(set(body) - PREDICT_FIELDS)
        if unknown:
            raise BadRequest(f"unknown field(s) in the /predict request: {', '.join(unknown)} "
                             f"(expected: {', '.join(sorted(PREDICT_FIELDS))})")
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise BadRequest("'tasks' must be a non-empty list of tasks")
        if len(tasks) > self.max_tasks:
            raise BadRequest(f"{len(tasks)} tasks in one request; at most {self.max_tasks}", 413)
        controls = read_controls(body.get("label_config"))
        texts = []
        for n, task in enumerate(tasks):
            name = f"task #{n}" + (f" (id {task.get('id')})" if isinstance(task, dict) and "id" in task else "")
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise BadRequest(f"{name}: expected an object with a 'data' object")
            text = task["data"].get(controls.text_key)
            if not isinstance(text, str):
                raise BadRequest(f"{name}: data.{controls.text_key} (the text the labelling config shows) is "
                                 "missing or not a string")
            if len(text) > self.max_chars:
                raise BadRequest(f"{name}: the text is {len(text)} characters long; at most {self.max_chars}", 413)
            texts.append(text)
        return texts, controls

    def predict(self, texts: list[str], controls: Controls) -> dict:
        model = self.model  # the model this request is answered with, even if a retraining swaps it meanwhile
        results = []
        for text, doc in zip(texts, model.nlp.pipe(texts, batch_size=len(texts))):
            spans, sectors, score = model_prediction(doc)
            spans = [(s, e, label) for s, e, label in spans if label in controls.labels and 0 <= s < e <= len(text)]
            sectors = [name for name in sectors if name in controls.choices]
            prediction = prediction_json(text, (spans, sectors, score), model.version, controls.span_control,
                                         controls.choice_control, controls.to_name, controls.choice_to_name)
            results.append(prediction)
        return {"results": results, "model_version": model.version}

    async def predict_async(self, body: dict) -> dict:
        texts, controls = self.check_predict(body)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.predict, texts, controls)

    # ------------------------------------------------------------ setup

    def setup(self, body: dict) -> dict:
        unknown = sorted(set(body) - SETUP_FIELDS)
        if unknown:
            raise BadRequest(f"unknown field(s) in the /setup request: {', '.join(unknown)}")
        if body.get("schema") is not None:
            read_controls(body["schema"])
        return {"model_version": self.model.version}

    # ------------------------------------------------------------ webhook

    def webhook(self, body: dict) -> dict:
        try:
            action, task, annotation = event_parts(body)
        except ValueError as e:
            raise BadRequest(f"malformed webhook event: {e}") from None
        if action == TRAIN_ACTION:
            started = self.maybe_retrain(force=True)
            return {"status": "training started" if started else "nothing to train on or already training"}
        if action not in STORED_ACTIONS:
            return {"status": "ignored", "action": action}
        if task is None or annotation is None:
            raise BadRequest(f"malformed webhook event: {action} without 'task' and 'annotation'")
        seq = self.store.append(action, task, annotation)
        with self._lock:
            self.new_annotations += 1
        logger.info(f"[serve] stored {action} for task {task['id']} (record {seq}, {self.store.events} in the store)")
        self.maybe_retrain()
        return {"status": "stored", "record": seq}

    # ------------------------------------------------------------ retraining

    def maybe_retrain(self, force: bool = False) -> bool:
        with self._lock:
            due = force or (self.retrain_every > 0 and self.new_annotations >= self.retrain_every)
            if not due or self.status.running or not self.store.events:
                return False
            self.status.running = True
            self.status.rounds += 1
            self.new_annotations = 0
            round_no = self.status.rounds
        self._retrain_thread = threading.Thread(target=self._retrain, args=(round_no,), daemon=True,
                                                name=f"hoptac-retrain-{round_no}")
        self._retrain_thread.start()
        return True

    def _retrain(self, round_no: int) -> None:
        began = time.monotonic()
        outcome: dict = {"round": round_no}
        folder = self.workdir / "rounds"
        try:
            folder = self.workdir / "rounds" / f"{round_no:04d}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
            folder.mkdir(parents=True)
            exports = merged_exports(self.store, self.exports)
            export_file = write_new(folder, ["exports.json"], json.dumps(exports, ensure_ascii=False).encode())
            job = {"exports": str(export_file), "folder": str(folder), "current": str(self.model.path),
                   "overrides": self.overrides, "config": str(self.config) if self.config else None,
                   "sectors_config": str(self.sectors_config) if self.sectors_config else None}
            logger.info(f"[serve] retraining round {round_no} on {sum(len(t['annotations']) for t in exports)} "
                        f"annotation(s) of {len(exports)} task(s) in {folder}")
            ctx = mp.get_context("spawn")
            child = ctx.Process(target=retrain_job, args=(job,), daemon=True, name=f"hoptac-retrain-{round_no}")
            self._child = child
            child.start()
            child.join()
            result_file = folder / "result.json"
            if not result_file.exists():
                raise HoptacError(f"the retraining process ended with status {child.exitcode} and no result "
                                  f"(log: {folder / 'train.log'})")
            outcome.update(json.loads(result_file.read_text(encoding="utf-8")))
            if outcome.get("error"):
                raise HoptacError(outcome["error"])
            if outcome["accept"]:
                new = load_served(outcome["model"])
                self.model = new  # one assignment: requests already running keep the model they have
                self.status.accepted += 1
                logger.info(f"[serve] round {round_no}: now serving {new.version} ({outcome['reason']})")
            else:
                self.status.rejected += 1
                logger.info(f"[serve] round {round_no}: kept {self.model.version} ({outcome['reason']})")
        except Exception as e:  # a failed round never stops the server
            self.status.failed += 1
            # the type and where to look only: a message (a check error, say) may quote a task's text
            outcome["error"] = f"{type(e).__name__}; see {folder / 'result.json'} and {folder / 'train.log'}"
            logger.warning(f"[serve] round {round_no} failed: {outcome['error']}")
        finally:
            outcome["seconds"] = round(time.monotonic() - began, 1)
            outcome["model_version"] = self.model.version
            with self._lock:
                self.status.last = outcome
                self.status.running = False
                self._child = None
        self.maybe_retrain()  # annotations that arrived meanwhile may already be due

    def health(self) -> dict:
        status = self.status
        return {"status": "UP", "model_class": MODEL_CLASS, "model_version": self.model.version,
                "store": {"events": self.store.events, "new_since_last_retraining": self.new_annotations},
                "retraining": {"running": status.running, "rounds": status.rounds, "accepted": status.accepted,
                               "rejected": status.rejected, "failed": status.failed, "last": status.last}}

    def close(self) -> None:
        child = self._child
        if child is not None and child.is_alive():
            child.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()


def merged_exports(store: AnnotationStore, exports: list[Path]) -> list[dict]:
    """The given export files' tasks, with the store's annotations merged in (by ``para_id``, else by
    task id; each annotation once by id, the store's copy winning): what a pull now would hold."""
    from hoptac.annotate.export import export_files

    tasks: dict[str, dict] = {}
    for path in export_files(exports) if exports else []:
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as e:
            raise HoptacError(f"{path}: cannot read the export ({type(e).__name__})") from None
        for task in raw if isinstance(raw, list) else []:
            if isinstance(task, dict) and isinstance(task.get("data"), dict):
                tasks[_task_key(task)] = {**task, "annotations": list(task.get("annotations") or [])}
    for task in store.export_tasks():
        key = _task_key(task)
        if key in tasks:
            known = {a.get("id"): n for n, a in enumerate(tasks[key]["annotations"])}
            for annotation in task["annotations"]:
                if annotation.get("id") in known:
                    tasks[key]["annotations"][known[annotation.get("id")]] = annotation
                else:
                    tasks[key]["annotations"].append(annotation)
        else:
            tasks[key] = task
    return [t for t in tasks.values() if t["annotations"]]


def _task_key(task: dict) -> str:
    para_id = task["data"].get("para_id")
    return f"para:{para_id}" if isinstance(para_id, str) and para_id else f"task:{task.get('id')}"


# ---------------------------------------------------------------- the retraining process


def retrain_job(job: dict) -> None:
    """In a spawned process: dataset, training, scores of both models on validation → ``result.json``."""
    folder = Path(job["folder"])
    log = open(folder / "train.log", "a", encoding="utf-8")
    os.dup2(log.fileno(), 1)  # spaCy's training table and any warning go to the round's log, not the server's
    os.dup2(log.fileno(), 2)
    handler = logging.FileHandler(folder / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("hoptac")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    result: dict = {}
    try:
        result = _retrain(job, folder)
    except HoptacError as e:
        result = {"error": str(e)}
    except Exception as e:  # reported to the server, which keeps serving
        result = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"}
    write_new(folder, ["result.json"], json.dumps(result, ensure_ascii=False, indent=1).encode())


def _retrain(job: dict, folder: Path) -> dict:
    from hoptac.resources import NER_CONFIG, SECTORS_CONFIG
    from hoptac.train.dataset import build_dataset
    from hoptac.train.pipeline import decoded_rows, open_dataset, train_pipeline

    dataset, model = folder / "dataset", folder / "model"
    build_dataset([Path(job["exports"])], dataset)
    trained = train_pipeline(dataset, model, config=Path(job["config"] or NER_CONFIG),
                             sectors_config=Path(job["sectors_config"] or SECTORS_CONFIG),
                             overrides=job["overrides"])
    rows = decoded_rows(open_dataset(dataset), "validation")
    result = {"model": str(model), "validation_paragraphs": len(rows), "trained": trained.parts()}
    if not rows:
        return {**result, "accept": False, "reason": "the dataset has no validation split to compare the models on"}
    new, old = validation_score(model, dataset, rows), validation_score(Path(job["current"]), dataset, rows)
    accept = new["score"] >= old["score"]
    reason = (f"validation score {new['score']:.3f} (new) vs {old['score']:.3f} (current) "
              f"on {len(rows)} paragraph(s)")
    return {**result, "accept": accept, "reason": reason, "new": new, "current": old}


def validation_score(model_dir: Path, dataset: Path, rows: list[dict]) -> dict:
    """Strict NER micro-F1 and sector micro-F1 on ``rows``; ``score`` is their mean (NER alone without sectors)."""
    from hoptac.train.dataset import dataset_labels
    from hoptac.train.evaluate import predict, score
    from hoptac.train.pipeline import open_dataset

    nlp = load_model(model_dir)
    entity_labels, sector_labels = dataset_labels(open_dataset(dataset))
    predictions = predict(nlp, [row["text"] for row in rows])
    with_sectors = bool(sector_labels) and any(p["has_cats"] for p in predictions)
    scores = score(rows, predictions, entity_labels, sector_labels or None, with_sectors)
    ner = float(scores["ner"]["micro"]["f1"])
    sectors = float(scores["sectors"]["micro"]["f1"]) if "sectors" in scores else None
    return {"ner_micro_f1": ner, "sector_micro_f1": sectors,
            "score": ner if sectors is None else (ner + sectors) / 2}


# ---------------------------------------------------------------- HTTP


def make_app(backend: Backend):
    """The Starlette application: the routes above, every error a JSON ``{"error": …}``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def body_of(request: Request) -> dict:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise BadRequest(f"request body of {int(length)} bytes; at most {MAX_BODY_BYTES}", 413)
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest(f"request body of {len(raw)} bytes; at most {MAX_BODY_BYTES}", 413)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"the request body is not JSON ({type(e).__name__})") from None
        if not isinstance(body, dict):
            raise BadRequest(f"the request body must be a JSON object, not a {type(body).__name__}")
        return body

    async def health(request: Request):
        return JSONResponse(backend.health())

    async def versions(request: Request):
        return JSONResponse({"versions": [backend.model.version], "model_version": backend.model.version})

    async def setup(request: Request):
        return JSONResponse(backend.setup(await body_of(request)))

    async def predict(request: Request):
        return JSONResponse(await backend.predict_async(await body_of(request)))

    async def webhook(request: Request):
        body = await body_of(request)
        loop = asyncio.get_running_loop()
        return JSONResponse(await loop.run_in_executor(None, backend.webhook, body), status_code=201)

    async def bad_request(request: Request, error: BadRequest):
        logger.info(f"[serve] {request.method} {request.url.path}: HTTP {error.status}")
        return JSONResponse({"error": str(error)}, status_code=error.status)

    async def failure(request: Request, error: Exception):
        # the type only: a message could quote a task's text
        logger.warning(f"[serve] {request.method} {request.url.path}: internal error ({type(error).__name__})")
        return JSONResponse({"error": f"internal error ({type(error).__name__})"}, status_code=500)

    routes = [Route("/", health, methods=["GET"]), Route("/health", health, methods=["GET"]),
              Route("/versions", versions, methods=["GET"]), Route("/setup", setup, methods=["POST"]),
              Route("/predict", predict, methods=["POST"]), Route("/webhook", webhook, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={BadRequest: bad_request, Exception: failure})


def _check_address(host: str, port: int) -> None:
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise HoptacError(f"--host {host}: cannot resolve it ({e.strerror or e})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as e:
            raise HoptacError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None


@dataclass
class ServeResult:
    url: str
    model_version: str
    events: int
    rounds: int

    def summary(self) -> str:
        return (f"served {self.model_version} at {self.url}; {self.events} annotation event(s) in the store; "
                f"{self.rounds} retraining round(s)")


def serve(model_dir: Path, host: str = "127.0.0.1", port: int = 9090, workdir: Path = Path("work") / "serve",
          store: Path | None = None, retrain_every: int = 50, exports: list[Path] | None = None,
          overrides: list[str] | None = None, config: Path | None = None, sectors_config: Path | None = None,
          max_chars: int = DEFAULT_MAX_CHARS, max_tasks: int = DEFAULT_MAX_TASKS) -> ServeResult:
    """Run the ML backend until interrupted."""
    import uvicorn

    if retrain_every < 0 or max_chars < 1 or max_tasks < 1:
        raise HoptacError("--retrain-every must be ≥ 0, --max-chars and --max-tasks ≥ 1")
    for path in exports or []:
        if not Path(path).exists():
            raise HoptacError(f"{path}: no such export file or folder")
    _check_address(host, port)  # before the store and the model: a taken port is said at once
    workdir = output_folder(workdir, inputs=list(exports or []), command="hoptac serve")
    store_path = Path(store) if store else workdir / "annotations.sqlite3"
    check_folder(store_path.parent)
    annotation_store = open_store(store_path)  # a damaged store stops here, before anything is served
    backend = Backend(Path(model_dir), annotation_store, workdir, retrain_every, exports, overrides, config,
                      sectors_config, max_chars, max_tasks)
    url = f"http://{host}:{port}"
    logger.info(f"[serve] {backend.model.version} at {url}; store {store_path} ({annotation_store.events} event(s)); "
                f"retraining every {retrain_every or '∞'} new annotation(s)")
    server = uvicorn.Server(uvicorn.Config(make_app(backend), host=host, port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot start (the port was taken meanwhile)
        pass
    finally:
        backend.close()
    if not server.started:
        raise HoptacError(f"cannot serve at {url} (was the port taken meanwhile?)")
    return ServeResult(url, backend.model.version, annotation_store.events, backend.status.rounds)
