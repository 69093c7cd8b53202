"""The data dir's secrets stay the server's: the dir 0700, the database and keys 0600.

Files made by an older version, or by hand, may be readable by others; every start
fixes them, and a SQLite database is fixed as soon as a connection creates it.
"""

import contextlib
import os
from pathlib import Path

SECRET_MODE = 0o600
DIR_MODE = 0o700
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def restrict(path: Path, mode: int) -> None:
    """Take away every permission beyond `mode` from path, if it exists."""
    with contextlib.suppress(FileNotFoundError):
        current = path.stat().st_mode & 0o777
        if current & ~mode:
            os.chmod(path, current & mode)


def restrict_data_dir(data_dir: Path, secrets: list[str]) -> None:
    """Make the data dir 0700 and each named secret file in it 0600."""
    restrict(data_dir, DIR_MODE)
    for name in secrets:
        restrict(data_dir / name, SECRET_MODE)


def restrict_sqlite(database: str | Path) -> None:
    """Make a SQLite database file and its -wal, -shm and -journal files 0600."""
    if not str(database) or str(database).startswith(":memory:") or "mode=memory" in str(database):
        return
    for suffix in SQLITE_COMPANIONS:
        restrict(Path(f"{database}{suffix}"), SECRET_MODE)


def on_connection_created(sender, connection, **kwargs) -> None:
    """connection_created receiver: a database SQLite just created is 0600 from the start."""
    if connection.vendor == "sqlite":
        restrict_sqlite(connection.settings_dict["NAME"])
