"""``hoptac serve`` as the ML backend of a REAL Label Studio 1.23 server (both on 127.0.0.1).

The seed corpus goes to Label Studio without pre-annotations (``annotate export --pre none``);
``hoptac annotate connect`` registers the running backend. Then Label Studio itself must call
``/predict`` when a task is opened (through its API, and in the labelling screen, where the model's
spans must be drawn), store the prediction with offsets that match the text, send submitted
annotations to ``/webhook`` (into the backend's store), and the retraining they trigger must
change the ``model_version`` that the next predictions carry.
"""

from __future__ import annotations

import json

import pytest
from backend_server import running_backend, wait_for
from conftest import SEED_ANNOTATIONS, hoptac
from hoptac.train.learn_store import open_store
from studio_server import cli_env, client

pytestmark = [pytest.mark.studio, pytest.mark.slow]

PROJECT = "serve-seed"
SEED_GOLD = SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json"
RETRAIN_STEPS = 100  # as the seed model: a retraining of a few seconds


def gold() -> dict[str, list[dict]]:
    return {t["data"]["para_id"]: t["annotations"][0]["result"] for t in json.loads(SEED_GOLD.read_text("utf-8"))}


@pytest.fixture(scope="module")
def backend(model, tmp_path_factory):
    with running_backend(model, tmp_path_factory.mktemp("serve-studio") / "work", "--retrain-every", "1",
                         "--exports", str(SEED_GOLD), "--set", f"training.max_steps={RETRAIN_STEPS}") as running:
        yield running


@pytest.fixture(scope="module")
def project(label_studio, seed_corpus, backend) -> dict:
    """The seed tasks, without predictions, in a project connected to the backend: {id, tasks by para_id}."""
    hoptac("annotate", "export", seed_corpus, "--pre", "none", "--ls-url", label_studio.url, "--project", PROJECT,
           env=cli_env(label_studio.token), check=True)
    [found] = [p for p in client(label_studio).projects.list() if p.title == PROJECT]
    # listed before the backend is connected: once it is, a listing asks it for the page's predictions
    tasks = {t.data["para_id"]: t for t in client(label_studio).tasks.list(project=found.id, fields="task_only")}
    connected = hoptac("annotate", "connect", "--ls-url", label_studio.url, "--project", PROJECT,
                       "--backend-url", backend.url, env=cli_env(label_studio.token), check=True)
    assert "ML backend: created" in connected.stdout and "turned on" in connected.stdout, connected.stdout
    assert label_studio.token not in connected.stdout + connected.stderr
    return {"id": found.id, "tasks": tasks}


def stored_predictions(server, task_id: int) -> list:
    return list(client(server).predictions.list(task=task_id))


def label_spans(prediction) -> list[tuple[int, int, str, str]]:
    return sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0], r["value"]["text"])
                  for r in prediction.result if r["type"] == "labels")


def test_connect_is_idempotent_and_turns_on_predictions_when_a_task_loads(label_studio, project, backend):
    again = hoptac("annotate", "connect", "--ls-url", label_studio.url, "--project", PROJECT,
                   "--backend-url", backend.url + "/", env=cli_env(label_studio.token), check=True)
    assert "ML backend: reused" in again.stdout and "already on" in again.stdout, again.stdout
    admin = client(label_studio)
    [ml] = admin.ml.list(project=project["id"])
    assert ml.url.rstrip("/") == backend.url and ml.model_version == backend.get("/health")["model_version"]
    hooks = [w for w in admin.webhooks.list(project=str(project["id"])) if w.url == backend.url + "/webhook"]
    assert len(hooks) == 1
    assert admin.projects.get(id=project["id"]).evaluate_predictions_automatically is True


def test_opening_a_task_makes_label_studio_call_predict_and_store_the_prediction(label_studio, project, backend):
    task = project["tasks"]["hanoi-vi-ca-nuoc:18"]
    assert stored_predictions(label_studio, task.id) == []  # imported without predictions
    client(label_studio).tasks.get(id=task.id)  # what the labelling screen does when it opens the task
    [prediction] = stored_predictions(label_studio, task.id)
    version = backend.get("/health")["model_version"]
    assert prediction.model_version == version
    spans = label_spans(prediction)
    assert spans, "the seed model finds entities in paragraph 18"
    text = task.data["text"]
    assert all(text[start:end] == span_text for start, end, _, span_text in spans)
    _, direct = backend.post("/predict", {"tasks": [{"id": task.id, "data": task.data}],
                                          "label_config": client(label_studio).projects.get(id=project["id"]).label_config})
    assert prediction.result == direct["results"][0]["result"]
    assert prediction.score == pytest.approx(direct["results"][0]["score"])


