"""Shared fixtures. Data from ../shared is read in place, never copied into the repo."""

from __future__ import annotations

import gzip
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GOLD_EXPORT = SHARED / "data" / "gold" / "news-gold.json"
GOLD_COUNTS = SHARED / "data" / "gold" / "counts.json"
NEWS = SHARED / "data" / "news" / "unlabeled.jsonl.gz"
SEED_TEXT = REPO / "seeds" / "articles" / "hanoi-vi-ca-nuoc.txt"
SEED_ANNOTATIONS = REPO / "seeds" / "annotations"


def news_slice(folder: Path, articles: int) -> Path:
    """The first ``articles`` of the unlabelled news corpus, as a JSONL.gz input in ``folder`` (outside the repo)."""
    out = folder / "slice.jsonl.gz"
    with gzip.open(NEWS, "rb") as src, gzip.open(out, "wb") as dst:
        for line in itertools.islice(src, articles):
            dst.write(line)
    return out


def hoptac(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the real ``hoptac`` CLI in a subprocess, as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "hoptac.cli", *map(str, args)],
        cwd=cwd or REPO, env=env, capture_output=True, text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"hoptac {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def seed_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "corpus.jsonl"
    hoptac("corpus", "build", REPO / "seeds" / "articles", "-o", out, check=True)
    return out
pytest_plugins = ["studio_server", "seed_model"]  # the real Label Studio server; the seed model and wheel fixtures
