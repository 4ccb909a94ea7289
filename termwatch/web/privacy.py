"""Personal data never leaves the API or the console beyond the last 4 digits.

Stored rows already hold only the last 4 digits of accounts and customers; free text typed
by people (a complaint's text, a note) may still carry a phone or card number, so long runs
of digits are masked before they are shown.
"""

from __future__ import annotations

import re

# Seven or more digits, possibly split by spaces, dashes, dots or brackets, with an
# optional leading plus: phone numbers, card and wallet numbers. Amounts are shorter, and
# a number glued to a word or a dash is part of a reference (CRM-2026-000123), not one.
_LONG_NUMBER = re.compile(r"(?<![\w-])\+?\d(?:[\s().-]{0,2}\d){6,}")


def mask_digits(value: str | None) -> str | None:
    """``value`` with every long number replaced by ``•••`` and its last 4 digits."""
    if value is None:
        return None
    return _LONG_NUMBER.sub(_mask, value)


def _mask(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match[0])
    return "•••" + digits[-4:]


def last4(value: str | None) -> str | None:
    """The last 4 digits of a masked account such as ``*4567`` (None when there are none)."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    return digits[-4:] or None
