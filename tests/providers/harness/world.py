"""What one scenario has built up so far, shared by its steps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails

from .events import EventLog, Recorded
from .launchpad import DEFAULT_FRACTIONAL, RampServer
from .modes import Mode


def parse_bool(text: str) -> bool:
    return text.strip().lower() in ("true", "yes", "t", "1")


#: The testbed's type names and how a step's text becomes a value of that type.
VALUE_PARSERS = {
    "Boolean": parse_bool,
    "String": str,
    "Integer": int,
    "Long": int,
    "Float": float,
    "Object": json.loads,
}


def parse_value(type_name: str, text: str) -> Any:
    try:
        parser = VALUE_PARSERS[type_name]
    except KeyError:
        raise ValueError(f"unknown value type {type_name!r}") from None
    return parser(text)


@dataclass(frozen=True)
class FlagUnderTest:
    key: str
    type_name: str
    default: Any


@dataclass
class World:
    mode: Mode
    server: RampServer
    #: A name for this scenario's provider in the SDK, so no two scenarios share handlers.
    domain: str
    #: The `fractional` bucketing the server evaluates with (`--fractional`), from the tags.
    fractional: str = DEFAULT_FRACTIONAL
    #: `an option "x" ...` steps, as the provider's keyword arguments.
    options: dict[str, Any] = field(default_factory=dict)
    flag: FlagUnderTest | None = None
    targeting_key: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    client: OpenFeatureClient | None = None
    details: FlagEvaluationDetails[Any] | None = None
    events: EventLog = field(default_factory=EventLog)
    last_event: Recorded | None = None

    def evaluation_context(self) -> EvaluationContext:
        return EvaluationContext(targeting_key=self.targeting_key, attributes=dict(self.attributes))

    def require_client(self) -> OpenFeatureClient:
        if self.client is None:
            raise AssertionError("the scenario has no provider yet")
        return self.client

    def require_flag(self) -> FlagUnderTest:
        if self.flag is None:
            raise AssertionError("the scenario names no flag")
        return self.flag

    def require_details(self) -> FlagEvaluationDetails[Any]:
        if self.details is None:
            raise AssertionError("the flag was not evaluated")
        return self.details
