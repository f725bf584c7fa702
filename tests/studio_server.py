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
import secrets
import subprocess
import time
from dataclasses import dataclass, field, fields

import pytest
from hoptac.annotate.local_server import (
    LocalServer,
    http_get,
    local_label_studio,
    log_tail,
)

from hoptac.errors import HoptacError

INIT_TIMEOUT = 180.0
_timings: dict[str, float] = {}


@dataclass(frozen=True)
class StudioServer(LocalServer):
    """The session's server plus annotator 2, who has a login and a token of their own."""

    annotator_username: str
    annotator_password: str = field(repr=False)
    annotator_token: str = field(repr=False)


def _add_annotator(server) -> tuple[str, str, str]:
    """A second user in the same organisation, with a token of their own (``label-studio init``)."""
    username, password, token = "annotator2@hoptac.test", secrets.token_urlsafe(12), secrets.token_hex(20)
    log = server.workdir / "label-studio-init-annotator2.log"
    with open(log, "wb") as out:
        done = subprocess.run([str(server.exe), "init", "--data-dir", str(server.data_dir), "--username", username,
                               f"--password={password}", "--user-token", token],  # "=": may start with "-"
                              env=server.env, cwd=server.workdir, stdout=out, stderr=subprocess.STDOUT,
                              timeout=INIT_TIMEOUT)
    status, body = http_get(f"{server.url}/api/current-user/whoami", token)
    if done.returncode != 0 or status != 200 or json.loads(body).get("email") != username:
        pytest.fail(f"could not create annotator 2 (init exit {done.returncode}, whoami HTTP {status}); "
                    f"log {log}:\n{log_tail(log)}", pytrace=False)
    return username, password, token


def client(server, token: str | None = None):
    """The SDK client of ``server`` as its admin (or as the owner of ``token``)."""
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=server.url, api_key=token or server.token)


def cli_env(key: str) -> dict:
    """This process's environment for a ``hoptac`` subprocess with ``key`` as the only Label Studio setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env["LABEL_STUDIO_API_KEY"] = key
    return env


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> StudioServer:
    """Start a real Label Studio server for the session; yield how to reach it."""
    tmp = tmp_path_factory.mktemp("label-studio")
    try:
        with local_label_studio(tmp) as server:
            _timings["start"] = server.startup_seconds
            begun = time.monotonic()
            annotator = _add_annotator(server)
            _timings["annotator"] = time.monotonic() - begun
            yield StudioServer(**{f.name: getattr(server, f.name) for f in fields(LocalServer)},
                               annotator_username=annotator[0], annotator_password=annotator[1],
                               annotator_token=annotator[2])
    except HoptacError as e:
        pytest.fail(str(e), pytrace=False)


def pytest_terminal_summary(terminalreporter) -> None:
    if "start" in _timings:
        terminalreporter.write_line(
            f"Label Studio: server up in {_timings['start']:.0f}s, "
            f"annotator 2 added in {_timings.get('annotator', 0):.0f}s")
