"""Making and loading hoptac pipelines: the one place every stage gets a ``Language`` from.

* :func:`new_blank` / :func:`blank_vi`: a blank ``vi`` pipeline with the project's
  tokenizer (``hoptac/tokenizer.py``) and its places (``hoptac/lexicon.py``);
  the dataset, the rules, the sector keywords and training all cut words with it.
* :func:`load_model`: a trained pipeline from a model folder or an installed
  package name (``vi_hoptac``), with one-line errors for what is not one.
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache
from pathlib import Path

import spacy
from spacy.language import Language

from hoptac.errors import HoptacError
from hoptac.lexicon import tokenizer_places
from hoptac.tokenizer import TOKENIZER

NER = "ner"


def new_blank() -> Language:
    """A new blank ``vi`` pipeline with the project's tokenizer and its places."""
    nlp = spacy.blank("vi", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER}}})
    nlp.tokenizer.set_places(tokenizer_places())
    return nlp


@lru_cache(maxsize=1)
def blank_vi() -> Language:
    """:func:`new_blank`, built once per process (do not add pipes to it)."""
    return new_blank()


def register_components() -> None:
    """Register hoptac's tokenizer and component factories with spaCy (for loading a model *folder*).

    An installed model package brings its own copy of these modules (importing
    both would register the factories twice), so this is called only for folders.
    """
    importlib.import_module("hoptac.tokenizer")
    importlib.import_module("hoptac.components")


def load_model(model: str | Path):
    """A spaCy pipeline with an ``ner`` from a model folder or an installed package name."""
    path = Path(model)
    if path.exists():
        if not path.is_dir() or not (path / "config.cfg").is_file() or not (path / "meta.json").is_file():
            raise HoptacError(f"{path}: not a spaCy pipeline folder (needs config.cfg and meta.json)")
        register_components()
        target: str | Path = path
    elif os.sep in str(model) or str(model).startswith("."):
        raise HoptacError(f"{model}: no such model folder")
    else:
        target = str(model)
    try:
        nlp = spacy.load(target)
    except OSError as e:
        if isinstance(target, str):
            raise HoptacError(f"{model}: no such model folder or installed spaCy package") from None
        raise HoptacError(f"{model}: cannot load the pipeline ({_first_line(e)})") from None
    except Exception as e:  # corrupt config, unknown factory, bad weights…
        raise HoptacError(f"{model}: cannot load the pipeline ({type(e).__name__}: {_first_line(e)})") from None
    if NER not in nlp.pipe_names:
        raise HoptacError(f"{model}: the pipeline has no '{NER}' component (it has: {', '.join(nlp.pipe_names) or 'none'})")
    return nlp


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
