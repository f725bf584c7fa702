"""Stage 3 (model): the code a trained pipeline runs, shipped inside the model wheel.

In the order a paragraph meets them, after the tokenizer (``hoptac/tokenizer.py``,
shipped beside this file):

* ``hoptac_lexicon`` (:class:`LexiconFeatures`): word-list membership in
  ``token.tag_``, a feature the NER's tok2vec embeds;
* (spaCy's ``tok2vec`` and ``ner``);
* ``sector_classifier`` (:class:`SectorClassifier`): a fitted scikit-learn
  pipeline (see ``train/sectors.py``) that turns the paragraph's words and the
  sector keywords found in them into one probability per sector. ``doc.cats``
  holds those probabilities (like spaCy's ``textcat_multilabel``); the
  per-sector decision thresholds tuned on the validation split live in the
  component (``nlp.get_pipe("sector_classifier").thresholds``) and the labels
  that pass them are set on ``doc._.sectors`` (a list of sector names).

This module is self-contained on purpose: it imports only spaCy, NumPy,
scikit-learn, skops and the standard library, because ``spacy package --code
train/components.py`` ships it inside the model wheel, where the hoptac toolkit
is not installed. The scikit-learn pipeline uses only scikit-learn built-ins;
the text it reads is made by :func:`features_text` below, both at training and
at prediction time, so the two cannot drift apart.

Persistence: every piece has ``to_disk``/``from_disk``. The lexicon writes its
lists (``lexicon.json``), the sector classifier ``model.skops``
(``skops.io.dump``, never pickle) and ``cfg.json`` (labels, thresholds,
keywords); its ``from_disk`` loads the skops file with an explicit list of
trusted types (:data:`TRUSTED_TYPES`), never ``trusted=True``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
from spacy.attrs import LOWER, TAG
from spacy.language import Language
from spacy.tokens import Doc

FACTORY = "sector_classifier"
LEXICON_FACTORY = "hoptac_lexicon"
LEXICON_FILE = "lexicon.json"
NO_MATCH = "_"
MODEL_FILE = "model.skops"
CFG_FILE = "cfg.json"

# Every type a fitted sector pipeline contains, beyond what skops trusts by default.
# Checked at save time with skops.io.get_untrusted_types: anything else is refused.
TRUSTED_TYPES = [
    "sklearn.multiclass._ConstantPredictor",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.CountVectorizer",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.preprocessing._label.LabelBinarizer",
]

KEYWORD_MARK = "__kw__"
# token patterns of the sector pipeline's vectorizers: words (everything but the
# keyword markers, which start with "_" while features_text's words never do) and markers
WORD_PATTERN = r"(?<!\S)[^\s_]\S*"
KEYWORD_PATTERN = r"__kw__\S+"

if not Doc.has_extension("sectors"):
    Doc.set_extension("sectors", default=None)


def features_text(words: Iterable[str], keywords: "PhraseIndex | None" = None) -> str:
    """The classifier's input: lower-cased words, syllables of a word joined by ``_``, then keyword hits.

    ``["Hà Nội", "hợp tác"]`` → ``"hà_nội hợp_tác"``: a whitespace-separated
    string, so the word TF-IDF needs only a built-in ``token_pattern``. With a
    ``keywords`` index (sector → keywords), each sector with a keyword in the
    words adds one marker ``__kw__SECTOR`` (e.g. ``"… du_lịch __kw__TOURISM"``),
    which only the keyword block of the pipeline reads (:data:`WORD_PATTERN`,
    :data:`KEYWORD_PATTERN`).
    """
    return keys_text([_key(w) for w in words], keywords)


def keys_text(keys: list[str], keywords: "PhraseIndex | None" = None) -> str:
    """:func:`features_text` from the words' match keys (``_key``: lower-cased, single spaces)."""
    keys = [k for k in keys if k]
    text = " ".join(k.replace(" ", "_") for k in keys)
    if keywords is None:
        return text
    hits = sorted({cat for _, _, cats in keywords.matches(keys) for cat in cats})
    return " ".join([text, *(KEYWORD_MARK + cat for cat in hits)]) if hits else text


def untrusted_types(path: str | Path) -> list[str]:
    """Types in a skops file that :data:`TRUSTED_TYPES` does not list."""
    import skops.io as sio

    return [t for t in sio.get_untrusted_types(file=str(path)) if t not in TRUSTED_TYPES]


