"""`hoptac pretrain` (word vectors from unlabelled news) and `hoptac train --vectors`.

The vectors are trained on the first articles of the shared news (outside the repo),
small and for one epoch: what is tested is the wiring, not their quality."""

from __future__ import annotations

import json

import numpy
import pytest
from conftest import GOLD_EXPORT, SEED_ANNOTATIONS, hoptac, news_slice

pytest.importorskip("floret")

SMALL = ["--dim", "16", "--epochs", "1"]


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain")
    news = news_slice(folder, 150)
    out = folder / "vectors"
    result = hoptac("pretrain", news, "-o", out, *SMALL, check=True)
    return news, out, result


def test_pretrain_counts_and_keys_vectors_on_the_project_tokens(vectors):
    import spacy

    from hoptac.model import new_blank

    news, out, result = vectors
    meta = json.loads((out / "pretrain.json").read_text(encoding="utf-8"))
    # every paragraph read is counted once: the summary's read counts and the meta agree
    assert f"paragraphs: {meta['paragraphs']}" in result.stdout
    assert meta["paragraphs"] > 1000 and meta["tokens"] > meta["paragraphs"]
    assert meta["settings"]["dim"] == 16
    table = spacy.load(out / "vectors").vocab.vectors
    assert table.shape == (meta["words"], 16) and len(table.key2row) == meta["keys"] > meta["words"]
    # found from the project's tokens ("Hà Nội" is one token) in the case forms of news text,
    # as the NER's embedding looks them up (StaticVectors: doc.to_array(vectors.attr))
    doc = new_blank()("Thành phố Hà Nội, HÀ NỘI, hà nội")
    hanoi = [t for t in doc if t.norm_ == "hà nội"]
    assert len(hanoi) == 3 and [t.text for t in doc][0] == "Thành phố"
    rows = {table.find(key=int(doc.to_array(table.attr)[t.i])) for t in hanoi}
    assert len(rows) == 1 and min(rows) >= 0 and numpy.abs(table.data[min(rows)]).sum() > 0


def test_pretrain_refuses_a_folder_it_did_not_write(vectors, tmp_path):
    news, _, _ = vectors
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    result = hoptac("pretrain", news, "-o", mine, *SMALL)
    assert result.returncode == 2 and "hoptac did not write it" in result.stderr
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep me"


@pytest.mark.slow
def test_train_with_vectors_embeds_them_and_saves_them_in_the_model(vectors, tmp_path):
    from hoptac.model import load_model

    _, out, _ = vectors
    dataset = tmp_path / "ds"
    hoptac("dataset", "build", SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json", "-o", dataset, check=True)
    model = tmp_path / "m"
    hoptac("train", dataset, "-o", model, "--vectors", out, "--only", "ner",
           "--set", "training.max_steps=10", "--set", "training.eval_frequency=5", check=True)
    nlp = load_model(model)
    assert nlp.config["components"]["tok2vec"]["model"]["embed"]["include_static_vectors"] is True
    assert nlp.vocab.vectors.shape[1] == 16 and nlp.vocab["Hà Nội"].has_vector
    assert nlp.meta["hoptac"]["vectors"] == str(out)
    assert nlp("Hà Nội hợp tác với Hải Phòng.").ents is not None


def test_train_vectors_must_be_a_pretrain_output(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    dataset = tmp_path / "ds"
    hoptac("dataset", "build", SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json", "-o", dataset, check=True)
    result = hoptac("train", dataset, "-o", tmp_path / "m", "--vectors", plain)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"hoptac: error: {plain}: not a `hoptac pretrain` output (no pretrain.json and vectors/)")
    assert not (tmp_path / "m").exists()


def test_train_curve_passes_the_vectors_to_every_training(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    dataset = tmp_path / "ds"
    hoptac("dataset", "build", GOLD_EXPORT, "-o", dataset, check=True)
    result = hoptac("train-curve", dataset, "-o", tmp_path / "curve", "--shares", "1", "--vectors", plain,
                    "--set", "training.max_steps=2")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"hoptac: error: {plain}: not a `hoptac pretrain` output (no pretrain.json and vectors/)")
    assert not (tmp_path / "curve").exists()


@pytest.mark.slow
def test_train_curve_with_vectors(vectors, tmp_path):
    _, out, _ = vectors
    dataset = tmp_path / "ds"
    hoptac("dataset", "build", GOLD_EXPORT, "-o", dataset, check=True)
    hoptac("train-curve", dataset, "-o", tmp_path / "curve", "--shares", "1", "--vectors", out,
           "--set", "training.max_steps=10", "--set", "training.eval_frequency=5", check=True)
    steps = json.loads((tmp_path / "curve" / "curve.json").read_text(encoding="utf-8"))
    assert [s["share"] for s in steps] == [1.0] and "micro" in steps[0]["ner_f1"]
