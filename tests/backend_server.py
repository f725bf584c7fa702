"""Test helper (not a test module): run the real ``hoptac serve`` CLI on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hoptac.annotate.local_server import free_port

STARTUP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Backend:
    url: str
    log: Path
    workdir: Path
    process: subprocess.Popen

    @property
    def store(self) -> Path:
        return self.workdir / "annotations.sqlite3"

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, body, timeout: float = 120.0) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_backend(model: Path, workdir: Path, *args: str, env: dict | None = None):
    """``hoptac serve MODEL --port P --workdir WORKDIR ARGS…``, up once ``/health`` answers; stopped at the end."""
    port = free_port()
    workdir.parent.mkdir(parents=True, exist_ok=True)
    log = workdir.parent / f"{workdir.name}-serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "hoptac.cli", "serve", str(model), "--port", str(port),
                                    "--workdir", str(workdir), *args], stdout=out, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    backend = Backend(f"http://127.0.0.1:{port}", log, workdir, process)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"hoptac serve exited with {process.returncode}:\n{backend.log_text()}")
            try:
                backend.get("/health")
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"hoptac serve did not answer in {STARTUP_TIMEOUT}s:\n{backend.log_text()}")
                time.sleep(0.5)
        yield backend
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


def wait_for(condition, what: str, timeout: float = 120.0, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
