"""Stage 2 (annotate): the annotator's view, in a real browser.

``python -m hoptac.annotate.screenshot --out annotate/labelling-screen.png`` (or
``make screenshot``) regenerates the README picture: it starts a throw-away
Label Studio server in a temporary folder, pushes the seed article's tasks with
their rule pre-annotations (``hoptac.annotate.tasks.make_tasks`` + ``hoptac.annotate.studio.push_tasks``,
as ``hoptac annotate export`` does), logs in through the login form in headless
Chromium, opens one paragraph in the labelling screen and saves the picture.

The browser helpers here (``chromium``, ``login``, ``open_task``) are also what
the browser test (``tests/test_browser.py``) drives Label Studio with.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser``), selenium
(the ``dev`` extra) and a Label Studio 1.23 virtualenv (``$HOPTAC_LS_VENV``, else
``.venv-ls`` from ``make ls-venv``). Nothing is downloaded at run time. The picture
carries the sha256 of the labelling config it shows (PNG text ``hoptac-labelling-config-sha256``):
``tests/test_config.py`` fails when ``configs/labels.yml`` has changed since.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from hoptac.annotate.config import labelling_config
from hoptac.annotate.local_server import local_label_studio
from hoptac.annotate.studio import push_tasks
from hoptac.annotate.tasks import make_tasks
from hoptac.corpus.build import read_paragraphs

from hoptac.errors import HoptacError
from hoptac.resources import SEED_ARTICLES
from hoptac.schema import load_schema

SEED_DIR = SEED_ARTICLES
DEFAULT_OUT = Path(__file__).resolve().parent / "labelling-screen.png"
DEFAULT_PARAGRAPH = "hanoi-vi-ca-nuoc:18"  # three entity labels and three sectors pre-annotated
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic")
WINDOW = (1400, 1000)
PAGE_TIMEOUT = 60.0

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


CONFIG_HASH_KEY = "hoptac-labelling-config-sha256"


def config_hash() -> str:
    """sha256 of the labelling config that ``configs/labels.yml`` gives today."""
    return hashlib.sha256(labelling_config(load_schema()).encode("utf-8")).hexdigest()


def stamp_config_hash(png: Path, digest: str) -> None:
    """Record ``digest`` in the PNG's text metadata, so a test can tell a stale picture."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(CONFIG_HASH_KEY, digest)
    with Image.open(png) as image:
        image.load()
        image.save(png, pnginfo=info)


def picture_config_hash(png: Path) -> str | None:
    """The labelling-config hash a screenshot was taken with (None for an unstamped picture)."""
    from PIL import Image

    with Image.open(png) as image:
        return image.text.get(CONFIG_HASH_KEY)


# --------------------------------------------------------------------------- the picture


def seed_tasks() -> list[dict]:
    """The seed article's tasks, pre-annotated by the rules (what `hoptac annotate export` sends)."""
    return make_tasks([p.to_dict() for p in read_paragraphs([SEED_DIR])], pre="rules")


def take_screenshot(out: Path, paragraph: str = DEFAULT_PARAGRAPH, project: str = "hoptac seed") -> Path:
    """Start a server, push the seed tasks, open ``paragraph`` in the labelling screen, save ``out``."""
    from label_studio_sdk import LabelStudio

    tasks = seed_tasks()
    if paragraph not in {t["data"]["para_id"] for t in tasks}:
        raise HoptacError(f"--paragraph {paragraph!r}: no such paragraph in {SEED_DIR}")
    with tempfile.TemporaryDirectory(prefix="hoptac-screenshot-") as tmp, local_label_studio(Path(tmp), username="annotator@hoptac.test") as server:
        pushed = push_tasks(server.url, server.token, project, tasks)
        client = LabelStudio(base_url=server.url, api_key=server.token)
        task = next(t for t in client.tasks.list(project=pushed.project_id, fields="task_only")
                    if t.data["para_id"] == paragraph)
        with chromium() as driver:
            login(driver, server.url, server.username, server.password)
            open_task(driver, server.url, pushed.project_id, task.id, task.data["text"])
            save_png(driver, out)
    stamp_config_hash(out, config_hash())
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hoptac.annotate.screenshot", description=__doc__.split("\n\n")[0])
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
