"""The layer contract of pyproject.toml (import-linter), and what the model wheel's code may import.

The stage folders are installed as ``hoptac.corpus``, ``hoptac.annotate`` and
``hoptac.train`` by setuptools' ``package-dir`` mapping; in the checkout,
``hoptac/corpus`` etc. are links to them. import-linter reads the package from
disk: the tests run it on the checkout and on a copy laid out as installed.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import REPO

PYPROJECT = REPO / "pyproject.toml"
# The wheel of a trained model ships these files and nothing else of hoptac.
SHIPPED = (REPO / "hoptac" / "tokenizer.py", REPO / "hoptac" / "components.py")
SHIPPED_MAY_IMPORT = {"spacy", "numpy", "sklearn", "skops"}


def installed_tree(dest: Path) -> Path:
    """The ``hoptac`` package as installed: every mapped folder's modules at its dotted place."""
    mapping = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    for package, folder in mapping.items():
        target = dest.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in (REPO / folder).glob("*.py"):
            shutil.copy(module, target / module.name)
    return dest


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--no-cache", str(PYPROJECT)], cwd=tree, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})


def test_layer_contract_is_kept(tmp_path):
    result = lint_imports(installed_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_lint_imports_runs_in_the_checkout_as_it_is():
    """hoptac/corpus, hoptac/annotate, hoptac/train… are links to the stage folders, so the
    checkout has the installed layout and a plain `lint-imports` reads it."""
    for stage in ("corpus", "annotate", "train", "configs", "seeds"):
        assert (REPO / "hoptac" / stage).resolve() == (REPO / stage).resolve()
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "2 kept, 0 broken" in result.stdout, result.stdout + result.stderr


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The check can fail: corpus (stage 1) importing train (stage 3) is reported."""
    tree = installed_tree(tmp_path)
    read = tree / "hoptac" / "corpus" / "read.py"
    read.write_text(read.read_text(encoding="utf-8") + "\nimport hoptac.train.dataset  # noqa\n", encoding="utf-8")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "hoptac.corpus.read -> hoptac.train.dataset" in result.stdout


def imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_model_wheel_code_imports_only_spacy_numpy_sklearn_skops_and_stdlib():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in SHIPPED:
        extra = imported_top_levels(path) - stdlib - SHIPPED_MAY_IMPORT
        assert not extra, f"{path.name} imports {sorted(extra)}: the model wheel does not ship them"
