"""The stall watch: a loop held by a long call is measured, and the log names the call;
garbage collections' pauses are measured; a settled heap is out of the collector's scans."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from ampc.platform.stalls import StallWatch, settle_heap

pytestmark = pytest.mark.unit


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # stands for a long call that never yields


async def test_a_held_loop_is_measured_and_the_holder_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gauge = Gauge("stall_test_seconds", "test", registry=CollectorRegistry())
    watch = StallWatch(gauge, report_after=0.2, interval=0.02)
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="ampc.platform.stalls"):
        hold_the_loop(0.5)
        await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert watch.worst >= 0.4
    assert gauge._value.get() == watch.worst
    reports = [r.getMessage() for r in caplog.records if "hold_the_loop" in r.getMessage()]
    assert len(reports) == 1, reports  # one report per stall, naming where the loop was
    assert "event loop" in reports[0]


async def test_a_long_garbage_collection_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    gauge = Gauge("stall_test_gc_seconds", "test", registry=CollectorRegistry())
    watch = StallWatch(gauge, report_after=0.0, interval=0.02)  # every collection is "long"
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="ampc.platform.stalls"):
        gc.collect()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any("garbage collection of generation 2" in r.getMessage() for r in caplog.records)
    assert watch._on_gc not in gc.callbacks  # the watch cleans up after itself


async def test_each_garbage_collection_pause_is_measured() -> None:
    pauses: list[tuple[int, float]] = []
    gauge = Gauge("stall_test_pause_seconds", "test", registry=CollectorRegistry())
    watch = StallWatch(gauge, gc_pause=lambda generation, s: pauses.append((generation, s)))
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(0.01)
    gc.collect()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    full = [seconds for generation, seconds in pauses if generation == 2]
    assert full and all(0 <= seconds < 5 for seconds in full)


async def test_a_service_watch_reports_gc_pauses_as_a_metric() -> None:
    def count() -> float:
        labels = {"service": "stall-test", "generation": "2"}
        return REGISTRY.get_sample_value("ampc_gc_pause_seconds_count", labels) or 0.0

    before = count()
    task = asyncio.create_task(StallWatch.for_service("stall-test").run())
    await asyncio.sleep(0.01)
    gc.collect()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert count() >= before + 1  # an automatic full collection may come too


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()  # whatever froze before (another test's service) must not count here
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


def test_settle_heap_collects_garbage_then_freezes_what_lives(unfrozen: None) -> None:
    garbage = Cycle()
    gone = weakref.ref(garbage)
    del garbage  # only the collector frees a cycle
    kept = Cycle()
    assert gc.get_freeze_count() == 0
    settle_heap()
    assert gone() is None  # collected first: garbage is not frozen for good
    assert gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())  # frozen: out of every generation


def test_a_cycle_frozen_by_one_settle_is_collected_by_the_next(unfrozen: None) -> None:
    alive = Cycle()
    gone = weakref.ref(alive)
    settle_heap()  # frozen while alive (e.g. in flight when a plan was published)
    del alive
    gc.collect()
    assert gone() is not None  # frozen: the collector does not see it
    settle_heap(release_frozen=False)  # the cheap settle collects the young only
    assert gone() is not None
    settle_heap()
    assert gone() is None


async def test_a_watch_can_settle_the_heap_and_measures_that_collection(unfrozen: None) -> None:
    pauses: list[int] = []
    gauge = Gauge("stall_test_settle_seconds", "test", registry=CollectorRegistry())
    watch = StallWatch(gauge, gc_pause=lambda generation, _s: pauses.append(generation))
    task = asyncio.create_task(watch.run(settle_heap_first=True))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 2 in pauses
    assert gc.get_freeze_count() > 0
