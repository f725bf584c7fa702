"""Stage 2 (pre-annotation): the rule-based annotator behind ``--pre rules``.

Entities, at character level:

* LOCALITY from the gazetteer (:mod:`hoptac.gazetteer`): provinces, districts,
  countries and regions anywhere; ward-level names only after an administrative
  word; numbered units after "quận"/"phường" ("quận 1" → "1"); short country
  forms in pairs ("Việt - Lào").
* OFFICIAL: the name after a title ("Bí thư Tỉnh ủy Hưng Yên Đỗ Tiến Sỹ" →
  "Đỗ Tiến Sỹ"), after an honorific ("ông Hạo" → "Hạo"), or before a title
  ("Nguyễn Văn A, Chủ tịch…"); repeated mentions of a found name.
* FIGURE: a number in Vietnamese format, its scale word and its unit or counted
  noun ("10.900 tỷ đồng", "87 doanh nghiệp", "15%"); not dates, years, periods,
  durations, ordinals or identifiers; approximators stay outside.
* FIELD: a lexicon of fields of activity near a cue word ("lĩnh vực", "hợp tác"…).

Sectors: one 0/1 score per sector of the schema, from keywords.

Lexicons and the label each rule produces live in ``configs/rules.yml``; labels are
checked against ``configs/labels.yml`` (a rule whose label is not in the schema
is switched off with a warning). :func:`find_entities` is the pure function;
the spaCy component ``hoptac_rules`` wraps it and serialises everything it needs
(gazetteer, lexicons, labels), so a saved pipeline reloads without this repo.
"""

from __future__ import annotations

import json
import re
import warnings
from functools import cached_property, lru_cache
from pathlib import Path

from hoptac.corpus.text import is_normal, normalise, normalise_with_offsets
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans

import hoptac.tokenizer  # noqa: F401  (registers the tokenizer a saved rules pipeline names)
from hoptac import __version__
from hoptac.components import PhraseIndex
from hoptac.errors import HoptacError
from hoptac.gazetteer import (
    Gazetteer,
    build_gazetteer,
    gazetteer,
    load_rules_config,
    match_key,
)
from hoptac.model import blank_vi, new_blank
from hoptac.schema import load_schema

Span = tuple[int, int, str]
Token = tuple[int, int, str]  # start, end, text

_SYLLABLE = re.compile(r"[^\W_]+|[^\w\s]")
_DASH = "-–—‑"
_NUMBER = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"
_FIGURE_NUMBER = re.compile(rf"(?<![\w./,-])(?:{_NUMBER})(?:\s?[{_DASH}]\s?(?:{_NUMBER}))?")
_YEAR = re.compile(r"^(1[89]\d\d|20\d\d)$")
GLUE = "\u2060"  # (word joiner) marks a syllable key written against the syllable before: see Syllables
# Priority when two candidates have the same length (lower wins).
_PRIORITY = {"official": 0, "locality": 1, "figure": 2, "field": 3}


class Syllables(list):
    """Syllable tokens ``(start, end, text)`` of ``text``, with their keys for the lexicons (:class:`PhraseIndex`).

    A run of syllables matches a phrase when the two are equal in :func:`match_key`
    form: so a key is the syllable (any dash as ``-``), prefixed with :data:`GLUE`
    when it is written against the syllable before ("TP.HCM": ``TP``, ``⁠.``,
    ``⁠HCM``; "TP. HCM" is not the same phrase), with what lies between when that
    is not whitespace (an underscore). Dashes always count as spaced ("Rịa-Vũng").
    """

    def __init__(self, text: str) -> None:
        super().__init__((m.start(), m.end(), m.group()) for m in _SYLLABLE.finditer(text))
        self.text = text

    @cached_property
    def keys(self) -> list[str]:
        keys, previous = [], None
        for start, end, word in self:
            dash = word in _DASH
            key = "-" if dash else word
            if previous is not None and not dash and previous[1] not in _DASH:
                gap = self.text[previous[0]:start]
                if not gap or not gap.isspace():
                    key = "".join(gap.split()) + GLUE + key
            keys.append(key)
            previous = (end, word)
        return keys

    @cached_property
    def folded(self) -> list[str]:
        """:attr:`keys`, case-folded."""
        return [key.casefold() for key in self.keys]


