"""``hoptac serve``: the ML backend over real HTTP on 127.0.0.1 (no Label Studio here: see
test_serve_studio.py), its refusals, its secrecy, concurrent load, and the crash-safe annotation store."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from backend_server import running_backend
from conftest import SEED_TEXT, hoptac
from hoptac.annotate.config import labelling_config
from hoptac.train.learn_store import open_store

from hoptac.errors import HoptacError
from hoptac.schema import load_schema

pytestmark = pytest.mark.slow  # trains the seed model (once per session)

CONFIG = labelling_config(load_schema())
SECRET = "tok-0123456789abcdef-never-logged"
MARKER = "Đoạn văn bí mật XYZZY"  # a task text that must never reach the log


def seed_texts() -> list[str]:
    lines = [line for line in SEED_TEXT.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[1:]


def tasks(texts: list[str], key: str = "text") -> list[dict]:
    return [{"id": n, "data": {key: text}} for n, text in enumerate(texts, start=1)]


def assert_offsets(texts: list[str], answer: dict) -> int:
    """Every span's offsets slice exactly its text out of the task's text; returns the number of spans."""
    spans = 0
    assert len(answer["results"]) == len(texts)
    for text, prediction in zip(texts, answer["results"]):
        for result in prediction["result"]:
            if result["type"] == "labels":
                value = result["value"]
                assert text[value["start"]:value["end"]] == value["text"]
                spans += 1
    return spans


@pytest.fixture(scope="module")
def backend(model, tmp_path_factory):
    with running_backend(model, tmp_path_factory.mktemp("serve") / "work", "--retrain-every", "0",
                         "--max-chars", "5000", "--max-tasks", "100") as running:
        yield running


def test_predict_answers_each_task_with_exact_offsets_and_the_config_names(backend):
    texts = seed_texts()[:12]
    status, answer = backend.post("/predict", {"tasks": tasks(texts), "label_config": CONFIG, "project": "1.1",
                                               "params": {"login": None, "password": None, "context": None}})
    assert status == 200
    assert assert_offsets(texts, answer) > 0, "the seed model should find entities in the seed paragraphs"
    version = backend.get("/health")["model_version"]
    assert answer["model_version"] == version and "@" in version  # <name>-<version>@<training time>
    for prediction in answer["results"]:
        assert prediction["model_version"] == version
        assert 0.5 <= prediction["score"] <= 1.0
        assert {r["from_name"] for r in prediction["result"]} <= {"ner", "sectors"}
        assert {r["to_name"] for r in prediction["result"]} <= {"text"}

    # another project's config: other names, the text under another key, no Choices control
    other = ('<View><Text name="para" value="$paragraph"/><Labels name="ents" toName="para">'
             '<Label value="LOCALITY"/><Label value="OFFICIAL"/></Labels></View>')
    status, renamed = backend.post("/predict", {"tasks": tasks(texts, "paragraph"), "label_config": other})
    assert status == 200
    assert_offsets(texts, renamed)
    results = [r for p in renamed["results"] for r in p["result"]]
    assert results and {(r["from_name"], r["to_name"], r["type"]) for r in results} == {("ents", "para", "labels")}
    assert {label for r in results for label in r["value"]["labels"]} <= {"LOCALITY", "OFFICIAL"}


@pytest.mark.parametrize("body, status, message", [
    (b"not json", 400, "not JSON"),
    ([1, 2], 400, "must be a JSON object"),
    ({"tasks": [{"data": {"text": "Hà Nội"}}], "label_config": CONFIG, "surprise": 1}, 400, "unknown field(s) in the /predict request: surprise"),
    ({"tasks": [], "label_config": CONFIG}, 400, "'tasks' must be a non-empty list"),
    ({"tasks": [{"data": {"text": "x" * 5001}}], "label_config": CONFIG}, 413, "5001 characters long; at most 5000"),
    ({"tasks": [{"data": {"text": "x"}}] * 101, "label_config": CONFIG}, 413, "101 tasks in one request; at most 100"),
    ({"tasks": [{"id": 7, "data": {"title": "x"}}], "label_config": CONFIG}, 400, "task #0 (id 7): data.text"),
    ({"tasks": [{"data": {"text": "x"}}], "label_config": "<View><Text name='t' value='$text'/></View>"}, 400,
     "no <Labels> control on a <Text> object"),
    ({"tasks": [{"data": {"text": "x"}}], "label_config": "<View"}, 400, "not valid XML"),
    ({"tasks": [{"data": {"text": "x"}}]}, 400, "labelling config is missing"),
])
def test_malformed_predict_requests_get_a_4xx_with_a_clear_message(backend, body, status, message):
    got, answer = backend.post("/predict", body)
    assert (got, message in answer["error"]) == (status, True), answer
    assert backend.get("/health")["status"] == "UP"  # and the server goes on


def test_setup_and_webhook_refusals_and_nothing_secret_is_logged(backend):
    status, answer = backend.post("/setup", {"project": "3.1700000000", "schema": CONFIG, "hostname": "http://x",
                                             "access_token": SECRET, "extra_params": None})
    assert (status, answer) == (200, {"model_version": backend.get("/health")["model_version"]})
    status, answer = backend.post("/setup", {"project": "3.1", "schema": "<View/>", "access_token": SECRET})
    assert status == 400 and "no <Labels> control" in answer["error"]
    status, answer = backend.post("/webhook", {"action": "ANNOTATION_CREATED", "task": {"id": "x"}})
    assert status == 400 and "'task' must be an object with an integer 'id'" in answer["error"]
    status, answer = backend.post("/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 3}})
    assert (status, answer["status"]) == (201, "ignored")
    status, answer = backend.post("/webhook", {"action": "TASKS_DELETED", "task": {"id": 3}, "tasks": [{"id": 3}]})
    assert (status, answer["status"]) == (201, "ignored")
    status, _ = backend.post("/predict", {"tasks": tasks([MARKER + " Hà Nội"]), "label_config": CONFIG})
    assert status == 200
    log = backend.log_text()
    assert SECRET not in log and MARKER not in log and "XYZZY" not in log
    assert "POST /setup: HTTP 400" in log  # the log says what was refused, without the request's content


def test_50_concurrent_requests_of_20_tasks_are_all_answered_correctly(backend):
    """The bounded load test (timing is measured by bench/serve_load.py, not asserted here)."""
    texts = seed_texts()
    batches = [[texts[(n + k) % len(texts)] for k in range(20)] for n in range(50)]
    status, single = backend.post("/predict", {"tasks": tasks(texts), "label_config": CONFIG})
    assert status == 200
    expected = {text: prediction["result"] for text, prediction in zip(texts, single["results"])}

    def call(batch):
        return batch, backend.post("/predict", {"tasks": tasks(batch), "label_config": CONFIG}, timeout=300)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(call, batches))
    assert len(answers) == 50
    for batch, (status, answer) in answers:
        assert status == 200
        assert [p["result"] for p in answer["results"]] == [expected[text] for text in batch]


# --------------------------------------------------------------------------- the annotation store

EVENT_TASK = {"id": 1, "data": {"text": "Hà Nội và Hải Phòng", "title": "t", "para_id": "a:1"}}


def annotation(n: int) -> dict:
    return {"id": n, "result": [{"type": "labels", "from_name": "ner", "to_name": "text",
                                 "value": {"start": 0, "end": 6, "text": "Hà Nội", "labels": ["LOCALITY"]}}],
            "completed_by": 1, "was_cancelled": False}


_WRITER = """
import sys
from hoptac.train.learn_store import open_store
store = open_store(sys.argv[1])
task = {"id": 1, "data": {"text": "Hà Nội và Hải Phòng"}}
n = 0
while True:
    n += 1
    seq = store.append("ANNOTATION_CREATED", task, {"id": n, "result": [], "note": "x" * 3000})
    print(seq, flush=True)  # acknowledged: on disk
