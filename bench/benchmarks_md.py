"""Where the bench scripts write their results: one section each of ``BENCHMARKS.md``.

A section is the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; a
script rewrites its own and leaves the others as they are. The scripts import this file
by its name (``python bench/x.py`` puts ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nEach section is written by the script it names; rerun the script to update it.\n"


def markers(name: str) -> tuple[str, str]:
    """The opening and closing marker of section ``name``."""
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def write_section(text: str, name: str, path: Path = BENCHMARKS) -> None:
    """Put ``text`` (the whole section, its markers included) in place of section ``name``
    of ``path``, or append it when ``path`` has no such section yet."""
    start, end = markers(name)
    current = path.read_text(encoding="utf-8") if path.exists() else HEADER
    if start in current and end in current:
        before, rest = current.split(start, 1)
        updated = before + text + rest.split(end, 1)[1]
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(updated, encoding="utf-8")
