"""The monthly SLA report: availability, incidents, response times, complaints, money at risk.

Definitions (docs/report.md gives them in full, with an example):

* The report covers ``[start, end)`` and the registered terminals that had sent telemetry
  before ``end``; each counts from its first telemetry (``first_seen``) if that is later.
* Scheduled time: the part of that span inside the schedule (24/7 unless configured).
* Downtime: the union of the terminal's offline periods (availability log) and of the
  periods of its incidents whose kind stops it serving customers (``OUTAGE_KINDS``), from
  ``opened_at`` until the condition cleared (``cleared_at``), else until resolved, else still
  going at ``end``. Only downtime inside scheduled time counts.
* Availability % = 100 x (scheduled - downtime) / scheduled.
* Incidents: those opened in the period (terminal incidents, not regional parents).
  MTTA / MTTR: mean minutes from opening to acknowledgement / resolution, over those
  acknowledged / resolved before ``end``.
* Complaints: those about the terminal that occurred in the period.
* Money at risk: cash accepted on operations of the period whose payment did not go
  through, per currency, in major units.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, LiteralString

import pandas as pd
import psycopg
from psycopg.rows import dict_row

from dashboards.schedule import (
    Interval,
    Schedule,
    merge,
    overlap_seconds,
    total_seconds,
)
from terminals.kinds import INCIDENT_KINDS

#: Incident kinds during which a terminal cannot serve customers (the dash_downtime view's).
OUTAGE_KINDS = (
    "terminal_offline",
    "cash_acceptor_jam",
    "cash_acceptor_full",
    "cash_acceptor_fault",
    "payment_failures",
)
#: Every incident kind of the contract: a column each, present even when zero.
KINDS = INCIDENT_KINDS
#: ISO 4217 minor-unit exponents other than 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "XAF": 0, "XOF": 0, "UGX": 0,
              "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}  # fmt: skip
LEVELS = ("terminal", "region", "model", "fleet")


class ReportError(ValueError):
    """The report cannot be made as asked (bad period, bad output file)."""


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ReportError("the period's bounds must carry a time zone")
        if self.end <= self.start:
            raise ReportError("--to must be after --from")
        # UTC: Python subtracts two times of one zone by wall clock, wrong across DST.
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class Report:
    """The report's tables, one per level, plus what it was made with."""

    terminals: pd.DataFrame
    regions: pd.DataFrame
    models: pd.DataFrame
    fleet: pd.DataFrame
    definitions: pd.DataFrame

    def level(self, name: str) -> pd.DataFrame:
        if name not in LEVELS:
            raise ReportError(f"level must be one of {', '.join(LEVELS)}, got {name!r}")
        return {
            "terminal": self.terminals,
            "region": self.regions,
            "model": self.models,
            "fleet": self.fleet,
        }[name]


def build_report(
    conn: psycopg.Connection[Any],
    period: Period,
    schedule: Schedule,
    outage_kinds: tuple[str, ...] = OUTAGE_KINDS,
) -> Report:
    """Read the period's facts from the database and compute the report (read-only)."""
    terminals = _rows(
        conn,
        """
        SELECT t.tid, t.name, t.region, t.model, s.first_seen AS in_service_from
        FROM terminals t JOIN terminal_state s ON s.tid = t.tid
        WHERE s.first_seen < %(end)s
        ORDER BY t.tid
        """,
        period,
    )
    down_rows = _rows(
        conn,
        """
        SELECT tid, started_at, ended_at FROM dash_offline_periods
        WHERE started_at < %(end)s AND (ended_at IS NULL OR ended_at > %(start)s)
        UNION ALL
        SELECT tid, opened_at, coalesce(cleared_at, resolved_at) FROM incidents
        WHERE NOT is_group AND kind = ANY(%(kinds)s) AND opened_at < %(end)s
          AND (coalesce(cleared_at, resolved_at) IS NULL
               OR coalesce(cleared_at, resolved_at) > %(start)s)
        """,
        period,
        kinds=list(outage_kinds),
    )
    incidents = _rows(
        conn,
        """
        SELECT id, tid, kind,
               CASE WHEN acknowledged_at < %(end)s
                    THEN extract(epoch FROM acknowledged_at - opened_at) END AS tta_s,
               CASE WHEN resolved_at < %(end)s
                    THEN extract(epoch FROM resolved_at - opened_at) END AS ttr_s
        FROM incidents
        WHERE NOT is_group AND opened_at >= %(start)s AND opened_at < %(end)s
        """,
        period,
    )
    complaints = _rows(
        conn,
        """
        SELECT tid, count(*) AS complaints FROM complaints
        WHERE tid IS NOT NULL AND occurred_at >= %(start)s AND occurred_at < %(end)s
        GROUP BY tid
        """,
        period,
    )
    money = _rows(
        conn,
        """
        SELECT tid, currency, sum(money_at_risk_minor) AS minor FROM operations
        WHERE ts >= %(start)s AND ts < %(end)s
        GROUP BY tid, currency
        """,
        period,
    )
    return compute(
        period, schedule, outage_kinds, terminals, down_rows, incidents, complaints, money
    )


