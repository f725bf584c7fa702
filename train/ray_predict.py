"""Stage 3 (use) beyond one machine: batch prediction on Ray (issue 12).

``hoptac predict MODEL INPUT... -o OUT --engine ray [--address …] [--workers N]``:
the paragraphs are read as for the local engine (:func:`hoptac.corpus.read.read_paragraphs`,
so ids and text are the same), handed to Ray Data, and annotated by a pool of
``N`` actors, each loading the model once (:class:`_Annotator`) and running the
local engine's :func:`hoptac.train.predict.annotate` on its batches. ``OUT`` is a
folder (``hoptac.output.atomic_dir``) of ``part-NNNNN.jsonl`` files whose lines are
exactly the local engine's records; every paragraph id read comes out exactly once,
or nothing is written.

Ray is an optional extra (``pip install 'hoptac[ray]'``), imported only here and only
when used. Without ``--address`` a local Ray instance is started (127.0.0.1, no
dashboard, ``--workers`` CPUs). An actor that dies is restarted and its batch retried
(Ray Data's default for actor pools: ``max_restarts=-1``, ``max_task_retries=-1``); the
id check before anything is written catches what that cannot.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hoptac.corpus.read import Paragraph, ReadSummary, read_paragraphs
from hoptac.errors import HoptacError
from hoptac.model import load_model
from hoptac.output import atomic_dir, check_output
from hoptac.progress import progress as show_progress
from hoptac.train.predict import PredictResult, _chunks, annotate, check_inputs

SHARD_LINES = 10_000  # records per part-NNNNN.jsonl
CHUNK_PARAGRAPHS = 50_000  # paragraphs handed to Ray at a time (one Ray Dataset each)
INSTALL_HINT = "--engine ray needs Ray: pip install 'hoptac[ray]'"


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
    entities and sector scores then cross Ray untouched, whatever the batch holds."""

    def __init__(self, model: str) -> None:
        self.nlp = load_model(model)

    def __call__(self, batch: dict) -> dict:
        paragraphs = (Paragraph(str(pid), str(doc_id), 0, "", str(text))
                      for pid, doc_id, text in zip(batch["id"], batch["doc_id"], batch["text"]))
        records = list(annotate(self.nlp, paragraphs, batch_size=max(1, len(batch["id"])), summary=ReadSummary()))
        return {"id": [r["id"] for r in records], "entities": [len(r["entities"]) for r in records],
                "record": [json.dumps(r, ensure_ascii=False) for r in records]}


def ray_predict(dataset, model: str | Path, workers: int = 2, batch_size: int = 256):
    """A Ray Dataset of predictions from ``dataset`` (columns ``id``, ``doc_id``, ``text``).

    Each row of the result is one paragraph: ``id``, ``entities`` (how many) and ``record``, the
    JSON line of :func:`hoptac.train.predict.doc_record` (``json.loads`` gives the local engine's dict).
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
    """What one Ray run read and wrote: paragraphs in must equal records out, each id once."""

    address: str = "local"
    workers: int = 0
    shards: int = 0

    def lines(self) -> list[str]:
        return [*self.read.lines(), f"entities:   {self.entities}", f"ray: {self.workers} worker(s) on {self.address}",
                self.written_line()]

    def written_line(self) -> str:
        return (f"wrote {self.written} records for {self.read.paragraphs} paragraphs, each id once, "
                f"to {self.shards} file(s) in {self.output} in {self.seconds:.1f}s ({self.rate:.0f} paragraphs/s)")


def _connect(ray, address: str | None, workers: int) -> str:
    if ray.is_initialized():
        return "the running Ray instance"
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


def predict_on_ray(model: str | Path, inputs: list[Path], output: Path, address: str | None = None,
                   workers: int = 2, batch_size: int = 256, force: bool = False) -> RayPredictResult:
    """``hoptac predict --engine ray``: every paragraph of ``inputs`` annotated on Ray, into the folder ``output``.

    The paragraphs go to Ray in chunks of :data:`CHUNK_PARAGRAPHS` (``ray.data.from_items``), so the
    driver holds one chunk's texts at a time; each chunk's records are checked (each id read comes back
    once) as they are written, and any mismatch removes the whole output (``atomic_dir``)."""
    check_inputs(inputs, batch_size, workers)
    check_output(output, kind="folder", inputs=inputs, force=force)  # before anything starts
    ray = import_ray()
    load_model(model)  # a bad model is a one-line error here, not a dead actor pool
    output = Path(output)
    stats = RayPredictResult(ReadSummary(), output, workers=workers)
    start = time.perf_counter()
    started = not ray.is_initialized()  # then it is shut down at the end
    stats.address = _connect(ray, address, workers)
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True  # the output in input order, as the local engine writes it
    ctx.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our own summary says what was done
    progress = show_progress(desc="predict (ray)")
    read_ids: set[str] = set()
    try:
        with atomic_dir(output, inputs=inputs, force=force, command="hoptac predict --engine ray") as folder:
            with _Shards(folder) as shards:
                for chunk in _chunks(read_paragraphs(list(map(Path, inputs)), stats.read), CHUNK_PARAGRAPHS):
                    ids = {p.id for p in chunk}
                    if len(ids) != len(chunk) or not ids.isdisjoint(read_ids):
                        raise HoptacError(f"{output}: a paragraph id is read twice from the inputs; nothing written")
                    read_ids |= ids
                    rows = [{"id": p.id, "doc_id": p.doc_id, "text": p.text} for p in chunk]
                    for row in ray_predict(ray.data.from_items(rows), model, workers=workers,
                                           batch_size=batch_size).iter_rows():
                        if row["id"] not in ids:
                            raise HoptacError(f"{output}: paragraph {row['id']} came back twice (or unasked) "
                                              f"from Ray; nothing written")
                        ids.remove(row["id"])
                        shards.write(row["record"])
                        stats.entities += int(row["entities"])
                        progress.update(1)
                    if ids:
                        raise HoptacError(f"{output}: {len(ids)} paragraph(s) did not come back from Ray "
                                          f"(e.g. {min(ids)}); nothing written")
            stats.written, stats.shards = shards.lines, shards.files
            if stats.written != stats.read.paragraphs:
                raise HoptacError(f"{output}: {stats.read.paragraphs} paragraphs read but {stats.written} "
                                  f"records written; nothing written")
    finally:
        progress.close()
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        if started:
            ray.shutdown()
    stats.seconds = time.perf_counter() - start
    return stats


class _Shards:
    """``part-00000.jsonl``, ``part-00001.jsonl``… in a folder, :data:`SHARD_LINES` lines each."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.lines, self.files, self._out = folder, 0, 0, None

    def write(self, line: str) -> None:
        if self.lines % SHARD_LINES == 0:
            self.close()
            self._out = open(self.folder / f"part-{self.files:05d}.jsonl", "w", encoding="utf-8", newline="\n")
            self.files += 1
        self._out.write(line + "\n")
        self.lines += 1

    def __enter__(self) -> _Shards:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
