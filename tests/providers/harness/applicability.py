"""Which testbed scenarios run in which mode, and why the others do not.

The testbed tags each feature, scenario and example with the resolvers it concerns (`@rpc`,
`@in-process`, `@file`) and the capabilities it needs. A scenario runs in a mode unless a rule
below says otherwise:

- a *skip* rule: the scenario does not concern Ramp's server in that mode; the skipped test
  reports the rule's reason;
- an *expected failure* rule: the scenario concerns the server, Ramp answers as the protocol
  says, and a defect of the pinned client makes the scenario fail anyway. The test still runs
  (strictly: should the client be fixed, the pass is reported and the rule must go).

`README.md` lists the outcome per scenario.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .modes import Mode


@dataclass(frozen=True)
class Scenario:
    #: The feature file's stem, e.g. `targeting`.
    feature: str
    name: str
    #: Feature, scenario and example tags together.
    tags: frozenset[str]
    #: The example row of a scenario outline (column -> cell), empty for a plain scenario.
    example: Mapping[str, str] = field(default_factory=dict)


class Outcome(enum.Enum):
    SKIP = "skip"
    EXPECTED_FAILURE = "expected failure"


@dataclass(frozen=True)
class Rule:
    applies: Callable[[Mode, Scenario], bool]
    reason: str
    outcome: Outcome = Outcome.SKIP


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str


#: Features the OFREP provider can take part in: it evaluates, and does nothing else (no event
#: stream, no sync, no connection state, no cache).
OFREP_FEATURES = frozenset({"evaluation", "targeting", "disabled", "metadata"})


def served_without_variant(scenario: Scenario) -> bool:
    """The scenario expects the caller's default because the server resolved no variant: a
    DISABLED flag, or a flag without a default variant whose targeting did not match."""
    if scenario.feature == "disabled":
        return scenario.example.get("reason", "DISABLED") == "DISABLED"
    return "no-default-variant" in scenario.tags and scenario.example.get("reason") == "DEFAULT"


RULES: tuple[Rule, ...] = (
    Rule(
        lambda mode, s: s.feature == "config",
        "provider configuration (defaults, options, environment variables) is parsed inside "
        "the provider; no server is contacted",
    ),
    Rule(
        lambda mode, s: "deprecated" in s.tags,
        "deprecated by the testbed: it expects FLAG_NOT_FOUND where its replacement "
        "(@no-default-variant, which runs) expects reason DEFAULT",
    ),
    Rule(
        lambda mode, s: mode is Mode.OFREP and s.feature not in OFREP_FEATURES,
        "the OFREP provider only evaluates: it has no event stream, sync, connection state or "
        "cache, which is what this feature tests",
    ),
    Rule(
        # Scenarios tagged @file alone have the provider read a flag file itself.
        lambda mode, s: mode is not Mode.OFREP and mode.value not in s.tags,
        "the testbed does not tag this scenario for this resolver",
    ),
    Rule(
        lambda mode, s: "customCert" in s.tags,
        "`ramp flags serve` has no TLS option: it serves plaintext only, so there is no "
        "certificate for the provider to check",
    ),
    Rule(
        lambda mode, s: "unixsocket" in s.tags,
        "`ramp flags serve` listens on TCP only",
    ),
    Rule(
        lambda mode, s: "targetURI" in s.tags,
        "envoy:// name resolution happens in the client; openfeature-provider-flagd 0.6.1 has "
        "no targetUri option",
    ),
    Rule(
        lambda mode, s: "unavailable" in s.tags,
        "the provider is pointed at a port nobody listens on; no server is involved",
    ),
    Rule(
        lambda mode, s: (
            mode is Mode.IN_PROCESS and bool({"fractional-v1", "fractional-v2"} & s.tags)
        ),
        "in-process evaluation runs in openfeature-flagd-core 2.0.0, which buckets with "
        "fractional v3; Ramp only supplies the flags",
    ),
    Rule(
        lambda mode, s: mode is Mode.OFREP and served_without_variant(s),
        "openfeature-provider-ofrep 0.3.0 reads `variant` unconditionally (KeyError, so reason "
        "ERROR) although OFREP makes it optional; Ramp, like flagd, omits it when no variant "
        "was resolved",
        Outcome.EXPECTED_FAILURE,
    ),
)


def verdict(mode: Mode, scenario: Scenario) -> Verdict | None:
    """How `scenario` is treated in `mode`: `None` when it simply runs."""
    for rule in RULES:
        if rule.applies(mode, scenario):
            return Verdict(rule.outcome, rule.reason)
    return None
