"""Stage 2 (annotate): talk to a live Label Studio server (label-studio-sdk 2.x).

``push_tasks`` finds the project by title (or creates it with the labelling
config of ``annotate/config.py`` and the annotation guide as instructions) and
imports pre-annotated tasks in batches, skipping every task whose
``data.para_id`` the project already holds: running it twice adds nothing.
If the project exists with another labelling config or other instructions,
they are updated to the schema's (``configs/labels.yml`` is the single source
of truth), but only after Label Studio's strict validation accepts the new
config: one that would orphan labels existing annotations use stops the push
with a one-line error, before anything changes or is imported.

``pull_export`` downloads the project's full JSON export (every task, with or
without annotations) into a new timestamped file, never overwriting one.

The API key is only ever passed to the SDK client: it is never printed, logged,
written, stored on a result object, nor left in an error message (it is redacted
from the server's text before that text is cut to length). Credentials in the
URL (``http://user:password@host``) go to the client only: every URL a message
or a result shows is stripped of them (:func:`shown_url`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from hoptac.annotate.config import (
    TEXT_OBJECT,
    TITLE_OBJECT,
    instruction_html,
    labelling_config,
)

from hoptac.errors import HoptacError
from hoptac.output import check_folder, write_new
from hoptac.schema import load_schema

TIMEOUT_SECONDS = 120.0
LIST_PAGE_SIZE = 1000
NO_RETRY = {"max_retries": 0}  # an import retried after a server error could duplicate tasks


# --------------------------------------------------------------------------- results


@dataclass
class PushResult:
    """What ``push_tasks`` did. ``given == sent + already_there + repeated_in_input``."""

    url: str
    project_id: int
    project_title: str
    created: bool
    config: str  # "set", "unchanged" or "updated"
    instructions: str  # "set", "unchanged" or "updated"
    given: int = 0
    sent: int = 0
    batches: int = 0
    already_there: int = 0
    repeated_in_input: int = 0
    predictions_sent: int = 0
    tasks_imported: int = 0  # as acknowledged by the server
    predictions_imported: int = 0  # as acknowledged by the server
    tasks_in_project: int = 0

    def summary(self) -> str:
        lines = [
            f"Label Studio project: {self.project_title!r} (id {self.project_id}) at {self.url}",
            f"project: {'created' if self.created else 'reused'}",
            f"labelling config: {self.config}",
            f"instructions: {self.instructions}",
            f"tasks given: {self.given}",
            f"tasks already there (same para_id), skipped: {self.already_there}",
            f"tasks repeated in the input (same para_id), skipped: {self.repeated_in_input}",
            f"tasks sent: {self.sent} in {self.batches} batch(es)",
            f"tasks imported: {self.tasks_imported}",
            f"predictions imported: {self.predictions_imported} (of {self.predictions_sent} sent)",
            f"tasks in the project now: {self.tasks_in_project}",
        ]
        if self.tasks_imported != self.sent or self.predictions_imported != self.predictions_sent:
            lines.append(f"warning: sent {self.sent} task(s) and {self.predictions_sent} prediction(s), "
                         f"the server imported {self.tasks_imported} and {self.predictions_imported}")
        return "\n".join(lines)


@dataclass
class _Connection:
    url: str  # as shown in messages: without user:password@ (see :func:`shown_url`)
    client: object = field(repr=False)


# --------------------------------------------------------------------------- push


def push_tasks(url: str, api_key: str, project_title: str, tasks: list[dict], batch_size: int = 200) -> PushResult:
    """Import ``tasks`` into the project titled ``project_title``; idempotent on ``data.para_id``."""
    if batch_size < 1:
        raise HoptacError(f"batch size must be at least 1, not {batch_size}")
    para_ids = [_para_id(i, task) for i, task in enumerate(tasks)]
    schema = load_schema()
    xml, guide = labelling_config(schema), instruction_html()
    conn = _connect(url, api_key)
    with _errors(conn, api_key, f"project {project_title!r}"):
        project, created = _project(conn, project_title, xml, guide)
        result = PushResult(url=conn.url, project_id=project.id, project_title=project_title, created=created,
                            config="set" if created else _sync(conn, project, "label_config", xml),
                            instructions="set" if created else _sync(conn, project, "expert_instruction", guide),
                            given=len(tasks))
        existing = set() if created else _existing_para_ids(conn, project.id)
        new = _new_tasks(tasks, para_ids, existing, result)
    for start in range(0, len(new), batch_size):
        try:
            with _errors(conn, api_key, f"project {project_title!r}, tasks {start + 1}–{start + batch_size}"):
                _import_batch(conn, project.id, new[start:start + batch_size], result)
        except HoptacError as e:
            raise HoptacError(f"{e} ({result.tasks_imported} of {len(new)} new tasks were imported before; "
                              "running the export again skips them)") from None
    with _errors(conn, api_key, f"project {project_title!r}"):
        result.tasks_in_project = _task_count(conn, project.id)
    return result


def _para_id(index: int, task) -> str:
    """The task's ``data.para_id``, once its data holds every field the labelling config shows."""
    data = task.get("data") if isinstance(task, dict) else None
    if not isinstance(data, dict):
        raise HoptacError(f"task {index}: expected {{'data': {{'text': …, 'title': …, 'para_id': …}}}}")
    for name in (TEXT_OBJECT, TITLE_OBJECT):
        if not isinstance(data.get(name), str):
            raise HoptacError(f"task {index}: data.{name} is missing (the labelling config shows it)")
    para_id = data.get("para_id")
    if not isinstance(para_id, str) or not para_id:
        raise HoptacError(f"task {index}: data.para_id is missing (it keeps imports idempotent)")
    return para_id


