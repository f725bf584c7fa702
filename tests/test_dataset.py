"""Stage 3: `hoptac dataset build|stats` — exports → Hugging Face dataset, splits, alignment, card."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

import datasets
import pytest
import yaml
from conftest import GOLD_COUNTS, GOLD_EXPORT, SEED_ANNOTATIONS, hoptac
from hoptac.annotate.check import check_exports
from hoptac.train.align import bio_to_spans, spans_to_bio
from hoptac.train.dataset import (
    build_dataset,
    dataset_labels,
    examples_from_exports,
    load_split,
    split_rows,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_export_check import TEXT, annotation, broken, choices, span, task, write

from hoptac.errors import HoptacError
from hoptac.schema import load_schema

SCHEMA = load_schema()
SPLITS = ["train", "validation", "test"]
EXPECTED_FEATURES = ["id", "doc_id", "title", "text", "tokens", "token_starts", "token_ends", "ner_tags",
                     "spans", "sectors", "annotators"]


def alignment_rows(stdout: str) -> dict[str, tuple[int, ...]]:
    """label → (input, exact, expanded, dropped, kept) from the printed alignment table."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", line)
        if m:
            rows[m.group(1)] = tuple(int(x) for x in m.groups()[1:])
    return rows


def build_from(tmp_path_factory, name: str, exports) -> tuple:
    """``hoptac dataset build EXPORTS -o tmp/NAME/dataset``: the folder and what it printed."""
    out = tmp_path_factory.mktemp(name) / "dataset"
    result = hoptac("dataset", "build", exports, "-o", out)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


@pytest.fixture(scope="module")
def gold(tmp_path_factory):
    return build_from(tmp_path_factory, "gold", GOLD_EXPORT)


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    return build_from(tmp_path_factory, "seed", SEED_ANNOTATIONS)


# ---------------------------------------------------------------- the gold dataset

def test_gold_builds_with_article_grouped_splits(gold):
    out, stdout = gold
    expected = json.loads(GOLD_COUNTS.read_text(encoding="utf-8"))
    ds = datasets.load_from_disk(str(out))  # works with parquet/ and README.md in the folder
    assert isinstance(ds, datasets.DatasetDict) and list(ds) == SPLITS
    docs = {name: set(ds[name]["doc_id"]) for name in SPLITS}
    assert all(docs[a].isdisjoint(docs[b]) for a in SPLITS for b in SPLITS if a < b)
    assert len(set().union(*docs.values())) == expected["articles"]
    rows = sum(len(ds[name]) for name in SPLITS)
    # a task without a submitted annotation is left out: unannotated ones and the cancelled-only ones
    assert rows == expected["tasks"] - expected["unannotated_tasks"] - expected["cancelled"]
    assert f"rows: {rows} (+ {expected['tasks'] - rows} task(s) left out = {expected['tasks']})" in stdout
    ids = [i for name in SPLITS for i in ds[name]["id"]]
    assert len(ids) == len(set(ids))


def test_gold_entity_counts_are_primary_counts_minus_dropped(gold):
    out, stdout = gold
    expected = json.loads(GOLD_COUNTS.read_text(encoding="utf-8"))
    ds = datasets.load_from_disk(str(out))
    found = Counter(s["label"] for name in SPLITS for row in ds[name]["spans"] for s in row)
    table = alignment_rows(stdout)
    for label, primary in expected["entities_primary"].items():
        given_, exact, expanded, dropped, kept = table[label]
        assert given_ == primary
        assert exact + expanded + dropped == primary
        assert found[label] == primary - dropped == kept
    sectors = ds["train"].features["sectors"].feature.names
    found_sectors = Counter(sectors[k] for name in SPLITS for row in ds[name]["sectors"] for k in row)
    assert dict(found_sectors) == {k: v for k, v in expected["sectors_primary"].items() if v}


def test_gold_features_are_explicit_and_consistent(gold):
    out, _ = gold
    train = load_split(out, "train")
    features = train.features
    assert list(features) == EXPECTED_FEATURES
    assert features["ner_tags"].feature.names == SCHEMA.bio_tags
    assert features["sectors"].feature.names == SCHEMA.sector_names
    assert features["token_starts"].feature.dtype == "int32" and features["annotators"].feature.dtype == "int32"
    assert dataset_labels(out) == (SCHEMA.entity_names, SCHEMA.sector_names)
    row = next(r for r in train if r["spans"])
    assert isinstance(row["spans"], list) and isinstance(row["spans"][0], dict)
    assert set(row["spans"][0]) == {"start", "end", "label", "text"}
    names = features["ner_tags"].feature.names
    for row in train:
        assert [row["text"][a:b] for a, b in zip(row["token_starts"], row["token_ends"])] == row["tokens"]
        tags = [names[t] for t in row["ner_tags"]]
        from_tags = [(row["token_starts"][a], row["token_ends"][b - 1], label) for a, b, label in bio_to_spans(tags)]
        assert from_tags == [(s["start"], s["end"], s["label"]) for s in row["spans"]]
        assert all(row["text"][s["start"]:s["end"]] == s["text"] for s in row["spans"])
        assert row["annotators"]