# The sector classifier's training settings, once: the default_config of its factory, so that
# ``nlp.config["components"]["sector_classifier"]`` records the settings a model was trained with.
# ``configs/sectors.yml`` (the project's chosen values) may set any of these keys and no other
# (``hoptac.train.sectors.load_sectors_config``); ``train/sectors.py`` documents each one.
SECTOR_SETTINGS: dict = {
    "words": {"ngram_range": [1, 2], "min_df": 1, "sublinear_tf": True},
    "chars": None,  # e.g. {ngram_range: [2, 5], min_df: 2, sublinear_tf: true, max_features: 50000}
    "keyword_features": {"weight": 1.0},
    "logistic_regression": {"C": 1.0, "max_iter": 2000, "class_weight": "balanced"},
    "keyword_priors": True,
    "keyword_repeat": 2,
    "default_threshold": 0.5,
    "min_validation_positives": 5,
    "threshold_grid": {"start": 0.05, "stop": 0.95, "step": 0.05},
    "seed": 0,
}


class SectorClassifier:
    """Writes ``doc.cats`` (a probability per sector) and ``doc._.sectors`` (labels over threshold).

    The training settings (:data:`SECTOR_SETTINGS`) are constructor parameters, kept as
    attributes of the same names; the fitted state is ``model``, ``labels``,
    ``thresholds`` and ``keywords``."""

    def __init__(self, nlp: Language, name: str = FACTORY, labels: list[str] | None = None,
                 thresholds: list[float] | None = None, model=None,
                 keywords: dict[str, list[str]] | None = None, *,
                 words: dict = SECTOR_SETTINGS["words"], chars: dict | None = SECTOR_SETTINGS["chars"],
                 keyword_features: dict | None = SECTOR_SETTINGS["keyword_features"],
                 logistic_regression: dict = SECTOR_SETTINGS["logistic_regression"],
                 keyword_priors: bool = SECTOR_SETTINGS["keyword_priors"],
                 keyword_repeat: int = SECTOR_SETTINGS["keyword_repeat"],
                 default_threshold: float = SECTOR_SETTINGS["default_threshold"],
                 min_validation_positives: int = SECTOR_SETTINGS["min_validation_positives"],
                 threshold_grid: dict = SECTOR_SETTINGS["threshold_grid"],
                 seed: int = SECTOR_SETTINGS["seed"]) -> None:
        self.name = name
        self.words, self.chars, self.keyword_features = dict(words), _copy(chars), _copy(keyword_features)
        self.logistic_regression, self.threshold_grid = dict(logistic_regression), dict(threshold_grid)
        self.keyword_priors, self.keyword_repeat, self.seed = bool(keyword_priors), int(keyword_repeat), int(seed)
        self.default_threshold, self.min_validation_positives = float(default_threshold), int(min_validation_positives)
        self.labels: list[str] = list(labels or [])
        self.thresholds: list[float] = list(thresholds or [self.default_threshold] * len(self.labels))
        self.model = model  # a fitted sklearn Pipeline with predict_proba
        self._keys = WordKeys()
        self.set_keywords(keywords)

    @property
    def settings(self) -> dict:
        """The training settings, as :data:`SECTOR_SETTINGS` names them."""
        return {key: _copy(getattr(self, key)) for key in SECTOR_SETTINGS}

    def set_model(self, model, labels: list[str], thresholds: list[float],
                  keywords: dict[str, list[str]] | None = None) -> None:
        if len(labels) != len(thresholds):
            raise ValueError("one threshold per label")
        self.model, self.labels, self.thresholds = model, list(labels), [float(t) for t in thresholds]
        self.set_keywords(keywords)

    def set_keywords(self, keywords: dict[str, list[str]] | None) -> None:
        """Sector → keywords whose presence is a feature (``None``: no keyword features)."""
        self.keywords = {k: sorted(set(v)) for k, v in keywords.items()} if keywords else None
        self._keywords = PhraseIndex(self.keywords) if self.keywords else None

    def features(self, doc: Doc) -> str:
        return keys_text(self._keys(doc), self._keywords)

    def scores(self, docs: list[Doc]) -> np.ndarray:
        """(n_docs, n_labels) probabilities."""
        if self.model is None:
            raise ValueError(f"{self.name}: no fitted model (train it or load it from disk)")
        if not docs:
            return np.zeros((0, len(self.labels)))
        proba = self.model.predict_proba([self.features(doc) for doc in docs])
        return np.asarray(proba, dtype=float).reshape(len(docs), len(self.labels))

    def set_annotations(self, docs: list[Doc], scores: np.ndarray) -> None:
        for doc, row in zip(docs, scores):
            doc.cats = {label: float(s) for label, s in zip(self.labels, row)}
            doc._.sectors = [label for label, s, t in zip(self.labels, row, self.thresholds) if s >= t]

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.scores([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int = 256) -> Iterator[Doc]:
        batch: list[Doc] = []
        for doc in stream:
            batch.append(doc)
            if len(batch) >= batch_size:
                self.set_annotations(batch, self.scores(batch))
                yield from batch
                batch = []
        if batch:
            self.set_annotations(batch, self.scores(batch))
            yield from batch

    def to_disk(self, path, *, exclude=tuple()) -> None:
        import skops.io as sio

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / CFG_FILE, "w", encoding="utf-8") as f:
            json.dump({"labels": self.labels, "thresholds": self.thresholds, "keywords": self.keywords}, f,
                      ensure_ascii=False, indent=1)
        if self.model is not None:
            sio.dump(self.model, path / MODEL_FILE)
            extra = untrusted_types(path / MODEL_FILE)
            if extra:
                raise ValueError(f"{path / MODEL_FILE}: types not in TRUSTED_TYPES: {', '.join(extra)}")

    def from_disk(self, path, *, exclude=tuple()) -> "SectorClassifier":
        import skops.io as sio

        path = Path(path)
        with open(path / CFG_FILE, encoding="utf-8") as f:
            cfg = json.load(f)
        self.labels, self.thresholds = list(cfg["labels"]), [float(t) for t in cfg["thresholds"]]
        self.set_keywords(cfg.get("keywords"))
        model_path = path / MODEL_FILE
        if self.labels and not model_path.is_file():  # found now, not at the first paragraph
            raise ValueError(f"{model_path} is missing: the sector classifier has {len(self.labels)} "
                             f"label(s) but no fitted model")
        self.model = sio.load(model_path, trusted=TRUSTED_TYPES) if model_path.exists() else None
        return self


