"""Stage 2 (annotate): the annotator's view, in a real browser.

``python -m annotate.screenshot --out annotate/labelling-screen.png`` (or
``make screenshot``) regenerates the README picture: it starts a throw-away
Label Studio server in a temporary folder, pushes the seed article's tasks with
their rule pre-annotations (``annotate.tasks.make_tasks`` + ``annotate.studio.push_tasks``,
as ``hoptac annotate export`` does), logs in through the login form in headless
Chromium, opens one paragraph in the labelling screen and saves the picture.

The browser helpers here (``chromium``, ``login``, ``open_task``) are also what
the browser test (``tests/test_browser.py``) drives Label Studio with.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser``), selenium
(the ``dev`` extra) and a Label Studio 1.23 virtualenv (``$HOPTAC_LS_VENV``, else
``<repo>/.venv-ls`` from ``make ls-venv``). Nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hoptac.errors import HoptacError

REPO = Path(__file__).resolve().parents[1]
SEED_DIR = REPO / "seeds"
DEFAULT_OUT = Path(__file__).resolve().parent / "labelling-screen.png"
DEFAULT_PARAGRAPH = "hanoi-vi-ca-nuoc:18"  # three entity labels and three sectors pre-annotated
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic")
WINDOW = (1400, 1000)
PAGE_TIMEOUT = 60.0
SERVER_TIMEOUT = 240.0

# Where the labelling screen lives in Label Studio 1.23's DOM.
ANNOTATION_AREA = ".lsf-main-view__annotation"
TEXT_OBJECT = f"{ANNOTATION_AREA} .lsf-richtext__container"
REGIONS_PANEL = ".lsf-outliner"


# --------------------------------------------------------------------------- browser


@contextmanager
def chromium(window: tuple[int, int] = WINDOW):
    """A headless Chromium (Debian's, with its chromedriver) with a fresh profile, closed at the end."""
    for program, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not program.exists():
            raise HoptacError(f"{program} not found: install Debian's {package} (`make browser`)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hoptac-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, what: str, timeout: float = PAGE_TIMEOUT):
    """``WebDriverWait(...).until(condition)`` whose timeout says what we were waiting for."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        raise AssertionError(f"waited {timeout:.0f}s for {what} at {driver.current_url}") from None


def login(driver, url: str, email: str, password: str) -> None:
    """Log in through Label Studio's login form, as a person does: type, then press the button."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/user/login/")
    wait_for(driver, lambda d: d.find_elements(By.ID, "email"), "the login form")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(driver, lambda d: "/user/login" not in d.current_url, f"the login of {email} to go through")


def open_task(driver, url: str, project_id: int, task_id: int, text: str) -> None:
    """Open one task in the labelling screen (data manager → task) and wait until its paragraph shows."""
    driver.get(f"{url}/projects/{project_id}/data?task={task_id}")
    wait_for(driver, lambda d: d.execute_script(
        "const [sel, want] = arguments;"
        "return [...document.querySelectorAll(sel)].some(el => el.textContent === want)"
        " && !!document.querySelector(arguments[2]);", TEXT_OBJECT, text, REGIONS_PANEL),
        f"task {task_id} (paragraph {text[:40]!r}…) in the labelling screen")
    time.sleep(0.5)  # let the regions panel finish rendering the pre-annotations


def save_png(driver, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(out)):
        raise HoptacError(f"{out}: the browser could not save the screenshot")
    return out


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class Server:
    url: str
    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)


def ls_executable() -> Path:
    venv = Path(os.environ.get("HOPTAC_LS_VENV", "").strip() or REPO / ".venv-ls")
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        raise HoptacError(f"{exe} not found: run `make ls-venv` or set HOPTAC_LS_VENV to a Label Studio 1.23 venv")
    return exe


@contextmanager
def label_studio(workdir: Path):
    """A throw-away Label Studio server on a free port of 127.0.0.1, all its files under ``workdir``."""
    exe = ls_executable()
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "HEARTEX_"))}
    env.update(HOME=str(home), LABEL_STUDIO_BASE_DATA_DIR=str(workdir / "data"), DJANGO_DB="sqlite",
               LATEST_VERSION_CHECK="false", COLLECT_ANALYTICS="false")
    server = Server(url=f"http://127.0.0.1:{_free_port()}", username="annotator@hoptac.test",
                    password=secrets.token_urlsafe(12), token=secrets.token_hex(20))
    log = workdir / "label-studio.log"
    command = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1",
               "--port", server.url.rsplit(":", 1)[1], "--data-dir", str(workdir / "data"),
               "--username", server.username, "--password", server.password,
               "--user-token", server.token, "--enable-legacy-api-token"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_healthy(proc, server.url, log)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HoptacError(f"{log}: Label Studio exited with status {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise HoptacError(f"{log}: Label Studio did not answer {url}/health within {SERVER_TIMEOUT:.0f}s")


# --------------------------------------------------------------------------- the picture


def seed_tasks() -> list[dict]:
    """The seed article's tasks, pre-annotated by the rules (what `hoptac annotate export` sends)."""
    from annotate.tasks import make_tasks
    from corpus.build import read_paragraphs

    return make_tasks([p.to_dict() for p in read_paragraphs([SEED_DIR])], pre="rules")


def take_screenshot(out: Path, paragraph: str = DEFAULT_PARAGRAPH, project: str = "hoptac seed") -> Path:
    """Start a server, push the seed tasks, open ``paragraph`` in the labelling screen, save ``out``."""
    from label_studio_sdk import LabelStudio

    from annotate.studio import push_tasks

    tasks = seed_tasks()
    if paragraph not in {t["data"]["para_id"] for t in tasks}:
        raise HoptacError(f"--paragraph {paragraph!r}: no such paragraph in {SEED_DIR}")
    with tempfile.TemporaryDirectory(prefix="hoptac-screenshot-") as tmp, label_studio(Path(tmp)) as server:
        pushed = push_tasks(server.url, server.token, project, tasks)
        client = LabelStudio(base_url=server.url, api_key=server.token)
        task = next(t for t in client.tasks.list(project=pushed.project_id, fields="task_only")
                    if t.data["para_id"] == paragraph)
        with chromium() as driver:
            login(driver, server.url, server.username, server.password)
            open_task(driver, server.url, pushed.project_id, task.id, task.data["text"])
            return save_png(driver, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m annotate.screenshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    parser.add_argument("--paragraph", default=DEFAULT_PARAGRAPH, help="para_id of the seed paragraph to show")
    args = parser.parse_args(argv)
    try:
        path = take_screenshot(args.out, args.paragraph)
    except HoptacError as e:
        print(f"hoptac: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
