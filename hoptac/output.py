"""Every ``-o`` of every command goes through here: nothing lost, nothing overwritten.

The rules, in the order they are checked (all before any work starts):

1. **Never over an input.** An output that is an input, lies inside an input
   folder, or (for a folder) holds an input, is refused.
2. **Never over a user's data.** An existing *folder* is replaced only when
   hoptac wrote it (it holds :data:`MARK`, or it is a hoptac model: a spaCy
   pipeline whose ``meta.json`` has a ``hoptac`` section) or when it is empty.
   An existing *file* is replaced only when it is empty or is the kind of file
   the command writes (:data:`KINDS`: a corpus, predictions, Label Studio
   tasks, a labelling config, a hoptac wheel). Anything else is refused with a
   one-line error, unless the command is given ``--force``.
3. **Never a special file.** A symlink is written through: its target is
   replaced and the link stays. A FIFO, a device node or a socket is refused.
4. **Checked early.** The output's folder must exist or be creatable, and be
   writable, before the command reads its first input.
5. **Atomic.** Outputs are written to a unique temporary name in the target
   folder (``.NAME.XXXX.part``), synced, then renamed over the target: a crash,
   a full disk, Ctrl-C or SIGTERM leaves the previous output as it was and no
   temporary file behind. New files and folders get the usual permissions
   (``umask``); a replaced file keeps its mode.

:func:`atomic_file` and :func:`atomic_dir` apply all five; :func:`check_output`
applies 1–4 for a command that writes later (or several outputs at once).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from hoptac import __version__
from hoptac.errors import HoptacError

MARK = ".hoptac-output.json"  # written into every folder hoptac creates as an output
FORCE_HINT = "choose another -o, or pass --force to replace it"
FORCE_HELP = "Replace an existing output that hoptac did not write (never an input)."


# ---------------------------------------------------------------- what a file of each kind looks like

def _first_json_line(path: Path) -> dict | None:
    with open(path, "rb") as f:
        line = f.readline(1 << 20)
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _is_jsonl_with(*keys: str) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        record = _first_json_line(path)
        return record is not None and all(k in record for k in keys)
    return check


def _is_tasks(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(1 << 16).lstrip()
    return head.startswith(b"[") and (head[1:].lstrip().startswith(b"]") or b'"data"' in head)


def _is_labelling_config(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(64).lstrip().startswith(b"<View")


def _is_wheel(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith(".dist-info/METADATA") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


# kind → how to recognise an existing file of that kind (one the command may replace)
KINDS: dict[str, Callable[[Path], bool]] = {
    "corpus": _is_jsonl_with("id", "doc_id", "index", "text"),
    "predictions": _is_jsonl_with("id", "doc_id", "entities"),
    "tasks": _is_tasks,
    "labelling config": _is_labelling_config,
    "wheel": _is_wheel,
    "text": lambda path: False,  # a report or log: only an empty file, or --force
}


# ---------------------------------------------------------------- checks

def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _check_inputs(path: Path, inputs: Iterable[str | Path], folder: bool) -> None:
    target = _resolved(path)
    for given in inputs:
        source = _resolved(Path(given))
        if target == source:
            raise HoptacError(f"{path}: the output would overwrite the input {given}")
        if source.is_dir() and _inside(target, source):
            raise HoptacError(f"{path}: the output is inside the input folder {given} "
                              f"(the next run would read it back); write it elsewhere")
        if folder and _inside(source, target):
            raise HoptacError(f"{path}: the output folder holds the input {given}; write it elsewhere")


def _check_writable_parent(path: Path) -> None:
    parent = path.parent
    while not parent.exists():  # the first folder that exists must let us create the rest
        parent = parent.parent
    if not parent.is_dir():
        raise HoptacError(f"{path}: cannot write here ({parent} is not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise HoptacError(f"{path}: cannot write here (no write permission in {parent})")


def is_hoptac_folder(path: Path) -> bool:
    """Whether ``path`` is a folder hoptac wrote: its mark, or (written before the mark existed)
    a hoptac model, a hoptac dataset, or a ``hoptac run`` folder holding such a model."""
    if (path / MARK).is_file():
        return True
    return _is_hoptac_model(path) or _is_hoptac_dataset(path) or (
        (path / "corpus.jsonl").is_file() and _is_hoptac_model(path / "model"))


def _is_hoptac_model(path: Path) -> bool:
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "hoptac" in meta and (path / "config.cfg").is_file()


def _is_hoptac_dataset(path: Path) -> bool:
    try:
        card = (path / "README.md").read_text(encoding="utf-8")[:4096]
    except (OSError, UnicodeDecodeError):
        return False
    return (path / "dataset_dict.json").is_file() and "hoptac" in card


def check_output(path: str | Path, *, kind: str, inputs: Iterable[str | Path] = (), force: bool = False) -> Path:
    """Apply rules 1–4 to the output ``path`` of ``kind`` (``"folder"`` or a key of :data:`KINDS`).

    Returns the path to write: ``path`` itself, or a symlink's target.
    """
    path = Path(path)
    folder = kind == "folder"
    if not folder and kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    _check_inputs(path, inputs, folder)
    if path.is_symlink():
        target = _resolved(path)
        if not target.exists() and not target.parent.is_dir():
            raise HoptacError(f"{path}: a link to {target}, whose folder does not exist")
        path = target
    if path.exists():
        mode = path.stat().st_mode
        if folder:
            if not stat.S_ISDIR(mode):
                raise HoptacError(f"{path}: exists and is not a folder; {FORCE_HINT}" if not force
                                  else f"{path}: exists and is not a folder")
            if not force and any(path.iterdir()) and not is_hoptac_folder(path):
                raise HoptacError(f"{path}: the folder exists and hoptac did not write it; {FORCE_HINT}")
        else:
            if stat.S_ISDIR(mode):
                raise HoptacError(f"{path}: is a folder; the output is a file")
            if not stat.S_ISREG(mode):
                raise HoptacError(f"{path}: not a regular file (a FIFO, device or socket); hoptac writes only files")
            if not force and path.stat().st_size > 0 and not KINDS[kind](path):
                raise HoptacError(f"{path}: the file exists and is not a hoptac {kind} file; {FORCE_HINT}")
    _check_writable_parent(path)
    return path


# ---------------------------------------------------------------- atomic writes

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(path: Path, error: OSError) -> HoptacError:
    return HoptacError(f"{path}: cannot write ({error.strerror or error}); the previous output, if any, is kept")


@contextmanager
def atomic_file(path: str | Path, *, kind: str, inputs: Iterable[str | Path] = (), force: bool = False,
                binary: bool = False, encoding: str = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` (rules 1–5).

    On any error or signal the temporary file is removed and ``path`` is as it was.
    """
    target = check_output(path, kind=kind, inputs=inputs, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask()
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as e:
        raise _write_error(target, e) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": encoding, "newline": "\n"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _write_error(target, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str, *, kind: str, inputs: Iterable[str | Path] = (),
               force: bool = False) -> Path:
    """``text`` to ``path`` atomically (:func:`atomic_file`); returns the path written."""
    with atomic_file(path, kind=kind, inputs=inputs, force=force) as f:
        f.write(text)
    return Path(path)


