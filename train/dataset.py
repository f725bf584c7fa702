"""Stage 3: Label Studio exports → a Hugging Face dataset (train / validation / test).

``build_dataset`` refuses exports that ``annotate.check`` finds errors in,
resolves one annotation per task with the merge policy (``annotate.merge``),
tokenizes with the project's tokenizer (``hoptac.tokenizer``: spaCy ``vi``, pyvi), aligns spans to tokens
(``hoptac.train.align``), splits by article (``doc_id``) and writes a folder holding:

- the ``save_to_disk`` dataset (``datasets.load_from_disk(DIR)`` → DatasetDict);
- ``parquet/<split>.parquet``;
- ``README.md``, a dataset card (YAML header with ``dataset_info`` and
  ``configs``; label counts per split, provenance, merge policy, split method,
  alignment report).

Features (other stages rely on these names): ``id`` (para_id), ``doc_id``,
``title``, ``text``, ``tokens``, ``token_starts``, ``token_ends`` (int32 char
offsets), ``ner_tags`` (ClassLabel over the BIO tags), ``spans`` (token-aligned
``{start, end, label, text}``, char offsets into ``text``), ``sectors``
(ClassLabel over the sectors; absent in CoNLL-imported datasets) and
``annotators`` (user ids behind the example). Training and evaluation read the
label names from these features (``dataset_labels``), never from the schema.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hoptac.annotate.check import check_exports
from hoptac.annotate.duplicates import dedupe_tasks
from hoptac.annotate.export import export_files, load_exports
from hoptac.annotate.merge import (
    GROUND_TRUTH,
    MAJORITY_SECTORS,
    check_policy,
    chosen_annotators,
    primary_annotation,
)
from hoptac.train.align import AlignmentReport, align_spans, spans_to_bio, tokenize

from hoptac import __version__
from hoptac.errors import HoptacError
from hoptac.output import atomic_dir, check_output
from hoptac.schema import LabelSchema, bio_tags, load_schema

SPLITS = ("train", "validation", "test")
POLICY_TEXT = {
    GROUND_TRUTH: "per task, the submitted annotation marked ground truth; else the most recent "
                  "(updated_at, then created_at, then id). Cancelled annotations are never used.",
    MAJORITY_SECTORS: "spans from the ground-truth (else most recent) annotation; sectors by vote over "
                      "every submitted annotation, a sector kept when at least half chose it (ties kept).",
}


# ---------------------------------------------------------------- features

def _list(feature):
    try:
        from datasets import List
    except ImportError:  # datasets < 4: a Python list declares a list feature
        return [feature]
    return List(feature)


def make_features(entity_labels: list[str], sector_labels: list[str] | None):
    """The dataset's explicit features; no ``sectors`` column when ``sector_labels`` is None."""
    from datasets import ClassLabel, Features, Value

    columns = {
        "id": Value("string"),
        "doc_id": Value("string"),
        "title": Value("string"),
        "text": Value("string"),
        "tokens": _list(Value("string")),
        "token_starts": _list(Value("int32")),
        "token_ends": _list(Value("int32")),
        "ner_tags": _list(ClassLabel(names=bio_tags(entity_labels))),
        "spans": _list({"start": Value("int32"), "end": Value("int32"),
                        "label": Value("string"), "text": Value("string")}),
    }
    if sector_labels is not None:
        columns["sectors"] = _list(ClassLabel(names=list(sector_labels)))
    columns["annotators"] = _list(Value("int32"))
    return Features(columns)


def class_names(feature) -> list[str]:
    """The names of a list-of-``ClassLabel`` feature (``ner_tags``, ``sectors``); [] for anything else."""
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, (list, tuple)) and feature:
        inner = feature[0]
    return list(getattr(inner, "names", None) or [])


def dataset_labels(dataset) -> tuple[list[str], list[str]]:
    """(entity labels, sector labels or []) read from the features of a dataset, folder or Features."""
    from datasets import Dataset, DatasetDict, Features

    if isinstance(dataset, (str, Path)):
        dataset = load_dataset_dir(Path(dataset))
    if isinstance(dataset, DatasetDict):
        dataset = next(iter(dataset.values()))
    features = dataset if isinstance(dataset, Features) else dataset.features if isinstance(dataset, Dataset) else None
    if features is None or "ner_tags" not in features:
        raise HoptacError("not a hoptac dataset: no 'ner_tags' feature")
    entities = list(dict.fromkeys(tag.split("-", 1)[1] for tag in class_names(features["ner_tags"]) if tag != "O"))
    sectors = class_names(features["sectors"]) if "sectors" in features else []
    return entities, sectors


