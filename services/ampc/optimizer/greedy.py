"""Greedy allocation on the model's rows: the honest baseline and the rounding top-up.

Both walk flow columns in a chosen order and give each as many whole rounds as every
``<=`` row it touches still allows (capacity, lot, offer, material, money), opening new lots on
lot-sized lines when needed. Demands are never over-served.

Slack only shrinks while rounds are given, so a room computed for many flows at once (numpy)
stays an upper bound: the top-up skips flows whose room is under one round without the
per-flow Python call.
"""

from __future__ import annotations

import math

import numpy as np

from ampc.optimizer.model import FloatArray, IntArray, PlanningModel, RowKind, recompute_dependent
from ampc.optimizer.snapshot import PRIORITY_WEIGHT

_BLOCK = 2048
"""Flows whose rooms are computed together in ``top_up`` (rooms go stale, never too small)."""
_LIMIT_ROWS = (RowKind.CAPACITY, RowKind.LOT_LINK, RowKind.OFFER, RowKind.MATERIAL, RowKind.MONEY)


class _Residual:
    """Slack of every limiting row for a solution vector, updated in place."""

    def __init__(self, model: PlanningModel, x: FloatArray) -> None:
        self.model = model
        self.x = x
        limiting = np.isin(model.row_kind, [int(k) for k in _LIMIT_ROWS])
        keep = limiting[model.a_row]
        rows, cols, vals = model.a_row[keep], model.a_col[keep], model.a_val[keep]
        activity = np.bincount(rows, weights=vals * x[cols], minlength=model.n_rows)
        self.slack = model.row_ub - activity
        order = np.argsort(cols, kind="stable")
        self.rows: IntArray = rows[order]
        self.vals: FloatArray = vals[order]
        self.ptr: IntArray = np.searchsorted(cols[order], np.arange(model.n_cols + 1))
        self.lot_link = model.row_kind == int(RowKind.LOT_LINK)

    def rooms(self, flows: IntArray) -> FloatArray:
        """Upper bounds of the rounds each flow could still take (vectorised; lot link rows
        are left out, so a lot-sized flow may get less from ``give``)."""
        model = self.model
        starts, ends = self.ptr[flows], self.ptr[flows + 1]
        lengths = ends - starts
        owner = np.repeat(np.arange(flows.size), lengths)
        entry = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            int(lengths.sum())
        )
        rows, vals = self.rows[entry], self.vals[entry]
        counted = (vals > 0) & ~self.lot_link[rows]
        bound = np.full(rows.size, np.inf)
        bound[counted] = np.maximum(self.slack[rows[counted]], 0.0) / vals[counted]
        room: FloatArray = model.col_ub[flows] - self.x[flows]
        np.minimum.at(room, owner, bound)
        return room

    def _column(self, col: int) -> tuple[IntArray, FloatArray]:
        lo, hi = self.ptr[col], self.ptr[col + 1]
        return self.rows[lo:hi], self.vals[lo:hi]

    def _room(self, col: int, skip_lot_link: bool) -> float:
        rows, vals = self._column(col)
        room = self.model.col_ub[col] - self.x[col]
        for r, v in zip(rows.tolist(), vals.tolist(), strict=True):
            if v > 0 and not (skip_lot_link and self.lot_link[r]):
                room = min(room, max(float(self.slack[r]), 0.0) / v)
        return float(room)

    def _add(self, col: int, amount: float) -> None:
        rows, vals = self._column(col)
        self.x[col] += amount
        self.slack[rows] -= vals * amount

    def give(self, flow: int, wanted: float) -> float:
        """Give ``flow`` up to ``wanted`` whole rounds; returns what it got."""
        lot_col = int(self.model.flow_lot_col[flow])
        room = self._room(flow, skip_lot_link=lot_col >= 0)
        if lot_col < 0:
            amount = math.floor(min(room, wanted) + 1e-9)
            if amount > 0:
                self._add(flow, amount)
            return float(max(amount, 0))
        rows, _ = self._column(flow)
        link = int(rows[self.lot_link[rows]][0])
        lot = float(
            -self.vals[self.ptr[lot_col] : self.ptr[lot_col + 1]][
                self.rows[self.ptr[lot_col] : self.ptr[lot_col + 1]] == link
            ][0]
        )
        in_lots = max(self.slack[link], 0.0)
        more_lots = math.floor(self._room(lot_col, skip_lot_link=False) + 1e-9)
        amount = math.floor(min(room, wanted, in_lots + lot * more_lots) + 1e-9)
        if amount <= 0:
            return 0.0
        need = max(0.0, amount - in_lots)
        if need > 0:
            self._add(lot_col, math.ceil(need / lot - 1e-9))
        self._add(flow, amount)
        return float(amount)


