"""Build the planning model from a snapshot as numpy arrays (no per-term Python objects).

Columns
    flows      F[k]  rounds of source entry e made (or dispatched, for offers) in week w for
                     demand d, arriving in week w + transit(origin, recipient). Only eligible
                     (demand, entry) pairs and weeks whose arrival lies in the demand's window
                     [due - max_early_weeks, due + max_late_weeks] get a column; a stock offer
                     gets one week per demand (the others are dominated, see build_model).
    shortfall  S[d]  rounds of demand d not delivered in its window.
    lots       N[j]  number of lots of (lot-sized line entry, week); production is lot * N.
    churn      U[c]  |F - previous| for flows the previous plan had outside the frozen horizon.

Rows (all with non-negative coefficients on F, so rounding flows down keeps them satisfied)
    demand     sum F(d) + S[d] == quantity
    capacity   per line and week: production of all its products <= calendar * (1 - disruption),
               in whole lots on a lot-sized line (lot * floor(capacity / lot))
    lot link   per lot column: sum F(entry, week) - lot * N <= 0   (surplus stays unallocated)
    offer      sum F(offer) <= offered quantity                    (one-shot source)
    material   per material and week: sum bill * production <= weekly supply
    money      per pool: sum unit price * F <= paid - already committed
    churn      U - F >= -previous,  U + F >= previous

Objectives (minimised lexicographically by ``ampc.optimizer.solve``)
    1 weighted shortfall  sum weight(d) * S[d]
    2 weighted lateness   sum weight(d) * max(0, arrival - due) * F
    3 cost (EUR)          sum unit price * production (lot production for lot-sized lines)
    4 churn (rounds)      sum |F - previous| outside the frozen horizon

The LP view (``lp_*`` fields) is the same model with the lots relaxed: no lot columns and no
lot link rows, the flows of lot-sized lines counted directly on the capacity and material rows
and priced in the cost. Its optimum equals the LP relaxation's at every level (relaxed lots
are never worth more than the flows they carry), with half the rows on scenarios where lots are
common. LP mode solves this view and rounds to whole lots afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from ampc.optimizer.eligibility import (
    DemandEligibility,
    SourceEntry,
    eligibility,
    source_entries,
    transit_weeks,
)
from ampc.optimizer.snapshot import PRIORITY_WEIGHT, Snapshot

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MONEY_SCALE = 100_000.0
"""Money rows are in thousands of EUR (cents / 1e5) so their coefficients stay near 1..100."""
COST_SCALE = 100.0
"""The cost objective is in EUR inside the solver (cents / 100); plans report cents."""

LEVEL_NAMES = ("weighted_shortfall", "weighted_lateness", "cost_cents", "churn_rounds")


class RowKind(IntEnum):
    """What a model row stands for (used by explanations and bottleneck ranking)."""

    DEMAND = 0
    CAPACITY = 1
    LOT_LINK = 2
    OFFER = 3
    MATERIAL = 4
    MONEY = 5
    CHURN = 6


@dataclass
class PlanningModel:
    """The model as arrays, plus the index maps that turn a solution back into a plan."""

    snapshot: Snapshot
    sources: list[SourceEntry]
    eligibility: list[DemandEligibility]
    line_ids: list[str]
    weeks: int
    # flows
    flow_demand: IntArray
    flow_source: IntArray
    flow_week: IntArray
    flow_arrival: IntArray
    flow_fixed: BoolArray
    flow_lot_col: IntArray
    """Lot column whose production a flow draws on (-1: not a lot-sized line)."""
    # lots
    lot_source: IntArray
    lot_week: IntArray
    lot_size: FloatArray
    # churn
    churn_flow: IntArray
    previous_quantity: FloatArray
    # columns
    col_lb: FloatArray
    col_ub: FloatArray
    col_integer: BoolArray
    flow_integer_wanted: bool = True
    # rows
    row_lb: FloatArray = field(default_factory=lambda: np.zeros(0))
    row_ub: FloatArray = field(default_factory=lambda: np.zeros(0))
    row_kind: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    row_subject: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    row_week: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    # sparse matrix, sorted by (row, column)
    a_row: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    a_col: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    a_val: FloatArray = field(default_factory=lambda: np.zeros(0))
    objectives: list[FloatArray] = field(default_factory=list)
    objective_offsets: list[float] = field(default_factory=list)
    has_previous_plan: bool = False
    # the LP view with lots relaxed (see the module docstring); columns and rows keep their
    # indices in the full model, the lot columns and lot link rows are left out
    lp_columns: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    lp_rows: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    lp_a_row: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    lp_a_col: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    lp_a_val: FloatArray = field(default_factory=lambda: np.zeros(0))
    lp_cost: FloatArray = field(default_factory=lambda: np.zeros(0))
    """Cost objective of the LP view: lot-sized lines' flows carry their price."""

    @property
    def n_flows(self) -> int:
        """Number of flow columns."""
        return int(self.flow_demand.size)

    @property
    def n_demands(self) -> int:
        """Number of demands (and shortfall columns)."""
        return len(self.snapshot.demands)

    @property
    def shortfall_offset(self) -> int:
        """Column of the first shortfall variable."""
        return self.n_flows

    @property
    def lot_offset(self) -> int:
        """Column of the first lot variable."""
        return self.n_flows + self.n_demands

    @property
    def churn_offset(self) -> int:
        """Column of the first churn variable."""
        return self.lot_offset + int(self.lot_source.size)

    @property
    def n_cols(self) -> int:
        """Number of columns."""
        return int(self.col_lb.size)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.row_lb.size)

    def objective(self, level: int, relaxed_lots: bool = False) -> FloatArray:
        """Objective of a level (0-based) over the model's columns, or of the LP view."""
        if relaxed_lots and level == 2:
            return self.lp_cost
        return self.objectives[level]

    def fill_relaxed_lots(self, x: FloatArray) -> None:
        """Set the lot columns of an LP-view solution to the (fractional) lots its flows need,
        which makes ``x`` a solution of the full model's LP relaxation with the same values."""
        if self.lot_source.size == 0:
            return
        lot_flows = np.flatnonzero(self.flow_lot_col >= 0)
        need = np.bincount(
            self.flow_lot_col[lot_flows] - self.lot_offset,
            weights=x[lot_flows],
            minlength=self.lot_source.size,
        )
        x[self.lot_offset : self.churn_offset] = need / self.lot_size

    def is_mip(self, integral_flows: bool) -> bool:
        """Whether the model has integer columns when flows are (not) integral."""
        return bool(self.lot_source.size) or (integral_flows and self.n_flows > 0)


