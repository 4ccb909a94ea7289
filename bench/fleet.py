"""A large fleet for ``termwatch bench api``, written with COPY.

``terminals`` registered terminals (ids ``T-000001`` and up) in Russian cities, each with
current state (``terminal_state``, ``device_state``; a few per cent with a fault and an open
incident), and for the first ``history`` of them ``days`` days of history: operations,
events, heartbeats, status snapshots, device changes, resolved incidents and complaints.
Deterministic for a given seed. Everything goes through ``COPY ... FROM STDIN`` in large
chunks; nothing here is used outside the benchmark and its test.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import psycopg

CITIES: Final = (
    ("Москва", "Москва", 55.75, 37.62, 22),
    ("Санкт-Петербург", "Санкт-Петербург", 59.94, 30.31, 10),
    ("Новосибирск", "Новосибирская область", 55.03, 82.92, 4),
    ("Екатеринбург", "Свердловская область", 56.84, 60.61, 4),
    ("Казань", "Татарстан", 55.79, 49.12, 4),
    ("Нижний Новгород", "Нижегородская область", 56.33, 44.00, 3),
    ("Челябинск", "Челябинская область", 55.16, 61.40, 3),
    ("Самара", "Самарская область", 53.20, 50.15, 3),
    ("Омск", "Омская область", 54.99, 73.37, 3),
    ("Ростов-на-Дону", "Ростовская область", 47.24, 39.71, 3),
    ("Уфа", "Башкортостан", 54.74, 55.97, 3),
    ("Красноярск", "Красноярский край", 56.01, 92.87, 3),
    ("Воронеж", "Воронежская область", 51.66, 39.20, 3),
    ("Пермь", "Пермский край", 58.01, 56.25, 3),
    ("Волгоград", "Волгоградская область", 48.71, 44.51, 3),
    ("Краснодар", "Краснодарский край", 45.04, 38.98, 3),
    ("Саратов", "Саратовская область", 51.53, 46.03, 2),
    ("Тюмень", "Тюменская область", 57.15, 65.53, 2),
    ("Тольятти", "Самарская область", 53.51, 49.42, 2),
    ("Ижевск", "Удмуртия", 56.85, 53.20, 2),
    ("Барнаул", "Алтайский край", 53.35, 83.78, 2),
    ("Иркутск", "Иркутская область", 52.29, 104.28, 2),
    ("Хабаровск", "Хабаровский край", 48.48, 135.08, 2),
    ("Владивосток", "Приморский край", 43.12, 131.89, 2),
    ("Ярославль", "Ярославская область", 57.63, 39.87, 2),
    ("Томск", "Томская область", 56.48, 84.95, 2),
    ("Оренбург", "Оренбургская область", 51.77, 55.10, 2),
    ("Кемерово", "Кемеровская область", 55.35, 86.09, 2),
    ("Рязань", "Рязанская область", 54.63, 39.74, 1),
    ("Астрахань", "Астраханская область", 46.35, 48.04, 1),
    ("Пенза", "Пензенская область", 53.20, 45.00, 1),
    ("Липецк", "Липецкая область", 52.61, 39.59, 1),
    ("Тула", "Тульская область", 54.19, 37.62, 1),
    ("Киров", "Кировская область", 58.60, 49.66, 1),
    ("Калининград", "Калининградская область", 54.71, 20.51, 1),
)
STREETS: Final = (
    "Тверская", "Ленина", "Мира", "Советская", "Гагарина", "Пушкина", "Лермонтова",
    "Садовая", "Октябрьская", "Центральная", "Молодёжная", "Школьная", "Лесная",
    "Новая", "Набережная", "Заводская", "Кирова", "Московская", "Победы", "Комсомольская",
    "Первомайская", "Строителей", "Чкалова", "Горького", "Маяковского", "Энгельса",
    "Свердлова", "Куйбышева", "Баумана", "Профсоюзная", "Вокзальная", "Полевая", "Луговая",
    "Зелёная", "Солнечная", "Речная", "Парковая", "Южная", "Северная", "Восточная",
    "Западная", "Дзержинского", "Фрунзе", "Калинина", "Жукова", "Суворова", "Кутузова",
    "Толстого", "Чехова", "Гоголя", "Крылова", "Некрасова", "Островского", "Шевченко",
    "Спортивная", "Железнодорожная", "Транспортная", "Торговая", "Рабочая", "Красная",
)  # fmt: skip
VENUES: Final = (
    "ТЦ Мега", "ТЦ Европа", "Пятёрочка", "Магнит", "Перекрёсток", "Вокзал", "Почта",
    "ТРК Радуга", "Дикси", "Ашан", "Лента", "МФЦ", "Поликлиника", "Университет", "Аптека",
)  # fmt: skip
MODELS: Final = ("KX-200", "KX-300", "Lider-M", "Kiosk One")
#: Device fields of every terminal's current state, with the healthy value.
HEALTHY: Final = (
    ("printer", "device", "online"),
    ("printer", "paper", "full"),
    ("printer", "media", "notPresent"),
    ("cashAcceptor", "device", "online"),
    ("cashAcceptor", "acceptor", "ok"),
    ("cashAcceptor", "shutter", "closed"),
    ("cashAcceptor", "stacker.replenishment", "ok"),
    ("cardReader", "device", "online"),
)
#: Faults some terminals are in now: (device, field, value, incident kind, severity, title).
FAULTS: Final = (
    ("printer", "paper", "out", "printer_paper_out", "major", "Printer out of paper"),
    ("printer", "media", "jammed", "printer_jam", "major", "Printer jammed"),
    ("cashAcceptor", "stacker.replenishment", "full", "cash_acceptor_full", "critical",
     "Cash box full"),
    ("cashAcceptor", "shutter", "jammedClosed", "cash_acceptor_jam", "critical",
     "Cash acceptor shutter jammed"),
)  # fmt: skip
SERVICES: Final = ("mobile", "internet", "utilities", "transport", "wallet", "loan")
CHUNK: Final = 1 << 20
NULL: Final = "\\N"


@dataclass(frozen=True, slots=True)
class FleetSize:
    terminals: int = 100_000
    history: int = 1_000
    days: int = 30
    ops_per_day: int = 48
    events_per_day: int = 12
    status_per_day: int = 4
    heartbeat_every_min: int = 10

    def tids(self, count: int | None = None) -> list[str]:
        return [f"T-{i:06d}" for i in range(1, (count or self.terminals) + 1)]


@dataclass(frozen=True, slots=True)
class Terminal:
    tid: str
    city: str
    street: str
    house: int
    fault: int | None  # index into FAULTS


def fleet(size: FleetSize, seed: int = 7) -> list[Terminal]:
    """The registry, deterministic for ``seed``; about 3 % of terminals have a fault."""
    rng = random.Random(seed)
    weights = [c[4] for c in CITIES]
    out = []
    for tid in size.tids():
        city = rng.choices(range(len(CITIES)), weights)[0]
        fault = rng.randrange(len(FAULTS)) if rng.random() < 0.03 else None
        out.append(
            Terminal(tid, CITIES[city][0], rng.choice(STREETS), rng.randrange(1, 150), fault)
        )
    return out


def _copy(conn: psycopg.Connection[object], table: str, columns: str, lines: Iterator[str]) -> int:
    """COPY tab-separated ``lines`` into ``table``; return the number of rows."""
    rows = 0
    buffer: list[str] = []
    size = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for line in lines:
            buffer.append(line)
            size += len(line)
            rows += 1
            if size >= CHUNK:
                copy.write("".join(buffer))
                buffer.clear()
                size = 0
        if buffer:
            copy.write("".join(buffer))
    return rows


def _ts(value: datetime) -> str:
    return value.isoformat()


def load(
    conn: psycopg.Connection[object],
    size: FleetSize,
    now: datetime,
    log: Callable[[str], None] = print,
    seed: int = 7,
) -> dict[str, int]:
    """Write the whole fleet into an empty, migrated database; return rows per table."""
    conn.execute("SET synchronous_commit = off")
    terminals = fleet(size, seed)
    counts: dict[str, int] = {}
    steps: list[tuple[str, Callable[[], Iterator[str]], str]] = [
        ("terminals", lambda: _terminals(terminals, seed),
         "tid, name, address, city, region, lat, lon, model, service_group"),
        ("terminal_state", lambda: _terminal_state(terminals, now, seed),
         "tid, first_seen, last_seen, last_received_at, heartbeat_interval_s,"
         " last_heartbeat_at, online, online_changed_at, offline_reason, app, last_seq"),
        ("device_state", lambda: _device_state(terminals, now),
         "tid, device, field, value, since, ts"),
        ("incidents", lambda: _incidents(terminals, size, now, seed),
         "tid, kind, severity, status, title, region, opened_at, acknowledged_at,"
         " resolved_at, resolved_by, last_fault_at, cleared_at, complaints,"
         " operations_affected, money_at_risk_minor"),
        ("operations", lambda: _operations(size, now, seed),
         "tid, msg_id, ts, seq, received_at, op_id, kind, service, account_last4,"
         " amount_minor, currency, outcome, started, failed_step, failed_result,"
         " failed_error, cash_accepted_minor, money_at_risk_minor, steps"),
        ("events", lambda: _events(size, now, seed),
         "tid, msg_id, ts, received_at, device, name, payload"),
        ("heartbeats", lambda: _heartbeats(size, now),
         "tid, msg_id, ts, received_at, interval_s, uptime_s, app"),
        ("status_snapshots", lambda: _snapshots(size, now, seed),
         "tid, msg_id, ts, received_at, devices"),
        ("device_state_log", lambda: _state_log(size, now, seed), "tid, device, field, value, ts"),
        ("complaints", lambda: _complaints(size, now, seed),
         "ref, received_at, channel, category, tid, occurred_at, amount_minor,"
         " customer_last4, customer_hash, text, verdict"),
    ]  # fmt: skip
    for table, rows, columns in steps:
        with conn.transaction():
            counts[table] = _copy(conn, table, columns, rows())
        log(f"  {table}: {counts[table]:,} rows")
    settle(conn, log)
    return counts


def settle(conn: psycopg.Connection[object], log: Callable[[str], None] = print) -> None:
    """Bring a freshly loaded database to a steady state before measuring: statistics and
    visibility maps (VACUUM ANALYZE, so autovacuum does not start mid-measurement) and
    the dirty pages written out (CHECKPOINT, when this role may ask for one).

    Needs an autocommit connection (VACUUM cannot run in a transaction).
    """
    conn.execute("VACUUM (ANALYZE)")
    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        log("  (no CHECKPOINT: this role may not ask for one)")
    log("  vacuumed and analysed")


def _terminals(terminals: list[Terminal], seed: int) -> Iterator[str]:
    rng = random.Random(seed + 1)
    regions = {c[0]: c for c in CITIES}
    for t in terminals:
        _, region, lat, lon, _ = regions[t.city]
        name = f"{rng.choice(VENUES)} {t.tid[-4:]}"
        address = f"ул. {t.street}, д. {t.house}"
        group = f"{t.city}-{int(t.tid[2:]) % 7 + 1}"
        yield (
            f"{t.tid}\t{name}\t{address}\t{t.city}\t{region}\t"
            f"{lat + rng.uniform(-0.2, 0.2):.5f}\t{lon + rng.uniform(-0.2, 0.2):.5f}\t"
            f"{rng.choice(MODELS)}\t{group}\n"
        )


def _terminal_state(terminals: list[Terminal], now: datetime, seed: int) -> Iterator[str]:
    rng = random.Random(seed + 2)
    for t in terminals:
        online = rng.random() > 0.01
        last = now - timedelta(
            seconds=rng.randrange(5, 60) if online else rng.randrange(600, 90_000)
        )
        changed = now - timedelta(hours=rng.randrange(1, 200))
        first = _ts(now - timedelta(days=400))
        yield (
            f"{t.tid}\t{first}\t{_ts(last)}\t{_ts(last)}\t60\t{_ts(last)}\t"
            f"{'t' if online else 'f'}\t{_ts(changed if online else last)}\t"
            f"{NULL if online else 'heartbeat'}\tkiosk 2.3.1\t{rng.randrange(10**6)}\n"
        )


def _device_state(terminals: list[Terminal], now: datetime) -> Iterator[str]:
    since = _ts(now - timedelta(days=3))
    recent = _ts(now - timedelta(hours=2))
    ts = _ts(now - timedelta(seconds=30))
    for t in terminals:
        broken = FAULTS[t.fault] if t.fault is not None else None
        for device, field, value in HEALTHY:
            if broken is not None and (broken[0], broken[1]) == (device, field):
                yield f"{t.tid}\t{device}\t{field}\t{broken[2]}\t{recent}\t{ts}\n"
            else:
                yield f"{t.tid}\t{device}\t{field}\t{value}\t{since}\t{ts}\n"


def _incidents(
    terminals: list[Terminal], size: FleetSize, now: datetime, seed: int
) -> Iterator[str]:
    rng = random.Random(seed + 3)
    regions = {c[0]: c[1] for c in CITIES}
    for t in terminals:
        if t.fault is not None:
            _, _, _, kind, severity, title = FAULTS[t.fault]
            opened = now - timedelta(hours=2)
            yield (
                f"{t.tid}\t{kind}\t{severity}\topen\t{title}\t{regions[t.city]}\t{_ts(opened)}\t"
                f"{NULL}\t{NULL}\t{NULL}\t{_ts(now)}\t{NULL}\t0\t0\t0\n"
            )
    for t in terminals[: size.history]:
        for _ in range(rng.randrange(0, 6)):
            _, _, _, kind, severity, title = rng.choice(FAULTS)
            opened = (
                now
                - timedelta(days=size.days)
                + timedelta(minutes=rng.randrange(size.days * 1440 - 600))
            )
            resolved = opened + timedelta(minutes=rng.randrange(10, 500))
            acked, done = _ts(opened + timedelta(minutes=5)), _ts(resolved)
            yield (
                f"{t.tid}\t{kind}\t{severity}\tresolved\t{title}\t{regions[t.city]}\t"
                f"{_ts(opened)}\t{acked}\t{done}\trules\t{done}\t{done}\t{rng.randrange(3)}\t"
                f"{rng.randrange(10)}\t{rng.randrange(5) * 50000}\n"
            )


def _spread(rng: random.Random, start: datetime, days: int, per_day: int) -> list[datetime]:
    total = days * per_day
    seconds = days * 86_400
    return sorted(start + timedelta(seconds=rng.randrange(seconds)) for _ in range(total))


def _operations(size: FleetSize, now: datetime, seed: int) -> Iterator[str]:
    rng = random.Random(seed + 4)
    start = now - timedelta(days=size.days)
    for tid in size.tids(size.history):
        for n, ts in enumerate(_spread(rng, start, size.days, size.ops_per_day)):
            amount = rng.randrange(100, 1_500_000, 100)
            roll = rng.random()
            cash = rng.random() < 0.7
            first = (
                {"step": "cashAccepted", "result": "success", "amount_minor": amount}
                if cash
                else {"step": "cardAuthorised", "result": "success"}
            )
            if roll < 0.03:
                steps = [
                    first,
                    {"step": "paymentSent", "result": "timeout", "error": "hostTimeout"},
                ]
                outcome, failed = "failed", ("paymentSent", "timeout", "hostTimeout")
            elif roll < 0.08:
                steps = [
                    first,
                    {"step": "paymentSent", "result": "success", "host_ref": f"AUTH-{n:06d}"},
                    {"step": "receiptPrinted", "result": "failed", "error": "paperOut"},
                ]
                outcome, failed = "completedWithWarnings", ("receiptPrinted", "failed", "paperOut")
            else:
                steps = [
                    first,
                    {"step": "paymentSent", "result": "success", "host_ref": f"AUTH-{n:06d}"},
                    {"step": "receiptPrinted", "result": "success"},
                ]
                outcome, failed = "completed", None
            accepted = amount if cash else 0
            at_risk = accepted if failed is not None and failed[0] == "paymentSent" else 0
            yield (
                f"{tid}\t{tid}-op-{n}\t{_ts(ts)}\t{n}\t{_ts(ts)}\t{tid}-{ts:%Y%m%d}-{n:06d}\t"
                f"payment\t{rng.choice(SERVICES)}\t{rng.randrange(10_000):04d}\t{amount}\tRUB\t"
                f"{outcome}\t{_ts(ts - timedelta(seconds=40))}\t"
                f"{failed[0] if failed else NULL}\t{failed[1] if failed else NULL}\t"
                f"{failed[2] if failed else NULL}\t{accepted}\t{at_risk}\t{json.dumps(steps)}\n"
            )


def _events(size: FleetSize, now: datetime, seed: int) -> Iterator[str]:
    rng = random.Random(seed + 5)
    start = now - timedelta(days=size.days)
    kinds = (
        ("cashAcceptor", "CashAcceptor.InputRefuseEvent", '{"reason": "invalidBill"}'),
        ("printer", "Printer.PaperThresholdEvent", '{"paperSource": "upper", "threshold": "low"}'),
        ("cashAcceptor", "CashManagement.NoteErrorEvent", '{"reason": "skewedNote"}'),
    )
    for tid in size.tids(size.history):
        for n, ts in enumerate(_spread(rng, start, size.days, size.events_per_day)):
            device, name, payload = rng.choice(kinds)
            yield f"{tid}\t{tid}-ev-{n}\t{_ts(ts)}\t{_ts(ts)}\t{device}\t{name}\t{payload}\n"


def _heartbeats(size: FleetSize, now: datetime) -> Iterator[str]:
    start = now - timedelta(days=size.days)
    step = timedelta(minutes=size.heartbeat_every_min)
    count = size.days * 1440 // size.heartbeat_every_min
    for i, tid in enumerate(size.tids(size.history)):
        offset = timedelta(seconds=i % 60)
        for n in range(count):
            ts = _ts(start + offset + n * step)
            yield f"{tid}\t{tid}-hb-{n}\t{ts}\t{ts}\t60\t{n * 600}\tkiosk 2.3.1\n"


def _snapshots(size: FleetSize, now: datetime, seed: int) -> Iterator[str]:
    rng = random.Random(seed + 6)
    start = now - timedelta(days=size.days)
    for tid in size.tids(size.history):
        for n, ts in enumerate(_spread(rng, start, size.days, size.status_per_day)):
            paper = rng.choice(("full", "full", "low"))
            devices = (
                f'{{"printer": {{"device": "online", "paper": "{paper}"}},'
                f' "cashAcceptor": {{"device": "online", "acceptor": "ok"}}}}'
            )
            yield f"{tid}\t{tid}-st-{n}\t{_ts(ts)}\t{_ts(ts)}\t{devices}\n"


def _state_log(size: FleetSize, now: datetime, seed: int) -> Iterator[str]:
    rng = random.Random(seed + 7)
    start = now - timedelta(days=size.days)
    for tid in size.tids(size.history):
        for ts in _spread(rng, start, size.days, size.status_per_day):
            yield f"{tid}\tprinter\tpaper\t{rng.choice(('full', 'low', 'out'))}\t{_ts(ts)}\n"


def _complaints(size: FleetSize, now: datetime, seed: int) -> Iterator[str]:
    rng = random.Random(seed + 8)
    start = now - timedelta(days=size.days)
    categories = ("no_receipt", "payment_failed", "cash_not_credited", "other")
    n = 0
    for tid in size.tids(size.history):
        for ts in _spread(rng, start, size.days, 1):
            if rng.random() < 0.5:
                continue
            n += 1
            received = _ts(ts + timedelta(minutes=20))
            yield (
                f"BENCH-{n:07d}\t{received}\tphone\t{rng.choice(categories)}\t{tid}\t"
                f"{_ts(ts)}\t{rng.randrange(100, 500_000, 100)}\t{rng.randrange(10_000):04d}\t"
                f"h{n}\tno receipt\tbenchmark\n"
            )
