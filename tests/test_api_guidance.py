"""Devices in words, guidance for the caller, and personal data, on the terminal card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from termwatch.web.card import CardQuery, terminal_card
from termwatch.web.devices import StateRow, describe
from termwatch.web.i18n import duration, money
from termwatch.web.models import TerminalCard
from termwatch.web.privacy import mask_digits
from termwatch.web.read import OperationFilter
from tests.test_api_fleet import (
    NOW,
    Conn,
    add_incident,
    add_operation,
    add_terminal,
    healthy_devices,
    paper_out_terminal,
    set_devices,
    set_state,
)

MSK = timezone(timedelta(hours=3))


def card_of(conn: Conn, tid: str = "T-000042", **options: object) -> TerminalCard:
    card = terminal_card(conn, CardQuery(tid=tid, tz=MSK, **options), NOW)  # type: ignore[arg-type]
    assert card is not None
    return card


def test_it_describes_a_printer_out_of_paper_with_the_time_it_ran_out() -> None:
    since = NOW - timedelta(hours=2)
    rows = [
        StateRow("printer", "device", "online", NOW - timedelta(days=3)),
        StateRow("printer", "paper", "out", since),
    ]
    en = describe("printer", rows, "en")
    ru = describe("printer", rows, "ru")
    assert (en.condition, en.state, en.since, en.problems) == (
        "fault",
        "out of paper",
        since,
        ["paper_out"],
    )
    assert ru.state == "нет бумаги"
    assert ru.label == "Принтер чеков"


def test_it_lists_the_worst_problem_of_a_device_first() -> None:
    rows = [
        StateRow("cashAcceptor", "stacker.replenishment", "high", NOW - timedelta(hours=5)),
        StateRow("cashAcceptor", "shutter", "jammedClosed", NOW - timedelta(minutes=7)),
    ]
    device = describe("cashAcceptor", rows, "en")
    assert device.condition == "fault"
    assert device.state == "shutter jammed; cash box nearly full"
    assert device.since == NOW - timedelta(minutes=7)


def test_it_shows_a_value_the_contract_does_not_know_as_an_unknown_state() -> None:
    rows = [StateRow("printer", "paper", "halfEmpty", NOW)]
    device = describe("printer", rows, "en")
    assert (device.condition, device.state) == ("warning", "unknown state")
    assert device.fields[0].value == "halfEmpty"


def test_it_calls_a_missing_card_reader_not_installed_and_a_silent_one_no_data() -> None:
    absent = describe("cardReader", [StateRow("cardReader", "device", "noDevice", NOW)], "en")
    assert (absent.condition, absent.state) == ("absent", "not installed")
    silent = describe("cardReader", [], "en")
    assert (silent.condition, silent.since) == ("unknown", None)


def test_it_tells_the_agent_the_payment_was_credited_and_the_receipt_can_be_sent(
    db: Conn,
) -> None:
    paper_out_terminal(db)
    card = card_of(
        db, operations=OperationFilter(amount_minor=50000, around=NOW - timedelta(minutes=30))
    )
    assert card.selected_operation is not None
    assert card.selected_operation.op_id == "T-000042-op-caller"
    assert card.guidance_lines[0] == (
        "The payment of 500.00 RUB at 10:31 went through and was credited (confirmation"
        " AUTH-88231). The receipt was not printed (out of paper); offer to send it electronically."
    )
    assert "cannot print receipts now (out of paper, for 2 h)" in card.guidance
    assert "incident #" in card.guidance


def test_it_gives_the_same_guidance_in_russian(db: Conn) -> None:
    paper_out_terminal(db)
    card = card_of(db, lang="ru", op_id="T-000042-op-caller")
    assert card.guidance_lines[0].startswith("Платёж на 500,00\u00a0₽ в 10:31 прошёл и зачислен")
    assert "Терминал сейчас не печатает чеки (нет бумаги, уже 2 ч)" in card.guidance
    assert card.devices[0].state == "нет бумаги"


def test_it_says_cash_was_taken_but_not_credited_and_asks_for_a_claim(db: Conn) -> None:
    add_terminal(db, "T-7")
    set_state(db, "T-7")
    set_devices(db, "T-7", healthy_devices())
    add_operation(
        db,
        "T-7",
        "op-timeout",
        NOW - timedelta(minutes=12),
        amount_minor=150000,
        outcome="failed",
        steps=[
            {"step": "cashAccepted", "result": "success", "amount_minor": 150000},
            {"step": "paymentSent", "result": "timeout", "error": "hostTimeout"},
        ],
    )
    card = card_of(db, "T-7", op_id="op-timeout")
    assert card.guidance_lines[0] == (
        "Cash of 1,500.00 RUB was accepted at 10:48 but the payment was not credited"
        " (the payment host did not answer). Register a complaint so that the money is credited"
        " or returned."
    )
    assert card.guidance_lines[1] == (
        "Nothing on our side explains it: the terminal reported no fault at that time."
    )
    assert card.guidance_lines[2] == "The terminal itself is working now."


def test_it_says_a_declined_card_payment_took_no_money(db: Conn) -> None:
    add_terminal(db, "T-8")
    set_state(db, "T-8")
    add_operation(
        db,
        "T-8",
        "op-declined",
        NOW - timedelta(minutes=5),
        outcome="failed",
        steps=[
            {"step": "cardAuthorised", "result": "success"},
            {"step": "paymentSent", "result": "failed", "error": "hostDeclined"},
        ],
    )
    card = card_of(db, "T-8", op_id="op-declined")
    assert card.guidance_lines[0] == (
        "The payment of 500.00 RUB at 10:55 was not made (the payment host declined it);"
        " no cash was kept."
        " Any amount held on the card will be released by the bank."
    )


def test_it_says_when_no_operation_matches_the_callers_amount_and_time(db: Conn) -> None:
    paper_out_terminal(db)
    card = card_of(db, operations=OperationFilter(amount_minor=77700, around=NOW))
    assert card.operations == []
    assert card.guidance_lines[0].startswith("No operation matching the caller's amount")


def test_it_tells_the_agent_an_offline_terminal_takes_no_payments(db: Conn) -> None:
    add_terminal(db, "T-9")
    set_state(db, "T-9", online=False, changed_at=NOW - timedelta(minutes=95))
    add_incident(db, "T-9", "terminal_offline", severity="critical", title="Terminal offline")
    card = card_of(db, "T-9")
    assert card.online is False
    assert card.guidance_lines[0].startswith("The terminal is offline (no contact for 1 h 35 min)")
    assert "(Terminal offline — T-9) is open" in card.guidance_lines[1]


def test_it_shows_an_unregistered_terminal_seen_on_the_wire(db: Conn) -> None:
    set_state(db, "T-GHOST")
    card = card_of(db, "T-GHOST")
    assert (card.registered, card.name, card.online) == (False, None, True)
    assert (
        card.guidance_lines[0]
        == "This terminal is not in the fleet registry; check the terminal id."
    )


def test_it_finds_no_card_for_a_terminal_never_registered_nor_seen(db: Conn) -> None:
    assert terminal_card(db, CardQuery(tid="T-NONE"), NOW) is None


def test_it_lists_only_the_last_4_digits_and_masks_numbers_in_free_text(db: Conn) -> None:
    paper_out_terminal(db)
    db.execute(
        "INSERT INTO complaints (ref, received_at, channel, category, tid, occurred_at,"
        " amount_minor, customer_last4, customer_hash, text, verdict)"
        " VALUES ('CRM-1', %s, 'phone', 'no_receipt', 'T-000042', %s, 50000, '4567', 'h',"
        " 'call me back at +7 916 123-45-67', 'receipt_not_printed')",
        (NOW, NOW - timedelta(minutes=30)),
    )
    card = card_of(db)
    [complaint] = card.recent_complaints
    assert complaint.customer_last4 == "4567"
    assert complaint.text == "call me back at •••4567"
    assert all(op.account_last4 in (None, "4567") for op in card.operations)


def test_it_masks_phone_and_card_numbers_but_keeps_amounts() -> None:
    assert mask_digits("card 4111 1111 1111 1234, paid 50000") == "card •••1234, paid 50000"
    assert mask_digits("+79161234567") == "•••4567"
    assert mask_digits("see CRM-2026-000123, call 8 (916) 123-45-67") == (
        "see CRM-2026-000123, call •••4567"
    )
    assert mask_digits(None) is None


def test_it_reads_durations_and_money_in_both_languages() -> None:
    assert duration("en", timedelta(hours=2, minutes=15, seconds=9)) == "2 h 15 min"
    assert duration("ru", timedelta(days=3, hours=4, minutes=5)) == "3 дн 4 ч"
    assert duration("en", timedelta(seconds=20)) == "less than a minute"
    assert money("en", 123456789, "RUB") == "1,234,567.89 RUB"
    assert money("ru", 50000, "RUB") == "500,00\u00a0₽"


def test_it_uses_the_times_offset_for_guidance_times(db: Conn) -> None:
    paper_out_terminal(db)
    card = terminal_card(db, CardQuery(tid="T-000042", op_id="T-000042-op-caller", tz=UTC), NOW)
    assert card is not None
    assert " at 07:31 " in card.guidance_lines[0]
    yesterday = datetime(2026, 5, 3, 7, 31, tzinfo=UTC)
    add_operation(db, "T-000042", "old-op", yesterday)
    old = terminal_card(db, CardQuery(tid="T-000042", op_id="old-op", tz=UTC), NOW)
    assert old is not None
    assert " at 3 May 2026 07:31 " in old.guidance_lines[0]
