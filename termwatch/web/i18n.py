"""Words of the console and the guidance in English and Russian, and how numbers read.

``text(lang, key)`` looks a phrase up; a key missing from Russian falls back to English, and
a key missing everywhere is returned as itself, so a gap shows on the page instead of
breaking it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Final

from termwatch.web import i18n_ops
from termwatch.web.vocab import phrases, plain

LANGUAGES: Final = ("en", "ru")

_EN: Final[dict[str, str]] = {
    # devices
    "device.printer": "Receipt printer",
    "device.cashAcceptor": "Cash acceptor",
    "device.cardReader": "Card reader",
    "state.ok": "working",
    "state.no_data": "no data",
    "state.offline": "offline",
    "state.power_off": "powered off",
    "state.hardware_error": "hardware error",
    "state.not_installed": "not installed",
    "state.user_error": "needs attention",
    "state.fraud_attempt": "fraud attempt detected",
    "state.potential_fraud": "possible fraud",
    "state.starting": "starting up",
    "state.busy": "busy",
    "state.paper_out": "out of paper",
    "state.paper_jammed": "paper jammed",
    "state.paper_low": "paper running low",
    "state.media_jammed": "receipt jammed",
    "state.toner_out": "out of toner",
    "state.toner_low": "toner running low",
    "state.acceptor_stopped": "stopped",
    "state.acceptor_attention": "needs attention",
    "state.reader_inoperable": "banknote reader not working",
    "state.shutter_jammed": "shutter jammed",
    "state.transport_inoperative": "note transport not working",
    "state.stacker_inoperative": "cash box not working",
    "state.stacker_missing": "cash box missing",
    "state.stacker_manipulated": "cash box tampered with",
    "state.stacker_not_configured": "cash box not configured",
    "state.stacker_full": "cash box full",
    "state.stacker_high": "cash box nearly full",
    "state.card_jammed": "card stuck in the reader",
    "state.unknown_value": "unknown state",
    # durations
    "dur.day": "{n} d",
    "dur.hour": "{n} h",
    "dur.min": "{n} min",
    "dur.moment": "less than a minute",
    # guidance: terminal
    "g.never_seen": "No telemetry has come from this terminal yet, so its state is unknown.",
    "g.unregistered": "This terminal is not in the fleet registry; check the terminal id.",
    "g.offline": (
        "The terminal is offline (no contact for {dur}). Payments there are not possible now;"
        " suggest another terminal nearby."
    ),
    "g.service_mode": "An engineer is working on the terminal now; it may be unavailable briefly.",
    "g.printer": (
        "The terminal cannot print receipts now ({state}, for {dur}). Payments still go"
        " through; the receipt can be sent electronically."
    ),
    "g.cash": "The terminal cannot accept cash now ({state}, for {dur}).",
    "g.cash_card_ok": " Card payment is still possible there.",
    "g.card": "Card payments are not possible at this terminal now ({state}).",
    "g.incident": "Engineers know about it: incident #{id} ({title}) is {status}.",
    "g.all_ok": "The terminal is working normally.",
    # guidance: operation
    "g.op_credited": "The payment of {amount} at {op_time} went through and was credited{ref}.",
    "g.op_ref": " (confirmation {host_ref})",
    "g.op_no_receipt": (" The receipt was not printed ({error}); offer to send it electronically."),
    "g.op_cash_not_credited": (
        "Cash of {cash} was accepted at {op_time} but the payment was not credited ({error})."
    ),
    "g.claim_registered": (
        " A claim has been registered under {ref}; the money will be credited or returned"
        " after review."
    ),
    "g.claim_needed": " Register a complaint so that the money is credited or returned.",
    "g.op_failed": "The payment of {amount} at {op_time} was not made ({error}); no cash was kept.",
    "g.op_card_hold": " Any amount held on the card will be released by the bank.",
    "g.op_cancelled": "The operation of {amount} at {op_time} was cancelled; no money was taken.",
    "g.op_other": "The operation of {amount} at {op_time} ended as {outcome}.",
    "g.no_match": (
        "No operation matching the caller's amount and time was found at this terminal."
        " Check the time, the amount and the terminal with the caller."
    ),
    "g.complaint_incident": " It is linked to incident #{id}.",
    "g.unknown_error": "no reason given",
    # guidance: the caller's operation
    "g.ask_caller": (
        "Ask the caller for the amount, about what time they paid and the last 4 digits of"
        " the phone or account, then find the payment under Operations."
    ),
    "g.registered_as": "Already registered as {ref} on {on}, verdict: {verdict}.",
    "g.registered_once": " Do not register it again; the review is under way.",
    "g.explained_by": (
        "This is explained by incident #{id} ({title}, {status}) since {since}:"
        " engineers know about it."
    ),
    "g.nothing_explains": (
        "Nothing on our side explains it: the terminal reported no fault at that time."
    ),
    "g.now_ok": "The terminal itself is working now.",
    "g.other_incidents": "Other problems at this terminal now: {titles}.",
    # verdicts
    "v.no_terminal": "the terminal was not identified from the address",
    "v.cause": " ({kind} since {since})",
    "v.no_operation": "no matching operation on {tid} between {start} and {end}",
    "v.explained": "; explained by an incident{cause}",
    "v.no_fault": "; no device fault explains it",
    "v.cash_at_risk": (
        "cash accepted, payment not sent{cause}: money at risk ({cash}, operation {op_id} at {at})"
    ),
    "v.failed": "payment of {amount} at {at} failed{cause}; no cash was kept",
    "v.no_receipt": "receipt not printed{cause}; payment of {amount} at {at} credited",
    "v.silent": (
        "the terminal reports the payment of {amount} at {at} as completed, but several"
        " customers report trouble the terminal does not: checked with the payment host"
    ),
    "v.completed_no_fault": (
        "the terminal reports the payment of {amount} at {at} as completed and sent;"
        " no device fault explains the complaint"
    ),
    "v.completed": "operation of {amount} at {at} completed normally{cause}",
    "ui.duplicate_warning": (
        "This operation already has a complaint ({refs}). Register another only if the"
        " caller reports something new."
    ),
    "ui.confirm_repeat": "Register another complaint for this operation anyway",
    "ui.duplicate_refused": (
        "Operation {op_id} already has a complaint ({refs}); tick the box to register another one."
    ),
    "ui.region_of": "region {region}",
    "log.opened": "opened",
    "log.reopened": "reopened",
    "log.updated": "updated",
    "log.acknowledged": "acknowledged",
    "log.resolved": "resolved",
    "log.silenced": "silenced",
    "log.unsilenced": "silence ended",
    "log.grouped": "grouped",
    "ui.rules_actor": "termwatch rules",
    "evidence.event": "event",
    "evidence.operation": "operation",
    "evidence.complaint": "complaint",
    "evidence.status": "status report",
    "evidence.heartbeat": "heartbeat",
    "evidence.availability": "availability",
    "ui.event": "event",
    "lane.availability": "Connection",
    "lane.printer": "Receipt printer",
    "lane.cashAcceptor": "Cash acceptor",
    "lane.cardReader": "Card reader",
    "lane.incidents": "Incidents",
    "lane.operations": "Failed payments",
    "lane.failed_at": "failed payment at {at}",
    "ui.last_24h": "Last 24 hours",
    "ui.last_7d": "Last 7 days",
    "ui.resolved_incidents": "Resolved incidents",
    "ui.no_resolved": "No incidents resolved in the last 7 days.",
    "ui.grafana": "The terminal's dashboard in Grafana",
    "g.region": (
        "{title}: terminals affected: {n}, since {since}; engineers know (incident #{id},"
        " {status})."
    ),
    "g.region_payments": (
        "Payments at terminals in this region may fail now: suggest paying a little later or"
        " another way. Cash that was taken and not credited will be credited or returned:"
        " register the complaint with the terminal and the time."
    ),
    "g.region_offline": (
        "Terminals in this region are offline: suggest another terminal or paying later."
    ),
    "g.region_other": (
        "Ask for the terminal and the time of the payment and register the complaint; it is"
        " linked to this incident."
    ),
    "g.region_money": "Money at risk in the region so far: {money}.",
    "ui.region_terminals": "Terminal incidents",
    "ui.service_groups": "Service groups",
    "ui.region_guidance": "What to tell callers from the region",
    "ui.board": "Terminals failing customers now",
    "ui.board_terminals": "Terminals",
    "ui.complaints_hour": "Complaints in the last hour",
    "ui.board_empty": "No terminal has an open incident now.",
    "ui.refreshes": "This page refreshes every minute.",
    "ui.since_when": "Since",
    "ui.bad_amount": "Amount: type roubles, such as 500 or 500.50.",
    "ui.bad_time": "Time: a date and time such as 04.05.2026 10:30.",
    # status words
    "status.open": "open",
    "status.acknowledged": "acknowledged",
    "status.resolved": "resolved",
    "outcome.completed": "completed",
    "outcome.completedWithWarnings": "completed with warnings",
    "outcome.failed": "failed",
    "outcome.cancelled": "cancelled",
    # pages
    "ui.title": "termwatch console",
    "ui.search": "Search",
    "ui.search_label": "Terminal id, address or city",
    "ui.search_hint": "e.g. T-000042, Tverskaya 12, Kazan",
    "ui.no_results": "No terminal matches “{q}”.",
    "ui.results": "{n} terminals match “{q}”",
    "ui.more_results": "Showing the first {n}; add more words to narrow the search.",
    "ui.incidents": "Incidents",
    "ui.logout": "Log out",
    "ui.login": "Log in",
    "ui.token": "Access token",
    "ui.your_name": "Your name (shown on acknowledgements)",
    "ui.bad_token": "This token is not valid.",
    "ui.online": "online",
    "ui.offline": "offline",
    "ui.never_seen": "never seen",
    "ui.last_seen": "last seen",
    "ui.clock_ahead": "clock {span} ahead: receipts show a wrong time",
    "ui.clock_behind": "clock {span} behind: receipts show a wrong time",
    "ui.since": "since",
    "ui.for": "for",
    "ui.unregistered": "not in the registry",
    "ui.service_mode": "engineer on site",
    "ui.devices": "Devices",
    "ui.open_incidents": "Open incidents",
    "ui.no_open_incidents": "No open incidents.",
    "ui.operations": "Operations",
    "ui.find_payment": "Find the caller's payment",
    "ui.amount": "Amount, ₽",
    "ui.time": "Time",
    "ui.window": "± minutes",
    "ui.filter": "Find",
    "ui.clear": "Clear",
    "ui.no_operations": "No operations found.",
    "ui.op_time": "Time",
    "ui.op_amount": "Amount",
    "ui.op_service": "Service",
    "ui.op_account": "Account",
    "ui.op_outcome": "Outcome",
    "ui.op_failed_step": "Failed step",
    "ui.op_select": "This one",
    "ui.selected": "selected",
    "ui.guidance": "What to tell the caller",
    "ui.complaint": "Register a complaint",
    "ui.category": "Category",
    "ui.cat.no_receipt": "No receipt",
    "ui.cat.payment_failed": "Payment failed",
    "ui.cat.cash_not_credited": "Cash not credited",
    "ui.cat.terminal_out_of_order": "Terminal out of order",
    "ui.cat.other": "Other",
    "ui.occurred_at": "When it happened",
    "ui.customer": "Customer phone or wallet (only the last 4 digits are kept)",
    "ui.text": "What the caller says",
    "ui.ref": "CRM reference",
    "ui.submit": "Register",
    "ui.verdict": "Verdict",
    "ui.complaint_saved": "Complaint {ref} registered.",
    "ui.complaint_known": "Complaint {ref} was already registered; this is its result.",
    "ui.matched_op": "Matched operation",
    "ui.none": "none",
    "ui.linked_incident": "Linked incident",
    "ui.recent_complaints": "Recent complaints",
    "ui.incident": "Incident",
    "ui.kind": "Kind",
    "ui.severity": "Severity",
    "ui.status": "Status",
    "ui.service_group": "Service group",
    "ui.opened": "Opened",
    "ui.terminal": "Terminal",
    "ui.complaints": "Complaints",
    "ui.ops_affected": "Operations affected",
    "ui.money_at_risk": "Money at risk",
    "ui.any": "any",
    "ui.active": "open or acknowledged",
    "ui.all": "all",
    "ui.no_incidents": "No incidents match.",
    "ui.acknowledge": "Acknowledge",
    "ui.resolve": "Resolve",
    "ui.note": "Note",
    "ui.evidence": "Evidence",
    "ui.events": "Events",
    "ui.history": "History",
    "ui.back_to_card": "Terminal card",
    "ui.error": "Something is wrong",
    "ui.forbidden": "Your role may not do this.",
    "ui.not_found": "Not found.",
    "ui.language": "Language",
    "ui.skip": "Skip to content",
}

_RU: Final[dict[str, str]] = {
    "device.printer": "Принтер чеков",
    "device.cashAcceptor": "Купюроприёмник",
    "device.cardReader": "Картридер",
    "state.ok": "работает",
    "state.no_data": "нет данных",
    "state.offline": "не в сети",
    "state.power_off": "выключен",
    "state.hardware_error": "аппаратная ошибка",
    "state.not_installed": "не установлен",
    "state.user_error": "требует внимания",
    "state.fraud_attempt": "попытка мошенничества",
    "state.potential_fraud": "возможное мошенничество",
    "state.starting": "запускается",
    "state.busy": "занят",
    "state.paper_out": "нет бумаги",
    "state.paper_jammed": "замятие бумаги",
    "state.paper_low": "бумага заканчивается",
    "state.media_jammed": "замятие чека",
    "state.toner_out": "нет тонера",
    "state.toner_low": "тонер заканчивается",
    "state.acceptor_stopped": "остановлен",
    "state.acceptor_attention": "требует внимания",
    "state.reader_inoperable": "считыватель купюр не работает",
    "state.shutter_jammed": "заклинило шторку",
    "state.transport_inoperative": "не работает транспорт купюр",
    "state.stacker_inoperative": "кассета не работает",
    "state.stacker_missing": "нет кассеты",
    "state.stacker_manipulated": "вскрытие кассеты",
    "state.stacker_not_configured": "кассета не настроена",
    "state.stacker_full": "кассета заполнена",
    "state.stacker_high": "кассета почти заполнена",
    "state.card_jammed": "карта застряла в картридере",
    "state.unknown_value": "неизвестное состояние",
    "dur.day": "{n} дн",
    "dur.hour": "{n} ч",
    "dur.min": "{n} мин",
    "dur.moment": "меньше минуты",
    "g.never_seen": "От терминала ещё не поступало данных, его состояние неизвестно.",
    "g.unregistered": "Терминала нет в реестре; уточните номер терминала.",
    "g.offline": (
        "Терминал не в сети (нет связи {dur}). Оплата на нём сейчас невозможна;"
        " предложите другой терминал поблизости."
    ),
    "g.service_mode": "Сейчас на терминале работает инженер; он может быть недолго недоступен.",
    "g.printer": (
        "Терминал сейчас не печатает чеки ({state}, уже {dur}). Платежи проходят;"
        " чек можно отправить в электронном виде."
    ),
    "g.cash": "Терминал сейчас не принимает наличные ({state}, уже {dur}).",
    "g.cash_card_ok": " Оплатить картой на нём можно.",
    "g.card": "Оплата картой на этом терминале сейчас невозможна ({state}).",
    "g.incident": "Инженеры знают о проблеме: инцидент №{id} ({title}), статус: {status}.",
    "g.all_ok": "Терминал работает исправно.",
    "g.op_credited": "Платёж на {amount} в {op_time} прошёл и зачислен{ref}.",
    "g.op_ref": " (подтверждение {host_ref})",
    "g.op_no_receipt": " Чек не напечатан ({error}); предложите отправить его в электронном виде.",
    "g.op_cash_not_credited": (
        "Наличные {cash} приняты в {op_time}, но платёж не зачислен ({error})."
    ),
    "g.claim_registered": (
        " Претензия зарегистрирована под номером {ref}; деньги будут зачислены или возвращены"
        " после проверки."
    ),
    "g.claim_needed": " Зарегистрируйте жалобу, чтобы деньги зачислили или вернули.",
    "g.op_failed": "Платёж на {amount} в {op_time} не выполнен ({error}); наличные не удержаны.",
    "g.op_card_hold": " Сумму, заблокированную на карте, банк вернёт.",
    "g.op_cancelled": "Операция на {amount} в {op_time} отменена; деньги не списаны.",
    "g.op_other": "Операция на {amount} в {op_time} завершилась так: {outcome}.",
    "g.no_match": (
        "Операция с такой суммой и временем на этом терминале не найдена."
        " Уточните у звонящего время, сумму и терминал."
    ),
    "g.complaint_incident": " Она связана с инцидентом №{id}.",
    "g.unknown_error": "причина не указана",
    "g.ask_caller": (
        "Спросите у звонящего сумму, примерное время платежа и 4 последние цифры телефона"
        " или счёта, затем найдите платёж в разделе «Операции»."
    ),
    "g.registered_as": "Уже зарегистрирована жалоба {ref} от {on}, заключение: {verdict}.",
    "g.registered_once": " Повторно регистрировать не нужно: проверка уже идёт.",
    "g.explained_by": (
        "Это объясняет инцидент №{id} ({title}, статус: {status}) с {since}: инженеры о нём знают."
    ),
    "g.nothing_explains": (
        "С нашей стороны это ничем не объясняется: терминал в то время не сообщал о сбоях."
    ),
    "g.now_ok": "Сам терминал сейчас работает.",
    "g.other_incidents": "Другие проблемы терминала сейчас: {titles}.",
    "v.no_terminal": "терминал по адресу не определён",
    "v.cause": " ({kind} с {since})",
    "v.no_operation": "подходящей операции на {tid} с {start} до {end} нет",
    "v.explained": "; объясняется инцидентом{cause}",
    "v.no_fault": "; сбоем устройств не объясняется",
    "v.cash_at_risk": (
        "наличные приняты, платёж не отправлен{cause}: деньги под угрозой ({cash},"
        " операция {op_id} в {at})"
    ),
    "v.failed": "платёж на {amount} в {at} не прошёл{cause}; наличные не удержаны",
    "v.no_receipt": "чек не напечатан{cause}; платёж на {amount} в {at} зачислен",
    "v.silent": (
        "терминал считает платёж на {amount} в {at} выполненным, но несколько клиентов"
        " сообщают о сбое, которого терминал не видит: сверено с платёжным сервером"
    ),
    "v.completed_no_fault": (
        "терминал сообщает, что платёж на {amount} в {at} выполнен и отправлен;"
        " сбоем устройств жалоба не объясняется"
    ),
    "v.completed": "операция на {amount} в {at} прошла нормально{cause}",
    "ui.duplicate_warning": (
        "По этой операции уже есть жалоба ({refs}). Регистрируйте ещё одну, только если"
        " клиент сообщает что-то новое."
    ),
    "ui.confirm_repeat": "Всё равно зарегистрировать ещё одну жалобу по этой операции",
    "ui.duplicate_refused": (
        "По операции {op_id} уже есть жалоба ({refs}); отметьте флажок, чтобы"
        " зарегистрировать ещё одну."
    ),
    "ui.region_of": "регион {region}",
    "log.opened": "открыт",
    "log.reopened": "открыт снова",
    "log.updated": "обновлён",
    "log.acknowledged": "принят в работу",
    "log.resolved": "решён",
    "log.silenced": "оповещения отключены",
    "log.unsilenced": "оповещения включены",
    "log.grouped": "объединён в группу",
    "ui.rules_actor": "правила termwatch",
    "evidence.event": "событие",
    "evidence.operation": "операция",
    "evidence.complaint": "жалоба",
    "evidence.status": "отчёт о состоянии",
    "evidence.heartbeat": "сигнал связи",
    "evidence.availability": "доступность",
    "ui.event": "событие",
    "lane.availability": "Связь",
    "lane.printer": "Принтер чеков",
    "lane.cashAcceptor": "Купюроприёмник",
    "lane.cardReader": "Картридер",
    "lane.incidents": "Инциденты",
    "lane.operations": "Неудачные платежи",
    "lane.failed_at": "неудачный платёж в {at}",
    "ui.last_24h": "Последние 24 часа",
    "ui.last_7d": "Последние 7 дней",
    "ui.resolved_incidents": "Решённые инциденты",
    "ui.no_resolved": "За последние 7 дней решённых инцидентов нет.",
    "ui.grafana": "Панель терминала в Grafana",
    "g.region": (
        "{title}: затронуто терминалов: {n}, с {since}; инженеры знают (инцидент №{id},"
        " статус: {status})."
    ),
    "g.region_payments": (
        "Платежи на терминалах этого региона сейчас могут не проходить: предложите оплатить"
        " чуть позже или другим способом. Принятые, но не зачисленные наличные будут"
        " зачислены или возвращены: зарегистрируйте жалобу с терминалом и временем."
    ),
    "g.region_offline": (
        "Терминалы этого региона не на связи: предложите другой терминал или оплату позже."
    ),
    "g.region_other": (
        "Уточните терминал и время платежа и зарегистрируйте жалобу; она будет связана"
        " с этим инцидентом."
    ),
    "g.region_money": "Деньги под угрозой в регионе на сейчас: {money}.",
    "ui.region_terminals": "Инциденты терминалов",
    "ui.service_groups": "Сервисные группы",
    "ui.region_guidance": "Что говорить звонящим из региона",
    "ui.board": "Терминалы, на которых сейчас сбои у клиентов",
    "ui.board_terminals": "Терминалов",
    "ui.complaints_hour": "Жалоб за последний час",
    "ui.board_empty": "Открытых инцидентов на терминалах сейчас нет.",
    "ui.refreshes": "Страница обновляется каждую минуту.",
    "ui.since_when": "С",
    "ui.bad_amount": "Сумма: введите рубли, например 500 или 500,50.",
    "ui.bad_time": "Время: дата и время, например 04.05.2026 10:30.",
    "status.open": "открыт",
    "status.acknowledged": "принят в работу",
    "status.resolved": "решён",
    "outcome.completed": "выполнена",
    "outcome.completedWithWarnings": "выполнена с предупреждениями",
    "outcome.failed": "не выполнена",
    "outcome.cancelled": "отменена",
    "ui.title": "termwatch: консоль",
    "ui.search": "Найти",
    "ui.search_label": "Номер терминала, адрес или город",
    "ui.search_hint": "например T-000042, Тверская 12, Казань",
    "ui.no_results": "Терминалов по запросу «{q}» не найдено.",
    "ui.results": "Найдено терминалов по запросу «{q}»: {n}",
    "ui.more_results": "Показаны первые {n}; уточните запрос.",
    "ui.incidents": "Инциденты",
    "ui.logout": "Выйти",
    "ui.login": "Войти",
    "ui.token": "Токен доступа",
    "ui.your_name": "Ваше имя (видно в отметках о принятии)",
    "ui.bad_token": "Неверный токен.",
    "ui.online": "в сети",
    "ui.offline": "не в сети",
    "ui.never_seen": "ещё не выходил на связь",
    "ui.last_seen": "последняя связь",
    "ui.clock_ahead": "часы спешат на {span}: на чеках неверное время",
    "ui.clock_behind": "часы отстают на {span}: на чеках неверное время",
    "ui.since": "с",
    "ui.for": "уже",
    "ui.unregistered": "нет в реестре",
    "ui.service_mode": "на месте инженер",
    "ui.devices": "Устройства",
    "ui.open_incidents": "Открытые инциденты",
    "ui.no_open_incidents": "Открытых инцидентов нет.",
    "ui.operations": "Операции",
    "ui.find_payment": "Найти платёж звонящего",
    "ui.amount": "Сумма, ₽",
    "ui.time": "Время",
    "ui.window": "± минут",
    "ui.filter": "Найти",
    "ui.clear": "Сбросить",
    "ui.no_operations": "Операций не найдено.",
    "ui.op_time": "Время",
    "ui.op_amount": "Сумма",
    "ui.op_service": "Услуга",
    "ui.op_account": "Счёт",
    "ui.op_outcome": "Итог",
    "ui.op_failed_step": "Сбой на шаге",
    "ui.op_select": "Эта",
    "ui.selected": "выбрана",
    "ui.guidance": "Что сказать звонящему",
    "ui.complaint": "Зарегистрировать жалобу",
    "ui.category": "Категория",
    "ui.cat.no_receipt": "Нет чека",
    "ui.cat.payment_failed": "Платёж не прошёл",
    "ui.cat.cash_not_credited": "Наличные не зачислены",
    "ui.cat.terminal_out_of_order": "Терминал не работает",
    "ui.cat.other": "Другое",
    "ui.occurred_at": "Когда это было",
    "ui.customer": "Телефон или кошелёк клиента (хранятся только 4 последние цифры)",
    "ui.text": "Со слов клиента",
    "ui.ref": "Номер в CRM",
    "ui.submit": "Зарегистрировать",
    "ui.verdict": "Заключение",
    "ui.complaint_saved": "Жалоба {ref} зарегистрирована.",
    "ui.complaint_known": "Жалоба {ref} уже была зарегистрирована; вот её результат.",
    "ui.matched_op": "Найденная операция",
    "ui.none": "нет",
    "ui.linked_incident": "Связанный инцидент",
    "ui.recent_complaints": "Недавние жалобы",
    "ui.incident": "Инцидент",
    "ui.kind": "Вид",
    "ui.severity": "Важность",
    "ui.status": "Статус",
    "ui.service_group": "Сервисная группа",
    "ui.opened": "Открыт",
    "ui.terminal": "Терминал",
    "ui.complaints": "Жалобы",
    "ui.ops_affected": "Затронуто операций",
    "ui.money_at_risk": "Деньги под угрозой",
    "ui.any": "любой",
    "ui.active": "открытые и принятые",
    "ui.all": "все",
    "ui.no_incidents": "Инцидентов не найдено.",
    "ui.acknowledge": "Принять в работу",
    "ui.resolve": "Решить",
    "ui.note": "Примечание",
    "ui.evidence": "Доказательства",
    "ui.events": "События",
    "ui.history": "История",
    "ui.back_to_card": "Карточка терминала",
    "ui.error": "Что-то не так",
    "ui.forbidden": "Вашей роли это не разрешено.",
    "ui.not_found": "Не найдено.",
    "ui.language": "Язык",
    "ui.skip": "К содержимому",
}

_TABLES: Final = {
    "en": {**phrases("en"), **_EN, **i18n_ops.EN},
    "ru": {**phrases("ru"), **_RU, **i18n_ops.RU},
}


def text(lang: str, key: str, **values: object) -> str:
    """The phrase ``key`` in ``lang`` with ``values`` filled in."""
    phrase = _TABLES.get(lang, _TABLES["en"]).get(key) or _TABLES["en"].get(key) or key
    return phrase.format(**values) if values else phrase


def word(lang: str, vocabulary: str, code: str | None) -> str:
    """``code`` of ``vocabulary`` (``kind``, ``severity``, ``service``, ``step``, ``result``,
    ``error``) in plain words; a code no table knows is split into words, never shown raw."""
    if not code:
        return ""
    key = f"{vocabulary}.{code}"
    table = _TABLES.get(lang, _EN)
    return table.get(key) or _EN.get(key) or plain(code)


def failure(lang: str, step: str | None, error: str | None, result: str | None) -> str:
    """Where and why an operation failed, in words: ``receipt printed: receipt jammed``."""
    if not step:
        return ""
    code = error or result
    reason = ""
    if code:
        key = f"error.{code}"
        reason = text(lang, key)
        if reason == key:
            reason = word(lang, "result", code)
    name = word(lang, "step", step)
    return f"{name}: {reason}" if reason else name


def incident_title(lang: str, kind: str, tid: str, region: str | None) -> str:
    """An incident's title from its kind and where it is: ``Printer jammed — T-000042``,
    ``Payments failing — region Kazan`` (the stored title is English only)."""
    what = word(lang, "kind", kind)
    what = what[:1].upper() + what[1:]
    if tid.startswith("region:"):
        return f"{what} — {text(lang, 'ui.region_of', region=region or tid[7:])}"
    return f"{what} — {tid}"


def duration(lang: str, span: timedelta) -> str:
    """A span in the two largest units that matter: ``2 h 15 min``, ``3 d 4 h``."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return text(lang, "dur.moment")
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [(days, "dur.day"), (hours, "dur.hour"), (mins, "dur.min")]
    shown = [text(lang, key, n=n) for n, key in parts if n][:2]
    return " ".join(shown)


