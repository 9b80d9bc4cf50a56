"""A record whose processing fails is retried, then dead-lettered; never dropped silently."""

from __future__ import annotations

from typing import NoReturn

import pytest

from ampc.platform.streaming import EXIT_UNPROCESSABLE, process_or_dead_letter

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