def _project(conn: _Connection, title: str, xml: str, guide: str):
    """The project titled exactly ``title``, created if there is none: (project, created)."""
    found = _find_project(conn, title, required=False)
    if found is not None:
        return conn.client.projects.get(id=found.id), False
    created = conn.client.projects.create(title=title, label_config=xml, expert_instruction=guide,
                                          show_instruction=True, show_skip_button=True)
    return conn.client.projects.get(id=created.id), True


def _sync(conn: _Connection, project, attribute: str, wanted: str) -> str:
    """Bring one project setting in line with ours: 'unchanged' or 'updated'.

    A new labelling config is first checked with Label Studio's strict validation
    (``/api/projects/{id}/validate/``), which refuses a config that drops a control
    or a label existing annotations or drafts use; a plain update would only log it.
    """
    if (getattr(project, attribute, None) or "").strip() == wanted.strip():
        return "unchanged"
    extra = {}
    if attribute == "label_config":
        _validate_config(conn, project, wanted)
    else:
        extra["show_instruction"] = True
    conn.client.projects.update(id=project.id, **{attribute: wanted}, **extra)
    return "updated"


def _validate_config(conn: _Connection, project, xml: str) -> None:
    from label_studio_sdk.core.api_error import ApiError

    try:
        conn.client.projects.validate_label_config(id=project.id, label_config=xml)
    except ApiError as e:
        if e.status_code != 400:
            raise
        raise HoptacError(
            f"{conn.url}: project {project.title!r} (id {project.id}) has annotations the schema's labelling "
            f"config would orphan, nothing changed or imported: {_detail(e.body)}") from None


def _existing_para_ids(conn: _Connection, project_id: int) -> set[str]:
    pages = conn.client.tasks.list(project=project_id, fields="task_only", page_size=LIST_PAGE_SIZE)
    return {task.data.get("para_id") for task in pages if isinstance(task.data, dict)}


def _new_tasks(tasks: list[dict], para_ids: list[str], existing: set[str], result: PushResult) -> list[dict]:
    new, seen = [], set()
    for task, para_id in zip(tasks, para_ids):
        if para_id in existing:
            result.already_there += 1
        elif para_id in seen:
            result.repeated_in_input += 1
        else:
            seen.add(para_id)
            new.append(task)
    return new


def _import_batch(conn: _Connection, project_id: int, batch: list[dict], result: PushResult) -> None:
    answer = conn.client.projects.import_tasks(id=project_id, request=batch, request_options=NO_RETRY)
    result.batches += 1
    result.sent += len(batch)
    result.predictions_sent += sum(len(task.get("predictions") or []) for task in batch)
    result.tasks_imported += answer.task_count or 0
    result.predictions_imported += answer.prediction_count or 0


def _task_count(conn: _Connection, project_id: int) -> int:
    return conn.client.projects.get(id=project_id).task_number or 0


# --------------------------------------------------------------------------- pull


def pull_export(url: str, api_key: str, project_title: str, out_dir: Path) -> tuple[Path, dict]:
    """Save the project's full JSON export as a new ``<slug>-<UTC time>.json`` in ``out_dir``."""
    out_dir = check_folder(out_dir)  # before the download: a folder we can write into
    conn = _connect(url, api_key)
    with _errors(conn, api_key, f"project {project_title!r}"):
        project = _find_project(conn, project_title)
        raw = b"".join(conn.client.projects.exports.download_sync(
            project.id, export_type="JSON", download_all_tasks=True))
    counts = export_counts(_parse_export(raw, conn.url, project_title))
    return _write_new(out_dir, _slug(project_title), raw), counts


