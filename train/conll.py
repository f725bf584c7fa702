"""Stage 3: BIO CoNLL files ⇄ the hoptac dataset format.

Reading (``hoptac dataset from-conll``): one token per line, its tag in the
last whitespace-separated column (extra middle columns, e.g. POS, are
ignored); a blank line ends a sentence; ``-DOCSTART-`` lines separate
documents. ``_`` inside a token joins syllables ("Hà_Nội" → token "Hà Nội");
a token made only of underscores stays as it is. The text of a sentence is
its tokens joined by single spaces, and offsets are computed from it. The
label set is every label found in the tags of all files (sorted); there is
no ``sectors`` column.

Tags must be BIO (IOB2): ``O``, ``B-LABEL``, ``I-LABEL``, where an ``I-LABEL``
continues a ``B-``/``I-LABEL`` of the same label. Anything else (a line with
one column, ``E-``/``S-``/``U-``/``L-`` tags, a bare ``B-``, an ``I-`` opening an
entity as in IOB1) is an error naming ``file:line``: the round trip
CoNLL → dataset → CoNLL then reproduces tokens and tags exactly.

Writing (``hoptac dataset to-conll``): one ``<split>.conll`` per non-empty
split; whitespace inside a token becomes ``_``; whitespace-only tokens (runs
of spaces in the text) are left out; when articles hold several paragraphs,
each article starts with a ``-DOCSTART- O`` line.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hoptac.train.align import bio_to_spans
from hoptac.train.dataset import (
    FEATURES_DOC,
    _articles,
    dataset_labels,
    label_counts,
    load_dataset_dir,
    make_features,
    split_table,
    write_dataset,
)

from hoptac import __version__
from hoptac.errors import HoptacError
from hoptac.output import atomic_dir, check_output
from hoptac.schema import bio_tags

DOCSTART = "-DOCSTART-"
_LABEL = re.compile(r"^[^\s]+$")


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    line: int  # first line of the sentence
    doc: int  # document number (DOCSTART count)


@dataclass
class ConllFile:
    path: Path
    sentences: list[Sentence] = field(default_factory=list)
    documents: bool = False  # had -DOCSTART- lines
    sha256: str = ""


def read_conll(path: Path) -> ConllFile:
    """Sentences of a BIO CoNLL file; an error names ``file:line``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HoptacError(f"{path}: no such file") from None
    except OSError as e:
        raise HoptacError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise HoptacError(f"{path}:{line}: not UTF-8 (invalid byte 0x{data[e.start]:02x})") from None
    result = ConllFile(path=path, sha256=hashlib.sha256(data).hexdigest())
    tokens: list[str] = []
    tags: list[str] = []
    first_line, doc = 0, 0

    def close() -> None:
        nonlocal tokens, tags
        if tokens:
            result.sentences.append(Sentence(tokens, tags, first_line, doc))
        tokens, tags = [], []

    for number, line in enumerate(text.splitlines(), start=1):
        columns = line.split()
        if not columns:
            close()
            continue
        if columns[0] == DOCSTART:
            close()
            result.documents = True
            doc += 1
            continue
        if len(columns) < 2:
            raise HoptacError(f"{path}:{number}: expected a token and a tag separated by whitespace, "
                              f"got one column {line.strip()!r}")
        tag = columns[-1]
        _check_tag(path, number, tag, tags[-1] if tags else "O")
        if not tokens:
            first_line = number
        tokens.append(columns[0])
        tags.append(tag)
    close()
    if not result.sentences:
        raise HoptacError(f"{path}: no sentence (expected lines of 'token tag', blank lines between sentences)")
    return result


def _check_tag(path: Path, number: int, tag: str, previous: str) -> None:
    if tag == "O":
        return
    prefix, dash, label = tag.partition("-")
    if prefix not in ("B", "I") or not dash or not label or not _LABEL.match(label):
        raise HoptacError(f"{path}:{number}: tag {tag!r} is not BIO (expected O, B-LABEL or I-LABEL)")
    if prefix == "I" and previous[2:] != label:
        raise HoptacError(f"{path}:{number}: tag {tag!r} does not continue a {label} entity (previous tag "
                          f"{previous!r}); start entities with B-{label} (IOB1 files: convert to BIO first)")