def test_gold_card_and_parquet(gold):
    out, _ = gold
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    header = yaml.safe_load(card.split("---\n")[1])
    ds = datasets.load_from_disk(str(out))
    sizes = {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}
    assert sizes == {name: len(ds[name]) for name in SPLITS}
    assert [f["name"] for f in header["dataset_info"]["features"]] == EXPECTED_FEATURES
    for item in header["configs"][0]["data_files"]:
        table = datasets.Dataset.from_parquet(str(out / item["path"]))
        assert len(table) == len(ds[item["split"]])
    digest = hashlib.sha256(GOLD_EXPORT.read_bytes()).hexdigest()
    assert digest in card and GOLD_EXPORT.name in card
    assert "grouped by article" in card and "ground-truth" in card
    assert "| LOCALITY |" in card  # the alignment table


def test_stats_table_counts_from_the_folder(gold):
    out, _ = gold
    result = hoptac("dataset", "stats", out)
    assert result.returncode == 0, result.stderr
    ds = datasets.load_from_disk(str(out))
    line = next(l for l in result.stdout.splitlines() if l.startswith("paragraphs"))
    assert [int(x) for x in line.split()[1:]] == [len(ds[n]) for n in SPLITS] + [sum(len(ds[n]) for n in SPLITS)]


# ---------------------------------------------------------------- the seed: one article

def test_seed_builds_with_paragraph_fallback_stated(seed):
    out, stdout = seed
    ds = datasets.load_from_disk(str(out))
    report = check_exports([SEED_ANNOTATIONS], SCHEMA)
    assert sum(len(ds[n]) for n in SPLITS) == report.tasks
    assert all(len(ds[n]) > 0 for n in SPLITS)
    assert "paragraph-level (fallback)" in stdout and "only 1 article" in stdout
    assert "paragraph-level (fallback)" in (out / "README.md").read_text(encoding="utf-8")


def test_same_seed_same_splits_and_rebuild_replaces_the_folder(seed, tmp_path):
    out, _ = seed
    again = tmp_path / "again"
    for _ in range(2):  # the second build replaces the first
        build_dataset([SEED_ANNOTATIONS], again)
    first, second = datasets.load_from_disk(str(out)), datasets.load_from_disk(str(again))
    assert all(first[n]["id"] == second[n]["id"] for n in SPLITS)


def test_build_refuses_exports_with_errors(tmp_path):
    path = write(tmp_path, broken("overlap"))
    result = hoptac("dataset", "build", path, "-o", tmp_path / "out")
    assert result.returncode == 2
    err = result.stderr.strip()
    assert "\n" not in err and "overlapping spans" in err and "hoptac annotate check" in err
    assert not (tmp_path / "out").exists()


def test_build_refuses_to_overwrite_a_foreign_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = hoptac("dataset", "build", SEED_ANNOTATIONS, "-o", out)
    assert result.returncode == 2 and "hoptac did not write it" in result.stderr
    assert (out / "notes.txt").read_text() == "keep me"


def test_not_a_dataset_folder_is_a_clear_error(tmp_path):
    result = hoptac("dataset", "stats", tmp_path)
    assert result.returncode == 2 and "not a dataset folder" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and str(tmp_path) in result.stderr


def test_missing_split_is_named(seed):
    out, _ = seed
    with pytest.raises(HoptacError, match="no split 'dev'"):
        load_split(out, "dev")


# ---------------------------------------------------------------- rows, policy, splits

def test_left_out_tasks_are_counted_by_reason_and_empty_annotations_stay(tmp_path):
    tasks = [task(1, TEXT, [annotation([span(TEXT, "Hà Nội", "LOCALITY")])]),
             task(2, TEXT, [annotation([], id=2)]),  # submitted, empty: a real "nothing here"
             task(3, TEXT, [annotation([], id=3, cancelled=True)]),
             task(4, TEXT, [])]
    rows, report = examples_from_exports([write(tmp_path, tasks)])
    assert [r["id"] for r in rows] == ["doc-a:1", "doc-a:2"]
    assert rows[1]["spans"] == [] and set(rows[1]["ner_tags"]) <= {0}
    assert report.left_out == {"only cancelled annotations": 1, "no annotation": 1}
    assert report.tasks == len(rows) + sum(report.left_out.values())


