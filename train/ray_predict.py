"""Stage 3 (use) beyond one machine: batch prediction on Ray (issue 12).

``hoptac predict MODEL INPUT... -o OUT --engine ray [--address …] [--workers N] [--resume]``:
the paragraphs are read as for the local engine (:func:`hoptac.corpus.read.read_paragraphs`,
so ids and text are the same), handed to Ray Data, and annotated by a pool of
``N`` actors, each loading the model once (:class:`_Annotator`) and running the
local engine's :func:`hoptac.train.predict.annotate` on its batches. ``OUT`` is a
folder of ``part-NNNNN.jsonl`` shards whose lines are exactly the local engine's
records, in input order, and a ``manifest.json`` listing the complete shards.

A shard is *complete* when its :data:`SHARD_LINES` records (fewer for the last one) were
checked against the paragraphs read, id for id and in order, written under a temporary
name, synced and renamed to ``part-NNNNN.jsonl``, and then entered in the manifest
(written the same way). The manifest also records, per shard, its first and last id and
a SHA-256 of its ids. ``--resume`` re-reads the inputs, checks that their first
paragraphs give exactly the ids of the complete shards, skips them (no Ray work) and
continues after them; a shard file that is not in the manifest (a run cut between the
rename and the manifest) is written again. So every paragraph id is in the output once.

Ray is an optional extra (``pip install 'hoptac[ray]'``), imported only here and only
when used. Without ``--address`` a local Ray instance is started (127.0.0.1, no
dashboard, ``--workers`` CPUs); with one, the address is first tried with a plain TCP
connection (:data:`CONNECT_TIMEOUT`), so that a wrong one fails in seconds rather than in
Ray's retry loop. An actor that dies is restarted and its batch retried (Ray Data's default
for actor pools: ``max_restarts=-1``, ``max_task_retries=-1``); the id check before each
shard is written catches what that cannot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from hoptac.corpus.read import Paragraph, ReadSummary, read_paragraphs
from hoptac.errors import HoptacError
from hoptac.model import load_model
from hoptac.output import MARK, atomic_dir, check_output, is_hoptac_folder, output_folder
from hoptac.progress import progress as show_progress
from hoptac.train.predict import PredictResult, _chunks, annotate, check_inputs

logger = logging.getLogger(__name__)

SHARD_LINES = 10_000  # records per part-NNNNN.jsonl
CHUNK_PARAGRAPHS = 50_000  # paragraphs handed to Ray at a time (one Ray Dataset each)
MANIFEST = "manifest.json"  # the complete shards of an output folder (what --resume skips)
MANIFEST_FORMAT = 1
CONNECT_TIMEOUT = 5.0  # seconds for the TCP check of --address
INSTALL_HINT = "--engine ray needs Ray: pip install 'hoptac[ray]'"
COMMAND = "hoptac predict --engine ray"


def import_ray():
    """The ``ray`` module (with Ray Data), or a one-line error saying how to install it.

    Ray's usage-stats reporting (an HTTP call to Ray's servers) is switched off unless the
    user has set ``RAY_USAGE_STATS_ENABLED`` themselves: hoptac sends nothing anywhere."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise HoptacError(INSTALL_HINT) from None
    return ray


class _Annotator:
    """One Ray actor: loads the model once, then turns batches of paragraphs into records.

    A record goes out as one JSON line (column ``record``, next to ``id``): the nested
    entities and sector scores then cross Ray untouched, whatever the batch holds. The other
    columns are counts for the run's summary: ``entities``, ``scored`` (1 with sector scores),
    ``parts`` (more than 1: a paragraph over the model's max_length, predicted in parts),
    ``load_seconds``, this actor's model-load time on the first row it returns, else 0, and
    ``batch_seconds``, the time this batch took to annotate on its first row, else 0."""

    def __init__(self, model: str) -> None:
        start = time.perf_counter()
        self.nlp = load_model(model)
        self.load_seconds = time.perf_counter() - start

    def __call__(self, batch: dict) -> dict:
        start = time.perf_counter()
        paragraphs = (Paragraph(str(pid), str(doc_id), 0, "", str(text))
                      for pid, doc_id, text in zip(batch["id"], batch["doc_id"], batch["text"]))
        summary = ReadSummary()
        records = list(annotate(self.nlp, paragraphs, batch_size=max(1, len(batch["id"])), summary=summary))
        parts = {pid: n for pid, _, n in summary.split}
        load, busy = [0.0] * len(records), [0.0] * len(records)
        if records:
            busy[0] = time.perf_counter() - start
            load[0], self.load_seconds = self.load_seconds, 0.0
        return {"id": [r["id"] for r in records], "entities": [len(r["entities"]) for r in records],
                "scored": [int(bool(r["sectors"])) for r in records],
                "parts": [parts.get(r["id"], 1) for r in records], "load_seconds": load, "batch_seconds": busy,
                "record": [json.dumps(r, ensure_ascii=False) for r in records]}


