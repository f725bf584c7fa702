"""Test plugin (not a test module): one small model trained with the real ``hoptac train``, once per session.

Registered in conftest (fixtures ``model`` and ``wheel``), used by the package, predict and Ray tests: the seed annotations →
``hoptac dataset build`` → ``hoptac train`` for a few steps (enough for the NER
to predict entities on the seed text; not a useful model).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SEED_ANNOTATIONS, hoptac

TRAIN_STEPS = 100


def seed_model(tmp_path_factory) -> Path:
    """MODEL_DIR (tok2vec, ner, sector_classifier) trained on the seed; built on first use in this session."""
    root = tmp_path_factory.getbasetemp() / "seed-model"
    model = root / "model"
    if not (model / "meta.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        dataset = root / "dataset"
        hoptac("dataset", "build", SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json", "-o", dataset, check=True)
        hoptac("train", dataset, "-o", model, "--set", f"training.max_steps={TRAIN_STEPS}", check=True)
    return model


def seed_wheel(tmp_path_factory) -> Path:
    """:func:`hoptac.train.package.package_model` of :func:`seed_model` (default name and version); built on first use."""
    from hoptac.train.package import package_model

    dist = tmp_path_factory.getbasetemp() / "seed-model" / "dist"
    wheels = sorted(dist.glob("*.whl"))
    if not wheels:
        wheels = [package_model(seed_model(tmp_path_factory), dist).wheel]
    return wheels[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """:func:`seed_model`, for the tests that predict with, package or load a trained model."""
    return seed_model(tmp_path_factory)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """:func:`seed_wheel`."""
    return seed_wheel(tmp_path_factory)
