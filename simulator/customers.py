"""Customers: when they come, what they pay for, with which banknotes, and who they are.

Arrivals follow a daily profile in the terminal's local time (quiet at night, busy in the
evening); amounts and services follow a payment kiosk's typical mix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from simulator.timefmt import DAY, local_hour

#: Relative demand per local hour (0..23); normalised so the daily mean is 1.
_PROFILE_RAW: Final = (
    0.15,
    0.08,
    0.05,
    0.04,
    0.05,
    0.10,
    0.30,
    0.70,
    1.00,
    1.10,
    1.10,
    1.10,
    1.20,
    1.20,
    1.10,
    1.10,
    1.30,
    1.60,
    2.00,
    2.20,
    2.00,
    1.50,
    0.80,
    0.40,
)
PROFILE: Final = tuple(w * 24 / sum(_PROFILE_RAW) for w in _PROFILE_RAW)
PEAK: Final = max(PROFILE)

#: (service, weight, lowest, highest amount in roubles, step).
SERVICES: Final = (
    ("mobile", 45, 100, 1000, 50),
    ("internet", 10, 400, 1200, 50),
    ("utilities", 15, 1500, 7000, 50),
    ("tv", 5, 200, 900, 50),
    ("transport_card", 10, 100, 2000, 50),
    ("wallet", 8, 500, 10000, 100),
    ("loan", 4, 2000, 15000, 500),
    ("fines", 3, 500, 3000, 50),
)
_WEIGHTS: Final = tuple(s[1] for s in SERVICES)
NOTES_RUB: Final = (5000, 2000, 1000, 500, 200, 100, 50)


def rate_per_ms(per_day: float, ms: int, offset_min: int) -> float:
    """Expected customers per millisecond at ``ms`` for a terminal seeing ``per_day`` a day."""
    return per_day / DAY * PROFILE[int(local_hour(ms, offset_min))]


def next_arrival(
    rng: random.Random, per_day: float, after: int, offset_min: int, until: int
) -> int | None:
    """The next arrival after ``after`` (a non-homogeneous Poisson process, by thinning).

    Returns None when there is none before ``until`` or ``per_day`` is 0.
    """
    if per_day <= 0:
        return None
    top = per_day / DAY * PEAK
    t = float(after)
    while True:
        t += rng.expovariate(top)
        if t >= until:
            return None
        if rng.random() * top <= rate_per_ms(per_day, int(t), offset_min):
            return int(t)


@dataclass(frozen=True, slots=True)
class Customer:
    """What one customer wants to pay."""

    service: str
    phone: str  # E.164, the customer's own number
    account: str  # masked by the terminal to its last 4 digits
    notes: tuple[int, ...]  # banknotes in minor units, in the order inserted
    wants_receipt: bool

    @property
    def amount_minor(self) -> int:
        return sum(self.notes)


def phone_number(rng: random.Random) -> str:
    """A Russian mobile number, ``+79`` and nine digits."""
    return f"+79{rng.randrange(10**9):09d}"


def make_customer(rng: random.Random, receipt_share: float) -> Customer:
    service, _, low, high, step = rng.choices(SERVICES, weights=_WEIGHTS)[0]
    # People favour round sums: half of them pay a multiple of 100 (or of the step).
    amount = rng.randrange(low, high + 1, step)
    if rng.random() < 0.5:
        amount = max(low, round(amount, -2))
    phone = phone_number(rng)
    account_digits = phone[-4:] if service == "mobile" else f"{rng.randrange(10_000):04d}"
    return Customer(
        service=service,
        phone=phone,
        account=f"*{account_digits}",
        notes=tuple(n * 100 for n in _notes(rng, amount)),
        wants_receipt=rng.random() < receipt_share,
    )


def _notes(rng: random.Random, amount: int) -> list[int]:
    """Banknotes (roubles) summing to ``amount`` rounded up to 50; not always the fewest."""
    remaining = max(50, -(-amount // 50) * 50)
    notes: list[int] = []
    while remaining > 0:
        fitting = [n for n in NOTES_RUB if n <= remaining]
        pick = fitting[0] if rng.random() < 0.7 or len(fitting) == 1 else fitting[1]
        notes.append(pick)
        remaining -= pick
    return notes


def remembered_amount(rng: random.Random, amount_minor: int, wrong_share: float) -> int:
    """The amount a customer remembers: usually right, else rounded or off by a note."""
    if rng.random() >= wrong_share:
        return amount_minor
    roubles = amount_minor // 100
    if rng.random() < 0.5 and roubles >= 100:
        return (round(roubles, -2) or 100) * 100
    return max(50, roubles + rng.choice((-100, -50, 50, 100))) * 100
