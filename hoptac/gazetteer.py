"""The word lists: the rules configuration (``configs/rules.yml``) and the LOCALITY gazetteer.

The ground floor of the toolkit: the tokenizer's places, the lexicon features,
the sector keywords and the rule pre-annotator (``annotate/rules.py``) all read them here.

Place names come from the ``vietnamadminunits`` package, which ships both the
pre-2025 units (63 provinces, their districts and wards) and the 2025 units
(34 provinces, 3,321 wards). News written before 2025 names provinces that no
longer exist (Hà Nam, Vĩnh Phúc, Bạc Liêu), so both sets are read. Only the
short names are kept ("Hà Nội", not "Thành phố Hà Nội"), in Unicode NFC, in
both tone-mark spellings ("Khánh Hòa" and "Khánh Hoà").

Names are graded by how safely they can be matched on their own:

* ``free``: provinces, districts, and the small extras list of
  ``configs/rules.yml`` (countries, regions, abbreviations): matched anywhere.
* ``ward``: commune/ward-level names (many are ordinary words or people's names:
  "Thống Nhất", "Quang Trung"), and district names listed as ambiguous in
  ``rules.yml``: matched only right after an administrative word ("xã", "phường"…).

Pure-number names ("Phường 1", "Quận 3") are dropped: numbered units are found
by a pattern (administrative word + number) in :mod:`hoptac.annotate.rules`.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hoptac.errors import HoptacError
from hoptac.resources import rules_path
from hoptac.schema import read_yaml

RULES_SECTIONS = ("locality", "official", "field", "figure", "sectors")

# Tone-mark placement on "oa", "oe", "uy" at the end of a syllable: both the
# modern ("Hòa", "Thủy") and the traditional ("Hoà", "Thuỷ") spellings are in use.
_TONE_PAIRS = [
    (f"{a}{b}", f"{c}{d}")
    for (a, b, c, d) in (
        ("ò", "a", "o", "à"), ("ó", "a", "o", "á"), ("ỏ", "a", "o", "ả"), ("õ", "a", "o", "ã"), ("ọ", "a", "o", "ạ"),
        ("ò", "e", "o", "è"), ("ó", "e", "o", "é"), ("ỏ", "e", "o", "ẻ"), ("õ", "e", "o", "ẽ"), ("ọ", "e", "o", "ẹ"),
        ("ù", "y", "u", "ỳ"), ("ú", "y", "u", "ý"), ("ủ", "y", "u", "ỷ"), ("ũ", "y", "u", "ỹ"), ("ụ", "y", "u", "ỵ"),
    )
]
_DASHES = re.compile(r"\s*[-–—‑]\s*")
_SPACES = re.compile(r"\s+")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def match_key(text: str) -> str:
    """The form names are compared in: NFC, one space, every dash as " - "."""
    return _SPACES.sub(" ", _DASHES.sub(" - ", nfc(text))).strip()


def _tone_rules() -> list[tuple[re.Pattern, str]]:
    rules = []
    for modern, old in _TONE_PAIRS:
        for a, b in ((modern, old), (old, modern), (modern.capitalize(), old.capitalize()),
                     (old.capitalize(), modern.capitalize())):
            rules.append((re.compile(re.escape(a) + r"(?![^\W\d_])"), b))  # at the end of a syllable
    return rules


_TONE_RULES = _tone_rules()
_TONE_CHARS = re.compile("|".join(sorted({re.escape(p) for pair in _TONE_PAIRS for p in pair})), re.IGNORECASE)


def tone_variants(name: str) -> set[str]:
    """``name`` in both tone-mark spellings, syllable by syllable ("Hòa Bình" ↔ "Hoà Bình")."""
    out = {name}
    if not _TONE_CHARS.search(name):
        return out
    for pattern, replacement in _TONE_RULES:
        out |= {pattern.sub(replacement, n) for n in out}
    return out


# --------------------------------------------------------------------------- config


def load_rules_config(path: str | Path | None = None) -> dict:
    return _load_rules(str(Path(path) if path else rules_path()))


@lru_cache(maxsize=4)
def _load_rules(path: str) -> dict:
    raw = read_yaml(path, "rules configuration")
    if not isinstance(raw, dict):
        raise HoptacError(f"{path}: expected a mapping with sections {', '.join(RULES_SECTIONS)}")
    missing = [s for s in RULES_SECTIONS if not isinstance(raw.get(s), dict)]
    if missing:
        raise HoptacError(f"{path}: missing or malformed section(s): {', '.join(missing)}")
    return _normalise_config(path, raw)


def _normalise_config(path: str, raw):
    """NFC every string; lists must hold strings only."""
    if isinstance(raw, dict):
        return {k: _normalise_config(f"{path}: {k}", v) for k, v in raw.items()}
    if isinstance(raw, list):
        bad = [x for x in raw if not isinstance(x, str)]
        if bad:
            raise HoptacError(f"{path}: expected a list of strings, found {bad[0]!r}")
        return [nfc(" ".join(x.split())) for x in raw if x.strip()]
    if isinstance(raw, str):
        return nfc(raw)
    return raw


# --------------------------------------------------------------------------- gazetteer


@dataclass
class Gazetteer:
    """Place names by match key: ``free`` match anywhere, ``ward`` only after an admin word."""

    free: dict[str, str] = field(default_factory=dict)  # key -> level (province, district, extra)
    ward: set[str] = field(default_factory=set)
    max_words: int = 1

    def __contains__(self, name: str) -> bool:
        key = match_key(name)
        return key in self.free or key in self.ward

    def level(self, name: str) -> str | None:
        key = match_key(name)
        return self.free.get(key) or ("ward" if key in self.ward else None)

    def to_dict(self) -> dict:
        return {"free": dict(sorted(self.free.items())), "ward": sorted(self.ward)}

    @classmethod
    def from_dict(cls, data: dict) -> "Gazetteer":
        gaz = cls(free=dict(data["free"]), ward=set(data["ward"]))
        gaz.max_words = max((len(k.split()) for k in (*gaz.free, *gaz.ward)), default=1)
        return gaz


def admin_units_db() -> Path:
    import vietnamadminunits

    path = Path(vietnamadminunits.__file__).parent / "data" / "dataset.db"
    if not path.exists():
        raise HoptacError(f"{path}: vietnamadminunits data not found (reinstall the package)")
    return path


def admin_unit_names(db: Path | None = None) -> dict[str, set[str]]:
    """Short names by level, from both the pre-2025 and the 2025 tables."""
    queries = {
        "province": ["SELECT DISTINCT provinceShort FROM admin_units_legacy",
                     "SELECT DISTINCT provinceShort FROM admin_units"],
        "district": ["SELECT DISTINCT districtShort FROM admin_units_legacy"],
        "ward": ["SELECT DISTINCT wardShort FROM admin_units_legacy",
                 "SELECT DISTINCT wardShort FROM admin_units"],
    }
    out: dict[str, set[str]] = {}
    with sqlite3.connect(f"file:{db or admin_units_db()}?mode=ro", uri=True) as conn:
        for level, sqls in queries.items():
            out[level] = {nfc(row[0]).strip() for sql in sqls for row in conn.execute(sql) if row[0]}
    return out


_ADMIN_PREFIX = re.compile(
    r"^(Tỉnh|Thành phố|Quận|Huyện|Xã|Phường|Thị xã|Thị trấn|Đặc khu)\s+", re.IGNORECASE
)


def usable_name(name: str) -> bool:
    """Drop names that cannot be told from ordinary text: numbers, single letters."""
    return bool(re.search(r"[^\W\d_]{2}", name)) and not re.search(r"\d", name)


def build_gazetteer(config: dict | None = None, db: Path | None = None) -> Gazetteer:
    config = config if config is not None else load_rules_config()
    loc = config["locality"]
    ambiguous = {v for n in loc.get("ambiguous", []) for v in tone_variants(match_key(n))}
    names = admin_unit_names(db)
    gaz = Gazetteer()

    def add_free(name: str, level: str) -> None:
        for variant in tone_variants(match_key(_ADMIN_PREFIX.sub("", name))):
            if variant in ambiguous:
                gaz.ward.add(variant)
            elif variant not in gaz.free:
                gaz.free[variant] = level

    for level in ("province", "district"):
        for name in sorted(names[level]):
            if usable_name(name):
                add_free(name, level)
    for name in loc.get("extras", []):
        add_free(name, "extra")
    for name in sorted(names["ward"]):
        if usable_name(name):
            for variant in tone_variants(match_key(_ADMIN_PREFIX.sub("", name))):
                if variant not in gaz.free:
                    gaz.ward.add(variant)
    gaz.max_words = max(len(k.split()) for k in (*gaz.free, *gaz.ward))
    return gaz


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The gazetteer of this checkout's ``configs/rules.yml``, built once per process."""
    return build_gazetteer()
