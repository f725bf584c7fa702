"""The annotator's view, end to end in headless Chromium against a REAL Label Studio 1.23 server.

The seed corpus goes to Label Studio through the real ``hoptac annotate export``
CLI (rule pre-annotations). Annotator 2 logs in through the login form, opens a
paragraph in the labelling screen, and the page itself (its DOM) must show the
title as context, every entity label with its hotkey and colour, every sector,
and the pre-annotated spans as regions. Then the annotator adds a span the rules
missed with a mouse drag and the label's hotkey, ticks a sector with the mouse
and submits; ``hoptac annotate pull`` and ``hoptac dataset build`` must carry
that exact span and sector. Finally the same page check is run against projects
made with deliberately broken configs (and without predictions) and must name
the missing piece.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest
from browser import (
    assert_labelling_screen,
    delete_region,
    expected_regions,
    labelling_screen_problems,
    open_instructions,
    press_key,
    read_screen,
    select_text,
    submit,
    tick_choice,
)
from conftest import SEED_ANNOTATIONS, hoptac
from hoptac.annotate.config import TITLE_OBJECT, labelling_config
from hoptac.annotate.screenshot import chromium, login, open_task, save_png
from studio_server import cli_env, client

from hoptac.schema import load_schema

pytestmark = [pytest.mark.browser, pytest.mark.studio]

PROJECT = "browser-seed"
SEED_GOLD = SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json"
GUIDE_HEADING = "hoptac annotation guide"


# --------------------------------------------------------------------------- fixtures and helpers


def project_tasks(server, project_id: int) -> list[dict]:
    """The project's tasks as the server holds them: id, data, predictions (results only)."""
    tasks = client(server).tasks.list(project=project_id, fields="all")
    return [{"id": t.id, "data": t.data,
             "predictions": [{"result": p.result if hasattr(p, "result") else p["result"]}
                             for p in (t.predictions or [])]}
            for t in tasks]


@pytest.fixture(scope="module")
def seed_project(label_studio, seed_corpus) -> tuple[int, list[dict]]:
    """The seed corpus pushed with rule pre-annotations by the real CLI: (project id, tasks)."""
    hoptac("annotate", "export", seed_corpus, "--ls-url", label_studio.url, "--project", PROJECT,
           env=cli_env(label_studio.token), check=True)
    [project] = [p for p in client(label_studio).projects.list() if p.title == PROJECT]
    return project.id, project_tasks(label_studio, project.id)


@pytest.fixture(scope="module")
def browser(label_studio):
    """Headless Chromium, logged in as annotator 2 through the login form."""
    with chromium() as driver:
        login(driver, label_studio.url, label_studio.annotator_username, label_studio.annotator_password)
        yield driver


@dataclass(frozen=True)
class Edit:
    """What the annotator will do to one task: label ``text`` at ``start:end`` and tick ``sector``."""

    task: dict
    start: int
    end: int
    label: str
    text: str
    sector: str
    redo: bool  # the rules had this span already: the annotator deletes their region and redraws it


def gold_by_para() -> dict[str, list[dict]]:
    return {t["data"]["para_id"]: t["annotations"][0]["result"]
            for t in json.loads(SEED_GOLD.read_text(encoding="utf-8"))}


