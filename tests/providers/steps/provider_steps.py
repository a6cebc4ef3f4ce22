"""Steps that configure, start and disturb the provider and the server behind it."""

from __future__ import annotations

import re
from typing import Any

from openfeature import api
from openfeature.contrib.provider.flagd.config import CacheType
from openfeature.provider import ProviderStatus
from pytest_bdd import given, parsers, then, when

from harness import testbed
from harness.modes import PROVIDER_SETUPS, provider_for
from harness.world import World, parse_value


def snake_case(name: str) -> str:
    """`deadlineMs` -> `deadline_ms`, the provider's keyword for a testbed option."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def parse_option(type_name: str, text: str) -> Any:
    """A testbed option's value: the provider's own types, then the plain value types."""
    if type_name == "CacheType":
        return CacheType(text)
    if type_name == "StringList":
        return [item.strip() for item in text.split(",") if item.strip()]
    return parse_value(type_name, text)


@given(
    parsers.re(
        r'an option "(?P<option>[^"]+)" of type "(?P<type_name>[^"]+)" '
        r'with value "(?P<value>[^"]*)"'
    )
)
def an_option(world: World, option: str, type_name: str, value: str) -> None:
    world.options[snake_case(option)] = parse_option(type_name, value)


@given(parsers.re(r"an? (?P<name>\w+) flagd provider"))
def a_provider(world: World, name: str) -> None:
    try:
        setup = PROVIDER_SETUPS[name]
    except KeyError:
        raise AssertionError(f"no server setup for a {name!r} provider") from None
    config = testbed.launchpad_config(setup.config)
    world.server.serve(config, token=setup.server_token, fractional=world.fractional)
    provider = provider_for(world.mode, world.server, setup, config, world.options)
    world.client = api.get_client(world.domain)
    if not setup.awaits_ready:
        api.set_provider(provider, world.domain)
        return
    api.set_provider_and_wait(provider, world.domain)
    status = world.client.get_provider_status()
    assert status == ProviderStatus.READY, f"provider is {status} after initialisation"


@when(parsers.re(r"the connection is lost for (?P<seconds>\d+(?:\.\d+)?)s"))
def connection_lost(world: World, seconds: str) -> None:
    world.server.lose_connection(float(seconds))


@then(parsers.re(r"the client should be in (?P<status>\w+) state"))
def client_state(world: World, status: str) -> None:
    expected = ProviderStatus[status.upper()]
    assert world.require_client().get_provider_status() == expected
