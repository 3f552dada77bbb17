"""Which agent owns which task: ids as agents see them, and when a task is forgotten."""

from __future__ import annotations

import mcp_types as types

from gateway_core.frontend.tasks import TaskBook


def task(task_id: str, *, ttl: int | None = 60_000, status: types.TaskStatus = "working") -> types.Task:
    return types.Task(task_id=task_id, status=status, created_at="t", last_updated_at="t", ttl=ttl)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_task_is_found_only_by_the_agent_that_created_it():
    book = TaskBook()
    book.add("agent-a", "jobs", task("t1"))

    assert book.find("agent-a", "t1") is not None
    assert book.find("agent-b", "t1") is None
    assert book.of_agent("agent-b") == []


def test_an_id_the_agent_already_has_from_another_server_gets_that_servers_name():
    book = TaskBook()
    first = book.add("agent-a", "one", task("t1"))
    second = book.add("agent-a", "two", task("t1"))
    third = book.add("agent-a", "two", task("t1"))
    others = book.add("agent-b", "two", task("t1"))

    assert [first.public_id, second.public_id, third.public_id] == ["t1", "t1@two", "t1@two-2"]
    assert (second.server, second.upstream_id) == ("two", "t1")
    assert others.public_id == "t1"


def test_a_task_is_forgotten_when_the_retention_its_server_gave_has_passed():
    clock = Clock()
    book = TaskBook(clock=clock)
    book.add("agent-a", "jobs", task("t1", ttl=2_000))

    clock.now += 1.9
    assert book.find("agent-a", "t1") is not None
    clock.now += 0.2
    assert book.find("agent-a", "t1") is None


def test_a_task_kept_forever_is_forgotten_once_it_ended_and_its_result_was_fetched():
    book = TaskBook()
    forever = book.add("agent-a", "jobs", task("t1", ttl=None))
    timed = book.add("agent-a", "jobs", task("t2"))

    book.seen(forever, "completed")
    assert book.find("agent-a", "t1") is not None
    book.seen(forever, "completed", result_fetched=True)
    book.seen(timed, "completed", result_fetched=True)

    assert [entry.public_id for entry in book.of_agent("agent-a")] == ["t2"]


def test_an_agent_keeps_a_bounded_number_of_tasks_the_oldest_forgotten_first():
    book = TaskBook(limit=2)
    for number in range(3):
        book.add("agent-a", "jobs", task(f"t{number}"))

    assert [entry.public_id for entry in book.of_agent("agent-a")] == ["t1", "t2"]


def test_a_status_finds_its_task_by_server_and_the_servers_id():
    book = TaskBook()
    book.add("agent-a", "one", task("t1"))
    renamed = book.add("agent-a", "two", task("t1"))

    assert book.on_server("two", "t1") == [renamed]
    assert book.on_server("three", "t1") == []


def test_when_the_session_that_created_a_task_ends_the_task_stays_the_agents():
    book = TaskBook()
    entry = book.add("agent-a", "jobs", task("t1"), session_id="s1", session=object())  # type: ignore[arg-type]

    book.session_ended("s1")

    assert entry.session is None
    assert book.find("agent-a", "t1") is entry
