"""Create the benchmark's user, API key and plugins in the database FNPLATFORM_DATA_DIR points at.

Run by bench/runtime.py as `python bench/fixtures.py STEP` (never against real data):

- ``setup``: a staff user, an API key, the trivial pipe ``bench_echo``, the streaming
  pipes ``bench_stream`` (a sync generator) and ``bench_astream`` (an async generator),
  and the blocking pipe ``bench_sleeper`` (all active). Prints the API key's plaintext
  as JSON.
- ``filters``: five trivial filters ``bench_filter_1..5`` (``inlet`` and ``outlet``
  returning the body), active and global. Their load reports mark both hooks as
  provable no-ops, which the server never calls.
- ``opaque-filters``: the same five filters, each hook now reading the body before
  returning it (a new revision of each): as trivial, but nothing the load report can
  prove, so every hook runs in its worker.
- ``stream-filters``: the opaque filters get an opaque ``stream`` hook too.
- ``action``: the trivial action ``bench_action``, active and global.

Everything goes through the project's services, as the admin would.
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

USERNAME = "bench"
FILTER_COUNT = 5

ECHO_PIPE = '''"""
title: Bench Echo
description: Trivial pipe for the benchmark.
"""


class Pipe:
    def pipe(self, body):
        return "ok"
'''

STREAM_PIPE = '''"""
title: Bench Stream
description: Streams 2,000 small chunks for the benchmark.
"""


class Pipe:
    def pipe(self, body):
        for i in range(2000):
            yield f"t{i} "
'''

ASTREAM_PIPE = '''"""
title: Bench Async Stream
description: Streams 2,000 small chunks from an async generator for the benchmark.
"""


class Pipe:
    async def pipe(self, body):
        for i in range(2000):
            yield f"t{i} "
'''

SLEEP_PIPE = '''"""
title: Bench Sleeper
description: A sync pipe that blocks for 2 s, as many community pipes do (time.sleep, requests).
"""
import time


class Pipe:
    def pipe(self, body):
        time.sleep(2)
        return "slept"
'''

FILTER = '''"""
title: Bench Filter {n}
description: Trivial filter for the benchmark.
"""


class Filter:
    def inlet(self, body):
        return body

    def outlet(self, body):
        return body
'''

OPAQUE_FILTER = '''"""
title: Bench Filter {n}
description: Trivial filter for the benchmark, whose hooks read what they pass on.
"""


class Filter:
    def inlet(self, body):
        body.get("model")
        return body

    def outlet(self, body):
        body.get("model")
        return body
'''

STREAM_FILTER = (
    OPAQUE_FILTER
    + """
    def stream(self, event):
        event.get("id")
        return event
"""
)

ACTION = '''"""
title: Bench Action
description: Trivial action for the benchmark.
"""


class Action:
    async def action(self, body):
        return {"ok": True}
'''


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fnplatform.settings")
    import django

    django.setup()


def _staff():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=USERNAME)


def _install(user, function_id: str, content: str, *, is_global: bool = False) -> None:
    from functions.services.functions import (
        function_create,
        function_set_active,
        function_set_global,
    )

    function = function_create(user=user, id=function_id, content=content)
    function = function_set_active(user=user, function=function, active=True)
    if is_global:
        function_set_global(user=user, function=function, is_global=True)


def setup() -> dict:
    from django.contrib.auth import get_user_model

    from fnplatform.accounts.services import api_key_create

    user = get_user_model().objects.create_user(
        USERNAME, "", None, is_staff=True, is_superuser=True
    )
    _, key = api_key_create(user=user, name="benchmark")
    _install(user, "bench_echo", ECHO_PIPE)
    _install(user, "bench_stream", STREAM_PIPE)
    _install(user, "bench_astream", ASTREAM_PIPE)
    _install(user, "bench_sleeper", SLEEP_PIPE)
    return {"api_key": key}


def filters() -> dict:
    user = _staff()
    ids = [f"bench_filter_{n}" for n in range(1, FILTER_COUNT + 1)]
    for n, function_id in enumerate(ids, start=1):
        _install(user, function_id, FILTER.format(n=n), is_global=True)
    return {"filters": ids}


def _revise_filters(template: str) -> dict:
    """A new revision of each bench filter; return their load reports' hooks and no-ops."""
    from functions.models import Function
    from functions.services.functions import function_update

    user = _staff()
    ids = [f"bench_filter_{n}" for n in range(1, FILTER_COUNT + 1)]
    reports = {}
    for n, function_id in enumerate(ids, start=1):
        function = Function.objects.get(pk=function_id)
        function = function_update(user=user, function=function, content=template.format(n=n))
        report = function.current_revision.load_result
        reports[function_id] = {
            "hooks": report.get("hooks"),
            "noop_hooks": report.get("noop_hooks", []),
        }
    return {"filters": ids, "reports": reports}


def opaque_filters() -> dict:
    return _revise_filters(OPAQUE_FILTER)


def stream_filters() -> dict:
    return _revise_filters(STREAM_FILTER)


def action() -> dict:
    _install(_staff(), "bench_action", ACTION, is_global=True)
    return {"action": "bench_action"}


STEPS = {
    "setup": setup,
    "filters": filters,
    "opaque-filters": opaque_filters,
    "stream-filters": stream_filters,
    "action": action,
}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(STEPS)}}}")
    if "FNPLATFORM_DATA_DIR" not in os.environ:
        sys.exit("FNPLATFORM_DATA_DIR must point at the benchmark's temporary data dir.")
    _django()
    result = STEPS[sys.argv[1]]()
    # The last line of stdout is the result, whatever the app logged before it.
    print(json.dumps(result))


if __name__ == "__main__":
    main()
