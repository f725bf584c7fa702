"""Stage 2 (annotate): the Label Studio labelling config, generated from the label schema.

``labelling_config(schema)`` builds the XML that Label Studio shows annotators:
the article title as read-only context, the paragraph, one ``Labels`` control
(``ner``) with every entity label of ``configs/labels.yml`` (colour, hotkey,
description as hover hint) and one multiple-choice ``Choices`` control
(``sectors``) with every sector. The XML is built with ElementTree, so any
name or description is escaped properly.

``read_config(xml)`` reads the labels back from any labelling config, keyed on
the tag types (``Labels``/``Label``, ``Choices``/``Choice``), not on control
names, so code can check a project or an export against the schema.

``instruction_html()`` renders ``annotate/guide.md`` to the simple HTML that
Label Studio shows as the project's instructions.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from hoptac.errors import HoptacError
from hoptac.resources import GUIDE
from hoptac.schema import LabelSchema

# Control and object names: the names Label Studio writes as from_name/to_name.
TEXT_OBJECT = "text"
TITLE_OBJECT = "title"
NER_CONTROL = "ner"
SECTOR_CONTROL = "sectors"

_CONTEXT_STYLE = ("background: #f4f4f4; border-left: 4px solid #bbbbbb; "
                  "padding: 0.4em 0.8em; margin-bottom: 0.8em; color: #555555")


def labelling_config(schema: LabelSchema) -> str:
    """The labelling config XML for ``schema`` (deterministic: same schema, same text)."""
    view = ET.Element("View")
    _title_context(view)
    ET.SubElement(view, "Header", value="Paragraph: press a label's hotkey (or click the label), then select the words", size="5")
    _entity_labels(view, schema)
    ET.SubElement(view, "Text", name=TEXT_OBJECT, value=f"${TEXT_OBJECT}")
    ET.SubElement(view, "Header", value="Sectors: tick every sector this paragraph is about (zero or more)",
                  size="5")
    _sector_choices(view, schema)
    ET.indent(view, space="  ")
    return ET.tostring(view, encoding="unicode") + "\n"


def _title_context(view: ET.Element) -> None:
    """The article title, shown above the paragraph as context: no control points at it."""
    box = ET.SubElement(view, "View", style=_CONTEXT_STYLE)
    ET.SubElement(box, "Header", value="Context: the article's title (not labelled here)", size="6")
    ET.SubElement(box, "Text", name=TITLE_OBJECT, value=f"${TITLE_OBJECT}", selectionEnabled="false")


def _entity_labels(view: ET.Element, schema: LabelSchema) -> None:
    labels = ET.SubElement(view, "Labels", name=NER_CONTROL, toName=TEXT_OBJECT, showInline="true")
    for entity in schema.entities:
        ET.SubElement(labels, "Label", value=entity.name, background=entity.colour,
                      hotkey=entity.hotkey, hint=entity.description)


def _sector_choices(view: ET.Element, schema: LabelSchema) -> None:
    choices = ET.SubElement(view, "Choices", name=SECTOR_CONTROL, toName=TEXT_OBJECT, choice="multiple",
                            showInline="true")
    for sector in schema.sectors:
        keys = {"hotkey": sector.hotkey} if sector.hotkey else {}
        ET.SubElement(choices, "Choice", value=sector.name, hint=sector.description, **keys)


@dataclass(frozen=True)
class ConfigLabels:
    """What a labelling config offers: span labels and choices, with their control names."""

    entities: tuple[str, ...]
    sectors: tuple[str, ...]
    span_controls: tuple[str, ...]
    choice_controls: tuple[str, ...]


def read_config(xml: str, source: str = "labelling config") -> ConfigLabels:
    """Label names of every ``Labels`` and choice values of every ``Choices`` control in ``xml``."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        line, column = e.position
        raise HoptacError(f"{source}:{line}:{column}: not valid XML ({_reason(e)})") from None
    span_controls = [el for el in root.iter() if el.tag == "Labels"]
    choice_controls = [el for el in root.iter() if el.tag == "Choices"]
    return ConfigLabels(
        entities=tuple(_values(span_controls, "Label")),
        sectors=tuple(_values(choice_controls, "Choice")),
        span_controls=tuple(el.get("name", "") for el in span_controls),
        choice_controls=tuple(el.get("name", "") for el in choice_controls),
    )


def _values(controls: list[ET.Element], child: str) -> list[str]:
    seen: dict[str, None] = {}
    for control in controls:
        for el in control.iter(child):
            value = el.get("value")
            if value is not None:
                seen.setdefault(value, None)
    return list(seen)


def _reason(error: ET.ParseError) -> str:
    return str(error).split(":")[0]


def instruction_html(guide: Path = GUIDE) -> str:
    """``guide.md`` as simple HTML for Label Studio's instructions (tables included)."""
    try:
        text = guide.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HoptacError(f"{guide}: annotation guide not found") from None
    except UnicodeDecodeError as e:
        raise HoptacError(f"{guide}: not UTF-8 text (byte {e.start})") from None
    try:
        from markdown_it import (
            MarkdownIt,  # installed with typer (rich → markdown-it-py)
        )
    except ImportError:  # pragma: no cover - only without rich
        return f"<pre>{html.escape(text)}</pre>"
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
