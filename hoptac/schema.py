"""The label schema, read from ``configs/labels.yml`` (the single source of truth).

Every stage asks this module for labels; nothing else hard-codes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from hoptac.errors import HoptacError
from hoptac.resources import labels_path

_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class EntityLabel:
    name: str
    description: str
    colour: str
    hotkey: str


@dataclass(frozen=True)
class SectorLabel:
    name: str
    description: str
    hotkey: str | None = None  # fixed Label Studio key; without one, Label Studio assigns one by position


@dataclass(frozen=True)
class LabelSchema:
    entities: tuple[EntityLabel, ...]
    sectors: tuple[SectorLabel, ...]
    source: str = ""

    @property
    def entity_names(self) -> list[str]:
        return [label.name for label in self.entities]

    @property
    def sector_names(self) -> list[str]:
        return [label.name for label in self.sectors]

    @property
    def bio_tags(self) -> list[str]:
        """``O`` then ``B-X``, ``I-X`` for each entity label, in schema order."""
        return bio_tags(self.entity_names)


def bio_tags(entity_labels: list[str]) -> list[str]:
    """The BIO tag names of ``entity_labels``: ``O`` then ``B-X``, ``I-X`` per label, in order."""
    return ["O"] + [f"{p}-{name}" for name in entity_labels for p in ("B", "I")]


def load_schema(path: str | Path | None = None) -> LabelSchema:
    return _load(str(Path(path) if path else labels_path()))


def read_yaml(path: str | Path, what: str):
    """Parse a YAML config file; a missing or broken file is a one-line error naming file and line."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise HoptacError(f"{path}: {what} not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        place = f"{path}:{mark.line + 1}" if mark else str(path)
        raise HoptacError(f"{place}: not valid YAML ({getattr(e, 'problem', e)})") from None


@lru_cache(maxsize=8)
def _load(path: str) -> LabelSchema:
    raw = read_yaml(path, "label schema")
    if not isinstance(raw, dict):
        raise HoptacError(f"{path}: expected a mapping with 'entities' and 'sectors'")
    entities = tuple(
        EntityLabel(
            name=_name(path, "entities", i, item),
            description=_text(path, "entities", i, item, "description"),
            colour=_colour(path, i, item),
            hotkey=_text(path, "entities", i, item, "hotkey"),
        )
        for i, item in enumerate(_list(path, raw, "entities"))
    )
    sectors = tuple(
        SectorLabel(
            name=_name(path, "sectors", i, item),
            description=_text(path, "sectors", i, item, "description"),
            hotkey=_text(path, "sectors", i, item, "hotkey") if item.get("hotkey") is not None else None,
        )
        for i, item in enumerate(_list(path, raw, "sectors", allow_empty=True))
    )
    names = [e.name for e in entities] + [s.name for s in sectors]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise HoptacError(f"{path}: label names must be unique, repeated: {', '.join(dupes)}")
    hotkeys = [e.hotkey for e in entities] + [s.hotkey for s in sectors if s.hotkey]
    clash = sorted({h for h in hotkeys if hotkeys.count(h) > 1})
    if clash:
        raise HoptacError(f"{path}: hotkeys must be unique, repeated: {', '.join(clash)}")
    return LabelSchema(entities=entities, sectors=sectors, source=path)


def _list(path, raw, key, allow_empty=False) -> list:
    items = raw.get(key)
    if items is None and allow_empty:
        return []
    if not isinstance(items, list) or (not items and not allow_empty):
        raise HoptacError(f"{path}: '{key}' must be a non-empty list")
    return items


def _text(path, section, i, item, key) -> str:
    value = item.get(key) if isinstance(item, dict) else None
    if value is None or not str(value).strip():
        raise HoptacError(f"{path}: {section}[{i}] needs a '{key}'")
    return " ".join(str(value).split())


def _name(path, section, i, item) -> str:
    name = _text(path, section, i, item, "name")
    if not _NAME.match(name):
        raise HoptacError(f"{path}: {section}[{i}] name {name!r} must be UPPER_SNAKE_CASE")
    return name


def _colour(path, i, item) -> str:
    colour = _text(path, "entities", i, item, "colour")
    if not _COLOUR.match(colour):
        raise HoptacError(f"{path}: entities[{i}] colour {colour!r} must look like #1f77b4")
    return colour
