"""Issue 12: `hoptac predict --engine ray` and `ray_predict` — the local engine's records, each id exactly once.

Ray runs on this machine only (127.0.0.1, 2 CPUs, no dashboard): the CLI test lets `hoptac`
start its own instance; the library tests share one started here (after the CLI test).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'hoptac[ray]'; the dev extra has it)")

from conftest import hoptac, news_slice  # noqa: E402

from hoptac.corpus.read import read_paragraphs  # noqa: E402
from hoptac.errors import HoptacError  # noqa: E402
from hoptac.model import load_model  # noqa: E402
from hoptac.output import MARK  # noqa: E402
from hoptac.train import ray_predict as engine  # noqa: E402
from hoptac.train.predict import annotate  # noqa: E402

pytestmark = pytest.mark.slow

NEWS_ARTICLES = 50  # ~1,000 paragraphs of the unlabelled corpus, read in place
ACTOR = "MapBatches(_Annotator)"


@pytest.fixture(scope="module")
def news(tmp_path_factory) -> Path:
    return news_slice(tmp_path_factory.mktemp("news"), NEWS_ARTICLES)


@pytest.fixture(scope="module")
def local_records(model, news) -> list[dict]:
    return list(annotate(load_model(model), read_paragraphs([news])))


@pytest.fixture(scope="module")
def local_ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no call to Ray's servers
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray
    ray.shutdown()


def rows_of(news: Path) -> list[dict]:
    return [{"id": p.id, "doc_id": p.doc_id, "text": p.text} for p in read_paragraphs([news])]


def test_cli_ray_engine_writes_the_local_engines_records_id_for_id(model, news, tmp_path):
    local = tmp_path / "local.jsonl"
    hoptac("predict", model, news, "-o", local, check=True)
    out = tmp_path / "ray-out"
    result = hoptac("predict", model, news, "-o", out, "--engine", "ray", "--workers", "2", "--batch-size", "64",
                    check=True)
    expected = [json.loads(line) for line in local.read_text(encoding="utf-8").splitlines()]
    parts = sorted(out.glob("part-*.jsonl"))
    assert parts and (out / MARK).is_file()
    got = [json.loads(line) for part in parts for line in part.read_text(encoding="utf-8").splitlines()]
    assert len(expected) >= 900
    assert [r["id"] for r in got] == [r["id"] for r in expected]  # each once, in input order
    assert got == expected
    assert set(got[0]) == {"id", "doc_id", "text", "entities", "sectors", "sector_labels"}
    assert f"wrote {len(expected)} records for {len(expected)} paragraphs, each id once" in result.stdout
    assert "start-up" in result.stdout and "not counted in the rates" in result.stdout
    again = hoptac("predict", model, news, "-o", out, "--engine", "ray")  # refused before Ray starts
    assert again.returncode == 2 and "holds a finished run" in again.stderr, again.stderr
    assert sorted(out.glob("part-*.jsonl")) == parts


def test_cli_errors_are_one_line(model, news, tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    for args, needle in [
        (("-o", user, "--engine", "ray"), "hoptac did not write it"),
        (("-o", tmp_path / "p.jsonl", "--workers", "2"), "--address and --workers are for --engine ray"),
        (("-o", tmp_path / "p.jsonl", "--engine", "spark"), "--engine must be 'local' or 'ray'"),
        (("-o", tmp_path / "p.jsonl", "--resume"), "--resume is for --engine ray"),
        # nothing listens on loopback port 1: refused in seconds, not after Ray's retries (30 s to minutes)
        (("-o", tmp_path / "r1", "--engine", "ray", "--address", "ray://127.0.0.1:1"),
         "--address ray://127.0.0.1:1: nothing answers at 127.0.0.1:1"),
        (("-o", tmp_path / "r2", "--engine", "ray", "--address", "127.0.0.1:1"),
         "--address 127.0.0.1:1: nothing answers at 127.0.0.1:1"),
    ]:
        started = time.monotonic()
        result = hoptac("predict", model, news, *args)
        assert result.returncode == 2 and result.stderr.startswith("hoptac: error: ") and needle in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert time.monotonic() - started < 20, args
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
    assert (user / "notes.txt").read_text() == "mine"
    # without Ray installed (simulated): how to get it, on one line
    code = ("import sys; sys.modules['ray'] = None; from hoptac.cli import main; "
            f"sys.argv = ['hoptac', 'predict', {str(model)!r}, {str(news)!r}, '-o', {str(tmp_path / 'x')!r}, "
            "'--engine', 'ray']; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "hoptac: error: --engine ray needs Ray: pip install 'hoptac[ray]'"
    assert not (tmp_path / "x").exists()


def test_sigterm_mid_run_exits_143_and_leaves_no_incomplete_shard(model, news, tmp_path):
    out = tmp_path / "out"  # ~1,000 paragraphs: one shard, so nothing is complete when the signal comes
    process = subprocess.Popen([sys.executable, "-m", "hoptac.cli", "predict", str(model), str(news), "-o", str(out),
                                "--engine", "ray", "--workers", "1", "--batch-size", "16"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "manifest.json").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the folder is created once Ray is up
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr  # not Ray's own handler (sys.exit(15))
    assert stderr.strip().endswith("hoptac: terminated")
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_library_ray_predict_returns_the_same_records(local_ray, model, news, local_records):
    dataset = ray.data.from_items(rows_of(news))
    got = engine.records(engine.ray_predict(dataset, model, workers=2, batch_size=100))
    assert sorted(got, key=lambda r: r["id"]) == sorted(local_records, key=lambda r: r["id"])


@pytest.mark.parametrize("fault", ["missing", "duplicate"])
def test_a_missing_or_duplicate_id_stops_the_run_and_writes_nothing(local_ray, model, news, tmp_path, monkeypatch, fault):
    real = engine.ray_predict

    def faulty(dataset, model, **kwargs):
        predicted = real(dataset, model, **kwargs).materialize()
        first = predicted.take(1)[0]["id"]
        if fault == "missing":
            return predicted.filter(lambda row: row["id"] != first)
        return predicted.union(predicted.filter(lambda row: row["id"] == first))

    monkeypatch.setattr(engine, "ray_predict", faulty)
    out = tmp_path / "out"
    with pytest.raises(HoptacError, match="stopped"):
        engine.predict_on_ray(model, [news], out, workers=2, batch_size=200)
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def _actor_pids() -> list[int]:
    """The pids of this test's annotator actors (descendants of this process)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            if ACTOR not in cmdline or "ray::" not in cmdline:
                continue
            pid = int(entry.name)
            while pid > 1:  # walk up to this process
                pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if pid == os.getpid():
                    pids.append(int(entry.name))
                    break
        except (OSError, ValueError, IndexError):
            continue
    return pids


