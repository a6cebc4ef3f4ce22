"""Steps about provider events."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.events import EVENT_KINDS
from harness.world import World

#: How long an event may take to arrive: a reconnect after a restart takes up to the
#: provider's one-second backoff plus the server's start.
EVENT_TIMEOUT_S = 20.0


@given(parsers.re(r"an? (?P<kind>\w+) event handler"))
def event_handler(world: World, kind: str) -> None:
    world.require_client().add_handler(EVENT_KINDS[kind], world.events.handler(kind))


@when(parsers.re(r"an? (?P<kind>\w+) event was fired"))
def event_fired(world: World, kind: str) -> None:
    world.last_event = world.events.next(kind, EVENT_TIMEOUT_S)


@then(parsers.re(r"the (?P<kind>\w+) event handler should have been executed"))
def handler_ran(world: World, kind: str) -> None:
    world.last_event = world.events.next(kind, EVENT_TIMEOUT_S)


@then(parsers.re(r"the (?P<kind>\w+) event handler should have been executed within (?P<ms>\d+)ms"))
def handler_ran_within(world: World, kind: str, ms: str) -> None:
    world.last_event = world.events.next(kind, int(ms) / 1000)
