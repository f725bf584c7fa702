"""The one error type users see: a one-line message naming the file and place."""


class HoptacError(Exception):
    """Bad input or a failed precondition. The CLI prints it on one line and exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def where(path, line: int | None = None) -> str:
    """Render ``path`` or ``path:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)