@contextmanager
def atomic_dir(path: str | Path, *, inputs: Iterable[str | Path] = (), force: bool = False,
               command: str = "") -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; on success it replaces ``path`` (rules 1–5).

    The folder gets :data:`MARK` (what wrote it, when), so a later run may replace it.
    On any error or signal the temporary folder is removed and ``path`` is as it was.
    """
    target = check_output(path, kind="folder", inputs=inputs, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as e:
        raise _write_error(target, e) from None
    try:
        yield tmp
        _mark(tmp, command)
        _swap_in(tmp, target)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(target, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def output_folder(path: str | Path, *, inputs: Iterable[str | Path] = (), force: bool = False,
                  command: str = "") -> Path:
    """A folder of several outputs (``hoptac run -o``): checked (rules 1–4), created, and marked.

    Each output inside it is then written with :func:`atomic_file` / :func:`atomic_dir`,
    so a later run replaces them one by one, each only once its new version is complete.
    """
    path = check_output(path, kind="folder", inputs=inputs, force=force)
    path.mkdir(parents=True, exist_ok=True)
    _mark(path, command)
    return path


def _mark(folder: Path, command: str) -> None:
    (folder / MARK).write_text(json.dumps({"written_by": f"hoptac {__version__}", "command": command,
                                           "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}),
                               encoding="utf-8")


def write_new(folder: str | Path, names: Iterable[str], data: bytes) -> Path:
    """``data`` as a *new* file in ``folder``, under the first of ``names`` that does not exist.

    Never replaces a file: the data is written and synced under a temporary name,
    then hard-linked to its name (which fails if the name exists) — atomic and exclusive.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise HoptacError(f"{folder}: not a folder")
    _check_writable_parent(folder / "_")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".new.", suffix=".part")
    except OSError as e:
        raise _write_error(folder, e) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        for name in names:
            try:
                os.link(tmp, folder / name)
            except FileExistsError:
                continue
            _fsync_dir(folder)
            return folder / name
        raise HoptacError(f"{folder}: every name for the new file is taken")
    except OSError as e:
        raise _write_error(folder, e) from None
    finally:
        tmp.unlink(missing_ok=True)


def check_folder(folder: str | Path) -> Path:
    """A folder that new files will be written into: it exists and is a folder, or can be created."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise HoptacError(f"{folder}: not a folder")
    _check_writable_parent(folder / "_")
    return folder


def _swap_in(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an old ``target`` is moved aside first and removed after."""
    if not target.exists():
        os.rename(new, target)
        _fsync_dir(target.parent)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)  # put the previous output back
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
