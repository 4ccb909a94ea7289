"""The collector as one object: broker link, inbox and writer, wired together.

Used by ``termwatch collector``, ``termwatch serve`` and tests::

    collector = Collector(settings, hooks=[engine], complaints=intake)
    collector.start()
    collector.wait_ready(10)   # subscribed
    ...
    collector.stop()           # commits and acknowledges what it holds, then disconnects

Without a ``complaints`` sink the collector does not subscribe to ``support/complaints``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from collector.clock import EventClock
from collector.hooks import AfterCommit, ComplaintSink
from collector.inbox import Inbox
from collector.mqtt import MqttSource
from collector.writer import Writer
from termwatch import health
from termwatch.settings import Settings

log = logging.getLogger(__name__)


class Collector:
    """Stores every message from the broker; see :mod:`collector.writer` for the guarantees.

    The constructor raises :class:`~termwatch.settings.SettingsError` when the database or
    the broker is not configured. ``start()`` does not wait for either: both are retried in
    the background until they answer.
    """

    def __init__(
        self,
        settings: Settings,
        hooks: Sequence[AfterCommit] = (),
        complaints: ComplaintSink | None = None,
        clock: EventClock | None = None,
    ) -> None:
        settings.require_database()
        self.settings = settings
        self.clock = clock if clock is not None else EventClock()
        self.inbox = Inbox(settings.queue_max)
        self.source = MqttSource(
            settings, self.inbox, self.clock, complaints=complaints is not None
        )
        self.failed = threading.Event()
        self.writer = Writer(
            settings,
            self.inbox,
            self.source.ack,
            self.clock,
            hooks=hooks,
            complaints=complaints,
            on_fatal=self._fatal,
        )
        self._started = False

    def start(self) -> None:
        """Start the writer, then the broker link (so nothing arrives before it can be stored)."""
        if self._started:
            raise RuntimeError("the collector is already started")
        self._started = True
        self.writer.start()
        self.source.start()
        health.register("broker", self._broker_up)
        health.register("writer", self.writer.healthy)

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until connected and subscribed; False on timeout or when the writer failed."""
        return self.source.subscribed.wait(timeout_s) and not self.failed.is_set()

    def wait_processed(self, count: int, timeout_s: float = 10.0) -> bool:
        """Wait until ``count`` messages in total were committed (stored, duplicate or
        rejected) and acknowledged; False on timeout."""
        return self.writer.wait_processed(count, timeout_s)

    @property
    def processed(self) -> int:
        return self.writer.processed

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking messages in, commit and acknowledge those held, then disconnect.

        Messages arriving meanwhile are left unacknowledged for the next session. If the
        database does not come back within ``timeout_s``, what is held is left too.
        """
        if not self._started:
            return
        health.unregister("broker", self._broker_up)
        health.unregister("writer", self.writer.healthy)
        self.source.pause()
        if not self.writer.stop(timeout_s):
            log.warning("stopped before committing every message taken in")
        self.source.stop()
        self._started = False

    def _broker_up(self) -> bool:
        return self.source.connected

    def _fatal(self, exc: BaseException) -> None:
        self.source.pause()
        self.failed.set()
