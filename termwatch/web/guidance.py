"""What the agent tells the caller, derived from the terminal's state and the operation.

Pure functions of their inputs: the same card, operation and complaint give the same
sentences. Terminal sentences say what works and what does not (and that engineers know);
operation sentences say what happened to the caller's money: credited, credited without a
receipt, cash taken but not credited (and whether a claim is registered), not made, or
cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from termwatch.web.i18n import duration, money, text
from termwatch.web.models import ComplaintView, Device, Incident, Operation, Step

#: Printer problems that stop receipts (a low roll or toner still prints).
_PRINTER_DOWN = frozenset(
    {
        "paper_out",
        "paper_jammed",
        "media_jammed",
        "toner_out",
        "offline",
        "power_off",
        "hardware_error",
    }
)


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything guidance is derived from."""

    registered: bool
    seen: bool
    online: bool | None
    online_changed_at: datetime | None
    service_mode: bool
    devices: list[Device]
    incidents: list[Incident]
    operation: Operation | None = None
    complaint: ComplaintView | None = None
    searched_for_operation: bool = False


def guidance(situation: Situation, lang: str, now: datetime, tz: tzinfo) -> list[str]:
    """Sentences for the agent, most important first: the money, then the terminal."""
    lines = _operation_lines(situation, lang, now, tz)
    lines.extend(_terminal_lines(situation, lang, now))
    return lines


def _terminal_lines(s: Situation, lang: str, now: datetime) -> list[str]:
    lines: list[str] = []
    if not s.registered:
        lines.append(text(lang, "g.unregistered"))
    if not s.seen:
        lines.append(text(lang, "g.never_seen"))
        return lines
    if s.online is False:
        since = s.online_changed_at or now
        lines.append(text(lang, "g.offline", dur=duration(lang, now - since)))
    if s.service_mode:
        lines.append(text(lang, "g.service_mode"))
    by_name = {d.device: d for d in s.devices}
    printer = by_name.get("printer")
    if printer and printer.condition == "fault" and _PRINTER_DOWN & set(printer.problems):
        lines.append(text(lang, "g.printer", state=printer.state, dur=_for(lang, now, printer)))
    cash = by_name.get("cashAcceptor")
    card = by_name.get("cardReader")
    card_ok = card is not None and card.condition in ("ok", "warning")
    if cash and cash.condition == "fault":
        line = text(lang, "g.cash", state=cash.state, dur=_for(lang, now, cash))
        if card_ok and s.online is not False:
            line += text(lang, "g.cash_card_ok")
        lines.append(line)
    if card and card.condition == "fault":
        lines.append(text(lang, "g.card", state=card.state))
    for incident in s.incidents:
        if incident.severity == "minor":
            continue
        lines.append(
            text(
                lang,
                "g.incident",
                id=incident.id,
                title=incident.title,
                status=text(lang, f"status.{incident.status}"),
            )
        )
    if not lines:
        lines.append(text(lang, "g.all_ok"))
    return lines


def _for(lang: str, now: datetime, device: Device) -> str:
    return duration(lang, now - device.since) if device.since else duration(lang, now - now)


def _operation_lines(s: Situation, lang: str, now: datetime, tz: tzinfo) -> list[str]:
    op = s.operation
    if op is None:
        searched = s.searched_for_operation or (
            s.complaint is not None and s.complaint.matched_op_id is None
        )
        return [text(lang, "g.no_match")] if searched else []
    at = clock_time(op.ts, now, tz)
    amount = money(lang, op.amount_minor, op.currency)
    sent = _step(op, "paymentSent")
    receipt = _step(op, "receiptPrinted")
    claim = s.complaint
    line: str
    if sent is not None and sent.result == "success":
        ref = text(lang, "g.op_ref", host_ref=op.host_ref) if op.host_ref else ""
        line = text(lang, "g.op_credited", amount=amount, op_time=at, ref=ref)
        if receipt is not None and receipt.result in ("failed", "timeout"):
            line += text(lang, "g.op_no_receipt", error=_error(lang, receipt.error))
    elif op.money_at_risk_minor > 0:
        line = text(
            lang,
            "g.op_cash_not_credited",
            cash=money(lang, op.money_at_risk_minor, op.currency),
            op_time=at,
            error=_error(lang, op.failed_error or op.failed_result),
        )
        if claim is not None:
            line += text(lang, "g.claim_registered", ref=claim.ref)
        else:
            line += text(lang, "g.claim_needed")
    elif op.outcome == "cancelled":
        line = text(lang, "g.op_cancelled", amount=amount, op_time=at)
    elif op.outcome == "failed" or (sent is not None and sent.result != "success"):
        line = text(
            lang,
            "g.op_failed",
            amount=amount,
            op_time=at,
            error=_error(lang, op.failed_error or op.failed_result),
        )
        authorised = _step(op, "cardAuthorised")
        if authorised is not None and authorised.result == "success":
            line += text(lang, "g.op_card_hold")
    elif op.outcome in ("completed", "completedWithWarnings"):
        line = text(lang, "g.op_credited", amount=amount, op_time=at, ref="")
    else:
        line = text(lang, "g.op_other", amount=amount, op_time=at, outcome=op.outcome)
    if claim is not None and claim.incident_id is not None:
        line += text(lang, "g.complaint_incident", id=claim.incident_id)
    return [line]


def _step(op: Operation, name: str) -> Step | None:
    found = None
    for step in op.steps:
        if step.step == name:
            found = step
    return found


def _error(lang: str, error: str | None) -> str:
    return error if error else text(lang, "g.unknown_error")


def clock_time(ts: datetime, now: datetime, tz: tzinfo) -> str:
    """``10:31`` on the day of ``now``, else ``04.05 10:31`` (both in ``tz``)."""
    local = ts.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M")
    return local.strftime("%d.%m %H:%M")
