"""Label Studio error messages never show a secret: the API key, nor credentials in a URL.

No server needed (the round trip against a real one is tests/test_studio.py): the message
functions of ``annotate/studio.py`` directly, and the CLI against a closed port.
"""

from __future__ import annotations

import os
import socket

import pytest
from conftest import hoptac
from hoptac.annotate.studio import _api_error_message, _detail, shown_url

KEY = "SEKRETK" + "3f9a" * 10


class FakeApiError:
    def __init__(self, status_code: int, body) -> None:
        self.status_code, self.body = status_code, body


@pytest.mark.parametrize("body", [
    {"detail": "x" * 280 + f" Token {KEY} is not valid"},  # the key across the 300-character cut
    {"validation_errors": {"label_config": ["y" * 290, f"Token {KEY}"]}},
    "z" * 295 + f" {KEY}",
])
def test_the_key_is_redacted_before_the_detail_is_cut(body):
    detail = _detail(body, KEY)
    assert len(detail) <= 300
    for k in range(6, len(KEY) + 1):  # no piece of the key, however short the cut left it
        assert KEY[:k] not in detail
    message = _api_error_message("http://ls.example", FakeApiError(500, body), "project 'p'", KEY)
    assert KEY[:6] not in message and "HTTP 500" in message


@pytest.mark.parametrize("url, shown, secret", [
    ("http://user:hunter2@127.0.0.1:8080", "http://127.0.0.1:8080", "user:hunter2"),
    ("https://admin:p@ss@ls.example/api/projects", "https://ls.example/api/projects", "admin:p@ss"),
    ("http://token123@ls.example", "http://ls.example", "token123"),
    ("http://ls.example:8080/x?a=b@c", "http://ls.example:8080/x?a=b@c", None),  # an @ after the host is no credential
    ("cannot reach http://u:pw1@h1/ and https://v:pw2@h2", "cannot reach http://h1/ and https://h2", "pw"),
])
def test_credentials_are_stripped_from_urls_in_messages(url, shown, secret):
    assert shown_url(url) == shown
    message = _api_error_message(url, FakeApiError(502, {"detail": f"proxy {url} failed"}), "x", KEY)
    assert shown in message
    if secret:
        assert secret not in message


def test_cli_unreachable_server_with_credentials_in_the_url_shows_neither(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env["LABEL_STUDIO_API_KEY"] = KEY
    result = hoptac("annotate", "pull", "--ls-url", f"http://annotator:hunter2@127.0.0.1:{port}",
                    "--project", "p", "-o", tmp_path / "pulls", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr.strip()
    assert err == f"hoptac: error: cannot reach Label Studio at http://127.0.0.1:{port} (ConnectError)"
    for secret in ("hunter2", "annotator", KEY[:6]):
        assert secret not in result.stdout + result.stderr
