"""Label Studio round trip against a REAL Label Studio 1.23 server (``tests/studio_server.py``).

Push tasks (Python API, and the real ``hoptac annotate export`` CLI with the
rule pre-annotations of ``annotate/tasks.py``), check the project's config and
tasks, annotate as two annotators would (one skip, one task left alone), pull
twice with the CLI, check the pulled export with ``hoptac annotate check``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from conftest import SEED_ANNOTATIONS, hoptac
from hoptac.annotate.config import instruction_html, labelling_config, read_config
from hoptac.annotate.studio import push_tasks
from hoptac.corpus.build import read_corpus
from studio_server import cli_env, client

from hoptac.errors import HoptacError
from hoptac.schema import load_schema

pytestmark = pytest.mark.studio

SEED_GOLD = SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json"


# --------------------------------------------------------------------------- helpers


def project_by_title(server, title: str):
    matches = [p for p in client(server).projects.list() if p.title == title]
    assert len(matches) == 1, f"expected one project titled {title!r}, found {len(matches)}"
    return client(server).projects.get(id=matches[0].id)


def project_tasks(server, project_id: int) -> list:
    return sorted(client(server).tasks.list(project=project_id, fields="all"), key=lambda t: t.id)


def assert_key_never_shown(key: str, results=(), paths=()) -> None:
    for result in results:
        assert key not in result.stdout and key not in result.stderr
    for path in paths:
        for file in ([path] if Path(path).is_file() else sorted(Path(path).rglob("*"))):
            if file.is_file():
                assert key.encode() not in file.read_bytes(), f"the API key was written to {file}"


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hoptac: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gold_results() -> dict[str, list]:
    """The seed's hand-made annotation results, by para_id."""
    tasks = json.loads(SEED_GOLD.read_text(encoding="utf-8"))
    return {t["data"]["para_id"]: t["annotations"][0]["result"] for t in tasks}


def seed_tasks(seed_corpus: Path) -> list[dict]:
    """Tasks as ``make_tasks`` shapes them, predictions taken from the seed's gold annotations."""
    gold = gold_results()
    return [{"data": {"text": row["text"], "title": row["title"], "doc_id": row["doc_id"], "para_id": row["id"]},
             "predictions": [{"model_version": "seed-gold", "score": 1.0, "result": gold[row["id"]]}]}
            for row in read_corpus(seed_corpus)]


def assert_config_is_the_schemas(project) -> None:
    schema = load_schema()
    labels = read_config(project.label_config, source=f"project {project.id}")
    assert list(labels.entities) == schema.entity_names
    assert list(labels.sectors) == schema.sector_names
    assert project.label_config.strip() == labelling_config(schema).strip()
    assert project.expert_instruction.strip() == instruction_html().strip()
    assert project.show_instruction is True


# --------------------------------------------------------------------------- push (Python API)


def test_push_creates_the_project_then_adds_only_new_tasks(label_studio, seed_corpus):
    tasks = seed_tasks(seed_corpus)
    first = push_tasks(label_studio.url, label_studio.token, "push-api", tasks[:10], batch_size=4)
    assert (first.created, first.config, first.sent, first.batches) == (True, "set", 10, 3)
    assert (first.tasks_imported, first.predictions_imported, first.tasks_in_project) == (10, 10, 10)

    second = push_tasks(label_studio.url, label_studio.token, "push-api", tasks + tasks[-2:], batch_size=7)
    assert (second.created, second.config, second.instructions) == (False, "unchanged", "unchanged")
    assert (second.given, second.already_there, second.repeated_in_input) == (28, 10, 2)
    assert (second.sent, second.batches, second.tasks_imported) == (16, 3, 16)
    assert second.given == second.sent + second.already_there + second.repeated_in_input
    assert second.tasks_in_project == len(tasks)
    summary = second.summary()
    assert "project: reused" in summary and "tasks already there (same para_id), skipped: 10" in summary
    assert label_studio.token not in summary and label_studio.token not in repr(second)

    project = project_by_title(label_studio, "push-api")
    assert_config_is_the_schemas(project)
    stored = project_tasks(label_studio, project.id)
    assert sorted(t.data["para_id"] for t in stored) == sorted(t["data"]["para_id"] for t in tasks)
    assert all(len(t.predictions) == 1 for t in stored)


