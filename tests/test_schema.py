"""configs/labels.yml is the single label schema: loaded, validated, errors are one line."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, hoptac

from hoptac.errors import HoptacError
from hoptac.schema import load_schema

GUIDELINE_SECTORS = 13


def test_default_schema():
    schema = load_schema()
    assert schema.entity_names == ["LOCALITY", "OFFICIAL", "FIELD", "FIGURE"]
    assert len(schema.sector_names) == GUIDELINE_SECTORS
    assert schema.bio_tags[:3] == ["O", "B-LOCALITY", "I-LOCALITY"]
    assert len(schema.bio_tags) == 1 + 2 * len(schema.entity_names)
    assert all(e.colour.startswith("#") and e.hotkey and e.description for e in schema.entities)
    assert all(s.description for s in schema.sectors)


def write(tmp_path, data) -> str:
    path = tmp_path / "labels.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def base() -> dict:
    return yaml.safe_load((REPO / "configs" / "labels.yml").read_text(encoding="utf-8"))


def test_added_label_flows_through(tmp_path):
    data = base()
    data["entities"].append({"name": "ORG", "description": "Organisations", "colour": "#123456", "hotkey": "z"})
    schema = load_schema(write(tmp_path, data))
    assert schema.entity_names[-1] == "ORG" and schema.bio_tags[-2:] == ["B-ORG", "I-ORG"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["entities"].append(dict(d["entities"][0])), "must be unique"),
        (lambda d: d["entities"][0].update(colour="blue"), "colour"),
        (lambda d: d["entities"][1].update(hotkey=d["entities"][0]["hotkey"]), "hotkeys must be unique"),
        (lambda d: d["sectors"][2].update(hotkey=d["entities"][0]["hotkey"]), "hotkeys must be unique, repeated: 1"),
        (lambda d: d["sectors"][0].pop("description"), "sectors[0] needs a 'description'"),
        (lambda d: d["entities"][0].update(name="locality"), "UPPER_SNAKE_CASE"),
        (lambda d: d.pop("entities"), "'entities' must be a non-empty list"),
    ],
)
def test_invalid_schema(tmp_path, mutate, message):
    data = base()
    mutate(data)
    with pytest.raises(HoptacError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_schema(write(tmp_path, data))


def test_broken_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "labels.yml"
    path.write_text("entities:\n  - name: [unclosed\n", encoding="utf-8")
    with pytest.raises(HoptacError, match=r"labels.yml:\d+: not valid YAML"):
        load_schema(path)


def test_cli_reports_schema_error_in_one_line(tmp_path):
    path = tmp_path / "labels.yml"
    path.write_text("entities: []\n", encoding="utf-8")
    env = {**__import__("os").environ, "HOPTAC_LABELS": str(path)}
    result = hoptac("annotate", "config", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("hoptac: error:") and str(path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