def syllables(text: str) -> Syllables:
    """Words and single punctuation marks, with their character offsets."""
    return Syllables(text)


def _is_cap(word: str) -> bool:
    return word[:1].isupper() and word[:1].isalpha()


def _is_acronym(word: str) -> bool:
    return len(word) > 1 and word.isupper() and word.isalpha()


def _ci(words) -> set[str]:
    """The words with their first letter in both cases."""
    return {v for w in words for v in (w, w[:1].lower() + w[1:], w[:1].upper() + w[1:])}


def _vi_tokenizer():
    return blank_vi().tokenizer


def word_bounds(text: str) -> list[tuple[int, int]]:
    """Word boundaries from the project's tokenizer (``hoptac.tokenizer``: pyvi word segmentation, repaired)."""
    return [(t.idx, t.idx + len(t.text)) for t in _vi_tokenizer()(text)]


def _syllable_key(phrase: str) -> str:
    """A phrase as :class:`Syllables` keys it (the keys of its match key's syllables, space-joined)."""
    return " ".join(syllables(match_key(phrase)).keys)


def _lexicon(phrases) -> PhraseIndex:
    """Phrases found by :meth:`PhraseIndex.longest_at` in :attr:`Syllables.keys` (case kept);
    pass case-folded phrases and look in :attr:`Syllables.folded` to ignore case."""
    return PhraseIndex({"": list(phrases)}, key=_syllable_key, joiner=GLUE)


