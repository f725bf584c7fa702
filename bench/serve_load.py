"""Benchmark (stage 3, serve): ``hoptac serve`` under load against ``hoptac predict`` on the same tasks.

The first ``--requests × --tasks`` paragraphs of the news corpus (``../shared/data/news/unlabeled.jsonl.gz``,
read in place; the slice is written to a temporary folder, never into the repo) are predicted

* by ``hoptac predict`` (``hoptac.train.predict.predict_to_file``, one process, in a child process;
  model loading not counted): the reference per-task cost and the reference answers;
* by the real ``hoptac serve MODEL`` on 127.0.0.1 (a free port, loopback only): after one warm-up
  request, ``--requests`` concurrent ``POST /predict`` requests of ``--tasks`` tasks each, with the
  project's labelling config, every request with a timeout (``--timeout``).

Every answer is checked: one prediction per task, every span's offsets slicing its text out of the
task's text, and the same entities as ``hoptac predict`` found. Recorded: latency per request
(p50, p95, max), latency per task (a request's latency over its tasks, p95), throughput (tasks/s over
the whole burst) and the serving cost per task (burst wall time / tasks) against ``hoptac predict``'s
(target: at most 2×). The results go into ``BENCHMARKS.md`` between ``<!-- bench:serve -->`` markers.

    python bench/serve_load.py --model models/m [--requests 50] [--tasks 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from hoptac.annotate.local_server import free_port

from benchmarks_md import BENCHMARKS, markers, write_section  # bench/benchmarks_md.py

REPO = Path(__file__).resolve().parents[1]
NEWS = REPO.parent / "shared" / "data" / "news" / "unlabeled.jsonl.gz"
SECTION = "serve"
BEGIN, END = markers(SECTION)
TARGET = 2.0

PREDICT_CHILD = r"""
import json, sys, time
from pathlib import Path
from hoptac.model import load_model
from hoptac.train.predict import predict_to_file
nlp = load_model(sys.argv[1])
start = time.perf_counter()
result = predict_to_file(nlp, [Path(sys.argv[2])], Path(sys.argv[3]), batch_size=int(sys.argv[4]))
print(json.dumps({"seconds": time.perf_counter() - start, "written": result.written}))
"""


def paragraphs(n: int) -> list[dict]:
    """The first ``n`` non-title paragraphs of the news corpus, as corpus rows."""
    from hoptac.corpus.read import read_paragraphs

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        head = Path(tmp) / "head.jsonl.gz"
        with gzip.open(NEWS, "rb") as src, gzip.open(head, "wb") as dst:
            for _, line in zip(range(max(50, n // 5)), src):
                dst.write(line)
        for p in read_paragraphs([head]):
            if p.index > 0 and p.text.strip():
                out.append({"id": p.id, "doc_id": p.doc_id, "index": p.index, "title": p.title, "text": p.text})
                if len(out) == n:
                    break
    if len(out) < n:
        raise SystemExit(f"only {len(out)} paragraphs in the slice; take more articles")
    return out


def reference(model: str, rows: list[dict], tmp: Path, batch_size: int) -> tuple[float, list[dict]]:
    corpus, out = tmp / "corpus.jsonl", tmp / "predictions.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", PREDICT_CHILD, model, str(corpus), str(out), str(batch_size)],
                          capture_output=True, text=True, check=True)
    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    out.unlink()
    return seconds, lines


def post(url: str, body: dict, timeout: float) -> tuple[float, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    return time.perf_counter() - start, answer


def check(batch: list[dict], answer: dict, expected: dict[str, list]) -> None:
    assert len(answer["results"]) == len(batch), "one prediction per task"
    for row, prediction in zip(batch, answer["results"]):
        spans = []
        for r in prediction["result"]:
            if r["type"] == "labels":
                v = r["value"]
                assert row["text"][v["start"]:v["end"]] == v["text"], f"offsets of {row['id']}"
                spans.append((v["start"], v["end"], v["labels"][0]))
        assert sorted(spans) == expected[row["id"]], f"entities of {row['id']} differ from hoptac predict's"


def burst(url: str, batches: list[list[dict]], config: str, timeout: float, expected) -> dict:
    def call(batch):
        tasks = [{"id": n, "data": {"text": row["text"]}} for n, row in enumerate(batch)]
        seconds, answer = post(url, {"tasks": tasks, "label_config": config}, timeout)
        check(batch, answer, expected)
        return seconds

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        latencies = list(pool.map(call, batches))
    return {"wall": time.perf_counter() - start, "latencies": latencies}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="per request, seconds")
    parser.add_argument("--batch-size", type=int, default=256, help="hoptac predict's batch size")
    parser.add_argument("--note", default="trained with the committed configs", help="how the model was made")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from hoptac.annotate.config import labelling_config
    from hoptac.schema import load_schema

    config = labelling_config(load_schema())
    n = args.requests * args.tasks
    rows = paragraphs(n)
    batches = [rows[i * args.tasks:(i + 1) * args.tasks] for i in range(args.requests)]
    load_start = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory(prefix="hoptac-serve-bench-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        log = open(tmp / "serve.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "hoptac.cli", "serve", args.model, "--port", str(port),
                                   "--workdir", str(tmp / "serve"), "--retrain-every", "0"],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(url + "/health", timeout=5).read()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"hoptac serve did not start:\n{(tmp / 'serve.log').read_text()}")
                    time.sleep(0.5)
            post(url + "/predict", {"tasks": [{"data": {"text": rows[0]["text"]}}], "label_config": config},
                 args.timeout)  # warm-up
            for repeat in range(args.repeats):
                ref_seconds, ref_lines = reference(args.model, rows, tmp, args.batch_size)
                expected = {line["id"]: sorted((e["start"], e["end"], e["label"]) for e in line["entities"])
                            for line in ref_lines}
                served = burst(url + "/predict", batches, config, args.timeout, expected)
                runs.append({"reference": ref_seconds, **served})
                print(f"run {repeat + 1}: predict {ref_seconds:.2f}s, serve burst {served['wall']:.2f}s "
                      f"(ratio {served['wall'] / ref_seconds:.2f})", flush=True)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    load_end = os.getloadavg()[0]
    runs.sort(key=lambda r: r["wall"] / r["reference"])
    median = runs[len(runs) // 2]
    ratios = [r["wall"] / r["reference"] for r in runs]
    lat = median["latencies"]
    per_task = [s / args.tasks for s in lat]
    entities = sum(len(v) for v in expected.values())
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    import spacy
    text = f"""## `hoptac serve` under load (`bench/serve_load.py`)