# ---------------------------------------------------------------- exports → rows

@dataclass
class ExamplesReport:
    files: list[tuple[str, str, int]]  # (path, sha256, tasks)
    policy: str
    entity_labels: list[str]
    sector_labels: list[str]
    tasks: int = 0
    normalised: int = 0  # tasks whose text was normalised (offsets remapped)
    by_title: int = 0  # rows whose article is their data.title (no doc_id, no doc_id:index para_id)
    duplicates: str | None = None  # the note on task copies read once (several pulls)
    left_out: Counter = field(default_factory=Counter)  # reason → tasks
    alignment: AlignmentReport = field(default_factory=AlignmentReport)

    @property
    def features(self):
        return make_features(self.entity_labels, self.sector_labels)

    @property
    def bio_tags(self) -> list[str]:
        return bio_tags(self.entity_labels)

    def left_out_lines(self) -> list[str]:
        return [f"{n} task(s): {reason}" for reason, n in sorted(self.left_out.items())]

    def warnings(self) -> list[str]:
        if not self.by_title:
            return []
        return [f"{self.by_title} row(s) have no data.doc_id and no doc_id:index para_id: grouped into "
                f"articles by data.title (paragraphs of one article must share its title)"]


def examples_from_exports(paths: list[Path], policy: str = GROUND_TRUTH,
                          schema: LabelSchema | None = None) -> tuple[list[dict], ExamplesReport]:
    """One row per task with a submitted annotation (features as in the dataset, no split)."""
    schema = schema or load_schema()
    check_policy(policy)
    files = export_files(paths)
    checked = check_exports(files, schema)
    if checked.errors:
        raise HoptacError(f"{checked.error_summary()} — run `hoptac annotate check` for the full list")
    report = ExamplesReport(files=[(str(f), _sha256(f), 0) for f in files], policy=policy,
                            entity_labels=schema.entity_names, sector_labels=schema.sector_names)
    for name in schema.entity_names:
        report.alignment.label(name)
    tag_index = {tag: k for k, tag in enumerate(report.bio_tags)}
    sector_index = {name: k for k, name in enumerate(schema.sector_names)}
    rows, per_file = [], Counter()
    loaded = load_exports(files)
    per_file.update(task.file for task in loaded)  # every task of every file, duplicates included
    tasks, duplicates = dedupe_tasks(loaded)  # a conflicting copy is refused by the check above
    report.duplicates = duplicates.note()
    for task in tasks:
        report.tasks += 1
        report.normalised += task.normalised
        annotation = primary_annotation(task, policy)
        if annotation is None:
            reason = "only cancelled annotations" if task.annotations else "no annotation"
            report.left_out[reason] += 1
            continue
        if task.doc_id_from == "none":
            raise HoptacError(f"{task.place}: no data.doc_id, no doc_id:index para_id and no data.title: the "
                              f"paragraphs cannot be grouped by article, so an article could be in two splits; "
                              f"give the tasks data.doc_id (or data.title)")
        report.by_title += task.doc_id_from == "title"
        rows.append(_row(task, annotation, policy, report, tag_index, sector_index))
    report.files = [(f, sha, per_file[f]) for f, sha, _ in report.files]
    return rows, report