def plan_edit(tasks: list[dict]) -> Edit:
    """A seed paragraph with a gold span the rules missed (and, if any, a gold sector they missed).

    Spans are kept only when they fall on pyvi token boundaries, so the dataset holds them unchanged.
    Should the rules ever find every gold span, the annotator redraws one of theirs instead.
    """
    from hoptac.train.align import tokenize

    schema, gold = load_schema(), gold_by_para()
    candidates = []
    for task in sorted(tasks, key=lambda t: int(t["data"]["para_id"].rsplit(":", 1)[1])):
        data = task["data"]
        if data["text"] == data["title"] or len(data["text"]) > 700:
            continue
        _, starts, ends = tokenize(data["text"])
        predicted = expected_regions(task)
        predicted_sectors = {c for p in task["predictions"] for r in p["result"] if r["type"] == "choices"
                             for c in r["value"]["choices"]}
        gold_sectors = [c for r in gold[data["para_id"]] if r["type"] == "choices" for c in r["value"]["choices"]]
        missed_sectors = [s for s in schema.sector_names if s in gold_sectors and s not in predicted_sectors]
        sector = (missed_sectors or [s for s in schema.sector_names if s not in predicted_sectors])[0]
        for r in gold[data["para_id"]]:
            if r["type"] != "labels":
                continue
            v = r["value"]
            if v["start"] not in starts or v["end"] not in ends:
                continue
            overlaps = [p for p in predicted if p[0] < v["end"] and v["start"] < p[1]]
            redo = bool(overlaps)
            if redo and overlaps != [(v["start"], v["end"], v["labels"][0], v["text"])]:
                continue
            rank = (redo, not missed_sectors, " " not in v["text"])  # prefer a missed span, a missed sector, a drag
            candidates.append((rank, Edit(task, v["start"], v["end"], v["labels"][0], v["text"], sector, redo)))
    assert candidates, "no seed paragraph has a gold span on token boundaries to annotate"
    return min(candidates, key=lambda c: c[0])[1]


@pytest.fixture(scope="module")
def edit(seed_project) -> Edit:
    return plan_edit(seed_project[1])


def broken_config(case: str) -> tuple[str, str]:
    """The schema's labelling config with one piece removed: (xml, what the page check must report)."""
    schema = load_schema()
    root = ET.fromstring(labelling_config(schema))
    parent = {child: node for node in root.iter() for child in node}
    if case == "missing-label":
        name = schema.entities[-1].name
        label = next(el for el in root.iter("Label") if el.get("value") == name)
        parent[label].remove(label)
        expected = f"entity label {name} is not offered"
    elif case == "wrong-hotkey":  # (a Label without hotkey gets one from Label Studio: 1, 2… in order)
        entity = schema.entities[0]
        next(el for el in root.iter("Label") if el.get("value") == entity.name).set("hotkey", "z")
        expected = f"entity label {entity.name} shows hotkey 'z', not '{entity.hotkey}'"
    elif case == "missing-sector":
        name = schema.sector_names[-1]
        choice = next(el for el in root.iter("Choice") if el.get("value") == name)
        parent[choice].remove(choice)
        expected = f"sector choice {name} is not offered"
    elif case == "no-title":
        title = next(el for el in root.iter("Text") if el.get("name") == TITLE_OBJECT)
        box = parent[title]
        parent[box].remove(box)
        expected = "the article title is not shown as context"
    elif case == "no-predictions":
        expected = "pre-annotated regions missing from the regions panel"  # and from the paragraph's highlights
    else:
        raise ValueError(case)
    return ET.tostring(root, encoding="unicode"), expected


# --------------------------------------------------------------------------- tests


def test_the_annotator_logs_in_through_the_login_form(browser, label_studio):
    assert "/user/login" not in browser.current_url
    me = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch('/api/current-user/whoami', {credentials: 'same-origin'}).then(r => r.json()).then(done);")
    assert me["email"] == label_studio.annotator_username


def test_the_labelling_screen_shows_the_schema_and_the_rules_pre_annotations(
        browser, label_studio, seed_project, edit, tmp_path_factory):
    project_id, _ = seed_project
    task = edit.task
    open_task(browser, label_studio.url, project_id, task["id"], task["data"]["text"])
    screen = read_screen(browser)
    assert_labelling_screen(screen, load_schema(), task["data"], expected_regions(task))
    assert expected_regions(task), "the chosen paragraph should carry rule pre-annotations"
    assert len(set(screen.choice_hotkeys.values()) | {l.hotkey for l in screen.labels}) == \
        len(screen.choice_hotkeys) + len(screen.labels), "two controls share a hotkey on the page"

    shot = save_png(browser, tmp_path_factory.mktemp("browser") / "labelling-screen.png")
    print(f"\nlabelling screen screenshot: {shot}")
    assert shot.stat().st_size > 10_000

    instructions = open_instructions(browser)
    assert GUIDE_HEADING in instructions, "the annotation guide is not the project's instructions"


