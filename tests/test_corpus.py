"""Stage 1: `hoptac corpus build` — formats, normalisation, stable ids, bad input, counts."""

from __future__ import annotations

import gzip
import json
import unicodedata
from pathlib import Path

import pytest
from conftest import GOLD_EXPORT, NEWS, SEED_TEXT, hoptac
from hoptac.corpus.read import normalise, split_paragraphs
from hoptac.corpus.text import normalise_with_offsets
from hypothesis import given, settings
from hypothesis import strategies as st


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def build(tmp_path: Path, *inputs) -> tuple:
    out = tmp_path / "out.jsonl"
    result = hoptac("corpus", "build", *inputs, "-o", out)
    return result, out


def test_seed_folder_gives_one_line_per_paragraph(tmp_path):
    result, out = build(tmp_path, SEED_TEXT.parent.parent)  # seeds/: articles/ and annotations/
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out)
    lines = [l for l in SEED_TEXT.read_text(encoding="utf-8").split("\n") if l.strip()]
    assert [r["text"] for r in rows] == lines
    assert [r["index"] for r in rows] == list(range(len(lines)))
    assert {r["title"] for r in rows} == {lines[0]}
    assert rows[0]["id"] == "hanoi-vi-ca-nuoc:0" and rows[0]["doc_id"] == "hanoi-vi-ca-nuoc"
    # the annotation JSON in seeds/annotations/ is not an article: ignored and listed
    assert "seeds/annotations/hanoi-vi-ca-nuoc.json" in result.stdout
    assert f"paragraphs: {len(lines)}" in result.stdout


def test_ids_are_stable_across_runs(tmp_path):
    first = build(tmp_path / "a", SEED_TEXT)[1]
    second = build(tmp_path / "b", SEED_TEXT)[1]
    assert first.read_bytes() == second.read_bytes()
    ids = [r["id"] for r in read_jsonl(first)]
    assert len(ids) == len(set(ids))


def test_nfd_input_is_normalised_to_nfc(tmp_path):
    title = "Hà Nội – Đà Nẵng đẩy mạnh hợp tác"
    body = "Thành phố Hồ Chí Minh\tvà tỉnh Bạc Liêu\x07 ký kết"
    src = tmp_path / "nfd.txt"
    src.write_text(unicodedata.normalize("NFD", f"{title}\r\n\r\n{body}\r\n"), encoding="utf-8")
    result, out = build(tmp_path, src)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out)
    assert [r["text"] for r in rows] == [title, "Thành phố Hồ Chí Minh và tỉnh Bạc Liêu ký kết"]
    assert all(unicodedata.is_normalized("NFC", r["text"]) for r in rows)


def test_jsonl_and_gzip(tmp_path):
    records = [{"id": "a1", "title": "T1", "text": "T1\nP một\n\nP hai"},
               {"id": "a2", "title": "T2", "text": "T2"}]
    plain = tmp_path / "x.jsonl"
    plain.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    packed = tmp_path / "y.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"id": 7, "title": "G", "text": "G\nđoạn"}, ensure_ascii=False) + "\n")
    result, out = build(tmp_path, plain, packed)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a1:0", "a1:1", "a1:2", "a2:0", "7:0", "7:1"]
    assert rows[2]["text"] == "P hai" and rows[2]["title"] == "T1"
    assert "documents:  3" in result.stdout and "paragraphs: 6" in result.stdout


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("latin1.txt", "Hà Nội\nxin chào".encode("cp1258", errors="replace") + b"\xe0\xff", "not UTF-8"),
        ("blob.txt", b"PK\x03\x04\x00\x00binary", "binary file"),
        ("bad.jsonl", b'{"id": "a", "text": "ok"}\n{"id": "b", "text": \n', "bad.jsonl:2: malformed JSON"),
        ("noid.jsonl", b'{"title": "x", "text": "x"}\n', "noid.jsonl:1: record has no 'id'"),
        ("dup.jsonl", b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "already used at"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, name, content, expected):
    src = tmp_path / name
    src.write_bytes(content)
    result, out = build(tmp_path, src)
    assert result.returncode == 2
    assert expected in result.stderr
    assert str(src) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not out.exists()