def test_push_updates_an_outdated_config_but_never_orphans_annotations(label_studio, seed_corpus):
    tasks = seed_tasks(seed_corpus)[:3]
    old = ('<View><Text name="text" value="$text"/><Labels name="ner" toName="text">'
           '<Label value="OLD_LABEL"/></Labels></View>')
    admin = client(label_studio)
    admin.projects.create(title="outdated-config", label_config=old)
    result = push_tasks(label_studio.url, label_studio.token, "outdated-config", tasks[:1])
    assert (result.created, result.config, result.instructions, result.sent) == (False, "updated", "updated", 1)
    assert_config_is_the_schemas(project_by_title(label_studio, "outdated-config"))

    project = admin.projects.create(title="annotated-old-config", label_config=old)
    admin.projects.import_tasks(id=project.id, request=[{"data": tasks[0]["data"]}])
    task = project_tasks(label_studio, project.id)[0]
    text = task.data["text"]
    admin.annotations.create(id=task.id, result=[{"from_name": "ner", "to_name": "text", "type": "labels",
                                                  "value": {"start": 0, "end": 4, "text": text[:4],
                                                            "labels": ["OLD_LABEL"]}}])
    with pytest.raises(HoptacError, match="OLD_LABEL") as error:
        push_tasks(label_studio.url, label_studio.token, "annotated-old-config", tasks)
    assert "\n" not in str(error.value)
    unchanged = admin.projects.get(id=project.id)
    assert unchanged.label_config == old
    assert len(project_tasks(label_studio, project.id)) == 1  # nothing imported


def test_push_refuses_tasks_without_para_id_or_title_before_creating_anything(label_studio):
    good = {"data": {"text": "a", "title": "t", "para_id": "x:0"}}
    with pytest.raises(HoptacError, match=r"task 1: data.para_id is missing"):
        push_tasks(label_studio.url, label_studio.token, "never-created",
                   [good, {"data": {"text": "b", "title": "t"}}])
    with pytest.raises(HoptacError, match=r"task 2: data.title is missing"):
        push_tasks(label_studio.url, label_studio.token, "never-created",
                   [good, good, {"data": {"text": "b", "para_id": "x:1"}}])
    assert not [p for p in client(label_studio).projects.list() if p.title == "never-created"]


def test_a_refused_batch_says_how_far_the_import_got_and_a_rerun_completes_it(label_studio, seed_corpus):
    tasks = seed_tasks(seed_corpus)[:5]
    bad = dict(tasks[3], annotations=[{"result": [], "completed_by": "nobody"}])  # refused by the server
    with pytest.raises(HoptacError) as error:
        push_tasks(label_studio.url, label_studio.token, "refused-batch", tasks[:3] + [bad] + tasks[4:], batch_size=3)
    message = str(error.value)
    assert "HTTP 400" in message and "completed_by=nobody" in message and "\n" not in message
    assert "3 of 5 new tasks were imported before" in message
    project = project_by_title(label_studio, "refused-batch")
    assert len(project_tasks(label_studio, project.id)) == 3

    rerun = push_tasks(label_studio.url, label_studio.token, "refused-batch", tasks)
    assert (rerun.already_there, rerun.sent, rerun.tasks_in_project) == (3, 2, 5)