def _find_project(conn: _Connection, title: str, required: bool = True):
    """The one project titled exactly ``title`` (the API's filter is a substring match)."""
    matches = [p for p in conn.client.projects.list(title=title, page_size=LIST_PAGE_SIZE) if p.title == title]
    if len(matches) > 1:
        ids = ", ".join(str(p.id) for p in matches)
        raise HoptacError(f"{conn.url}: {len(matches)} projects are titled {title!r} (ids {ids}); "
                          "rename all but one")
    if not matches and required:
        raise HoptacError(f"{conn.url}: no project titled {title!r}")
    return matches[0] if matches else None


def _parse_export(raw: bytes, url: str, title: str) -> list:
    try:
        tasks = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HoptacError(f"{url}: the export of project {title!r} is not JSON ({e})") from None
    if not isinstance(tasks, list):
        raise HoptacError(f"{url}: the export of project {title!r} is not a list of tasks")
    return tasks


def export_counts(tasks: list) -> dict[str, int]:
    """Tasks, annotations (all, cancelled included), cancelled, unannotated and double-annotated tasks, predictions."""
    counts = dict(tasks=len(tasks), annotations=0, cancelled=0, unannotated_tasks=0,
                  double_annotated_tasks=0, predictions=0)
    for task in tasks:
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
        cancelled = sum(1 for a in annotations if a.get("was_cancelled"))
        counts["annotations"] += len(annotations)
        counts["cancelled"] += cancelled
        counts["unannotated_tasks"] += not annotations
        counts["double_annotated_tasks"] += len(annotations) - cancelled >= 2
        counts["predictions"] += len(task.get("predictions") or [])
    return counts


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title.replace("đ", "d").replace("Đ", "D"))
    ascii_title = ascii_title.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-") or "project"


def _write_new(out_dir: Path, slug: str, raw: bytes) -> Path:
    """A new ``<slug>-<UTC time>[-n].json``: never overwrites an earlier pull (``hoptac.output.write_new``)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    names = (f"{slug}-{stamp}.json" if n == 1 else f"{slug}-{stamp}-{n}.json" for n in range(1, 1000))
    return write_new(out_dir, names, raw)


# --------------------------------------------------------------------------- connection and errors


def _connect(url: str, api_key: str) -> _Connection:
    url = (url or "").strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise HoptacError(f"Label Studio URL must start with http:// or https://, not {shown_url(url)!r}")
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    try:
        client = LabelStudio(base_url=url, api_key=api_key, timeout=TIMEOUT_SECONDS, max_retries=1)
    except ApiError as e:  # an expired or malformed JWT is refused before any request
        raise HoptacError(_api_error_message(shown_url(url), e, "the API key", api_key)) from None
    return _Connection(url=shown_url(url), client=client)


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def shown_url(url: str) -> str:
    """``url`` as messages may show it: credentials (``http://user:password@host``) removed."""
    return _USERINFO.sub(r"\1", url)


class _errors:
    """Turn SDK and HTTP failures into one-line HoptacErrors that never hold the key."""

    def __init__(self, conn: _Connection, api_key: str, what: str) -> None:
        self.conn, self.api_key, self.what = conn, api_key, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, tb) -> bool:
        if error is None or isinstance(error, HoptacError):
            return False
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        if isinstance(error, ApiError):
            message = _api_error_message(self.conn.url, error, self.what, self.api_key)
        elif isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            message = f"cannot reach Label Studio at {self.conn.url} ({type(error).__name__})"
        elif isinstance(error, httpx.TimeoutException):
            message = f"Label Studio at {self.conn.url} did not answer in time ({type(error).__name__})"
        elif isinstance(error, httpx.HTTPError):
            message = f"cannot talk to Label Studio at {self.conn.url} ({type(error).__name__}: {error})"
        elif isinstance(error, (ValueError, TypeError, AttributeError)):  # JSON or shape we did not expect
            message = (f"Label Studio at {self.conn.url} gave an unexpected answer for {self.what} "
                       f"({type(error).__name__}): is this a Label Studio 1.2x server?")
        else:
            return False
        raise HoptacError(_redact(message, self.api_key)) from None


