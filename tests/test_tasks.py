"""Pre-annotated Label Studio tasks: make_tasks and ``hoptac annotate export``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import spacy
from conftest import hoptac
from hoptac.annotate.config import labelling_config
from hoptac.annotate.rules import find_entities, find_sectors
from hoptac.annotate.tasks import make_tasks
from hoptac.corpus.build import read_corpus

from hoptac.errors import HoptacError
from hoptac.schema import load_schema


@pytest.fixture(scope="module")
def rows(seed_corpus):
    return read_corpus(seed_corpus)


@pytest.fixture(scope="module")
def rule_tasks(rows):
    return make_tasks(rows, pre="rules")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A real (untrained) pipeline folder with the schema's NER labels and sectors."""
    schema = load_schema()
    nlp = spacy.blank("vi")
    ner, textcat = nlp.add_pipe("ner"), nlp.add_pipe("textcat_multilabel")
    for label in schema.entity_names:
        ner.add_label(label)
    for label in schema.sector_names:
        textcat.add_label(label)
    nlp.initialize()
    path = tmp_path_factory.mktemp("model") / "model"
    nlp.to_disk(path)
    return path


def controls() -> dict[str, tuple[str, str]]:
    """Control tag → (name, toName) in the generated labelling config."""
    root = ET.fromstring(labelling_config(load_schema()))
    return {el.tag: (el.get("name"), el.get("toName")) for el in root.iter() if el.tag in ("Labels", "Choices")}


def test_one_task_per_row_with_the_row_data(rows, rule_tasks):
    assert len(rule_tasks) == len(rows)
    for row, task in zip(rows, rule_tasks):
        assert task["data"] == {"text": row["text"], "title": row["title"], "doc_id": row["doc_id"], "para_id": row["id"]}


def test_rule_predictions_have_exact_offsets_and_config_names(rule_tasks):
    schema = load_schema()
    (ner_name, ner_to), (sec_name, sec_to) = controls()["Labels"], controls()["Choices"]
    spans = 0
    for task in rule_tasks:
        text = task["data"]["text"]
        (prediction,) = task["predictions"]
        assert prediction["model_version"].startswith("hoptac-rules-")
        labels = [r for r in prediction["result"] if r["type"] == "labels"]
        choices = [r for r in prediction["result"] if r["type"] == "choices"]
        for r in labels:
            v = r["value"]
            assert (r["from_name"], r["to_name"]) == (ner_name, ner_to)
            assert v["text"] == text[v["start"]:v["end"]]
            assert v["labels"][0] in schema.entity_names
        # the rules' own character spans, not token-expanded ones
        assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in labels] == find_entities(text)
        expected = [n for n, v in find_sectors(text).items() if v >= 0.5]
        assert [c for r in choices for c in r["value"]["choices"]] == expected
        assert all((r["from_name"], r["to_name"]) == (sec_name, sec_to) for r in choices)
        assert len({r["id"] for r in prediction["result"]}) == len(prediction["result"])
        spans += len(labels)
    assert spans > len(rule_tasks)  # the seed gets pre-annotated, not left empty


def test_no_pre_annotations(rows):
    tasks = make_tasks(rows, pre="none")
    assert len(tasks) == len(rows) and all("predictions" not in t for t in tasks)


def test_unknown_pre_and_order_are_named(rows, tmp_path):
    with pytest.raises(HoptacError, match="nosuch-model"):
        make_tasks(rows, pre=str(tmp_path / "nosuch-model"))
    with pytest.raises(HoptacError, match="uncertainty needs --pre MODEL_DIR"):
        make_tasks(rows, pre="rules", order="uncertainty")
    with pytest.raises(HoptacError, match="'random'"):
        make_tasks(rows, pre="none", order="random")
    with pytest.raises(HoptacError, match="corpus row 2"):
        make_tasks([rows[0], {"id": "x:1", "text": "t"}], pre="none")


def test_model_predictions_sorted_least_confident_first(rows, tiny_model):
    tasks = make_tasks(rows, pre=str(tiny_model), order="uncertainty")
    assert sorted(t["data"]["para_id"] for t in tasks) == sorted(r["id"] for r in rows)
    scores = [t["predictions"][0]["score"] for t in tasks]
    assert scores == sorted(scores) and len(set(scores)) > 1
    nlp = spacy.load(tiny_model)
    for task in tasks[:5]:
        text, prediction = task["data"]["text"], task["predictions"][0]
        doc = nlp(text)
        confidence = sum(max(p, 1 - p) for p in doc.cats.values()) / len(doc.cats)
        assert prediction["score"] == pytest.approx(confidence, abs=1e-4)
        chosen = [r["value"]["choices"] for r in prediction["result"] if r["type"] == "choices"]
        assert (chosen[0] if chosen else []) == [n for n, p in doc.cats.items() if p >= 0.5]
        for r in prediction["result"]:
            if r["type"] == "labels":
                assert r["value"]["text"] == text[r["value"]["start"]:r["value"]["end"]]
    in_corpus_order = make_tasks(rows, pre=str(tiny_model))
    assert [t["data"]["para_id"] for t in in_corpus_order] == [r["id"] for r in rows]


def test_cli_export_with_rules(seed_corpus, rows, tmp_path):
    out = tmp_path / "tasks.json"
    result = hoptac("annotate", "export", seed_corpus, "-o", out, "--pre", "rules")
    assert result.returncode == 0, result.stderr
    assert f"{len(rows)} paragraphs → {len(rows)} tasks" in result.stdout
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert tasks == make_tasks(rows, pre="rules")


def test_cli_export_bad_pre_is_one_line(seed_corpus, tmp_path):
    result = hoptac("annotate", "export", seed_corpus, "-o", tmp_path / "t.json", "--pre", "no-such-thing")
    assert result.returncode == 2
    assert result.stderr.startswith("hoptac: error:") and "no-such-thing" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "t.json").exists()