- date: {now}
- machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Python {platform.python_version()}, spaCy {spacy.__version__}; server and client on the same machine (loopback)
- load average (1 min) at start / end: {load_start:.1f} / {load_end:.1f}
- model: `{Path(args.model).name}`, {args.note}; tasks: the first {n} non-title paragraphs of `unlabeled.jsonl.gz` ({entities} entities found)
- load: {args.requests} concurrent `POST /predict` requests of {args.tasks} tasks each, with the project's labelling config, after one warm-up request; {args.repeats} runs, the median run (by ratio) shown
- every answer checked: one prediction per task, offsets slicing each span's text exactly, the same entities as `hoptac predict`: **all {n} tasks correct in every run**
- the server predicts one request at a time (one spaCy pipeline, `nlp.pipe` over the request's tasks); requests wait their turn, so a request's latency includes its wait

| measure | value |
| --- | ---: |
| burst wall time ({n} tasks) | {median['wall']:.2f} s |
| throughput | {n / median['wall']:.0f} tasks/s |
| latency per request p50 / p95 / max | {percentile(lat, 50):.2f} / {percentile(lat, 95):.2f} / {max(lat):.2f} s |
| latency per task (request latency / {args.tasks}) p95 | {percentile(per_task, 95) * 1000:.0f} ms |
| serving cost per task (burst wall / tasks) | {median['wall'] / n * 1000:.2f} ms |
| `hoptac predict` cost per task (same tasks, 1 process, model load not counted) | {median['reference'] / n * 1000:.2f} ms |
| ratio serve / predict per task (target ≤ {TARGET:.0f}×) | **{median['wall'] / median['reference']:.2f}×** (runs: {', '.join(f'{r:.2f}' for r in ratios)}) |
"""
    print(text)
    if not args.no_write:
        write_section(f"{BEGIN}\n{text.rstrip()}\n{END}", SECTION)
        print(f"wrote the serve section of {BENCHMARKS}")


if __name__ == "__main__":
    main()
