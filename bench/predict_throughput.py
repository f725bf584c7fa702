"""Benchmark (stage 3, use): throughput of ``hoptac predict`` against the bare tokenizer.

On a fixed slice of the news corpus (the first N articles of
``../shared/data/news/unlabeled.jsonl.gz``, read in place; the slice is written to a
temporary folder, never into the repo) it measures, in the same run and each in a
fresh child process:

* the bare tokenizer: ``spacy.blank("vi")`` (pyvi word segmentation) over the same
  streamed paragraphs — the floor every pipeline pays;
* ``predict`` (``hoptac.train.predict.predict_to_file``: read, pipeline, JSON lines out) with
  1 and with 2 processes, for each model given;
* ``predict --engine ray`` (``hoptac.train.ray_predict.predict_on_ray``, a local Ray instance
  started by the run, as on a laptop) with 1 and 2 workers (``--ray-workers``), for the last
  model given: Ray's start-up, each actor's model load, the prediction's wall time (start-up
  not counted, the actors' model load counted: it is paid by every run) and the steady-state
  rate once every actor has its model, to derive how a cluster would scale.

Paragraphs/s, words/s (words = pyvi tokens), the ratio to the bare tokenizer and
peak RSS (``getrusage``: the child itself, and its largest worker for n_process > 1).
Model loading is timed apart and not counted in the throughput.
``--full`` also runs ``predict`` once, one process, over the whole corpus and
records its time and peak memory. The results go into ``BENCHMARKS.md`` between
``<!-- bench:predict -->`` and ``<!-- /bench:predict -->`` (the rest is left alone).

    python bench/predict_throughput.py --model default=models/run/model [--model fast=…] [--articles 2000] [--full]
        [--ray-workers 1 2 | --ray-workers]   (no number: no Ray rows)
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks_md import BENCHMARKS, markers, write_section  # bench/benchmarks_md.py

REPO = Path(__file__).resolve().parents[1]
NEWS = REPO.parent / "shared" / "data" / "news" / "unlabeled.jsonl.gz"
SECTION = "predict"
BEGIN, END = markers(SECTION)

# Child processes: each prints one JSON line with its measurements.
# Both children start with this: imports and the CPU time of the process and its workers.
CHILD_PRELUDE = r"""
import json, resource, sys, time
from pathlib import Path
def cpu():
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))
"""

TOKENIZER_CHILD = CHILD_PRELUDE + r"""
import spacy
from hoptac.corpus.read import read_paragraphs
nlp = spacy.blank("vi")
start, cpu_start = time.perf_counter(), cpu()
paragraphs = words = 0
for doc in nlp.pipe((p.text for p in read_paragraphs([Path(sys.argv[1])])), batch_size=int(sys.argv[2])):
    paragraphs += 1
    words += len(doc)
