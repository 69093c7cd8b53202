"""Gates a test opens to let a plugin go on: plugin code run by the inline executor
(in the test process) waits on one, so a test controls exactly when a stream
continues, with no sleeps. A thread event, so it works across event loops."""

import threading

_gates: dict[str, threading.Event] = {}
_lock = threading.Lock()


def gate(name: str) -> threading.Event:
    with _lock:
        return _gates.setdefault(name, threading.Event())


def wait_gate(name: str, timeout: float = 30) -> bool:
    """Wait until the test opens the gate (True), or give up after `timeout` (False)."""
    return gate(name).wait(timeout)


def open_gate(name: str) -> None:
    gate(name).set()


def forget_gates() -> None:
    with _lock:
        _gates.clear()
