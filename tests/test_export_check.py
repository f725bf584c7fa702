"""Stage 2 → 3: reading Label Studio exports, `hoptac annotate check`, and the merge policy."""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from pathlib import Path

import pytest
from conftest import GOLD_COUNTS, GOLD_EXPORT, SEED_ANNOTATIONS, SEED_TEXT, hoptac
from hoptac.annotate.check import CATEGORIES, check_exports
from hoptac.annotate.export import load_exports
from hoptac.annotate.merge import (
    GROUND_TRUTH,
    MAJORITY_SECTORS,
    chosen_annotators,
    primary_annotation,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoptac.schema import load_schema

SCHEMA = load_schema()
LOC, OFF = "LOCALITY", "OFFICIAL"  # tests may name labels
TEXT = "Lãnh đạo thành phố Hà Nội và thành phố Hải Phòng ký kết hợp tác du lịch."


def span(text: str, piece: str, label: str, occurrence: int = 0, from_name: str = "ner") -> dict:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return {"from_name": from_name, "to_name": "text", "type": "labels",
            "value": {"start": start, "end": start + len(piece), "text": piece, "labels": [label]}}


def choices(*names: str, from_name: str = "sectors") -> dict:
    return {"from_name": from_name, "to_name": "text", "type": "choices", "value": {"choices": list(names)}}


def annotation(result: list, id: int = 1, user: int = 1, ground_truth: bool = False, cancelled: bool = False,
               updated: str = "2026-01-01T10:00:00Z", created: str = "2026-01-01T09:00:00Z") -> dict:
    return {"id": id, "completed_by": user, "result": result, "was_cancelled": cancelled,
            "ground_truth": ground_truth, "created_at": created, "updated_at": updated}


def task(id: int, text: str, annotations: list, para: str | None = None) -> dict:
    para = para or f"doc-a:{id}"
    return {"id": id, "data": {"text": text, "title": "Tiêu đề", "doc_id": para.split(":")[0], "para_id": para},
            "annotations": annotations}


def valid_export() -> list[dict]:
    return [
        task(1, TEXT, [annotation([span(TEXT, "Hà Nội", LOC), span(TEXT, "Hải Phòng", LOC),
                                   span(TEXT, "du lịch", "FIELD"), choices("TOURISM")])]),
        task(2, "Ông Nguyễn Văn A phát biểu.", [annotation([span("Ông Nguyễn Văn A phát biểu.", "Nguyễn Văn A", OFF)], id=2)]),
    ]


def write(tmp_path: Path, tasks, name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return path


def table_numbers(stdout: str) -> dict[str, list[int]]:
    """Rows of the check table: first words → the numbers at the end of the line."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^\s*(.*?)\s+(\d+)(?:\s+(\d+))?\s*$", line)
        if m:
            rows[m.group(1)] = [int(x) for x in m.groups()[1:] if x is not None]
    return rows


# ---------------------------------------------------------------- the gold export

def test_gold_counts_match_counts_json_exactly():
    expected = json.loads(GOLD_COUNTS.read_text(encoding="utf-8"))
    report = check_exports([GOLD_EXPORT], SCHEMA)
    assert report.errors == []
    counts = report.counts()
    for key, value in expected.items():
        assert counts[key] == value, key


def test_cli_check_prints_the_gold_counts():
    expected = json.loads(GOLD_COUNTS.read_text(encoding="utf-8"))
    result = hoptac("annotate", "check", GOLD_EXPORT)
    assert result.returncode == 0, result.stderr
    rows = table_numbers(result.stdout)
    assert rows["tasks (paragraphs)"] == [expected["tasks"]]
    assert rows["articles"] == [expected["articles"]]
    assert rows["annotations, all"] == [expected["annotations"]]
    assert rows["cancelled annotations"] == [expected["cancelled"]]
    assert rows["tasks without annotation"] == [expected["unannotated_tasks"]]
    assert rows["double-annotated tasks (≥2 submitted)"] == [expected["double_annotated_tasks"]]
    assert rows["paragraphs with ≥1 sector (primary)"] == [expected["paragraphs_with_sectors_primary"]]
    for label, primary in expected["entities_primary"].items():
        assert rows[label] == [primary, expected["entities_all_annotations"][label]]
    for sector, n in expected["sectors_primary"].items():
        assert rows[sector] == [n]
    assert rows["errors"] == [0]


def test_seed_annotations_pass_and_cover_every_paragraph():
    paragraphs = [line for line in SEED_TEXT.read_text(encoding="utf-8").split("\n") if line.strip()]
    result = hoptac("annotate", "check", SEED_ANNOTATIONS)
    assert result.returncode == 0, result.stderr
    report = check_exports([SEED_ANNOTATIONS], SCHEMA)
    assert report.errors == []
    assert report.tasks == len(paragraphs) and len(report.articles) == 1
    assert report.counts()["entities_primary"] == report.counts()["entities_all_annotations"]
    assert sum(report.entities_primary.values()) > 0


# ---------------------------------------------------------------- reading

def test_results_are_keyed_on_type_not_from_name(tmp_path):
    tasks = [task(1, TEXT, [annotation([span(TEXT, "Hà Nội", LOC, from_name="entities"),
                                        choices("TOURISM", from_name="topic"),
                                        {"from_name": "note", "to_name": "text", "type": "textarea",
                                         "value": {"text": ["x"]}}])])]
    [loaded] = load_exports([write(tmp_path, tasks)])
    [ann] = loaded.annotations
    assert [(s.label, s.text) for s in ann.spans] == [(LOC, "Hà Nội")]
    assert ann.sectors == ("TOURISM",)
    assert loaded.ignored_results == {"textarea": 1}
    assert loaded.source.endswith("export.json#0")


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"id": 1,\n   "data": {"text": "x"} oops}\n]', encoding="utf-8")
    result = hoptac("annotate", "check", path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"{path}:3:" in result.stderr and "malformed JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_task_without_text_names_file_and_task(tmp_path):
    tasks = valid_export()
    tasks[1]["id"] = 4242
    del tasks[1]["data"]["text"]
    path = write(tmp_path, tasks)
    result = hoptac("annotate", "check", path)
    assert result.returncode == 2
    assert str(path) in result.stderr and "task 4242" in result.stderr and "data.text" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_valid_small_export_passes(tmp_path):
    path = write(tmp_path, valid_export())
    result = hoptac("annotate", "check", path)
    assert result.returncode == 0, result.stderr
    assert table_numbers(result.stdout)["errors"] == [0]


# ---------------------------------------------------------------- each error category

def broken(category: str) -> list[dict]:
    tasks = valid_export()
    result = tasks[0]["annotations"][0]["result"]
    if category == "text_mismatch":
        result[0]["value"]["text"] = "Hà Nam"
    elif category == "out_of_range":
        result[0]["value"].update(start=len(TEXT) - 2, end=len(TEXT) + 5, text="x")
    elif category == "unknown_label":
        result[0]["value"]["labels"] = ["PERSON"]
    elif category == "unknown_sector":
        result[-1]["value"]["choices"] = ["TOURISM", "SPACE_TRAVEL"]
    elif category == "overlap":
        result.append(span(TEXT, "thành phố Hà Nội", LOC))
    elif category == "duplicate_task":
        tasks.append(copy.deepcopy(tasks[0]) | {"id": 99})
    elif category == "empty_span":
        start = TEXT.index(" và ")
        result.append({"from_name": "ner", "to_name": "text", "type": "labels",
                       "value": {"start": start, "end": start + 1, "text": " ", "labels": [LOC]}})
    return tasks


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_each_error_category_is_detected(tmp_path, category):
    path = write(tmp_path, broken(category))
    report = check_exports([path], SCHEMA)
    counts = report.error_counts()
    assert counts[category] == 1, report.errors
    assert sum(counts.values()) == 1, report.errors
    [message] = report.errors
    assert str(path) in message and "\n" not in message
    task_id = 99 if category == "duplicate_task" else 1
    assert f"task {task_id} " in message


@pytest.mark.parametrize("category", ["text_mismatch", "overlap", "duplicate_task"])
def test_cli_check_fails_with_one_line_summary(tmp_path, category):
    path = write(tmp_path, broken(category))
    result = hoptac("annotate", "check", path)
    assert result.returncode == 2
    err = result.stderr.strip()
    assert err.startswith("hoptac: error:") and "\n" not in err
    assert CATEGORIES[category] in err and "export.json" in err
    assert table_numbers(result.stdout)[CATEGORIES[category]] == [1]  # the table is still printed


def test_counts_add_up_over_several_files(tmp_path):
    first = write(tmp_path, valid_export(), "a.json")
    other = [task(7, TEXT, [annotation([], id=7, cancelled=True)], para="doc-b:0"),
             task(8, TEXT, [], para="doc-b:1")]
    second = write(tmp_path, other, "b.json")
    report = check_exports([first, second], SCHEMA)
    assert report.errors == []
    assert report.tasks == 4 and len(report.articles) == 2
    assert report.cancelled == 1 and report.unannotated_tasks == 1 and report.unsubmitted_tasks == 2
    assert report.entities_primary[LOC] == 2 and report.entities_primary[OFF] == 1


# ---------------------------------------------------------------- merge policy

def loaded_task(tmp_path, annotations) -> object:
    [t] = load_exports([write(tmp_path, [task(1, TEXT, annotations)])])
    return t


def test_ground_truth_wins_over_a_more_recent_annotation(tmp_path):
    t = loaded_task(tmp_path, [
        annotation([choices("TOURISM")], id=1, user=1, ground_truth=True, updated="2026-01-01T10:00:00Z"),
        annotation([choices("TRANSPORT")], id=2, user=2, updated="2026-03-01T10:00:00Z"),
    ])
    assert primary_annotation(t).id == 1
    assert chosen_annotators(t) == [1]


def test_without_ground_truth_the_most_recent_wins_then_created_then_id(tmp_path):
    t = loaded_task(tmp_path, [
        annotation([], id=1, updated="2026-02-01T10:00:00Z"),
        annotation([], id=2, updated="2026-01-01T10:00:00Z"),
        annotation([], id=3, updated="2026-03-01T10:00:00Z", cancelled=True),
    ])
    assert primary_annotation(t).id == 1  # the cancelled one is never chosen
    t = loaded_task(tmp_path, [
        annotation([], id=5, created="2026-01-02T00:00:00Z"),
        annotation([], id=4, created="2026-01-03T00:00:00Z"),
    ])
    assert primary_annotation(t).id == 4
    t = loaded_task(tmp_path, [annotation([], id=8), annotation([], id=9)])
    assert primary_annotation(t).id == 9


def test_no_submitted_annotation_gives_none(tmp_path):
    assert primary_annotation(loaded_task(tmp_path, [annotation([], cancelled=True)])) is None
    assert primary_annotation(loaded_task(tmp_path, [])) is None


def test_majority_sectors_keeps_spans_and_votes_sectors(tmp_path):
    gt_spans = [span(TEXT, "Hà Nội", LOC)]
    t = loaded_task(tmp_path, [
        annotation(gt_spans + [choices("TOURISM", "HEALTH")], id=1, user=1, ground_truth=True),
        annotation([choices("TOURISM", "TRANSPORT")], id=2, user=2),
        annotation([choices("TRANSPORT")], id=3, user=3),
    ])
    merged = primary_annotation(t, MAJORITY_SECTORS)
    assert [s.text for s in merged.spans] == ["Hà Nội"]
    assert set(merged.sectors) == {"TOURISM", "TRANSPORT"}  # 2 of 3 each; HEALTH 1 of 3
    assert set(primary_annotation(t, GROUND_TRUTH).sectors) == {"TOURISM", "HEALTH"}
    assert chosen_annotators(t, MAJORITY_SECTORS) == [1, 2, 3]
    # two annotators: a tie (1 of 2) is kept
    t = loaded_task(tmp_path, [annotation([choices("TOURISM")], id=1, user=1, ground_truth=True),
                               annotation([choices("HEALTH")], id=2, user=2)])
    assert set(primary_annotation(t, MAJORITY_SECTORS).sectors) == {"TOURISM", "HEALTH"}


def test_unknown_policy_is_an_error(tmp_path):
    from hoptac.errors import HoptacError

    with pytest.raises(HoptacError, match="merge policy"):
        primary_annotation(loaded_task(tmp_path, []), "newest")


# ---------------------------------------------------------------- normalisation (NFD exports)

VI_WORDS = ["Đắk", "Nông", "Hà", "Nội", "Bắc", "Ninh", "Thừa", "Thiên", "Huế", "hợp", "tác", "đầu", "tư",
            "Nguyễn", "Thị", "Ánh", "Tuyết", "kỹ", "thuật", "Quảng", "Ngãi", "ở", "ưu", "đãi", "12,5", "tỷ"]


def nfd_offsets(text: str) -> list[int]:
    """Offset in NFD(text) of every offset of the NFC ``text``."""
    offsets = [0]
    for c in text:
        offsets.append(offsets[-1] + len(unicodedata.normalize("NFD", c)))
    return offsets


@st.composite
def text_with_spans(draw):
    """A Vietnamese text (NFC) and non-overlapping labelled spans on word boundaries."""
    words = draw(st.lists(st.sampled_from(VI_WORDS), min_size=1, max_size=14))
    text = " ".join(words)
    starts = [0]
    for w in words[:-1]:
        starts.append(starts[-1] + len(w) + 1)
    spans, k = [], 0
    while k < len(words):
        length = draw(st.integers(0, 3))
        if length and k + length <= len(words):
            spans.append((starts[k], starts[k + length - 1] + len(words[k + length - 1]),
                          draw(st.sampled_from([LOC, OFF, "FIELD"]))))
        k += max(length, 1)
    return text, spans


def export_of(text: str, spans: list[tuple[int, int, str]], title: str = "Tiêu đề") -> list[dict]:
    result = [{"from_name": "ner", "to_name": "text", "type": "labels",
               "value": {"start": s, "end": e, "text": text[s:e], "labels": [label]}} for s, e, label in spans]
    return [{"id": 1, "data": {"text": text, "title": title, "doc_id": "d", "para_id": "d:0"},
             "annotations": [annotation(result)]}]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text_with_spans())
def test_nfd_export_loads_as_its_nfc_original(tmp_path, case):
    text, spans = case
    nfd = unicodedata.normalize("NFD", text)
    to_nfd = nfd_offsets(text)
    nfd_spans = [(to_nfd[s], to_nfd[e], label) for s, e, label in spans]
    assert all(nfd[s:e] == unicodedata.normalize("NFD", text[a:b]) for (s, e, _), (a, b, _) in zip(nfd_spans, spans))
    [loaded] = load_exports([write(tmp_path, export_of(nfd, nfd_spans, unicodedata.normalize("NFD", "Tiêu đề")))])
    [original] = load_exports([write(tmp_path, export_of(text, spans), "nfc.json")])
    assert loaded.text == text and loaded.title == "Tiêu đề"
    assert loaded.annotations[0].spans == original.annotations[0].spans
    assert [(s.start, s.end, s.label, s.text) for s in loaded.annotations[0].spans] == \
        [(s, e, label, text[s:e]) for s, e, label in spans]
    assert loaded.normalised == (nfd != text) and not original.normalised
    assert check_exports([tmp_path / "export.json"], SCHEMA).errors == []


def test_cli_check_of_an_nfd_export_says_it_normalised(tmp_path):
    tasks = valid_export()
    for t in tasks:
        t["data"]["text"] = unicodedata.normalize("NFD", t["data"]["text"])
        for r in t["annotations"][0]["result"]:
            if r["type"] == "labels":  # offsets into the NFD text
                nfc_text = unicodedata.normalize("NFC", t["data"]["text"])
                to_nfd = nfd_offsets(nfc_text)
                r["value"].update(start=to_nfd[r["value"]["start"]], end=to_nfd[r["value"]["end"]],
                                  text=unicodedata.normalize("NFD", r["value"]["text"]))
    result = hoptac("annotate", "check", write(tmp_path, tasks))
    assert result.returncode == 0, result.stderr
    assert table_numbers(result.stdout)["errors"] == [0]
    assert "note: 2 task text(s) normalised" in result.stdout


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text_with_spans(), st.data())
def test_invisible_characters_in_an_export_are_removed_with_offsets_remapped(tmp_path, case, data):
    text, spans = case
    inserts = sorted(data.draw(st.lists(st.tuples(st.integers(0, len(text)), st.sampled_from("\u200b\u00ad\u200c\u200d\ufeff\u2060\x07")),
                                        max_size=6)), reverse=True)
    raw, raw_spans = text, list(spans)
    for at, c in inserts:  # right to left, so earlier positions stay valid
        raw = raw[:at] + c + raw[at:]
        raw_spans = [(s + (s > at), e + (e > at), label) for s, e, label in raw_spans]
    [loaded] = load_exports([write(tmp_path, export_of(raw, raw_spans))])
    assert loaded.text == text
    assert [(s.start, s.end, s.label, s.text) for s in loaded.annotations[0].spans] == \
        [(s, e, label, text[s:e]) for s, e, label in spans]
    assert check_exports([tmp_path / "export.json"], SCHEMA).errors == []


def test_zero_width_space_and_soft_hyphen_in_an_export(tmp_path):
    raw = "Tỉnh Bắc\u00adNinh và L\u200biên hợp quốc\u2028hợp tác"
    spans = [(raw.index("Bắc"), raw.index(" và"), LOC), (raw.index("L\u200b"), raw.index("\u2028"), LOC),
             (raw.index("hợp tác"), len(raw), "FIELD")]
    [loaded] = load_exports([write(tmp_path, export_of(raw, spans))])
    assert loaded.text == "Tỉnh BắcNinh và Liên hợp quốc hợp tác"
    assert [s.text for s in loaded.annotations[0].spans] == ["BắcNinh", "Liên hợp quốc", "hợp tác"]
    assert check_exports([tmp_path / "export.json"], SCHEMA).errors == []


# ---------------------------------------------------------------- hostile size

def test_ten_thousand_identical_spans_check_in_linear_time_and_memory(tmp_path):
    import time
    import tracemalloc

    from hoptac.annotate.check import MAX_PER_TASK

    n = 10_000
    hanoi = span(TEXT, "Hà Nội", LOC)
    tasks = [task(1, TEXT, [annotation([hanoi] * n)]), task(2, TEXT, [annotation([hanoi, hanoi], id=2)])]
    path = write(tmp_path, tasks)
    began = time.perf_counter()
    tracemalloc.start()
    try:
        report = check_exports([path], SCHEMA)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    seconds = time.perf_counter() - began
    # every span after the first overlaps an earlier one: counted, n - 1 (+ 1 in task 2), not n·(n-1)/2 pairs
    assert report.error_counts()["overlap"] == n - 1 + 1 and report.error_total == n
    task_one = [m for m in report.errors if "task 1 " in m]
    assert len(task_one) == MAX_PER_TASK + 1 and task_one[-1].endswith(f"… and {n - 1 - MAX_PER_TASK} more error(s) in this task")
    assert [m for m in report.errors if "task 2 " in m] == [report.errors[-1]]  # the next task is still listed
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert seconds < 20, f"{seconds:.1f}s"
    summary = report.error_summary()
    assert f": {n} error(s) ({n} overlapping spans" in summary and "\n" not in summary


def test_check_of_a_file_with_no_annotation_fails_unless_allowed(seed_corpus, tmp_path):
    """An import file (tasks.json) is not an export: check says no task is annotated, exit non-zero."""
    tasks = tmp_path / "tasks.json"
    hoptac("annotate", "export", seed_corpus, "-o", tasks, check=True)
    result = hoptac("annotate", "check", tasks)
    assert result.returncode == 2 and "none of the" in result.stderr and "--allow-empty" in result.stderr
    assert result.stderr.count("\n") == 1
    assert hoptac("annotate", "check", tasks, "--allow-empty").returncode == 0
