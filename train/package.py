"""Stage 3 (delivery): ``hoptac package`` — a trained MODEL_DIR as a pip-installable wheel.

The wheel is built by spaCy's own packaging (``spacy.cli.package.package``, the
function behind ``spacy package``) from a temporary copy of the model whose
``meta.json`` we complete (the original folder is never touched):

* name and version: spaCy names a package ``{lang}_{meta.name}`` (and its
  generated ``setup.py`` always adds the prefix), so ``--name vi_hoptac`` is
  passed to spaCy as ``hoptac`` and the wheel installs ``vi_hoptac``, loadable
  with ``spacy.load("vi_hoptac")``;
* labels (from the pipeline), evaluation scores per label (from a ``metrics.json``
  written by ``hoptac evaluate``, found next to the model or given with
  ``--metrics``), training data provenance (what ``hoptac train`` recorded in the
  model's meta), license MIT, and requirements pinned to the minor versions this
  toolkit runs with (spaCy, pyvi; scikit-learn and skops when the pipeline has the
  sector classifier);
* a model card ``README.md`` with the per-label tables (ours, not spaCy's
  generated one), and the MIT ``LICENSE``.

The toolkit files the pipeline needs at load time are shipped in the package
(``code_paths``), so the wheel loads without hoptac installed:
``hoptac/tokenizer.py`` (the repaired pyvi tokenizer; its class imports only
spaCy) and ``train/components.py`` when a component comes from it (the
``sector_classifier``, the lexicon features; it imports only spaCy, NumPy,
scikit-learn and skops).

spaCy's packaging runs in a child process: its output (and that of
``python -m build``) goes to a log file instead of the terminal, and the factory
is registered there from the shipped file only, so spaCy's requirement detection
cannot mistake the hoptac toolkit for a dependency of the model.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import hoptac.components
import hoptac.tokenizer
from hoptac.errors import HoptacError
from hoptac.model import load_model
from hoptac.output import atomic_file, check_folder, check_output, write_new
from hoptac.schema import load_schema

NER = "ner"
LICENSE = "MIT"
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
METRICS_FILE = "metrics.json"
# Where `hoptac evaluate` reports are looked for, relative to the model folder.
METRICS_NEAR_MODEL = (Path(METRICS_FILE), Path("..") / METRICS_FILE, Path("..") / "report" / METRICS_FILE,
                      Path("..") / "eval" / METRICS_FILE, Path("..") / "evaluation" / METRICS_FILE)
# Distributions the model needs at run time (pinned to the installed minor versions).
BASE_REQUIREMENTS = ("spacy", "pyvi")
SECTOR_REQUIREMENTS = ("scikit-learn", "skops")
# Sections of the dataset card (README.md of `hoptac dataset build`) quoted in the model card.
CARD_SECTIONS = ("Splits and label counts", "Split method", "Provenance")

MIT_TEXT = """MIT License

Copyright (c) {year} the hoptac authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


# ---------------------------------------------------------------- inputs

def check_version(version: str) -> str:
    if not VERSION_RE.match(str(version)):
        raise HoptacError(f"--version {version!r}: expected X.Y.Z (three numbers, e.g. 0.1.0)")
    return str(version)


def spacy_names(name: str, lang: str) -> tuple[str, str]:
    """(name for spaCy's meta, final package name): ``vi_hoptac`` → (``hoptac``, ``vi_hoptac``)."""
    prefix = f"{lang}_"
    if not NAME_RE.match(name or ""):
        raise HoptacError(f"--name {name!r}: use lower-case letters, digits and single underscores, e.g. {prefix}hoptac")
    short = name[len(prefix):] if name.startswith(prefix) else name
    if not short:
        raise HoptacError(f"--name {name!r}: needs a name after the language prefix {prefix!r}")
    return short, prefix + short


