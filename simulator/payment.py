"""One customer's payment at a kiosk: banknotes in, the payment host, the receipt.

:func:`serve` plays a whole operation when the customer starts it: it draws what happens
from the terminal's devices and faults, schedules the device changes and events that
happen along the way at their own simulated times, and the ``operations`` message at the
end. The outcomes per device state are tabled in docs/simulator.md (The model).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from simulator.customers import Customer, make_customer
from simulator.devices import Event, paper_event, refuse_event, stacker_event
from simulator.fault import PRINTER_KINDS, Fault
from simulator.timefmt import SECOND, rfc3339

if TYPE_CHECKING:
    from simulator.terminal import TerminalSim

NOTE_ERRORS = ("skewedNote", "doubleNote", "longNote", "notesTooClose")


def serve(term: TerminalSim, at: int, jam: Fault | None) -> None:
    """One customer's payment from ``at`` (or when the terminal is free), from the first
    screen to the operation message; ``jam`` is an acceptor jam that strikes on one of the
    customer's banknotes. Complaints about it are drawn here too."""
    w, sc, d, rng = term.world, term.world.scenario, term.devices, term.rng
    cust = make_customer(rng, sc.customers.receipt_share)
    start = max(at, term.busy_until)
    t = start + rng.randint(8, 25) * SECOND
    term.op_n += 1
    op_id = term.op_id(start)
    steps: list[dict[str, Any]] = []
    affected = term.affected(start, cust.amount_minor, cust.service, cust.phone)
    if d.count >= d.capacity:
        t += 4 * SECOND
        term.later(t, None, refuse_event("stackerFull"))
        steps.append(_step("cashAccepted", t, "failed", error="cashUnitError", amount_minor=0))
        finish_op(term, t, op_id, cust, steps, "cancelled", start)
        term.maybe_complain(
            start,
            "terminal_out_of_order",
            term.active.get("cash_acceptor_full"),
            op_id,
            affected,
        )
        return
    accepted = 0
    jam_note = rng.randrange(len(cust.notes)) if jam is not None else -1
    for i, note in enumerate(cust.notes):
        t += rng.randint(3, 7) * SECOND
        if rng.random() < sc.customers.note_error_rate:
            reason = rng.choice(NOTE_ERRORS)
            term.later(
                t, None, Event("cashAcceptor", "CashManagement.NoteErrorEvent", {"reason": reason})
            )
            t += 4 * SECOND
        accepted += note
        d.count += 1
        if d.count == d.stacker_high:
            term.later(t, {"replenishment": "high", "count": d.count}, stacker_event("high"))
            term.request_visit(t + rng.randint(*sc.supplies.refill_delay))
        if i == jam_note and jam is not None:
            term.jam_waiting = None
            w.at(t, term.on_fault_begins, jam)
            break
        if d.count >= d.capacity:
            w.at(t, term.on_natural, "cash_acceptor_full")
            if i + 1 < len(cust.notes):
                term.later(t + 2 * SECOND, None, refuse_event("cashInUnitFull"))
            break
    steps.append(_step("cashAccepted", t, "success", amount_minor=accepted))
    if jam is not None:
        t += rng.randint(40, 90) * SECOND
        steps.append(_step("paymentSent", t, "skipped"))
        finish_op(term, t, op_id, cust, steps, "failed", start, amount=accepted)
        term.maybe_complain(
            start, "cash_not_credited", jam, op_id, replace(affected, amount_minor=accepted)
        )
        return
    host_fault = term.active.get("payment_failures")
    declined = False
    if host_fault is not None:
        host_fault.evidence += 1
        if host_fault.group is None and rng.random() < 0.3:
            t += rng.randint(2, 5) * SECOND
            steps.append(_step("paymentSent", t, "failed", error="hostDeclined"))
        else:
            t += 30 * SECOND
            steps.append(_step("paymentSent", t, "timeout", error="hostTimeout"))
    elif rng.random() < sc.customers.decline_rate:
        declined = True
        t += rng.randint(2, 5) * SECOND
        steps.append(_step("paymentSent", t, "failed", error="hostDeclined"))
    else:
        t += rng.randint(1, 4) * SECOND
        steps.append(
            _step("paymentSent", t, "success", host_ref=f"AUTH-{rng.randrange(10**6):06d}")
        )
    paid = steps[-1]["result"] == "success"
    timed_out = steps[-1]["result"] == "timeout"
    outcome = "completed" if paid else "failed"
    printer_fault: Fault | None = None
    if paid and cust.wants_receipt:
        t += rng.randint(2, 5) * SECOND
        error = d.receipt_error()
        if error is None:
            steps.append(_step("receiptPrinted", t, "success"))
            consume_paper(term, t)
        else:
            steps.append(_step("receiptPrinted", t, "failed", error=error))
            outcome = "completedWithWarnings"
            printer_fault = next((term.active[k] for k in PRINTER_KINDS if k in term.active), None)
    elif paid:
        steps.append(_step("receiptPrinted", t, "skipped"))
    finish_op(term, t, op_id, cust, steps, outcome, start, amount=accepted)
    if host_fault is not None and timed_out:
        host_fault.evidence_at.append(t)
    if host_fault is not None:
        category = "cash_not_credited" if rng.random() < 0.4 else "payment_failed"
        term.maybe_complain(start, category, host_fault, op_id, affected)
    elif declined:
        term.maybe_complain(start, "payment_failed", None, op_id, affected, scale=0.5)
    elif outcome == "completedWithWarnings":
        term.maybe_complain(start, "no_receipt", printer_fault, op_id, affected)
    silent = term.active.get("silent_fault")
    if silent is not None and paid:
        term.maybe_complain(start, "cash_not_credited", silent, op_id, affected)


def consume_paper(term: TerminalSim, t: int) -> None:
    """One receipt printed at ``t``: the roll turns ``low`` (a refill visit is booked) or
    runs out (a natural paper-out fault a second later)."""
    d, sc = term.devices, term.world.scenario
    d.paper_left -= 1
    if d.paper_left == d.paper_low:
        term.later(t, {"paper": "low"}, paper_event("low"))
        term.request_visit(t + term.rng.randint(*sc.supplies.refill_delay))
    elif d.paper_left == 0:
        term.world.at(t + SECOND, term.on_natural, "printer_paper_out")


def finish_op(
    term: TerminalSim,
    t: int,
    op_id: str,
    cust: Customer,
    steps: list[dict[str, Any]],
    outcome: str,
    start: int,
    amount: int | None = None,
) -> None:
    """Schedule the ``operations`` message at ``t``; the terminal is busy until 5 s later."""
    body = {
        "op_id": op_id,
        "kind": "payment",
        "service": cust.service,
        "account": cust.account,
        "amount_minor": amount if amount else cust.amount_minor,
        "currency": "RUB",
        "outcome": outcome,
        "started": rfc3339(start, term.offset),
        "steps": [{**s, "ts": rfc3339(s["ts"], term.offset)} for s in steps],
    }
    term.busy_until = t + 5 * SECOND
    term.world.at(t, term.on_send, ("operations", body))


def _step(name: str, ts: int, result: str, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"step": name, "ts": ts, "result": result}
    step.update(extra)
    return step