def _rows(
    conn: psycopg.Connection[Any], query: LiteralString, period: Period, **extra: Any
) -> list[dict[str, Any]]:
    params = {"start": period.start, "end": period.end, **extra}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def compute(
    period: Period,
    schedule: Schedule,
    outage_kinds: tuple[str, ...],
    terminals: list[dict[str, Any]],
    down_rows: list[dict[str, Any]],
    incidents: list[dict[str, Any]],
    complaints: list[dict[str, Any]],
    money: list[dict[str, Any]],
) -> Report:
    """The report from rows already read (see :func:`build_report` for their shape)."""
    down: dict[str, list[Interval]] = defaultdict(list)
    for span in down_rows:
        lo = max(span["started_at"].astimezone(UTC), period.start)
        hi = min((span["ended_at"] or period.end).astimezone(UTC), period.end)
        if hi > lo:
            down[span["tid"]].append((lo, hi))
    currencies = sorted({r["currency"] for r in money}) or ["RUB"]
    complaints_by = {r["tid"]: int(r["complaints"]) for r in complaints}
    money_by: dict[tuple[str, str], int] = {
        (r["tid"], r["currency"]): int(r["minor"]) for r in money
    }
    kinds = list(KINDS) + sorted({r["kind"] for r in incidents} - set(KINDS))
    known = {t["tid"] for t in terminals}
    incident_frame = pd.DataFrame(
        [
            {
                "tid": r["tid"],
                "kind": r["kind"],
                "tta_min": None if r["tta_s"] is None else float(r["tta_s"]) / 60,
                "ttr_min": None if r["ttr_s"] is None else float(r["ttr_s"]) / 60,
            }
            for r in incidents
            if r["tid"] in known
        ],
        columns=["tid", "kind", "tta_min", "ttr_min"],
    )
    table = []
    for t in terminals:
        tid = t["tid"]
        in_service = t["in_service_from"].astimezone(UTC)
        scheduled = schedule.intervals(max(period.start, in_service), period.end)
        row: dict[str, Any] = {
            "tid": tid,
            "name": t["name"],
            "region": t["region"],
            "model": t["model"],
            "scheduled_min": total_seconds(scheduled) / 60,
            "downtime_min": overlap_seconds(merge(down[tid]), scheduled) / 60,
        }
        mine = incident_frame[incident_frame["tid"] == tid]
        row["incidents"] = len(mine)
        for kind in kinds:
            row[f"incidents_{kind}"] = int((mine["kind"] == kind).sum())
        row["mtta_min"] = _mean(mine["tta_min"])
        row["mttr_min"] = _mean(mine["ttr_min"])
        row["complaints"] = complaints_by.get(tid, 0)
        for currency in currencies:
            row[f"money_at_risk_{currency}"] = _major(money_by.get((tid, currency), 0), currency)
        table.append(row)
    frame = pd.DataFrame(table, columns=_columns(kinds, currencies))
    frame["availability_pct"] = _availability(frame)
    frame = frame[_columns(kinds, currencies)]
    incident_frame = incident_frame.merge(frame[["tid", "region", "model"]], on="tid", how="inner")
    definitions = pd.DataFrame(
        [
            ("period_from", period.start.isoformat()),
            ("period_to", period.end.isoformat()),
            ("schedule", schedule.text),
            ("schedule_time_zone", str(schedule.zone)),
            ("outage_kinds", ", ".join(outage_kinds)),
            ("availability_pct", "100 x (scheduled_min - downtime_min) / scheduled_min"),
            ("mtta_min, mttr_min", "mean minutes from opening to acknowledgement / resolution"),
        ],
        columns=["item", "value"],
    )
    return Report(
        terminals=_rounded(frame),
        regions=_rounded(_rollup(frame, incident_frame, "region", kinds, currencies)),
        models=_rounded(_rollup(frame, incident_frame, "model", kinds, currencies)),
        fleet=_rounded(_rollup(frame, incident_frame, None, kinds, currencies)),
        definitions=definitions,
    )