seconds = time.perf_counter() - start
print(json.dumps({"paragraphs": paragraphs, "words": words, "seconds": seconds, "cpu_seconds": cpu() - cpu_start,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PREDICT_CHILD = CHILD_PRELUDE + r"""
from hoptac.model import load_model
from hoptac.train.predict import predict_to_file
start = time.perf_counter()
nlp = load_model(sys.argv[1])
loaded = time.perf_counter() - start
cpu_start = cpu()
stats = predict_to_file(nlp, [Path(sys.argv[2])], Path(sys.argv[3]), batch_size=int(sys.argv[4]),
                        n_process=int(sys.argv[5]))
print(json.dumps({"paragraphs": stats.written, "read": stats.read.paragraphs, "entities": stats.entities,
                  "seconds": stats.seconds, "cpu_seconds": cpu() - cpu_start, "load_seconds": loaded,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


RAY_CHILD = CHILD_PRELUDE + r"""
from hoptac.train.ray_predict import predict_on_ray
start = time.perf_counter()
stats = predict_on_ray(sys.argv[1], [Path(sys.argv[2])], Path(sys.argv[3]), workers=int(sys.argv[5]),
                       batch_size=int(sys.argv[4]))
end_to_end = time.perf_counter() - start
print(json.dumps({"paragraphs": stats.written, "read": stats.read.paragraphs, "entities": stats.entities,
                  "seconds": stats.seconds, "startup_seconds": stats.startup_seconds,
                  "end_to_end_seconds": end_to_end, "load_seconds": stats.load_seconds,
                  "steady_rate": stats.steady_rate, "first_seconds": stats.first_seconds,
                  "busy_seconds": stats.busy_seconds, "worker_rate": stats.worker_rate,
                  "driver_cpu_seconds": stats.driver_cpu_seconds,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(code: str, *args) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"benchmark child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_slice(corpus: Path, articles: int, out: Path) -> None:
    """The first ``articles`` records of the corpus, byte for byte."""
    with gzip.open(corpus, "rb") as src, gzip.open(out, "wb", compresslevel=1) as dst:
        for line in itertools.islice(src, articles):
            dst.write(line)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    import spacy

    return (f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB RAM; Python {platform.python_version()}, "
            f"spaCy {spacy.__version__}")


def model_shape(model: str) -> str:
    """tok2vec width/depth and ner hidden width of a MODEL_DIR, from its config.cfg."""
    from thinc.api import Config

    config = Path(model) / "config.cfg"
    if not config.exists():
        return "installed package"
    cfg = Config().from_disk(config, interpolate=False)
    try:
        encode = cfg["components"]["tok2vec"]["model"]["encode"]
        ner = cfg["components"]["ner"]["model"]
        return (f"tok2vec width {encode['width']}, depth {encode['depth']}, maxout {encode['maxout_pieces']}; "
                f"ner hidden {ner['hidden_width']}, maxout {ner['maxout_pieces']}, use_upper {ner['use_upper']}; pipes: "
                + ", ".join(cfg["nlp"]["pipeline"]))
    except KeyError:
        return "custom config"


def median_run(results: list[dict]) -> dict:
    """The run with the median wall time (the lower middle one for an even count)."""
    return sorted(results, key=lambda r: r["seconds"])[(len(results) - 1) // 2]


def ratio_range(tokenizers: list[dict], results: list[dict]) -> tuple[float, float]:
    """Lowest and highest tokenizer/system wall-time ratio over the repeats (each against its own tokenizer run)."""
    ratios = [t["seconds"] / r["seconds"] for t, r in zip(tokenizers, results)]
    return min(ratios), max(ratios)


def row(name: str, result: dict, words: int, base: dict | None, spread: tuple[float, float] | None = None) -> str:
    pps = result["paragraphs"] / result["seconds"]
    wps = words / result["seconds"]
    ratio = f"{base['seconds'] / result['seconds']:.2f}" if base else "1.00"
    if spread is not None:
        ratio += f" ({spread[0]:.2f}–{spread[1]:.2f})"
    cpu_ratio = f"{base['cpu_seconds'] / result['cpu_seconds']:.2f}" if base else "1.00"
    rss = f"{result['rss_mb']:.0f}"
    if result.get("workers_rss_mb"):
        rss += f" (+ workers ≤ {result['workers_rss_mb']:.0f} each)"
    return (f"| {name} | {result['paragraphs']} | {result['seconds']:.1f} | {result['cpu_seconds']:.1f} | {pps:.0f} "
            f"| {wps:.0f} | {ratio} | {cpu_ratio} | {rss} |")


def ray_row(name: str, result: dict, words: int, base: dict, spread: tuple[float, float]) -> str:
    pps = result["paragraphs"] / result["seconds"]
    return (f"| {name} | {result['paragraphs']} | {result['seconds']:.1f} | — | {pps:.0f} "
            f"| {words / result['seconds']:.0f} | {base['seconds'] / result['seconds']:.2f} "
            f"({spread[0]:.2f}–{spread[1]:.2f}) | — | {result['rss_mb']:.0f} (driver) |")


def ray_section(args, model: str, tokenizer: dict, results: dict, ray_results: dict) -> list[str]:
    """The Ray rows: a second table with start-up, model load and steady state per worker count."""
    lines = ["", f"Ray (`predict --engine ray`, model `{model}`, a local Ray instance started by each run "
             f"with as many CPUs as workers, batch size {args.batch_size}; the median of {args.repeat} runs by "
             "prediction wall time). Start-up = `ray.init` until Ray is ready (not counted in the rates). "
             "Model load = each actor's `load_model`, in the actor. First record = from the first paragraph "
             "read to the first record back (actors started, model loaded, one batch). Prediction wall = "
             "from the first paragraph read to the last shard written (start-up not counted, actors' start "
             "and model load counted). After first = the rate from the first record on. Per worker, "
             "annotating = records / the actors' summed time inside their batches (one worker's rate without "
             "Ray's scheduling and transfer). Overhead = prediction wall / the local engine's wall with as "
             "many processes (whose model load is not counted). Driver = records per CPU second of the "
             "driver process (all its threads: reading, Ray Data's executor, the id check, writing), the "
             "ceiling of one driver whatever the cluster. End to end = the whole `predict_on_ray` call "
             "(the driver's own model check, start-up and Ray's shut-down included).", "",
             "| workers | start-up s | model load per actor s | first record s | prediction wall s | end to end s "
             "| paragraphs/s | after first record, paragraphs/s | per worker annotating, paragraphs/s "
             "| driver, records per CPU s | ratio to tokenizer (wall) | overhead vs local (wall) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for workers in args.ray_workers:
        r = ray_results[workers]
        local = results.get((model, workers))
        loads = r["load_seconds"]
        load = f"{sum(loads) / len(loads):.1f} ({len(loads)} actor{'s' if len(loads) != 1 else ''})" if loads else "—"
        steady = f"{r['steady_rate']:.0f}" if r["steady_rate"] else "—"
        overhead = f"{r['seconds'] / local['seconds']:.2f}×" if local else "—"
        driver = f"{r['paragraphs'] / r['driver_cpu_seconds']:.0f}" if r.get("driver_cpu_seconds") else "—"
        lines.append(f"| {workers} | {r['startup_seconds']:.1f} | {load} | {r['first_seconds']:.1f} | {r['seconds']:.1f} "
                     f"| {r['end_to_end_seconds']:.1f} | {r['paragraphs'] / r['seconds']:.0f} | {steady} "
                     f"| {r['worker_rate']:.0f} | {driver} | {tokenizer['seconds'] / r['seconds']:.2f} | {overhead} |")
    lines += ["", scaling_paragraph(model, tokenizer, results, ray_results)]
    return lines


def scaling_paragraph(model: str, tokenizer: dict, results: dict, ray_results: dict) -> str:
    """How a cluster run would scale, as arithmetic on the rows above (nothing here is measured on a cluster)."""
    one = ray_results.get(1) or ray_results[min(ray_results)]
    rate = one["worker_rate"]  # paragraphs per second of one actor's annotating time
    startup, loads = one["startup_seconds"], [s for r in ray_results.values() for s in r["load_seconds"]]
    load = max(loads) if loads else 0.0
    driver = min(r["paragraphs"] / r["driver_cpu_seconds"] for r in ray_results.values() if r.get("driver_cpu_seconds"))
    text = (f"How this would scale on a cluster (arithmetic on the rows above, not a cluster measurement): a run "
            f"costs Ray's start-up or connection (here {startup:.0f} s), one model load per actor, in parallel "
            f"(here {load:.0f} s at most, on loaded cores), then P / (W × r) seconds for P paragraphs on W "
            f"workers, where r is one worker's rate while annotating (here {rate:.0f} paragraphs/s with 1 worker")
    local = results.get((model, 1))
    if local:
        text += f"; the local engine's 1-process rate in the same run: {local['paragraphs'] / local['seconds']:.0f}"
    text += (f"). The driver reads every paragraph and writes every record: it handled {driver:.0f} records per "
             f"CPU second here, so one driver keeps up with about {driver / rate:.0f} workers at this rate, if nothing "
             f"else (network, Ray's object store; not measured here) limits it first; beyond "
             f"that, split the inputs into several runs (several -o folders). With that, W workers need about "
             f"P / (W × {rate:.0f}) s: for the 589,852-paragraph corpus, {589852 / rate / 60:.0f} min on 1 worker and "
             f"{589852 / (8 * rate) / 60:.1f} min on 8, plus start-up and one model load; 10 million paragraphs on "
             f"{max(1, int(driver / rate))} workers (one driver's limit), {10_000_000 / (max(1, int(driver / rate)) * rate) / 3600:.1f} h. "
             "The model load is paid once per actor, so it matters only for short runs "
             "(and again for each actor Ray restarts). An overhead below 1× against the local engine is not "
             "Ray being cheaper per paragraph: with 1 worker it runs two processes (the driver reads, checks and "
             "writes while the actor annotates) where the local engine does everything in one.")
    if 2 in ray_results and 1 in ray_results and ray_results[1]["steady_rate"] and ray_results[2]["steady_rate"]:
        gain = ray_results[2]["steady_rate"] / ray_results[1]["steady_rate"]
        text += (f" On this machine 2 workers ran {gain:.2f}× as fast as 1 after the first record, not 2×: both actors, "
                 "the driver and Ray's own processes share 2 cores (with other jobs), so this machine cannot show "
                 "the linear part; r per worker is the figure to scale from.")
    return text


def section(args, models, tokenizer: dict, results: dict, full: dict | None, ranges: dict,
            ray_results: dict | None = None, ray_model: str = "", ray_ranges: dict | None = None) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [BEGIN, "## `hoptac predict` throughput (`bench/predict_throughput.py`)", "",
             f"- date: {when}", f"- machine: {machine()}",
             f"- load average (1 min) at start / end: {args.load_start:.1f} / {os.getloadavg()[0]:.1f} "
             "(other work on the machine slows both sides of the ratio, not always equally)",
             f"- input: first {args.articles} articles of `unlabeled.jsonl.gz` = {tokenizer['paragraphs']} paragraphs, "
             f"{tokenizer['words']} words (pyvi tokens); batch size {args.batch_size}",
             f"- each system run {args.repeat} times, alternating with the bare tokenizer; the table shows the "
             "median run of each, and in brackets the lowest and highest ratio of a repeat (system against the "
             "tokenizer run just before it)",
             "- ratio = bare tokenizer time / system time on the same input (higher is better; target for "
             "`predict`, 1 process: ≥ 0.30). Model loading is not counted. The CPU-time ratio (process and "
             "its workers) is the one that other load on the machine barely moves; for 2 processes it counts "
             "both workers, so only the wall ratio shows the parallel gain.", ""]
    for name, model in models:
        lines.append(f"- model `{name}`: {model_shape(model)}")
    lines += [f"- {note}" for note in args.note]
    lines += ["", "| system | paragraphs | wall s | CPU s | paragraphs/s | words/s | ratio to tokenizer (wall) "
              "| ratio (CPU time) | peak RSS MB |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
              row("bare tokenizer `spacy.blank(\"vi\")`", tokenizer, tokenizer["words"], None)]
    for name, _ in models:
        for n_process in args.n_process:
            lines.append(row(f"predict `{name}`, {n_process} process{'es' if n_process > 1 else ''}",
                             results[(name, n_process)], tokenizer["words"], tokenizer, ranges[(name, n_process)]))
    for workers in args.ray_workers if ray_results else []:
        lines.append(ray_row(f"predict `{ray_model}` on Ray, {workers} worker{'s' if workers > 1 else ''} "
                             "(start-up not counted)", ray_results[workers], tokenizer["words"], tokenizer,
                             ray_ranges[workers]))
    if ray_results:
        lines += ray_section(args, ray_model, tokenizer, results, ray_results)
    if full is not None:
        hours = full["seconds"] / 3600
        lines += ["", f"Whole corpus ({when}; `{full['model']}`, 1 process, batch size {args.batch_size}): "
                  f"{full['paragraphs']} paragraphs in {full['seconds']:.0f}s ({hours:.2f} h, "
                  f"{full['paragraphs'] / full['seconds']:.0f} paragraphs/s), peak RSS {full['rss_mb']:.0f} MB "
                  f"(model load {full['load_seconds']:.1f}s)."]
    elif previous_full_line():
        lines += ["", previous_full_line() + " (kept from an earlier `--full` run)"]
    lines.append(END)
    return "\n".join(lines)


def previous_full_line(path: Path = BENCHMARKS) -> str | None:
    """The whole-corpus result of an earlier ``--full`` run, kept when this run does not redo it."""
    if not path.exists() or BEGIN not in path.read_text(encoding="utf-8"):
        return None
    current = path.read_text(encoding="utf-8").split(BEGIN, 1)[1].split(END, 1)[0]
    line = next((l for l in current.splitlines() if l.startswith("Whole corpus")), None)
    return line.split(" (kept from", 1)[0] if line else None




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL",
                        help="a model folder or package to benchmark (repeatable)")
    parser.add_argument("--corpus", type=Path, default=NEWS)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-process", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each system, alternating with the tokenizer")
    parser.add_argument("--full", action="store_true", help="also predict over the whole corpus (1 process)")
    parser.add_argument("--note", action="append", default=[], help="a line for the section (what the models are)")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of editing BENCHMARKS.md")
    parser.add_argument("--ray-workers", type=int, nargs="*", default=[1, 2],
                        help="predict --engine ray with these worker counts (last model; none: no Ray rows)")
    args = parser.parse_args()
    args.load_start = os.getloadavg()[0]
    models = [tuple(m.split("=", 1)) if "=" in m else (Path(m).name, m) for m in args.model]
    with tempfile.TemporaryDirectory(prefix="hoptac-bench-") as tmp:
        tmp = Path(tmp)
        sliced = tmp / "slice.jsonl.gz"
        write_slice(args.corpus, args.articles, sliced)
        tokenizers, runs = [], {}
        for repeat in range(args.repeat):  # tokenizer and systems alternate, so slow spells hit all of them
            tokenizer = run_child(TOKENIZER_CHILD, sliced, args.batch_size)
            tokenizers.append(tokenizer)
            print(f"[{repeat + 1}/{args.repeat}] tokenizer: {tokenizer}", flush=True)
            for name, model in models:
                for n_process in args.n_process:
                    result = run_child(PREDICT_CHILD, model, sliced, tmp / "out.jsonl", args.batch_size, n_process)
                    if result["paragraphs"] != tokenizer["paragraphs"]:
                        sys.exit(f"{name}: {result['paragraphs']} lines out for {tokenizer['paragraphs']} paragraphs in")
                    runs.setdefault((name, n_process), []).append(result)
                    print(f"[{repeat + 1}/{args.repeat}] {name} n_process={n_process}: {result} "
                          f"ratio {tokenizer['seconds'] / result['seconds']:.3f}", flush=True)
            ray_name, ray_model = models[-1]
            for workers in args.ray_workers:
                out = tmp / f"ray-out-{repeat}-{workers}"  # a new folder each time (a re-run is refused)
                result = run_child(RAY_CHILD, ray_model, sliced, out, args.batch_size, workers)
                shutil.rmtree(out)
                if result["paragraphs"] != tokenizer["paragraphs"]:
                    sys.exit(f"ray: {result['paragraphs']} records out for {tokenizer['paragraphs']} paragraphs in")
                runs.setdefault(("ray", workers), []).append(result)
                print(f"[{repeat + 1}/{args.repeat}] ray {ray_name} workers={workers}: {result} "
                      f"ratio {tokenizer['seconds'] / result['seconds']:.3f}", flush=True)
        tokenizer = median_run(tokenizers)
        results = {key: median_run(values) for key, values in runs.items()}
        ranges = {key: ratio_range(tokenizers, values) for key, values in runs.items()}
        full = None
        if args.full:
            name, model = models[-1]
            started = time.time()
            full = run_child(PREDICT_CHILD, model, args.corpus, tmp / "full.jsonl", args.batch_size, 1)
            full["model"] = name
            print(f"full corpus: {full} ({time.time() - started:.0f}s wall)", flush=True)
    ray_results = {workers: results.pop(("ray", workers)) for workers in args.ray_workers}
    ray_ranges = {workers: ranges.pop(("ray", workers)) for workers in args.ray_workers}
    text = section(args, models, tokenizer, results, full, ranges, ray_results, models[-1][0], ray_ranges)
    if args.no_write:
        print(text)
    else:
        write_section(text, SECTION)
        print(f"updated {BENCHMARKS}")


if __name__ == "__main__":
    main()
