"""Prometheus metrics of termwatch itself. No per-terminal labels (cardinality).

Metrics live in the default registry so that ``/metrics`` of any termwatch process shows
them; tests read values with ``REGISTRY.get_sample_value`` and compare before and after.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

KINDS: Final = ("status", "events", "operations", "heartbeat", "availability", "complaints")
OUTCOMES: Final = ("stored", "duplicate", "rejected")

MESSAGES = Counter(
    "termwatch_messages",
    "Messages received, by kind and outcome.",
    ["kind", "outcome"],
)
REJECTED = Counter(
    "termwatch_rejected_messages",
    "Messages rejected, by reason class.",
    ["reason"],
)
BATCH_SIZE = Histogram(
    "termwatch_batch_size",
    "Messages per committed batch.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
COMMIT_SECONDS = Histogram(
    "termwatch_commit_seconds",
    "Time to write and commit one batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
TERMINALS_REGISTERED = Gauge("termwatch_terminals_registered", "Terminals in the fleet registry.")
QUEUE_DEPTH = Gauge(
    "termwatch_queue_depth",
    "Messages received and not yet committed (read from the inbox when scraped).",
)
DATABASE_UP = Gauge(
    "termwatch_database_up", "1 while the collector's writer has a working database connection."
)
OLDEST_UNACKED = Gauge(
    "termwatch_oldest_unacknowledged_seconds",
    "Age of the oldest message received and not yet committed and acknowledged (0 if none).",
)
MQTT_CONNECTED = Gauge("termwatch_mqtt_connected", "1 while the collector's broker link is up.")
EVENT_CLOCK = Gauge("termwatch_event_clock_seconds", "The event clock, as a Unix time.")
RULE_SECONDS = Histogram(
    "termwatch_rule_seconds",
    "Time to evaluate the rules for one batch or tick.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
INCIDENTS_OPENED = Counter(
    "termwatch_incidents_opened", "Incidents opened or reopened.", ["kind", "severity"]
)
INCIDENTS_RESOLVED = Counter(
    "termwatch_incidents_resolved", "Incidents resolved.", ["kind", "severity"]
)
NOTIFICATIONS = Counter(
    "termwatch_notifications",
    "Notification delivery attempts, by target type and result (sent|failed|retry).",
    ["target", "result"],
)
OUTBOX_DEPTH = Gauge("termwatch_outbox_depth", "Notifications waiting to be delivered.")
OUTBOX_AGE = Gauge("termwatch_outbox_age_seconds", "Age of the oldest undelivered notification.")
HTTP_SECONDS = Histogram(
    "termwatch_http_request_seconds",
    "HTTP request time, by route template and status class.",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

for _kind in KINDS:
    for _outcome in OUTCOMES:
        MESSAGES.labels(_kind, _outcome)