def test_bad_key_and_unreachable_server_are_one_line_errors_without_the_key(label_studio, tmp_path):
    wrong = "wrong-" + label_studio.token[::-1]
    with pytest.raises(HoptacError) as refused:
        push_tasks(label_studio.url, wrong, "never-created",
                   [{"data": {"text": "a", "title": "t", "para_id": "x:0"}}])
    assert "refused the API key" in str(refused.value) and wrong not in str(refused.value)

    pulled = hoptac("annotate", "pull", "--ls-url", label_studio.url, "--project", "push-api",
                    "-o", tmp_path / "pulls", env=cli_env(wrong))
    assert "refused the API key" in one_line_error(pulled)

    url = f"http://127.0.0.1:{closed_port()}"
    unreachable = hoptac("annotate", "pull", "--ls-url", url, "--project", "push-api",
                         "-o", tmp_path / "pulls", env=cli_env(label_studio.token))
    assert f"cannot reach Label Studio at {url}" in one_line_error(unreachable)

    missing = hoptac("annotate", "pull", "--ls-url", label_studio.url, "--project", "no-such-project",
                     "-o", tmp_path / "pulls", env=cli_env(label_studio.token))
    assert "no project titled 'no-such-project'" in one_line_error(missing)
    assert_key_never_shown(wrong, [pulled], [tmp_path])
    assert_key_never_shown(label_studio.token, [unreachable, missing], [tmp_path])
    assert not (tmp_path / "pulls").exists() or not any((tmp_path / "pulls").iterdir())


# --------------------------------------------------------------------------- export CLI, end to end


def test_cli_export_pushes_pre_annotated_tasks_idempotently(label_studio, seed_corpus, tmp_path):
    key, out = label_studio.token, tmp_path / "tasks.json"
    args = ("annotate", "export", seed_corpus, "--ls-url", label_studio.url, "--project", "cli-export", "-o", out)
    first = hoptac(*args, env=cli_env(key))
    assert first.returncode == 0, first.stdout + first.stderr
    written = json.loads(out.read_text(encoding="utf-8"))
    assert len(written) == 26
    predictions = sum(len(t.get("predictions") or []) for t in written)
    assert "project: created" in first.stdout and "tasks sent: 26" in first.stdout
    assert f"predictions imported: {predictions} (of {predictions} sent)" in first.stdout

    project = project_by_title(label_studio, "cli-export")
    assert_config_is_the_schemas(project)
    stored = project_tasks(label_studio, project.id)
    assert len(stored) == 26
    assert sorted(t.data["para_id"] for t in stored) == sorted(r["id"] for r in read_corpus(seed_corpus))
    assert sum(len(t.predictions) for t in stored) == predictions > 0

    second = hoptac(*args, env=cli_env(key))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "project: reused" in second.stdout and "tasks already there (same para_id), skipped: 26" in second.stdout
    assert len(project_tasks(label_studio, project.id)) == 26
    assert_key_never_shown(key, [first, second], [tmp_path])

    wrong = "wrong-" + key[::-1]
    refused = hoptac(*args, "--pre", "none", env=cli_env(wrong))  # no rules needed to be refused
    assert "refused the API key" in one_line_error(refused)
    assert_key_never_shown(wrong, [refused], [tmp_path])


# --------------------------------------------------------------------------- annotate, pull, check


def annotate_like_people(server, project_id: int) -> dict[str, int]:
    """Annotate through the API as two annotators would; return the counts an export must show.

    Task 0 is left alone, task 1 is skipped (cancelled) by annotator 2 and nobody
    else; tasks 2–4 are annotated by both (annotator 2 leaves out one span), the
    rest by the admin alone, using the seed's hand-made results.
    """
    gold = gold_results()
    admin, second = client(server), client(server, server.annotator_token)
    tasks = project_tasks(server, project_id)
    untouched, skipped, doubled = tasks[0], tasks[1], tasks[2:5]
    made = dict(annotations=0, cancelled=0)
    second.annotations.create(id=skipped.id, result=[], was_cancelled=True)
    made["annotations"] += 1
    made["cancelled"] += 1
    for task in tasks[2:]:
        admin.annotations.create(id=task.id, result=gold[task.data["para_id"]], lead_time=12.5)
        made["annotations"] += 1
    for task in doubled:
        result = gold[task.data["para_id"]]
        second.annotations.create(id=task.id, result=result[:-1] if len(result) > 1 else result, lead_time=20.0)
        made["annotations"] += 1
    assert untouched.id not in {t.id for t in tasks[1:]}
    return dict(tasks=len(tasks), annotations=made["annotations"], cancelled=made["cancelled"],
                unannotated_tasks=1, double_annotated_tasks=len(doubled))


