"""``hoptac evaluate``: metrics.json shape and ranges, report.md, charts, the rules baseline scored by the
same code; the scoring functions on hand-made spans; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SEED_ANNOTATIONS, hoptac
from hoptac.train.evaluate import bootstrap_f1, prf, score_ner, score_sectors

SEED_EXPORT = SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json"
PRF = {"precision", "recall", "f1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    hoptac("dataset", "build", SEED_EXPORT, "-o", root / "ds", check=True)
    hoptac("train", root / "ds", "-o", root / "model", "--set", "training.max_steps=30",
           "--set", "training.eval_frequency=10", check=True)
    return root / "ds", root / "model"


@pytest.fixture(scope="module")
def report(trained, tmp_path_factory) -> Path:
    ds, model = trained
    out = tmp_path_factory.mktemp("report")
    # the seed is one article, split by paragraph: its test paragraphs share it with training
    result = hoptac("evaluate", model, ds, "-o", out, "--baseline", "rules", "--allow-training-data", check=True)
    assert "NER strict micro-F1" in result.stdout
    return out


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, float):
        yield tree


def _check_table(table: dict, labels: list[str], ci: bool) -> None:
    assert set(table) == {"micro", "macro", "per_label"} | ({"micro_f1_ci95"} if ci else set())
    assert set(table["micro"]) == PRF and set(table["macro"]) == PRF
    assert set(labels) <= set(table["per_label"])
    for value in table["per_label"].values():
        assert set(value) == PRF | {"support", "predicted"}
    if ci:
        lo, hi = table["micro_f1_ci95"]
        assert 0.0 <= lo <= hi <= 1.0


@pytest.mark.slow
def test_metrics_json_has_exactly_the_agreed_shape(report, trained):
    from hoptac.train.dataset import dataset_labels, load_split

    entities, sectors = dataset_labels(trained[0])
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics) == {"ner", "ner_lenient", "sectors", "baseline", "data", "warnings"}  # warnings: see below
    _check_table(metrics["ner"], entities, ci=True)
    _check_table(metrics["ner_lenient"], entities, ci=False)
    _check_table(metrics["sectors"], sectors, ci=False)
    assert set(metrics["baseline"]) == {"ner", "ner_lenient", "sectors"}
    _check_table(metrics["baseline"]["ner"], entities, ci=True)
    _check_table(metrics["baseline"]["sectors"], sectors, ci=False)
    assert all(0.0 <= x <= 1.0 for x in _numbers({k: v for k, v in metrics.items() if k != "data"}))
    test = load_split(trained[0], "test")
    assert set(metrics["data"]) == {"source", "paragraphs", "entities"}
    assert metrics["data"]["paragraphs"] == len(test)
    assert metrics["data"]["entities"] == sum(len(s) for s in test["spans"])
    # supports add up to the gold entities, for the model and the baseline alike
    for table in (metrics["ner"], metrics["baseline"]["ner"]):
        assert sum(v["support"] for v in table["per_label"].values()) == metrics["data"]["entities"]
    # strict never beats boundary-tolerant
    assert metrics["ner"]["micro"]["recall"] <= metrics["ner_lenient"]["micro"]["recall"] + 1e-12


@pytest.mark.slow
def test_evaluate_returns_the_metrics_it_writes(trained, tmp_path):
    from hoptac.train.evaluate import evaluate

    ds, model = trained
    result = evaluate(str(model), ds, tmp_path / "r", baseline="rules", allow_training_data=True)
    assert result.report_dir == tmp_path / "r" and result.report_path.is_file()
    assert result.metrics == json.loads(result.metrics_path.read_text(encoding="utf-8"))
    assert result.paragraphs == result.metrics["data"]["paragraphs"] and result.articles >= 1
    summary = result.summary()
    assert summary.startswith(f"NER strict micro-F1 {result.metrics['ner']['micro']['f1']:.3f}")
    assert f"(rules {result.metrics['baseline']['ner']['micro']['f1']:.3f})" in summary
    assert summary.splitlines()[0].endswith(f"report: {result.report_path}")
    assert summary.splitlines()[1:] == [f"warning: {w}" for w in result.warnings]


@pytest.mark.slow
def test_report_and_charts(report):
    text = (report / "report.md").read_text(encoding="utf-8")
    for needle in ("strict", "boundary-tolerant", "rules", "error type", "Sectors", "LOCALITY", "ner_f1.png"):
        assert needle in text
    for name in ("ner_f1.png", "confusion.png"):
        data = (report / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.slow
def test_export_file_is_scored_whole(trained, tmp_path):
    _, model = trained
    hoptac("evaluate", model, SEED_EXPORT, "-o", tmp_path, "--allow-training-data", check=True)
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    tasks = json.loads(SEED_EXPORT.read_text(encoding="utf-8"))
    assert metrics["data"]["paragraphs"] == len(tasks)
    assert "baseline" not in metrics


def test_strict_lenient_and_error_types_on_hand_made_spans():
    gold = [[(0, 6, "LOC"), (10, 20, "PER"), (30, 35, "FIG")], [(0, 4, "LOC")]]
    pred = [[(0, 6, "LOC"), (10, 15, "PER"), (30, 35, "LOC"), (40, 44, "PER")], []]
    result = score_ner(gold, pred, ["a", "b"], ["LOC", "PER", "FIG"])
    strict, lenient = result["strict"], result["lenient"]
    assert strict["micro"] == prf(1, 3, 3)
    assert strict["per_label"]["PER"]["support"] == 1 and strict["per_label"]["PER"]["f1"] == 0.0
    assert lenient["per_label"]["PER"]["recall"] == 1.0  # (10,15) overlaps (10,20) with the same label
    assert result["errors"] == {"wrong boundary": 1, "wrong label": 1, "spurious": 1, "missed": 1}
    assert result["confusion"][("FIG", "LOC")] == 1 and result["confusion"][("LOC", "(none)")] == 1


def test_bootstrap_is_seeded_and_brackets_the_point_estimate():
    per_doc = [[5, 1, 2], [0, 3, 1], [7, 0, 0], [2, 2, 2]]
    lo, hi = bootstrap_f1(per_doc)
    assert bootstrap_f1(per_doc) == [lo, hi]
    tp, fp, fn = (sum(d[i] for d in per_doc) for i in range(3))
    assert lo <= prf(tp, fp, fn)["f1"] <= hi and lo < hi


def test_sector_scores_per_label():
    table = score_sectors([{"A"}, {"A", "B"}, set()], [{"A"}, {"B"}, {"B"}], ["A", "B", "C"])
    assert table["per_label"]["A"] == {**prf(1, 0, 1), "support": 2, "predicted": 1}
    assert table["per_label"]["B"] == {**prf(1, 1, 0), "support": 1, "predicted": 2}
    assert table["macro"]["f1"] == pytest.approx((prf(1, 0, 1)["f1"] + prf(1, 1, 0)["f1"]) / 2)  # C has no support


@pytest.mark.slow
def test_bad_inputs_are_one_line_exit_2(trained, tmp_path):
    ds, model = trained
    sectors_only = tmp_path / "sectors-only"
    hoptac("train", ds, "-o", sectors_only, "--only", "sectors", check=True)
    cases = [
        ((tmp_path / "missing", ds), "no such model folder"),
        ((sectors_only, ds), "has no 'ner'"),
        ((model, tmp_path / "missing-data"), "no such dataset folder or export file"),
    ]
    for (m, d), needle in cases:
        result = hoptac("evaluate", m, d, "-o", tmp_path / "r")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
        assert lines[0].startswith("hoptac: error:")
    result = hoptac("evaluate", model, ds, "-o", tmp_path / "r", "--baseline", "oracle")
    assert result.returncode == 2 and "--baseline must be 'rules'" in result.stderr


def test_interval_is_shown_only_with_two_articles_or_more():
    from hoptac.train.eval_report import interval

    assert interval([0.81234, 0.9], 6) == "[0.812, 0.900]"
    assert interval([0.5, 0.5], 1) == "(no interval: 1 article)"


# ---------------------------------------------------------------- scores that would mislead are said to

def test_no_gold_entity_gives_n_a_and_a_warning_not_zero(trained, tmp_path):
    _, model = trained
    tasks = json.loads(SEED_EXPORT.read_text(encoding="utf-8"))
    for t in tasks:
        for a in t["annotations"]:
            a["result"] = [r for r in a["result"] if r["type"] != "labels"]  # sectors only
    export = tmp_path / "no-entities.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    result = hoptac("evaluate", model, export, "-o", tmp_path / "r", "--baseline", "rules", "--allow-training-data")
    assert result.returncode == 0, result.stderr
    first, *warnings = result.stdout.strip().splitlines()
    assert first.startswith("NER strict micro-F1 n/a (rules n/a); sectors micro-F1 ")
    assert warnings[0] == "warning: no gold entity in the test data: NER scores are undefined"
    assert "0.000" not in first.split(";")[0]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["warnings"][0] == "no gold entity in the test data: NER scores are undefined"
    assert metrics["data"]["entities"] == 0
    report = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "- **warning**: no gold entity in the test data" in report
    assert "Strict micro-F1 n/a" in report
    micro_row = next(line for line in report.splitlines() if line.startswith("| *micro* |"))
    assert "n/a" in micro_row and "**n/a**" in micro_row


def test_labels_on_one_side_only_are_warned(trained, tmp_path):
    from hoptac.train.dataset import dataset_labels

    _, model = trained
    conll = tmp_path / "other.conll"
    conll.write_text("Ông O\nLê_Văn_Cường B-PER\nđến O\nCông_ty B-ORG\nViettel I-ORG\n. O\n", encoding="utf-8")
    ds = tmp_path / "ds"
    hoptac("dataset", "from-conll", "--train", conll, "--test", conll, "-o", ds, check=True)
    result = hoptac("evaluate", model, ds, "-o", tmp_path / "r")
    assert result.returncode == 0, result.stderr
    from hoptac.model import load_model

    model_labels = list(load_model(model).get_pipe("ner").labels)
    data_labels = dataset_labels(ds)[0]
    expected = [f"entity labels only in the model: {', '.join(model_labels)} "
                f"(every prediction of them counts as a false positive)",
                f"entity labels only in the data: {', '.join(data_labels)} "
                f"(the model never predicts them: their recall is 0)"]
    assert result.stdout.strip().splitlines()[1:] == [f"warning: {w}" for w in expected]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["warnings"] == expected
    assert all(f"- **warning**: {w}" in (tmp_path / "r" / "report.md").read_text(encoding="utf-8") for w in expected)


def test_matching_labels_give_no_warning(report):
    """Only the warning that the seed's test paragraphs share their one article with training."""
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert len(metrics["warnings"]) == 1 and metrics["warnings"][0].endswith("these scores overstate the model")
    assert (report / "report.md").read_text(encoding="utf-8").count("**warning**") == 1