def read_pipeline(model_dir: Path) -> tuple[dict, "object"]:
    """(meta.json, loaded nlp) of a trained MODEL_DIR with an ``ner``; one-line errors otherwise."""
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise HoptacError(f"{model_dir}: no such model folder")
    if not model_dir.is_dir() or not (model_dir / "config.cfg").is_file() or not (model_dir / "meta.json").is_file():
        raise HoptacError(f"{model_dir}: not a spaCy pipeline folder (needs config.cfg and meta.json)")
    try:
        meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HoptacError(f"{model_dir / 'meta.json'}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("lang"), str):
        raise HoptacError(f"{model_dir / 'meta.json'}: expected a JSON object with a 'lang'")
    return meta, load_model(model_dir)


def find_metrics(model_dir: Path, metrics: Path | None) -> Path | None:
    """The evaluation report to quote: ``--metrics`` if given, else one found next to the model."""
    if metrics is not None:
        metrics = Path(metrics)
        if not metrics.is_file():
            raise HoptacError(f"{metrics}: no such metrics file (from `hoptac evaluate … -o REPORT_DIR`)")
        return metrics
    for relative in METRICS_NEAR_MODEL:
        candidate = (Path(model_dir) / relative).resolve()
        if candidate.is_file():
            return candidate
    return None


def read_metrics(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        metrics = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HoptacError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("ner"), dict) \
            or not isinstance(metrics["ner"].get("per_label"), dict):
        raise HoptacError(f"{path}: not a metrics.json from `hoptac evaluate` (needs ner.per_label)")
    return metrics


# ---------------------------------------------------------------- meta.json

def requirements(with_sectors: bool) -> list[str]:
    """Pinned to the installed minor versions: ``spacy>=3.8.18,<3.9.0`` and so on."""
    from spacy.util import get_minor_version_range

    names = BASE_REQUIREMENTS + (SECTOR_REQUIREMENTS if with_sectors else ())
    out = []
    for dist in names:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            raise HoptacError(f"{dist} is not installed here: cannot pin the model's requirements") from None
        out.append(f"{dist}{get_minor_version_range(version)}")
    return out


def performance(metrics: dict | None, meta: dict) -> dict:
    """spaCy-style ``performance`` (ents_p/r/f, ents_per_type, cats_*): from the evaluation when there is one."""
    if metrics is None:
        return meta.get("performance") or {}
    ner = metrics["ner"]
    micro = ner.get("micro", {})
    out = {
        "ents_p": micro.get("precision"), "ents_r": micro.get("recall"), "ents_f": micro.get("f1"),
        "ents_per_type": {label: {"p": s.get("precision"), "r": s.get("recall"), "f": s.get("f1")}
                          for label, s in ner["per_label"].items()},
    }
    sectors = metrics.get("sectors")
    if isinstance(sectors, dict) and isinstance(sectors.get("per_label"), dict):
        out["cats_micro_p"] = sectors.get("micro", {}).get("precision")
        out["cats_micro_r"] = sectors.get("micro", {}).get("recall")
        out["cats_micro_f"] = sectors.get("micro", {}).get("f1")
        out["cats_macro_f"] = sectors.get("macro", {}).get("f1")
        out["cats_f_per_type"] = {label: {"p": s.get("precision"), "r": s.get("recall"), "f": s.get("f1")}
                                  for label, s in sectors["per_label"].items()}
    return out


def provenance(meta: dict) -> dict:
    """What ``hoptac train`` recorded about the training data (meta["hoptac"]) plus the dataset card's
    splits, split method and provenance sections, when the dataset folder is still there."""
    recorded = meta.get("hoptac") if isinstance(meta.get("hoptac"), dict) else {}
    out: dict = {}
    if recorded.get("dataset"):
        dataset = Path(str(recorded["dataset"]))
        out["dataset"] = dataset.name
        out["card"] = dataset_card_sections(dataset)
    for part in ("ner", "sectors"):
        if isinstance(recorded.get(part), dict):
            out[part] = recorded[part]
    return out


def dataset_card_sections(dataset: Path) -> dict[str, str]:
    """``{title: markdown}`` of the sections of the dataset card (README.md) that say where the data came from."""
    card = Path(dataset) / "README.md"
    if not card.is_file():
        return {}
    text = card.read_text(encoding="utf-8", errors="replace")
    out = {}
    for section in re.split(r"(?m)^## ", text)[1:]:
        title, _, body = section.partition("\n")
        if title.strip() in CARD_SECTIONS:
            out[title.strip()] = body.strip()
    return out


def package_meta(meta: dict, nlp, short_name: str, version: str, metrics: dict | None,
                 metrics_path: Path | None, with_sectors: bool) -> dict:
    out = dict(meta)
    out.update({
        "name": short_name,
        "version": version,
        "license": LICENSE,
        "description": meta.get("description") or "hoptac: Vietnamese cooperation news — NER and paragraph sectors",
        "author": meta.get("author") or "hoptac",
        "labels": {name: list(labels) for name, labels in nlp.pipe_labels.items()},
        "requirements": requirements(with_sectors),
        "performance": performance(metrics, meta),
    })
    hoptac = dict(meta.get("hoptac") or {}) if isinstance(meta.get("hoptac"), dict) else {}
    hoptac.pop("dataset", None)  # a local path: replaced by the provenance below
    hoptac["training_data"] = provenance(meta)
    hoptac["evaluation"] = ({"source": metrics_path.name, **{k: metrics[k] for k in ("ner", "sectors", "baseline", "data")
                                                             if k in metrics}}
                            if metrics is not None else None)
    out["hoptac"] = hoptac
    if hoptac["training_data"].get("dataset"):
        out["sources"] = [{"name": f"hoptac dataset {hoptac['training_data']['dataset']}"}]
    return out


# ---------------------------------------------------------------- model card

def _pct(value) -> str:
    return f"{100 * value:.1f}" if isinstance(value, (int, float)) else "–"


def _score_table(table: dict, first: str) -> list[str]:
    lines = [f"| {first} | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, s in table.get("per_label", {}).items():
        lines.append(f"| `{label}` | {_pct(s.get('precision'))} | {_pct(s.get('recall'))} | {_pct(s.get('f1'))} "
                     f"| {s.get('support', '–')} |")
    for kind in ("micro", "macro"):
        if isinstance(table.get(kind), dict):
            s = table[kind]
            lines.append(f"| *{kind} average* | {_pct(s.get('precision'))} | {_pct(s.get('recall'))} "
                         f"| {_pct(s.get('f1'))} | |")
    return lines


def model_card(meta: dict, package_name: str, with_sectors: bool) -> str:
    """README.md of the package: what it does, how to use it, labels, scores per label, data, license."""
    schema = load_schema()
    described = {e.name: e.description for e in schema.entities} | {s.name: s.description for s in schema.sectors}
    ner_labels = meta["labels"].get(NER, [])
    sector_labels = next((labels for name, labels in meta["labels"].items() if name != NER and labels
                          and name in meta.get("pipeline", [])), [])
    hoptac = meta["hoptac"]
    lines = [f"# {package_name} {meta['version']}", "", meta["description"], "",
             "Vietnamese news about cooperation between localities: named entities "
             + ("and, for every paragraph, a score per sector." if with_sectors else "(no sector classifier in this build)."),
             "", "## Use", "", "```sh", f"pip install {package_name}-{meta['version']}-py3-none-any.whl", "```", "",
             "```python", "import spacy", "", f'nlp = spacy.load("{package_name}")',
             'doc = nlp("Lãnh đạo thành phố Hà Nội và thành phố Hải Phòng ký kết thỏa thuận hợp tác.")',
             "print([(ent.text, ent.label_) for ent in doc.ents])"]
    if with_sectors:
        lines += ["print(doc.cats)        # one probability per sector",
                  "print(doc._.sectors)   # the sectors over their tuned thresholds"]
    lines += ["```", "", f"Pipeline: {', '.join(f'`{p}`' for p in meta.get('pipeline', []))}; "
              f"tokenizer: spaCy `vi` with pyvi word segmentation. spaCy `{meta.get('spacy_version', '')}`.", "",
              "Requirements (installed with the wheel): " + ", ".join(f"`{r}`" for r in meta["requirements"]), "",
              "## Labels", "", "| entity label | meaning |", "| --- | --- |"]
    lines += [f"| `{label}` | {described.get(label, '')} |" for label in ner_labels]
    if sector_labels:
        lines += ["", "| sector | meaning |", "| --- | --- |"]
        lines += [f"| `{label}` | {described.get(label, '')} |" for label in sector_labels]
    lines += ["", "## Evaluation", ""]
    evaluation = hoptac.get("evaluation")
    if evaluation:
        data = evaluation.get("data", {})
        lines += [f"From `{evaluation['source']}` (`hoptac evaluate`): "
                  f"{data.get('paragraphs', '?')} held-out paragraphs, {data.get('entities', '?')} gold entities"
                  + (f", source `{Path(str(data['source'])).name}`" if data.get("source") else "") + ".", "",
                  "### Entities (exact span and label)", ""]
        lines += _score_table(evaluation["ner"], "label")
        ci = evaluation["ner"].get("micro_f1_ci95")
        if isinstance(ci, list) and len(ci) == 2:
            lines += ["", f"Micro-F1 95% interval (bootstrap over articles): {_pct(ci[0])}–{_pct(ci[1])}."]
        if isinstance(evaluation.get("sectors"), dict):
            lines += ["", "### Sectors (paragraph labels over threshold)", ""]
            lines += _score_table(evaluation["sectors"], "sector")
        baseline = evaluation.get("baseline", {})
        if isinstance(baseline.get("ner"), dict):
            lines += ["", f"Rules baseline on the same data: entity micro-F1 "
                      f"{_pct(baseline['ner'].get('micro', {}).get('f1'))}"
                      + (f", sector micro-F1 {_pct(baseline['sectors'].get('micro', {}).get('f1'))}"
                         if isinstance(baseline.get("sectors"), dict) else "") + "."]
    else:
        lines += ["**No evaluation report** (`metrics.json` from `hoptac evaluate`) was found next to the model "
                  "or given with `--metrics`: this package carries no held-out scores."]
        dev = meta.get("performance", {})
        if isinstance(dev.get("ents_per_type"), dict):
            lines += ["", "Validation scores recorded during training (the split used to pick the best "
                      "checkpoint, so optimistic):", "", "| label | precision | recall | F1 |",
                      "| --- | ---: | ---: | ---: |"]
            lines += [f"| `{label}` | {_pct(s.get('p'))} | {_pct(s.get('r'))} | {_pct(s.get('f'))} |"
                      for label, s in dev["ents_per_type"].items()]
    lines += ["", "## Training data", ""]
    data = hoptac.get("training_data") or {}
    if data:
        if data.get("dataset"):
            lines.append(f"- dataset `{data['dataset']}` (`hoptac dataset build` from Label Studio exports).")
        if isinstance(data.get("ner"), dict):
            ner = data["ner"]
            lines.append(f"- NER: {ner.get('steps', '?')} training steps, best validation F1 {_pct(ner.get('best_dev_f1'))}.")
        if isinstance(data.get("sectors"), dict):
            lines.append(f"- sectors: validation micro-F1 {_pct(data['sectors'].get('dev_micro_f1'))}, "
                         "decision thresholds tuned on the validation split.")
        for title, body in (data.get("card") or {}).items():
            lines += ["", f"### {title} (from the dataset card)", "", body]
        if data.get("dataset") and not data.get("card"):
            lines += ["", "The dataset folder (and its card) was not found when this package was built."]
    else:
        lines.append("Not recorded in the model's meta.json (the model was not trained with `hoptac train`).")
    lines += ["", "## License", "", f"{LICENSE} (see `LICENSE`).", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- building

def _build_wheel(model_copy: Path, build_dir: Path, code_paths: list[Path], short_name: str, version: str,
                 log_path: Path, out_dir: Path) -> Path:
    """Run spaCy's packaging in a child process; the wheel it built, or a one-line error.

    The build log is kept (as a new file in ``out_dir``) only when the build fails."""
    args = {"input_dir": str(model_copy), "output_dir": str(build_dir), "code_paths": [str(p) for p in code_paths],
            "name": short_name, "version": version}
    script = ("import json, sys\nfrom pathlib import Path\nfrom spacy.cli.package import package\n"
              "a = json.loads(sys.argv[1])\n"
              "package(Path(a['input_dir']), Path(a['output_dir']), code_paths=[Path(p) for p in a['code_paths']],"
              " name=a['name'], version=a['version'], create_meta=False, create_sdist=False, create_wheel=True,"
              " require_parent=False, force=True, silent=False)\n")
    with open(log_path, "w", encoding="utf-8") as log:
        result = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=build_dir,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wheels = sorted(build_dir.glob("*/dist/*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        tail = [line for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        last = tail[-1] if tail else f"exit status {result.returncode}"
        kept = write_new(out_dir, (f"{log_path.stem}{'' if n == 1 else f'-{n}'}.log" for n in range(1, 1000)),
                         log_path.read_bytes())
        raise HoptacError(f"{model_copy.name}: spacy package failed ({last.strip()[:300]}); full log: {kept}")
    return wheels[0]


def package_model(model_dir: Path, out_dir: Path, name: str = "vi_hoptac", version: str = "0.1.0",
                  metrics: Path | None = None, force: bool = False) -> PackageResult:
    """Build ``{name}-{version}-py3-none-any.whl`` into ``out_dir``; returns its path and contents."""
    model_dir, out_dir = Path(model_dir), check_folder(out_dir)
    version = check_version(version)
    _check_build_backend()
    meta, nlp = read_pipeline(model_dir)
    if NER not in nlp.pipe_names:
        raise HoptacError(f"{model_dir}: the pipeline has no '{NER}' component")
    short_name, package_name = spacy_names(name, meta["lang"])
    check_output(out_dir / f"{package_name}-{version}-py3-none-any.whl", kind="wheel", inputs=[model_dir], force=force)
    with_sectors = any(nlp.get_pipe_meta(pipe).factory == _sector_factory() for pipe in nlp.pipe_names)
    code_paths = _code_paths(nlp)
    metrics_path = find_metrics(model_dir, metrics)
    metrics_data = read_metrics(metrics_path)
    new_meta = package_meta(meta, nlp, short_name, version, metrics_data, metrics_path, with_sectors)
    with tempfile.TemporaryDirectory(prefix="hoptac-package-") as tmp:
        log_path = Path(tmp) / f"{package_name}-{version}.build.log"
        model_copy = Path(tmp) / "model"
        shutil.copytree(model_dir, model_copy)
        (model_copy / "meta.json").write_text(json.dumps(new_meta, ensure_ascii=False, indent=2), encoding="utf-8")
        (model_copy / "README.md").write_text(model_card(new_meta, package_name, with_sectors), encoding="utf-8")
        (model_copy / "LICENSE").write_text(MIT_TEXT.format(year=date.today().year), encoding="utf-8")
        build_dir = Path(tmp) / "build"
        build_dir.mkdir()
        built = _build_wheel(model_copy, build_dir, code_paths, short_name, version, log_path, out_dir)
        wheel = out_dir / built.name
        with atomic_file(wheel, kind="wheel", inputs=[model_dir], force=force, binary=True) as f:
            f.write(built.read_bytes())
    return PackageResult(wheel, package_name, version, list(nlp.pipe_names), list(new_meta["requirements"]),
                         metrics_path)


@dataclass
class PackageResult:
    """The wheel ``hoptac package`` built and what it holds."""

    wheel: Path
    package_name: str  # what spacy.load takes once the wheel is installed
    version: str
    pipes: list[str]
    requirements: list[str]
    metrics_path: Path | None  # the evaluation behind the model card's scores (None: none found)

    def lines(self) -> list[str]:
        scores = (f"evaluation from {self.metrics_path}" if self.metrics_path
                  else "no evaluation report found (said in the model card)")
        return [f"package:  {self.package_name} {self.version} ({', '.join(self.pipes)}; {scores})",
                f"requires: {', '.join(self.requirements)}",
                f"load:     pip install {self.wheel}; spacy.load({self.package_name!r})",
                str(self.wheel)]

    def summary(self) -> str:
        return "\n".join(self.lines())


def _check_build_backend() -> None:
    """spaCy builds wheels with ``python -m build`` (falling back to the deprecated ``wheel``)."""
    for dist in ("build", "wheel"):
        try:
            importlib.metadata.version(dist)
            return
        except importlib.metadata.PackageNotFoundError:
            continue
    raise HoptacError("building a wheel needs the 'build' package in this environment (pip install build)")


def _code_paths(nlp) -> list[Path]:
    """The toolkit's files the pipeline needs at load time: its tokenizer's, its components'."""
    paths = [Path(hoptac.tokenizer.__file__).resolve()] if isinstance(nlp.tokenizer, hoptac.tokenizer.VietnameseWords) else []
    return paths + ([_components_file()] if _needs_components(nlp) else [])


def _needs_components(nlp) -> bool:
    """Whether a component of the pipeline comes from a factory defined in ``hoptac/components.py``."""
    from spacy.util import registry

    for pipe in nlp.pipe_names:
        factory = nlp.get_pipe_meta(pipe).factory
        for name in (nlp.get_factory_name(factory), factory):
            if name in registry.factories:
                if registry.factories.find(name).get("module") == "hoptac.components":
                    return True
                break
    return False


def _sector_factory() -> str:
    return hoptac.components.FACTORY


def _components_file() -> Path:
    return Path(hoptac.components.__file__).resolve()
