"""Words of the pages for acting from an alert, silences and people, in English and Russian.

Merged into :mod:`termwatch.web.i18n`'s tables; kept apart so those pages' words live
beside each other.
"""

from __future__ import annotations

from typing import Final

EN: Final[dict[str, str]] = {
    "link.title.ack": "Acknowledge incident #{id}",
    "link.title.resolve": "Resolve incident #{id}",
    "link.as": "You act as {who}. Nothing changes until you press the button.",
    "link.button.ack": "Acknowledge",
    "link.button.resolve": "Resolve",
    "link.done.ack": "Incident #{id} is acknowledged by {who}.",
    "link.done.resolve": "Incident #{id} is resolved by {who}.",
    "link.refused": "This link cannot be used",
    "link.forged": (
        "This link is not valid: termwatch did not make it, or it was damaged on the way."
        " Open the incident in the console instead."
    ),
    "link.expired": (
        "This link has expired ({at}). Use the link of a newer alert, or open the incident"
        " in the console."
    ),
    "link.used": "This link has already been used ({at}). Each link acts only once.",
    "link.already": "Nothing changed: incident #{id} is already {status}.",
    "link.disabled": "Links from alerts are not enabled on this server (no link key).",
    "link.open": "Open the incident in the console",
    "silence.title": "Silences",
    "silence.active": "Silences in force",
    "silence.none": "No silence is in force.",
    "silence.new": "New silence",
    "silence.matchers": "Matchers",
    "silence.matchers_help": (
        "One per line: label, operator, value. Labels: kind, tid, region, service_group,"
        " severity. Operators: = != =~ !~ (regular expressions match the whole value)."
    ),
    "silence.duration": "For",
    "silence.comment": "Comment",
    "silence.preview": "Preview",
    "silence.create": "Create",
    "silence.expire": "Expire",
    "silence.ends": "Ends",
    "silence.by": "Created by",
    "silence.would_match": "Open incidents this silence would match: {n}",
    "silence.warnings": "Warnings",
    "silence.created": "Silence #{id} created.",
}

RU: Final[dict[str, str]] = {
    "link.title.ack": "Принять в работу инцидент #{id}",
    "link.title.resolve": "Решить инцидент #{id}",
    "link.as": "Вы действуете как {who}. Ничего не изменится, пока вы не нажмёте кнопку.",
    "link.button.ack": "Принять в работу",
    "link.button.resolve": "Решить",
    "link.done.ack": "Инцидент #{id} принят в работу: {who}.",
    "link.done.resolve": "Инцидент #{id} решён: {who}.",
    "link.refused": "Эту ссылку нельзя использовать",
    "link.forged": (
        "Ссылка недействительна: её сделал не termwatch, или она повреждена по дороге."
        " Откройте инцидент в консоли."
    ),
    "link.expired": (
        "Срок действия ссылки истёк ({at}). Воспользуйтесь ссылкой из более нового"
        " оповещения или откройте инцидент в консоли."
    ),
    "link.used": "Эта ссылка уже использована ({at}). Каждая ссылка действует один раз.",
    "link.already": "Ничего не изменилось: инцидент #{id} уже {status}.",
    "link.disabled": "Ссылки из оповещений на этом сервере не включены (нет ключа ссылок).",
    "link.open": "Открыть инцидент в консоли",
    "silence.title": "Тишина",
    "silence.active": "Действующие правила тишины",
    "silence.none": "Правил тишины сейчас нет.",
    "silence.new": "Новое правило тишины",
    "silence.matchers": "Условия",
    "silence.matchers_help": (
        "По одному в строке: метка, оператор, значение. Метки: kind, tid, region,"
        " service_group, severity. Операторы: = != =~ !~ (регулярное выражение должно"
        " совпасть со всем значением)."
    ),
    "silence.duration": "На срок",
    "silence.comment": "Комментарий",
    "silence.preview": "Предпросмотр",
    "silence.create": "Создать",
    "silence.expire": "Завершить",
    "silence.ends": "До",
    "silence.by": "Автор",
    "silence.would_match": "Открытые инциденты, которые попадут под это правило: {n}",
    "silence.warnings": "Предупреждения",
    "silence.created": "Правило тишины #{id} создано.",
}