class Rules:
    """The rule set: lexicons, gazetteer and the schema's labels. Serialisable as JSON."""

    def __init__(self, config: dict, gaz: Gazetteer, entity_labels: list[str], sector_labels: list[str],
                 warn: bool = True) -> None:
        self.config = config
        self.gazetteer = gaz
        self.entity_labels = list(entity_labels)
        self.sector_labels = list(sector_labels)
        self.labels: dict[str, str | None] = {}
        for section in ("locality", "official", "field", "figure"):
            label = config[section].get("label")
            if label not in self.entity_labels:
                if warn:
                    warnings.warn(f"rules.yml: {section} rules produce {label!r}, not a label of the schema: switched off")
                label = None
            self.labels[section] = label
        self._compile()
        if warn:
            silent = [s for s in self.sector_labels if not self.sector_keywords.get(s)]
            if silent:
                warnings.warn(f"rules.yml: no keywords for sector(s) {', '.join(silent)}: they never fire")
            unknown = [s for s in self.config.get("sectors", {}) if s not in self.sector_labels]
            if unknown:
                warnings.warn(f"rules.yml: keywords for {', '.join(unknown)}, not sectors of the schema: ignored")

    # ------------------------------------------------------------------ set-up

    def _compile(self) -> None:
        loc, off, fld, fig = (self.config[s] for s in ("locality", "official", "field", "figure"))
        gaz = self.gazetteer
        place_keys = list(gaz.free) + list(gaz.ward)
        self.places = _lexicon(place_keys)
        self.pair_forms = set(loc.get("pair_forms", []))
        self.admin_re = _preceded_by(loc.get("admin_words", []))
        self.numbered_re = re.compile(
            r"(?<![\w.])(?:" + "|".join(map(re.escape, sorted(loc.get("numbered_words", []), key=len, reverse=True)))
            + r")\s*(\d{1,2}(?:\s*,\s*\d{1,2}(?![\d.,]\d))*)(?![\w%])"
        ) if loc.get("numbered_words") else None
        self.street_re = _preceded_by(loc.get("not_after", []))
        self.ward_org_re = _preceded_by(loc.get("ward_not_after", []))
        zones = loc.get("zone_words", [])
        self.zone_re = re.compile(
            r"(?<![\w])(?:" + "|".join(map(re.escape, sorted(zones, key=len, reverse=True)))
            + r")((?: [^\W\d_]+)+)"
        ) if zones else None
        self.titles = _lexicon(t.casefold() for t in off.get("titles", []))
        self.org_words = _lexicon(off.get("org_words", []))
        self.org_single = set(off.get("org_words", []))
        self.place_links = _lexicon(off.get("place_links", []))
        self.honorifics = _lexicon(off.get("honorifics", []))
        self.weak_honorifics = _lexicon(off.get("weak_honorifics", []))
        self.surnames = set(off.get("surnames", []))
        generic = {match_key(g).casefold() for g in fld.get("generic", [])}
        self.field_cues = _lexicon(c.casefold() for c in fld.get("cues", []))
        self.weak_fields = {match_key(w).casefold() for w in fld.get("needs_cue", [])}
        self.fields = _lexicon(p.casefold() for p in [*fld.get("lexicon", []), *fld.get("needs_cue", [])]
                                  if match_key(p).casefold() not in generic)
        self.field_heads = _preceded_by(fld.get("not_after", []))
        self.list_words = {w.casefold() for w in fld.get("list_words", [])} | set(",;" + _DASH)
        self.scale_words = set(fig.get("scale_words", []))
        self.units = _lexicon(fig.get("units", []))
        units = sorted((u for u in fig.get("units", []) if re.fullmatch(r"[^\W\d_]+\d?|%", u)), key=len, reverse=True)
        self.glued_unit = re.compile("(?:" + "|".join(map(re.escape, units)) + r")(?![^\W_])") if units else None
        self.time_words = set(fig.get("time_words", []))
        self.figure_not_after = _preceded_by(fig.get("not_after", []))
        self.quantity_words = _preceded_by(fig.get("quantity_words", []))
        self.not_counted = set(fig.get("not_counted", []))
        self.classifiers = set(fig.get("classifiers", []))
        sectors = self.config.get("sectors", {})
        self.sector_keywords = {name: sectors.get(name, []) for name in self.sector_labels}
        self.sector_lexicons = {name: _lexicon(k.casefold() for k in kws) for name, kws in self.sector_keywords.items()}

    def to_dict(self) -> dict:
        return {"version": __version__, "config": self.config, "gazetteer": self.gazetteer.to_dict(),
                "entity_labels": self.entity_labels, "sector_labels": self.sector_labels}

    @classmethod
    def from_dict(cls, data: dict) -> "Rules":
        return cls(data["config"], Gazetteer.from_dict(data["gazetteer"]), data["entity_labels"],
                   data["sector_labels"], warn=False)

    # ------------------------------------------------------------------ entities

    def entities(self, text: str, words: list[tuple[int, int]] | None = None) -> list[Span]:
        """Non-overlapping ``(start, end, label)`` spans into ``text``, sorted; the longest wins a clash.

        Text that is not normal (not NFC, control characters…) is matched in its normal form
        (:func:`hoptac.corpus.text.normalise_with_offsets`) and the spans are mapped back to ``text``."""
        if not is_normal(text):
            norm = normalise_with_offsets(text)
            return [(norm.orig_start(s), norm.orig_end(e), label) for s, e, label in self._entities(norm.text, None)]
        return self._entities(text, words)

    def _entities(self, text: str, words: list[tuple[int, int]] | None) -> list[Span]:
        toks = syllables(text)
        candidates: list[tuple[int, int, str]] = []  # start, end, section
        words = words if words is not None else word_bounds(text)
        places = self._localities(text, toks, words) if self.labels["locality"] or self.labels["official"] else []
        if self.labels["locality"]:
            candidates += places
        if self.labels["official"]:
            candidates += self._officials(text, toks, places, words)
        if self.labels["figure"]:
            candidates += self._figures(text, words)
        if self.labels["field"]:
            candidates += self._fields(text, toks, words)
        return _resolve([(s, e, self.labels[sec], _PRIORITY[sec]) for s, e, sec in candidates])

    def _localities(self, text: str, toks: list[Token], words) -> list[tuple[int, int, str]]:
        out = []
        gaz = self.gazetteer
        word_ends = {e for _, e in words}
        for i in range(len(toks)):
            j = self.places.longest_at(toks.keys, i)
            if j is None:
                continue
            start, end = toks[i][0], toks[j - 1][1]
            key = match_key(text[start:end])
            before = text[max(0, start - 30):start]
            after_admin = bool(self.admin_re.search(before))
            if not after_admin and self.street_re.search(before):
                continue  # a street or a venue: "đường Điện Biên Phủ", "sân Chi Lăng"
            if not after_admin:
                if key not in gaz.free and j - i < 2:
                    continue  # one-word ward-level names only after an admin word
                if j - i == 1 and end not in word_ends and text[end:end + 1] == " " and text[end + 1:end + 2].islower():
                    continue  # the first syllable of a longer word: "Mỹ thuật", "Anh văn"
                if self._inside_name(text, toks, i, j):
                    continue
                if key not in gaz.free and (self._glued(text, toks, i, j) or self.ward_org_re.search(before)):
                    continue  # ward-level names are often parts of other names: "Liên Hợp Quốc", "công ty An Lộc"
            out.append((start, end, "locality"))
        out += self._pairs(text, toks)
        out += self._zones(text)
        if self.numbered_re:
            for m in self.numbered_re.finditer(text):
                for n in re.finditer(r"\d+", m.group(1)):
                    out.append((m.start(1) + n.start(), m.start(1) + n.end(), "locality"))
        return out

    def _glued(self, text: str, toks: list[Token], i: int, j: int) -> bool:
        """A capitalised word right before or after tokens ``i``..``j`` (one space apart)."""
        prev = toks[i - 1] if i > 0 else None
        nxt = toks[j] if j < len(toks) else None
        before = (prev is not None and text[prev[1]:toks[i][0]] == " " and _is_cap(prev[2])
                  and not _is_acronym(prev[2]) and not _sentence_start(toks, i - 1))
        after = nxt is not None and text[toks[j - 1][1]:nxt[0]] == " " and _is_cap(nxt[2])
        return before or after

    def _inside_name(self, text: str, toks: list[Token], i: int, j: int) -> bool:
        """Part of a person's name, not a place: after a family name ("Trần Thanh Liêm")
        or, for a one-word name, after any capitalised word ("Hoàng Anh") or before a
        family name ("Anh Lê Quốc Phong")."""
        prev = toks[i - 1] if i > 0 else None
        if (prev and text[prev[1]:toks[i][0]] == " " and _is_cap(prev[2]) and not _is_acronym(prev[2])
                and not _sentence_start(toks, i - 1)):
            if prev[2] in self.surnames or j - i == 1:
                return True
        nxt = toks[j] if j < len(toks) else None
        return bool(j - i == 1 and nxt and text[toks[i][1]:nxt[0]] == " " and nxt[2] in self.surnames)

    def _zones(self, text: str) -> list[tuple[int, int, str]]:
        """Named economic zones, whole: "Khu kinh tế Dung Quất"."""
        if not self.zone_re:
            return []
        out = []
        for m in self.zone_re.finditer(text):
            names = m.group(1).split(" ")[1:]
            n = next((k for k, w in enumerate(names) if not _is_cap(w)), len(names))
            if n:
                out.append((m.start(), m.start(1) + len(" ".join([""] + names[:n])), "locality"))
        return out

    def _pairs(self, text: str, toks: list[Token]) -> list[tuple[int, int, str]]:
        """Short country forms joined by a dash: "Việt - Lào" → "Việt", "Lào"."""
        out = []
        for i in range(len(toks) - 2):
            a, dash, b = toks[i], toks[i + 1], toks[i + 2]
            if a[2] in self.pair_forms and dash[2] in _DASH and b[2] in self.pair_forms:
                out += [(a[0], a[1], "locality"), (b[0], b[1], "locality")]
        return out

    def _officials(self, text: str, toks: list[Token], places, words) -> list[tuple[int, int, str]]:
        ends = {e for _, e in words}
        resolved = _resolve([(s, e, "", 0) for s, e, _ in places])
        in_place = {k for k, t in enumerate(toks) if any(s <= t[0] and t[1] <= e for s, e, _ in resolved)}
        names: list[tuple[int, int]] = []  # token ranges [a, b)
        for i in range(len(toks)):
            j = self.titles.longest_at(toks.folded, i)
            if j is not None:
                names.append(self._name_after_title(text, toks, j, in_place))
                continue
            names.append(self._name_after_honorific(text, toks, i, in_place))
            if toks[i][2] in self.surnames and (i == 0 or not _is_cap(toks[i - 1][2])):
                run = self._cap_run(text, toks, i)
                if run and 2 <= run[1] - run[0] <= 4 and self._title_follows(text, toks, run[1]):
                    names.append(run)
        out = set()
        for name in names:
            if name and name[1] > name[0]:
                s, e = toks[name[0]][0], toks[name[1] - 1][1]
                if e in ends:  # whole words: not "Tài" of "Tài nguyên"
                    out.add((s, e))
        # repeated mentions of a full name found above
        for full in {text[s:e] for s, e in out if " " in text[s:e]}:
            for m in re.finditer(re.escape(full) + r"(?![^\W_])", text):
                if m.start() == 0 or not text[m.start() - 1].isalnum():
                    out.add((m.start(), m.end()))
        return [(s, e, "official") for s, e in out]

    def _name_after_honorific(self, text, toks, i, in_place) -> tuple[int, int] | None:
        """"ông Hạo" → "Hạo"; "anh Lê Quốc Phong" (weak honorifics need a family name)."""
        if i in in_place:
            return None
        for lexicon, weak in ((self.honorifics, False), (self.weak_honorifics, True)):
            j = lexicon.longest_at(toks.keys, i)
            if j is None:
                continue
            if _is_cap(toks[i][2]) and not _sentence_start(toks, i):
                return None  # "chợ Bà Chiểu": a capitalised honorific mid-sentence is a name
            if j >= len(toks) or text[toks[j - 1][1]:toks[j][0]] != " ":
                return None
            run = self._cap_run(text, toks, j)
            if run is None or run[1] - run[0] > 6 or run[0] in in_place:
                return None
            if weak and (toks[j][2] not in self.surnames or run[1] - run[0] < 2):
                return None
            return run
        return None

    def _cap_run(self, text: str, toks: list[Token], i: int) -> tuple[int, int] | None:
        """Capitalised words from token ``i`` on, one space apart. Lao names go on
        through dashes and lower-case syllables ("Thoong - lun Xi - xu - lit")."""
        if i >= len(toks) or not _is_cap(toks[i][2]) or _is_acronym(toks[i][2]):
            return None
        j, dashed = i + 1, False
        while j < len(toks):
            gap, word = text[toks[j - 1][1]:toks[j][0]], toks[j][2]
            if gap == " " and _is_cap(word) and not _is_acronym(word):
                j += 1
                continue
            if gap in (" ", "") and word in _DASH and j + 1 < len(toks) and text[toks[j][1]:toks[j + 1][0]] in (" ", ""):
                low = toks[j + 1][2]
                after = toks[j + 2] if j + 2 < len(toks) else None
                goes_on = after is not None and (after[2] in _DASH or (_is_cap(after[2]) and text[toks[j + 1][1]:after[0]] == " "))
                if low.isalpha() and low.islower() and (dashed or goes_on):
                    j, dashed = j + 2, True
                    continue
            break
        return (i, j)

    def _name_after_title(self, text, toks, k, in_place) -> tuple[int, int] | None:
        """The name after a title: skip organisations, places and further titles, take
        the first capitalised words that remain ("Bí thư Tỉnh ủy Hà Nam Nguyễn Đình Khang")."""
        limit, need_place = min(len(toks), k + 16), False
        while k < limit:
            if text[toks[k - 1][1]:toks[k][0]] != " ":
                return None
            j = self.org_words.longest_at(toks.keys, k) or self.titles.longest_at(toks.folded, k)
            if j is not None:
                k = j
                continue
            j = self.place_links.longest_at(toks.keys, k)
            if j is not None:  # "Đại sứ Pháp tại Việt Nam Bertrand Lortholar"
                k, need_place = j, True
                continue
            run = self._cap_run(text, toks, k)
            if run is None:
                if k in in_place or _is_acronym(toks[k][2]):
                    k, need_place = k + 1, False
                    continue
                return None
            a, b = run
            if need_place and a not in in_place:
                return None
            if a in in_place and self._person_place(toks, a, b, k, in_place):
                return (a, b)  # "Chủ tịch Hồ Chí Minh"
            while a < b and (a in in_place or toks[a][2] in self.org_single):
                a += 1
            if a < b:
                return (a, b) if b - a <= 6 else None
            k, need_place = b, False
        return None

    def _person_place(self, toks, a, b, k, in_place) -> bool:
        """A place right after a title that is a three-word name starting with a family
        name ("Chủ tịch Hồ Chí Minh") names a person."""
        return a == k and b - a == 3 and toks[a][2] in self.surnames and all(x in in_place for x in range(a, b))

    def _title_follows(self, text: str, toks: list[Token], j: int) -> bool:
        """", Chủ tịch…", " - phó chủ tịch…", " (Chủ tịch…" right after token ``j``."""
        if j < len(toks) and toks[j][2] in ",(" + _DASH and j + 1 < len(toks):
            if text[toks[j][1]:toks[j + 1][0]] in (" ", ""):
                return self.titles.longest_at(toks.folded, j + 1) is not None
        return False

    def _figures(self, text: str, words: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
        out = []
        starts = {s: e for s, e in words}
        for m in _FIGURE_NUMBER.finditer(text):
            s, e = m.start(), m.end()
            number = m.group()
            before = text[max(0, s - 30):s]
            if self.figure_not_after.search(before) and not self.quantity_words.search(before):
                continue  # "năm 2014", "lần thứ 44", "Nghị quyết 15" (but "tổng số 48.000 tỉ")
            if _capitalised_word_before(text, s):
                continue  # a model or unit number: "Boeing 787", "Quân đoàn 4"
            rest = text[e:]
            if re.match(r"[/:h]\d|[/:]|h(?![^\W_])|[^\W\d_]*\d", rest):  # dates, times, codes
                continue
            glued = self.glued_unit.match(rest) if self.glued_unit else None
            if glued:
                out.append((s, e + glued.end(), "figure"))
                continue
            grouped = "." in number or "," in number
            end, scaled = e, False
            # scale words, then a unit or a counted noun
            pos = e
            while True:
                w = self._next_word(text, pos, starts)
                if w and text[w[0]:w[1]] in self.scale_words:
                    end = pos = w[1]
                    scaled = True
                    continue
                break
            unit_end = self._unit_at(text, pos)
            if unit_end:
                out.append((s, unit_end, "figure"))
                continue
            w = self._next_word(text, pos, starts)
            word = text[w[0]:w[1]] if w else ""
            first = word.split(" ")[0] if word else ""
            if word and (first in self.time_words or word in self.time_words):
                continue  # a duration or a date: "20 năm qua", "8 năm"
            if _YEAR.match(number) and not scaled:
                continue
            if w and self._counted_noun(word):
                out.append((s, self._noun_end(text, w, starts), "figure"))
            elif scaled or (grouped and "-" not in number):
                out.append((s, end, "figure"))  # a bare quantity: "trên 100.000"
        return out

    def _next_word(self, text: str, pos: int, starts: dict[int, int]) -> tuple[int, int] | None:
        """The word starting after exactly one space at ``pos`` (a pyvi word when one starts there)."""
        if text[pos:pos + 1] != " ":
            return None
        p = pos + 1
        if p in starts:
            return (p, starts[p])
        m = re.match(r"[^\W_]+", text[p:])
        return (p, p + m.end()) if m else None

    def _unit_at(self, text: str, pos: int) -> int | None:
        m = re.match(r"\s?", text[pos:])
        p = pos + m.end()
        toks = syllables(text[p:p + 40])
        if not toks or (p == pos and toks[0][2] != "%"):
            return None
        j = self.units.longest_at(toks.keys, 0)
        if j is None:
            return None
        end = p + toks[j - 1][1]
        if end < len(text) and (text[end].isalnum()):
            return None
        return end

    def _noun_end(self, text: str, w: tuple[int, int], starts: dict[int, int]) -> int:
        """A one-syllable counted noun is often a classifier that takes the next word
        along: "6 nhà đầu tư", "10 lô đất", "4 tàu đổ bộ"."""
        if text[w[0]:w[1]] not in self.classifiers:
            return w[1]
        nxt = self._next_word(text, w[1], starts)
        if nxt is None:
            return w[1]
        word = text[nxt[0]:nxt[1]]
        if word.islower() and self._counted_noun(word) and word.split(" ")[0] not in self.time_words:
            return nxt[1]
        return w[1]

    def _counted_noun(self, word: str) -> bool:
        if not re.fullmatch(r"[^\W\d_]+(?: [^\W\d_]+)*", word):
            return False
        first = word.split(" ")[0]
        if word in self.not_counted or first in self.not_counted:
            return False
        if _is_cap(word) and (word.split(" ")[0] in self.gazetteer.free or word in self.gazetteer.free):
            return False
        return not _is_acronym(first) or first in ("USD",)

    def _fields(self, text: str, toks: list[Token], words) -> list[tuple[int, int, str]]:
        """Lexicon matches on whole words. Unambiguous fields count anywhere; words that
        are also verbs or common nouns ("xây dựng", "môi trường") only after a cue word
        or in a list with another field. Never as a modifier ("khu công nghiệp")."""
        word_starts, word_ends = {s for s, _ in words}, {e for _, e in words}
        found = []  # [token start, token end, accepted]
        i = 0
        while i < len(toks):
            j = self.fields.longest_at(toks.folded, i)
            s, e = (toks[i][0], toks[j - 1][1]) if j else (0, 0)
            if j is None or s not in word_starts or e not in word_ends:
                i += 1
                continue
            if _is_cap(toks[i][2]) and not _sentence_start(toks, i):
                pass  # inside a proper name: "Bộ Nông nghiệp", "Ngân hàng Xây dựng"
            elif not self.field_heads.search(text[max(0, s - 30):s]):
                key = match_key(text[s:e]).casefold()
                found.append([i, j, key not in self.weak_fields or self._cue_before(text, toks, i)])
            i = j
        changed = True
        while changed:  # a list of fields: one accepted member accepts its neighbours
            changed = False
            for a, b in zip(found, found[1:]):
                if a[2] != b[2] and self._listed(toks, a[1], b[0]):
                    a[2] = b[2] = changed = True
        return [(toks[i][0], toks[j - 1][1], "field") for i, j, ok in found if ok]

    def _listed(self, toks: list[Token], j: int, k: int) -> bool:
        """Only list separators between tokens ``j`` and ``k`` ("," "và" "-" ";")."""
        between = [t[2].casefold() for t in toks[j:k]]
        return 0 < len(between) <= 2 and all(w in self.list_words for w in between)

    def _cue_before(self, text: str, toks: list[Token], i: int) -> bool:
        for k in range(max(0, i - 6), i):
            if self.field_cues.longest_at(toks.folded, k):
                return True
        return False

    # ------------------------------------------------------------------ sectors

    def sectors(self, text: str, words: list[tuple[int, int]] | None = None) -> dict[str, float]:
        """Every sector of the schema: 1.0 when one of its keywords is in the text, else 0.0."""
        if not is_normal(text):
            text, words = normalise(text), None
        toks = syllables(text)
        words = words if words is not None else word_bounds(text)
        starts, ends = {s for s, _ in words}, {e for _, e in words}
        cats = {}
        for name in self.sector_labels:
            lex = self.sector_lexicons.get(name)
            hit = False
            if lex and lex.index:
                for i in range(len(toks)):
                    j = lex.longest_at(toks.folded, i)
                    if j is not None and toks[i][0] in starts and toks[j - 1][1] in ends:
                        hit = True
                        break
            cats[name] = 1.0 if hit else 0.0
        return cats


def _sentence_start(toks: list[Token], i: int) -> bool:
    """Token ``i`` opens the text, a sentence, a quotation or a bracket."""
    return i == 0 or toks[i - 1][2] in ".!?:;\"“”'‘’(…-–—"


def _capitalised_word_before(text: str, pos: int) -> bool:
    """A capitalised word (not opening a sentence) right before ``pos``, one space apart."""
    m = re.search(r"(^|\S+ )([^\W\d_][\w-]*) $", text[max(0, pos - 40):pos])
    if not m or not _is_cap(m.group(2)) or _is_acronym(m.group(2)):
        return False
    return bool(m.group(1)) and m.group(1).strip()[-1:] not in ".!?:;\"“”(…-–—"


def _preceded_by(words) -> re.Pattern:
    """Matches text ending with one of ``words`` (then spaces, or nothing after a ".")."""
    if not words:
        return re.compile(r"(?!)")
    alts = "|".join(map(re.escape, sorted(set(words), key=len, reverse=True)))
    return re.compile(rf"(?:^|[^\w])(?:{alts})(?:(?<=\.)\s*|\s+)$")


def _resolve(candidates: list[tuple[int, int, str, int]]) -> list[Span]:
    """Non-overlapping spans: longest first, then by priority, then leftmost."""
    taken: list[Span] = []
    for s, e, label, _ in sorted(set(candidates), key=lambda c: (-(c[1] - c[0]), c[3], c[0])):
        if s < e and all(e <= ts or s >= te for ts, te, _ in taken):
            taken.append((s, e, label))
    return sorted(taken)


# ---------------------------------------------------------------------- entry points


def build_rules(labels_path: str | Path | None = None, rules_path: str | Path | None = None) -> Rules:
    """The rules of this checkout: ``configs/rules.yml``, the gazetteer, ``configs/labels.yml``."""
    schema = load_schema(labels_path)
    config = load_rules_config(rules_path)
    gaz = gazetteer() if rules_path is None else build_gazetteer(config)
    return Rules(config, gaz, schema.entity_names, schema.sector_names)


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    return build_rules()


def find_entities(text: str) -> list[Span]:
    """Character-level ``(start, end, label)`` spans of the rules: non-overlapping, sorted."""
    return default_rules().entities(text)


def find_sectors(text: str) -> dict[str, float]:
    """One 0.0/1.0 score per sector of the schema."""
    return default_rules().sectors(text)


def model_version() -> str:
    return f"hoptac-rules-{__version__}"


class RulesAnnotator:
    """spaCy component: sets ``doc.ents`` and ``doc.cats`` from the rules."""

    def __init__(self, nlp: Language, name: str, rules: Rules | None = None) -> None:
        self.name = name
        self._rules = rules

    @property
    def rules(self) -> Rules:
        if self._rules is None:  # built from this checkout unless loaded from disk
            self._rules = default_rules()
        return self._rules

    @property
    def labels(self) -> tuple[str, ...]:
        """The entity labels; asking does not build the rules (spaCy asks while loading)."""
        if self._rules is not None:
            return tuple(self._rules.entity_labels)
        try:
            return tuple(load_schema().entity_names)
        except HoptacError:  # a saved pipeline away from the repo: known once loaded
            return ()

    def __call__(self, doc: Doc) -> Doc:
        words = [(t.idx, t.idx + len(t.text)) for t in doc]
        spans = []
        for start, end, label in self.rules.entities(doc.text, words):
            span = doc.char_span(start, end, label=label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        doc.ents = filter_spans(spans)
        doc.cats = self.rules.sectors(doc.text, words)
        return doc

    def to_disk(self, path, exclude=tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "rules.json").write_text(json.dumps(self.rules.to_dict(), ensure_ascii=False), encoding="utf-8")

    def from_disk(self, path, exclude=tuple()) -> "RulesAnnotator":
        data = json.loads((Path(path) / "rules.json").read_text(encoding="utf-8"))
        self._rules = Rules.from_dict(data)
        return self

    def to_bytes(self, exclude=tuple()) -> bytes:
        return json.dumps(self.rules.to_dict(), ensure_ascii=False).encode("utf-8")

    def from_bytes(self, data: bytes, exclude=tuple()) -> "RulesAnnotator":
        self._rules = Rules.from_dict(json.loads(data.decode("utf-8")))
        return self


@Language.factory("hoptac_rules")
def make_rules_annotator(nlp: Language, name: str) -> RulesAnnotator:
    """The rules of this checkout (loaded lazily), or those saved with the pipeline."""
    return RulesAnnotator(nlp, name)


@lru_cache(maxsize=1)
def rules_pipeline() -> Language:
    """The project's blank ``vi`` pipeline (``hoptac.tokenizer``) + ``hoptac_rules``, built once per process."""
    nlp = new_blank()
    nlp.add_pipe("hoptac_rules")
    return nlp
