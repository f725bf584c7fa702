"""The `hoptac` command: help works, usage errors are short and exit 2, never a traceback."""

from conftest import hoptac


def test_help_lists_every_stage():
    result = hoptac("--help")
    assert result.returncode == 0
    for command in ("corpus", "annotate", "dataset", "train", "evaluate", "package", "predict", "run"):
        assert command in result.stdout


def test_bad_option_value_is_a_usage_error_not_a_traceback(tmp_path):
    result = hoptac("predict", tmp_path, tmp_path, "-o", tmp_path / "out.jsonl", "--batch-size", "0")
    assert result.returncode == 2
    assert "Invalid value for '--batch-size'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_exits_2():
    result = hoptac("nope")
    assert result.returncode == 2 and "No such command" in result.stderr and "Traceback" not in result.stderr
