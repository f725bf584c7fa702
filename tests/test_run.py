"""``hoptac run``: the whole loop on the embedded seed, end to end (one real training, ~1 minute)."""

from __future__ import annotations

import json

import pytest
from conftest import SEED_TEXT, hoptac

pytestmark = pytest.mark.slow


def test_run_end_to_end(tmp_path):
    work = tmp_path / "run"
    result = hoptac("run", "-o", work)
    assert result.returncode == 0, result.stderr[-2000:]
    # progress on stderr (logging), in order; the results on stdout
    steps = [line.split("]")[0] + "]" for line in result.stderr.splitlines() if line.startswith("[") and "/5]" in line[:6]]
    assert steps == ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]
    assert "[1/5]" not in result.stdout and "trained " in result.stdout and "NER strict micro-F1" in result.stdout

    paragraphs = [line for line in SEED_TEXT.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert sum(1 for _ in (work / "corpus.jsonl").open(encoding="utf-8")) == len(paragraphs)
    tasks = json.loads((work / "tasks.json").read_text(encoding="utf-8"))
    assert len(tasks) == len(paragraphs)
    assert any(p["result"] for t in tasks for p in t.get("predictions", []))  # pre-annotated by the rules

    from hoptac.model import load_model

    nlp = load_model(work / "model")
    assert {"ner", "sector_classifier"} <= set(nlp.pipe_names)
    doc = nlp(paragraphs[1])
    assert doc.ents and doc.cats

    metrics = json.loads((work / "report" / "metrics.json").read_text(encoding="utf-8"))
    assert {"ner", "sectors", "baseline", "data"} <= set(metrics)
    assert metrics["data"]["paragraphs"] > 0
    report = (work / "report" / "report.md").read_text(encoding="utf-8")
    # the seed is one article: a bootstrap over articles gives no interval, and says so
    assert "no bootstrap interval: the data is one article" in report and "no interval: 1 article" in result.stdout
    assert str(work / "report" / "report.md") in result.stdout.splitlines()[-1]


def test_run_with_data_makes_its_corpus_and_tasks_from_those_exports(tmp_path):
    from conftest import GOLD_EXPORT

    work = tmp_path / "gold"
    result = hoptac("run", "--data", GOLD_EXPORT, "-o", work, "--set", "training.max_steps=10")
    assert result.returncode == 0, result.stderr[-2000:]
    exported = json.loads(GOLD_EXPORT.read_text(encoding="utf-8"))
    corpus = [json.loads(line) for line in (work / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(corpus) == len(exported)  # every task of the export, none of the seed
    assert {row["doc_id"] for row in corpus} == {t["data"]["doc_id"] for t in exported}
    assert len(json.loads((work / "tasks.json").read_text(encoding="utf-8"))) == len(exported)
    assert "from the paragraphs of 1 export(s)" in result.stderr