def ray_predict(dataset, model: str | Path, workers: int = 2, batch_size: int = 256):
    """A Ray Dataset of predictions from ``dataset`` (columns ``id``, ``doc_id``, ``text``).

    Each row of the result is one paragraph: ``id``, ``record``, the JSON line of
    :func:`hoptac.train.predict.doc_record` (``json.loads`` gives the local engine's dict), and
    the counts of :class:`_Annotator` (``entities``, ``scored``, ``parts``, ``load_seconds``, ``batch_seconds``).
    Lazy, as Ray Datasets are; ``workers`` actors, each with the model loaded once."""
    if workers < 1 or batch_size < 1:
        raise HoptacError(f"--workers and --batch-size must be at least 1 (got {workers}, {batch_size})")
    from ray.data import ActorPoolStrategy

    return dataset.map_batches(
        _Annotator, fn_constructor_args=(str(model),), batch_size=batch_size,
        compute=ActorPoolStrategy(size=workers), num_cpus=1, batch_format="numpy")


def records(dataset) -> list[dict]:
    """The records of a :func:`ray_predict` dataset, as dicts (all in memory: for tests and small runs)."""
    return [json.loads(row["record"]) for row in dataset.iter_rows()]


@dataclass
class RayPredictResult(PredictResult):
    """What one Ray run read and wrote: paragraphs in must equal records out, each id once.

    ``seconds`` (and so ``rate``) is the prediction alone, from the moment Ray is ready to the
    last shard: Ray's start-up (or connection) is ``startup_seconds``, apart. ``load_seconds``
    holds each actor's model-load time (one per actor started, restarts included);
    ``first_seconds`` is the wait for the first record (actors started, model loaded, first batch);
    ``steady_rate`` the rate after it (None with fewer than two batches); ``busy_seconds`` the
    actors' time annotating batches, summed (``worker_rate``: records per second of it, the rate
    of one worker without Ray's overheads). With ``--resume``, ``before`` records were in the output already and
    ``written - before`` were predicted by this run."""

    address: str = "local"
    workers: int = 0
    shards: int = 0
    before: int = 0
    shards_before: int = 0
    startup_seconds: float = 0.0
    load_seconds: list[float] = field(default_factory=list)
    first_seconds: float = 0.0
    steady_rate: float | None = None
    busy_seconds: float = 0.0
    driver_cpu_seconds: float = 0.0  # this process's CPU time (all its threads) while predicting

    @property
    def worker_rate(self) -> float:
        return self.now / self.busy_seconds if self.busy_seconds > 0 else 0.0

    @property
    def now(self) -> int:
        return self.written - self.before

    @property
    def rate(self) -> float:
        return self.now / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [*self.read.lines(), f"entities:   {self.entities}",
               f"with sector scores: {self.scored} paragraph(s)",
               f"ray: {self.workers} worker(s) on {self.address}; start-up {self.startup_seconds:.1f}s "
               "(not counted in the rates below)"]
        if self.load_seconds:
            out.append(f"model loaded {len(self.load_seconds)} time(s) (once per actor): "
                       f"{sum(self.load_seconds) / len(self.load_seconds):.1f}s on average, "
                       f"{max(self.load_seconds):.1f}s at most")
        if self.now:
            out.append(f"first record after {self.first_seconds:.1f}s (actors started, model loaded, first batch); "
                       + (f"{self.steady_rate:.0f} paragraphs/s after it; " if self.steady_rate else "")
                       + f"{self.worker_rate:.0f} paragraphs/s per worker while annotating "
                       f"({self.busy_seconds:.1f}s of actor time)")
            out.append(f"driver (reads, hands to Ray, checks, writes): {self.driver_cpu_seconds:.1f}s CPU, "
                       f"{self.now / max(self.driver_cpu_seconds, 1e-9):.0f} records per CPU second")
        if self.before:
            out.append(f"resumed: {self.before} records in {self.shards_before} shard(s) done before, "
                       f"{self.now} done now, {self.written} in all")
        return [*out, self.written_line()]

    def written_line(self) -> str:
        return (f"wrote {self.written} records for {self.read.paragraphs} paragraphs, each id once, "
                f"to {self.shards} file(s) in {self.output}; predicted {self.now} in {self.seconds:.1f}s "
                f"({self.rate:.0f} paragraphs/s)")


