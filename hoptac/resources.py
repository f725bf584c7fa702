"""Where hoptac's own data files are: package data, read with :mod:`importlib.resources`.

The same folders of the repository (``configs/``, ``seeds/``, ``annotate/guide.md``)
are installed as ``hoptac.configs``, ``hoptac.seeds`` and ``hoptac.annotate``, so
these paths hold in a git checkout (editable install) and in an installed wheel
alike. Every default file of the toolkit is named here, once; a user points to
their own with the command's option (``--labels``, ``--config``…) or the
environment variable given below.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def _package_dir(package: str) -> Path:
    return Path(str(files(package)))


CONFIGS = _package_dir("hoptac.configs")
SEEDS = _package_dir("hoptac.seeds")

LABELS = CONFIGS / "labels.yml"        # the label schema ($HOPTAC_LABELS overrides)
RULES = CONFIGS / "rules.yml"          # word lists of the rules and the lexicon features ($HOPTAC_RULES)
NER_CONFIG = CONFIGS / "ner.cfg"       # spaCy training config of the NER
SECTORS_CONFIG = CONFIGS / "sectors.yml"  # sector classifier settings
GUIDE = _package_dir("hoptac.annotate") / "guide.md"  # the annotation guide (Label Studio instructions)
SEED_ARTICLES = SEEDS / "articles"         # the seed article(s), plain text
SEED_ANNOTATIONS = SEEDS / "annotations"  # their Label Studio export(s)


def labels_path() -> Path:
    """``$HOPTAC_LABELS`` if set, else the packaged ``configs/labels.yml``."""
    return Path(os.environ.get("HOPTAC_LABELS") or LABELS)


def rules_path() -> Path:
    """``$HOPTAC_RULES`` if set, else the packaged ``configs/rules.yml``."""
    return Path(os.environ.get("HOPTAC_RULES") or RULES)
