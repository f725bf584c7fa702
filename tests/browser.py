"""Browser helpers for ``tests/test_browser.py``: read Label Studio's labelling screen, act on it.

Driver setup, login and opening a task come from :mod:`annotate.screenshot` (the
README picture is taken the same way). Here: ``read_screen`` turns what the page
shows (its DOM, never our JSON) into a :class:`Screen`; ``labelling_screen_problems``
lists what the screen lacks compared with the label schema and a task;
``select_text``, ``press_key``, ``tick_choice`` and ``submit`` act as a person does,
with the real mouse and keyboard.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from hoptac.annotate.screenshot import ANNOTATION_AREA, TEXT_OBJECT, wait_for

from hoptac.schema import LabelSchema

_READ_SCREEN = """
const [area, textObject] = arguments;
const root = document.querySelector(area);
if (!root) return null;
const text = el => (el ? el.textContent : null);
return {
  objects: [...document.querySelectorAll(textObject)].map(el => ({
    text: el.textContent,
    top: el.getBoundingClientRect().top,
    highlights: [...el.querySelectorAll('.htx-highlight[data-start]')].map(h => ({
      label: (h.dataset.label || '').replace(/^\\d+:/, ''),
      start: Number(h.dataset.start), end: Number(h.dataset.end), text: h.textContent})),
  })),
  labels: [...root.querySelectorAll('.lsf-label')].map(l => ({
    name: text(l.querySelector('.lsf-label__text')),
    hotkey: text(l.querySelector('.lsf-label__hotkey')),
    colour: l.style.getPropertyValue('--color').trim(),
    top: l.getBoundingClientRect().top})),
  choices: [...root.querySelectorAll('.lsf-choice input[type=checkbox]')].map(i => ({
    name: i.name, checked: i.checked,
    hotkey: text(i.closest('label') && i.closest('label').querySelector('sup.lsf-hint'))})),
};
"""
# The regions panel is a virtual list: it renders only the rows in view, so it is read while scrolling.
_VISIBLE_REGIONS = """
return [...document.querySelectorAll('.lsf-outliner-item')].map(o => {
  const part = sel => { const el = o.querySelector(sel); return el ? el.textContent : null; };
  return {index: part('.lsf-outliner-item__index'), label: part('.lsf-labels-list'),
          text: part('.lsf-outliner-item__text')};
});
"""
_REGIONS_HOLDER = ".lsf-outliner .lsf-tree-list-holder"


@dataclass(frozen=True)
class Shown:
    """One label as the screen shows it."""

    name: str
    hotkey: str | None
    colour: str


@dataclass(frozen=True)
class Screen:
    """What the labelling screen shows, read from the DOM."""

    texts: list[dict]  # text objects: text, top (px), highlights [{label, start, end, text}]
    labels: list[Shown]
    choices: dict[str, bool]  # sector → ticked
    choice_hotkeys: dict[str, str | None]
    regions: list[tuple[str, str]]  # (label, text) in the regions panel

    def text_object(self, text: str) -> dict | None:
        return next((o for o in self.texts if o["text"] == text), None)


def read_screen(driver) -> Screen:
    raw = driver.execute_script(_READ_SCREEN, ANNOTATION_AREA, TEXT_OBJECT)
    assert raw is not None, f"no labelling screen at {driver.current_url}"
    return Screen(
        texts=raw["objects"],
        labels=[Shown(x["name"], x["hotkey"], x["colour"].lower()) for x in raw["labels"]],
        choices={x["name"]: x["checked"] for x in raw["choices"]},
        choice_hotkeys={x["name"]: (x["hotkey"] or "").strip("[]") or None for x in raw["choices"]},
        regions=read_regions(driver),
    )


def read_regions(driver) -> list[tuple[str, str]]:
    """(label, text) of every row of the regions panel, scrolling it with the mouse wheel as a person does."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    rows: dict[str, tuple[str, str]] = {}
    holders = driver.find_elements(By.CSS_SELECTOR, _REGIONS_HOLDER)
    for step in range(200):
        seen = len(rows)
        for row in driver.execute_script(_VISIBLE_REGIONS):
            rows.setdefault(row["index"], (row["label"], row["text"]))
        if not holders or (step and len(rows) == seen):  # a scroll that shows nothing new: the end
            break
        ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(holders[0]), 0,
                                                holders[0].size["height"] // 2).perform()
        time.sleep(0.15)
    if holders:  # back to the top, as it was
        ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(holders[0]), 0, -10_000).perform()
    return [rows[k] for k in sorted(rows, key=lambda k: int(k) if (k or "").isdigit() else 0)]


def expected_regions(task: dict) -> list[tuple[int, int, str, str]]:
    """(start, end, label, text) of the task's pre-annotated spans (its first prediction)."""
    predictions = task.get("predictions") or []
    results = predictions[0]["result"] if predictions else []
    return sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0], r["value"]["text"])
                  for r in results if r.get("type") == "labels")