class PhraseIndex:
    """Phrases (one or more words) by category, found in a sequence of tokens.

    A phrase matches a run of whole tokens whose texts, lower-cased and joined
    by single spaces, equal it (``"hạ tầng giao thông"`` matches the tokens
    ``["hạ tầng", "giao thông"]``; ``"cầu"`` does not match inside ``"nhu cầu"``).
    Only tokens whose first syllable starts some phrase are looked at, so the
    cost grows with the number of candidate starts, not with the lists.

    ``key`` turns a phrase into the form tokens are compared in (words joined by
    single spaces); the default, :func:`_key`, lower-cases. The keys given to
    :meth:`matches` must be made the same way (the rules pre-annotator, for one,
    keys phrases by syllable and keeps their case). ``joiner``: a token key may
    say how it is written against the token before (``"\u2060."``: no space
    between) by a prefix ending in ``joiner``; phrases match on it, except on
    their first token, where the prefix is ignored.
    """

    def __init__(self, phrases: dict[str, list[str]], key: Callable[[str], str] | None = None,
                 joiner: str | None = None) -> None:
        key = key or _key
        self.joiner = joiner
        self.index: dict[str, set[str]] = {}
        for cat, items in phrases.items():
            for item in items:
                k = key(item)
                if k:
                    self.index.setdefault(k, set()).add(cat)
        self.starts = {k.split(" ", 1)[0] for k in self.index}
        self.max_words = max((len(k.split()) for k in self.index), default=0)

    def matches(self, keys: list[str]) -> Iterator[tuple[int, int, set[str]]]:
        """``(first, end_exclusive, categories)`` of every phrase found in ``keys`` (tokens as :func:`_key` makes them)."""
        for i, key in enumerate(keys):
            if self.joiner:
                key = key.rpartition(self.joiner)[2]
            if not key or key.split(" ", 1)[0] not in self.starts:
                continue
            for end, cats in self._from(keys, i, key):
                yield i, end, cats

    def longest_at(self, keys: list[str], i: int) -> int | None:
        """End (exclusive) of the longest phrase that starts at token ``i``; None if none does."""
        key = keys[i].rpartition(self.joiner)[2] if self.joiner else keys[i]
        if not key or key.split(" ", 1)[0] not in self.starts:
            return None
        end = None
        for end, _ in self._from(keys, i, key):
            pass
        return end

    def _from(self, keys: list[str], i: int, first: str) -> Iterator[tuple[int, set[str]]]:
        joined, n = "", 0
        for j in range(i, len(keys)):
            key = first if j == i else keys[j]
            if not key:
                break
            joined = f"{joined} {key}" if joined else key
            n += key.count(" ") + 1
            if n > self.max_words:
                break
            cats = self.index.get(joined)
            if cats:
                yield j + 1, cats


