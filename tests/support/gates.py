"""Gates a test opens to let a plugin go on: plugin code run by the inline executor
(in the test process) waits on one, so a test controls exactly when a stream
continues, with no sleeps. A thread event, so it works across event loops."""

import threading

_gates: dict[str, threading.Event] = {}
_lock = threading.Lock()
# Set once the test is over: a plugin thread that only now reaches its gate (a run
# stopped before it got there, which its worker still finishes) passes at once,
# rather than hold the test's event loop, which waits for its threads, for `timeout`.
_closed = threading.Event()


def gate(name: str) -> threading.Event:
    with _lock:
        return _gates.setdefault(name, threading.Event())


def wait_gate(name: str, timeout: float = 30) -> bool:
    """Wait until the test opens the gate (True), or give up after `timeout` (False);
    after the test (close_gates), pass at once."""
    if _closed.is_set():
        return True
    return gate(name).wait(timeout)


def open_gate(name: str) -> None:
    gate(name).set()


def close_gates() -> None:
    """The test is over: open every gate, and let any reached from now on pass."""
    _closed.set()
    with _lock:
        for event in _gates.values():
            event.set()


def reopen_gates() -> None:
    """A new test: gates start shut again, none known."""
    with _lock:
        _gates.clear()
    _closed.clear()
