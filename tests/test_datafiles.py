"""The data dir and its secrets are the server's alone, whatever modes they had."""

import sqlite3
from importlib import reload
from pathlib import Path

import pytest

from fnplatform import datafiles


def mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_an_open_data_dir_and_readable_keys_are_closed(tmp_path):
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    for name in ("secret_key", "secrets_key"):
        (data / name).write_text("k")
        (data / name).chmod(0o644)
    datafiles.restrict_data_dir(data, ["secret_key", "secrets_key", "absent"])
    assert mode(data) == 0o700
    assert mode(data / "secret_key") == mode(data / "secrets_key") == 0o600


def test_a_sqlite_database_and_its_wal_files_become_0600(tmp_path):
    database = tmp_path / "db.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (x)")
    for path in (database, tmp_path / "db.sqlite3-wal", tmp_path / "db.sqlite3-shm"):
        path.chmod(0o664)
    datafiles.restrict_sqlite(database)
    for path in (database, tmp_path / "db.sqlite3-wal", tmp_path / "db.sqlite3-shm"):
        assert mode(path) == 0o600, path
    connection.close()


@pytest.mark.django_db
def test_the_database_in_use_is_0600():
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the database is a server (PostgreSQL), not a file in the data dir")
    connection.ensure_connection()
    assert mode(Path(connection.settings_dict["NAME"])) == 0o600


def test_settings_fix_an_existing_key_files_mode(tmp_path, monkeypatch):
    import fnplatform.settings as project_settings

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "secret_key").write_text("old-key")
    (data / "secret_key").chmod(0o644)
    monkeypatch.setenv("FNPLATFORM_DATA_DIR", str(data))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    try:
        assert reload(project_settings).SECRET_KEY == "old-key"
        assert mode(data / "secret_key") == 0o600
        assert mode(data / "secrets_key") == 0o600  # generated, 0600 from the start
        assert mode(data) == 0o700
    finally:
        monkeypatch.undo()
        reload(project_settings)