def test_majority_sectors_policy_reaches_the_dataset(tmp_path):
    tasks = [task(1, TEXT, [annotation([choices("TOURISM")], id=1, user=1, ground_truth=True),
                            annotation([choices("HEALTH")], id=2, user=2)])]
    path = write(tmp_path, tasks)
    names = SCHEMA.sector_names
    [row], _ = examples_from_exports([path], "ground-truth")
    assert [names[k] for k in row["sectors"]] == ["TOURISM"] and row["annotators"] == [1]
    [row], _ = examples_from_exports([path], "ground-truth+majority-sectors")
    assert {names[k] for k in row["sectors"]} == {"TOURISM", "HEALTH"} and row["annotators"] == [1, 2]


def test_split_rows_groups_articles_and_is_deterministic():
    rows = [{"id": f"d{d}:{p}", "doc_id": f"d{d}", "spans": [], "sectors": []}
            for d in range(20) for p in range(d % 4 + 1)]
    plan = split_rows(rows, dev=0.1, test=0.2, seed=3)
    assert plan.grouped
    docs = {n: {r["doc_id"] for r in plan.splits[n]} for n in SPLITS}
    assert sum(len(v) for v in docs.values()) == 20 and len(set().union(*docs.values())) == 20
    assert (len(docs["validation"]), len(docs["test"])) == (2, 4)
    again = split_rows(rows, dev=0.1, test=0.2, seed=3)
    assert all([r["id"] for r in plan.splits[n]] == [r["id"] for r in again.splits[n]] for n in SPLITS)
    with pytest.raises(HoptacError):
        split_rows(rows, dev=0.5, test=0.5, seed=0)


# ---------------------------------------------------------------- properties

@st.composite
def token_spans(draw):
    n = draw(st.integers(0, 30))
    cuts = sorted(draw(st.sets(st.integers(0, n), max_size=12)))
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        if draw(st.booleans()):
            spans.append((a, b, draw(st.sampled_from(SCHEMA.entity_names))))
    return n, spans


@given(token_spans())
def test_spans_to_bio_to_spans_is_identity(case):
    n, spans = case
    tags = spans_to_bio(n, spans)
    assert len(tags) == n
    assert bio_to_spans(tags) == spans


WORDS = ["Hà", "Nội", "và", "thành", "phố", "Hải", "Phòng", "hợp", "tác", "du", "lịch", "10.900", "tỷ", "đồng",
         ",", ".", "ông", "Nguyễn", "Văn", "A", "TP.", "HCM", "nông", "nghiệp", "-", "15%"]


@st.composite
def annotated_paragraph(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=25))
    text = " ".join(words)
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=10)))
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        if text[a:b].strip() and draw(st.booleans()):
            spans.append((a, b, draw(st.sampled_from(SCHEMA.entity_names))))
    return text, spans


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(annotated_paragraph(), min_size=1, max_size=4))
def test_export_to_rows_accounts_for_every_span(paragraphs):
    tasks = []
    for k, (text, spans) in enumerate(paragraphs):
        result = [{"type": "labels", "from_name": "ner", "to_name": "text",
                   "value": {"start": a, "end": b, "text": text[a:b], "labels": [label]}} for a, b, label in spans]
        tasks.append(task(k + 1, text, [annotation(result, id=k + 1)]))
    with tempfile.TemporaryDirectory() as tmp:
        rows, report = examples_from_exports([write(Path(tmp), tasks)])
    given_ = Counter(label for _, spans in paragraphs for _, _, label in spans)
    kept = Counter(s["label"] for row in rows for s in row["spans"])
    names = report.bio_tags
    for label in SCHEMA.entity_names:
        entry = report.alignment.labels[label]
        assert entry.exact + entry.expanded + sum(entry.dropped.values()) == given_[label]
        assert entry.kept == kept[label]
    for row in rows:
        tags = [names[t] for t in row["ner_tags"]]
        assert [(row["token_starts"][a], row["token_ends"][b - 1], lab) for a, b, lab in bio_to_spans(tags)] == \
               [(s["start"], s["end"], s["label"]) for s in row["spans"]]


# ---------------------------------------------------------------- hostile input

def nfd_export(tasks: list[dict]) -> list[dict]:
    """The tasks with their text, title and span texts decomposed (NFD), offsets into the NFD text."""
    out = copy.deepcopy(tasks)
    for t in out:
        text = t["data"]["text"]
        to_nfd = [0]
        for c in text:
            to_nfd.append(to_nfd[-1] + len(unicodedata.normalize("NFD", c)))
        t["data"]["text"] = unicodedata.normalize("NFD", text)
        t["data"]["title"] = unicodedata.normalize("NFD", t["data"]["title"])
        for a in t["annotations"]:
            for r in a["result"]:
                if r["type"] == "labels":
                    v = r["value"]
                    v.update(start=to_nfd[v["start"]], end=to_nfd[v["end"]], text=unicodedata.normalize("NFD", v["text"]))
    return out


