"""Who may speak on ampc: nations (ISO 3166-1 alpha-2) and the organisations that own funding
pools (an agency such as NSPA, or a multinational initiative).

Memberships drive eligibility rules (EU-only funding, NATO-qualified producers), so they are
data here rather than strings scattered through the code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

import iso3166
from pydantic import AfterValidator, StringConstraints


class Bloc(StrEnum):
    """Alliances and markets that funding rules refer to."""

    NATO = "NATO"
    EU = "EU"
    EEA = "EEA"


_NATO: Final = frozenset(
    [
        "AL",
        "BE",
        "BG",
        "CA",
        "HR",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IS",
        "IT",
        "LV",
        "LT",
        "LU",
        "ME",
        "NL",
        "MK",
        "NO",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "TR",
        "GB",
        "US",
    ]
)
_EU: Final = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    ]
)
# The EEA is the EU plus Iceland, Liechtenstein and Norway.
_EEA: Final = _EU | {"IS", "LI", "NO"}

MEMBERSHIPS: Final[dict[Bloc, frozenset[str]]] = {
    Bloc.NATO: _NATO,
    Bloc.EU: _EU,
    Bloc.EEA: _EEA,
}

# Nations that take part beyond the blocs: the main recipient, and partners that produce or sell
# rounds to the alliance.
_PARTNERS: Final = frozenset({"UA", "AU", "KR", "JP", "ZA", "CH"})

PARTICIPATING_NATIONS: Final[tuple[str, ...]] = tuple(sorted(_NATO | _EU | _PARTNERS))
"""Nations with an inbox topic on ampc (the alliance's members plus partners)."""

ORGANISATIONS: Final[dict[str, str]] = {
    "NSPA": "NATO Support and Procurement Agency",
    "CZI": "Czech-led ammunition initiative",
    "EDA": "European Defence Agency",
}
"""Non-national parties that own funding pools and may open them."""


def memberships_of(nation: str) -> frozenset[Bloc]:
    """The blocs a nation belongs to (empty for non-members such as UA)."""
    return frozenset(bloc for bloc, members in MEMBERSHIPS.items() if nation in members)


def _known_nation(code: str) -> str:
    if code not in iso3166.countries_by_alpha2:
        raise ValueError(f"'{code}' is not an ISO 3166-1 alpha-2 country code")
    return code


def _known_party(code: str) -> str:
    if code in ORGANISATIONS:
        return code
    if code in iso3166.countries_by_alpha2:
        return code
    raise ValueError(
        f"'{code}' is neither an ISO 3166-1 alpha-2 country code nor a known organisation "
        f"({', '.join(sorted(ORGANISATIONS))})"
    )


NationCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$", min_length=2, max_length=2),
    AfterValidator(_known_nation),
]
"""An ISO 3166-1 alpha-2 code of a country that exists."""

PartyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2,8}$", min_length=2, max_length=8),
    AfterValidator(_known_party),
]
"""A nation code or the code of a known organisation (NSPA, CZI, EDA)."""


def inbox_parties() -> tuple[str, ...]:
    """Every party that gets its own inbox topic: participating nations, then organisations."""
    return PARTICIPATING_NATIONS + tuple(sorted(ORGANISATIONS))