def token_from_conll(token: str) -> str:
    return token if not token.strip("_") else token.replace("_", " ")


def token_to_conll(token: str) -> str:
    return re.sub(r"\s", "_", token)


def sentence_row(sentence: Sentence, row_id: str, doc_id: str, tag_index: dict[str, int]) -> dict:
    tokens = [token_from_conll(t) for t in sentence.tokens]
    starts, ends, position = [], [], 0
    for token in tokens:
        starts.append(position)
        ends.append(position + len(token))
        position += len(token) + 1
    text = " ".join(tokens)
    spans = [{"start": starts[a], "end": ends[b - 1], "label": label, "text": text[starts[a]:ends[b - 1]]}
             for a, b, label in bio_to_spans(sentence.tags)]
    return {"id": row_id, "doc_id": doc_id, "title": "", "text": text, "tokens": tokens,
            "token_starts": starts, "token_ends": ends, "ner_tags": [tag_index[t] for t in sentence.tags],
            "spans": spans, "annotators": []}


def dataset_from_conll(train: Path, out_dir: Path, dev: Path | None = None, test: Path | None = None,
                       force: bool = False) -> ConllImport:
    """CoNLL files → dataset folder (train / validation / test)."""
    given = {"train": train, "validation": dev, "test": test}
    inputs = [Path(p) for p in given.values() if p is not None]
    check_output(out_dir, kind="folder", inputs=inputs, force=force)
    files = {split: read_conll(Path(p)) for split, p in given.items() if p is not None}
    labels = sorted({tag[2:] for f in files.values() for s in f.sentences for tag in s.tags if tag != "O"})
    if not labels:
        raise HoptacError(f"{train}: no entity tag in any file (all tags are O)")
    features = make_features(labels, None)
    tag_index = {tag: k for k, tag in enumerate(bio_tags(labels))}
    stems = Counter(f.path.stem for f in files.values())
    splits: dict[str, list[dict]] = {name: [] for name in given}
    for split, conll in files.items():
        stem = conll.path.stem if stems[conll.path.stem] == 1 else f"{split}-{conll.path.stem}"
        for i, sentence in enumerate(conll.sentences):
            row_id = f"{stem}:{i}"
            doc_id = f"{stem}:doc{sentence.doc}" if conll.documents else row_id
            splits[split].append(sentence_row(sentence, row_id, doc_id, tag_index))
    counts = {name: label_counts(rows, labels, []) for name, rows in splits.items()}
    command = " ".join(["hoptac dataset from-conll", "--train", str(train), "-o", str(out_dir)]
                       + (["--dev", str(dev)] if dev else []) + (["--test", str(test)] if test else []))
    body = _conll_card(files, labels, counts, _articles(splits), command)
    out_dir = Path(out_dir)
    write_dataset(splits, features, out_dir, body, pretty_name=f"{train_name(train)} (BIO CoNLL import)",
                  sectors=False, inputs=inputs, force=force, command=command)
    return ConllImport(out_dir, {split: (f.path, len(f.sentences), sum(len(s.tokens) for s in f.sentences))
                                 for split, f in files.items()},
                       [split for split in given if split not in files], labels, counts, _articles(splits))


@dataclass
class ConllImport:
    """What ``hoptac dataset from-conll`` read and wrote."""

    out_dir: Path
    files: dict[str, tuple[Path, int, int]]  # split → (file, sentences, tokens)
    empty_splits: list[str]  # splits with no file
    labels: list[str]  # from the tags
    counts: dict[str, dict]  # split → label_counts
    articles: int

    def summary(self) -> str:
        lines = [f"{split}: {sentences} sentence(s), {tokens} token(s) from {path}"
                 for split, (path, sentences, tokens) in self.files.items()]
        lines += [f"{split}: no file, empty split" for split in self.empty_splits]
        lines += [f"labels (from the tags): {', '.join(self.labels)}", "",
                  split_table(self.counts, self.labels, [], self.articles), "", f"wrote {self.out_dir}"]
        return "\n".join(lines)


