"""Mirrors open_webui.storage.provider: `Storage`, upstream's local provider. Always sync.

Files are written into open_webui.config.UPLOAD_DIR and their absolute path is
handed back, as upstream's local provider does (plugins open() it). The file
table stores paths relative to UPLOAD_DIR (see `relative_path`) so the data
folder can move. Two rules upstream lacks: a path outside UPLOAD_DIR is refused
(so a file record can never point at /etc/passwd), and a file recorded in the
file table as someone else's is not read, replaced or deleted for a non-admin
caller.
"""

from pathlib import Path
from typing import BinaryIO

from .. import config
from .._dual import run_blocking
from .._host import hosted


def upload_dir() -> Path:
    # Read at call time, not import time, so tests can point it at a temporary folder.
    return Path(config.UPLOAD_DIR).resolve()


def resolve(path: str | Path) -> Path:
    """The absolute path of a stored file given absolute or relative to UPLOAD_DIR."""
    root = upload_dir()
    candidate = (root / path).resolve()  # an absolute `path` replaces root here
    if candidate == root or not candidate.is_relative_to(root):
        raise ValueError(f"{path} is not a file in the upload folder {root}")
    return candidate


def relative_path(path: str | Path) -> str:
    """How the file table stores a path: relative to UPLOAD_DIR. Raise ValueError outside it."""
    return resolve(path).relative_to(upload_dir()).as_posix()


def _ensure_reachable(relative: str) -> None:
    from chat.models import File

    from ..models._owned import owned

    recorded = File.objects.filter(path=relative)
    if recorded.count() != owned(recorded).count():
        raise PermissionError(f"{relative} belongs to another user's file")


def _check_reachable(target: Path) -> None:
    # ORM: run_blocking keeps it off the event loop when an async pipe calls Storage plainly.
    run_blocking(_ensure_reachable, target.relative_to(upload_dir()).as_posix())


def _read_all(file: BinaryIO | bytes | bytearray) -> bytes:
    contents = file if isinstance(file, bytes | bytearray) else file.read()
    return contents.encode() if isinstance(contents, str) else bytes(contents)


class LocalStorageProvider:
    @hosted
    def upload_file(
        self, file: BinaryIO | bytes, filename: str, tags: dict[str, str] | None = None
    ) -> tuple[bytes, str]:
        """Write the file's bytes to UPLOAD_DIR/<filename>; return (bytes, absolute path)."""
        contents = _read_all(file)
        if not contents:
            raise ValueError("The uploaded file is empty.")
        # Only the name counts: "../x" or "sub/x" must not escape or nest (tags are unused
        # by the local provider upstream too).
        name = Path(str(filename)).name
        if name in {"", ".", ".."}:
            raise ValueError(f"{filename!r} is not a usable file name")
        target = resolve(name)
        _check_reachable(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(contents)
        return contents, str(target)

    @hosted
    def get_file(self, file_path: str) -> str:
        """Return the local path of a stored file (it is already local)."""
        target = resolve(file_path)
        _check_reachable(target)
        return str(target)

    @hosted
    def delete_file(self, file_path: str) -> None:
        target = resolve(file_path)
        _check_reachable(target)
        target.unlink(missing_ok=True)


Storage = LocalStorageProvider()
