"""Host-data methods that work both awaited and not, as community code uses both.

Open WebUI 0.9 made its model methods coroutines; half the community files still
call them plainly. `dual` looks at the calling instruction: when the very next one
awaits the result, the method returns a coroutine (run in a thread, so the ORM
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


def called_with_await(frame) -> bool:
    """Whether the instruction after the current call in `frame` awaits its result."""
    key = (frame.f_code, frame.f_lasti)
    if key not in _awaited_cache:
        following = (i for i in dis.get_instructions(frame.f_code) if i.offset > frame.f_lasti)
        nxt = next(following, None)
        _awaited_cache[key] = nxt is not None and nxt.opname == "GET_AWAITABLE"
    return _awaited_cache[key]


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