def test_non_utf8_error_names_byte_offset(tmp_path):
    src = tmp_path / "x.txt"
    src.write_bytes("Hà Nội\n".encode() + b"abc\xff")
    result, _ = build(tmp_path, src)
    offset = len("Hà Nội\n".encode()) + 3
    assert f"byte offset {offset}" in result.stderr


def test_missing_path(tmp_path):
    result, _ = build(tmp_path, tmp_path / "nope.txt")
    assert result.returncode == 2 and "nope.txt: no such file or directory" in result.stderr


def test_empty_files_are_skipped_with_warning_and_counted(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.txt").write_text("\n \n", encoding="utf-8")
    (tmp_path / "in" / "ok.txt").write_text("Tiêu đề\nĐoạn", encoding="utf-8")
    (tmp_path / "in" / "notes.md").write_text("ignored", encoding="utf-8")
    result, out = build(tmp_path, tmp_path / "in")
    assert result.returncode == 0
    assert "warning: skipped" in result.stderr and "empty.txt: empty file" in result.stderr
    assert "skipped:    1" in result.stdout and "notes.md" in result.stdout
    assert len(read_jsonl(out)) == 2


def reference_normalise(text: str) -> str:
    """The rules of hoptac/corpus/text.py's docstring, written out another way."""
    breaks = {c for c in map(chr, range(0x3000)) if len(f"a{c}b".splitlines()) == 2} | {"\u2028", "\u2029"}
    out = "".join(" " if c == "\t" or c in breaks
                  else "" if unicodedata.category(c) == "Cc" or c in "\u200b\u00ad\u200c\u200d\u2060\ufeff"
                  else c for c in text)
    return unicodedata.normalize("NFC", out)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from(
    "\t\r\x0b\x0c\x85\u2028\u2029\u200b\u200c\u200d\u00ad\ufeff\u2060 a"), max_size=80))
def test_normalise_changes_only_controls_breaks_and_invisibles(text):
    out = normalise(text)
    assert unicodedata.is_normalized("NFC", out)
    assert not any(unicodedata.category(c) == "Cc" for c in out)
    assert out == reference_normalise(text)


@given(st.lists(st.text(alphabet="aàá ẠbĐ\t", max_size=10), max_size=8))
def test_split_paragraphs_keeps_every_non_empty_line(lines):
    assert split_paragraphs("\n".join(lines)) == [normalise(l) for l in lines if normalise(l).strip()]