def _row(task, annotation, policy, report, tag_index, sector_index) -> dict:
    text = task.text
    tokens, starts, ends = tokenize(text)
    spans = [(s.start, s.end, s.label) for s in annotation.spans]
    token_spans = align_spans(text, starts, ends, tokens, spans, report.alignment, where=task.para_id)
    tags = spans_to_bio(len(tokens), token_spans)
    sectors = sorted({sector_index[s] for s in annotation.sectors})
    return {
        "id": task.para_id,
        "doc_id": task.doc_id,
        "title": task.title,
        "text": text,
        "tokens": tokens,
        "token_starts": starts,
        "token_ends": ends,
        "ner_tags": [tag_index[t] for t in tags],
        "spans": [{"start": starts[a], "end": ends[b - 1], "label": label, "text": text[starts[a]:ends[b - 1]]}
                  for a, b, label in token_spans],
        "sectors": sectors,
        "annotators": chosen_annotators(task, policy),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- splits

@dataclass
class SplitPlan:
    splits: dict[str, list[dict]]
    method: str
    grouped: bool


def split_rows(rows: list[dict], dev: float, test: float, seed: int, tries: int = 1000) -> SplitPlan:
    """Articles (``doc_id``) into test, validation and train, never an article in two splits.

    Each split gets its share of the articles (at least one when its share is > 0). Among ``tries``
    shuffles drawn from ``seed`` (deterministic), the one whose splits best keep every label's
    share (paragraphs, entity spans per label, sectors per label) is chosen, a label present in
    the data but absent from hoptac.train costing most. Too few articles for every requested split →
    the same over paragraphs, said in ``method``.
    """
    if dev < 0 or test < 0 or dev + test >= 1:
        raise HoptacError(f"--dev {dev} and --test {test} must be ≥ 0 and leave a share for training")
    shares = {"test": test, "validation": dev}
    needed = 1 + sum(share > 0 for share in shares.values())
    docs = sorted({row["doc_id"] for row in rows})
    tries = max(1, tries)
    choice = (f"of {tries} shuffles drawn with seed {seed}, the one that best keeps each label's share in "
              f"every split (a label missing from hoptac.train costing most, then a label missing from validation or test)")
    if len(docs) >= needed:
        assignment = _balanced_assign(docs, _profiles(rows, "doc_id"), shares, seed, tries)
        splits = {name: [r for r in rows if assignment[r["doc_id"]] == name] for name in SPLITS}
        counts = " / ".join(f"{name} {sum(v == name for v in assignment.values())}" for name in SPLITS)
        method = (f"grouped by article (doc_id): {len(docs)} articles → {counts} articles (shares: "
                  f"validation {dev}, test {test}); {choice}; no article is in two splits")
        return SplitPlan(splits, method, grouped=True)
    assignment = _balanced_assign(sorted({row["id"] for row in rows}), _profiles(rows, "id"), shares, seed, tries)
    splits = {name: [r for r in rows if assignment[r["id"]] == name] for name in SPLITS}
    counts = " / ".join(f"{name} {len(splits[name])}" for name in SPLITS)
    method = (f"paragraph-level (fallback): only {len(docs)} article(s), a split grouped by article needs at "
              f"least {needed}; {len(rows)} paragraphs → {counts} paragraphs; {choice}. Paragraphs of one "
              f"article appear in several splits, so scores on validation/test are optimistic")
    return SplitPlan(splits, method, grouped=False)


def _balanced_assign(units: list[str], profiles: dict[str, Counter], shares: dict[str, float], seed: int,
                     tries: int) -> dict[str, str]:
    rng = random.Random(seed)
    candidates = [_assign(units, shares, rng) for _ in range(tries)]
    return min(candidates, key=lambda a: _imbalance(a, profiles, shares))  # first of equals: deterministic


def _assign(units: list[str], shares: dict[str, float], rng: random.Random) -> dict[str, str]:
    """Shuffle ``units``; test first, then validation (each ≥1 when its share > 0, always leaving
    one unit for training), the rest to train."""
    order = list(units)
    rng.shuffle(order)
    assignment, position = {}, 0
    for name, share in shares.items():
        size = max(1, round(share * len(order))) if share > 0 else 0
        size = max(0, min(size, len(order) - position - 1))
        for unit in order[position:position + size]:
            assignment[unit] = name
        position += size
    for unit in order[position:]:
        assignment[unit] = "train"
    return assignment


def _profiles(rows: list[dict], key: str) -> dict[str, Counter]:
    """Unit (``doc_id`` or paragraph ``id``) → counts of paragraphs, spans per label, sectors per label."""
    profiles: dict[str, Counter] = {}
    for row in rows:
        profile = profiles.setdefault(row[key], Counter())
        profile["paragraphs"] += 1
        profile.update(f"entity:{span['label']}" for span in row["spans"])
        profile.update(f"sector:{k}" for k in row.get("sectors", []))
    return profiles


def _imbalance(assignment: dict[str, str], profiles: dict[str, Counter], shares: dict[str, float]) -> float:
    targets = {"train": 1 - sum(shares.values()), **shares}
    per_split = {name: Counter() for name in targets}
    for doc, split in assignment.items():
        per_split[split].update(profiles[doc])
    totals = Counter()
    for counts in per_split.values():
        totals.update(counts)
    cost = 0.0
    for key, total in totals.items():
        for name, target in targets.items():
            cost += (per_split[name][key] / total - target) ** 2
        if per_split["train"][key] == 0:
            cost += 10.0
        if total >= len(targets):  # frequent enough to appear everywhere: missing from a split costs too
            cost += sum(1.0 for name, target in targets.items() if target > 0 and per_split[name][key] == 0)
    return cost


# ---------------------------------------------------------------- build

@dataclass
class BuildReport:
    out_dir: Path
    examples: ExamplesReport
    plan: SplitPlan
    counts: dict[str, dict]
    seconds: float

    def summary(self) -> str:
        ex = self.examples
        rows = sum(len(v) for v in self.plan.splits.values())
        lines = [f"read {ex.tasks} task(s) from {len(ex.files)} export(s); merge policy: {ex.policy}",
                 f"rows: {rows} (+ {sum(ex.left_out.values())} task(s) left out = {ex.tasks})"]
        lines += [f"  left out: {line}" for line in ex.left_out_lines()]
        if ex.duplicates:
            lines.append(f"note: {ex.duplicates}")
        lines += [f"warning: {line}" for line in ex.warnings()]
        if ex.normalised:
            lines.append(f"normalised text: {ex.normalised} task(s) (NFC, control characters removed…), "
                         f"span offsets remapped")
        lines.append(f"split: {self.plan.method}")
        if not self.plan.grouped:
            lines.append("warning: too few articles for a split grouped by article; fell back to paragraphs")
        lines += ["", split_table(self.counts, ex.entity_labels, ex.sector_labels, _articles(self.plan.splits)), "",
                  "span alignment to pyvi tokens (exact + expanded + dropped = input):", ex.alignment.table(), "",
                  f"wrote {self.out_dir} (save_to_disk + parquet/ + README.md) in {self.seconds:.1f}s"]
        return "\n".join(lines)


def build_dataset(exports: list[Path], out_dir: Path, dev: float = 0.1, test: float = 0.2, seed: int = 0,
                  policy: str = GROUND_TRUTH, force: bool = False) -> BuildReport:
    """Exports → dataset folder. Refuses exports with check errors."""
    began = time.perf_counter()
    out_dir = Path(out_dir)
    check_output(out_dir, kind="folder", inputs=exports, force=force)
    rows, examples = examples_from_exports(exports, policy)
    if not rows:
        raise HoptacError(f"{', '.join(Path(f).name for f, _, _ in examples.files)}: no task has a submitted annotation")
    plan = split_rows(rows, dev, test, seed)
    counts = {name: label_counts(plan.splits[name], examples.entity_labels, examples.sector_labels)
              for name in SPLITS}
    command = " ".join(["hoptac dataset build", *map(str, exports), "-o", str(out_dir), "--dev", str(dev),
                        "--test", str(test), "--seed", str(seed), "--policy", policy])
    body = _export_card(examples, plan, counts, command)
    write_dataset(plan.splits, examples.features, out_dir, body, pretty_name="hoptac: Vietnamese cooperation news "
                  "(entities and sectors)", sectors=True, inputs=exports, force=force,
                  command=command)
    return BuildReport(out_dir, examples, plan, counts, time.perf_counter() - began)


def label_counts(rows: list[dict], entity_labels: list[str], sector_labels: list[str]) -> dict:
    entities = Counter(span["label"] for row in rows for span in row["spans"])
    sectors = Counter(sector_labels[k] for row in rows for k in row.get("sectors", []))
    return {"paragraphs": len(rows), "articles": len({row["doc_id"] for row in rows}),
            "entities": {name: entities[name] for name in entity_labels},
            "sectors": {name: sectors[name] for name in sector_labels}}


def split_table(counts: dict[str, dict], entity_labels: list[str], sector_labels: list[str],
                articles: int, markdown: bool = False) -> str:
    """Counts per split and in total (``articles``: distinct articles over all splits)."""
    names = list(counts)
    rows = [("paragraphs", [counts[s]["paragraphs"] for s in names], sum(c["paragraphs"] for c in counts.values())),
            ("articles", [counts[s]["articles"] for s in names], articles)]
    rows += [(f"entities {n}", [counts[s]["entities"][n] for s in names],
              sum(counts[s]["entities"][n] for s in names)) for n in entity_labels]
    rows += [(f"sector {n}", [counts[s]["sectors"][n] for s in names],
              sum(counts[s]["sectors"][n] for s in names)) for n in sector_labels]
    if markdown:
        lines = ["| | " + " | ".join(names) + " | total |", "| --- |" + " ---: |" * (len(names) + 1)]
        lines += [f"| {k} | " + " | ".join(map(str, v)) + f" | {t} |" for k, v, t in rows]
        return "\n".join(lines)
    width = max(len(k) for k, _, _ in rows) + 2
    lines = [f"{'':<{width}}" + "".join(f"{s:>12}" for s in names) + f"{'total':>10}"]
    lines += [f"{k:<{width}}" + "".join(f"{x:>12}" for x in v) + f"{t:>10}" for k, v, t in rows]
    return "\n".join(lines)


def _articles(splits: dict[str, list[dict]]) -> int:
    return len({row["doc_id"] for rows in splits.values() for row in rows})


def write_dataset(splits: dict[str, list[dict]], features, out_dir: Path, card_body: str, pretty_name: str,
                  sectors: bool, inputs: list[Path] = (), force: bool = False, command: str = "") -> None:
    """Write the DatasetDict (save_to_disk), parquet/<split>.parquet and README.md into ``out_dir``
    (``hoptac.output.atomic_dir``: an older dataset is replaced only once the new one is complete);
    then check it loads back."""
    from datasets import load_from_disk

    with _quiet(), atomic_dir(out_dir, inputs=inputs, force=force, command=command) as tmp:
        _write(splits, features, tmp, card_body, pretty_name, sectors)
    loaded = load_from_disk(str(out_dir))
    if {k: len(v) for k, v in loaded.items()} != {k: len(splits[k]) for k in splits}:
        raise HoptacError(f"{out_dir}: the written dataset does not load back with the same splits")


@contextmanager
def _quiet():
    """No progress bars while writing (the summary says what was written)."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _write(splits, features, folder: Path, card_body: str, pretty_name: str, sectors: bool) -> None:
    from datasets import Dataset, DatasetDict

    dataset = DatasetDict({name: Dataset.from_dict({key: [row[key] for row in rows] for key in features},
                                                   features=features)
                           for name, rows in splits.items()})
    # one shard per split, stated: datasets writes no shard for an empty split, which then fails to load
    dataset.save_to_disk(str(folder), num_shards={name: 1 for name in dataset})
    (folder / "parquet").mkdir()
    for name, split in dataset.items():
        split.to_parquet(str(folder / "parquet" / f"{name}.parquet"))
    (folder / "README.md").write_text(dataset_card(dataset, card_body, pretty_name, sectors), encoding="utf-8")


def dataset_card(dataset, body: str, pretty_name: str, sectors: bool) -> str:
    """A Hugging Face dataset card: YAML header (dataset_info, configs, tags) + the markdown body."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    total = sum(len(split) for split in dataset.values())
    splits = SplitDict()
    for name, split in dataset.items():
        splits.add(SplitInfo(name=name, num_bytes=split.data.nbytes, num_examples=len(split)))
    info = DatasetInfo(features=next(iter(dataset.values())).features, splits=splits,
                       dataset_size=sum(split.data.nbytes for split in dataset.values()))
    card = DatasetCardData(
        language=["vi"], license="unknown", pretty_name=pretty_name,
        task_categories=["token-classification"] + (["text-classification"] if sectors else []),
        task_ids=["named-entity-recognition"] + (["multi-label-classification"] if sectors else []),
        size_categories=["n<1K" if total < 1000 else "1K<n<10K" if total < 10000 else "10K<n<100K"],
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card)
    card["configs"] = [{"config_name": "default",
                        "data_files": [{"split": name, "path": f"parquet/{name}.parquet"} for name in dataset]}]
    return f"---\n{card.to_yaml()}\n---\n\n# {pretty_name}\n\n{body.strip()}\n"


FEATURES_DOC = """\
| feature | type | meaning |
| --- | --- | --- |
| `id` | string | paragraph id (`doc_id:index`) |
| `doc_id` | string | article id; splits never share an article (unless stated below) |
| `title` | string | article title, for context |
| `text` | string | the paragraph |
| `tokens` | list of string | words of hoptac's tokenizer: spaCy `vi`, pyvi segmentation (syllables joined, e.g. "Hà Nội"), glued stops and place + name words split |
| `token_starts`, `token_ends` | list of int32 | character offsets of each token in `text` |
| `ner_tags` | list of ClassLabel | BIO tag per token |
| `spans` | list of {start, end, label, text} | entities aligned to token boundaries, character offsets into `text`; consistent with `ner_tags` |
| `sectors` | list of ClassLabel | sectors of the paragraph (multi-label) |
| `annotators` | list of int32 | Label Studio user ids behind the example |
"""


def _export_card(ex: ExamplesReport, plan: SplitPlan, counts: dict, command: str) -> str:
    import datasets
    import spacy

    files = "\n".join(f"| `{Path(f).name}` | `{sha}` | {n} |" for f, sha, n in ex.files)
    left_out = "\n".join(f"- {line}" for line in ex.left_out_lines()) or "- none"
    rows = sum(len(v) for v in plan.splits.values())
    warnings = "".join(f"\nWarning: {line}.\n" for line in ex.warnings())
    return f"""\
Paragraphs of Vietnamese news about cooperation between localities, annotated in
Label Studio with entity spans ({", ".join(ex.entity_labels)}) and zero or more
sectors per paragraph ({len(ex.sector_labels)} sectors). Built by hoptac `{__version__}`
(`hoptac dataset build`).

## Splits and label counts

{split_table(counts, ex.entity_labels, ex.sector_labels, _articles(plan.splits), markdown=True)}

## Split method

{plan.method}.
{warnings}
## Provenance

Label Studio JSON exports:

| file | sha256 | tasks |
| --- | --- | ---: |
{files}

Command: `{command}`

Software: hoptac {__version__}, datasets {datasets.__version__}, spaCy {spacy.__version__} (`vi` with pyvi, repaired by `hoptac.tokenizer`).

## Merge policy

`{ex.policy}`: {POLICY_TEXT[ex.policy]}

Tasks read: {ex.tasks}{f" ({ex.duplicates})" if ex.duplicates else ""}; rows: {rows}; tasks left out (no submitted annotation):

{left_out}

A submitted annotation with no span and no sector stays, as a real "nothing here" example.

## Span alignment

Spans are aligned to the pyvi tokens: a boundary inside a token is expanded to
the token boundary; a span that then overlaps another one, or covers no word, is
dropped. Per label, input = exact + expanded + dropped.

{ex.alignment.markdown()}

## Features

{FEATURES_DOC}
## Loading

```python
import datasets
ds = datasets.load_from_disk("DATASET_DIR")          # DatasetDict: train / validation / test
ds = datasets.load_dataset("DATASET_DIR")            # from parquet/, via the `configs` above
```
"""


# ---------------------------------------------------------------- reading a dataset folder

def load_dataset_dir(dataset_dir: Path):
    from datasets import DatasetDict, load_from_disk

    dataset_dir = Path(dataset_dir)
    if not (dataset_dir / "dataset_dict.json").is_file():
        raise HoptacError(f"{dataset_dir}: not a dataset folder (no dataset_dict.json); "
                          f"make one with `hoptac dataset build` or `hoptac dataset from-conll`")
    try:
        dataset = load_from_disk(str(dataset_dir))
    except Exception as e:  # a damaged folder: say which, in one line
        raise HoptacError(f"{dataset_dir}: cannot load the dataset ({type(e).__name__}: {e})") from None
    if not isinstance(dataset, DatasetDict):
        raise HoptacError(f"{dataset_dir}: expected a DatasetDict with train/validation/test splits")
    return dataset


def load_split(dataset_dir: Path, split: str):
    """One split (``train``, ``validation`` or ``test``) of a dataset folder."""
    dataset = load_dataset_dir(dataset_dir)
    if split not in dataset:
        raise HoptacError(f"{dataset_dir}: no split {split!r} (has {', '.join(dataset)})")
    return dataset[split]


def stats_table(dataset_dir: Path) -> str:
    """Paragraphs, articles, entities per label and sectors per split."""
    dataset = load_dataset_dir(Path(dataset_dir))
    entities, sectors = dataset_labels(dataset)
    splits = {}
    for name, split in dataset.items():
        sector_column = split["sectors"] if "sectors" in split.column_names else [[]] * len(split)
        splits[name] = [{"doc_id": d, "spans": s, "sectors": c}
                        for d, s, c in zip(split["doc_id"], split["spans"], sector_column)]
    counts = {name: label_counts(rows, entities, sectors) for name, rows in splits.items()}
    return f"{dataset_dir}\n" + split_table(counts, entities, sectors, _articles(splits))
