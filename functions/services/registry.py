"""Per-process cache of loaded plugins, keyed by (function id, sha256 of the source).

Because the key is the content hash, an edit saved by any process is picked up by
every other process the next time it asks for the plugin: no invalidation
message is needed. An older version of the same function is closed when a newer
one is loaded here. `invalidate()` is for deletes.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings

from functions.services.loader import LoadedFunction, load_source, source_sha256


@dataclass(frozen=True)
class _Key:
    function_id: str
    sha256: str


_plugins: dict[_Key, LoadedFunction] = {}
_lock = threading.RLock()
# One lock per key, so two threads asking for the same plugin load it once,
# while different plugins load in parallel.
_key_locks: dict[_Key, threading.Lock] = {}


def get_plugin(function) -> LoadedFunction:
    """Return the loaded plugin for a Function row, loading it if its content is new here."""
    site_dirs = ()
    if function.environment_id:
        from functions.services.environments import env_site

        site_dirs = (env_site(function.environment_id),)
    return get_plugin_for_source(function.id, function.content, site_dirs=site_dirs)


def get_plugin_for_source(function_id: str, source: str, *, site_dirs=()) -> LoadedFunction:
    """Return the loaded plugin for this id and source. Raise SourceError if it cannot load."""
    key = _Key(function_id, source_sha256(source))
    loaded = _plugins.get(key)
    if loaded is not None:
        return loaded
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        loaded = _plugins.get(key)
        if loaded is None:
            loaded = load_source(
                source,
                function_id=function_id,
                source_dir=settings.FUNCTIONS_SOURCE_DIR,
                site_dirs=site_dirs,
            )
            _replace(key, loaded)
    return loaded


def _replace(key: _Key, loaded: LoadedFunction) -> None:
    with _lock:
        stale = [k for k in _plugins if k.function_id == key.function_id and k != key]
        for old in stale:
            _plugins.pop(old).close()
            _key_locks.pop(old, None)
        _plugins[key] = loaded


def invalidate(function_id: str) -> None:
    """Forget (and close) every loaded version of a function in this process."""
    with _lock:
        for key in [k for k in _plugins if k.function_id == function_id]:
            _plugins.pop(key).close()
            _key_locks.pop(key, None)


def loaded_versions(function_id: str) -> list[str]:
    """Return the source hashes of a function loaded in this process."""
    return [k.sha256 for k in list(_plugins) if k.function_id == function_id]


def clear() -> None:
    """Close every loaded plugin (tests and shutdown)."""
    with _lock:
        for key in list(_plugins):
            _plugins.pop(key).close()
        _key_locks.clear()


def iter_loaded() -> Iterator[LoadedFunction]:
    return iter(list(_plugins.values()))