class LexiconFeatures:
    """Marks each token with the lexicon categories it belongs to, in ``token.tag_`` (``"loc|unit"``, ``"_"``).

    The NER's tok2vec embeds ``TAG`` next to NORM/PREFIX/SUFFIX/SHAPE, so word
    lists (place names, titles, units, field terms…) are *features* whose weight
    is learnt from the data, not rules. ``phrases`` maps a category to phrases
    matched case-insensitively on whole tokens (a phrase may span several
    tokens, see :class:`PhraseIndex`); ``first_syllables`` maps a category to
    syllables matched against a token's first syllable (e.g. surnames). The
    lists are set at training time and saved with the model (``lexicon.json``).
    """

    def __init__(self, nlp: Language, name: str = LEXICON_FACTORY) -> None:
        self.name = name
        self.set_lexicon({}, {})

    def set_lexicon(self, phrases: dict[str, list[str]], first_syllables: dict[str, list[str]]) -> None:
        self.phrases = {cat: sorted(set(items)) for cat, items in phrases.items()}
        self.first_syllables = {cat: sorted(set(items)) for cat, items in first_syllables.items()}
        self._phrases = PhraseIndex(self.phrases)
        self._keys = WordKeys()
        self._tags: dict[str, int] = {}  # tag → its hash, added to the vocab's strings once
        self._first: dict[str, set[str]] = {}
        for cat, items in self.first_syllables.items():
            for item in items:
                self._first.setdefault(item.lower(), set()).add(cat)

    def __call__(self, doc: Doc) -> Doc:
        keys = self._keys(doc)
        first = self._first
        cats: list[set[str]] = [set(first.get(k.split(" ", 1)[0], ())) if k else set() for k in keys]
        for i, j, found in self._phrases.matches(keys):
            for k in range(i, j):
                cats[k] |= found
        tags = [self._tag_hash(doc, found) for found in cats]
        doc.from_array([TAG], np.asarray(tags, dtype="uint64").reshape(-1, 1))
        return doc

    def _tag_hash(self, doc: Doc, found: set[str]) -> int:
        tag = "|".join(sorted(found)) if found else NO_MATCH
        h = self._tags.get(tag)
        if h is None:
            h = self._tags[tag] = doc.vocab.strings.add(tag)
        return h

    def pipe(self, stream: Iterable[Doc], batch_size: int = 256) -> Iterator[Doc]:
        for doc in stream:
            yield self(doc)

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / LEXICON_FILE, "w", encoding="utf-8") as f:
            json.dump({"phrases": self.phrases, "first_syllables": self.first_syllables}, f, ensure_ascii=False)

    def from_disk(self, path, *, exclude=tuple()) -> "LexiconFeatures":
        with open(Path(path) / LEXICON_FILE, encoding="utf-8") as f:
            data = json.load(f)
        self.set_lexicon(data.get("phrases", {}), data.get("first_syllables", {}))
        return self


def _key(text: str) -> str:
    return " ".join(text.lower().split())


class WordKeys:
    """:func:`_key` of every token of a doc, read from its ``LOWER`` array and cached per hash.

    The same as ``[_key(t.text) for t in doc]`` without making a Token object per
    word: the lexicon and the sector classifier run on every paragraph.
    """

    def __init__(self) -> None:
        self.cache: dict[int, str] = {}

    def __call__(self, doc: Doc) -> list[str]:
        strings, cache, keys = doc.vocab.strings, self.cache, []
        for h in doc.to_array(LOWER).tolist():
            key = cache.get(h)
            if key is None:
                key = cache[h] = _key(strings[h])
            keys.append(key)
        return keys


def make_lexicon_features(nlp: Language, name: str) -> LexiconFeatures:
    return LexiconFeatures(nlp, name)


def make_sector_classifier(nlp: Language, name: str, words: dict, chars: Optional[dict], keyword_features: Optional[dict],
                           logistic_regression: dict, keyword_priors: bool, keyword_repeat: int,
                           default_threshold: float, min_validation_positives: int, threshold_grid: dict,
                           seed: int) -> SectorClassifier:
    return SectorClassifier(nlp, name, words=words, chars=chars, keyword_features=keyword_features,
                            logistic_regression=logistic_regression, keyword_priors=keyword_priors,
                            keyword_repeat=keyword_repeat, default_threshold=default_threshold,
                            min_validation_positives=min_validation_positives, threshold_grid=threshold_grid,
                            seed=seed)


def _copy(value):
    return dict(value) if isinstance(value, dict) else value


def _register(name: str, factory, default_config: dict) -> None:
    """``Language.factory``, unless a copy of this file registered ``name`` first.

    A packaged model ships this file and imports it under another module name;
    a process that imported the toolkit's ``hoptac.components`` already has the
    factories, and spaCy refuses a second function under the same name. The
    first registration serves both (its ``from_disk`` reads the same files).
    """
    if not Language.has_factory(name):
        Language.factory(name, default_config=default_config)(factory)


_register(LEXICON_FACTORY, make_lexicon_features, {})
_register(FACTORY, make_sector_classifier, SECTOR_SETTINGS)