# ---------------------------------------------------------------- where Ray runs

def _address_place(address: str) -> tuple[str, str, int] | None:
    """(what the address is, host, port) to try before ``ray.init``; None when Ray itself finds the
    cluster quickly or says there is none (``auto`` with no ``RAY_ADDRESS`` and no cluster started here)."""
    named = address
    if address == "auto":
        env = os.environ.get("RAY_ADDRESS", "").strip()
        if env:
            address, named = env, f"auto (RAY_ADDRESS={env})"
        else:
            try:  # the cluster `ray start` last wrote down on this machine, if any
                from ray._private.services import canonicalize_bootstrap_address

                address = canonicalize_bootstrap_address("auto")
            except Exception:  # noqa: BLE001 — none: ray.init says so at once
                return None
            if not address:
                return None
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise HoptacError(f"--address {named}: expected auto, HOST:PORT or ray://HOST:PORT")
    return named, host, int(port)


def check_address(address: str) -> None:
    """A one-line error, within :data:`CONNECT_TIMEOUT` seconds, when nothing listens at ``address``."""
    place = _address_place(address)
    if place is None:
        return
    named, host, port = place
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__).lower()
        raise HoptacError(f"--address {named}: nothing answers at {host}:{port} ({reason}); "
                          "is the Ray cluster running there?") from None


def _connect(ray, address: str | None, workers: int) -> str:
    """Start or join Ray; what it is, for the summary. ``ray.init`` sets its own SIGTERM handler
    (``sys.exit(15)``): the one in place before is put back, so that ``hoptac`` still exits 143 and
    says so, and the complete shards are kept as on Ctrl-C."""
    if ray.is_initialized():
        return "the running Ray instance"
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM) if main else None
    try:
        return _init(ray, address, workers)
    finally:
        if main and before is not None:
            signal.signal(signal.SIGTERM, before)


