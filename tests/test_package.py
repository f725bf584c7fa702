"""Stage 3 (delivery): `hoptac package` — a vi_hoptac wheel that installs and loads in a fresh venv."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import SEED_ANNOTATIONS, SEED_TEXT, hoptac

from hoptac.corpus.read import read_paragraphs
from hoptac.schema import load_schema

PACKAGE = "vi_hoptac"
VERSION = "0.1.0"


def wheel_text(wheel: Path, member: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member).decode("utf-8")


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def assert_one_error_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hoptac: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.mark.slow
def test_wheel_name_meta_card_and_code(model, wheel):
    assert wheel.name == f"{PACKAGE}-{VERSION}-py3-none-any.whl"
    names = wheel_names(wheel)
    data = f"{PACKAGE}/{PACKAGE}-{VERSION}"
    assert f"{PACKAGE}/components.py" in names  # the sector_classifier code travels with the model
    assert f"{data}/sector_classifier/model.skops" in names and f"{data}/LICENSE" in names
    meta = json.loads(wheel_text(wheel, f"{PACKAGE}/meta.json"))
    assert (meta["lang"], meta["name"], meta["version"], meta["license"]) == ("vi", "hoptac", VERSION, "MIT")
    schema = load_schema()
    original = json.loads((model / "meta.json").read_text(encoding="utf-8"))
    assert meta["labels"]["ner"] == original["labels"]["ner"]
    assert set(meta["labels"]["ner"]) <= set(schema.entity_names)
    required = {r.split(">")[0].split("<")[0].split("=")[0]: r for r in meta["requirements"]}
    assert set(required) == {"spacy", "pyvi", "scikit-learn", "skops"}
    assert all(">=" in r and ",<" in r for r in required.values())  # pinned to a compatible range
    assert "hoptac" not in " ".join(meta["requirements"])  # the toolkit is not a dependency of the model
    # training data provenance, from what `hoptac train` recorded and the dataset card
    data_info = meta["hoptac"]["training_data"]
    assert data_info["ner"]["steps"] == original["hoptac"]["ner"]["steps"]
    assert "hanoi-vi-ca-nuoc.json" in data_info["card"]["Provenance"]
    assert meta["hoptac"]["evaluation"] is None
    card = wheel_text(wheel, f"{data}/README.md")
    assert card.startswith(f"# {PACKAGE} {VERSION}")
    assert "No evaluation report" in card
    for label in meta["labels"]["ner"]:
        assert f"| `{label}` |" in card
    assert "MIT" in card and "hanoi-vi-ca-nuoc.json" in card
    metadata = wheel_text(wheel, f"{PACKAGE}-{VERSION}.dist-info/METADATA")
    assert f"Name: {PACKAGE}" in metadata and "Requires-Dist: pyvi" in metadata


@pytest.mark.slow
def test_package_model_returns_the_wheel_and_what_it_holds(model, wheel):
    from hoptac.model import load_model
    from hoptac.train.package import package_model

    result = package_model(model, wheel.parent, force=True)  # the same wheel again, replaced
    assert result.wheel == wheel and wheel.is_file()
    assert (result.package_name, result.version) == (PACKAGE, VERSION)
    assert result.pipes == load_model(model).pipe_names
    assert result.requirements == json.loads(wheel_text(wheel, f"{PACKAGE}/meta.json"))["requirements"]
    assert result.lines()[-1] == str(wheel)
    assert (result.metrics_path is None) == ("no evaluation report found" in result.lines()[0])


@pytest.mark.slow
def test_evaluation_scores_per_label_go_into_meta_and_card(model, tmp_path):
    before = tree_digest(model)
    report = tmp_path / "report"
    hoptac("evaluate", model, SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json", "-o", report, "--allow-training-data",
           check=True)
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    result = hoptac("package", model, "-o", tmp_path / "dist", "--version", "1.2.3", "--metrics", report / "metrics.json")
    assert result.returncode == 0, result.stderr
    wheel = Path(result.stdout.strip().splitlines()[-1])
    assert wheel == tmp_path / "dist" / f"{PACKAGE}-1.2.3-py3-none-any.whl" and wheel.exists()
    meta = json.loads(wheel_text(wheel, f"{PACKAGE}/meta.json"))
    per_type = meta["performance"]["ents_per_type"]
    assert set(per_type) == set(metrics["ner"]["per_label"])
    for label, scores in metrics["ner"]["per_label"].items():
        assert per_type[label]["f"] == pytest.approx(scores["f1"])
        assert per_type[label]["p"] == pytest.approx(scores["precision"])
    assert meta["performance"]["ents_f"] == pytest.approx(metrics["ner"]["micro"]["f1"])
    card = wheel_text(wheel, f"{PACKAGE}/{PACKAGE}-1.2.3/README.md")
    assert "No evaluation report" not in card
    for label, scores in metrics["ner"]["per_label"].items():
        assert f"| `{label}` | {100 * scores['precision']:.1f} | {100 * scores['recall']:.1f} | {100 * scores['f1']:.1f} |" in card
    assert tree_digest(model) == before  # the model folder itself is never edited


@pytest.mark.slow
def test_wheel_installs_and_loads_in_a_fresh_venv(wheel, tmp_path):
    """A fresh venv, dependencies from the registry, hoptac NOT installed: spacy.load("vi_hoptac") works."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    paragraph = list(read_paragraphs([SEED_TEXT]))[1].text  # two cities sign a cooperation agreement
    script = (
        "import importlib.util, json, sys, spacy\n"
        f"nlp = spacy.load({PACKAGE!r})\n"
        "doc = nlp(sys.argv[1])\n"
        "print(json.dumps({'ents': [[e.text, e.label_, e.start_char, e.end_char] for e in doc.ents],"
        " 'cats': doc.cats, 'pipes': nlp.pipe_names,"
        " 'toolkit': [m for m in ('hoptac', 'train', 'corpus') if importlib.util.find_spec(m)]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run([python, "-c", script, paragraph], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    schema = load_schema()
    assert out["toolkit"] == []  # the package stands alone
    assert out["ents"], "the model found no entity in a seed paragraph"
    for text, label, start, end in out["ents"]:
        assert label in schema.entity_names and paragraph[start:end] == text
    assert sorted(out["cats"]) == sorted(schema.sector_names)
    assert all(0.0 <= s <= 1.0 for s in out["cats"].values())


@pytest.mark.slow
def test_pipeline_without_sector_classifier(model, tmp_path):
    """No sector classifier: no scikit-learn/skops requirement; custom code shipped only if a pipe needs it."""
    from hoptac.model import load_model

    nlp = load_model(model)
    nlp.remove_pipe("sector_classifier")
    nlp.to_disk(tmp_path / "ner-only")
    result = hoptac("package", tmp_path / "ner-only", "-o", tmp_path / "dist", "--name", "hoptac_ner")
    assert result.returncode == 0, result.stderr
    wheel = Path(result.stdout.strip().splitlines()[-1])
    assert wheel.name == "vi_hoptac_ner-0.1.0-py3-none-any.whl"
    meta = json.loads(wheel_text(wheel, "vi_hoptac_ner/meta.json"))
    assert {r.split(">")[0] for r in meta["requirements"]} == {"spacy", "pyvi"}
    custom = {nlp.get_pipe_meta(p).factory for p in nlp.pipe_names} - {"tok2vec", "ner"}
    assert ("vi_hoptac_ner/components.py" in wheel_names(wheel)) == bool(custom)
    assert "no sector classifier" in wheel_text(wheel, "vi_hoptac_ner/vi_hoptac_ner-0.1.0/README.md")


def test_name_without_language_prefix_gets_it():
    from hoptac.train.package import spacy_names

    assert spacy_names("vi_hoptac", "vi") == ("hoptac", "vi_hoptac")
    assert spacy_names("hoptac", "vi") == ("hoptac", "vi_hoptac")


@pytest.mark.parametrize("name", ["Vi-Hoptac", "vi_", "vi__hoptac", "1abc", ""])
def test_bad_names_are_refused(name):
    from hoptac.errors import HoptacError
    from hoptac.train.package import spacy_names

    with pytest.raises(HoptacError, match="--name"):
        spacy_names(name, "vi")


@pytest.mark.slow
def test_bad_version(model, tmp_path):
    result = hoptac("package", model, "-o", tmp_path / "dist", "--version", "1.0")
    assert_one_error_line(result, "--version", "1.0", "X.Y.Z")
    assert not (tmp_path / "dist").exists()


def test_missing_model_folder(tmp_path):
    result = hoptac("package", tmp_path / "nope", "-o", tmp_path / "dist")
    assert_one_error_line(result, "nope", "no such model folder")


def test_folder_that_is_not_a_pipeline(tmp_path):
    (tmp_path / "notmodel").mkdir()
    (tmp_path / "notmodel" / "meta.json").write_text("{}", encoding="utf-8")
    result = hoptac("package", tmp_path / "notmodel", "-o", tmp_path / "dist")
    assert_one_error_line(result, "notmodel", "not a spaCy pipeline")


def test_pipeline_without_ner(tmp_path):
    import spacy

    spacy.blank("vi").to_disk(tmp_path / "blank")
    result = hoptac("package", tmp_path / "blank", "-o", tmp_path / "dist")
    assert_one_error_line(result, "blank", "no 'ner'")


@pytest.mark.slow
def test_missing_metrics_file(model, tmp_path):
    result = hoptac("package", model, "-o", tmp_path / "dist", "--metrics", tmp_path / "absent.json")
    assert_one_error_line(result, "absent.json", "no such metrics file")


@pytest.mark.slow
def test_packaging_without_scores_warns_on_its_own_line(model, tmp_path):
    result = hoptac("package", model, "-o", tmp_path / "dist", check=True)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "no per-label scores" in warnings[0] and "--metrics" in warnings[0]
    assert result.stdout.strip().splitlines()[-1].endswith(".whl")