"""


def test_a_store_killed_mid_write_loses_no_acknowledged_record(tmp_path):
    path = tmp_path / "store.sqlite3"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        acknowledged.append(int(writer.stdout.readline()))
    os.kill(writer.pid, signal.SIGKILL)  # in the middle of the next write
    writer.wait()
    assert len(acknowledged) >= 40
    store = open_store(path)  # checked whole: integrity, layout, every checksum
    seqs = [event.seq for event in store.read()]
    store.close()
    assert set(acknowledged) <= set(seqs) and seqs == sorted(set(seqs))


def _filled_store(path: Path, records: int = 3) -> None:
    store = open_store(path)
    for n in range(1, records + 1):
        store.append("ANNOTATION_CREATED", EVENT_TASK, annotation(n))
    store.close()  # the last connection: the WAL is checkpointed into the file


def test_the_store_keeps_what_training_needs_and_reads_back_as_an_export(tmp_path):
    path = tmp_path / "store.sqlite3"
    _filled_store(path)
    store = open_store(path)
    assert store.events == 3
    [task] = store.export_tasks()
    store.close()
    assert task["id"] == 1 and task["data"]["para_id"] == "a:1"
    assert [a["id"] for a in task["annotations"]] == [1, 2, 3]


@pytest.mark.parametrize("damage, message", [
    ("flip", "record 2 of the annotation store does not match its checksum"),
    ("truncate", "the annotation store is damaged"),
    ("garbage", "not an annotation store (not an SQLite database)"),
    ("short", "the annotation store is cut short"),
])
def test_a_damaged_store_is_refused_at_start_up_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "store.sqlite3"
    _filled_store(path, records=3 if damage != "truncate" else 200)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        store = sqlite3.connect(path)
        [(record,)] = store.execute("SELECT record FROM events WHERE seq = 2").fetchall()
        store.close()
        data = bytearray(path.read_bytes())
        at = data.index(record.encode("utf-8"))
        data[at + record.encode("utf-8").index(b"LOCALITY")] = ord("X")  # one letter inside record 2
    elif damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"{not a database}\n" * 20)
    else:
        data = data[:50]
    path.write_bytes(bytes(data))
    with pytest.raises(HoptacError, match=re.escape(message)):
        open_store(path)
    # and `hoptac serve` stops at start-up with that one line, before loading any model
    done = hoptac("serve", "no-such-model-needed", "--store", path, "--workdir", tmp_path / "work", "--port", "9")
    assert done.returncode == 2
    assert done.stderr.startswith(f"hoptac: error: {path}:") and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_taken_port_is_a_one_line_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = hoptac("serve", tmp_path / "no-model-needed", "--port", port, "--workdir", tmp_path / "work")
    assert done.returncode == 2
    assert done.stderr == f"hoptac: error: cannot listen on 127.0.0.1:{port} (Address already in use)\n"
