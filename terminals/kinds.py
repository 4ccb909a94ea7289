"""The incident vocabulary of the outward API (api.md, Incident kinds)."""

from __future__ import annotations

from typing import Final, Literal, get_args

IncidentKind = Literal[
    "printer_paper_out",
    "printer_jam",
    "printer_fault",
    "cash_acceptor_jam",
    "cash_acceptor_full",
    "cash_acceptor_fault",
    "terminal_offline",
    "payment_failures",
    "silent_fault",
    "clock_skew",
]
#: Every incident kind of the contract, in the order api.md lists them.
INCIDENT_KINDS: Final[tuple[str, ...]] = get_args(IncidentKind)
