"""The toolkit as a user installs it: its own wheel (not editable) in a fresh virtual environment.

One top-level package (``hoptac``), its data files inside (label schema, configs,
guide, seed), and the commands run from a temporary working directory, away
from the git checkout, writing under that directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, SEED_TEXT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``bin/`` of a fresh venv with only the toolkit's wheel (and its dependencies) installed."""
    root = tmp_path_factory.mktemp("toolkit-wheel")
    dist = root / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                            "-w", dist, REPO], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    wheel = next(dist.glob("hoptac-*.whl"))
    install = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              wheel], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    return venv / "bin"


def run(bin_dir: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    result = subprocess.run([bin_dir / "hoptac", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd)})
    assert result.returncode == 0, f"hoptac {' '.join(map(str, args))}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def test_wheel_holds_one_top_level_package_and_its_data(tmp_path_factory):
    dist = tmp_path_factory.mktemp("wheel-only")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                    "-w", dist, REPO], check=True, capture_output=True)
    wheel = next(dist.glob("hoptac-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert zf.read(top_level).decode().split() == ["hoptac"]
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"hoptac"}
    for data in ("hoptac/configs/labels.yml", "hoptac/configs/rules.yml", "hoptac/configs/ner.cfg",
                 "hoptac/configs/sectors.yml", "hoptac/annotate/guide.md",
                 "hoptac/seeds/articles/hanoi-vi-ca-nuoc.txt", "hoptac/seeds/annotations/hanoi-vi-ca-nuoc.json",
                 "hoptac/corpus/read.py", "hoptac/annotate/rules.py", "hoptac/train/pipeline.py"):
        assert data in names, data


def test_installed_commands_run_outside_the_checkout(installed, tmp_path):
    config = run(installed, tmp_path, "annotate", "config", "-o", "config.xml")
    assert "<Labels" in (tmp_path / "config.xml").read_text(encoding="utf-8"), config.stdout
    run(installed, tmp_path, "corpus", "build", SEED_TEXT, "-o", "corpus.jsonl")
    paragraphs = [line for line in SEED_TEXT.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len((tmp_path / "corpus.jsonl").read_text(encoding="utf-8").splitlines()) == len(paragraphs)

    result = run(installed, tmp_path, "run", "--set", "training.max_steps=50")
    report = tmp_path / "models" / "run" / "report" / "metrics.json"
    assert report.is_file(), result.stdout
    assert json.loads(report.read_text(encoding="utf-8"))["data"]["paragraphs"] > 0

    run(installed, tmp_path, "train", "models/run/dataset", "-o", "models/again", "--set", "training.max_steps=20")
    assert (tmp_path / "models" / "again" / "meta.json").is_file()
