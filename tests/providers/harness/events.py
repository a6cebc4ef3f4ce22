"""Provider events as a scenario sees them, in the order they arrived.

Scenarios describe chains (`ready -> stale -> error -> ready`): each wait finds the first event
of its kind after the one the previous wait found, so a chain passes only if its events came in
that order, and an early event can never stand in for a later one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from openfeature.event import EventDetails, ProviderEvent

#: The testbed's event names.
EVENT_KINDS = {
    "ready": ProviderEvent.PROVIDER_READY,
    "error": ProviderEvent.PROVIDER_ERROR,
    "stale": ProviderEvent.PROVIDER_STALE,
    "change": ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
}


@dataclass(frozen=True)
class Recorded:
    kind: str
    details: EventDetails
    at: float


class EventLog:
    def __init__(self) -> None:
        self._events: list[Recorded] = []
        self._arrived = threading.Condition()
        self._cursor = 0

    def handler(self, kind: str):
        """An SDK event handler that records events as `kind`."""

        def record(details: EventDetails) -> None:
            with self._arrived:
                self._events.append(Recorded(kind, details, time.monotonic()))
                self._arrived.notify_all()

        return record

    def next(self, kind: str, timeout_s: float) -> Recorded:
        """The first `kind` event after the last one found, waiting up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                for index in range(self._cursor, len(self._events)):
                    if self._events[index].kind == kind:
                        self._cursor = index + 1
                        return self._events[index]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [event.kind for event in self._events]
                    raise AssertionError(
                        f"no {kind} event within {timeout_s:g}s "
                        f"(events so far: {seen}, already matched: {self._cursor})"
                    )
                self._arrived.wait(remaining)
