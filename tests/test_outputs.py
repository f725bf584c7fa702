"""Nothing lost, nothing overwritten: every ``-o`` goes through ``hoptac.output`` (issue 13, items 1–5, 12).

Each case runs the real CLI in a subprocess. Signals are sent to that process;
a full disk is an ``RLIMIT_FSIZE`` limit on it.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import NEWS, REPO, SEED_ANNOTATIONS, SEED_TEXT, hoptac

from hoptac.errors import HoptacError
from hoptac.output import MARK, atomic_dir, atomic_file, check_output

SEED_EXPORT = SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json"
SEED_PARAGRAPHS = sum(1 for line in SEED_TEXT.read_text(encoding="utf-8").splitlines() if line.strip())


def one_error_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hoptac: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders of hoptac.output left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".old")))


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def seed_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "seed-ds"
    hoptac("dataset", "build", SEED_EXPORT, "-o", out, check=True)
    return out


# ---------------------------------------------------------------- 1. folders hoptac did not write

@pytest.mark.slow
def test_train_refuses_a_folder_it_did_not_write(seed_dataset, tmp_path):
    thesis = tmp_path / "P" / "thesis.txt"
    thesis.parent.mkdir()
    thesis.write_text("draft", encoding="utf-8")
    result = hoptac("train", seed_dataset, "-o", thesis.parent, "--only", "sectors")
    one_error_line(result, str(thesis.parent), "hoptac did not write it", "--force")
    assert thesis.read_text(encoding="utf-8") == "draft"


@pytest.mark.slow
def test_train_refuses_the_dataset_and_the_folder_that_holds_it(seed_dataset):
    before = tree(seed_dataset)
    one_error_line(hoptac("train", seed_dataset, "-o", seed_dataset, "--only", "sectors"), "overwrite the input")
    one_error_line(hoptac("train", seed_dataset, "-o", seed_dataset.parent, "--only", "sectors", "--force"),
                   "holds the input")
    assert tree(seed_dataset) == before


@pytest.mark.slow
def test_a_folder_hoptac_wrote_is_replaced_and_force_replaces_any(seed_dataset, tmp_path):
    model = tmp_path / "model"
    hoptac("train", seed_dataset, "-o", model, "--only", "sectors", check=True)
    assert (model / MARK).is_file() and (model / "meta.json").is_file()
    (model / "stale.txt").write_text("from the first run", encoding="utf-8")
    hoptac("train", seed_dataset, "-o", model, "--only", "sectors", check=True)  # hoptac's own: replaced whole
    assert not (model / "stale.txt").exists() and (model / "meta.json").is_file()
    assert leftovers(tmp_path) == []

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    hoptac("train", seed_dataset, "-o", other, "--only", "sectors", "--force", check=True)
    assert (other / "meta.json").is_file() and not (other / "notes.txt").exists()


def test_new_output_folders_get_the_usual_permissions(tmp_path):
    os.umask(0o022)
    out = tmp_path / "ds"
    hoptac("dataset", "build", SEED_EXPORT, "-o", out, check=True)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    corpus = tmp_path / "c.jsonl"
    hoptac("corpus", "build", SEED_TEXT, "-o", corpus, check=True)
    assert stat.S_IMODE(corpus.stat().st_mode) == 0o644


# ---------------------------------------------------------------- 2. signals

def start(args: list, cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hoptac.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def interrupt(proc: subprocess.Popen, sig: int, after: float) -> tuple[int, str]:
    """Send ``sig`` after ``after`` seconds (the command must still be running then)."""
    time.sleep(after)
    assert proc.poll() is None, f"finished before the signal: {proc.communicate()}"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_corpus_build_signal_keeps_the_previous_output(tmp_path, sig, code, word):
    out = tmp_path / "corpus.jsonl"
    hoptac("corpus", "build", SEED_TEXT, "-o", out, check=True)
    before = out.read_bytes()
    rc, err = interrupt(start(["corpus", "build", NEWS, "-o", out], tmp_path), sig, after=4)
    assert rc == code and f"hoptac: {word}" in err and "Traceback" not in err, err
    assert out.read_bytes() == before
    assert leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("n_process", [1, 2])
def test_predict_signal_keeps_the_previous_output(seed_dataset, tmp_path, n_process):
    model = tmp_path / "model"
    hoptac("train", seed_dataset, "-o", model, "--set", "training.max_steps=20", check=True)
    preds = tmp_path / "preds.jsonl"
    hoptac("predict", model, SEED_TEXT, "-o", preds, check=True)
    before = preds.read_bytes()
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        rc, err = interrupt(start(["predict", model, NEWS, "-o", preds, "--n-process", n_process], tmp_path),
                            sig, after=6)
        assert rc == code and "Traceback" not in err, err
        assert preds.read_bytes() == before
        assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_train_and_dataset_build_signals_keep_the_previous_output(seed_dataset, tmp_path):
    model = tmp_path / "model"
    hoptac("train", seed_dataset, "-o", model, "--only", "sectors", check=True)
    before = tree(model)
    rc, err = interrupt(start(["train", seed_dataset, "-o", model, "--set", "training.max_steps=100000"], tmp_path),
                        signal.SIGTERM, after=12)
    assert rc == 143 and "hoptac: terminated" in err and "Traceback" not in err, err[-2000:]
    assert tree(model) == before and leftovers(tmp_path) == []

    dataset = tmp_path / "ds"
    hoptac("dataset", "build", SEED_EXPORT, "-o", dataset, check=True)
    before = tree(dataset)
    gold = [REPO.parent / "shared" / "data" / "gold" / name for name in ("news-gold.json", "news-gold-2.json")]
    rc, err = interrupt(start(["dataset", "build", *gold, "-o", dataset], tmp_path), signal.SIGINT, after=2)
    assert rc == 130 and "hoptac: interrupted" in err and "Traceback" not in err, err[-2000:]
    assert tree(dataset) == before and leftovers(tmp_path) == []


# ---------------------------------------------------------------- 3. special files

def test_a_symlinked_output_is_written_through(tmp_path):
    target = tmp_path / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    hoptac("corpus", "build", SEED_TEXT, "-o", link, check=True)
    assert link.is_symlink() and len(target.read_text(encoding="utf-8").splitlines()) == SEED_PARAGRAPHS


def test_fifos_and_devices_are_refused_not_replaced(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    one_error_line(hoptac("corpus", "build", SEED_TEXT, "-o", fifo), "not a regular file")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    one_error_line(hoptac("corpus", "build", SEED_TEXT, "-o", "/dev/full"), "not a regular file")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


# ---------------------------------------------------------------- 4. atomic writes, unique temporary names

def synthetic_articles(path: Path, n: int) -> int:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"a{i}", "title": f"Tiêu đề {i}",
                                "text": f"Tiêu đề {i}\nHà Nội và Bắc Ninh hợp tác {i}.\nĐoạn thứ ba {i}."},
                               ensure_ascii=False) + "\n")
    return 3 * n


def test_two_builds_into_one_output_leave_one_whole_file(tmp_path):
    articles = tmp_path / "articles.jsonl"
    paragraphs = synthetic_articles(articles, 30000)
    out = tmp_path / "out" / "corpus.jsonl"
    procs = [start(["corpus", "build", articles, "-o", out], tmp_path) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == paragraphs and all(json.loads(line)["id"] for line in lines)
    assert leftovers(out.parent) == []


def test_a_full_disk_keeps_the_previous_output(tmp_path):
    out = tmp_path / "corpus.jsonl"
    hoptac("corpus", "build", SEED_TEXT, "-o", out, check=True)
    before = out.read_bytes()
    articles = tmp_path / "articles.jsonl"
    synthetic_articles(articles, 20000)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100_000, resource.RLIM_INFINITY))

    proc = start(["corpus", "build", articles, "-o", out], tmp_path, preexec_fn=limit)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.startswith("hoptac: error: ") and len(err.strip().splitlines()) == 1, err
    assert "previous output" in err and "Traceback" not in err
    assert out.read_bytes() == before and leftovers(tmp_path) == []


def test_atomic_file_and_dir_leave_nothing_on_error(tmp_path):
    out = tmp_path / "c.jsonl"
    with pytest.raises(RuntimeError):
        with atomic_file(out, kind="corpus") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert not out.exists() and leftovers(tmp_path) == []
    folder = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(folder) as tmp:
            (tmp / "x").write_text("half", encoding="utf-8")
            raise KeyboardInterrupt
    assert not folder.exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------- 5. output over input

def test_outputs_over_or_inside_inputs_are_refused(tmp_path):
    text = tmp_path / "in" / "a.txt"
    text.parent.mkdir()
    text.write_text("Tiêu đề\nHà Nội hợp tác.\n", encoding="utf-8")
    before = text.read_bytes()
    one_error_line(hoptac("corpus", "build", text, "-o", text), "overwrite the input")
    one_error_line(hoptac("corpus", "build", text.parent, "-o", text.parent / "corpus.jsonl"), "inside the input folder")
    assert text.read_bytes() == before and sorted(p.name for p in text.parent.iterdir()) == ["a.txt"]

    corpus = tmp_path / "corpus.jsonl"
    hoptac("corpus", "build", text, "-o", corpus, check=True)
    kept = corpus.read_bytes()
    one_error_line(hoptac("annotate", "export", corpus, "-o", corpus), "overwrite the input")
    one_error_line(hoptac("predict", "no-such-model", corpus, "-o", corpus), "overwrite the input")
    assert corpus.read_bytes() == kept


def test_files_hoptac_did_not_write_are_refused_unless_forced(tmp_path):
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"my": "data"}\n', encoding="utf-8")
    one_error_line(hoptac("corpus", "build", SEED_TEXT, "-o", notes), "not a hoptac corpus file", "--force")
    assert notes.read_text(encoding="utf-8") == '{"my": "data"}\n'
    hoptac("corpus", "build", SEED_TEXT, "-o", notes, "--force", check=True)
    assert len(notes.read_text(encoding="utf-8").splitlines()) == SEED_PARAGRAPHS
    hoptac("corpus", "build", SEED_TEXT, "-o", notes, check=True)  # now a hoptac corpus: replaced without --force


# ---------------------------------------------------------------- 12. checked before the work

def test_an_unwritable_output_place_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    # the output is refused before the model is loaded (it does not exist) or any paragraph is read
    one_error_line(hoptac("predict", "no-such-model", NEWS, "-o", blocker / "preds.jsonl"), "not a folder")
    one_error_line(hoptac("predict", "no-such-model", NEWS, "-o", tmp_path), "is a folder")
    with pytest.raises(HoptacError, match="not a folder"):
        check_output(blocker / "sub" / "x.jsonl", kind="corpus")


def test_outputs_written_before_the_mark_existed_are_still_recognised(tmp_path):
    from hoptac.output import is_hoptac_folder

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.cfg").write_text("[nlp]\n", encoding="utf-8")
    (run / "model" / "meta.json").write_text('{"name": "hoptac", "hoptac": {}}', encoding="utf-8")
    (run / "corpus.jsonl").write_text("", encoding="utf-8")
    assert is_hoptac_folder(run / "model") and is_hoptac_folder(run)
    dataset = tmp_path / "ds"
    dataset.mkdir()
    (dataset / "dataset_dict.json").write_text('{"splits": ["train"]}', encoding="utf-8")
    (dataset / "README.md").write_text("---\npretty_name: 'hoptac: news'\n---\n", encoding="utf-8")
    assert is_hoptac_folder(dataset)
    (dataset / "README.md").write_text("my own dataset\n", encoding="utf-8")
    assert not is_hoptac_folder(dataset) and not is_hoptac_folder(tmp_path)
