"""The one text normalisation of hoptac, with exact character-offset maps.

Wherever hoptac takes raw text (corpus build, predict: :mod:`hoptac.corpus.read`;
Label Studio exports: :mod:`hoptac.annotate.export`; the rules pre-annotator on
text that is not normal) it goes through :func:`normalise`:

- Unicode NFC;
- a tab becomes a space, and so does a line or paragraph break (every character
  ``str.splitlines`` breaks on: LF, CR, VT, FF, FS, GS, RS, NEL, U+2028,
  U+2029), so that words are not glued together; paragraphs are split on them
  before (:func:`hoptac.corpus.read.split_paragraphs`), so only a text that is
  one paragraph already (a Label Studio task) can still hold one;
- other control characters (category ``Cc``) are removed;
- invisible characters, decided one by one by what each means:

  - U+200B ZERO WIDTH SPACE: removed. In principle a word-break hint, in
    Vietnamese news it is editing debris: in ``../shared/data/news/unlabeled.jsonl.gz``
    (396 of them) nearly all sit next to a space, and of the 15 that sit between
    two non-space characters 9 are inside a word ("L\\u200biên hợp quốc",
    "tuyên tr\\u200buyền", where a space would split the word), 4 next to
    punctuation and 2 in a brand name ("Tiger\\u200bAir"); removed, the text
    reads as it is shown;
  - U+00AD SOFT HYPHEN is a hyphenation point *inside* a word, shown only at a
    line end: removed, the word stays whole as the reader sees it (the 32 of
    the news corpus are all inside syllables: "tăng cư\\u00adờng" → "tăng cường";
    "Bắc\\u00adNinh" → "BắcNinh", as shown);
  - U+200C ZERO WIDTH NON-JOINER and U+200D ZERO WIDTH JOINER only steer how
    letters join (Indic scripts, emoji sequences), never a word boundary: removed;
  - U+FEFF ZERO WIDTH NO-BREAK SPACE (a byte order mark inside the text) and
    U+2060 WORD JOINER say "no break here": removed.

  No other character changes (no-break spaces, dashes, quotes stay as they are).

:func:`normalise_with_offsets` does the same and keeps, for every offset of the
original text, the offset in the normalised one (and back), so that spans drawn
on an NFD text land on exactly the same characters of its NFC form. A span
boundary that falls inside a character NFC composes (between a base letter and
its combining mark) moves outward to the whole character.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines breaks on
# zero width space, soft hyphen, ZWNJ, ZWJ, word joiner, ZWNBSP/BOM
REMOVED_INVISIBLE = "\u200b\u00ad\u200c\u200d\u2060\ufeff"
# every character normalise may change, but for NFC: Cc (U+0000–001F, U+007F–009F), U+2028/2029, invisibles
_SPECIAL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029" + REMOVED_INVISIBLE + "]")


def _replacement(c: str) -> str | None:
    """What ``c`` becomes: ``None`` = unchanged, ``""`` = removed, ``" "`` = a space."""
    if c == "\t" or c in LINE_BREAKS:
        return " "
    if c in REMOVED_INVISIBLE or unicodedata.category(c) == "Cc":
        return ""
    return None


def is_normal(text: str) -> bool:
    """Whether :func:`normalise` leaves ``text`` as it is."""
    return not _SPECIAL.search(text) and (text.isascii() or unicodedata.is_normalized("NFC", text))


def normalise(text: str) -> str:
    """``text`` normalised (see the module docstring)."""
    return text if is_normal(text) else normalise_with_offsets(text).text


@dataclass(frozen=True)
class Normalised:
    """A normalised text and the map between its offsets and the original's.

    ``pieces`` cover the original in order: ``(orig_start, orig_end, norm_start, norm_end)``;
    a removed character is a piece with ``norm_start == norm_end``; a character NFC composes
    is one piece with the marks that compose with it. Empty ``pieces``: nothing changed."""

    original: str
    text: str
    pieces: tuple[tuple[int, int, int, int], ...] = ()

    def __post_init__(self) -> None:
        kept = [p for p in self.pieces if p[3] > p[2]]
        object.__setattr__(self, "_starts", [p[0] for p in self.pieces])
        object.__setattr__(self, "_kept", kept)
        object.__setattr__(self, "_kept_starts", [p[2] for p in kept])
        object.__setattr__(self, "_kept_ends", [p[3] for p in kept])

    @property
    def changed(self) -> bool:
        return self.text != self.original

    # original → normalised (for spans drawn on the original)

    def start(self, i: int) -> int:
        """Offset in :attr:`text` of a span starting at offset ``i`` of the original."""
        piece = self._piece_at(i)
        return piece[2] if isinstance(piece, tuple) else piece

    def end(self, i: int) -> int:
        """Offset in :attr:`text` of a span ending at offset ``i`` of the original."""
        piece = self._piece_at(i)
        if not isinstance(piece, tuple):
            return piece
        return piece[2] if i == piece[0] else piece[3]

    def _piece_at(self, i: int):
        """The piece holding original offset ``i``, or the mapped offset when ``i`` is at or
        beyond either end (offsets out of range stay out of range, by as much)."""
        if not self.pieces or i <= 0:
            return i
        if i >= len(self.original):
            return i - len(self.original) + len(self.text)
        return self.pieces[bisect_right(self._starts, i) - 1]

    # normalised → original (for spans found in the normalised text)

    def orig_start(self, j: int) -> int:
        """Offset in the original of a span starting at offset ``j`` of :attr:`text`."""
        if not self.pieces:
            return j
        if not self._kept:
            return len(self.original)
        if j >= len(self.text):
            return self._kept[-1][1]
        return self._kept[max(0, bisect_right(self._kept_starts, j) - 1)][0]

    def orig_end(self, j: int) -> int:
        """Offset in the original of a span ending at offset ``j`` of :attr:`text`."""
        if not self.pieces:
            return j
        if j <= 0 or not self._kept:
            return 0
        k = bisect_left(self._kept_ends, j)
        return self._kept[k][1] if k < len(self._kept) else len(self.original)


def normalise_with_offsets(text: str) -> Normalised:
    """``text`` normalised, with the offset maps (see :class:`Normalised`)."""
    if is_normal(text):
        return Normalised(text, text)
    kept: list[tuple[int, str]] = []  # (original offset, character after replacement)
    for i, c in enumerate(text):
        new = _replacement(c)
        if new is None:
            kept.append((i, c))
        elif new:
            kept.append((i, new))
    # clusters: a character and what NFC composes with it (cut before a character that
    # neither combines nor composes with the cluster before it)
    clusters: list[list[tuple[int, str]]] = []
    composed = ""  # the last cluster's characters
    for i, c in kept:
        if clusters and not c.isascii() and (
                unicodedata.combining(c)
                or unicodedata.normalize("NFC", composed + c) != unicodedata.normalize("NFC", composed) + c):
            clusters[-1].append((i, c))
            composed += c
        else:
            clusters.append([(i, c)])
            composed = c
    pieces: list[tuple[int, int, int, int]] = []
    out: list[str] = []
    position = 0  # in the original
    length = 0  # of the output so far
    for cluster in _split_clusters(clusters):
        first, last = cluster[0][0], cluster[-1][0] + 1
        pieces += [(k, k + 1, length, length) for k in range(position, first)]  # removed before it
        piece = unicodedata.normalize("NFC", "".join(c for _, c in cluster))
        pieces.append((first, last, length, length + len(piece)))
        out.append(piece)
        length += len(piece)
        position = last
    pieces += [(k, k + 1, length, length) for k in range(position, len(text))]
    return Normalised(text, "".join(out), tuple(pieces))


def _split_clusters(clusters: list[list[tuple[int, str]]]):
    """Each cluster, cut further wherever NFC of the parts is NFC of the whole (a mark
    that does not compose, such as a second grave accent, keeps an offset of its own)."""
    for cluster in clusters:
        if len(cluster) == 1:
            yield cluster
            continue
        chars = "".join(c for _, c in cluster)
        begin = 0
        for k in range(1, len(cluster)):
            rest = unicodedata.normalize("NFC", chars[begin:])
            if unicodedata.normalize("NFC", chars[begin:k]) + unicodedata.normalize("NFC", chars[k:]) == rest:
                yield cluster[begin:k]
                begin = k
        yield cluster[begin:]
