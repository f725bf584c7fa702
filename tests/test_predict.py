"""Stage 3 (use): `hoptac predict` — one line per paragraph, valid offsets, streaming, n_process, bad input."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SEED_TEXT, hoptac
from conftest import news_slice as first_news
from seed_model import seed_wheel

from hoptac.corpus.read import Paragraph, read_paragraphs
from hoptac.schema import load_schema

NEWS_ARTICLES = 8  # a small slice of the unlabelled corpus, read in place


@pytest.fixture(scope="module")
def news_slice(tmp_path_factory) -> Path:
    """The first articles of the news corpus, as a JSONL.gz input outside the repo."""
    return first_news(tmp_path_factory.mktemp("news"), NEWS_ARTICLES)


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
    assert f"wrote {len(expected)} lines for {len(expected)} paragraphs to " in result.stdout
    schema = load_schema()
    n_entities = 0
    for row in rows:
        assert set(row) == {"id", "doc_id", "text", "entities", "sectors", "sector_labels"}
        for ent in row["entities"]:
            assert row["text"][ent["start"]:ent["end"]] == ent["text"]
            assert ent["label"] in schema.entity_names
            n_entities += 1
        assert set(row["sectors"]) == set(schema.sector_names)
        assert all(0.0 <= s <= 1.0 for s in row["sectors"].values())
        assert set(row["sector_labels"]) <= set(schema.sector_names)
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
    assert result.lines()[-1].startswith(f"wrote {len(rows)} lines for {len(rows)} paragraphs to {out} in ")


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
    assert all(row["sectors"] == {} and row["sector_labels"] == [] for row in rows)
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
    from hoptac.errors import HoptacError
    from hoptac.train.predict import predict as run

    with pytest.raises(HoptacError, match="at least 1"):
        run(str(model), [SEED_TEXT], tmp_path / "o.jsonl", batch_size=0)
    assert not (tmp_path / "o.jsonl").exists()


def test_sector_labels_are_the_models_own_decisions(model, tmp_path):
    """`sector_labels` is what `doc._.sectors` gives a spaCy user: the scores over the tuned thresholds."""
    from hoptac.model import load_model

    result, out = predict(model, SEED_TEXT, out=tmp_path / "pred.jsonl")
    assert result.returncode == 0, result.stderr
    nlp = load_model(model)
    thresholds = dict(zip(nlp.get_pipe("sector_classifier").labels, nlp.get_pipe("sector_classifier").thresholds))
    for row in read_jsonl(out):
        assert row["sector_labels"] == nlp(row["text"])._.sectors
        assert row["sector_labels"] == [s for s, score in row["sectors"].items() if score >= thresholds[s] - 1e-4] \
            or any(abs(score - thresholds[s]) < 1e-4 for s, score in row["sectors"].items())


def test_predict_reads_text_normalised_like_the_corpus(model, tmp_path):
    src = tmp_path / "glued.txt"
    src.write_text("Tiêu đề\rThành phố H\u200bà Nội\u2028và tỉnh Bắc\u00adNinh ký kết\x0bhợp tác\n", encoding="utf-8")
    result, out = predict(model, src, out=tmp_path / "pred.jsonl")
    assert result.returncode == 0, result.stderr
    assert [r["text"] for r in read_jsonl(out)] == ["Tiêu đề", "Thành phố Hà Nội", "và tỉnh BắcNinh ký kết", "hợp tác"]


def test_predict_of_a_corpus_file_keeps_the_corpus_ids(model, seed_corpus, tmp_path):
    result, out = predict(model, seed_corpus, out=tmp_path / "pred.jsonl")
    assert result.returncode == 0, result.stderr
    corpus = read_jsonl(seed_corpus)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [c["id"] for c in corpus]  # not "doc:0:0", "doc:1:0", …
    assert [r["text"] for r in rows] == [c["text"] for c in corpus]


def test_predict_refuses_a_label_studio_export(model, tmp_path):
    from conftest import GOLD_EXPORT

    result, out = predict(model, GOLD_EXPORT, out=tmp_path / "pred.jsonl")
    assert_one_error_line(result, str(GOLD_EXPORT), "Label Studio export")
    assert not out.exists()


def test_a_paragraph_longer_than_max_length_is_predicted_in_parts_and_counted(model, tmp_path):
    from hoptac.model import load_model
    from hoptac.train.predict import annotate, part_starts

    nlp = load_model(model)
    nlp.max_length = 500  # the default is a million characters: the same path, smaller
    lines = [p.text for p in read_paragraphs([SEED_TEXT])]
    long = " ".join(lines[1:])
    assert len(long) > 3 * nlp.max_length
    src = tmp_path / "long.txt"
    src.write_text(f"{lines[0]}\n{long}\n{lines[1]}\n", encoding="utf-8")
    paragraphs = read_paragraphs([src])
    records = list(annotate(nlp, paragraphs))
    assert [r["text"] for r in records] == [lines[0], long, lines[1]]  # one record each, nothing lost
    starts = part_starts(long, nlp.max_length)
    assert paragraphs.summary.split == [("long:1", len(long), len(starts))] and len(starts) >= 4
    assert all(long[s - 1] == " " for s in starts[1:])  # cut after a space
    for record in records:
        for ent in record["entities"]:
            assert record["text"][ent["start"]:ent["end"]] == ent["text"]
    assert any(e["start"] > starts[1] for e in records[1]["entities"])  # later parts are predicted too
    whole = {(e["start"], e["end"], e["label"]) for e in records[1]["entities"]}
    for a, b in zip(starts, starts[1:] + [len(long)]):  # each part, offsets shifted, as predicted alone
        alone = nlp(long[a:b])
        assert {(e.start_char + a, e.end_char + a, e.label_) for e in alone.ents} == \
               {x for x in whole if a <= x[0] < b}
    assert set(records[1]["sectors"]) == set(records[0]["sectors"])
    assert any("split:      1 paragraph(s) longer than the model's max_length" in line
               for line in paragraphs.summary.lines())
    two = list(annotate(nlp, read_paragraphs([src]), batch_size=2, n_process=2))
    assert two == records


def test_a_model_missing_its_sector_file_is_refused_when_loaded(model, tmp_path):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(model, broken)
    (broken / "sector_classifier" / "model.skops").unlink()
    result, out = predict(broken, SEED_TEXT, out=tmp_path / "pred.jsonl")
    assert_one_error_line(result, str(broken), "model.skops is missing")
    assert not out.exists()


def test_a_corpus_file_gives_the_progress_bar_its_total(tmp_path):
    from hoptac.train.predict import known_paragraph_total

    corpus = tmp_path / "c.jsonl"
    hoptac("corpus", "build", SEED_TEXT, "-o", corpus, check=True)
    assert known_paragraph_total([corpus]) == len(list(read_paragraphs([SEED_TEXT])))
    assert known_paragraph_total([SEED_TEXT]) is None  # articles: unknown before reading
