"""A throw-away Label Studio server on 127.0.0.1, for the tests and ``make screenshot``.

Label Studio runs from its own virtualenv (``$HOPTAC_LS_VENV``, else
``<repo>/.venv-ls``, made by ``make ls-venv``), never the toolkit's. Its
database, media and home folder live under the given work folder, so nothing
lands in ``~``; variables Label Studio would read from the developer's shell are
left out. The admin user gets a random legacy API token. The server is stopped
(its whole process group) when the context ends.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hoptac.errors import HoptacError

LS_VERSION = "1.23"
STARTUP_TIMEOUT = 240.0
STOP_TIMEOUT = 20.0
_STARTED_AT = re.compile(r"Starting development server at (http://\S+?)/?\s*$", re.MULTILINE)
# Variables Label Studio reads (bare or prefixed) that must not leak in from the developer's shell.
_LS_BARE_NAMES = {"USERNAME", "PASSWORD", "USER_TOKEN", "HOST", "PORT", "DJANGO_DB", "DATABASE_NAME",
                  "BASE_DATA_DIR", "DEBUG", "LOG_LEVEL", "SECRET_KEY"}


@dataclass(frozen=True)
class LocalServer:
    """A running server: where it is and who may log in (secrets hidden from repr)."""

    url: str
    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    exe: Path
    env: dict = field(repr=False)
    workdir: Path
    data_dir: Path
    log: Path
    startup_seconds: float


def ls_executable() -> Path:
    """``label-studio`` of ``$HOPTAC_LS_VENV`` (else ``<repo>/.venv-ls``)."""
    venv = Path(os.environ.get("HOPTAC_LS_VENV", "").strip() or Path(".venv-ls"))
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        raise HoptacError(f"Label Studio not found at {exe}: run `make ls-venv` (a virtualenv with "
                          f"label-studio=={LS_VERSION}.2), or set HOPTAC_LS_VENV to one")
    return exe


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def http_get(url: str, token: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@contextmanager
def local_label_studio(workdir: Path, username: str = "admin@hoptac.test") -> Iterator[LocalServer]:
    """Start ``label-studio start`` on a free port of 127.0.0.1; yield the server once ``/health`` answers."""
    exe = ls_executable()
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir, log = workdir / "data", workdir / "label-studio.log"
    env = _server_env(workdir)
    password, token = secrets.token_urlsafe(12), secrets.token_hex(20)
    command = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(free_port()),
               "--data-dir", str(data_dir), "--username", username, f"--password={password}",  # "=": a password may start with "-"
               "--user-token", token, "--enable-legacy-api-token"]
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = _wait_until_healthy(proc, log)
        _check_version(url, token, log)
        yield LocalServer(url=url, username=username, password=password, token=token, exe=exe, env=env,
                          workdir=workdir, data_dir=data_dir, log=log,
                          startup_seconds=time.monotonic() - started)
    finally:
        _stop(proc)


def _server_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABEL_STUDIO_", "HEARTEX_")) and k not in _LS_BARE_NAMES}
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        LABEL_STUDIO_BASE_DATA_DIR=str(workdir / "data"),
        DJANGO_DB="sqlite",
        LATEST_VERSION_CHECK="false",  # no call to PyPI at start-up
        COLLECT_ANALYTICS="false",
        # `hoptac serve` runs beside it on 127.0.0.1: let Label Studio call that ML backend and its webhook
        ML_BLOCK_LOCAL_IP="false",
        SSRF_PROTECTION_ENABLED="false",
    )
    return env


def free_port() -> int:
    """A port of 127.0.0.1 that is free now (for a server about to start on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_healthy(proc: subprocess.Popen, log: Path) -> str:
    """Poll ``/health`` until 200; the URL is the one the server says it started at."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    url = "(not started)"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HoptacError(f"Label Studio exited with status {proc.returncode} while starting; "
                              f"log {log}:\n{log_tail(log)}")
        started = _STARTED_AT.search(log.read_text(encoding="utf-8", errors="replace"))
        if started:  # Label Studio moves to another port if ours was taken meanwhile
            url = started.group(1).rstrip("/")
            try:
                if http_get(f"{url}/health")[0] == 200:
                    return url
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(1.0)
    raise HoptacError(f"Label Studio did not answer {url}/health within {STARTUP_TIMEOUT:.0f}s; "
                      f"log {log}:\n{log_tail(log)}")


def _check_version(url: str, token: str, log: Path) -> None:
    status, body = http_get(f"{url}/api/version", token)
    release = json.loads(body).get("release", "") if status == 200 else ""
    if not release.startswith(LS_VERSION):
        raise HoptacError(f"expected Label Studio {LS_VERSION}.x, the server says {release or status}; "
                          f"log {log}:\n{log_tail(log)}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
