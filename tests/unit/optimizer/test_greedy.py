"""The vectorised room pre-check of the greedy top-up changes nothing but speed."""

from __future__ import annotations

import numpy as np
import pytest

from ampc.optimizer.greedy import _remaining, _Residual, greedy_baseline, top_up
from ampc.optimizer.model import PlanningModel, build_model
from ampc.optimizer.scenario import generate
from ampc.optimizer.snapshot import PRIORITY_WEIGHT

pytestmark = pytest.mark.unit


def _naive_top_up(model: PlanningModel, x: np.ndarray) -> None:
    """The top-up as one ``give`` per candidate flow, in the same order."""
    remaining = _remaining(model, x)
    short = np.flatnonzero(remaining >= 1)
    residual = _Residual(model, x)
    weight = np.array([PRIORITY_WEIGHT[d.priority] for d in model.snapshot.demands], float)
    lateness = model.objectives[1][: model.n_flows]
    cost = model.objectives[2][: model.n_flows]
    candidates = np.flatnonzero(np.isin(model.flow_demand, short) & ~model.flow_fixed)
    order = np.lexsort(
        (cost[candidates], lateness[candidates], -weight[model.flow_demand[candidates]])
    )
    for flow in candidates[order].tolist():
        d = int(model.flow_demand[flow])
        if remaining[d] >= 1:
            remaining[d] -= residual.give(flow, remaining[d])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_top_up_matches_the_flow_by_flow_loop(seed: int) -> None:
    model = build_model(generate("small", seed))
    start = greedy_baseline(model)
    start[: model.n_flows] = np.floor(start[: model.n_flows] * 0.5)  # leave room to top up
    fast, slow = start.copy(), start.copy()
    top_up(model, fast)
    _naive_top_up(model, slow)
    assert np.array_equal(fast, slow)
    assert fast[: model.n_flows].sum() > start[: model.n_flows].sum()


def test_rooms_never_undercount_what_give_hands_out() -> None:
    model = build_model(generate("small", 4))
    x = np.zeros(model.n_cols)
    residual = _Residual(model, x)
    flows = np.arange(model.n_flows)
    rooms = residual.rooms(flows)
    for flow in flows[:: max(1, model.n_flows // 200)].tolist():
        got = residual.give(flow, 10**9)
        assert got <= rooms[flow] + 1e-9
