"""One progress display for long work (tqdm): on stderr when it is a terminal, nothing otherwise.

Used by ``corpus build``, the silver draw of ``train --silver`` and ``predict``, so a redirected
log or a pipe gets no progress bars and no control characters.
"""

from __future__ import annotations

import shutil
import sys


class NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress(unit: str = " paragraphs", total: int | None = None, desc: str | None = None):
    """A tqdm bar (a counter with its rate when ``total`` is unknown) on a terminal; else :class:`NoProgress`."""
    if not sys.stderr.isatty():
        return NoProgress()
    from tqdm import tqdm

    size = shutil.get_terminal_size((80, 24))  # a pty may report 0×0: tqdm would then print nothing
    return tqdm(unit=unit, total=total, desc=desc, file=sys.stderr, mininterval=0.5, smoothing=0.1,
                ncols=size.columns, nrows=size.lines)