def test_an_actor_killed_mid_run_still_gives_every_record_once(local_ray, model, news, local_records):
    dataset = engine.ray_predict(ray.data.from_items(rows_of(news)), model, workers=2, batch_size=20)
    killed: list[int] = []

    def kill_one_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = _actor_pids()
            if len(pids) >= 1 and seen[0] >= 100:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(seen[0])
            time.sleep(0.2)

    seen = [0]
    got = []
    killer = threading.Thread(target=kill_one_when_busy, daemon=True)
    killer.start()
    for row in dataset.iter_rows():
        got.append(json.loads(row["record"]))
        seen[0] += 1
    killer.join(timeout=5)
    assert killed, "no annotator actor was found to kill mid-run"
    assert killed[0] < len(local_records), "the actor was killed after the run, not during it"
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)) == len(local_records)
    assert sorted(got, key=lambda r: r["id"]) == sorted(local_records, key=lambda r: r["id"])


def test_chunks_and_parts_keep_every_record_in_order(local_ray, model, news, local_records, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "CHUNK_PARAGRAPHS", 300)  # several Ray Datasets, one after the other
    monkeypatch.setattr(engine, "SHARD_LINES", 250)
    out = tmp_path / "out"
    result = engine.predict_on_ray(model, [news], out, workers=2, batch_size=64)
    parts = sorted(out.glob("part-*.jsonl"))
    assert result.shards == len(parts) == -(-len(local_records) // 250)
    got = [json.loads(line) for part in parts for line in part.read_text(encoding="utf-8").splitlines()]
    assert got == local_records
    assert result.written == result.read.paragraphs == len(local_records)
    assert result.entities == sum(len(r["entities"]) for r in local_records)


def test_an_interrupted_run_resumes_after_its_complete_shards(local_ray, model, news, local_records, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(engine, "SHARD_LINES", 250)
    real = engine.ray_predict
    dropped = local_records[600]["id"]  # in the third shard: Ray "loses" it, the run stops there

    def losing(dataset, model, **kwargs):
        return real(dataset, model, **kwargs).filter(lambda row: row["id"] != dropped)

    monkeypatch.setattr(engine, "ray_predict", losing)
    out = tmp_path / "out"
    with pytest.raises(HoptacError, match=r"2 complete shard\(s\) kept .* --resume continues"):
        engine.predict_on_ray(model, [news], out, workers=2, batch_size=64)
    assert sorted(p.name for p in out.iterdir()) == [MARK, "manifest.json", "part-00000.jsonl", "part-00001.jsonl"]
    with pytest.raises(HoptacError, match="unfinished run .* pass --resume"):
        engine.predict_on_ray(model, [news], out, workers=2)
    # a run cut between a shard's rename and the manifest, and one cut mid-shard: both written again
    (out / "part-00002.jsonl").write_text(json.dumps(local_records[0]) + "\n", encoding="utf-8")
    (out / ".part-00003.jsonl.tmp").write_text("{", encoding="utf-8")

    sent = []

    def counting(dataset, model, **kwargs):
        sent.append(dataset.count())
        return real(dataset, model, **kwargs)

    monkeypatch.setattr(engine, "ray_predict", counting)
    result = engine.predict_on_ray(model, [news], out, workers=2, batch_size=64, resume=True)
    assert sum(sent) == len(local_records) - 500  # the complete shards are not predicted again
    assert (result.before, result.now, result.written) == (500, len(local_records) - 500, len(local_records))
    assert "resumed: 500 records in 2 shard(s) done before" in result.summary()
    parts = sorted(out.glob("part-*.jsonl"))
    got = [json.loads(line) for part in parts for line in part.read_text(encoding="utf-8").splitlines()]
    assert got == local_records  # id for id, each once, as a fresh run writes them
    assert not list(out.glob(".*.tmp"))
    assert result.entities == sum(len(r["entities"]) for r in local_records)
    # a finished run resumed: nothing to do; other inputs: refused
    assert engine.predict_on_ray(model, [news], out, workers=2, resume=True).now == 0
    other = news_slice(tmp_path, 10)
    with pytest.raises(HoptacError, match="--resume needs the same"):
        engine.predict_on_ray(model, [other], out, workers=2, resume=True)


def test_split_paragraphs_are_counted_by_the_actor(model):
    annotator = engine._Annotator(str(model))  # in this process: the actor's code, not Ray's plumbing
    annotator.nlp.max_length = 500
    long = " ".join(["Hà Nội phát triển giao thông"] * 80)
    batch = {"id": ["a:0", "a:1"], "doc_id": ["a", "a"], "text": ["Hà Nội.", long]}
    out = annotator(batch)
    assert out["parts"][0] == 1 and out["parts"][1] > 1
    assert out["load_seconds"][0] > 0 and out["load_seconds"][1] == 0
    assert out["batch_seconds"][0] > 0 and out["batch_seconds"][1] == 0  # one figure per batch
    assert annotator(batch)["load_seconds"] == [0.0, 0.0]  # the load is reported once per actor
