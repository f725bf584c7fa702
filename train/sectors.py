"""Stage 3 (training): the multi-label sector classifier (scikit-learn).

``FeatureUnion(TF-IDF over pyvi words, [TF-IDF over character n-grams],
keyword hits)`` → ``OneVsRestClassifier(LogisticRegression(class_weight="balanced"))``.
Its settings are the parameters of the ``sector_classifier`` factory: their defaults
exist once, as its ``default_config`` (``hoptac.components.SECTOR_SETTINGS``), and
``configs/sectors.yml`` (or ``--sectors-config``) sets the project's values over them
(:func:`load_sectors_config`); the trained component is created with the settings it
was trained with, so ``nlp.config["components"]["sector_classifier"]`` records them. The keyword hits are one
binary feature per sector: "a keyword of this sector (``configs/rules.yml``, the
lists behind the keyword baseline) is in the paragraph"; the classifier learns
how far to trust each, beside the words. Per-sector decision thresholds are
tuned for F1 on the validation split and kept on the fitted :class:`SectorModel`
as ``thresholds_``; a sector with fewer than ``min_validation_positives``
positive paragraphs in validation keeps the default threshold (0.5).

The fitted model is handed to the ``sector_classifier`` spaCy component
(``hoptac/components.py``), which persists it with skops.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from spacy.language import Language

from hoptac.components import (
    FACTORY,
    KEYWORD_MARK,
    KEYWORD_PATTERN,
    WORD_PATTERN,
    PhraseIndex,
    features_text,
)
from hoptac.errors import HoptacError
from hoptac.lexicon import sector_keywords
from hoptac.model import blank_vi
from hoptac.schema import read_yaml

OPTIONAL_BLOCKS = ("chars", "keyword_features")  # null switches the feature block off
CHARS_KEYS = {"ngram_range", "min_df", "sublinear_tf", "max_features"}


def sector_defaults() -> dict:
    """The settings' defaults: the ``default_config`` of the ``sector_classifier`` factory (a fresh copy)."""
    return copy.deepcopy(dict(Language.get_factory_meta(FACTORY).default_config))


def load_sectors_config(path: Path | None) -> dict:
    """The settings of ``path`` (``configs/sectors.yml``) over the factory's defaults (:func:`sector_defaults`).

    Every key must be a setting of the ``sector_classifier`` factory, and every key of a
    mapping one the default mapping has: anything else is a one-line error naming the file
    and the key. A mapping is merged into the default one (``words: {min_df: 2}`` keeps the
    other word settings); ``chars`` (default null) needs its whole mapping.
    """
    cfg = sector_defaults()
    if path is None:
        return cfg
    raw = read_yaml(path, "sectors config") or {}
    if not isinstance(raw, dict):
        raise HoptacError(f"{path}: expected a mapping of sector classifier settings")
    for key, value in raw.items():
        if key not in cfg:
            raise HoptacError(f"{path}: unknown key {key!r} (the sector_classifier settings: {', '.join(cfg)})")
        default = cfg[key]
        if key in OPTIONAL_BLOCKS and value is None:
            cfg[key] = None
        elif isinstance(default, dict) or key in OPTIONAL_BLOCKS:
            if not isinstance(value, dict):
                raise HoptacError(f"{path}: {key!r} must be a mapping" + (" or null" if key in OPTIONAL_BLOCKS else ""))
            known = set(default) if isinstance(default, dict) else CHARS_KEYS
            unknown = [k for k in value if k not in known]
            if unknown:
                raise HoptacError(f"{path}: unknown key {key}.{unknown[0]} (known: {', '.join(sorted(known))})")
            if default is None and not {"ngram_range", "min_df", "sublinear_tf"} <= set(value):
                raise HoptacError(f"{path}: {key!r} needs ngram_range, min_df and sublinear_tf")
            cfg[key] = {**(default or {}), **value}
        else:
            cfg[key] = value
    return cfg


def build_model(cfg: dict, with_keywords: bool = False) -> Pipeline:
    """The unfitted scikit-learn pipeline (only scikit-learn built-ins, so skops can trust it).

    ``with_keywords``: add the keyword-hit block (binary counts of the
    ``__kw__SECTOR`` markers :func:`hoptac.components.features_text` appends)."""
    words, chars, keywords, lr = cfg["words"], cfg["chars"], cfg["keyword_features"], cfg["logistic_regression"]
    blocks = [("words", TfidfVectorizer(analyzer="word", token_pattern=WORD_PATTERN, lowercase=False,
                                        ngram_range=tuple(words["ngram_range"]), min_df=words["min_df"],
                                        sublinear_tf=words["sublinear_tf"]))]
    weights = {"words": 1.0}
    if chars:
        blocks.append(("chars", TfidfVectorizer(analyzer="char_wb", lowercase=False,
                                                ngram_range=tuple(chars["ngram_range"]), min_df=chars["min_df"],
                                                sublinear_tf=chars["sublinear_tf"],
                                                max_features=chars.get("max_features"))))
        weights["chars"] = 1.0
    if with_keywords and keywords:
        blocks.append(("keywords", CountVectorizer(token_pattern=KEYWORD_PATTERN, lowercase=False, binary=True)))
        weights["keywords"] = float(keywords.get("weight", 1.0))
    features = FeatureUnion(blocks, transformer_weights=weights)
    classifier = OneVsRestClassifier(LogisticRegression(
        C=lr["C"], max_iter=lr["max_iter"], class_weight=lr["class_weight"], random_state=cfg["seed"]))
    return Pipeline([("features", features), ("classifier", classifier)])


