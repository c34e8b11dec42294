"""The in-process writer coordination behind the ledger's write path."""

import asyncio

import pytest

from billgraph.db.locks import GroupCommit, KeyedLocks


async def test_group_commit_batches_callers_that_queue_up() -> None:
    group = GroupCommit(max_batch=10)
    batches: list[list[int]] = []
    running = 0

    async def run(batch: list[int]) -> list[int]:
        nonlocal running
        running += 1
        assert running == 1, "two batches of one key ran at once"
        batches.append(batch)
        await asyncio.sleep(0.01)
        running -= 1
        return [item * 2 for item in batch]

    results = await asyncio.gather(*(group.submit("wallet", i, run) for i in range(25)))
    assert results == [i * 2 for i in range(25)]
    # All 25 queued before the first batch started: batches of at most 10, one after another.
    assert [len(b) for b in batches] == [10, 10, 5]
    assert sorted(i for b in batches for i in b) == list(range(25))


async def test_group_commit_keys_do_not_wait_for_each_other() -> None:
    group = GroupCommit()
    started: list[str] = []
    release = asyncio.Event()

    async def run(batch: list[str]) -> list[str]:
        started.append(batch[0])
        await release.wait()
        return batch

    first = asyncio.ensure_future(group.submit("a", "a", run))
    second = asyncio.ensure_future(group.submit("b", "b", run))
    await asyncio.sleep(0.01)
    assert sorted(started) == ["a", "b"]
    release.set()
    assert await asyncio.gather(first, second) == ["a", "b"]


async def test_group_commit_failure_reaches_only_its_batch() -> None:
    group = GroupCommit()

    async def run(batch: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 3 in batch:
            raise RuntimeError("batch failed")
        return batch

    assert await asyncio.gather(*(group.submit("w", i, run) for i in range(3))) == [0, 1, 2]
    failed = await asyncio.gather(
        *(group.submit("w", i, run) for i in (3, 4)), return_exceptions=True
    )
    assert [type(o) for o in failed] == [RuntimeError, RuntimeError]  # one batch, one failure
    assert await group.submit("w", 7, run) == 7  # and the key works afterwards


async def test_keyed_locks_forget_idle_keys() -> None:
    locks = KeyedLocks()
    async with locks.hold("w"):
        assert len(locks._locks) == 1
    assert len(locks._locks) == 0
    with pytest.raises(ZeroDivisionError):
        async with locks.hold("w"):
            raise ZeroDivisionError
    assert len(locks._locks) == 0


async def test_group_commit_failure_of_one_item_reaches_only_its_caller() -> None:
    group = GroupCommit()

    async def run(batch: list[int]) -> list[int | Exception]:
        await asyncio.sleep(0)
        return [ValueError(f"bad {i}") if i == 2 else i for i in batch]

    outcomes = await asyncio.gather(
        *(group.submit("w", i, run) for i in range(4)), return_exceptions=True
    )
    assert outcomes[:2] == [0, 1] and outcomes[3] == 3
    assert isinstance(outcomes[2], ValueError)


async def test_group_commit_skips_a_caller_cancelled_while_waiting() -> None:
    group = GroupCommit()
    ran: list[str] = []
    release = asyncio.Event()

    async def run(batch: list[str]) -> list[str]:
        ran.extend(batch)
        await release.wait()
        return batch

    first = asyncio.ensure_future(group.submit("w", "first", run))
    await asyncio.sleep(0.01)  # "first" runs alone; the next two wait behind it
    waiting = asyncio.ensure_future(group.submit("w", "cancelled", run))
    kept = asyncio.ensure_future(group.submit("w", "kept", run))
    await asyncio.sleep(0.01)
    waiting.cancel()
    release.set()
    assert await asyncio.gather(first, kept) == ["first", "kept"]
    assert ran == ["first", "kept"]  # the cancelled caller's work never ran


async def test_group_commit_callers_never_hang_when_the_queue_stops() -> None:
    group = GroupCommit()

    async def run(batch: list[int]) -> list[int]:
        await asyncio.sleep(3600)
        return batch

    callers = [asyncio.ensure_future(group.submit("w", i, run)) for i in range(3)]
    await asyncio.sleep(0.01)
    for drain in list(group._drains):  # what a shutdown does to the running batch
        drain.cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 5)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
