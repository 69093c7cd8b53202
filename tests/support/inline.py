"""Reach into the inline executor's workers (unit tests run plugin code in-process)."""

from functions.services.executor import get_executor


def loaded_module(function_id: str):
    """The module a worker of this event loop loaded for a function (None if none did)."""
    for pool in get_executor().pools().values():
        for worker in pool.workers:
            for loaded in worker.worker.plugins.values():
                if loaded.function_id == function_id:
                    return loaded.module
    return None


# Plugin objects built by a test (classes with closures, events, fakes) run through
# the inline worker's own code: the worker finds them in its cache as if it had
# loaded them from source.

_SEEDED: dict = {}


def object_call(function_id: str, instance, *, valves=None, user_valves=None, name: str = ""):
    """A PluginCall for a plugin object a test made, as if it came from saved code."""
    import uuid
    from pathlib import Path

    from pydantic import BaseModel

    from functions.services import loader
    from functions.services.runtime import PluginCall

    kind, class_name = _kind_of(instance)
    report = loader._report(instance, kind, class_name, {}, [])
    sha = uuid.uuid4().hex
    module = type(loader)("test_objects")
    loaded = loader.LoadedFunction(
        function_id, "", sha, module, instance, Path("/nonexistent"), report
    )
    _SEEDED[sha] = loaded
    if isinstance(valves, BaseModel):
        valves = valves.model_dump(mode="json")
    if isinstance(user_valves, BaseModel):
        user_valves = user_valves.model_dump(mode="json")
    if valves is None and report.has_valves:
        valves = {}
    priority = (valves or {}).get("priority", report.priority)
    return PluginCall(
        function_id,
        report,
        source="# a plugin object made by a test",
        sha256=sha,
        name=name,
        valves=valves,
        user_valves=user_valves,
        priority=priority,
    )


def _kind_of(instance) -> tuple[str, str]:
    if callable(getattr(instance, "pipe", None)):
        return "pipe", "Pipe"
    if callable(getattr(instance, "action", None)):
        return "action", "Action"
    return "filter", "Filter"


def seed_worker(monkeypatch) -> None:
    """Let workers find the plugin objects made by object_call."""
    from functions.workers.worker import Worker

    original = Worker.plugin

    def plugin(self, message):
        seeded = _SEEDED.get(message["sha256"])
        return seeded if seeded is not None else original(self, message)

    monkeypatch.setattr(Worker, "plugin", plugin)


def source_call(function_id: str, source: str, **valves):
    """A PluginCall for saved code, as the server prepares it (report, valves as data)."""
    from functions.services.loader import check_source

    return _call_for(function_id, source, check_source(source, function_id=function_id), valves)


def worker_call(executor, function_id: str, source: str, **valves):
    """A PluginCall for saved code checked where plugin code runs (a sandboxed process
    of `executor`), for code that imports the plugin environment's packages."""
    from functions.services.loader import LoadReport

    data = executor.check(source, function_id=function_id, environment=None)
    return _call_for(function_id, source, LoadReport.from_dict(data), valves)


def _call_for(function_id: str, source: str, report, valves: dict):
    from functions.services.loader import source_sha256
    from functions.services.runtime import PluginCall

    return PluginCall(
        function_id,
        report,
        source=source,
        sha256=source_sha256(source),
        valves=valves if report.has_valves else None,
        priority=valves.get("priority", report.priority),
    )
