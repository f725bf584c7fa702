"""Stage 2: `hoptac annotate agreement` — span F1 per label, Cohen's kappa per sector, disputed tasks."""

from __future__ import annotations

import json
import re

from conftest import GOLD_COUNTS, GOLD_EXPORT, hoptac
from hoptac.annotate.agreement import compare, disagreement_counts
from hoptac.annotate.export import load_exports
from sklearn.metrics import cohen_kappa_score
from test_export_check import TEXT, annotation, choices, span, task, write

from hoptac.schema import load_schema

SCHEMA = load_schema()
LOC, OFF, FIELD = "LOCALITY", "OFFICIAL", "FIELD"
SECTOR_ANSWERS = [  # per task: (annotator 1's sectors, annotator 2's sectors)
    (["TOURISM"], ["TOURISM"]),
    (["TOURISM", "TRANSPORT"], ["TRANSPORT"]),
    ([], ["TOURISM"]),
    (["TRANSPORT"], ["TRANSPORT"]),
]


def double_annotated_export(tmp_path):
    first = [span(TEXT, "Hà Nội", LOC), span(TEXT, "Hải Phòng", LOC), span(TEXT, "du lịch", FIELD)]
    second = [span(TEXT, "Hà Nội", LOC), span(TEXT, "hợp tác du lịch", FIELD)]
    tasks = []
    for k, (a, b) in enumerate(SECTOR_ANSWERS):
        spans_a, spans_b = (first, second) if k == 0 else ([], [])
        tasks.append(task(k + 1, TEXT, [annotation(spans_a + [choices(*a)], id=10 * k + 1, user=1, ground_truth=True),
                                        annotation(spans_b + [choices(*b)], id=10 * k + 2, user=2)]))
    tasks.append(task(9, TEXT, [annotation([span(TEXT, "Hà Nội", LOC)], id=99)]))  # single: not compared
    tasks.append(task(10, TEXT, [annotation([span(TEXT, "Hà Nội", LOC)], id=100),
                                 annotation([], id=101, cancelled=True)]))  # cancelled: not compared
    return write(tmp_path, tasks)


def test_span_f1_and_kappa_follow_their_definitions(tmp_path):
    result = compare(load_exports([double_annotated_export(tmp_path)]), SCHEMA)
    assert result.tasks == len(SECTOR_ANSWERS) and result.pairs == len(SECTOR_ANSWERS)
    loc, field = result.labels[LOC], result.labels[FIELD]
    # LOCALITY: A has 2, B has 1, 1 identical → 2·1/3; FIELD: boundaries differ → exact 0, overlap 1
    assert (loc.a, loc.b, loc.exact) == (2, 1, 1) and abs(loc.f1(loc.exact) - 2 / 3) < 1e-9
    assert field.f1(field.exact) == 0 and field.f1(field.overlap) == 1
    assert result.labels[OFF].f1(0) is None  # no OFFICIAL anywhere: undefined, not 0
    for sector in ("TOURISM", "TRANSPORT"):
        left = [int(sector in a) for a, _ in SECTOR_ANSWERS]
        right = [int(sector in b) for _, b in SECTOR_ANSWERS]
        assert abs(result.kappa(sector) - cohen_kappa_score(left, right)) < 1e-9
    assert result.kappa("HEALTH") is None  # nobody chose it
    disputed = disagreement_counts(result)
    assert disputed["doc-a:1"] == 3  # Hải Phòng, two FIELD boundaries
    assert disputed["doc-a:2"] == 1 and disputed["doc-a:4"] == 0


def test_cli_report_lists_top_disputed_tasks(tmp_path):
    result = hoptac("annotate", "agreement", double_annotated_export(tmp_path), "--top", "2")
    assert result.returncode == 0, result.stderr
    assert "over 4 task(s)" in result.stdout
    listed = re.findall(r"^\s+(doc-a:\d+): (\d+) span\(s\), (\d+) sector\(s\) differ", result.stdout, re.M)
    assert [p for p, _, _ in listed] == ["doc-a:1", "doc-a:2"]


def test_gold_agreement_runs_on_the_double_annotated_tasks():
    expected = json.loads(GOLD_COUNTS.read_text(encoding="utf-8"))
    result = compare(load_exports([GOLD_EXPORT]), SCHEMA)
    assert result.tasks == expected["double_annotated_tasks"]
    totals = [d.total for d in result.disputed]
    assert totals == sorted(totals, reverse=True)
    micro = result.micro()
    assert 0 <= micro.f1(micro.exact) <= micro.f1(micro.overlap) <= 1
    out = hoptac("annotate", "agreement", GOLD_EXPORT, "--top", "5")
    assert out.returncode == 0, out.stderr
    assert f"over {expected['double_annotated_tasks']} task(s)" in out.stdout
    assert len(re.findall(r"sector\(s\) differ", out.stdout)) == 5


def test_nothing_to_compare_is_said(tmp_path):
    path = write(tmp_path, [task(1, TEXT, [annotation([])])])
    result = hoptac("annotate", "agreement", path)
    assert result.returncode == 0 and "nothing to compare" in result.stdout


def two_pulls(tmp_path, first: list, second: list):
    folder = tmp_path / "exports"
    folder.mkdir()
    write(folder, first, "project-at-10h.json")
    write(folder, second, "project-at-11h.json")
    return folder


def test_two_pulls_of_the_same_project_count_each_pair_once(tmp_path):
    expected = json.loads(GOLD_COUNTS.read_text(encoding="utf-8"))
    gold = json.loads(GOLD_EXPORT.read_text(encoding="utf-8"))
    result = hoptac("annotate", "agreement", two_pulls(tmp_path, gold, gold), "--top", "0")
    assert result.returncode == 0, result.stderr
    pairs = expected["double_annotated_tasks"]  # 95: one pair per double-annotated task
    assert f"over {pairs} task(s) with ≥2 submitted annotations ({pairs} pair(s)" in result.stdout
    assert (f"note: {expected['tasks']} duplicate task(s) (same Label Studio task id in several exports) and "
            f"{expected['annotations']} duplicate annotation(s) in them were read once") in result.stdout
    single = hoptac("annotate", "agreement", GOLD_EXPORT, "--top", "0")
    assert result.stdout.split("\n\nnote:")[0] == single.stdout.strip()


def test_a_later_pull_with_a_second_annotation_is_merged_by_annotation_id(tmp_path):
    first = [task(1, TEXT, [annotation([span(TEXT, "Hà Nội", LOC)], id=11, user=1)])]
    second = [task(1, TEXT, [annotation([span(TEXT, "Hà Nội", LOC)], id=11, user=1),
                             annotation([span(TEXT, "Hải Phòng", LOC)], id=12, user=2)])]
    result = hoptac("annotate", "agreement", two_pulls(tmp_path, first, second))
    assert result.returncode == 0, result.stderr
    assert "over 1 task(s) with ≥2 submitted annotations (1 pair(s), annotators [1, 2])" in result.stdout
    assert "1 duplicate task(s)" in result.stdout and "1 duplicate annotation(s)" in result.stdout
