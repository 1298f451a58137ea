"""Group commit (gateway/grouping.py), which stores webhook deliveries and records the
outbox's outcomes: nothing submitted is left waiting, items that arrive during a commit go
together in the next one, and an item that cannot be committed fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import pytest

from gateway.grouping import GroupCommitter, each_alone

T = TypeVar("T")


class Unavailable(Exception):
    pass


class HeldFirst(Generic[T]):
    """A commit that records its groups and holds the first one until released, so that the
    items submitted meanwhile wait together."""

    def __init__(self, answer: Callable[[T], T] = lambda item: item) -> None:
        self.answer = answer
        self.groups: list[list[T]] = []
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, group: list[T]) -> list[T]:
        self.groups.append(group)
        self.started.set()
        self.release.wait(5)
        return [self.answer(item) for item in group]


async def submit_while_held(committer: GroupCommitter[T, T], commit: HeldFirst[T], first: T,
                            later: Iterable[T]) -> tuple[T, list[T]]:
    """Submit `first`, then `later` while its commit is held; the answers, once released."""
    held = asyncio.create_task(committer.submit(first))
    await asyncio.to_thread(commit.started.wait, 5)
    waiting = [asyncio.create_task(committer.submit(item)) for item in later]
    await asyncio.sleep(0.05)
    commit.release.set()
    return await held, list(await asyncio.gather(*waiting))


async def test_an_item_submitted_as_the_last_group_ends_is_still_committed() -> None:
    groups: list[list[int]] = []

    def commit(group: list[int]) -> list[int]:
        groups.append(group)
        return [item * 10 for item in group]

    committer = GroupCommitter(commit)
    try:
        async with asyncio.timeout(5):
            for item in range(20):  # each the moment the one before was answered
                assert await committer.submit(item) == item * 10
    finally:
        committer.close()
    assert groups == [[item] for item in range(20)]


async def test_items_that_arrive_during_a_commit_are_committed_together_after_it() -> None:
    commit = HeldFirst(str.upper)
    committer = GroupCommitter(commit)
    try:
        first, later = await submit_while_held(committer, commit, "a", "bcd")
        assert first == "A"
        assert later == ["B", "C", "D"]
    finally:
        committer.close()
    assert commit.groups == [["a"], ["b", "c", "d"]]


async def test_an_item_that_cannot_be_committed_fails_alone() -> None:
    committed: list[str] = []

    def commit(group: list[str]) -> list[str]:
        if "bad" in group:
            raise ValueError("cannot store this one")
        committed.extend(group)
        return group

    release = threading.Event()

    def slow_first(group: list[str]) -> list[str | BaseException]:
        release.wait(5)
        return each_alone(commit, group)

    committer = GroupCommitter(slow_first)
    try:
        blocker = asyncio.create_task(committer.submit("first"))
        await asyncio.sleep(0.05)
        tasks = [asyncio.create_task(committer.submit(item)) for item in ("x", "bad", "y")]
        await asyncio.sleep(0.05)
        release.set()
        assert await blocker == "first"
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        committer.close()
    assert results[0] == "x" and results[2] == "y"
    assert isinstance(results[1], ValueError) and "cannot store" in str(results[1])
    assert committed == ["first", "x", "y"]


def test_when_the_database_is_unavailable_the_group_fails_at_once() -> None:
    calls: list[list[int]] = []

    def commit(group: list[int]) -> list[int]:
        calls.append(group)
        raise Unavailable("database is locked")

    outcomes = each_alone(commit, [1, 2, 3], together=(Unavailable,))
    assert calls == [[1, 2, 3]]  # not tried item by item, each waiting out its retries
    assert all(isinstance(outcome, Unavailable) for outcome in outcomes)
    assert len(outcomes) == 3


def test_a_single_item_that_fails_raises_its_own_error() -> None:
    def commit(group: list[int]) -> list[int]:
        raise KeyError("no such row")

    with pytest.raises(KeyError):
        each_alone(commit, [7])


async def test_a_group_is_bounded_and_the_rest_goes_in_the_next() -> None:
    commit: HeldFirst[int] = HeldFirst()
    committer = GroupCommitter(commit, max_group=3)
    try:
        first, later = await submit_while_held(committer, commit, 0, range(1, 8))
        assert first == 0
        assert later == list(range(1, 8))
    finally:
        committer.close()
    assert commit.groups == [[0], [1, 2, 3], [4, 5, 6], [7]]
    with pytest.raises(ValueError):
        GroupCommitter(commit, max_group=0)


async def test_items_whose_callers_were_cancelled_are_committed_before_a_graceful_close(
        ) -> None:
    commit: HeldFirst[str] = HeldFirst()
    committer = GroupCommitter(commit)
    held = asyncio.create_task(committer.submit("under way"))
    await asyncio.to_thread(commit.started.wait, 5)
    waiting = asyncio.create_task(committer.submit("waiting"))
    await asyncio.sleep(0.05)
    held.cancel()  # the process is stopping: every caller is cancelled
    waiting.cancel()
    commit.release.set()
    async with asyncio.timeout(5):
        await committer.drain()
    committer.close()
    assert commit.groups == [["under way"], ["waiting"]]


class Stopping(BaseException):
    pass


async def test_a_group_that_raises_a_base_exception_leaves_no_caller_waiting() -> None:
    release = threading.Event()

    def commit(group: list[int]) -> list[int]:
        release.wait(5)
        raise Stopping

    committer = GroupCommitter(commit)
    first = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(committer.submit(2))  # waits for the next group
    await asyncio.sleep(0.05)
    release.set()
    try:
        async with asyncio.timeout(5):
            outcomes = await asyncio.gather(first, second, return_exceptions=True)
    finally:
        committer.close()
    assert all(isinstance(outcome, Stopping) for outcome in outcomes)


async def test_items_submitted_after_close_fail_at_once() -> None:
    committer: GroupCommitter[int, int] = GroupCommitter(lambda group: group)
    committer.close()
    with pytest.raises(RuntimeError):
        async with asyncio.timeout(5):
            await committer.submit(1)
