"""The solver's child process runs below the service's CPU priority."""

from __future__ import annotations

import os

import pytest

from ampc.replan.solving import SOLVER_NICENESS, SolverPool

pytestmark = pytest.mark.unit


async def test_the_solver_process_is_niced_below_the_service() -> None:
    pool = SolverPool()
    try:
        child = await pool._run(10.0, os.nice, 0)  # os.nice(0) reads the niceness
        assert not pool.busy
    finally:
        pool.close()
    assert child == min(19, os.nice(0) + SOLVER_NICENESS)
