"""``termwatch status TID``: the terminal card as rich text in a terminal."""

from __future__ import annotations

from datetime import datetime, tzinfo

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from termwatch.web.i18n import duration, failure, incident_title, money, text
from termwatch.web.models import TerminalCard

_STYLE = {
    "ok": "green",
    "warning": "yellow",
    "fault": "bold red",
    "absent": "dim",
    "unknown": "dim",
}


def _when(ts: datetime | None, tz: tzinfo) -> str:
    return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if ts else ""


def render(card: TerminalCard, now: datetime, tz: tzinfo, console: Console) -> None:
    """Print ``card`` to ``console``: head, guidance, devices, incidents, operations."""
    lang = card.language
    head = Text()
    head.append(card.tid, style="bold")
    if card.name:
        head.append(f"  {card.name}")
    head.append("\n")
    if card.registered:
        head.append(f"{card.address}, {card.city} · {card.region}")
        if card.service_group:
            head.append(f" · {text(lang, 'ui.service_group')}: {card.service_group}")
    else:
        head.append(text(lang, "ui.unregistered"), style="yellow")
    head.append("\n")
    if card.online is None:
        head.append(text(lang, "ui.never_seen"), style="dim")
    elif card.online:
        head.append(text(lang, "ui.online"), style="bold green")
    else:
        head.append(text(lang, "ui.offline"), style="bold red")
        if card.online_changed_at:
            head.append(f" {text(lang, 'ui.for')} {duration(lang, now - card.online_changed_at)}")
    if card.last_seen:
        head.append(f" · {text(lang, 'ui.last_seen')} {_when(card.last_seen, tz)}")
    if card.service_mode:
        head.append(f" · {text(lang, 'ui.service_mode')}", style="yellow")
    if card.clock:
        head.append(f" · {card.clock}", style="yellow")

    guidance = Panel(
        "\n".join(card.guidance_lines), title=text(lang, "ui.guidance"), border_style="cyan"
    )

    devices = Table(title=text(lang, "ui.devices"), title_justify="left", expand=True)
    devices.add_column(text(lang, "ui.devices"))
    devices.add_column(text(lang, "ui.status"))
    devices.add_column(text(lang, "ui.since"))
    for d in card.devices:
        since = f"{_when(d.since, tz)} ({duration(lang, now - d.since)})" if d.since else ""
        devices.add_row(d.label, Text(d.state, style=_STYLE[d.condition]), since)

    parts: list[Panel | Table | Text] = [Panel(head), guidance, devices]
    if card.incidents:
        incidents = Table(title=text(lang, "ui.open_incidents"), title_justify="left", expand=True)
        for column in ("#", "ui.severity", "ui.incident", "ui.status", "ui.opened"):
            incidents.add_column(column if column == "#" else text(lang, column))
        for i in card.incidents:
            incidents.add_row(
                str(i.id),
                Text(
                    text(lang, f"severity.{i.severity}"),
                    style="bold red" if i.severity == "critical" else "yellow",
                ),
                incident_title(lang, i.kind, i.tid, i.region),
                text(lang, f"status.{i.status}"),
                _when(i.opened_at, tz),
            )
        parts.append(incidents)
    else:
        parts.append(Text(text(lang, "ui.no_open_incidents"), style="dim"))
    ops = Table(title=text(lang, "ui.operations"), title_justify="left", expand=True)
    for key in (
        "ui.op_time",
        "ui.op_amount",
        "ui.op_account",
        "ui.op_outcome",
        "ui.op_failed_step",
    ):
        ops.add_column(text(lang, key), justify="right" if key == "ui.op_amount" else "left")
    selected = card.selected_operation.op_id if card.selected_operation else None
    for op in card.operations:
        failed = failure(lang, op.failed_step, op.failed_error, op.failed_result)
        ops.add_row(
            _when(op.ts, tz),
            money(lang, op.amount_minor, op.currency),
            f"•••{op.account_last4}" if op.account_last4 else "",
            text(lang, f"outcome.{op.outcome}"),
            failed,
            style="reverse" if op.op_id == selected else None,
        )
    parts.append(ops)
    console.print(Group(*parts))
