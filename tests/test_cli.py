"""The `hoptac` command: help works, usage errors are short and exit 2, never a traceback."""

import re

from conftest import hoptac

STAGES = ("corpus", "annotate", "dataset", "train", "evaluate", "package", "predict", "run")


def listed_commands(help_text: str) -> list[str]:
    """The command names of the help's command list (first word of each row after 'Commands')."""
    _, _, listing = help_text.partition("Commands")
    return [m.group(1) for m in re.finditer(r"^[\s│|]*([a-z][a-z-]*)\s{2,}\S", listing, re.MULTILINE)]


def test_help_lists_every_stage():
    result = hoptac("--help")
    assert result.returncode == 0
    listed = listed_commands(result.stdout)
    assert set(STAGES) <= set(listed), listed


def test_bad_option_value_is_a_usage_error_not_a_traceback(tmp_path):
    result = hoptac("predict", tmp_path, tmp_path, "-o", tmp_path / "out.jsonl", "--batch-size", "0")
    assert result.returncode == 2
    assert "Invalid value for '--batch-size'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_exits_2():
    result = hoptac("nope")
    assert result.returncode == 2 and "No such command" in result.stderr and "Traceback" not in result.stderr