@pytest.mark.slow
def test_articles_the_model_was_trained_on_are_refused_unless_allowed(trained, tmp_path):
    """The model's meta lists its training articles; scoring on them is refused, or flagged when allowed."""
    from hoptac.model import load_model

    ds, model = trained
    assert "hanoi-vi-ca-nuoc" in load_model(model).meta["hoptac"]["training_articles"]
    refused = hoptac("evaluate", model, SEED_EXPORT, "-o", tmp_path / "r")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "1 of the 1 articles" in refused.stderr and "--allow-training-data" in refused.stderr
    assert not (tmp_path / "r").exists()
    allowed = hoptac("evaluate", model, SEED_EXPORT, "-o", tmp_path / "r", "--allow-training-data", check=True)
    assert "these scores overstate the model" in allowed.stdout
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text(encoding="utf-8"))
    assert any("overstate" in w for w in metrics["warnings"])
    assert "overstate" in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")


def test_a_label_without_gold_support_shows_n_a_not_zero():
    from hoptac.train.eval_report import _prf_table

    table = {"per_label": {"HEALTH": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0},
                           "TOURISM": {"precision": 0.5, "recall": 1.0, "f1": 0.667, "support": 2, "predicted": 4}},
             "micro": {"precision": 0.5, "recall": 1.0, "f1": 0.667}, "macro": {"precision": 0.5, "recall": 1.0, "f1": 0.667}}
    lines = _prf_table(table, None, "sector")
    health = next(line for line in lines if line.startswith("| HEALTH |"))
    assert health == "| HEALTH | 0 | n/a | n/a | **n/a** |"
    assert next(line for line in lines if line.startswith("| TOURISM |")).endswith("**0.667** |")
