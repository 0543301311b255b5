"""A chat stream's inbox: items in order, waits that end with the next item, and the idle limit."""

from __future__ import annotations

import asyncio

import pytest

from lingma_proxy.upstream.inbox import Inbox

pytestmark = pytest.mark.timeout(30)


def test_items_put_before_and_during_a_wait_come_out_in_order():
    async def scenario() -> list[int]:
        inbox: Inbox[int] = Inbox(idle_timeout=5)
        inbox.put(1)
        inbox.put(2)
        got = [await inbox.get(), await inbox.get()]
        asyncio.get_running_loop().call_later(0.01, inbox.put, 3)
        got.append(await inbox.get())
        inbox.close()
        return got

    assert asyncio.run(scenario()) == [1, 2, 3]


def test_a_wait_with_nothing_coming_ends_with_timeout_error():
    async def scenario() -> None:
        inbox: Inbox[int] = Inbox(idle_timeout=0.05)
        with pytest.raises(TimeoutError):
            await inbox.get()
        inbox.put(7)  # and it is usable afterwards
        assert await inbox.get() == 7
        with pytest.raises(TimeoutError):
            await inbox.get()

    asyncio.run(scenario())


def test_the_limit_counts_from_each_wait_not_from_the_first():
    async def scenario() -> int:
        inbox: Inbox[int] = Inbox(idle_timeout=1.0)
        loop = asyncio.get_running_loop()
        got = 0
        for i in range(30):  # 1.5 s in all, each wait well under the limit
            loop.call_later(0.05, inbox.put, i)
            assert await inbox.get() == i
            got += 1
        inbox.close()
        return got

    assert asyncio.run(scenario()) == 30


def test_a_cancelled_reader_leaves_the_inbox_usable():
    async def scenario() -> int:
        inbox: Inbox[int] = Inbox(idle_timeout=5)
        reader = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0.01)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        inbox.put(4)
        value = await inbox.get()
        inbox.close()
        return value

    assert asyncio.run(scenario()) == 4
