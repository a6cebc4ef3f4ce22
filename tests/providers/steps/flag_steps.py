"""Steps that name a flag, evaluate it and check the result."""

from __future__ import annotations

import math
from typing import Any

from pytest_bdd import given, parsers, then, when

from harness.world import FlagUnderTest, World, parse_value


@given(
    parsers.re(
        r'an? (?P<type_name>\w+)-flag with key "(?P<key>[^"]+)" '
        r'and a default value "(?P<default>[^"]*)"'
    )
)
def a_flag(world: World, type_name: str, key: str, default: str) -> None:
    world.flag = FlagUnderTest(
        key=key, type_name=type_name, default=parse_value(type_name, default)
    )


@when("the flag was evaluated with details")
def evaluate(world: World) -> None:
    flag = world.require_flag()
    client = world.require_client()
    evaluate_typed = {
        "Boolean": client.get_boolean_details,
        "String": client.get_string_details,
        "Integer": client.get_integer_details,
        "Float": client.get_float_details,
        "Object": client.get_object_details,
    }[flag.type_name]
    world.details = evaluate_typed(flag.key, flag.default, world.evaluation_context())


@when("the flag was modified")
def modify(world: World) -> None:
    world.server.change_flag()


def same_value(type_name: str, actual: Any, expected: Any) -> bool:
    if type_name == "Float":
        return isinstance(actual, (int, float)) and math.isclose(actual, expected)
    if type_name in ("Integer", "Boolean"):
        # bool is an int in Python: a flag of one type must not pass for the other.
        return type(actual) is type(expected) and actual == expected
    return actual == expected


@then(parsers.re(r'the resolved details value should be "(?P<value>.*)"'))
def resolved_value(world: World, value: str) -> None:
    flag = world.require_flag()
    details = world.require_details()
    expected = parse_value(flag.type_name, value)
    assert same_value(flag.type_name, details.value, expected), (
        f"{flag.key}: value {details.value!r}, expected {expected!r} ({describe(details)})"
    )


@then(parsers.re(r'the reason should be "(?P<reason>[A-Z_]+)"'))
def reason(world: World, reason: str) -> None:
    details = world.require_details()
    assert str(details.reason) == reason, (
        f"reason {details.reason}, expected {reason} ({describe(details)})"
    )


@then(parsers.re(r'the error-code should be "(?P<code>[A-Z_]*)"'))
def error_code(world: World, code: str) -> None:
    details = world.require_details()
    actual = "" if details.error_code is None else str(details.error_code)
    assert actual == code, (
        f"error code {actual or 'none'}, expected {code or 'none'} ({describe(details)})"
    )


@then(parsers.re(r'the variant should be "(?P<variant>[^"]*)"'))
def variant(world: World, variant: str) -> None:
    details = world.require_details()
    assert details.variant == variant, f"variant {details.variant!r}, expected {variant!r}"


@then("the resolved metadata should contain")
def metadata_contains(world: World, datatable: list[list[str]]) -> None:
    metadata = dict(world.require_details().flag_metadata)
    header, *rows = datatable
    assert header == ["key", "metadata_type", "value"], header
    expected = {key: parse_value(type_name, text) for key, type_name, text in rows}
    assert set(metadata) == set(expected), (
        f"metadata keys {sorted(metadata)}, expected {sorted(expected)}"
    )
    for key, type_name, _ in rows:
        assert same_value(type_name, metadata[key], expected[key]), (
            f"metadata {key}: {metadata[key]!r}, expected {expected[key]!r}"
        )


@then("the resolved metadata is empty")
def metadata_empty(world: World) -> None:
    metadata = dict(world.require_details().flag_metadata)
    assert metadata == {}, f"metadata {metadata}"


@then("the flag should be part of the event payload")
def flag_in_event(world: World) -> None:
    flag = world.require_flag()
    assert world.last_event is not None, "no event was received"
    changed = world.last_event.details.flags_changed or []
    assert flag.key in changed, f"{flag.key} not among the changed flags {changed}"


def describe(details: Any) -> str:
    return (
        f"reason={details.reason} variant={details.variant!r} "
        f"error={details.error_code} {details.error_message or ''}".strip()
    )