def _init(ray, address: str | None, workers: int) -> str:
    if address is None:
        ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False, configure_logging=False)
        return "a local Ray instance"
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except Exception as e:  # ConnectionError, RuntimeError, ValueError: no cluster there
        raise HoptacError(f"--address {address}: cannot connect to Ray ({type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
    return address


# ---------------------------------------------------------------- the output folder and its manifest

def _ids_digest(ids) -> str:
    digest = hashlib.sha256()
    for pid in ids:
        digest.update(pid.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _input_names(inputs: list[Path]) -> list[str]:
    return [str(Path(p).resolve()) for p in inputs]


def _model_name(model: str | Path) -> str:
    return str(Path(model).resolve()) if Path(model).exists() else str(model)


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a ``--engine ray`` output folder; None if it has none."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise HoptacError(f"{folder / MANIFEST}: unreadable ({e}); pass --force to start again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise HoptacError(f"{folder / MANIFEST}: not a hoptac predict manifest; pass --force to start again")
    return manifest


def _write_json(path: Path, data: dict) -> None:
    """``data`` to ``path`` atomically (temporary name, sync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Shards:
    """``part-00000.jsonl``, ``part-00001.jsonl``… in a folder, :data:`SHARD_LINES` lines each,
    each written under a temporary name and renamed, then entered in the manifest."""

    def __init__(self, folder: Path, manifest: dict) -> None:
        self.folder, self.manifest = folder, manifest
        self.files = len(manifest["shards"])
        self.lines = sum(s["paragraphs"] for s in manifest["shards"])
        self._out = None
        self._ids: list[str] = []
        self._counts = {"entities": 0, "scored": 0, "split": []}

    @property
    def name(self) -> str:
        return f"part-{self.files:05d}.jsonl"

    def write(self, line: str, pid: str, entities: int, scored: int, split: tuple | None) -> None:
        if self._out is None:
            self._out = open(self.folder / f".{self.name}.tmp", "w", encoding="utf-8", newline="\n")
        self._out.write(line + "\n")
        self._ids.append(pid)
        self._counts["entities"] += entities
        self._counts["scored"] += scored
        if split:
            self._counts["split"].append(list(split))
        self.lines += 1
        if len(self._ids) >= self.manifest["shard_lines"]:
            self.commit()

    def commit(self) -> None:
        """The shard being written becomes complete: synced, renamed, entered in the manifest."""
        if self._out is None:
            return
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        self._out = None
        os.replace(self.folder / f".{self.name}.tmp", self.folder / self.name)
        _fsync_dir(self.folder)
        self.manifest["shards"].append({"name": self.name, "paragraphs": len(self._ids), "first": self._ids[0],
                                        "last": self._ids[-1], "ids_sha256": _ids_digest(self._ids),
                                        **self._counts})
        _write_json(self.folder / MANIFEST, self.manifest)
        self.files += 1
        self._ids = []
        self._counts = {"entities": 0, "scored": 0, "split": []}

    def finish(self, paragraphs: int) -> None:
        self.commit()
        self.manifest.update(complete=True, paragraphs=paragraphs)
        _write_json(self.folder / MANIFEST, self.manifest)

    def discard(self) -> None:
        """Drop the shard being written (not complete: a resumed run writes it again)."""
        if self._out is not None:
            self._out.close()
            self._out = None
        (self.folder / f".{self.name}.tmp").unlink(missing_ok=True)


def _check_existing(output: Path, inputs: list[Path], force: bool, resume: bool) -> dict | None:
    """Rules for an existing ``-o`` folder; the manifest to resume from, if any.

    A non-empty folder is refused unless ``--resume`` (it must then be a ``--engine ray``
    output with a manifest) or ``--force`` (replaced once the new run is complete)."""
    if resume and force:
        raise HoptacError("--resume continues an output and --force replaces it: give one of them")
    check_output(output, kind="folder", inputs=inputs, force=force)  # inputs, user folders, writability
    if force or not output.is_dir() or not any(output.iterdir()):
        return None
    manifest = read_manifest(output)
    if not resume:
        if manifest is None:
            raise HoptacError(f"{output}: the folder exists (hoptac wrote it); choose another -o, "
                              "or pass --force to replace it")
        done = sum(s["paragraphs"] for s in manifest["shards"])
        if manifest.get("complete"):
            raise HoptacError(f"{output}: holds a finished run ({done} records); choose another -o, "
                              "or pass --force to replace it")
        raise HoptacError(f"{output}: holds an unfinished run ({len(manifest['shards'])} complete shard(s), "
                          f"{done} records); pass --resume to continue it, or --force to replace it")
    if manifest is None:
        raise HoptacError(f"{output}: no {MANIFEST}: not the output of {COMMAND}, nothing to resume; "
                          "choose another -o, or pass --force to replace it")
    if not is_hoptac_folder(output):
        raise HoptacError(f"{output}: the folder has no hoptac mark; pass --force to replace it")
    return manifest


def _new_manifest(model, inputs: list[Path]) -> dict:
    return {"format": MANIFEST_FORMAT, "command": COMMAND, "model": _model_name(model),
            "inputs": _input_names(inputs), "shard_lines": SHARD_LINES, "shards": [], "complete": False}


def _check_resumable(output: Path, manifest: dict, model, inputs: list[Path]) -> None:
    for key, now in (("inputs", _input_names(inputs)), ("model", _model_name(model)), ("shard_lines", SHARD_LINES)):
        if manifest.get(key) != now:
            raise HoptacError(f"{output}: was written with {key} {manifest.get(key)!r}, not {now!r}; "
                              "--resume needs the same; pass --force to start again")
    full = manifest["shard_lines"]
    for i, shard in enumerate(manifest["shards"]):
        last = i == len(manifest["shards"]) - 1
        if shard["name"] != f"part-{i:05d}.jsonl" or not (output / shard["name"]).is_file() or (
                shard["paragraphs"] != full and not (last and manifest.get("complete"))):
            raise HoptacError(f"{output}: shard {shard['name']} of {MANIFEST} is missing or incomplete; "
                              "pass --force to start again")
    known = {s["name"] for s in manifest["shards"]} | {MANIFEST}
    for path in output.iterdir():  # a shard renamed in but not entered, temporary files: written again
        if path.name.startswith((".part-", f".{MANIFEST}")) or (path.name.startswith("part-")
                                                                 and path.name not in known):
            path.unlink()


def _skip_done(paragraphs, manifest: dict, stats: RayPredictResult, output: Path, read_ids: set[str]) -> None:
    """Read past the paragraphs of the complete shards, checking they are the same ids."""
    for shard in manifest["shards"]:
        ids = [p.id for p in islice(paragraphs, shard["paragraphs"])]
        if len(ids) != shard["paragraphs"] or ids[0] != shard["first"] or ids[-1] != shard["last"] \
                or _ids_digest(ids) != shard["ids_sha256"]:
            raise HoptacError(f"{output}: the inputs no longer give the paragraphs of {shard['name']}; "
                              "--resume needs the same inputs; pass --force to start again")
        read_ids.update(ids)
        stats.before += shard["paragraphs"]
        stats.entities += shard["entities"]
        stats.scored += shard["scored"]
        stats.read.split.extend(tuple(s) for s in shard["split"])
    stats.shards_before = len(manifest["shards"])


# ---------------------------------------------------------------- the run

def predict_on_ray(model: str | Path, inputs: list[Path], output: Path, address: str | None = None,
                   workers: int = 2, batch_size: int = 256, force: bool = False,
                   resume: bool = False) -> RayPredictResult:
    """``hoptac predict --engine ray``: every paragraph of ``inputs`` annotated on Ray, into the folder ``output``.

    The paragraphs go to Ray in chunks of :data:`CHUNK_PARAGRAPHS` (``ray.data.from_items``), so the
    driver holds one chunk's texts at a time; every record is checked against the paragraph read at
    its place (same id, input order) before it is written, and each shard is complete (see the module
    doc) before the next one starts. On an error or interruption the complete shards are kept when
    there are any (``--resume`` continues after them); otherwise the folder is removed. With ``force``
    the whole output is written in a temporary folder and replaces ``output`` at the end."""
    check_inputs(inputs, batch_size, workers)
    output = Path(output)
    manifest = _check_existing(output, inputs, force, resume)  # before anything starts
    ray = import_ray()
    if address is not None and not ray.is_initialized():
        check_address(address)  # a wrong address fails here, in seconds
    load_model(model)  # a bad model is a one-line error here, not a dead actor pool
    stats = RayPredictResult(ReadSummary(), output, workers=workers)
    start = time.perf_counter()
    started = not ray.is_initialized()  # then it is shut down at the end
    stats.address = _connect(ray, address, workers)
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True  # the output in input order, as the local engine writes it
    ctx.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our own summary says what was done
    stats.startup_seconds = time.perf_counter() - start
    try:
        if force and output.exists():
            with atomic_dir(output, inputs=inputs, force=True, command=COMMAND) as folder:
                _run(ray, model, inputs, folder, _new_manifest(model, inputs), stats, batch_size, workers, output)
        else:
            created = not output.exists()
            if manifest is None:
                output_folder(output, inputs=inputs, command=COMMAND)
                manifest = _new_manifest(model, inputs)
                _write_json(output / MANIFEST, manifest)
            else:
                _check_resumable(output, manifest, model, inputs)
            try:
                _run(ray, model, inputs, output, manifest, stats, batch_size, workers, output)
            except BaseException as e:
                if not manifest["shards"]:  # nothing complete: nothing left behind
                    if created:
                        shutil.rmtree(output, ignore_errors=True)
                    else:  # a folder that was empty before
                        for name in (MANIFEST, MARK):
                            (output / name).unlink(missing_ok=True)
                elif isinstance(e, HoptacError):
                    raise HoptacError(f"{e} ({len(manifest['shards'])} complete shard(s) kept in {output}: "
                                      f"--resume continues after them)") from None
                else:  # Ctrl-C, SIGTERM, a lost cluster
                    logger.warning("%d complete shard(s) kept in %s: --resume continues after them",
                                   len(manifest["shards"]), output)
                raise
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        if started:
            ray.shutdown()
    stats.output = output
    return stats


def _run(ray, model, inputs: list[Path], folder: Path, manifest: dict, stats: RayPredictResult,
         batch_size: int, workers: int, name: Path) -> None:
    """Skip the complete shards of ``manifest``, predict the rest into ``folder``, check the counts
    (``name``: the output as the user gave it, for messages; ``folder`` may be a temporary one)."""
    begin, cpu_begin = time.perf_counter(), time.process_time()
    paragraphs = read_paragraphs(list(map(Path, inputs)), stats.read)
    read_ids: set[str] = set()
    _skip_done(paragraphs, manifest, stats, name, read_ids)
    if manifest.get("complete") and next(paragraphs, None) is not None:
        raise HoptacError(f"{name}: the inputs now hold more paragraphs than the finished run; "
                          "--resume needs the same inputs; pass --force to start again")
    progress = show_progress(desc="predict (ray)")
    first: tuple[float, int] | None = None  # (time, records) when this run's first record came
    shards = _Shards(folder, manifest)
    try:
        for chunk in _chunks(paragraphs, CHUNK_PARAGRAPHS):
            ids = {p.id for p in chunk}
            if len(ids) != len(chunk) or not ids.isdisjoint(read_ids):
                raise HoptacError(f"{name}: a paragraph id is read twice from the inputs; stopped")
            read_ids |= ids
            rows = [{"id": p.id, "doc_id": p.doc_id, "text": p.text} for p in chunk]
            position = 0
            for row in ray_predict(ray.data.from_items(rows), model, workers=workers,
                                   batch_size=batch_size).iter_rows():
                if position >= len(chunk) or row["id"] != chunk[position].id:
                    expected = chunk[position].id if position < len(chunk) else "none"
                    raise HoptacError(f"{name}: Ray gave paragraph {row['id']} where {expected} was due "
                                      "(one missing, repeated or out of order); stopped before writing it")
                p = chunk[position]
                parts = int(row["parts"])
                shards.write(row["record"], p.id, int(row["entities"]), int(row["scored"]),
                             (p.id, len(p.text), parts) if parts > 1 else None)
                stats.entities += int(row["entities"])
                stats.scored += int(row["scored"])
                if parts > 1:
                    stats.read.split.append((p.id, len(p.text), parts))
                if float(row["load_seconds"]) > 0:
                    stats.load_seconds.append(float(row["load_seconds"]))
                stats.busy_seconds += float(row["batch_seconds"])
                if first is None:
                    first = (time.perf_counter(), shards.lines)
                position += 1
                progress.update(1)
            if position != len(chunk):
                raise HoptacError(f"{name}: {len(chunk) - position} paragraph(s) did not come back from Ray "
                                  f"(e.g. {chunk[position].id}); stopped")
        stats.written = shards.lines
        if stats.written != stats.read.paragraphs:
            raise HoptacError(f"{name}: {stats.read.paragraphs} paragraphs read but {stats.written} "
                              f"records written")
        shards.finish(stats.written)
    except BaseException:
        shards.discard()
        raise
    finally:
        progress.close()
    end = time.perf_counter()
    stats.seconds = end - begin
    stats.driver_cpu_seconds = time.process_time() - cpu_begin
    stats.shards = shards.files
    if first is not None:
        stats.first_seconds = first[0] - begin
        if stats.written - first[1] > batch_size and end > first[0]:
            stats.steady_rate = (stats.written - first[1]) / (end - first[0])
