"""Steps that build the evaluation context."""

from __future__ import annotations

from pytest_bdd import given, parsers

from harness.world import World, parse_value


@given(parsers.re(r'a context containing a targeting key with value "(?P<value>[^"]*)"'))
def targeting_key(world: World, value: str) -> None:
    world.targeting_key = value


@given(
    parsers.re(
        r'a context containing a key "(?P<key>[^"]*)", with type "(?P<type_name>[^"]+)" '
        r'and with value "(?P<value>.*)"'
    )
)
def context_entry(world: World, key: str, type_name: str, value: str) -> None:
    world.attributes[key] = parse_value(type_name, value)


@given(
    parsers.re(
        r'a context containing a nested property with outer key "(?P<outer>[^"]+)" and '
        r'inner key "(?P<inner>[^"]+)", with value "(?P<value>[^"]*)"'
    )
)
def nested_context_entry(world: World, outer: str, inner: str, value: str) -> None:
    world.attributes.setdefault(outer, {})[inner] = value
