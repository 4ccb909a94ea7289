"""A fault on one simulated terminal while it lasts; it becomes a ground-truth record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from terminals.kinds import INCIDENT_KINDS

#: Faults an engineer's visit puts right; a network loss and a payment-host fault end by
#: themselves.
VISIT_ENDS: Final = frozenset(INCIDENT_KINDS) - {"terminal_offline", "payment_failures"}
#: Faults that make receipts fail.
PRINTER_KINDS: Final = ("printer_paper_out", "printer_jam", "printer_fault")


@dataclass(slots=True)
class Fault:
    """One fault, injected by the scenario or natural; ``start`` is -1 until it has really
    begun (an acceptor jam waits for a customer's banknote)."""

    fault_id: str
    tid: str
    kind: str
    source: str
    start: int = -1  # ms
    end: int | None = None
    scenario_id: str | None = None
    group: str | None = None
    region: str | None = None
    flap: int | None = None
    mode: str | None = None
    variant: str = ""
    ended_by: str = "end"
    evidence: int = 0
    #: When each piece of evidence a rule can see arrived (ms): the timed-out payments of a
    #: payment-host fault, the complaints received about a silent fault.
    evidence_at: list[int] = field(default_factory=list)
    #: terminal_offline: when the terminal's last message before the fault was published (ms).
    last_message: int | None = None
    flap_on: bool = True
