"""Constrained value types shared by every event: the validation a careful integrator expects.

Quantities are whole rounds, money is EUR in integer cents, time is ISO weeks named by their
Monday. Bounds are generous for the domain but finite, so that a typo of a few extra digits is
caught at the gateway instead of poisoning a plan.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Final

from pydantic import AfterValidator, Field, StringConstraints

EARLIEST_WEEK: Final = dt.date(2020, 1, 6)
LATEST_WEEK: Final = dt.date(2045, 12, 25)

MAX_ROUNDS: Final = 50_000_000
"""More than a year of the whole alliance's output of any calibre: anything above is a typo."""

MAX_CENTS: Final = 10**14
"""EUR 1 trillion in cents: above any pool or order the alliance runs."""


def _monday_in_range(value: dt.date) -> dt.date:
    if value.weekday() != 0:
        raise ValueError(
            f"{value.isoformat()} is a {value.strftime('%A')}; weeks are named by their Monday"
        )
    if not EARLIEST_WEEK <= value <= LATEST_WEEK:
        raise ValueError(
            f"{value.isoformat()} is outside the planning range "
            f"{EARLIEST_WEEK.isoformat()}..{LATEST_WEEK.isoformat()}"
        )
    return value


Week = Annotated[dt.date, AfterValidator(_monday_in_range)]
"""An ISO week, named by its Monday date."""

Rounds = Annotated[int, Field(gt=0, le=MAX_ROUNDS)]
"""A positive whole number of rounds."""

RoundsOrZero = Annotated[int, Field(ge=0, le=MAX_ROUNDS)]

Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]
"""EUR in integer cents, never negative."""

PositiveCents = Annotated[int, Field(gt=0, le=MAX_CENTS)]

Percent = Annotated[int, Field(ge=0, le=100)]

EntityId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]
"""An identifier chosen by the national system: letters, digits and . _ : - (max 64)."""

ProductCode = Annotated[
    str,
    StringConstraints(max_length=32, pattern=r"^[0-9]{2,3}-[A-Z0-9]+(-[A-Z0-9]+)*$"),
]
"""A product code such as 155-HE, 155-CHARGE, 122-HE, 120-MORTAR."""

InteropGroupCode = Annotated[
    str,
    StringConstraints(max_length=32, pattern=r"^IG-[A-Z0-9]+(-[A-Z0-9]+)*$"),
]
"""An interoperability group such as IG-155-JBMOU (rounds that may stand in for each other)."""

MaterialCode = Annotated[
    str,
    StringConstraints(max_length=32, pattern=r"^[A-Z][A-Z0-9-]*$"),
]
"""A scarce upstream material such as NC (nitrocellulose) or TNT."""

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


class Priority(StrEnum):
    """How a demand ranks in the optimizer's first two objectives."""

    URGENT = "URGENT"
    HIGH = "HIGH"
    ROUTINE = "ROUTINE"