def _columns(kinds: list[str], currencies: list[str]) -> list[str]:
    return [
        "tid",
        "name",
        "region",
        "model",
        "scheduled_min",
        "downtime_min",
        "availability_pct",
        "incidents",
        *[f"incidents_{k}" for k in kinds],
        "mtta_min",
        "mttr_min",
        "complaints",
        *[f"money_at_risk_{c}" for c in currencies],
    ]


def _mean(values: pd.Series) -> float | None:
    present = values.dropna()
    return float(present.mean()) if len(present) else None


def _major(minor: int, currency: str) -> float:
    exponent: int = _EXPONENTS.get(currency, 2)
    return float(minor) / float(10**exponent)


def _availability(frame: pd.DataFrame) -> pd.Series:
    scheduled = frame["scheduled_min"].astype(float)
    up = scheduled - frame["downtime_min"].astype(float)
    return (100 * up / scheduled.where(scheduled > 0)).astype(float)


def _rollup(
    frame: pd.DataFrame,
    incidents: pd.DataFrame,
    by: str | None,
    kinds: list[str],
    currencies: list[str],
) -> pd.DataFrame:
    """Sums per group, availability from the summed minutes, MTTA/MTTR over the incidents."""
    summed = [
        "scheduled_min",
        "downtime_min",
        "incidents",
        *[f"incidents_{k}" for k in kinds],
        "complaints",
        *[f"money_at_risk_{c}" for c in currencies],
    ]
    keys = [by] if by else []
    work = frame.assign(_all="fleet")
    group_keys = keys or ["_all"]
    out = work.groupby(group_keys, sort=True)[summed].sum().reset_index()
    out.insert(len(group_keys), "terminals", work.groupby(group_keys, sort=True).size().values)
    out["availability_pct"] = _availability(out)
    inc = incidents.assign(_all="fleet")
    times = inc.groupby(group_keys, sort=True)[["tta_min", "ttr_min"]].mean()
    times = times.rename(columns={"tta_min": "mtta_min", "ttr_min": "mttr_min"}).reset_index()
    out = out.merge(times, on=group_keys, how="left")
    if not by:
        out = out.drop(columns=["_all"])
    ordered = [
        *keys,
        "terminals",
        "scheduled_min",
        "downtime_min",
        "availability_pct",
        "incidents",
        *[f"incidents_{k}" for k in kinds],
        "mtta_min",
        "mttr_min",
        "complaints",
        *[f"money_at_risk_{c}" for c in currencies],
    ]
    return out[ordered]


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in ("scheduled_min", "downtime_min", "mtta_min", "mttr_min"):
        out[column] = out[column].astype(float).round(2)
    out["availability_pct"] = out["availability_pct"].astype(float).round(3)
    for column in [c for c in out.columns if c.startswith("money_at_risk_")]:
        out[column] = out[column].astype(float).round(3)
    return out


def write_report(report: Report, path: Path, level: str = "terminal") -> None:
    """Write ``report`` to ``path``: ``.xlsx`` gets a sheet per level plus the definitions;
    ``.csv`` gets the one table ``level``. Raises :class:`ReportError` for another suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        report.level(level).to_csv(path, index=False, float_format="%.3f")
    elif suffix == ".xlsx":
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            for name in LEVELS:
                report.level(name).to_excel(writer, sheet_name=f"{name}s", index=False)
            report.definitions.to_excel(writer, sheet_name="definitions", index=False)
    else:
        raise ReportError(f"{path}: the output file must end in .csv or .xlsx")