def money(lang: str, minor: int, currency: str) -> str:
    """``500.00 RUB`` in English, ``500,00 ₽`` in Russian (two decimal places)."""
    whole, cents = divmod(abs(minor), 100)
    sign = "-" if minor < 0 else ""
    if lang == "ru":
        grouped = f"{whole:,}".replace(",", "\u00a0")
        symbol = "₽" if currency == "RUB" else currency
        return f"{sign}{grouped},{cents:02d}\u00a0{symbol}"
    return f"{sign}{whole:,}.{cents:02d} {currency}"


_MONTHS_EN: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def when(lang: str, ts: datetime, tz: tzinfo) -> str:
    """A date and time in ``tz``: ``04.05.2026 10:31`` in Russian, ``4 May 2026 10:31`` in
    English; one format per language everywhere."""
    local = ts.astimezone(tz)
    if lang == "ru":
        return local.strftime("%d.%m.%Y %H:%M")
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year} {local:%H:%M}"


def clock_offset(lang: str, offset_s: float | None) -> str:
    """A terminal's clock offset against the fleet in words; empty when its clock is right."""
    if not offset_s:
        return ""
    key = "ui.clock_ahead" if offset_s > 0 else "ui.clock_behind"
    return text(lang, key, span=duration(lang, timedelta(seconds=abs(offset_s))))