def labelling_screen_problems(screen: Screen, schema: LabelSchema, data: dict,
                              regions: list[tuple[int, int, str, str]]) -> list[str]:
    """Everything the screen lacks: title context, paragraph, labels + hotkeys + colours, sectors, regions."""
    problems = []
    paragraph = screen.text_object(data["text"])
    title = next((o for o in screen.texts if o["text"] == data["title"] and o is not paragraph), None)
    if paragraph is None:
        problems.append(f"the paragraph is not shown: {data['text'][:60]!r}…")
    if title is None:
        problems.append(f"the article title is not shown as context: {data['title']!r}")
    elif paragraph is not None and title["top"] >= paragraph["top"]:
        problems.append("the article title is shown below the paragraph, not above it as context")

    shown = {label.name: label for label in screen.labels}
    for entity in schema.entities:
        label = shown.get(entity.name)
        if label is None:
            problems.append(f"entity label {entity.name} is not offered")
            continue
        if label.hotkey != entity.hotkey:
            problems.append(f"entity label {entity.name} shows hotkey {label.hotkey!r}, not {entity.hotkey!r}")
        if label.colour != entity.colour.lower():
            problems.append(f"entity label {entity.name} is coloured {label.colour!r}, not {entity.colour!r}")
    for name in schema.sector_names:
        if name not in screen.choices:
            problems.append(f"sector choice {name} is not offered")

    want = Counter((label, text) for _, _, label, text in regions)
    got = Counter(screen.regions)
    if want - got:
        problems.append(f"pre-annotated regions missing from the regions panel: {sorted((want - got).elements())}")
    if got - want:
        problems.append(f"regions panel shows regions that were not pre-annotated: {sorted((got - want).elements())}")
    if paragraph is not None:
        marked = sorted((h["start"], h["end"], h["label"], h["text"]) for h in paragraph["highlights"])
        if marked != sorted(regions):
            problems.append(f"highlighted spans in the paragraph {marked} are not the pre-annotated {sorted(regions)}")
    return problems


def assert_labelling_screen(screen: Screen, schema: LabelSchema, data: dict,
                            regions: list[tuple[int, int, str, str]]) -> None:
    problems = labelling_screen_problems(screen, schema, data, regions)
    assert not problems, "the labelling screen is not right:\n- " + "\n- ".join(problems)


# --------------------------------------------------------------------------- acting as a person

_CHARACTER_BOXES = """
const [textObject, want, start, end] = arguments;
const el = [...document.querySelectorAll(textObject)].find(e => e.textContent === want);
if (!el) return null;
const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
const range = document.createRange();
let pos = 0, node, started = false;
while ((node = walker.nextNode())) {
  const n = node.data.length;
  if (!started && start < pos + n) { range.setStart(node, start - pos); started = true; }
  if (started && end <= pos + n) { range.setEnd(node, end - pos); break; }
  pos += n;
}
const boxes = range.getClientRects();
const first = boxes[0], last = boxes[boxes.length - 1];
return {x1: first.left, y1: first.top + first.height / 2, x2: last.right, y2: last.top + last.height / 2};
"""


def select_text(driver, text: str, start: int, end: int) -> None:
    """Drag the mouse over characters ``start:end`` of the paragraph, as a person selects words."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    box = driver.execute_script(_CHARACTER_BOXES, TEXT_OBJECT, text, start, end)
    assert box is not None, f"paragraph {text[:40]!r}… not on the page"
    actions = ActionBuilder(driver)
    pointer = actions.pointer_action
    # press 1px left of the first character and let go 1px right of the last one: the caret lands on
    # the nearest character boundary, so each end sits on the span's boundary even for narrow letters
    x1, y1, x2, y2 = (round(box[k]) for k in ("x1", "y1", "x2", "y2"))
    pointer.move_to_location(x1 - 1, y1)
    pointer.pointer_down()
    pointer.move_to_location((x1 + x2) // 2, y2)
    pointer.move_to_location(x2 + 1, y2)
    pointer.pointer_up()
    actions.perform()


def press_key(driver, key: str) -> None:
    """Press one key on the page (Label Studio's hotkeys listen on the document)."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def tick_choice(driver, name: str) -> None:
    """Click a sector's checkbox label with the mouse."""
    from selenium.webdriver.common.by import By

    checkbox = f"{ANNOTATION_AREA} .lsf-choice input[type=checkbox][name='{name}']"
    driver.find_element(By.CSS_SELECTOR, checkbox).find_element(By.XPATH, "./ancestor::label").click()
    wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, checkbox).is_selected(),
             f"sector {name} to be ticked", timeout=10)


def submit(driver) -> None:
    """Press Submit and wait until Label Studio has saved the annotation (the button turns to Update)."""
    from selenium.webdriver.common.by import By

    def buttons(d) -> set[str]:
        return {b.text.strip() for b in d.find_elements(By.CSS_SELECTOR, ".lsf-bottombar button") if b.is_displayed()}

    driver.find_element(By.CSS_SELECTOR, "[data-testid=bottombar-submit-button]").click()
    wait_for(driver, lambda d: "Update" in buttons(d) and "Submit" not in buttons(d),
             "Label Studio to save the annotation (Submit turning to Update)", timeout=30)


def open_instructions(driver) -> str:
    """Click the Instructions button; return the text of the instructions dialog, closed again."""
    from selenium.webdriver.common.by import By

    button = next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Instructions")
    button.click()
    dialog = wait_for(driver, lambda d: [m for m in d.find_elements(By.CSS_SELECTOR, ".lsf-modal-ls__content, "
                                                                        "[class*=modal] [class*=content]")
                                         if m.is_displayed()], "the instructions dialog", timeout=10)
    text = dialog[0].text
    press_key(driver, "\ue00c")  # Escape
    return text


def delete_region(driver, start: int, end: int) -> None:
    """Click a pre-annotated span in the paragraph and press Backspace (Label Studio's "delete region")."""
    from selenium.webdriver.common.by import By

    span = f"{TEXT_OBJECT} .htx-highlight[data-start='{start}'][data-end='{end}']"
    found = driver.find_elements(By.CSS_SELECTOR, span)
    assert found, f"no region at {start}:{end} in the paragraph"
    found[0].click()
    press_key(driver, "\ue003")  # Backspace
    wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, span), f"region {start}:{end} to be deleted",
             timeout=10)
