"""Customer complaints: who complains, when, what they remember and how they say it.

A customer complains some minutes or hours after the trouble, remembers the time only
approximately (within 15 minutes, to the minute) and the amount usually right, and now and
then gives the address instead of the terminal id. The body is the JSON of api.md
(``POST /api/v1/complaints``), also published as is on ``support/complaints``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from simulator.customers import phone_number, remembered_amount
from simulator.timefmt import MINUTE, rfc3339

TEXTS: Final[dict[str, tuple[str, ...]]] = {
    "no_receipt": (
        "paid {amount}, the terminal gave no receipt",
        "no receipt after paying {amount}",
        "receipt did not print, paid {amount}",
    ),
    "payment_failed": (
        "the terminal took {amount} and said the payment failed",
        "payment of {amount} did not go through",
        "error on screen after inserting {amount}",
    ),
    "cash_not_credited": (
        "put in {amount}, money never arrived on my account",
        "paid {amount} for {service}, not credited",
        "the terminal kept my {amount}, nothing credited",
    ),
    "terminal_out_of_order": (
        "the terminal is out of order, could not pay",
        "terminal does not accept cash",
        "screen says out of service",
    ),
    "other": (
        "the terminal was slow and confusing",
        "I think I was charged twice",
        "commission was higher than shown",
        "could not find my provider in the menu",
    ),
}
CHANNELS: Final = ("phone", "phone", "phone", "web", "email", "chat")


@dataclass(frozen=True, slots=True)
class Affected:
    """One customer's trouble, from which a complaint may follow."""

    category: str
    tid: str
    address: str
    offset_min: int  # the terminal's local offset, used for the times the customer gives
    occurred: int  # ms, when it really happened
    amount_minor: int | None
    service: str | None
    phone: str | None


def complaint_body(
    rng: random.Random,
    ref: str,
    affected: Affected,
    received: int,
    *,
    address_only: float,
    amount_wrong: float,
) -> tuple[dict[str, Any], bool]:
    """The api.md complaint body, and whether it names only the address."""
    remembered = affected.occurred + rng.randint(-15 * MINUTE, 15 * MINUTE)
    remembered = min(remembered, received)
    remembered -= remembered % MINUTE
    amount = affected.amount_minor
    if amount is not None:
        amount = remembered_amount(rng, amount, amount_wrong)
    by_address = rng.random() < address_only
    text = rng.choice(TEXTS[affected.category]).format(
        amount=f"{amount // 100} RUB" if amount is not None else "money",
        service=affected.service or "my bill",
    )
    body: dict[str, Any] = {
        "ref": ref,
        "received_at": rfc3339(received - received % 1000, affected.offset_min),
        "channel": rng.choice(CHANNELS),
        "category": affected.category,
    }
    if by_address:
        body["address"] = affected.address
    else:
        body["tid"] = affected.tid
    body["occurred_at"] = rfc3339(remembered, affected.offset_min)
    if amount is not None:
        body["amount_minor"] = amount
        body["currency"] = "RUB"
    body["customer"] = affected.phone or phone_number(rng)
    body["text"] = text
    return body, by_address
