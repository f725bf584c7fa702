"""Stage 3 (use): `hoptac predict` — one line per paragraph, valid offsets, streaming, n_process, bad input."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NEWS, SEED_TEXT, hoptac
from hoptac.corpus.read import Paragraph, read_paragraphs
from seed_model import seed_model, seed_wheel

from hoptac.schema import load_schema

NEWS_ARTICLES = 8  # a small slice of the unlabelled corpus, read in place


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return seed_model(tmp_path_factory)


@pytest.fixture(scope="module")
def news_slice(tmp_path_factory) -> Path:
    """The first articles of the news corpus, as a JSONL.gz input outside the repo."""
    out = tmp_path_factory.mktemp("news") / "slice.jsonl.gz"
    with gzip.open(NEWS, "rb") as src, gzip.open(out, "wb") as dst:
        for line in itertools.islice(src, NEWS_ARTICLES):
            dst.write(line)
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def predict(model, *inputs, out: Path, extra=()) -> tuple[subprocess.CompletedProcess, Path]:
    return hoptac("predict", model, *inputs, "-o", out, *extra), out


def assert_one_error_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hoptac: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.slow
def test_one_line_per_paragraph_with_valid_offsets_and_schema_labels(model, news_slice, tmp_path):
    result, out = predict(model, SEED_TEXT, news_slice, out=tmp_path / "pred.jsonl")
    assert result.returncode == 0, result.stderr
    expected = list(read_paragraphs([SEED_TEXT, news_slice]))
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [p.id for p in expected]
    assert [r["doc_id"] for r in rows] == [p.doc_id for p in expected]
    assert [r["text"] for r in rows] == [p.text for p in expected]
    assert f"wrote {len(expected)} lines for {len(expected)} paragraphs in" in result.stdout
    schema = load_schema()
    n_entities = 0
    for row in rows:
        assert set(row) == {"id", "doc_id", "text", "entities", "sectors"}
        for ent in row["entities"]:
            assert row["text"][ent["start"]:ent["end"]] == ent["text"]
            assert ent["label"] in schema.entity_names
            n_entities += 1
        assert set(row["sectors"]) == set(schema.sector_names)
        assert all(0.0 <= s <= 1.0 for s in row["sectors"].values())
    assert n_entities > 0  # the tiny model does find something
    assert f"entities:   {n_entities}" in result.stdout
    assert not (tmp_path / "pred.jsonl.part").exists()


@pytest.mark.slow
def test_predict_returns_the_counts_it_wrote(model, tmp_path):
    from hoptac.train.predict import predict as run

    out = tmp_path / "pred.jsonl"
    result = run(str(model), [SEED_TEXT], out)
    rows = read_jsonl(out)
    assert result.output == out and result.written == len(rows) == result.read.paragraphs > 0
    assert result.entities == sum(len(r["entities"]) for r in rows) > 0
    assert result.scored == sum(1 for r in rows if r["sectors"]) == len(rows)
    assert result.lines()[-1].startswith(f"wrote {len(rows)} lines for {len(rows)} paragraphs in to {out}")


@pytest.mark.slow
def test_two_processes_give_the_same_output_as_one(model, news_slice, tmp_path):
    one, out1 = predict(model, news_slice, out=tmp_path / "one.jsonl", extra=("--batch-size", "16"))
    two, out2 = predict(model, news_slice, out=tmp_path / "two.jsonl", extra=("--batch-size", "16", "--n-process", "2"))
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    lines = out1.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 16 * 6  # several batches in flight across the two workers
    assert out2.read_text(encoding="utf-8").splitlines() == lines


@pytest.mark.slow
def test_streams_an_endless_input(model):
    """``annotate`` pulls paragraphs lazily: an endless generator still yields records."""
    from hoptac.train.predict import annotate, load_model

    nlp = load_model(model)
    text = list(read_paragraphs([SEED_TEXT]))[1].text
    endless = (Paragraph(f"d{i}:0", f"d{i}", 0, text, text) for i in itertools.count())
    records = list(itertools.islice(annotate(nlp, endless, batch_size=8), 30))
    assert [r["id"] for r in records] == [f"d{i}:0" for i in range(30)]
    assert records[0]["entities"] and records[0]["entities"] == records[29]["entities"]


@pytest.mark.slow
def test_pipeline_without_sector_classifier_gives_empty_sectors(model, tmp_path):
    from hoptac.model import load_model

    nlp = load_model(model)
    for name in [n for n in nlp.pipe_names if n not in ("tok2vec", "ner")]:
        nlp.remove_pipe(name)
    nlp.to_disk(tmp_path / "ner-only")
    result, out = predict(tmp_path / "ner-only", SEED_TEXT, out=tmp_path / "pred.jsonl")
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out)
    assert len(rows) == len(list(read_paragraphs([SEED_TEXT])))
    assert all(row["sectors"] == {} for row in rows)
    assert any(row["entities"] for row in rows)


@pytest.mark.slow
def test_installed_package_name_is_loadable(model, tmp_path_factory, tmp_path):
    """MODEL can be a package name: the wheel unpacked on PYTHONPATH stands for an installed package."""
    wheel = seed_wheel(tmp_path_factory)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    by_name = hoptac("predict", "vi_hoptac", SEED_TEXT, "-o", tmp_path / "by-name.jsonl", env=env)
    by_dir = hoptac("predict", model, SEED_TEXT, "-o", tmp_path / "by-dir.jsonl")
    assert by_name.returncode == 0, by_name.stderr
    assert by_dir.returncode == 0, by_dir.stderr
    assert read_jsonl(tmp_path / "by-name.jsonl") == read_jsonl(tmp_path / "by-dir.jsonl")


def test_missing_model_folder(tmp_path):
    result, out = predict(tmp_path / "nope", SEED_TEXT, out=tmp_path / "o.jsonl")
    assert_one_error_line(result, "nope", "no such model folder")
    assert not out.exists()


def test_unknown_package_name(tmp_path):
    result, _ = predict("vi_no_such_model", SEED_TEXT, out=tmp_path / "o.jsonl")
    assert_one_error_line(result, "vi_no_such_model", "installed spaCy package")


def test_folder_that_is_not_a_pipeline(tmp_path):
    (tmp_path / "empty").mkdir()
    result, _ = predict(tmp_path / "empty", SEED_TEXT, out=tmp_path / "o.jsonl")
    assert_one_error_line(result, "empty", "not a spaCy pipeline")


def test_pipeline_without_ner(tmp_path):
    import spacy

    spacy.blank("vi").to_disk(tmp_path / "blank")
    result, _ = predict(tmp_path / "blank", SEED_TEXT, out=tmp_path / "o.jsonl")
    assert_one_error_line(result, "blank", "no 'ner'")


@pytest.mark.slow
def test_missing_input(model, tmp_path):
    result, out = predict(model, tmp_path / "absent.txt", out=tmp_path / "o.jsonl")
    assert_one_error_line(result, "absent.txt", "no such file")
    assert not out.exists()


@pytest.mark.slow
def test_malformed_input_mid_stream_leaves_no_output(model, tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "a", "title": "Tiêu đề", "text": "Tiêu đề\nHà Nội hợp tác với Hải Phòng."}, ensure_ascii=False)
    bad.write_text(good + "\n{not json\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    previous = '{"id": "x:0", "doc_id": "x", "text": "", "entities": [], "sectors": {}}\n'
    out.write_text(previous, encoding="utf-8")  # an earlier prediction file: hoptac may replace it
    result, _ = predict(model, bad, out=out)
    assert_one_error_line(result, "bad.jsonl:2", "malformed JSON")
    assert out.read_text(encoding="utf-8") == previous  # untouched: written atomically
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "o.jsonl"]  # no temporary file left


@pytest.mark.slow
def test_rejects_zero_batch_size(model, tmp_path):
    from hoptac.train.predict import predict as run

    from hoptac.errors import HoptacError

    with pytest.raises(HoptacError, match="at least 1"):
        run(str(model), [SEED_TEXT], tmp_path / "o.jsonl", batch_size=0)
    assert not (tmp_path / "o.jsonl").exists()
