"""Mirrors the names plugins import from open_webui.internal.db, without a database.

Plugin code never gets a database connection in fnplatform: its process has none,
and the data it may see is served by the host-data shims (`open_webui.models.*`,
scoped to the calling user). So:

- `get_db()`, `get_db_context()`, `get_session()`, `SessionLocal()` and
  `ScopedSession()` raise NoDatabaseAccess, saying to use those shims;
- `get_async_db_context()` and `get_async_session()` open, because community code
  opens them only to hand the session to upstream's functions as `db=` (which the
  shims take and ignore): the session they give refuses every use the same way;
- `Base`, `metadata_obj` and `JSONField` are SQLAlchemy's (when the plugin
  environment has it), so model classes declared on them still import; `engine`
  is None: there is nothing to bind them to.
"""

import contextlib
import json
from typing import Any

NO_DATABASE = (
    "{} is not available: plugins have no database access in fnplatform; use the "
    "host-data shims instead (open_webui.models.users, chats, files, memories, ...)"
)

DATABASE_SCHEMA = None
engine = None
ENGINE = None


class NoDatabaseAccess(PermissionError):
    """A plugin asked for a database session."""


class NoDatabase:
    """The session `get_async_db_context` yields: every use raises NoDatabaseAccess."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NoDatabaseAccess(NO_DATABASE.format(f"the database session's {name}"))

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "<no database: fnplatform gives plugins none>"


def _refuse(name: str):
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise NoDatabaseAccess(NO_DATABASE.format(f"open_webui.internal.db.{name}"))

    refused.__name__ = refused.__qualname__ = name
    return refused


get_db = _refuse("get_db")
get_db_context = _refuse("get_db_context")
get_session = _refuse("get_session")
SessionLocal = _refuse("SessionLocal")
ScopedSession = _refuse("ScopedSession")


@contextlib.asynccontextmanager
async def get_async_db_context(db: Any = None):
    """Yield a session that refuses every use (for shims' ignored `db=` argument)."""
    yield db if db is not None else NoDatabase()


async def get_async_session():
    """FastAPI's dependency form of the same: one refusing session."""
    yield NoDatabase()


try:  # SQLAlchemy is in the plugin environment, not the server's.
    from sqlalchemy import MetaData, Text, types
    from sqlalchemy.orm import declarative_base
except ImportError:  # pragma: no cover - the server never loads plugin models
    metadata_obj = None
    Base = None
    JSONField = None
else:
    metadata_obj = MetaData(schema=DATABASE_SCHEMA)
    Base = declarative_base(metadata=metadata_obj)

    class JSONField(types.TypeDecorator):
        """A JSON value stored as text, as upstream declares its JSON columns."""

        impl = Text
        cache_ok = True

        def process_bind_param(self, value: Any, dialect: Any) -> str | None:
            return None if value is None else json.dumps(value)

        def process_result_value(self, value: Any, dialect: Any) -> Any:
            return None if value is None else json.loads(value)

        def copy(self, **kwargs: Any) -> "JSONField":
            return JSONField(self.impl.length)
