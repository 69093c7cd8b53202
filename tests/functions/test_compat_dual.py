"""functions.compat.open_webui._dual: host-data methods used awaited, plainly, and as
arguments of asyncio.gather (Haervwe's planner_v3 does all three)."""

import asyncio

from functions.compat.open_webui._dual import dual


@dual
def _lookup(value: int) -> int:
    return value * 2


async def test_awaited_plain_and_gathered_calls_all_get_their_value():
    awaited = await _lookup(1)
    plain = _lookup(2)
    first, second = await asyncio.gather(
        _lookup(3),
        _lookup(4),
    )
    task = asyncio.create_task(_lookup(5))
    assert (awaited, plain, first, second, await task) == (2, 4, 6, 8, 10)


async def test_a_plain_call_in_a_statement_after_a_gather_is_still_plain():
    await asyncio.gather(asyncio.sleep(0))
    value = _lookup(6)
    assert value == 12
