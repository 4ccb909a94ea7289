"""termwatch health: is termwatch itself keeping up (Prometheus data source).

Every metric name here is one of termwatch/metrics.py (a test checks it), except
``termwatch_terminals_registered``, which the ingest-stalled alert also needs.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards.kit import Board, prom
from dashboards.panels import stat_panel, timeseries_panel

UID = "termwatch-health"


def _quantiles(metric: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[$__rate_interval])))",
            f"p{int(q * 100)}{suffix}",
        )
        for q in (0.5, 0.99)
    ]


def _quantile_queries(metric: str) -> list[prometheus_builders.Dataquery]:
    """Prometheus queries of the median and the 99th percentile of a histogram (refs A, B)."""
    return [
        prom(expr, legend, ref_id=ref)
        for (expr, legend), ref in zip(_quantiles(metric), "AB", strict=True)
    ]


def build() -> dashboard_models.Dashboard:
    board = Board(
        UID,
        "termwatch: health",
        "termwatch itself: ingest, rejects, commit latency, queues, rules, notifications.",
    )
    board.builder.time("now-6h", "now")
    board.add(
        stat_panel(
            "Processes up",
            "termwatch processes Prometheus can scrape now, per job (collector, API).",
            prom('sum by (job) (up{job=~"termwatch.*"})', "{{job}}"),
            steps=((None, "red"), (1, "green")),
        ),
        w=6,
        h=4,
    )
    board.add(
        stat_panel(
            "Broker link",
            "Collectors connected to the MQTT broker now (0 means telemetry is not arriving).",
            prom("sum(termwatch_mqtt_connected)", "connected"),
            steps=((None, "red"), (1, "green")),
        ),
        w=6,
        h=4,
    )
    board.add(
        stat_panel(
            "Database link",
            "Collectors whose writer has a working database connection now (0: messages wait"
            " unacknowledged at the broker).",
            prom("sum(termwatch_database_up)", "reachable"),
            steps=((None, "red"), (1, "green")),
        ),
        w=6,
        h=4,
    )
    board.add(
        stat_panel(
            "Terminals registered",
            "Terminals in the fleet registry, as termwatch reports it.",
            prom("max(termwatch_terminals_registered)", "registered"),
        ),
        w=6,
        h=4,
    )
    board.add(
        stat_panel(
            "Event clock lag",
            "How far the newest telemetry's event time is behind the wall clock.",
            prom("time() - max(termwatch_event_clock_seconds)", "lag"),
            unit="s",
            steps=((None, "green"), (120, "yellow"), (600, "red")),
        ),
        w=6,
        h=4,
    )
    board.newline()
    board.add(
        timeseries_panel(
            "Ingest rate by kind",
            "Messages stored per second, by kind (status, events, operations, heartbeat, "
            "availability, complaints).",
            prom(
                "sum by (kind) "
                '(rate(termwatch_messages_total{outcome="stored"}[$__rate_interval]))',
                "{{kind}}",
            ),
            unit="ops",
            stacked=True,
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Messages by outcome",
            "Messages per second by outcome: stored, duplicate (redelivered), rejected.",
            prom(
                "sum by (outcome) (rate(termwatch_messages_total[$__rate_interval]))",
                "{{outcome}}",
            ),
            unit="ops",
        ),
        w=12,
        h=8,
    )
    board.newline()
    board.add(
        timeseries_panel(
            "Rejected messages by reason",
            "Messages rejected per second, by reason class (malformed, spoofed tid, too "
            "large...). Each one is kept in rejected_messages.",
            prom(
                "sum by (reason) (rate(termwatch_rejected_messages_total[$__rate_interval]))",
                "{{reason}}",
            ),
            unit="ops",
            stacked=True,
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Commit latency",
            "Time to write and commit one batch: median and 99th percentile.",
            *_quantile_queries("termwatch_commit_seconds"),
            unit="s",
        ),
        w=12,
        h=8,
    )
    board.newline()
    board.add(
        timeseries_panel(
            "Queue depth",
            "Messages received and not yet committed, per collector.",
            prom("termwatch_queue_depth", "{{instance}}"),
        ),
        w=8,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Oldest unacknowledged message",
            "Age of the oldest message received and not yet committed, per collector: it grows"
            " while the database is away or the writer is stuck.",
            prom("termwatch_oldest_unacknowledged_seconds", "{{instance}}"),
            unit="s",
        ),
        w=8,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Batch size",
            "Messages per committed batch: median and 99th percentile.",
            *_quantile_queries("termwatch_batch_size"),
        ),
        w=8,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Rule time",
            "Time to evaluate the rules for one batch or tick: median and 99th percentile.",
            *_quantile_queries("termwatch_rule_seconds"),
            unit="s",
        ),
        w=8,
        h=8,
    )
    board.newline()
    board.add(
        timeseries_panel(
            "Notification failures",
            "Notification attempts that failed or will be retried, per second, by target type.",
            prom(
                "sum by (target, result) "
                '(rate(termwatch_notifications_total{result=~"failed|retry"}[$__rate_interval]))',
                "{{target}} {{result}}",
            ),
            unit="ops",
        ),
        w=8,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Outbox age",
            "Age of the oldest notification not yet delivered.",
            prom("max(termwatch_outbox_age_seconds)", "oldest"),
            unit="s",
        ),
        w=8,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Outbox depth",
            "Notifications waiting to be delivered.",
            prom("sum(termwatch_outbox_depth)", "waiting"),
        ),
        w=8,
        h=8,
    )
    board.newline()
    board.add(
        timeseries_panel(
            "Incidents opened and resolved",
            "Incidents opened (or reopened) and resolved per interval, by kind.",
            prom(
                "sum by (kind) (increase(termwatch_incidents_opened_total[$__rate_interval]))",
                "opened {{kind}}",
            ),
            prom(
                "sum by (kind) (increase(termwatch_incidents_resolved_total[$__rate_interval]))",
                "resolved {{kind}}",
                ref_id="B",
            ),
            bars=True,
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "HTTP latency",
            "99th percentile HTTP request time by route.",
            prom(
                "histogram_quantile(0.99, sum by (le, route) "
                "(rate(termwatch_http_request_seconds_bucket[$__rate_interval])))",
                "{{route}}",
            ),
            unit="s",
        ),
        w=12,
        h=8,
    )
    return board.build()