@dataclass
class ConllExport:
    """What ``hoptac dataset to-conll`` wrote: per split, (file or None when empty, sentences, tokens, skipped)."""

    out_dir: Path
    splits: dict[str, tuple[Path | None, int, int, int]]

    def summary(self) -> str:
        lines = []
        for split, (path, sentences, tokens, skipped) in self.splits.items():
            if path is None:
                lines.append(f"{split}: empty, no file written")
                continue
            lines.append(f"{split}: {sentences} sentence(s), {tokens} token(s) → {path}"
                         + (f" ({skipped} paragraph(s) without a word left out)" if skipped else ""))
        return "\n".join(lines)


def train_name(path: Path) -> str:
    return Path(path).stem


def _conll_card(files: dict[str, ConllFile], labels: list[str], counts: dict, articles: int, command: str) -> str:
    table = "\n".join(f"| {split} | `{f.path.name}` | `{f.sha256}` | {len(f.sentences)} |" for split, f in files.items())
    features = "\n".join(line for line in FEATURES_DOC.splitlines() if "`sectors`" not in line)
    return f"""\
Sentences imported from BIO CoNLL files by hoptac `{__version__}`. Entity labels
(from the tags found in the files): {", ".join(labels)}. No sector labels.

## Splits and label counts

{split_table(counts, labels, [], articles, markdown=True)}

## Provenance

| split | file | sha256 | sentences |
| --- | --- | --- | ---: |
{table}

Command: `{command}`

Each sentence is one row. The text is the tokens joined by single spaces
(`_` inside a token stands for a space: "Hà_Nội" → "Hà Nội"); offsets are
computed from it. `doc_id` is the `-DOCSTART-` document when the file has
them, else the sentence itself. Splits come from the files as given (no
re-splitting); `title` is empty and `annotators` is empty.

## Features

{features}
"""


def dataset_to_conll(dataset_dir: Path, out_dir: Path, force: bool = False) -> ConllExport:
    """Each non-empty split → ``<split>.conll`` in the folder ``out_dir`` (written whole)."""
    out_dir = Path(out_dir)
    check_output(out_dir, kind="folder", inputs=[dataset_dir], force=force)
    dataset = load_dataset_dir(Path(dataset_dir))
    dataset_labels(dataset)  # a hoptac dataset: has ner_tags
    result = ConllExport(out_dir, {})
    with atomic_dir(out_dir, inputs=[dataset_dir], force=force,
                    command=f"hoptac dataset to-conll {dataset_dir} -o {out_dir}") as folder:
        for split, data in dataset.items():
            if len(data) == 0:
                result.splits[split] = (None, 0, 0, 0)
                continue
            names = bio_tags(dataset_labels(data)[0])
            sentences, tokens_written, skipped = _write_split(folder / f"{split}.conll", data, names)
            result.splits[split] = (out_dir / f"{split}.conll", sentences, tokens_written, skipped)
    return result


def _write_split(path: Path, data, names: list[str]) -> tuple[int, int, int]:
    doc_sizes = Counter(data["doc_id"])
    with_docs = any(n > 1 for n in doc_sizes.values())
    sentences = tokens_written = skipped = 0
    previous_doc = None
    with open(path, "w", encoding="utf-8") as out:
        for row in data:
            pairs = [(token_to_conll(tok), names[tag]) for tok, tag in zip(row["tokens"], row["ner_tags"])
                     if tok.strip()]
            if not pairs:
                skipped += 1
                continue
            if with_docs and row["doc_id"] != previous_doc:
                out.write(f"{DOCSTART} O\n\n")
                previous_doc = row["doc_id"]
            out.writelines(f"{tok} {tag}\n" for tok, tag in pairs)
            out.write("\n")
            sentences += 1
            tokens_written += len(pairs)
    return sentences, tokens_written, skipped