def label_matrix(sector_lists: list[list[str]], labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    y = np.zeros((len(sector_lists), len(labels)), dtype=int)
    for row, sectors in enumerate(sector_lists):
        for name in sectors:
            y[row, index[name]] = 1
    return y


def tune_thresholds(y_true: np.ndarray, proba: np.ndarray, grid: np.ndarray, default: float,
                    min_positives: int = 1) -> list[float]:
    """Per label, the grid threshold with the best F1 on validation (ties → the one closest to default).

    A label with fewer than ``min_positives`` positive paragraphs keeps ``default``."""
    thresholds = []
    for j in range(y_true.shape[1]):
        positives = y_true[:, j].sum()
        if positives < max(1, min_positives):
            thresholds.append(float(default))
            continue
        best, best_f1 = float(default), -1.0
        for t in sorted(grid, key=lambda t: abs(t - default)):
            pred = proba[:, j] >= t
            tp = int((pred & (y_true[:, j] == 1)).sum())
            f1 = 2 * tp / (pred.sum() + positives) if (pred.sum() + positives) else 0.0
            if f1 > best_f1 + 1e-12:
                best, best_f1 = float(t), f1
        thresholds.append(round(best, 4))
    return thresholds


def keyword_documents(labels: list[str], index: PhraseIndex | None = None) -> list[tuple[str, str]]:
    """One tiny training document per sector keyword of ``configs/rules.yml`` (for the dataset's sectors only).

    A prior from the keyword lists: words that the annotated paragraphs never
    show still point to their sector, with a weight the classifier learns
    alongside the real paragraphs.
    """
    tokenizer = blank_vi().tokenizer
    return [(features_text((t.text for t in tokenizer(keyword)), index), label)
            for label, keywords in sector_keywords(labels).items() for keyword in keywords]


@dataclass
class SectorModel:
    """A fitted sector classifier: ``pipeline_`` (sklearn), ``labels_``, ``thresholds_``."""

    pipeline_: Pipeline
    labels_: list[str]
    thresholds_: list[float]
    keywords_: dict[str, list[str]] | None = None  # sector → keywords read as features (None: no keyword block)
    validation_: dict = field(default_factory=dict)  # micro-F1 on validation with the tuned thresholds


def train_sectors(train_rows: list[dict], dev_rows: list[dict], labels: list[str], cfg: dict) -> SectorModel | None:
    """Fit on ``train_rows`` (each with ``tokens`` and ``sectors`` as names); tune thresholds on ``dev_rows``.

    Returns None when there is nothing to learn (no labels or no positive paragraph in train).
    """
    y_train = label_matrix([r["sectors"] for r in train_rows], labels)
    if not labels or y_train.sum() == 0:
        return None
    keywords = (sector_keywords(labels) or None) if cfg.get("keyword_features") else None
    index = PhraseIndex(keywords) if keywords else None
    texts = [features_text(r["tokens"], index) for r in train_rows]
    if cfg.get("keyword_priors"):
        extra = keyword_documents(labels, index) * int(cfg["keyword_repeat"])
        texts += [text for text, _ in extra]
        y_train = np.vstack([y_train, label_matrix([[label] for _, label in extra], labels)]) if extra else y_train
    if keywords and not any(KEYWORD_MARK in text for text in texts):  # no keyword in any training text
        keywords, index = None, None
    model = build_model(cfg, with_keywords=keywords is not None)
    with warnings.catch_warnings():  # a sector with no positive in train: said by the caller, not as a warning
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        model.fit(texts, y_train)
    grid_cfg = cfg["threshold_grid"]
    grid = np.arange(grid_cfg["start"], grid_cfg["stop"] + 1e-9, grid_cfg["step"])
    if dev_rows:
        y_dev = label_matrix([r["sectors"] for r in dev_rows], labels)
        proba = np.asarray(model.predict_proba([features_text(r["tokens"], index) for r in dev_rows]))
        thresholds = tune_thresholds(y_dev, proba, grid, cfg["default_threshold"], cfg["min_validation_positives"])
        pred = proba >= np.asarray(thresholds)
        tp = int((pred & (y_dev == 1)).sum())
        denom = int(pred.sum() + y_dev.sum())
        validation = {"micro_f1": 2 * tp / denom if denom else 0.0, "paragraphs": len(dev_rows)}
    else:
        thresholds = [float(cfg["default_threshold"])] * len(labels)
        validation = {}
    return SectorModel(model, list(labels), thresholds, keywords, validation)