def test_nfd_export_builds_the_same_rows_as_nfc(tmp_path):
    tasks = json.loads(GOLD_EXPORT.read_text(encoding="utf-8"))[:60]
    nfd = nfd_export(tasks)
    assert nfd[0]["data"]["text"] != tasks[0]["data"]["text"]
    rows, report = examples_from_exports([write(tmp_path, tasks, "nfc.json")])
    nfd_rows, nfd_report = examples_from_exports([write(tmp_path, nfd, "nfd.json")])
    assert report.normalised == 0 and nfd_report.normalised == len(tasks)
    assert nfd_rows == rows  # text, title, tokens, offsets, tags and span texts alike
    assert any(r["spans"] for r in rows)


def test_export_without_doc_ids_is_grouped_by_title_with_a_warning(tmp_path):
    tasks = json.loads(GOLD_EXPORT.read_text(encoding="utf-8"))
    for t in tasks:
        del t["data"]["doc_id"], t["data"]["para_id"]
    titles = {t["data"]["title"] for t in tasks}
    out = tmp_path / "ds"
    result = hoptac("dataset", "build", write(tmp_path, tasks, "no-ids.json"), "-o", out)
    assert result.returncode == 0, result.stderr
    ds = datasets.load_from_disk(str(out))
    in_split = {name: set(ds[name]["title"]) for name in SPLITS}
    assert all(in_split[a].isdisjoint(in_split[b]) for a in SPLITS for b in SPLITS if a < b)
    assert set().union(*in_split.values()) == titles and len(titles) == 32
    rows = sum(len(ds[name]) for name in SPLITS)
    warning = f"{rows} row(s) have no data.doc_id and no doc_id:index para_id: grouped into articles by data.title"
    assert f"warning: {warning}" in result.stdout
    assert warning in (out / "README.md").read_text(encoding="utf-8")
    check = hoptac("annotate", "check", tmp_path / "no-ids.json")
    assert "warning: 705 task(s) have no data.doc_id" in check.stdout
    assert re.search(r"^articles\s+32$", check.stdout, re.M)


def test_export_without_doc_ids_or_titles_is_refused(tmp_path):
    tasks = json.loads(GOLD_EXPORT.read_text(encoding="utf-8"))[:50]
    for t in tasks:
        del t["data"]["doc_id"], t["data"]["para_id"], t["data"]["title"]
    out = tmp_path / "ds"
    result = hoptac("dataset", "build", write(tmp_path, tasks, "bare.json"), "-o", out)
    assert result.returncode == 2
    err = result.stderr.strip()
    assert "\n" not in err and "bare.json: task" in err and "cannot be grouped by article" in err
    assert not out.exists()


def test_two_identical_pulls_build_like_one(tmp_path):
    tasks = json.loads(GOLD_EXPORT.read_text(encoding="utf-8"))[:120]
    folder = tmp_path / "exports"
    folder.mkdir()
    write(folder, tasks, "pull-1.json")
    write(folder, tasks, "pull-2.json")
    check = hoptac("annotate", "check", folder)
    assert check.returncode == 0, check.stderr
    assert "note: 120 duplicate task(s)" in check.stdout
    rows, report = examples_from_exports([folder])
    single, _ = examples_from_exports([folder / "pull-1.json"])
    assert rows == single and report.tasks == 120
    assert [n for _, _, n in report.files] == [120, 120]
    result = hoptac("dataset", "build", folder, "-o", tmp_path / "ds")
    assert result.returncode == 0, result.stderr
    assert "note: 120 duplicate task(s) (same Label Studio task id in several exports)" in result.stdout
    assert "120 duplicate task(s)" in (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")


def test_pulls_that_differ_on_a_task_are_refused_with_a_hint(tmp_path):
    tasks = json.loads(GOLD_EXPORT.read_text(encoding="utf-8"))[:40]
    later = copy.deepcopy(tasks)
    later[3]["annotations"][0]["result"] = []  # an annotator cleared it between the pulls
    folder = tmp_path / "exports"
    folder.mkdir()
    write(folder, tasks, "pull-1.json")
    write(folder, later, "pull-2.json")
    result = hoptac("dataset", "build", folder, "-o", tmp_path / "ds")
    assert result.returncode == 2
    err = result.stderr.strip()
    assert "\n" not in err and "1 error(s)" in err
    assert f"pull-2.json: task {tasks[3]['id']}" in err and "is also in" in err and "only the latest pull" in err
    assert not (tmp_path / "ds").exists()