def _remaining(model: PlanningModel, x: FloatArray) -> FloatArray:
    delivered = np.bincount(
        model.flow_demand, weights=x[: model.n_flows], minlength=model.n_demands
    )
    qty = model.col_ub[model.shortfall_offset : model.lot_offset]
    return np.maximum(qty - delivered, 0.0)


def top_up(model: PlanningModel, x: FloatArray) -> None:
    """Give short demands whatever whole rounds the rows still allow (most urgent first,
    least late and cheapest sources first). Changes ``x`` in place."""
    remaining = _remaining(model, x)
    short = np.flatnonzero(remaining >= 1)
    if short.size == 0:
        return
    residual = _Residual(model, x)
    weight = np.array([PRIORITY_WEIGHT[d.priority] for d in model.snapshot.demands], float)
    lateness = model.objectives[1][: model.n_flows]
    cost = model.objectives[2][: model.n_flows]
    candidates = np.flatnonzero(np.isin(model.flow_demand, short) & ~model.flow_fixed)
    order = np.lexsort(
        (cost[candidates], lateness[candidates], -weight[model.flow_demand[candidates]])
    )
    ordered = candidates[order]
    for block in range(0, ordered.size, _BLOCK):
        flows = ordered[block : block + _BLOCK]
        flows = flows[remaining[model.flow_demand[flows]] >= 1]
        flows = flows[residual.rooms(flows) >= 1 - 1e-9]
        for flow in flows.tolist():
            d = int(model.flow_demand[flow])
            if remaining[d] < 1:
                continue
            remaining[d] -= residual.give(flow, remaining[d])


def greedy_baseline(model: PlanningModel) -> FloatArray:
    """The planner's rule of thumb, as a solution vector of ``model``.

    Demands by priority then due week; for each, sources that still arrive on time, latest
    production week first (keeping early capacity for later-served demands), then late
    sources, earliest arrival first. Capacity, lots, offers, materials and money respected;
    committed orders kept.
    """
    x = np.zeros(model.n_cols)
    x[: model.n_flows] = np.where(model.flow_fixed, model.col_lb[: model.n_flows], 0.0)
    fixed_lots = model.flow_lot_col[model.flow_fixed]
    residual = _Residual(model, x)
    for lot_col in np.unique(fixed_lots[fixed_lots >= 0]).tolist():
        # open enough lots for the committed rounds
        rows, vals = residual._column(lot_col)
        link = rows[residual.lot_link[rows]][0]
        lot = -vals[residual.lot_link[rows]][0]
        need = max(0.0, -residual.slack[link])
        residual._add(lot_col, math.ceil(need / lot - 1e-9))
    remaining = _remaining(model, x)
    demands = model.snapshot.demands
    due = np.array([model.snapshot.week_index(d.due_week) for d in demands], np.int64)
    weight = np.array([PRIORITY_WEIGHT[d.priority] for d in demands], float)
    demand_order = np.lexsort((np.arange(len(demands)), due, -weight))
    flows_by_demand = np.argsort(model.flow_demand, kind="stable")
    starts = np.searchsorted(model.flow_demand[flows_by_demand], np.arange(len(demands) + 1))
    for d in demand_order.tolist():
        flows = flows_by_demand[starts[d] : starts[d + 1]]
        flows = flows[~model.flow_fixed[flows]]
        late = model.flow_arrival[flows] > due[d]
        on_time = flows[~late]
        on_time = on_time[np.argsort(-model.flow_week[on_time], kind="stable")]
        late_flows = flows[late]
        late_flows = late_flows[np.argsort(model.flow_arrival[late_flows], kind="stable")]
        ordered = np.concatenate([on_time, late_flows])
        # rooms only shrink while rounds are given: a flow without room for one round now
        # gets none later either (most flows of a tight scenario), so skip it unvisited
        ordered = ordered[residual.rooms(ordered) >= 1 - 1e-9]
        for flow in ordered.tolist():
            if remaining[d] < 1:
                break
            remaining[d] -= residual.give(flow, remaining[d])
    recompute_dependent(model, x)
    return x