def test_an_annotation_made_with_mouse_and_hotkey_reaches_the_pull_and_the_dataset(
        browser, label_studio, seed_project, edit, tmp_path):
    project_id, _ = seed_project
    schema = load_schema()
    data = edit.task["data"]
    open_task(browser, label_studio.url, project_id, edit.task["id"], data["text"])
    before = read_screen(browser)
    assert before.choices[edit.sector] is False
    if edit.redo:
        delete_region(browser, edit.start, edit.end)

    hotkey = next(e.hotkey for e in schema.entities if e.name == edit.label)
    press_key(browser, hotkey)  # Label Studio: pick the label, then select the words
    select_text(browser, data["text"], edit.start, edit.end)
    tick_choice(browser, edit.sector)
    after = read_screen(browser)
    paragraph = after.text_object(data["text"])
    assert {"label": edit.label, "start": edit.start, "end": edit.end, "text": edit.text} in paragraph["highlights"]
    assert (edit.label, edit.text) in after.regions
    submit(browser)

    pulled = hoptac("annotate", "pull", "--ls-url", label_studio.url, "--project", PROJECT,
                    "-o", tmp_path / "pulls", env=cli_env(label_studio.token), check=True)
    assert label_studio.token not in pulled.stdout + pulled.stderr
    [export] = sorted((tmp_path / "pulls").glob("*.json"))
    [task] = [t for t in json.loads(export.read_text(encoding="utf-8")) if t["data"]["para_id"] == data["para_id"]]
    annotator = client(label_studio, label_studio.annotator_token).users.whoami()
    [annotation] = [a for a in task["annotations"] if not a["was_cancelled"]]
    assert annotation["completed_by"] == annotator.id
    spans = [(r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"], r.get("origin"))
             for r in annotation["result"] if r["type"] == "labels"]
    assert (edit.start, edit.end, edit.text, [edit.label], "manual") in spans
    choices = [c for r in annotation["result"] if r["type"] == "choices" for c in r["value"]["choices"]]
    assert edit.sector in choices

    dataset_dir = tmp_path / "dataset"
    built = hoptac("dataset", "build", export, "-o", dataset_dir, "--dev", "0", "--test", "0", check=True)
    assert "rows: 1 " in built.stdout  # the one annotated task of the project
    from datasets import load_from_disk

    dataset = load_from_disk(str(dataset_dir))
    [row] = [r for split in dataset.values() for r in split if r["id"] == data["para_id"]]
    assert {"start": edit.start, "end": edit.end, "label": edit.label, "text": edit.text} in row["spans"]
    sector_names = dataset["train"].features["sectors"].feature.names
    assert edit.sector in [sector_names[i] for i in row["sectors"]]


@pytest.mark.parametrize("case", ["missing-label", "wrong-hotkey", "missing-sector", "no-title", "no-predictions"])
def test_the_page_check_names_what_a_broken_project_lacks(browser, label_studio, edit, case):
    xml, expected = broken_config(case)
    schema = load_schema()
    present = {el.get("value") for el in ET.fromstring(xml).iter("Label")}
    predictions = [{"model_version": "test", "score": 1.0,
                    "result": [r for r in edit.task["predictions"][0]["result"]
                               if r["type"] != "labels" or r["value"]["labels"][0] in present]}]
    task = {"data": edit.task["data"], "predictions": [] if case == "no-predictions" else predictions}
    admin = client(label_studio)
    project = admin.projects.create(title=f"browser-broken-{case}", label_config=xml)
    admin.projects.import_tasks(id=project.id, request=[task])
    [stored] = project_tasks(label_studio, project.id)

    open_task(browser, label_studio.url, project.id, stored["id"], stored["data"]["text"])
    screen = read_screen(browser)
    regions = expected_regions({"predictions": predictions})  # what the rules would have shown
    problems = labelling_screen_problems(screen, schema, stored["data"], regions)
    assert problems and problems[0].startswith(expected), problems
    side_effect = "highlighted spans in the paragraph []"  # no regions: no highlights either
    assert all(p.startswith(side_effect) for p in problems[1:]) and (len(problems) == 1 or case == "no-predictions"), \
        problems
    with pytest.raises(AssertionError, match=re.escape(expected)):
        assert_labelling_screen(screen, schema, stored["data"], regions)
