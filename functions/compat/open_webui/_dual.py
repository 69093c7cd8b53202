"""Host-data methods that work both awaited and not, as community code uses both.

Open WebUI 0.9 made its model methods coroutines; half the community files still
call them plainly. `dual` looks at the calling instruction: when the very next one
awaits the result (or the call is an argument of `asyncio.gather(...)` and the like),
the method returns a coroutine (run in a thread, so the ORM
stays off the event loop); otherwise it returns the value directly, running in a
helper thread when called from the event loop thread.
"""

import asyncio
import contextvars
import dis
import functools
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async

from ._host import hosted

_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="compat")
_awaited_cache: dict[tuple[Any, int], bool] = {}


# Calls that take awaitables as arguments: `await asyncio.gather(Users.get_user_by_id(i),
# Skills.get_skills_by_user_id(i))` awaits the shims' results without an `await` of
# their own.
AWAITING_CALLS = frozenset({"gather", "wait_for", "create_task", "ensure_future", "shield"})
# Where a statement begins, reading its instructions backwards.
_STATEMENT_EDGES = ("STORE_", "POP_TOP", "RETURN_", "RESUME", "JUMP", "END_SEND", "POP_JUMP")


def called_with_await(frame) -> bool:
    """Whether the code in `frame` awaits the result of its current call: the next
    instruction awaits it, or the call is an argument of the statement's
    `asyncio.gather(...)` (or wait_for, create_task, ensure_future, shield)."""
    key = (frame.f_code, frame.f_lasti)
    if key not in _awaited_cache:
        _awaited_cache[key] = _awaited(list(dis.get_instructions(frame.f_code)), frame.f_lasti)
    return _awaited_cache[key]


def _awaited(instructions: list, offset: int) -> bool:
    following = [i for i in instructions if i.offset > offset]
    if following and following[0].opname == "GET_AWAITABLE":
        return True
    for instruction in reversed([i for i in instructions if i.offset < offset]):
        if instruction.opname.startswith(_STATEMENT_EDGES):
            return False
        if instruction.opname.startswith("LOAD_") and instruction.argval in AWAITING_CALLS:
            return True
    return False


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_blocking(func, *args, **kwargs) -> Any:
    """Run sync (ORM) code; from the event loop thread, in a helper thread."""
    if not _in_event_loop():
        return func(*args, **kwargs)
    context = contextvars.copy_context()
    return _pool.submit(context.run, func, *args, **kwargs).result()


def dual(func):
    """Make a sync method usable as `x = m()` and as `x = await m()`.

    It is also `hosted`: in a worker process the call goes to the server.
    """
    target = hosted(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return call_dual(sys._getframe(1), target, *args, **kwargs)

    return wrapper


def call_dual(frame, target, *args, **kwargs) -> Any:
    """Run sync `target` for the code in `frame`: a coroutine when that code awaits the
    result, else the value (for shims whose upstream function changed from sync to async)."""
    if called_with_await(frame):
        return sync_to_async(target, thread_sensitive=False)(*args, **kwargs)
    return run_blocking(target, *args, **kwargs)
