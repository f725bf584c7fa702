"""The project's tokenizer (hoptac/tokenizer.py): pyvi words, with glued stops and place + name words split."""

from __future__ import annotations

import pytest
import spacy

from hoptac.lexicon import tokenizer_places
from hoptac.model import blank_vi, new_blank
from hoptac.tokenizer import TOKENIZER, VietnameseWords


def words(text: str) -> list[str]:
    return [t.text for t in blank_vi()(text)]


@pytest.mark.parametrize("text, pyvi, ours", [
    ("vốn 10 triệu USD.", ["vốn", "10", "triệu", "USD."], ["vốn", "10", "triệu", "USD", "."]),
    ("tại TP.HCM.", ["tại", "TP.", "HCM."], ["tại", "TP", ".", "HCM", "."]),
    ("Bí thư Tỉnh ủy Hưng Yên Đỗ Tiến Sỹ", ["Bí thư", "Tỉnh ủy", "Hưng Yên Đỗ Tiến Sỹ"],
     ["Bí thư", "Tỉnh ủy", "Hưng Yên", "Đỗ Tiến Sỹ"]),
    ("Thủ tướng Lào Thoong - lun", ["Thủ tướng", "Lào Thoong", "-", "lun"], ["Thủ tướng", "Lào", "Thoong", "-", "lun"]),
])
def test_repairs_of_pyvi(text, pyvi, ours):
    assert [t.text for t in spacy.blank("vi")(text)] == pyvi  # what pyvi does (if this fails, pyvi changed)
    assert words(text) == ours


@pytest.mark.parametrize("text", ["Hà Nội", "Thừa Thiên Huế", "Bà Rịa - Vũng Tàu", "ông Nguyễn Đức Anh", "Hà Nội và Vĩnh Phúc"])
def test_places_and_names_stay_whole(text):
    assert words(text) == [t.text for t in spacy.blank("vi")(text)]


def test_given_names_are_not_split_off():
    assert "Đức" not in tokenizer_places() and "Lào" in tokenizer_places()
    assert words("anh Đức Anh") == [t.text for t in spacy.blank("vi")("anh Đức Anh")]


def test_text_round_trips_and_whitespace_is_kept():
    text = "  Hưng Yên   Đỗ Tiến Sỹ\tvà 2 triệu USD.\n"
    doc = blank_vi()(text)
    assert doc.text == text
    assert [t.text for t in blank_vi()("")] == [] and blank_vi()("   ").text == "   "


def test_places_are_saved_with_the_pipeline_and_loaded_back(tmp_path):
    nlp = new_blank()
    nlp.to_disk(tmp_path / "p")
    assert nlp.config["nlp"]["tokenizer"]["@tokenizers"] == TOKENIZER
    again = spacy.load(tmp_path / "p")
    assert isinstance(again.tokenizer, VietnameseWords)
    assert again.tokenizer.places == nlp.tokenizer.places and len(again.tokenizer.places) > 500
    assert [t.text for t in again("Lào Thoong")] == ["Lào", "Thoong"]


def test_without_places_only_the_stops_are_split():
    nlp = spacy.blank("vi", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER}}})
    assert "Hưng Yên Đỗ Tiến Sỹ" in [t.text for t in nlp("Bí thư Tỉnh ủy Hưng Yên Đỗ Tiến Sỹ")]
    assert [t.text for t in nlp("2 triệu USD.")][-2:] == ["USD", "."]