def committed_per_line_week(snapshot: Snapshot) -> dict[str, dict[int, int]]:
    """Rounds of committed orders per line id and week index."""
    out: dict[str, dict[int, int]] = {}
    for order in snapshot.committed_orders:
        weeks = out.setdefault(order.source_id, {})
        w = snapshot.week_index(order.production_week)
        weeks[w] = weeks.get(w, 0) + order.quantity
    return out


def line_capacity(snapshot: Snapshot) -> tuple[list[str], dict[str, str], FloatArray]:
    """Rounds per week of every line after ramp-up and disruptions: (line ids, line -> plant,
    array [line, week]) rounded down to whole rounds."""
    weeks = snapshot.horizon.weeks
    ids: list[str] = []
    plant_of: dict[str, str] = {}
    rows: list[FloatArray] = []
    committed = committed_per_line_week(snapshot)
    for plant in snapshot.plants:
        for line in plant.lines:
            cap = np.zeros(weeks)
            for step in sorted(line.capacity_calendar, key=lambda s: s.from_week):
                cap[max(0, snapshot.week_index(step.from_week)) :] = step.rounds_per_week
            for dis in plant.disruptions:
                if dis.line_id is not None and dis.line_id != line.id:
                    continue
                lo = max(0, snapshot.week_index(dis.from_week))
                hi = min(weeks - 1, snapshot.week_index(dis.to_week))
                if lo <= hi:
                    cap[lo : hi + 1] *= 1.0 - dis.fraction_lost
            # Committed orders stand even where a disruption (or a lower calendar) came after
            # them: the plant is held to its commitment, the tracker sees what is not made.
            # On a lot-sized line that means the whole lots the commitment takes.
            lot = line.lot_size or 1
            for w, quantity in committed.get(line.id, {}).items():
                cap[w] = max(cap[w], -(-quantity // lot) * lot)
            ids.append(line.id)
            plant_of[line.id] = plant.id
            rows.append(np.floor(cap + 1e-9))
    return ids, plant_of, np.array(rows).reshape(len(ids), weeks)


def material_supply(snapshot: Snapshot) -> tuple[list[str], FloatArray]:
    """Weekly supply of every material: (material codes, array [material, week])."""
    weeks = snapshot.horizon.weeks
    codes = [m.material for m in snapshot.materials]
    supply = np.zeros((len(codes), weeks))
    for i, m in enumerate(snapshot.materials):
        for step in sorted(m.supply, key=lambda s: s.from_week):
            supply[i, max(0, snapshot.week_index(step.from_week)) :] = step.quantity_per_week
    return codes, supply


def _segments(lo: IntArray, hi: IntArray) -> tuple[IntArray, IntArray]:
    """For ranges [lo, hi] give (owner index, value) of every integer inside them."""
    lengths = np.maximum(hi - lo + 1, 0)
    owner = np.repeat(np.arange(lo.size, dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    offset = np.arange(owner.size, dtype=np.int64) - np.repeat(starts, lengths)
    return owner, np.repeat(lo, lengths) + offset


def _row_major(
    row: IntArray, col: IntArray, val: FloatArray, n_cols: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Matrix entries sorted by (row, column), as MathOpt wants them (one integer key sorts
    several times faster than a lexsort of millions of entries)."""
    order = np.argsort(row * max(n_cols, 1) + col)
    return row[order], col[order], val[order]


class _FlowIndex:
    """(demand, source, week) -> flow column, by binary search over encoded keys (a dict of
    millions of tuples would dominate the build time)."""

    def __init__(
        self, dem: IntArray, src: IntArray, week: IntArray, n_sources: int, weeks: int
    ) -> None:
        self._n_sources, self._weeks = n_sources, weeks
        codes = (dem * n_sources + src) * weeks + week
        self._order = np.argsort(codes, kind="stable")
        self._sorted = codes[self._order]
        self._extra: dict[tuple[int, int, int], int] = {}

    def get(self, key: tuple[int, int, int]) -> int | None:
        """The flow column of a key, or None."""
        if key in self._extra:
            return self._extra[key]
        d, s, w = key
        if not 0 <= w < self._weeks:
            return None
        code = (d * self._n_sources + s) * self._weeks + w
        i = int(np.searchsorted(self._sorted, code))
        if i < self._sorted.size and self._sorted[i] == code:
            return int(self._order[i])
        return None

    def add(self, key: tuple[int, int, int], flow: int) -> None:
        """Register a flow added after construction."""
        self._extra[key] = flow


def build_model(snapshot: Snapshot) -> PlanningModel:
    """Turn a snapshot into the planning model (see the module docstring for its shape)."""
    weeks = snapshot.horizon.weeks
    sources = source_entries(snapshot)
    elig = eligibility(snapshot)
    line_ids, _, cap = line_capacity(snapshot)
    line_index = {lid: i for i, lid in enumerate(line_ids)}
    offer_ids = [o.id for o in snapshot.stock_offers]
    offer_index = {oid: i for i, oid in enumerate(offer_ids)}
    offers = snapshot.stock_offers
    routes = transit_weeks(snapshot)
    default_transit = snapshot.transit.default_weeks
    n_demands = len(snapshot.demands)
    n_sources = len(sources)

    src_line = np.array(
        [line_index[s.source_id] if s.kind == "line" else -1 for s in sources], np.int64
    ).reshape(n_sources)
    src_offer = np.array(
        [offer_index[s.source_id] if s.kind == "offer" else -1 for s in sources], np.int64
    ).reshape(n_sources)
    src_lot = np.array([s.lot_size or 0 for s in sources], np.float64).reshape(n_sources)
    src_price = np.array([s.unit_price_cents for s in sources], np.float64).reshape(n_sources)
    src_available = np.zeros(n_sources, np.int64)
    for s in sources:
        if s.kind == "offer":
            offer = offers[offer_index[s.source_id]]
            src_available[s.index] = max(0, snapshot.week_index(offer.available_week))

    # (demand, source) pairs with their production-week window
    pair_d: list[int] = []
    pair_s: list[int] = []
    pair_t: list[int] = []
    for d, (demand, de) in enumerate(zip(snapshot.demands, elig, strict=True)):
        for entry in de.eligible:
            pair_d.append(d)
            pair_s.append(entry.index)
            pair_t.append(routes.get((entry.origin, demand.recipient), default_transit))
    pd_ = np.array(pair_d, np.int64)
    ps = np.array(pair_s, np.int64)
    pt = np.array(pair_t, np.int64)
    due = np.array([snapshot.week_index(d.due_week) for d in snapshot.demands], np.int64)
    qty = np.array([d.quantity for d in snapshot.demands], np.float64)
    weight = np.array([PRIORITY_WEIGHT[d.priority] for d in snapshot.demands], np.float64)
    lo = np.maximum(due[pd_] - snapshot.max_early_weeks - pt, 0) if pd_.size else pd_
    lo = np.maximum(lo, src_available[ps]) if pd_.size else lo
    hi = np.minimum(due[pd_] + snapshot.max_late_weeks - pt, weeks - 1) if pd_.size else pd_
    # a stock offer has no weekly capacity, so all its on-time dispatch weeks are the same to
    # every row and objective, and a later late week is never better than an earlier one:
    # one column per (demand, offer) -- just in time, or the earliest if it is late anyway
    one_week = (src_offer[ps] >= 0) & (lo <= hi) if pd_.size else np.zeros(0, bool)
    just_in_time = np.minimum(np.maximum(due[pd_] - pt, lo), hi) if pd_.size else pd_
    lo = np.where(one_week, just_in_time, lo)
    hi = np.where(one_week, just_in_time, hi)
    owner, fweek = _segments(lo, hi)
    fdem, fsrc, farr = pd_[owner], ps[owner], fweek + pt[owner]
    # a line that makes nothing that week (burnt down) gets no column
    fline = src_line[fsrc]
    cap_any = cap if cap.shape[0] else np.zeros((1, weeks))  # a snapshot may have no plants
    keep = (fline < 0) | (cap_any[np.maximum(fline, 0), fweek] > 0)
    fdem, fsrc, fweek, farr = fdem[keep], fsrc[keep], fweek[keep], farr[keep]

    # committed orders become fixed flows (added if the window would not have them)
    key_of = _FlowIndex(fdem, fsrc, fweek, n_sources, weeks)
    source_index = {(s.source_id, s.product): s.index for s in sources}
    demand_index = {d.id: i for i, d in enumerate(snapshot.demands)}
    fixed_qty: dict[int, float] = {}
    extra: list[tuple[int, int, int, int]] = []
    for order in snapshot.committed_orders:
        s_idx = source_index.get((order.source_id, order.product))
        if s_idx is None:
            raise ValueError(f"committed_orders: {order.source_id} does not make {order.product}")
        d_idx = demand_index[order.demand_id]
        w = snapshot.week_index(order.production_week)
        key = (d_idx, s_idx, w)
        flow = key_of.get(key)
        if flow is None:
            origin = sources[s_idx].origin
            recipient = snapshot.demands[d_idx].recipient
            arrival = w + routes.get((origin, recipient), default_transit)
            flow = len(fdem) + len(extra)
            key_of.add(key, flow)
            extra.append((d_idx, s_idx, w, arrival))
        fixed_qty[flow] = fixed_qty.get(flow, 0.0) + order.quantity
    if extra:
        ex = np.array(extra, np.int64)
        fdem = np.concatenate([fdem, ex[:, 0]])
        fsrc = np.concatenate([fsrc, ex[:, 1]])
        fweek = np.concatenate([fweek, ex[:, 2]])
        farr = np.concatenate([farr, ex[:, 3]])
    n_flows = fdem.size
    fline = src_line[fsrc]
    foffer = src_offer[fsrc]
    flot = src_lot[fsrc] > 0

    # redundant with the rows, but the simplex needs far fewer pivots with them; shadow prices
    # add the reduced cost of flows held at these bounds (see explain.bottlenecks)
    flow_ub = qty[fdem].copy()
    on_line = fline >= 0
    flow_ub[on_line] = np.minimum(flow_ub[on_line], cap[fline[on_line], fweek[on_line]])
    offer_qty = np.array([o.quantity for o in offers], np.float64).reshape(len(offers))
    on_offer = foffer >= 0
    flow_ub[on_offer] = np.minimum(flow_ub[on_offer], offer_qty[foffer[on_offer]])
    flow_lb = np.zeros(n_flows)
    flow_fixed = np.zeros(n_flows, bool)
    for k, q in fixed_qty.items():
        flow_lb[k] = flow_ub[k] = q
        flow_fixed[k] = True

    # lot columns: one per (lot-sized entry, week) that some flow uses
    lot_keys = np.unique(fsrc[flot] * weeks + fweek[flot])
    lot_source, lot_week = lot_keys // weeks, lot_keys % weeks
    lot_size = src_lot[lot_source]
    n_lots = lot_keys.size
    lot_cap = cap[src_line[lot_source], lot_week]
    lot_ub = np.floor(lot_cap / np.maximum(lot_size, 1))
    flow_lot = np.searchsorted(lot_keys, fsrc * weeks + fweek)  # valid where flot

    # churn columns against the previous plan, outside the frozen horizon
    frozen = snapshot.frozen_horizon_weeks
    churn_flow_list: list[int] = []
    churn_prev_list: list[float] = []
    churn_constant = 0.0
    prev_of_flow = np.zeros(n_flows)
    has_prev = snapshot.previous_plan is not None
    if snapshot.previous_plan is not None:
        merged: dict[tuple[int, int, int], float] = {}
        for a in snapshot.previous_plan.allocations:
            w = snapshot.week_index(a.production_week)
            if w < frozen:
                continue
            prev_source = source_index.get((a.source_id, a.product))
            prev_demand = demand_index.get(a.demand_id)
            if prev_source is None or prev_demand is None:
                churn_constant += a.quantity
                continue
            prev_key = (prev_demand, prev_source, w)
            merged[prev_key] = merged.get(prev_key, 0.0) + a.quantity
        for prev_key, q in sorted(merged.items()):
            flow = key_of.get(prev_key)
            if flow is None:
                churn_constant += q  # the old flow cannot exist any more: all of it moves
            else:
                churn_flow_list.append(flow)
                churn_prev_list.append(q)
                prev_of_flow[flow] = q
    churn_flow = np.array(churn_flow_list, np.int64)
    churn_prev = np.array(churn_prev_list, np.float64)
    n_churn = churn_flow.size

    # --- columns ---
    short_off = n_flows
    lot_off = short_off + n_demands
    churn_off = lot_off + n_lots
    n_cols = churn_off + n_churn
    col_lb = np.concatenate([flow_lb, np.zeros(n_demands), np.zeros(n_lots), np.zeros(n_churn)])
    col_ub = np.concatenate([flow_ub, qty, lot_ub, np.full(n_churn, np.inf)])
    col_integer = np.concatenate(
        [
            np.ones(n_flows, bool),
            np.ones(n_demands, bool),
            np.ones(n_lots, bool),
            np.ones(n_churn, bool),
        ]
    )

    # --- rows ---
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    r_lb: list[FloatArray] = []
    r_ub: list[FloatArray] = []
    r_kind: list[IntArray] = []
    r_subject: list[IntArray] = []
    r_week: list[IntArray] = []
    next_row = 0

    def add_rows(
        count: int,
        lb: FloatArray,
        ub: FloatArray,
        kind: RowKind,
        subject: IntArray,
        week: IntArray,
    ) -> int:
        nonlocal next_row
        base = next_row
        next_row += count
        r_lb.append(lb)
        r_ub.append(ub)
        r_kind.append(np.full(count, int(kind), np.int64))
        r_subject.append(subject)
        r_week.append(week)
        return base

    def add_terms(r: IntArray, c: IntArray, v: FloatArray) -> None:
        rows.append(r.astype(np.int64))
        cols.append(c.astype(np.int64))
        vals.append(v.astype(np.float64))

    flow_cols = np.arange(n_flows, dtype=np.int64)
    # demand rows
    base = add_rows(
        n_demands, qty, qty, RowKind.DEMAND, np.arange(n_demands), np.full(n_demands, -1)
    )
    add_terms(base + fdem, flow_cols, np.ones(n_flows))
    add_terms(base + np.arange(n_demands), short_off + np.arange(n_demands), np.ones(n_demands))
    # capacity rows per (line, week); a lot-sized line makes whole lots only, so its usable
    # capacity is lot * floor(capacity / lot) (tightens the LP relaxation, exact for lots)
    n_lines = len(line_ids)
    line_lot = np.array(
        [ln.lot_size or 0 for p in snapshot.plants for ln in p.lines], np.float64
    ).reshape(n_lines)
    usable = cap.copy()
    lot_lines = line_lot > 0
    usable[lot_lines] = (
        np.floor(cap[lot_lines] / line_lot[lot_lines, None] + 1e-9) * line_lot[lot_lines, None]
    )
    cap_base = base = add_rows(
        n_lines * weeks,
        np.full(n_lines * weeks, -np.inf),
        usable.reshape(-1),
        RowKind.CAPACITY,
        np.repeat(np.arange(n_lines), weeks),
        np.tile(np.arange(weeks), n_lines),
    )
    plain_line = on_line & ~flot
    add_terms(
        base + fline[plain_line] * weeks + fweek[plain_line],
        flow_cols[plain_line],
        np.ones(int(plain_line.sum())),
    )
    add_terms(base + src_line[lot_source] * weeks + lot_week, lot_off + np.arange(n_lots), lot_size)
    # lot link rows
    base = add_rows(
        n_lots, np.full(n_lots, -np.inf), np.zeros(n_lots), RowKind.LOT_LINK, lot_source, lot_week
    )
    add_terms(base + flow_lot[flot], flow_cols[flot], np.ones(int(flot.sum())))
    add_terms(base + np.arange(n_lots), lot_off + np.arange(n_lots), -lot_size)
    # offer rows
    n_offers = len(offers)
    base = add_rows(
        n_offers,
        np.full(n_offers, -np.inf),
        offer_qty,
        RowKind.OFFER,
        np.arange(n_offers),
        np.full(n_offers, -1),
    )
    add_terms(base + foffer[on_offer], flow_cols[on_offer], np.ones(int(on_offer.sum())))
    # material rows per (material, week)
    mat_codes, supply = material_supply(snapshot)
    n_mat = len(mat_codes)
    mat_base = base = add_rows(
        n_mat * weeks,
        np.full(n_mat * weeks, -np.inf),
        supply.reshape(-1),
        RowKind.MATERIAL,
        np.repeat(np.arange(n_mat), weeks),
        np.tile(np.arange(weeks), n_mat),
    )
    product_bill = {p.code: p.bill for p in snapshot.products}
    bills: list[FloatArray] = []
    for m, code in enumerate(mat_codes):
        per_source = np.array(
            [product_bill[s.product].get(code, 0.0) if s.kind == "line" else 0.0 for s in sources],
            np.float64,
        ).reshape(n_sources)
        bills.append(per_source)
        use = plain_line & (per_source[fsrc] > 0)
        add_terms(base + m * weeks + fweek[use], flow_cols[use], per_source[fsrc[use]])
        lot_use = per_source[lot_source] > 0
        add_terms(
            base + m * weeks + lot_week[lot_use],
            lot_off + np.arange(n_lots)[lot_use],
            per_source[lot_source[lot_use]] * lot_size[lot_use],
        )
    # money rows per pool
    pool_index = {p.id: i for i, p in enumerate(snapshot.pools)}
    n_pools = len(snapshot.pools)
    available = np.array(
        [max(0, p.paid_cents - p.committed_cents) for p in snapshot.pools], np.float64
    ).reshape(n_pools)
    base = add_rows(
        n_pools,
        np.full(n_pools, -np.inf),
        available / MONEY_SCALE,
        RowKind.MONEY,
        np.arange(n_pools),
        np.full(n_pools, -1),
    )
    demand_pool = np.array([pool_index[d.pool_id] for d in snapshot.demands], np.int64)
    priced = src_price[fsrc] > 0
    add_terms(
        base + demand_pool[fdem[priced]], flow_cols[priced], src_price[fsrc[priced]] / MONEY_SCALE
    )
    # churn rows: U - F >= -prev ; U + F >= prev
    base = add_rows(
        2 * n_churn,
        np.concatenate([-churn_prev, churn_prev]),
        np.full(2 * n_churn, np.inf),
        RowKind.CHURN,
        np.tile(np.arange(n_churn), 2),
        np.full(2 * n_churn, -1),
    )
    u_cols = churn_off + np.arange(n_churn)
    add_terms(base + np.arange(n_churn), u_cols, np.ones(n_churn))
    add_terms(base + np.arange(n_churn), churn_flow, -np.ones(n_churn))
    add_terms(base + n_churn + np.arange(n_churn), u_cols, np.ones(n_churn))
    add_terms(base + n_churn + np.arange(n_churn), churn_flow, np.ones(n_churn))

    a_row, a_col, a_val = _row_major(
        np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), n_cols
    )
    row_kind = np.concatenate(r_kind)

    # --- objectives ---
    shortfall_obj = np.zeros(n_cols)
    shortfall_obj[short_off : short_off + n_demands] = weight
    lateness_obj = np.zeros(n_cols)
    lateness_obj[:n_flows] = weight[fdem] * np.maximum(farr - due[fdem], 0)
    cost_obj = np.zeros(n_cols)
    cost_obj[:n_flows] = np.where(flot, 0.0, src_price[fsrc]) / COST_SCALE
    cost_obj[lot_off : lot_off + n_lots] = src_price[lot_source] * lot_size / COST_SCALE
    churn_obj = np.zeros(n_cols)
    if has_prev:
        free = (fweek >= frozen) & (prev_of_flow == 0)
        churn_obj[:n_flows][free] = 1.0
        churn_obj[churn_off:] = 1.0

    # --- the LP view: lots relaxed into the flows they carry ---
    if n_lots:
        lot_col = (a_col >= lot_off) & (a_col < churn_off)
        keep = ~lot_col & (row_kind[a_row] != int(RowKind.LOT_LINK))
        lot_flow_cols = flow_cols[flot]
        lp_rows_parts = [a_row[keep], cap_base + fline[flot] * weeks + fweek[flot]]
        lp_cols_parts = [a_col[keep], lot_flow_cols]
        lp_vals_parts = [a_val[keep], np.ones(lot_flow_cols.size)]
        for m, per_source in enumerate(bills):
            use = per_source[fsrc[flot]] > 0
            lp_rows_parts.append(mat_base + m * weeks + fweek[flot][use])
            lp_cols_parts.append(lot_flow_cols[use])
            lp_vals_parts.append(per_source[fsrc[flot][use]])
        lp_a_row, lp_a_col, lp_a_val = _row_major(
            np.concatenate(lp_rows_parts).astype(np.int64),
            np.concatenate(lp_cols_parts).astype(np.int64),
            np.concatenate(lp_vals_parts).astype(np.float64),
            n_cols,
        )
        lp_columns = np.concatenate([np.arange(lot_off), np.arange(churn_off, n_cols)])
        lp_rows = np.flatnonzero(row_kind != int(RowKind.LOT_LINK))
        lp_cost = cost_obj.copy()
        lp_cost[lot_off:churn_off] = 0.0
        lp_cost[:n_flows][flot] = src_price[fsrc[flot]] / COST_SCALE
    else:
        lp_a_row, lp_a_col, lp_a_val = a_row, a_col, a_val
        lp_columns, lp_rows = np.arange(n_cols), np.arange(row_kind.size)
        lp_cost = cost_obj

    return PlanningModel(
        snapshot=snapshot,
        sources=sources,
        eligibility=elig,
        line_ids=line_ids,
        weeks=weeks,
        flow_demand=fdem,
        flow_source=fsrc,
        flow_week=fweek,
        flow_arrival=farr,
        flow_fixed=flow_fixed,
        flow_lot_col=np.where(flot, lot_off + flow_lot, -1).astype(np.int64),
        lot_source=lot_source,
        lot_week=lot_week,
        lot_size=lot_size,
        churn_flow=churn_flow,
        previous_quantity=churn_prev,
        col_lb=col_lb,
        col_ub=col_ub,
        col_integer=col_integer,
        row_lb=np.concatenate(r_lb),
        row_ub=np.concatenate(r_ub),
        row_kind=row_kind,
        row_subject=np.concatenate(r_subject).astype(np.int64),
        row_week=np.concatenate(r_week).astype(np.int64),
        a_row=a_row,
        a_col=a_col,
        a_val=a_val,
        objectives=[shortfall_obj, lateness_obj, cost_obj, churn_obj],
        objective_offsets=[0.0, 0.0, 0.0, churn_constant],
        has_previous_plan=has_prev,
        lp_columns=lp_columns.astype(np.int64),
        lp_rows=lp_rows.astype(np.int64),
        lp_a_row=lp_a_row,
        lp_a_col=lp_a_col,
        lp_a_val=lp_a_val,
        lp_cost=lp_cost,
    )


def recompute_dependent(model: PlanningModel, x: FloatArray) -> None:
    """Set shortfall and churn columns from the flows (they are implied by them)."""
    nf = model.n_flows
    delivered = np.bincount(model.flow_demand, weights=x[:nf], minlength=model.n_demands)
    qty = model.col_ub[model.shortfall_offset : model.lot_offset]
    x[model.shortfall_offset : model.lot_offset] = np.maximum(qty - delivered, 0.0)
    if model.churn_flow.size:
        x[model.churn_offset :] = np.abs(x[model.churn_flow] - model.previous_quantity)