@pytest.mark.slow
def test_news_corpus_counts_add_up(tmp_path):
    result, out = build(tmp_path, NEWS)
    assert result.returncode == 0, result.stderr
    assert "documents:  29996" in result.stdout
    with open(out, encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    assert f"paragraphs: {lines}" in result.stdout


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_offset_maps_are_monotonic_and_cover_both_texts(text):
    norm = normalise_with_offsets(text)
    assert norm.text == normalise(text)
    starts = [norm.start(i) for i in range(len(text) + 1)]
    ends = [norm.end(i) for i in range(len(text) + 1)]
    assert starts == sorted(starts) and ends == sorted(ends)
    assert starts[0] == ends[0] == 0 and starts[-1] == ends[-1] == len(norm.text)
    assert all(s <= e for s, e in zip(starts, ends))
    for j in range(len(norm.text)):  # every normalised character comes from a non-empty original piece
        assert 0 <= norm.orig_start(j) < norm.orig_end(j + 1) <= len(text)


# every Vietnamese letter, in both cases and with each of the five tone marks, precomposed
VI_LETTERS = sorted({unicodedata.normalize("NFC", v + tone) for base in "aăâeêioôơuưy"
                     for v in (base, base.upper()) for tone in ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")}
                    | set("bcdđghklmnpqrstvxBCDĐGHKLMNPQRSTVX .,0"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=VI_LETTERS, max_size=40))
def test_decomposed_vietnamese_maps_exactly_to_its_nfc(nfc):
    nfd = unicodedata.normalize("NFD", nfc)
    to_nfd = [0]
    for c in nfc:
        to_nfd.append(to_nfd[-1] + len(unicodedata.normalize("NFD", c)))
    norm = normalise_with_offsets(nfd)
    assert norm.text == nfc
    assert [norm.start(o) for o in to_nfd] == [norm.end(o) for o in to_nfd] == list(range(len(nfc) + 1))
    assert [norm.orig_end(j) for j in range(len(nfc) + 1)] == to_nfd


# ---------------------------------------------------------------- line breaks and invisible characters

@pytest.mark.parametrize("sep", ["\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\x1c", "\r\n"])
def test_every_line_break_of_splitlines_ends_a_paragraph(tmp_path, sep):
    src = tmp_path / "a.txt"
    src.write_text(f"Tiêu đề{sep}Hà Nội{sep}Hải Phòng\n", encoding="utf-8")
    record = tmp_path / "r.jsonl"
    record.write_text(json.dumps({"id": "r", "text": f"Tiêu đề{sep}Hà Nội{sep}Hải Phòng"}) + "\n", encoding="utf-8")
    result, out = build(tmp_path, src, record)
    assert result.returncode == 0, result.stderr
    assert [r["text"] for r in read_jsonl(out)] == ["Tiêu đề", "Hà Nội", "Hải Phòng"] * 2


@pytest.mark.parametrize("raw, expected", [
    ("Nga \u200b\u200bvào năm", "Nga vào năm"),        # ZWSP: removed (news corpus: next to a space…
    ("sứ Nga tại L\u200biên hợp quốc", "sứ Nga tại Liên hợp quốc"),  # …or inside a word)
    ("tuyên tr\u200buyền\u200b", "tuyên truyền"),
    ("tăng cư\u00adờng", "tăng cường"),                 # soft hyphen: removed (news corpus: inside syllables)
    ("Tỉnh Bắc\u00adNinh", "Tỉnh BắcNinh"),            # the word as shown
    ("in\u00adter\u00adnet", "internet"),
    ("Hà\u200dNội", "HàNội"),                         # ZWJ: removed
    ("Hà\u200cNội", "HàNội"),                         # ZWNJ: removed
    ("\ufeffHà Nội\ufeff", "Hà Nội"),                 # BOM / ZWNBSP: removed
    ("Hà\u2060Nội", "HàNội"),                         # word joiner: removed
])
def test_each_invisible_character(tmp_path, raw, expected):
    assert normalise(raw) == expected
    src = tmp_path / "a.txt"
    src.write_text(f"Tiêu đề\n{raw}\n", encoding="utf-8")
    result, out = build(tmp_path, src)
    assert result.returncode == 0, result.stderr
    assert read_jsonl(out)[1]["text"] == expected


def test_line_break_characters_are_those_of_splitlines():
    from hoptac.corpus.text import LINE_BREAKS

    assert {c for c in map(chr, range(0x110000)) if len(f"a{c}b".splitlines()) == 2} == set(LINE_BREAKS)


# ---------------------------------------------------------------- inputs never skipped without a word

def articles(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


def assert_one_error_line(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hoptac: error: ") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_symlinked_folder_is_followed(tmp_path):
    outside = articles(tmp_path / "outside", b="Tiêu đề B\nđoạn")
    inside = articles(tmp_path / "in", a="Tiêu đề A\nđoạn")
    (inside / "linked").symlink_to(outside, target_is_directory=True)
    result, out = build(tmp_path, inside)
    assert result.returncode == 0, result.stderr
    assert [r["doc_id"] for r in read_jsonl(out)] == ["a", "a", "b", "b"]
    assert "skipped:    0" in result.stdout


def test_symlink_loop_is_a_named_counted_skip(tmp_path):
    inside = articles(tmp_path / "in", a="Tiêu đề A\nđoạn")
    (inside / "sub").mkdir()
    (inside / "sub" / "up").symlink_to(inside, target_is_directory=True)
    (inside / "again.txt").symlink_to(inside / "a.txt")
    result, out = build(tmp_path, inside)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out)) == 2
    assert "skipped:    2" in result.stdout
    assert f"{inside / 'sub' / 'up'}: symbolic link loop" in result.stderr
    assert f"{inside / 'again.txt'}: same file as {inside / 'a.txt'}" in result.stderr


def test_broken_symlink_is_an_error(tmp_path):
    inside = articles(tmp_path / "in", a="Tiêu đề A\nđoạn")
    (inside / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    result, out = build(tmp_path, inside)
    assert_one_error_line(result, f"{inside / 'gone.txt'}: broken symbolic link")
    assert not out.exists()


def test_unreadable_folder_and_file_are_one_line_errors(tmp_path, monkeypatch):
    """Permissions cannot be taken from root (the tests may run as root): the OS refusal is simulated."""
    import os as os_module

    from hoptac.corpus import read as read_module

    from hoptac.errors import HoptacError

    inside = articles(tmp_path / "in", a="Tiêu đề A\nđoạn")
    articles(inside / "locked", b="Tiêu đề B\nđoạn")
    real_scandir = os_module.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(read_module.os, "scandir", scandir)
    with pytest.raises(HoptacError, match=r"in/locked: cannot read folder \(Permission denied\)$"):
        list(read_module.read_paragraphs([inside]))
    monkeypatch.setattr(read_module.os, "scandir", real_scandir)
    real_read_bytes = Path.read_bytes

    def read_bytes(self):
        if self.name == "b.txt":
            raise PermissionError(13, "Permission denied")
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(HoptacError, match=r"locked/b.txt: cannot read \(Permission denied\)$"):
        list(read_module.read_paragraphs([inside]))


def test_json_file_named_directly_is_refused_with_a_hint(tmp_path):
    result, out = build(tmp_path, GOLD_EXPORT)
    assert_one_error_line(result, str(GOLD_EXPORT), "Label Studio export", "hoptac dataset build")
    assert not out.exists()


@pytest.mark.parametrize("content", [{}, {"notes.md": "x"}])
def test_folder_without_articles_is_an_error(tmp_path, content):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in content.items():
        (folder / name).write_text(text)
    result, out = build(tmp_path, folder)
    assert_one_error_line(result, f"{folder}: folder holds no article file")
    assert not out.exists()


def test_nothing_read_at_all_is_an_error(tmp_path):
    src = articles(tmp_path / "in", empty=" \n\n") / "empty.txt"
    result, out = build(tmp_path, src)
    assert_one_error_line(result, "no article read", "empty.txt: empty file")
    assert not out.exists()


def test_corpus_build_of_a_corpus_gives_the_same_corpus(tmp_path):
    first = build(tmp_path / "a", SEED_TEXT, news_head(tmp_path))[1]
    result, again = build(tmp_path / "b", first)
    assert result.returncode == 0, result.stderr
    assert again.read_bytes() == first.read_bytes()
    rows = read_jsonl(first)
    assert f"documents:  {len({r['doc_id'] for r in rows})}" in result.stdout
    assert f"paragraphs: {len(rows)}" in result.stdout
    # a part of a corpus keeps its ids, indexes and titles
    part = tmp_path / "part.jsonl"
    part.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows if r["index"] % 2), encoding="utf-8")
    result, out = build(tmp_path / "c", part)
    assert result.returncode == 0, result.stderr
    assert read_jsonl(out) == [r for r in rows if r["index"] % 2]


def news_head(tmp_path: Path, n: int = 5) -> Path:
    """The first ``n`` articles of the news corpus (read in place), as a JSONL file."""
    out = tmp_path / "news-head.jsonl"
    with gzip.open(NEWS, "rt", encoding="utf-8") as f:
        out.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return out


def test_corpus_records_out_of_order_or_with_foreign_ids_are_errors(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text('{"id": "d:1", "doc_id": "d", "index": 1, "title": "T", "text": "x"}\n'
                   '{"id": "d:0", "doc_id": "d", "index": 0, "title": "T", "text": "T"}\n', encoding="utf-8")
    assert_one_error_line(build(tmp_path, src)[0], f"{src}:2:", "index 0, not after index 1")
    src.write_text('{"id": "other", "doc_id": "d", "index": 0, "title": "T", "text": "T"}\n', encoding="utf-8")
    assert_one_error_line(build(tmp_path, src)[0], f"{src}:1:", "'other' is not doc_id:index")


def test_progress_shows_on_a_terminal_and_stays_quiet_otherwise(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    quiet = hoptac("corpus", "build", SEED_TEXT, "-o", tmp_path / "a.jsonl")
    assert quiet.returncode == 0 and quiet.stderr == ""  # a pipe gets no progress bar
    leader, follower = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "hoptac.cli", "corpus", "build", SEED_TEXT, "-o", tmp_path / "b.jsonl"],
                          stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    shown = b""
    try:
        while chunk := os.read(leader, 65536):
            shown += chunk
    except OSError:  # the other end is closed
        pass
    os.close(leader)
    assert proc.returncode == 0
    assert b"corpus: " in shown and b"paragraphs" in shown
