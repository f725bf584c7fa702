"""The Label Studio labelling config generated from the schema (no server needed)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest
from conftest import REPO, hoptac
from hoptac.annotate.config import (
    GUIDE,
    instruction_html,
    labelling_config,
    read_config,
)

from hoptac.errors import HoptacError
from hoptac.schema import EntityLabel, LabelSchema, SectorLabel, load_schema


@pytest.fixture(scope="module")
def schema() -> LabelSchema:
    return load_schema()


@pytest.fixture(scope="module")
def root(schema) -> ET.Element:
    return ET.fromstring(labelling_config(schema))


def test_labels_read_back_equal_the_schema(schema):
    labels = read_config(labelling_config(schema))
    assert list(labels.entities) == schema.entity_names
    assert list(labels.sectors) == schema.sector_names
    assert labels.span_controls == ("ner",)
    assert labels.choice_controls == ("sectors",)


def test_entity_labels_carry_colour_hotkey_and_description(schema, root):
    labels = root.find(".//Labels[@name='ner']")
    assert labels is not None and labels.get("toName") == "text"
    found = {el.get("value"): el for el in labels.iter("Label")}
    assert list(found) == schema.entity_names
    for entity in schema.entities:
        assert found[entity.name].get("background") == entity.colour
        assert found[entity.name].get("hotkey") == entity.hotkey
        assert found[entity.name].get("hint") == entity.description


def test_sector_hotkeys_are_fixed_and_clash_with_nothing(schema, root):
    keys = {c.get("value"): c.get("hotkey") for c in root.iter("Choice")}
    assert keys == {s.name: s.hotkey for s in schema.sectors}
    every = [e.hotkey for e in schema.entities] + [k for k in keys.values() if k]
    assert len(every) == len(set(every))
    # Label Studio 1.23's own single-key shortcuts in the text labelling screen
    assert not set(every) & {"u", "backspace", "delete", "escape", "enter"}


def test_sectors_are_one_multiple_choice_with_hints(schema, root):
    choices = root.findall(".//Choices")
    assert len(choices) == 1
    assert choices[0].get("name") == "sectors" and choices[0].get("toName") == "text"
    assert choices[0].get("choice") == "multiple"
    assert [(c.get("value"), c.get("hint")) for c in choices[0].iter("Choice")] == \
        [(s.name, s.description) for s in schema.sectors]


def test_title_is_context_above_the_paragraph_and_not_labelable(root):
    texts = [el for el in root.iter("Text")]
    by_value = {el.get("value"): el for el in texts}
    assert set(by_value) == {"$title", "$text"}
    assert texts.index(by_value["$title"]) < texts.index(by_value["$text"])
    assert by_value["$text"].get("name") == "text"
    title = by_value["$title"]
    assert title.get("selectionEnabled") == "false"
    targets = {el.get("toName") for el in root.iter() if el.get("toName")}
    assert title.get("name") not in targets
    headers = " ".join(el.get("value", "") for el in root.iter("Header")).lower()
    assert "context" in headers


def test_names_and_descriptions_with_markup_characters_survive():
    nasty = 'Tên <b>"đậm"</b> & \'nháy\' > < &amp;'
    schema = LabelSchema(
        entities=(EntityLabel(name='A<&">B', description=nasty, colour="#123456", hotkey="1"),
                  EntityLabel(name="PLAIN", description="plain", colour="#654321", hotkey="2")),
        sectors=(SectorLabel(name='S&<">', description=nasty),),
    )
    xml = labelling_config(schema)
    root = ET.fromstring(xml)  # still well-formed
    label = root.find(".//Label")
    assert label.get("value") == 'A<&">B' and label.get("hint") == nasty
    choice = root.find(".//Choice")
    assert choice.get("value") == 'S&<">' and choice.get("hint") == nasty
    assert read_config(xml).entities == ('A<&">B', "PLAIN")


def test_descriptions_from_a_yaml_schema_are_escaped(tmp_path):
    labels = tmp_path / "labels.yml"
    labels.write_text(
        "entities:\n"
        "  - name: PLACE\n"
        "    description: 'Tỉnh <ủy> & \"HĐND\"'\n"
        "    colour: '#1f77b4'\n"
        "    hotkey: 'p'\n"
        "sectors:\n"
        "  - name: OTHER\n"
        "    description: '<script>alert(1)</script>'\n",
        encoding="utf-8",
    )
    root = ET.fromstring(labelling_config(load_schema(labels)))
    assert root.find(".//Label").get("hint") == 'Tỉnh <ủy> & "HĐND"'
    assert root.find(".//Choice").get("hint") == "<script>alert(1)</script>"
    assert root.find(".//Choice").findall("*") == []  # no element smuggled in


def test_read_config_keys_on_tag_types_not_names():
    xml = """<View><Text name="doc" value="$body"/>
      <Labels name="entities" toName="doc"><Label value="PER"/><Label value="ORG"/></Labels>
      <Choices name="topic" toName="doc" choice="single"><Choice value="SPORT"/></Choices></View>"""
    labels = read_config(xml)
    assert labels.entities == ("PER", "ORG") and labels.sectors == ("SPORT",)
    assert labels.span_controls == ("entities",) and labels.choice_controls == ("topic",)


def test_read_config_bad_xml_is_a_one_line_error():
    with pytest.raises(HoptacError) as error:
        read_config("<View>\n<Labels name='ner'>\n</View>", source="project 7 config")
    message = str(error.value)
    assert message.startswith("project 7 config:3:") and "\n" not in message


def test_instructions_are_the_guide_rendered_to_html():
    guide = GUIDE.read_text(encoding="utf-8")
    first_heading = next(line.lstrip("# ").strip() for line in guide.splitlines() if line.startswith("#"))
    html = instruction_html()
    assert f">{first_heading}</h1>" in html or f">{first_heading}</h2>" in html
    assert ("<table>" in html) == ("| ---" in guide)
    assert "<script" not in html


def test_missing_guide_is_a_one_line_error(tmp_path):
    with pytest.raises(HoptacError, match="guide.md: annotation guide not found"):
        instruction_html(tmp_path / "guide.md")


def test_cli_config_follows_the_schema_file(tmp_path):
    labels = tmp_path / "labels.yml"
    labels.write_text(
        "entities:\n"
        "  - {name: PORT_NAME, description: 'A port', colour: '#000000', hotkey: 'q'}\n"
        "sectors:\n"
        "  - {name: SHIPPING, description: 'Ships & <boats>'}\n",
        encoding="utf-8",
    )
    out = tmp_path / "config.xml"
    result = hoptac("annotate", "config", "-o", out, env={**os.environ, "HOPTAC_LABELS": str(labels)},
                    check=True)
    assert str(out) in result.stdout
    written = read_config(out.read_text(encoding="utf-8"))
    assert written.entities == ("PORT_NAME",) and written.sectors == ("SHIPPING",)


def test_cli_config_prints_the_default_schema_config(schema):
    result = hoptac("annotate", "config", check=True, cwd=REPO)
    assert result.stdout.strip() == labelling_config(schema).strip()


def test_readme_screenshot_shows_the_current_labelling_config():
    """The README picture carries the hash of the config it shows; regenerate it with `make screenshot`."""
    from hoptac.annotate.screenshot import config_hash, picture_config_hash

    picture = REPO / "annotate" / "labelling-screen.png"
    assert picture_config_hash(picture) == config_hash(), (
        "annotate/labelling-screen.png was taken with another configs/labels.yml: run `make screenshot`")
