"""Stage 3: `hoptac dataset from-conll|to-conll` — BIO CoNLL ⇄ dataset, exact round trip, bad files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets
import pytest
from conftest import SEED_ANNOTATIONS, hoptac
from hoptac.train.conll import dataset_from_conll, dataset_to_conll, read_conll
from hoptac.train.dataset import build_dataset, dataset_labels
from hypothesis import given, settings
from hypothesis import strategies as st

# canonical form: what to-conll writes, so the round trip must give the same bytes
TRAIN = """\
-DOCSTART- O

Hà_Nội B-LOC
và O
Hải_Phòng B-LOC
ký_kết O
hợp_tác O
. O

Ông O
Nguyễn_Văn_A B-PER
, O
Chủ_tịch O
UBND B-ORG
thành_phố I-ORG
Hà_Nội I-ORG

-DOCSTART- O

TP. B-LOC
HCM I-LOC
_ O
10.900 O

Bộ B-ORG
Công_Thương I-ORG
họp O

"""

DEV_THREE_COLUMNS = """\
Đà_Nẵng NNP B-LOC
đón V O

Bà N O
Trần_Thị_B NNP B-PER


Quảng_Ninh NNP B-LOC
"""


def pairs(path: Path) -> list[list[tuple[str, str]]]:
    return [list(zip(s.tokens, s.tags)) for s in read_conll(path).sentences]


def test_round_trip_is_exact(tmp_path):
    train, dev = tmp_path / "train.conll", tmp_path / "dev.conll"
    train.write_text(TRAIN, encoding="utf-8")
    dev.write_text(DEV_THREE_COLUMNS, encoding="utf-8")
    out = tmp_path / "ds"
    result = hoptac("dataset", "from-conll", "--train", train, "--dev", dev, "-o", out)
    assert result.returncode == 0, result.stderr
    back = tmp_path / "back"
    result = hoptac("dataset", "to-conll", out, "-o", back)
    assert result.returncode == 0, result.stderr
    assert (back / "train.conll").read_text(encoding="utf-8") == TRAIN
    assert pairs(back / "validation.conll") == pairs(dev)  # middle columns are not kept
    assert not (back / "test.conll").exists() and "test: empty" in result.stdout


def test_dataset_from_conll_has_labels_from_tags_and_no_sectors(tmp_path):
    train = tmp_path / "train.conll"
    train.write_text(TRAIN, encoding="utf-8")
    out = tmp_path / "ds"
    result = dataset_from_conll(train, out)
    ds = datasets.load_from_disk(str(out))
    assert list(ds) == ["train", "validation", "test"] and len(ds["validation"]) == 0
    assert "sectors" not in ds["train"].column_names
    tags = {tag for s in read_conll(train).sentences for tag in s.tags if tag != "O"}
    assert dataset_labels(out) == (sorted({t[2:] for t in tags}), [])
    sentences = read_conll(train).sentences
    assert result.labels == dataset_labels(out)[0] and result.out_dir == out
    assert result.files == {"train": (train, len(sentences), sum(len(s.tokens) for s in sentences))}
    assert result.empty_splits == ["validation", "test"] and result.counts["train"]["paragraphs"] == len(ds["train"])
    row = ds["train"][1]
    assert row["text"] == "Ông Nguyễn Văn A , Chủ tịch UBND thành phố Hà Nội"
    assert [(s["text"], s["label"]) for s in row["spans"]] == [("Nguyễn Văn A", "PER"), ("UBND thành phố Hà Nội", "ORG")]
    assert [row["text"][a:b] for a, b in zip(row["token_starts"], row["token_ends"])] == row["tokens"]
    docs = ds["train"]["doc_id"]
    assert docs[0] == docs[1] != docs[2] == docs[3]  # -DOCSTART- groups sentences into documents
    assert "sha256" in (out / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("content, line, words", [
    ("Hà_Nội B-LOC\nvà\n", 2, "one column"),
    ("Hà_Nội B-LOC\nvà O\nx E-LOC\n", 3, "not BIO"),
    ("a O\n\nb B-\n", 3, "not BIO"),
    ("a O\nb I-LOC\n", 2, "does not continue"),
    ("a B-PER\nb I-LOC\n", 2, "does not continue"),
])
def test_bad_conll_names_file_and_line(tmp_path, content, line, words):
    path = tmp_path / "bad.conll"
    path.write_text(content, encoding="utf-8")
    result = hoptac("dataset", "from-conll", "--train", path, "-o", tmp_path / "ds")
    assert result.returncode == 2
    err = result.stderr.strip()
    assert err.startswith("hoptac: error:") and "\n" not in err
    assert f"{path}:{line}:" in err and words in err
    assert not (tmp_path / "ds").exists()


def test_empty_or_untagged_conll_is_an_error(tmp_path):
    empty = tmp_path / "empty.conll"
    empty.write_text("\n\n", encoding="utf-8")
    result = hoptac("dataset", "from-conll", "--train", empty, "-o", tmp_path / "ds")
    assert result.returncode == 2 and "no sentence" in result.stderr
    plain = tmp_path / "plain.conll"
    plain.write_text("a O\nb O\n", encoding="utf-8")
    result = hoptac("dataset", "from-conll", "--train", plain, "-o", tmp_path / "ds")
    assert result.returncode == 2 and "no entity tag" in result.stderr


def test_label_studio_dataset_to_conll_and_back_keeps_tags(tmp_path):
    ds_dir = tmp_path / "seed"
    build_dataset([SEED_ANNOTATIONS], ds_dir)
    conll = tmp_path / "conll"
    written = dataset_to_conll(ds_dir, conll)
    seed = datasets.load_from_disk(str(ds_dir))
    names = seed["train"].features["ner_tags"].feature.names
    for split in seed:
        expected = [[(tok.replace(" ", "_"), names[tag]) for tok, tag in zip(r["tokens"], r["ner_tags"]) if tok.strip()]
                    for r in seed[split]]
        assert pairs(conll / f"{split}.conll") == [e for e in expected if e]
        path, sentences, tokens, skipped = written.splits[split]
        assert (path, sentences, tokens) == (conll / f"{split}.conll", len([e for e in expected if e]),
                                             sum(len(e) for e in expected))
        assert skipped == len(expected) - sentences
    again = tmp_path / "again"
    dataset_from_conll(conll / "train.conll", again, test=conll / "test.conll")
    spans_before = sum(len(r) for r in seed["train"]["spans"])
    spans_after = sum(len(r) for r in datasets.load_from_disk(str(again))["train"]["spans"])
    assert spans_after == spans_before


TOKENS = st.sampled_from(["Hà_Nội", "và", "Hải_Phòng", "ký", "10.900", "tỷ_đồng", ",", "_", "ông", "A"])
LABELS = st.sampled_from(["LOC", "PER", "ORG", "MISC"])


@st.composite
def sentence(draw):
    tokens = draw(st.lists(TOKENS, min_size=1, max_size=8))
    tags, previous = [], "O"
    for _ in tokens:
        choice = draw(st.sampled_from(["O", "B", "I"]))
        if choice == "I" and previous != "O":
            tags.append("I-" + previous[2:])
        elif choice == "O":
            tags.append("O")
        else:
            tags.append("B-" + draw(LABELS))
        previous = tags[-1]
    return list(zip(tokens, tags))


@settings(max_examples=15, deadline=None)
@given(st.lists(sentence(), min_size=1, max_size=5).filter(lambda s: any(t != "O" for x in s for _, t in x)))
def test_any_bio_file_round_trips(sentences):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.conll"
        path.write_text("".join("".join(f"{tok} {tag}\n" for tok, tag in s) + "\n" for s in sentences),
                        encoding="utf-8")
        dataset_from_conll(path, Path(tmp) / "ds")
        dataset_to_conll(Path(tmp) / "ds", Path(tmp) / "back")
        assert (Path(tmp) / "back" / "train.conll").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