def counts_in(path: Path) -> dict[str, int]:
    """Count an export file directly (independently of annotate/studio.py)."""
    tasks = json.loads(path.read_text(encoding="utf-8"))
    annotations = [a for t in tasks for a in t["annotations"]]
    return dict(tasks=len(tasks), annotations=len(annotations),
                cancelled=sum(a["was_cancelled"] for a in annotations),
                unannotated_tasks=sum(not t["annotations"] for t in tasks),
                double_annotated_tasks=sum(sum(not a["was_cancelled"] for a in t["annotations"]) >= 2
                                           for t in tasks))


def printed_counts(stdout: str) -> dict[str, int]:
    pairs = (line.split(": ", 1) for line in stdout.splitlines() if ": " in line and not line.startswith("wrote"))
    return {k: int(v) for k, v in pairs if v.isdigit()}


def test_export_annotate_pull_check_end_to_end(label_studio, seed_corpus, tmp_path):
    tasks_file = tmp_path / "tasks.json"
    exported = hoptac("annotate", "export", seed_corpus, "--ls-url", label_studio.url, "--project", "annotated",
                      "-o", tasks_file, env=cli_env(label_studio.token))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    project = project_by_title(label_studio, "annotated")
    expected = annotate_like_people(label_studio, project.id)

    out = tmp_path / "exports"
    args = ("annotate", "pull", "--ls-url", label_studio.url, "--project", "annotated", "-o", out)
    pulls = [hoptac(*args, env=cli_env(label_studio.token)) for _ in range(2)]
    paths = []
    for pulled in pulls:
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        path = Path(pulled.stdout.splitlines()[0].removeprefix("wrote "))
        assert path.parent == out and path.name.startswith("annotated-") and path.suffix == ".json"
        paths.append(path)
        assert counts_in(path) == expected
        shown = printed_counts(pulled.stdout)
        assert {k: shown[k] for k in expected} == expected
        assert shown["predictions"] == sum(len(t.get("predictions") or []) for t in tasks)
    assert paths[0] != paths[1] and all(p.exists() for p in paths)
    assert sorted(out.iterdir()) == sorted(paths)

    pulled_tasks = json.loads(paths[1].read_text(encoding="utf-8"))
    annotator_ids = {a["completed_by"] for t in pulled_tasks for a in t["annotations"]}
    second_id = client(label_studio, label_studio.annotator_token).users.whoami().id
    first_id = client(label_studio).users.whoami().id
    assert annotator_ids == {first_id, second_id}
    skipped = [t for t in pulled_tasks if t["annotations"] and all(a["was_cancelled"] for a in t["annotations"])]
    assert len(skipped) == 1 and skipped[0]["annotations"][0]["completed_by"] == second_id
    assert {t["data"]["para_id"] for t in pulled_tasks} == {t["data"]["para_id"] for t in tasks}
    assert_key_never_shown(label_studio.token, [exported, *pulls], [out, tasks_file])

    checked = hoptac("annotate", "check", paths[1])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rows = {line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1]
            for line in checked.stdout.splitlines() if line.strip() and line.split()[-1].isdigit()}
    assert rows.get("tasks (paragraphs)") == str(expected["tasks"])
    assert rows.get("annotations, all") == str(expected["annotations"])
    assert rows.get("cancelled annotations") == str(expected["cancelled"])
