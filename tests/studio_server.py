"""Test plugin: a REAL Label Studio 1.23 server, started once per test session.

The ``label_studio`` fixture runs ``label-studio start`` from the separate
virtualenv named by ``$HOPTAC_LS_VENV`` (``make test`` sets it; default
``<repo>/.venv-ls``, made by ``make ls-venv``) on a free port of 127.0.0.1,
with its database, media and home folder in a temporary directory (nothing
lands in ``~``), an admin user with a random legacy API token, and a second
user (annotator 2, with a token of their own) made with ``label-studio init``
on the same data folder. It waits for ``/health`` (up to 4 minutes, the log
tail is shown on failure) and stops the whole process group at the end.

A missing Label Studio install FAILS the tests that need it (never a silent
skip): run ``make ls-venv``.
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
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LS_VERSION = "1.23"
STARTUP_TIMEOUT = 240.0
INIT_TIMEOUT = 180.0
STOP_TIMEOUT = 20.0
_STARTED_AT = re.compile(r"Starting development server at (http://\S+?)/?\s*$", re.MULTILINE)
# Variables Label Studio reads (bare or prefixed) that must not leak in from the developer's shell.
_LS_BARE_NAMES = {"USERNAME", "PASSWORD", "USER_TOKEN", "HOST", "PORT", "DJANGO_DB", "DATABASE_NAME",
                  "BASE_DATA_DIR", "DEBUG", "LOG_LEVEL", "SECRET_KEY"}
_timings: dict[str, float] = {}


@dataclass(frozen=True)
class StudioServer:
    """A running server: where it is and who may log in (tokens hidden from repr)."""

    url: str
    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    annotator_username: str
    annotator_password: str = field(repr=False)
    annotator_token: str = field(repr=False)
    log: Path
    data_dir: Path
    startup_seconds: float


def ls_venv() -> Path:
    """``$HOPTAC_LS_VENV``, else ``<repo>/.venv-ls``."""
    configured = os.environ.get("HOPTAC_LS_VENV", "").strip()
    return Path(configured) if configured else REPO / ".venv-ls"


def ls_executable() -> Path:
    venv = ls_venv()
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        pytest.fail(f"Label Studio not found at {exe}: run `make ls-venv` (a virtualenv with "
                    f"label-studio=={LS_VERSION}.2), or set HOPTAC_LS_VENV to one", pytrace=False)
    return exe


def _server_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABEL_STUDIO_", "HEARTEX_")) and k not in _LS_BARE_NAMES}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        LABEL_STUDIO_BASE_DATA_DIR=str(tmp / "data"),
        DJANGO_DB="sqlite",
        LATEST_VERSION_CHECK="false",  # no call to PyPI at start-up
        COLLECT_ANALYTICS="false",
    )
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _get(url: str, token: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _wait_until_healthy(proc: subprocess.Popen, log: Path, port: int) -> str:
    """Poll ``/health`` until 200; the URL is the one the server says it started at."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Label Studio exited with status {proc.returncode} while starting; "
                        f"log {log}:\n{_tail(log)}", pytrace=False)
        started = _STARTED_AT.search(log.read_text(encoding="utf-8", errors="replace"))
        if started:  # Label Studio moves to another port if ours was taken meanwhile
            url = started.group(1).rstrip("/")
            try:
                if _get(f"{url}/health")[0] == 200:
                    return url
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(1.0)
    pytest.fail(f"Label Studio did not answer {url}/health within {STARTUP_TIMEOUT:.0f}s; "
                f"log {log}:\n{_tail(log)}", pytrace=False)


def _check_version(url: str, token: str, log: Path) -> None:
    status, body = _get(f"{url}/api/version", token)
    release = json.loads(body).get("release", "") if status == 200 else ""
    if not release.startswith(LS_VERSION):
        pytest.fail(f"expected Label Studio {LS_VERSION}.x, the server says {release or status}; "
                    f"log {log}:\n{_tail(log)}", pytrace=False)


def _add_annotator(exe: Path, env: dict, data_dir: Path, url: str, tmp: Path) -> tuple[str, str, str]:
    """A second user in the same organisation, with a token of their own (``label-studio init``)."""
    username, password, token = "annotator2@hoptac.test", secrets.token_urlsafe(12), secrets.token_hex(20)
    log = tmp / "label-studio-init-annotator2.log"
    with open(log, "wb") as out:
        done = subprocess.run([str(exe), "init", "--data-dir", str(data_dir), "--username", username,
                               "--password", password, "--user-token", token],
                              env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, timeout=INIT_TIMEOUT)
    status, body = _get(f"{url}/api/current-user/whoami", token)
    if done.returncode != 0 or status != 200 or json.loads(body).get("email") != username:
        pytest.fail(f"could not create annotator 2 (init exit {done.returncode}, whoami HTTP {status}); "
                    f"log {log}:\n{_tail(log)}", pytrace=False)
    return username, password, token


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


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> StudioServer:
    """Start a real Label Studio server for the session; yield how to reach it."""
    exe = ls_executable()
    tmp = tmp_path_factory.mktemp("label-studio")
    data_dir, log = tmp / "data", tmp / "label-studio.log"
    env = _server_env(tmp)
    username, password, token = "admin@hoptac.test", secrets.token_urlsafe(12), secrets.token_hex(20)
    port = _free_port()
    command = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
               "--data-dir", str(data_dir), "--username", username, "--password", password,
               "--user-token", token, "--enable-legacy-api-token"]
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = _wait_until_healthy(proc, log, port)
        _timings["start"] = time.monotonic() - started
        _check_version(url, token, log)
        annotator = _add_annotator(exe, env, data_dir, url, tmp)
        _timings["annotator"] = time.monotonic() - started - _timings["start"]
        yield StudioServer(url=url, username=username, password=password, token=token,
                           annotator_username=annotator[0], annotator_password=annotator[1],
                           annotator_token=annotator[2], log=log, data_dir=data_dir,
                           startup_seconds=_timings["start"])
    finally:
        _stop(proc)


def pytest_terminal_summary(terminalreporter) -> None:
    if "start" in _timings:
        terminalreporter.write_line(
            f"Label Studio: server up in {_timings['start']:.0f}s, "
            f"annotator 2 added in {_timings.get('annotator', 0):.0f}s")