def _api_error_message(url: str, error, what: str, api_key: str) -> str:
    status = error.status_code
    if status == 401:
        return f"Label Studio at {url} refused the API key (HTTP 401): check {_KEY_ENV}"
    if status == 403:
        return f"Label Studio at {url} refused access to {what} (HTTP 403): the API key's user lacks permission"
    if status == 404:
        return f"Label Studio at {url} has no such page (HTTP 404) for {what}: is this a Label Studio server?"
    return _redact(f"Label Studio at {url} answered HTTP {status} for {what}: {_detail(error.body, api_key)}", api_key)


_KEY_ENV = "LABEL_STUDIO_API_KEY"


def _detail(body, api_key: str = "") -> str:
    """The server's reason on one line: validation errors first, they say the most. The key is
    redacted before the text is cut, so that a cut can never leave part of it."""
    text = str(body)
    if isinstance(body, dict):
        errors = body.get("validation_errors")
        if isinstance(errors, dict) and errors:
            text = "; ".join(" ".join(map(str, v)) if isinstance(v, list) else str(v) for v in errors.values())
        else:
            text = next((str(body[key]) for key in ("detail", "message", "error") if body.get(key)), text)
    return _one_line(_redact(text, api_key))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _redact(message: str, api_key: str) -> str:
    """``message`` without the key and without credentials in any URL it shows."""
    message = shown_url(message)
    return message.replace(api_key, "[key]") if api_key else message


# --------------------------------------------------------------------------- connect an ML backend


@dataclass
class ConnectResult:
    """What ``connect_backend`` did."""

    url: str
    project_id: int
    project_title: str
    backend_url: str
    backend_id: int
    backend: str  # "created" or "reused"
    state: str
    model_version: str
    webhook: str  # "made by Label Studio", "created" or "there"
    retrieve_predictions: str  # "turned on" or "already on"

    def summary(self) -> str:
        return "\n".join([
            f"Label Studio project: {self.project_title!r} (id {self.project_id}) at {self.url}",
            f"ML backend: {self.backend} (id {self.backend_id}) at {self.backend_url}, state {self.state}, "
            f"model version {self.model_version or '(none)'}",
            f"webhook to {self.backend_url}/webhook: {self.webhook}",
            f"retrieve predictions when loading a task: {self.retrieve_predictions}",
        ])


def connect_backend(url: str, api_key: str, project_title: str, backend_url: str,
                    title: str = "hoptac") -> ConnectResult:
    """Register the ML backend at ``backend_url`` with the project (idempotent: one backend per URL),
    make sure its webhook exists, and turn on "retrieve predictions when loading a task"."""
    backend_url = (backend_url or "").strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", backend_url):
        raise HoptacError(f"--backend-url must start with http:// or https://, not {shown_url(backend_url)!r}")
    conn = _connect(url, api_key)
    with _errors(conn, api_key, f"project {project_title!r}"):
        project = _find_project(conn, project_title)
        existing = [b for b in conn.client.ml.list(project=project.id) if (b.url or "").rstrip("/") == backend_url]
        if existing:
            backend, how = existing[0], "reused"
        else:
            backend, how = _create_backend(conn, project, backend_url, title, api_key), "created"
        webhook = _backend_webhook(conn, project.id, backend_url, how)
        project = conn.client.projects.get(id=project.id)
        already = bool(project.evaluate_predictions_automatically) and bool(project.show_collab_predictions)
        # predictions are shown for the backend's model versions only when the project names no version of its own
        conn.client.projects.update(id=project.id, evaluate_predictions_automatically=True,
                                    show_collab_predictions=True, model_version="")
        backend = conn.client.ml.get(id=backend.id)
    return ConnectResult(url=conn.url, project_id=project.id, project_title=project_title,
                         backend_url=shown_url(backend_url), backend_id=backend.id, backend=how,
                         state=str(getattr(backend, "readable_state", None) or backend.state),
                         model_version=backend.model_version or "", webhook=webhook,
                         retrieve_predictions="already on" if already else "turned on")


def _create_backend(conn: _Connection, project, backend_url: str, title: str, api_key: str):
    from label_studio_sdk.core.api_error import ApiError

    try:
        return conn.client.ml.create(project=project.id, url=backend_url, title=title, is_interactive=False,
                                     auto_update=True)
    except ApiError as e:
        if e.status_code != 400:
            raise
        raise HoptacError(f"{conn.url}: Label Studio refused the ML backend at {shown_url(backend_url)}: "
                          f"{_detail(e.body, api_key)} (is `hoptac serve` running there, and may Label Studio "
                          "reach it? A backend on this machine or the local network needs Label Studio started "
                          "with ML_BLOCK_LOCAL_IP=false and SSRF_PROTECTION_ENABLED=false)") from None


