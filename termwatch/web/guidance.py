"""What the agent tells the caller, derived from the caller's situation.

Pure functions of their inputs: the same card, operation and complaints give the same
sentences. Without a picked operation the guidance says what to ask the caller, then what
works at the terminal and what does not (and that engineers know). With one it speaks of
that operation: what happened to the money (credited, credited without a receipt, cash
taken but not credited, not made, cancelled), the complaints already registered on it (so
that nobody registers it twice), and the incident that explains it, or plainly that
nothing on our side does. Incidents that do not explain the caller's operation are named
apart, as other problems of the terminal now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from termwatch.web.i18n import duration, incident_title, money, text, when, word
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
    #: Complaints already registered on ``operation``, oldest first, with their verdicts
    #: rendered in the guidance's language.
    op_complaints: tuple[tuple[ComplaintView, str], ...] = ()
    #: The incident that explains ``operation`` (it is its evidence, or of a kind that
    #: explains its failure and open at its time); None: nothing on our side explains it.
    explained_by: Incident | None = None


def guidance(situation: Situation, lang: str, now: datetime, tz: tzinfo) -> list[str]:
    """Sentences for the agent, most important first: the caller's money and what is known
    about it, then the terminal; without a picked operation, the terminal, then what to ask."""
    if situation.operation is None and not _searched(situation):
        # No operation of the caller's to speak of yet: what the terminal does now, then
        # what to ask the caller.
        return [*_terminal_lines(situation, lang, now), text(lang, "g.ask_caller")]
    lines = _operation_lines(situation, lang, now, tz)
    lines.extend(_terminal_lines(situation, lang, now))
    return lines


def _title(lang: str, incident: Incident) -> str:
    return incident_title(lang, incident.kind, incident.tid, incident.region)


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
    serious = [i for i in s.incidents if i.severity != "minor"]
    if s.operation is not None:
        explained = s.explained_by.id if s.explained_by is not None else None
        others = [_title(lang, i) for i in serious if i.id != explained]
        if others:
            lines.append(text(lang, "g.other_incidents", titles="; ".join(others)))
        if not lines:
            lines.append(text(lang, "g.now_ok"))
        return lines
    for incident in serious:
        lines.append(
            text(
                lang,
                "g.incident",
                id=incident.id,
                title=_title(lang, incident),
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
        return [text(lang, "g.no_match")] if _searched(s) else []
    at = clock_time(op.ts, now, tz, lang)
    amount = money(lang, op.amount_minor, op.currency)
    sent = _step(op, "paymentSent")
    receipt = _step(op, "receiptPrinted")
    registered = bool(s.op_complaints)
    failed = False
    line: str
    if sent is not None and sent.result == "success":
        ref = text(lang, "g.op_ref", host_ref=op.host_ref) if op.host_ref else ""
        line = text(lang, "g.op_credited", amount=amount, op_time=at, ref=ref)
        if receipt is not None and receipt.result in ("failed", "timeout"):
            line += text(lang, "g.op_no_receipt", error=_error(lang, receipt.error))
            failed = True
    elif op.money_at_risk_minor > 0:
        line = text(
            lang,
            "g.op_cash_not_credited",
            cash=money(lang, op.money_at_risk_minor, op.currency),
            op_time=at,
            error=_error(lang, op.failed_error or op.failed_result),
        )
        if not registered:
            line += text(lang, "g.claim_needed")
        failed = True
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
        failed = True
    elif op.outcome in ("completed", "completedWithWarnings"):
        line = text(lang, "g.op_credited", amount=amount, op_time=at, ref="")
    else:
        line = text(
            lang,
            "g.op_other",
            amount=amount,
            op_time=at,
            outcome=text(lang, f"outcome.{op.outcome}"),
        )
    lines = [line]
    for complaint, verdict in s.op_complaints:
        lines.append(
            text(
                lang,
                "g.registered_as",
                ref=complaint.ref,
                on=day_time(complaint.received_at, tz, lang),
                verdict=verdict or text(lang, "ui.none"),
            )
        )
    if registered:
        lines[-1] += text(lang, "g.registered_once")
    incident = s.explained_by
    if incident is not None:
        lines.append(
            text(
                lang,
                "g.explained_by",
                id=incident.id,
                title=_title(lang, incident),
                status=text(lang, f"status.{incident.status}"),
                since=clock_time(incident.opened_at, now, tz, lang),
            )
        )
    elif failed or registered:
        lines.append(text(lang, "g.nothing_explains"))
    return lines


def _searched(s: Situation) -> bool:
    """Whether the caller's operation was looked for (by amount and time, or by a
    complaint's correlation) and not found."""
    return s.searched_for_operation or (
        s.complaint is not None and s.complaint.matched_op_id is None
    )


def _step(op: Operation, name: str) -> Step | None:
    found = None
    for step in op.steps:
        if step.step == name:
            found = step
    return found


def _error(lang: str, error: str | None) -> str:
    """An error code in words (``hostTimeout``: the payment host did not answer)."""
    if not error:
        return text(lang, "g.unknown_error")
    key = f"error.{error}"
    found = text(lang, key)
    return found if found != key else word(lang, "result", error)


def clock_time(ts: datetime, now: datetime, tz: tzinfo, lang: str = "en") -> str:
    """``10:31`` on the day of ``now``, else the date too (both in ``tz``)."""
    local = ts.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M")
    return day_time(ts, tz, lang)


def day_time(ts: datetime, tz: tzinfo, lang: str = "en") -> str:
    """The date and time of ``ts`` in ``tz`` as ``lang`` writes them (:func:`i18n.when`)."""
    return when(lang, ts, tz)
