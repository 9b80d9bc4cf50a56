"""Funding events: pools opened, contributions pledged then paid."""

from __future__ import annotations

import pytest

from ampc.contract import events as ev
from ampc.contract.events import RejectionCode
from ampc.contract.parties import Bloc
from ampc.ledger.fold import Applied, Rejected
from tests.unit.ledger.factory import Feed, paid, pledged, pool_opened, snapshot

pytestmark = pytest.mark.unit


def _rejected(outcome: object, code: RejectionCode, field_path: str) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.code is code, outcome
    assert outcome.field_path == field_path, outcome
    return outcome


def test_opened_pool_has_owner_rules_and_no_money() -> None:
    feed = Feed()

    assert isinstance(feed.send(pool_opened()), Applied)

    pool = feed.pool()
    assert (pool.owner, pool.pool_name) == ("CZI", "Czech initiative")
    assert pool.rules.price_cap_cents_per_unit == 500_000
    assert (pool.pledged_cents, pool.paid_cents, pool.committed_cents) == (0, 0, 0)


def test_pledges_and_payments_add_up_per_contribution_and_pool() -> None:
    feed = Feed()
    feed.send_all(
        pool_opened(),
        pledged(contribution_id="C-1", donor="DK", amount_cents=1_000_000),
        pledged(contribution_id="C-2", donor="NL", amount_cents=3_000_000),
        paid(contribution_id="C-1", donor="DK", amount_cents=400_000),
        paid(contribution_id="C-1", donor="DK", amount_cents=600_000),
        paid(contribution_id="C-2", donor="NL", amount_cents=500_000),
    )

    pool = feed.pool()
    assert (pool.pledged_cents, pool.paid_cents, pool.committed_cents) == (
        4_000_000,
        1_500_000,
        0,
    )
    c1 = pool.contributions["C-1"]
    assert (c1.donor, c1.pledged_cents, c1.paid_cents) == ("DK", 1_000_000, 1_000_000)
    assert pool.version == 6


def test_owner_reopening_a_pool_updates_rules_and_keeps_money() -> None:
    feed = Feed()
    feed.send_all(pool_opened(), pledged())

    feed.send(pool_opened(rules=ev.PoolRules(eligible_producer_blocs=[Bloc.EU])))

    pool = feed.pool()
    assert pool.rules.eligible_producer_blocs == [Bloc.EU]
    assert pool.pledged_cents == 1_000_000


def test_reopening_another_owners_pool_conflicts() -> None:
    feed = Feed()
    feed.send(pool_opened())

    outcome = feed.send(pool_opened(owner="EDA"))

    _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "pool_id")
    assert feed.pool().owner == "CZI"


def test_pledge_to_an_unknown_pool_is_rejected() -> None:
    outcome = Feed().send(pledged(pool_id="POOL-404"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "pool_id")
    assert "POOL-404" in rejected.message


def test_payment_to_an_unknown_pool_is_rejected() -> None:
    _rejected(Feed().send(paid(pool_id="POOL-404")), RejectionCode.UNKNOWN_ENTITY, "pool_id")


def test_payment_for_an_unknown_pledge_is_rejected() -> None:
    feed = Feed()
    feed.send(pool_opened())

    outcome = feed.send(paid(contribution_id="C-9"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "contribution_id")
    assert "C-9" in rejected.message
    assert feed.pool().paid_cents == 0


def test_payment_by_another_donor_than_the_pledger_is_not_authorised() -> None:
    feed = Feed()
    feed.send_all(pool_opened(), pledged(donor="DK"))

    outcome = feed.send(paid(donor="SE"))

    rejected = _rejected(outcome, RejectionCode.NOT_AUTHORISED, "donor")
    assert "DK" in rejected.message and "SE" in rejected.message
    assert feed.pool().paid_cents == 0


def test_payment_above_the_pledge_conflicts() -> None:
    feed = Feed()
    feed.send_all(pool_opened(), pledged(amount_cents=1_000_000), paid(amount_cents=700_000))
    before = snapshot(feed.store)

    outcome = feed.send(paid(amount_cents=400_000))

    rejected = _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "amount_cents")
    assert "1100000" in rejected.message and "1000000" in rejected.message
    assert snapshot(feed.store) == before


def test_repledge_changes_the_amount_but_not_below_what_is_paid() -> None:
    feed = Feed()
    feed.send_all(pool_opened(), pledged(amount_cents=1_000_000), paid(amount_cents=700_000))

    too_low = feed.send(pledged(amount_cents=500_000))
    raised = feed.send(pledged(amount_cents=2_000_000))

    _rejected(too_low, RejectionCode.CONFLICTS_WITH_STATE, "amount_cents")
    assert isinstance(raised, Applied)
    assert feed.pool().pledged_cents == 2_000_000


def test_repledge_by_another_donor_is_not_authorised() -> None:
    feed = Feed()
    feed.send_all(pool_opened(), pledged(donor="DK"))

    outcome = feed.send(pledged(donor="NO"))

    _rejected(outcome, RejectionCode.NOT_AUTHORISED, "donor")
    assert feed.pool().contributions["C-1"].donor == "DK"
