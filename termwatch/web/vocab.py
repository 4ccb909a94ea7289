"""The codes an agent would otherwise read raw, in plain words per language.

Incident kinds, severities, payee services, operation steps and their results, and the
error codes terminals report (XFS4IoT completion codes such as ``mediaJammed``, the payment
host's ``hostTimeout``). :mod:`termwatch.web.i18n` serves these under ``kind.<code>``,
``severity.<code>``, ``service.<code>``, ``step.<code>``, ``result.<code>`` and
``error.<code>``; :func:`plain` turns a code nobody translated yet into words instead of
showing it as code.
"""

from __future__ import annotations

import re
from typing import Final

#: code -> (English, Russian), per vocabulary.
KINDS: Final[dict[str, tuple[str, str]]] = {
    "printer_paper_out": ("printer out of paper", "в принтере нет бумаги"),
    "printer_jam": ("printer jammed", "замятие в принтере"),
    "printer_fault": ("printer fault", "неисправность принтера"),
    "cash_acceptor_jam": ("cash acceptor jammed", "замятие в купюроприёмнике"),
    "cash_acceptor_full": ("cash acceptor full", "купюроприёмник заполнен"),
    "cash_acceptor_fault": ("cash acceptor fault", "неисправность купюроприёмника"),
    "terminal_offline": ("terminal offline", "терминал не на связи"),
    "payment_failures": ("payments failing", "платежи не проходят"),
    "silent_fault": (
        "customers complain, the terminal reports no fault",
        "клиенты жалуются, а терминал не сообщает о сбое",
    ),
    "printer_paper_low": ("printer paper low", "в принтере мало бумаги"),
    "clock_skew": ("terminal clock wrong", "на терминале неверное время"),
    "cash_acceptor_nearly_full": ("cash box nearly full", "кассета почти заполнена"),
}
SEVERITIES: Final[dict[str, tuple[str, str]]] = {
    "critical": ("critical", "критический"),
    "major": ("major", "серьёзный"),
    "minor": ("minor", "незначительный"),
}
SERVICES: Final[dict[str, tuple[str, str]]] = {
    "mobile": ("mobile top-up", "мобильная связь"),
    "internet": ("home internet", "домашний интернет"),
    "utilities": ("utilities", "ЖКУ"),
    "tv": ("TV", "телевидение"),
    "transport_card": ("transport card", "транспортная карта"),
    "wallet": ("e-wallet", "электронный кошелёк"),
    "loan": ("loan repayment", "погашение кредита"),
    "fines": ("fines", "штрафы"),
}
STEPS: Final[dict[str, tuple[str, str]]] = {
    "cashAccepted": ("cash accepted", "приём наличных"),
    "cardAuthorised": ("card authorised", "авторизация карты"),
    "paymentSent": ("payment sent", "отправка платежа"),
    "receiptPrinted": ("receipt printed", "печать чека"),
}
RESULTS: Final[dict[str, tuple[str, str]]] = {
    "success": ("done", "выполнено"),
    "failed": ("failed", "сбой"),
    "timeout": ("timed out", "нет ответа"),
    "skipped": ("skipped", "пропущено"),
}
ERRORS: Final[dict[str, tuple[str, str]]] = {
    "paperOut": ("out of paper", "нет бумаги"),
    "paperJammed": ("paper jammed", "замятие бумаги"),
    "mediaJammed": ("receipt jammed", "замятие чека"),
    "shutterFail": ("shutter failed", "не сработала шторка"),
    "shutterNotOpen": ("shutter did not open", "шторка не открылась"),
    "cashUnitError": ("cash box error", "ошибка кассеты"),
    "foreignItemsDetected": ("foreign object in the slot", "посторонний предмет в приёмнике"),
    "hostTimeout": ("the payment host did not answer", "платёжный сервер не ответил"),
    "hostDeclined": ("the payment host declined it", "платёжный сервер отклонил платёж"),
    "hardwareError": ("hardware error", "аппаратная ошибка"),
    "skewedNote": ("banknote went in skewed", "купюра вставлена криво"),
    "doubleNote": ("two banknotes at once", "две купюры сразу"),
    "longNote": ("banknote too long", "купюра слишком длинная"),
    "shortNote": ("banknote too short", "купюра слишком короткая"),
    "notesTooClose": ("banknotes too close together", "купюры слишком близко"),
    "incorrectCount": ("banknotes miscounted", "неверный пересчёт купюр"),
    "otherNoteError": ("banknote not accepted", "купюра не принята"),
}
VOCABULARIES: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "kind": KINDS,
    "severity": SEVERITIES,
    "service": SERVICES,
    "step": STEPS,
    "result": RESULTS,
    "error": ERRORS,
}


def phrases(lang: str) -> dict[str, str]:
    """Every vocabulary's words in ``lang`` under ``<vocabulary>.<code>`` keys."""
    index = 1 if lang == "ru" else 0
    return {
        f"{name}.{code}": words[index]
        for name, table in VOCABULARIES.items()
        for code, words in table.items()
    }


_CAMEL: Final = re.compile(r"(?<=[a-z])(?=[A-Z])")


def plain(code: str) -> str:
    """A code no vocabulary knows, as words: ``noteJam`` -> ``note jam``."""
    return _CAMEL.sub(" ", code).replace("_", " ").lower()
