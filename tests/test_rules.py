"""The rule-based pre-annotator: gazetteer, entity rules, sector keywords, spaCy component."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
import unicodedata
import warnings

import pytest
import spacy
from conftest import GOLD_COUNTS, GOLD_EXPORT, REPO, SEED_ANNOTATIONS, SEED_TEXT
from hoptac.annotate.rules import (
    Rules,
    _lexicon,
    default_rules,
    find_entities,
    find_sectors,
    rules_pipeline,
    syllables,
)
from hoptac.train.dataset import examples_from_exports
from hoptac.train.evaluate import load_data, predict, rules_baseline, score
from hypothesis import given, settings
from hypothesis import strategies as st

from hoptac.errors import HoptacError
from hoptac.gazetteer import (
    admin_units_db,
    build_gazetteer,
    gazetteer,
    load_rules_config,
    tone_variants,
)
from hoptac.schema import load_schema

SEED_PARAGRAPHS = [line for line in SEED_TEXT.read_text(encoding="utf-8").splitlines() if line.strip()]
PREFIX = re.compile(r"^(Tỉnh|Thành phố|Quận|Huyện|Xã|Phường|Thị xã|Thị trấn) ")


def spans(text: str, label: str | None = None) -> list[str]:
    return [text[s:e] for s, e, lab in find_entities(text) if label in (None, lab)]


def labelled(text: str) -> set[tuple[str, str]]:
    return {(text[s:e], lab) for s, e, lab in find_entities(text)}


# --------------------------------------------------------------------- gazetteer


def test_gazetteer_holds_old_and_new_units_without_prefixes():
    gaz = gazetteer()
    for old in ("Hà Nam", "Vĩnh Phúc", "Bạc Liêu"):  # provinces merged away in 2025
        assert gaz.level(old) == "province"
    with sqlite3.connect(admin_units_db()) as db:
        new_provinces = {r[0] for r in db.execute("SELECT DISTINCT provinceShort FROM admin_units")}
        new_wards = {r[0] for r in db.execute("SELECT DISTINCT wardShort FROM admin_units")}
        old_wards = {r[0] for r in db.execute("SELECT DISTINCT wardShort FROM admin_units_legacy")}
    assert len(new_provinces) == 34
    assert all(gaz.level(p) == "province" for p in new_provinces)
    only_new = sorted(w for w in new_wards - old_wards if not re.search(r"\d", w))
    assert only_new and all(w in gaz for w in only_new)  # the 2025 wards are there too
    keys = [*gaz.free, *gaz.ward]
    assert not [k for k in keys if PREFIX.match(k)]
    assert all(unicodedata.is_normalized("NFC", k) for k in keys)
    assert not [k for k in keys if re.fullmatch(r"[\d\s]+", k)]  # "Phường 1" → "1" is dropped


def test_gazetteer_has_both_tone_spellings_and_the_extras():
    gaz = gazetteer()
    assert "Khánh Hòa" in gaz and "Khánh Hoà" in gaz
    assert tone_variants("Thừa Thiên Huế") == {"Thừa Thiên Huế"}
    assert tone_variants("Thanh Hóa") == {"Thanh Hóa", "Thanh Hoá"}
    for extra in load_rules_config()["locality"]["extras"]:
        assert extra in gaz


def test_gazetteer_builds_in_a_few_seconds():
    started = time.perf_counter()
    build_gazetteer()
    assert time.perf_counter() - started < 10


def test_bad_rules_config_names_the_file(tmp_path):
    bad = tmp_path / "rules.yml"
    bad.write_text("locality: {}\nofficial: [1]\n", encoding="utf-8")
    with pytest.raises(HoptacError, match=re.escape(str(bad)) + ".*missing or malformed"):
        load_rules_config(bad)
    bad.write_text("locality: {extras: [1, 2]}\nofficial: {}\nfield: {}\nfigure: {}\nsectors: {}\n", encoding="utf-8")
    with pytest.raises(HoptacError, match="list of strings"):
        load_rules_config(bad)


# --------------------------------------------------------------------- LOCALITY


def test_locality_leaves_administrative_words_out():
    text = "Lãnh đạo thành phố Hà Nội và tỉnh Bạc Liêu làm việc với UBND tỉnh Bến Tre."
    assert spans(text, "LOCALITY") == ["Hà Nội", "Bạc Liêu", "Bến Tre"]
    assert spans("Tại TP. HCM và TP.HCM", "LOCALITY") == ["HCM", "TP.HCM"]


def test_locality_pairs_regions_zones_and_numbered_units():
    assert spans("Liên hoan thanh niên Việt - Lào và Việt - Trung", "LOCALITY") == ["Việt", "Lào", "Việt", "Trung"]
    assert spans("phát triển vùng Đồng bằng sông Cửu Long và Tây Nguyên", "LOCALITY") == \
        ["Đồng bằng sông Cửu Long", "Tây Nguyên"]
    assert spans("Ban Quản lý Khu kinh tế Dung Quất cho biết", "LOCALITY") == ["Khu kinh tế Dung Quất"]
    assert spans("các tuyến đường thuộc quận 1, 2 và Q. 3", "LOCALITY") == ["1", "2", "3"]
    assert spans("tỉnh Bà Rịa-Vũng Tàu", "LOCALITY") == ["Bà Rịa-Vũng Tàu"]


def test_ward_level_names_need_an_admin_word_when_one_word_long():
    gaz = gazetteer()
    one_word = sorted(k for k in gaz.ward if re.fullmatch(r"[^\W\d_]+", k) and k[0].isupper() and k not in gaz.free)
    name = one_word[0]
    assert name not in spans(f"người dân ở {name} cho biết")
    assert spans(f"người dân ở xã {name} cho biết", "LOCALITY") == [name]


def test_person_names_streets_and_venues_are_not_places():
    assert "Thanh Liêm" not in spans("Theo ông Trần Thanh Liêm, Chủ tịch UBND tỉnh")
    assert spans("vỉa hè đường Điện Biên Phủ", "LOCALITY") == []
    assert spans("bảo tàng Mỹ thuật", "LOCALITY") == []


# --------------------------------------------------------------------- OFFICIAL


@pytest.mark.parametrize("text, name, places", [
    ("Bí thư Tỉnh ủy Hưng Yên Đỗ Tiến Sỹ nhấn mạnh", "Đỗ Tiến Sỹ", {"Hưng Yên"}),
    ("Chủ tịch UBND tỉnh Bến Tre Cao Văn Trọng phát biểu", "Cao Văn Trọng", {"Bến Tre"}),
    ("Phó Thủ tướng Vũ Đức Đam dự hội nghị", "Vũ Đức Đam", set()),
    ("Tổng thống Pháp Francois Hollande đến Hà Nội", "Francois Hollande", {"Pháp", "Hà Nội"}),
    ("Đại sứ Pháp tại Việt Nam Bertrand Lortholar nói", "Bertrand Lortholar", {"Pháp", "Việt Nam"}),
    ("Theo ông Hạo, dự án sẽ xong", "Hạo", set()),
    ("Ông Lê Văn Hưởng, Chủ tịch UBND tỉnh Tiền Giang, cho biết", "Lê Văn Hưởng", {"Tiền Giang"}),
])
def test_official_is_the_name_only(text, name, places):
    found = labelled(text)
    assert (name, "OFFICIAL") in found
    assert {t for t, lab in found if lab == "OFFICIAL"} == {name}  # no title, no honorific
    assert {t for t, lab in found if lab == "LOCALITY"} == places


def test_no_official_without_a_name():
    assert spans("Bí thư Thành ủy Hà Nội cho rằng các địa phương cần", "OFFICIAL") == []
    assert spans("Bộ trưởng Bộ Tài nguyên và Môi trường đề nghị", "OFFICIAL") == []


# --------------------------------------------------------------------- FIGURE


@pytest.mark.parametrize("text, figure", [
    ("với tổng vốn đăng ký 10.900 tỷ đồng.", "10.900 tỷ đồng"),
    ("vốn 3,2 tỷ cho dự án", "3,2 tỷ"),
    ("đã giới thiệu 87 doanh nghiệp về đầu tư", "87 doanh nghiệp"),
    ("tăng 15% so với", "15%"),
    ("quy mô 500 ha đất", "500 ha"),
    ("đạt trên 100.000 tỷ đồng", "100.000 tỷ đồng"),
    ("hơn 30 dự án", "30 dự án"),
    ("khoảng 200 triệu USD", "200 triệu USD"),
    ("6 nhà đầu tư lớn", "6 nhà đầu tư"),
    ("dài 365km", "365km"),
])
def test_figure_spans(text, figure):
    assert spans(text, "FIGURE") == [figure]


@pytest.mark.parametrize("text", [
    "Từ năm 2014, tỉnh đã tự cân đối thu chi",
    "trong giai đoạn 2015-2018, các tỉnh",
    "20 năm qua, từ một tỉnh nghèo",
    "sau 8 năm thực hiện",
    "Hội nghị lần thứ 44 của Ban Chấp hành",
    "theo Nghị quyết 15 của Bộ Chính trị",
    "Chiều 21-12, tại Hà Nội",
    "ngày 24/1/2017 của tòa",
    "máy bay Boeing 787 của hãng",
])
def test_not_figures(text):
    assert spans(text, "FIGURE") == []


# --------------------------------------------------------------------- FIELD


def test_fields_coordinated_and_generic():
    text = "Các lĩnh vực hợp tác là: công nghiệp - thương mại - dịch vụ; nông nghiệp và bảo vệ môi trường."
    assert spans(text, "FIELD") == ["công nghiệp", "thương mại", "dịch vụ", "nông nghiệp", "bảo vệ môi trường"]
    assert spans("phát triển kinh tế - xã hội", "FIELD") == []
    assert spans("đã xây dựng các chương trình, tuyến, điểm", "FIELD") == []
    assert spans("hợp tác trong lĩnh vực xây dựng", "FIELD") == ["xây dựng"]
    assert spans("nhà đầu tư vào khu công nghiệp", "FIELD") == []


# --------------------------------------------------------------------- all entities


def test_seed_paragraphs_give_clean_non_overlapping_spans():
    labels = set(load_schema().entity_names)
    for text in SEED_PARAGRAPHS:
        found = find_entities(text)
        assert found == sorted(found)
        for (s1, e1, _), (s2, _, _) in zip(found, found[1:]):
            assert e1 <= s2
        for s, e, label in found:
            assert label in labels and 0 <= s < e <= len(text)
            assert text[s:e] == text[s:e].strip() and text[s:e][-1] not in ".,;:"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(SEED_PARAGRAPHS), min_size=1, max_size=3), st.sampled_from([" ", "\n", " – "]))
def test_spans_of_joined_paragraphs_stay_in_bounds(parts, glue):
    text = glue.join(parts)
    found = find_entities(text)
    assert all(0 <= s < e <= len(text) for s, e, _ in found)
    assert all(a[1] <= b[0] for a, b in zip(found, found[1:]))
    first = find_entities(parts[0])
    assert [(s, e, lab) for s, e, lab in found if e <= len(parts[0])][:len(first) - 1] == first[:len(first) - 1]


# --------------------------------------------------------------------- sectors


def test_lexicons_match_phrases_in_match_key_form():
    """The rules' word lists are PhraseIndexes over syllables: spacing around punctuation
    counts, the kind of dash and the spacing around it do not, case counts unless folded."""
    lexicon = _lexicon(["TP.HCM", "Bà Rịa - Vũng Tàu"])
    assert lexicon.longest_at(syllables("ở TP.HCM").keys, 1) == 4
    assert lexicon.longest_at(syllables("ở TP. HCM").keys, 1) is None
    assert lexicon.longest_at(syllables("(Bà Rịa–Vũng Tàu)").keys, 1) == 6
    assert lexicon.longest_at(syllables("ở tp.hcm").keys, 1) is None
    folded = _lexicon(["tp.hcm"])
    assert folded.longest_at(syllables("ở TP.HCM").folded, 1) == 4
    assert folded.longest_at(syllables("ở TP.HCM").folded, 2) is None


def test_sector_keywords():
    names = load_schema().sector_names
    cats = find_sectors("Hai tỉnh tăng cường hợp tác phát triển du lịch và xúc tiến đầu tư.")
    assert list(cats) == names and set(cats.values()) <= {0.0, 1.0}
    assert cats["TOURISM"] == 1.0 and cats["INVESTMENT"] == 1.0 and cats["HEALTH"] == 0.0
    assert set(find_sectors("Chiều nay trời mưa.").values()) == {0.0}
    assert find_sectors("các dịch vụ hỗ trợ")["HEALTH"] == 0.0  # "dịch" is a keyword, "dịch vụ" is one word


def test_missing_keywords_and_unknown_labels_warn_and_stay_silent():
    base = default_rules()
    config = json.loads(json.dumps(base.config))
    del config["sectors"]["TOURISM"]
    config["figure"]["label"] = "NUMBER"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rules = Rules(config, base.gazetteer, base.entity_labels, base.sector_labels)
    messages = " ".join(str(w.message) for w in caught)
    assert "TOURISM" in messages and "NUMBER" in messages
    text = "phát triển du lịch với 87 doanh nghiệp"
    assert rules.sectors(text)["TOURISM"] == 0.0 and base.sectors(text)["TOURISM"] == 1.0
    assert "FIGURE" not in {lab for *_, lab in rules.entities(text)}
    assert "FIGURE" in {lab for *_, lab in base.entities(text)}


# --------------------------------------------------------------------- spaCy component


def test_component_sets_ents_and_cats():
    nlp = rules_pipeline()
    text = SEED_PARAGRAPHS[17]
    doc = nlp(text)
    assert list(doc.cats) == load_schema().sector_names
    chars = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
    for s, e, label in find_entities(text):  # token-expanded, so each rule span lies in an entity
        assert any(a <= s and e <= b and lab == label for a, b, lab in chars)


def test_component_round_trip_in_a_fresh_process_without_the_repo_config(tmp_path):
    nlp = rules_pipeline()
    nlp.to_disk(tmp_path / "pipe")
    reloaded = spacy.load(tmp_path / "pipe")
    for text in SEED_PARAGRAPHS:
        a, b = nlp(text), reloaded(text)
        assert [(e.start_char, e.end_char, e.label_) for e in a.ents] == \
               [(e.start_char, e.end_char, e.label_) for e in b.ents]
        assert a.cats == b.cats
    # a fresh process whose repo configs are missing still loads and runs the saved rules
    script = (
        "import json, sys, spacy, hoptac.annotate.rules\n"
        "nlp = spacy.load(sys.argv[1])\n"
        "print(json.dumps([[(e.start_char, e.end_char, e.label_) for e in nlp(t).ents] for t in sys.argv[2:]]))\n"
    )
    env = {"HOPTAC_RULES": str(tmp_path / "missing-rules.yml"), "HOPTAC_LABELS": str(tmp_path / "missing-labels.yml"),
           "PATH": "/usr/bin:/bin"}
    texts = SEED_PARAGRAPHS[:6]
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "pipe"), *texts], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    expected = [[[e.start_char, e.end_char, e.label_] for e in nlp(t).ents] for t in texts]
    assert json.loads(out.stdout) == expected


# --------------------------------------------------------------------- against the gold


def rules_scores(rows: list[dict]) -> dict:
    """The rules scored on gold rows, as `hoptac evaluate --baseline rules` scores them."""
    schema = load_schema()
    predictions = predict(rules_baseline(), [row["text"] for row in rows])
    return score(rows, predictions, schema.entity_names, schema.sector_names, with_sectors=True)


def test_rules_score_well_on_the_seed_gold():
    rows, *_ = load_data(SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json")
    assert len(rows) == len(SEED_PARAGRAPHS)
    result = rules_scores(rows)
    ner = result["ner"]
    assert ner["per_label"]["LOCALITY"]["f1"] > 0.9
    assert ner["per_label"]["FIGURE"]["f1"] > 0.7
    assert ner["micro"]["f1"] > 0.7
    assert result["sectors"]["micro"]["f1"] > 0.7


@pytest.mark.skipif(not GOLD_EXPORT.exists(), reason="shared gold export not present")
def test_rules_on_the_news_gold_read_in_place():
    rows, report = examples_from_exports([GOLD_EXPORT])
    counts = json.loads(GOLD_COUNTS.read_text(encoding="utf-8"))
    # tasks with no annotation and tasks whose only annotation was cancelled have no primary one
    assert len(rows) == counts["tasks"] - counts["unannotated_tasks"] - counts["cancelled"]
    # the spans of the primary annotations, before alignment to words: primary annotations picked right
    assert {label: entry.total for label, entry in report.alignment.labels.items()} == counts["entities_primary"]
    ner = rules_scores(load_data(GOLD_EXPORT)[0])["ner"]
    assert ner["per_label"]["LOCALITY"]["f1"] > 0.8
    assert ner["per_label"]["FIGURE"]["f1"] > 0.6


def test_spans_of_decomposed_text_point_into_the_text_given():
    nfc_text = "Chủ tịch UBND TP. Hồ Chí Minh và tỉnh Khánh Hòa ký 15 văn bản"
    nfd_text = unicodedata.normalize("NFD", nfc_text)
    assert len(nfd_text) > len(nfc_text)
    got = [(unicodedata.normalize("NFC", nfd_text[s:e]), lab) for s, e, lab in find_entities(nfd_text)]
    assert got == [(nfc_text[s:e], lab) for s, e, lab in find_entities(nfc_text)]
    assert ("Khánh Hòa", "LOCALITY") in got and ("15 văn bản", "FIGURE") in got