def _backend_webhook(conn: _Connection, project_id: int, backend_url: str, how: str) -> str:
    """Label Studio makes a webhook to ``<backend>/webhook`` with the backend, unless its SSRF
    protection refused the address: then it is made here (or the error says what to change)."""
    from label_studio_sdk.core.api_error import ApiError

    hook = f"{backend_url}/webhook"
    if any((w.url or "").rstrip("/") == hook for w in conn.client.webhooks.list(project=str(project_id))):
        return "made by Label Studio" if how == "created" else "there"
    try:
        conn.client.webhooks.create(url=hook, project=project_id, send_payload=True, send_for_all_actions=True)
    except ApiError as e:
        if e.status_code != 400:
            raise
        raise HoptacError(f"{conn.url}: Label Studio refused a webhook to {shown_url(hook)} ({_detail(e.body)}); "
                          "for a backend on this machine or the local network start Label Studio with "
                          "SSRF_PROTECTION_ENABLED=false") from None
    return "created"


# --------------------------------------------------------------------------- active learning order

UNCERTAINTY_SAMPLING = "Uncertainty sampling"


@dataclass
class PrioritiseResult:
    """What ``prioritise`` did: the project's label stream now gives the least confident task first."""

    url: str
    project_id: int
    project_title: str
    model_version: str
    unlabelled: int = 0
    had_prediction: int = 0  # already held a scored prediction of this model version
    predicted: int = 0  # predictions imported now
    imported: int = 0  # as acknowledged by the server
    first: list[tuple[int, float, str]] = field(default_factory=list)  # (task id, score, para_id), least confident first

    def summary(self) -> str:
        lines = [f"Label Studio project: {self.project_title!r} (id {self.project_id}) at {self.url}",
                 f"model version: {self.model_version}",
                 f"unlabelled tasks: {self.unlabelled} ({self.had_prediction} already scored by this model, "
                 f"{self.predicted} scored now, {self.imported} predictions imported)",
                 f"task order: {UNCERTAINTY_SAMPLING} (least confident first)"]
        lines += [f"  task {task_id}  score {score:.4f}  {para}" for task_id, score, para in self.first]
        return "\n".join(lines)


def prioritise(url: str, api_key: str, project_title: str, model: Path, batch_size: int = 200,
               show: int = 5) -> PrioritiseResult:
    """Score every unlabelled task of the project with ``model`` and set Label Studio's task order to
    uncertainty sampling: the label stream then gives the task whose prediction has the lowest
    ``score`` first (Label Studio orders by ``predictions__score`` among the predictions of the
    project's ``model_version``, which is set to this model's)."""
    from hoptac.annotate.tasks import annotator, prediction_json

    predict, version = annotator(str(model))
    conn = _connect(url, api_key)
    with _errors(conn, api_key, f"project {project_title!r}"):
        project = _find_project(conn, project_title)
        result = PrioritiseResult(url=conn.url, project_id=project.id, project_title=project_title,
                                  model_version=version)
        todo, scores = [], {}
        for task in conn.client.tasks.list(project=project.id, fields="all", page_size=LIST_PAGE_SIZE):
            if task.is_labeled or not isinstance(task.data, dict) or not isinstance(task.data.get(TEXT_OBJECT), str):
                continue
            result.unlabelled += 1
            mine = [p for p in task.predictions or [] if _field(p, "model_version") == version
                    and _field(p, "score") is not None]
            if mine:
                result.had_prediction += 1
                scores[task.id] = (float(_field(mine[0], "score")), task.data.get("para_id", ""))
            else:
                todo.append(task)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        texts = [task.data[TEXT_OBJECT] for task in batch]
        requests = []
        for task, text, prediction in zip(batch, texts, predict(texts)):
            if prediction is None or prediction[2] is None:
                raise HoptacError(f"{model}: the model has no sector classifier, so no confidence to order by")
            requests.append({"task": task.id, **prediction_json(text, prediction, version)})
            scores[task.id] = (round(prediction[2], 4), task.data.get("para_id", ""))
        with _errors(conn, api_key, f"project {project_title!r}, predictions {start + 1}–{start + len(batch)}"):
            answer = conn.client.projects.import_predictions(id=project.id, request=requests, request_options=NO_RETRY)
        result.predicted += len(requests)
        result.imported += answer.created or 0
    with _errors(conn, api_key, f"project {project_title!r}"):
        conn.client.projects.update(id=project.id, sampling=UNCERTAINTY_SAMPLING, model_version=version)
    result.first = sorted(((task_id, score, para) for task_id, (score, para) in scores.items()),
                          key=lambda x: (x[1], x[0]))[:show]
    return result


def _field(obj, name: str):
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
