"""The customer's phone or wallet number: kept only as its last 4 digits and a keyed hash.

The hash (HMAC-SHA256 with ``settings.pii_key``) lets support find every complaint of one
customer without storing the number. Without a key no hash is made at all: an unkeyed hash
of a phone number is reversed by trying every number, so it would be the number in disguise.
Free text is scrubbed too (:func:`scrub`): a customer who types the number into the
complaint's text must not get it stored that way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

# Seven or more digits, possibly split by spaces, dashes, dots or brackets, as phone,
# card and wallet numbers are written.
_NUMBER_RE: Final = re.compile(r"\+?\d(?:[\s().-]{0,2}\d){6,}")


def normalise(customer: str) -> str:
    """The form that is hashed: digits only when there are at least 4, else the trimmed,
    lower-case text (a wallet name). Russian numbers written ``8 9xx`` become ``7 9xx``."""
    digits = "".join(c for c in customer if c.isdigit())
    if len(digits) >= 4:
        if len(digits) == 11 and digits.startswith("8"):
            digits = "7" + digits[1:]
        return digits
    return customer.strip().lower()


def protect(customer: str, key: str) -> tuple[str | None, str | None]:
    """``(last 4 digits, keyed hash hex)`` of a customer number.

    Either part is None when it cannot be made: fewer than 4 digits, or no key (then only the
    last digits are kept). An empty number gives ``(None, None)``. Never raises for any text.
    """
    value = customer.strip()
    if not value:
        return None, None
    norm = normalise(value)
    digits = "".join(c for c in norm if c.isdigit())
    last4 = digits[-4:] if len(digits) >= 4 else None
    if not key:
        return last4, None
    digest = hmac.new(key.encode("utf-8"), norm.encode("utf-8"), hashlib.sha256).hexdigest()
    return last4, digest


def mask(match: re.Match[str]) -> str:
    digits = "".join(c for c in match.group(0) if c.isdigit())
    return f"***{digits[-4:]}"


def scrub(text: str | None) -> str | None:
    """``text`` with every run of 7 or more digits cut to ``***`` and its last 4 digits."""
    if text is None:
        return None
    return _NUMBER_RE.sub(mask, text)
