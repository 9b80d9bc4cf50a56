"""A record whose processing fails is retried, then dead-lettered; never dropped silently."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any, NoReturn

import pytest

from ampc.platform.deadletter import source_record
from ampc.platform.streaming import (
    EXIT_UNPROCESSABLE,
    dead_letter_processing_failure,
    process_or_dead_letter,
)

pytestmark = pytest.mark.unit


class Stopped(Exception):
    pass


def stop(status: int) -> NoReturn:
    raise Stopped(status)


class Flaky:
    """Fails the first `failures` calls, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"failure {self.calls}")


async def test_a_passing_failure_is_retried_and_nothing_is_dead_lettered() -> None:
    process = Flaky(failures=2)
    dead: list[Exception] = []

    async def dead_letter(error: Exception) -> None:
        dead.append(error)

    await process_or_dead_letter(process, dead_letter, what="r", backoff_s=0, stop=stop)
    assert process.calls == 3
    assert dead == []


async def test_a_lasting_failure_is_dead_lettered_with_its_reason() -> None:
    process = Flaky(failures=99)
    dead: list[Exception] = []

    async def dead_letter(error: Exception) -> None:
        dead.append(error)

    await process_or_dead_letter(process, dead_letter, what="r", backoff_s=0, stop=stop)
    assert process.calls == 3
    assert [str(error) for error in dead] == ["failure 3"]


async def test_stops_the_worker_when_even_the_dead_letter_fails() -> None:
    async def dead_letter(error: Exception) -> None:
        raise ConnectionError("broker gone")

    with pytest.raises(Stopped) as stopped:
        await process_or_dead_letter(
            Flaky(failures=99), dead_letter, what="r", backoff_s=0, stop=stop
        )
    assert stopped.value.args == (EXIT_UNPROCESSABLE,)


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None, *rest: Any) -> None:
        self.sent.append((topic, key, value, rest[-1]))


async def test_a_processing_failure_is_dead_lettered_with_the_original_bytes_and_why() -> None:
    app = SimpleNamespace(producer=_Producer())
    source = source_record("ampc.canonical.demand", 2, 41, b"D-1", b'{"x": 1}', [("h", b"v")])
    send = dead_letter_processing_failure(
        app,  # type: ignore[arg-type]
        "ampc.deadletter",
        source,
        service="ledger",
        party="CZ",
        failed_to="process",
        advice="it is not in the state",
    )
    await send(RuntimeError("disk full"))
    [(topic, _key, value, _headers)] = app.producer.sent
    assert topic == "ampc.deadletter"
    body = json.loads(value or b"")
    assert body["error_code"] == "PROCESSING_FAILED"
    assert "the ledger could not process this event (RuntimeError: disk full)" in body["message"]
    assert body["message"].endswith("it is not in the state")
    assert (body["original_topic"], body["original_partition"], body["original_offset"]) == (
        "ampc.canonical.demand",
        2,
        41,
    )
    assert base64.b64decode(body["original_value_base64"]) == b'{"x": 1}'
    assert (body["nation"], body["rejected_by"]) == ("CZ", "ledger")
