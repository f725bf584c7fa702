"""``hoptac train-curve``: growing shares of the training articles, each model scored on the test split."""

from __future__ import annotations

import json

import pytest
from conftest import GOLD_EXPORT, SEED_ANNOTATIONS, hoptac
from hoptac.train.curve import article_order

pytestmark = pytest.mark.slow


def test_article_order_is_seeded_and_nested():
    ids = [f"a{i}" for i in range(10)] * 3
    assert article_order(ids, 0) == article_order(list(reversed(ids)), 0)  # input order does not matter
    assert sorted(article_order(ids, 0)) == sorted(set(ids)) and article_order(ids, 0) != article_order(ids, 1)


def test_train_curve_on_the_gold(tmp_path):
    ds = tmp_path / "ds"
    hoptac("dataset", "build", GOLD_EXPORT, "-o", ds, check=True)
    out = tmp_path / "curve"
    result = hoptac("train-curve", ds, "-o", out, "--shares", "0.5,1", "--set", "training.max_steps=30",
                    "--set", "training.eval_frequency=10", check=True)
    steps = json.loads((out / "curve.json").read_text(encoding="utf-8"))
    assert [s["share"] for s in steps] == [0.5, 1.0]
    from hoptac.train.dataset import load_dataset_dir

    n = len(set(load_dataset_dir(ds)["train"]["doc_id"]))
    assert [s["articles"] for s in steps] == [-(-n // 2), n]
    assert steps[0]["paragraphs"] < steps[1]["paragraphs"] == len(load_dataset_dir(ds)["train"])
    for step in steps:
        assert {"LOCALITY", "OFFICIAL", "FIELD", "FIGURE", "micro"} <= set(step["ner_f1"])
        assert all(0.0 <= f <= 1.0 for f in step["ner_f1"].values())
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table_rows = [line for line in result.stdout.splitlines() if line.startswith("| 50%") or line.startswith("| 100%")]
    assert len(table_rows) == 2


def test_train_curve_needs_held_out_test_articles(tmp_path):
    ds = tmp_path / "ds"  # the seed: one article, so its splits fall back to paragraphs
    hoptac("dataset", "build", SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json", "-o", ds, check=True)
    result = hoptac("train-curve", ds, "-o", tmp_path / "curve", "--set", "training.max_steps=2")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"hoptac: error: {ds}: 1 article(s) of the test split are also in train or validation")
    assert not (tmp_path / "curve").exists()
