"""The stall watch: a loop held by a long call is measured, and the log names the call."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest
from prometheus_client import CollectorRegistry, Gauge

from ampc.platform.stalls import StallWatch

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