@pytest.mark.browser
def test_the_annotator_sees_the_model_spans_corrects_one_and_the_webhook_stores_it(label_studio, project, backend):
    from browser import delete_region, read_screen, submit
    from hoptac.annotate.screenshot import chromium, login, open_task

    task = project["tasks"]["hanoi-vi-ca-nuoc:5"]
    assert stored_predictions(label_studio, task.id) == []
    events_before = backend.get("/health")["store"]["events"]
    with chromium() as driver:
        login(driver, label_studio.url, label_studio.annotator_username, label_studio.annotator_password)
        open_task(driver, label_studio.url, project["id"], task.id, task.data["text"])
        # Label Studio asked the backend as the page loaded (the data manager's task list and the task
        # itself may both ask, at the same time: the same prediction can then be stored twice)
        predictions = stored_predictions(label_studio, task.id)
        assert predictions and all(p.result == predictions[0].result for p in predictions)
        spans = label_spans(predictions[0])
        assert spans, "the seed model finds entities in paragraph 5"
        screen = read_screen(driver)
        drawn = sorted((h["start"], h["end"], h["label"], h["text"])
                       for h in screen.text_object(task.data["text"])["highlights"])
        assert drawn == spans  # the model's spans, pre-drawn on the paragraph
        assert sorted(screen.regions) == sorted((label, span_text) for _, _, label, span_text in spans)
        wrong = spans[0]
        delete_region(driver, wrong[0], wrong[1])  # the annotator corrects the model: that span is wrong
        submit(driver)
    stored = wait_for(lambda: [e for e in open_store_read(backend) if e.task["id"] == task.id],
                      "the webhook event to reach the backend's store", timeout=60)
    assert backend.get("/health")["store"]["events"] > events_before
    result = stored[-1].annotation["result"]
    kept = sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0], r["value"]["text"])
                  for r in result if r["type"] == "labels")
    assert kept == spans[1:]
    assert stored[-1].task["data"]["text"] == task.data["text"]


def open_store_read(backend):
    store = open_store(backend.store)  # a second reader: SQLite WAL lets it read while the server writes
    try:
        return store.read()
    finally:
        store.close()


def test_submitted_annotations_retrain_the_model_and_change_model_version(label_studio, project, backend):
    before = backend.get("/health")
    para = "hanoi-vi-ca-nuoc:3"
    task = project["tasks"][para]
    admin = client(label_studio)
    admin.annotations.create(id=task.id, result=gold()[para])  # Label Studio sends ANNOTATION_CREATED
    wait_for(lambda: any(e.task["id"] == task.id for e in open_store_read(backend)), "the annotation in the store",
             timeout=60)
    running = wait_for(lambda: (h := backend.get("/health"))["retraining"]["running"] and h,
                       "a retraining to start", timeout=60, every=0.2)
    status, answer = backend.post("/predict", {"tasks": [{"id": task.id, "data": task.data}],
                                               "label_config": admin.projects.get(id=project["id"]).label_config})
    assert status == 200 and answer["results"][0]["result"]  # predictions are served while it trains
    assert backend.get("/health")["retraining"]["running"] or answer["model_version"] == running["model_version"]
    accepted = before["retraining"]["accepted"]
    health = wait_for(lambda: (h := backend.get("/health"))["retraining"]["accepted"] > accepted
                      and not h["retraining"]["running"] and not h["store"]["new_since_last_retraining"] and h,
                      "a retraining to be accepted", timeout=240, every=2)
    assert health["model_version"] != before["model_version"], health["retraining"]
    assert health["retraining"]["failed"] == 0, health["retraining"]
    # a task imported now gets its prediction from the new model when it is opened
    data = {**project["tasks"]["hanoi-vi-ca-nuoc:20"].data, "para_id": "after-retraining:1"}
    admin.projects.import_tasks(id=project["id"], request=[{"data": data}])
    [fresh] = [t for t in admin.tasks.list(project=project["id"], fields="task_only")
               if t.data["para_id"] == "after-retraining:1"]
    admin.tasks.get(id=fresh.id)
    [prediction] = stored_predictions(label_studio, fresh.id)
    assert prediction.model_version == health["model_version"]
    assert label_spans(prediction), "the retrained model (same recipe, same data) finds entities too"


def test_prioritise_makes_label_studio_give_the_least_confident_task_first(label_studio, seed_corpus, model):
    from hoptac.annotate.local_server import http_get

    title = "prioritise-seed"
    hoptac("annotate", "export", seed_corpus, "--pre", "none", "--ls-url", label_studio.url, "--project", title,
           env=cli_env(label_studio.token), check=True)
    done = hoptac("annotate", "prioritise", "--ls-url", label_studio.url, "--project", title, "--model", model,
                  env=cli_env(label_studio.token), check=True)
    assert "unlabelled tasks: 26 (0 already scored by this model, 26 scored now, 26 predictions imported)" in done.stdout
    admin = client(label_studio)
    [found] = [p for p in admin.projects.list() if p.title == title]
    project = admin.projects.get(id=found.id)
    assert project.sampling == "Uncertainty sampling"
    predictions = list(admin.predictions.list(project=found.id))
    assert len(predictions) == 26 and {p.model_version for p in predictions} == {project.model_version}
    scores = {p.task: p.score for p in predictions}
    status, body = http_get(f"{label_studio.url}/api/projects/{found.id}/next", label_studio.token)
    assert status == 200, body
    assert scores[json.loads(body)["id"]] == min(scores.values())
    assert len(set(scores.values())) > 1, "the seed paragraphs should not all score the same"
    again = hoptac("annotate", "prioritise", "--ls-url", label_studio.url, "--project", title, "--model", model,
                   env=cli_env(label_studio.token), check=True)
    assert "26 already scored by this model, 0 scored now" in again.stdout  # idempotent
