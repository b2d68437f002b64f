import asyncio

import pytest

from generation.errors import QueueFull
from generation.queue import GenerationQueue


async def test_slots_then_line_then_refusal() -> None:
    queue = GenerationQueue(slots=2, max_waiting=2)
    first, second = queue.reserve(), queue.reserve()
    assert first.holds_slot and second.holds_slot
    third, fourth = queue.reserve(), queue.reserve()
    assert not third.holds_slot and not fourth.holds_slot
    with pytest.raises(QueueFull, match="2 replies are already waiting"):
        queue.reserve()
    assert (queue.running, queue.waiting) == (2, 2)


async def test_waiting_tickets_see_their_position_move_up() -> None:
    queue = GenerationQueue(slots=1, max_waiting=5)
    running = queue.reserve()
    positions: dict[str, list[int]] = {"a": [], "b": []}
    a, b = queue.reserve(), queue.reserve()

    async def wait(name: str, ticket) -> None:
        async def report(position: int) -> None:
            positions[name].append(position)

        await ticket.wait(report)

    waiting_a = asyncio.create_task(wait("a", a))
    waiting_b = asyncio.create_task(wait("b", b))
    await asyncio.sleep(0.01)
    assert positions == {"a": [1], "b": [2]}
    running.release()
    await waiting_a
    await asyncio.sleep(0.01)
    assert positions["b"] == [2, 1]
    assert a.holds_slot and not b.holds_slot
    a.release()
    await waiting_b
    assert b.holds_slot
    b.release()
    assert (queue.running, queue.waiting) == (0, 0)


async def test_leaving_the_line_frees_the_place() -> None:
    queue = GenerationQueue(slots=1, max_waiting=1)
    running = queue.reserve()
    async with queue.reserve() as leaving:
        assert queue.waiting == 1
    assert leaving.released and queue.waiting == 0
    queue.reserve()  # the place is free again
    running.release()
    assert queue.running == 1, "the waiting ticket was promoted into the slot"


async def test_releasing_twice_is_harmless() -> None:
    queue = GenerationQueue(slots=1, max_waiting=0)
    ticket = queue.reserve()
    ticket.release()
    ticket.release()
    assert queue.running == 0
