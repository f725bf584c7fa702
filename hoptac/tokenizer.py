"""The project's Vietnamese tokenizer, shared by every stage that cuts text into words.

The dataset's tokens (``train/align.py``), the rules' word boundaries
(``annotate/rules.py``), the sector keyword documents and the trained model all
use :class:`VietnameseWords` (registered as ``hoptac.vi_tokenizer.v1``): spaCy's
``vi`` tokenizer (pyvi word segmentation) with pyvi's glued abbreviation stops
and glued place + name words split. Its places come from the gazetteer of
``configs/rules.yml``, less the ones that are also common given names
(``locality.given_names``): :func:`hoptac.model.new_blank` makes a pipeline with them.

This file imports only spaCy and the standard library: it is shipped inside the
model wheel (``hoptac package``), where the toolkit is not installed (a check in
``pyproject.toml`` and ``tests/test_layers.py`` holds it to that).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Iterable

import spacy
from spacy.lang.vi import VietnameseTokenizer
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import get_words_and_spaces

TOKENIZER = "hoptac.vi_tokenizer.v1"
PLACES_FILE = "places.json"


class VietnameseWords(VietnameseTokenizer):
    """spaCy's Vietnamese tokenizer (pyvi word segmentation) with two repairs of what pyvi glues.

    * An upper-case abbreviation keeps its final full stop in pyvi (``"USD."``,
      ``"HCM."``, ``"ĐBSCL."``), even at the end of a sentence, so
      ``"10 triệu USD."`` could not be the entity ``"10 triệu USD"``: the stop
      becomes a token of its own (``"USD"``, ``"."``).
    * pyvi joins runs of capitalised syllables into one word, place and person
      together (``"Hưng Yên Đỗ Tiến Sỹ"``, ``"Lào Thoong"``): when such a word is
      not itself a known place but begins with one (the longest), the place is
      split off (``"Hưng Yên"`` + ``"Đỗ Tiến Sỹ"``), and the rest is repaired
      the same way.

    ``places`` (lower-cased match keys) is set when a pipeline is made (from the
    gazetteer) and saved with it (``tokenizer/places.json``). With no places only
    the first repair applies. Splitting only ever adds token boundaries, so an
    annotated span aligns at least as well as with plain pyvi.
    """

    def __init__(self, vocab, places: Iterable[str] = ()) -> None:
        super().__init__(vocab, use_pyvi=True)
        self.set_places(places)

    def set_places(self, places: Iterable[str]) -> None:
        self.places = sorted({_match_key(p) for p in places if _match_key(p)})
        self._places = set(self.places)

    def __call__(self, text: str) -> Doc:
        if not text or text.isspace():
            return super().__call__(text)
        words = []
        for word in self.pyvi_tokenize(text):
            # most words need no repair: not ending in a stop, and lower-case or a single syllable
            if word[-1] != "." and (not word[0].isupper() or " " not in word):
                words.append(word)
            else:
                words.extend(self.repair(word))
        words, spaces = get_words_and_spaces(words, text)
        return Doc(self.vocab, words=words, spaces=spaces)

    def repair(self, word: str) -> list[str]:
        """``word`` (one pyvi word) as one or more words."""
        if _ABBREVIATION_STOP.fullmatch(word):
            return [word[:-1], "."]
        parts = _WHITESPACE.split(word)  # syllable, whitespace, syllable, …
        syllables = parts[0::2]
        if (len(syllables) < 2 or not self._places or not all(s[:1].isupper() for s in syllables)
                or _match_key(word) in self._places):
            return [word]
        for k in range(len(syllables) - 1, 0, -1):
            if _match_key(" ".join(syllables[:k])) in self._places:
                return ["".join(parts[:2 * k - 1]), *self.repair("".join(parts[2 * k:]))]
        return [word]

    def __reduce__(self):
        return VietnameseWords, (self.vocab, self.places)

    def to_disk(self, path, **kwargs) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / PLACES_FILE, "w", encoding="utf-8") as f:
            json.dump(self.places, f, ensure_ascii=False)

    def from_disk(self, path, **kwargs) -> "VietnameseWords":
        places_path = Path(path) / PLACES_FILE
        if places_path.exists():
            with open(places_path, encoding="utf-8") as f:
                self.set_places(json.load(f))
        return self

    def to_bytes(self, **kwargs) -> bytes:
        return json.dumps(self.places, ensure_ascii=False).encode("utf-8")

    def from_bytes(self, data: bytes, **kwargs) -> "VietnameseWords":
        self.set_places(json.loads(data.decode("utf-8")))
        return self


_ABBREVIATION_STOP = re.compile(r"[A-ZĐ]+\.")
_WHITESPACE = re.compile(r"(\s+)")


@spacy.registry.tokenizers(TOKENIZER)
def create_vietnamese_words() -> Callable[[Language], VietnameseWords]:
    """``[nlp.tokenizer] @tokenizers = "hoptac.vi_tokenizer.v1"``: :class:`VietnameseWords`, places loaded from disk."""
    def make(nlp: Language) -> VietnameseWords:
        return VietnameseWords(nlp.vocab)
    return make


def _match_key(text: str) -> str:
    return " ".join(text.lower().split())
