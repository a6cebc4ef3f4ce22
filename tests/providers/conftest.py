"""Runs the flagd testbed's provider scenarios against `ramp flags serve`.

Each `test_<mode>.py` module collects every testbed feature for one mode; the collection hook
below skips, with the reason from `harness.applicability`, each scenario that does not concern
Ramp in that mode. The server binary comes from `RAMP_BIN` (`run` sets it).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from pytest_bdd.scenario import scenario_wrapper_template_registry

from harness.applicability import Outcome, Scenario, verdict
from harness.launchpad import RampServer
from harness.modes import server_fractional
from harness.testbed import features_dir
from harness.world import World

pytest_plugins = (
    "steps.provider_steps",
    "steps.context_steps",
    "steps.flag_steps",
    "steps.event_steps",
)

RAMP_SERVER_KEY = pytest.StashKey[RampServer]()


def pytest_configure(config: pytest.Config) -> None:
    """Checks `RAMP_BIN` up front and registers the feature files' tags, which pytest-bdd
    turns into markers."""
    binary = os.environ.get("RAMP_BIN")
    if not binary or not Path(binary).is_file():
        raise pytest.UsageError(f"RAMP_BIN must name the ramp binary (got {binary!r})")
    tags: set[str] = set()
    for feature in features_dir().glob("*.feature"):
        for line in feature.read_text().splitlines():
            if line.strip().startswith("@"):
                tags.update(re.findall(r"@([^\s@]+)", line))
    for tag in sorted(tags):
        config.addinivalue_line("markers", f"{tag}: testbed tag")


def scenario_of(item: pytest.Item) -> Scenario | None:
    template = scenario_wrapper_template_registry.get(getattr(item, "function", None))
    if template is None:
        return None
    callspec = getattr(item, "callspec", None)
    example = callspec.params.get("_pytest_bdd_example", {}) if callspec else {}
    return Scenario(
        feature=Path(template.feature.filename).stem,
        name=template.name,
        tags=frozenset(marker.name for marker in item.iter_markers()),
        example=dict(example),
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        scenario = scenario_of(item)
        mode = getattr(item.module, "MODE", None)
        if scenario is None or mode is None:
            continue
        judged = verdict(mode, scenario)
        if judged is None:
            continue
        if judged.outcome is Outcome.SKIP:
            item.add_marker(pytest.mark.skip(reason=judged.reason))
        else:
            item.add_marker(pytest.mark.xfail(reason=judged.reason, strict=True))


@pytest.fixture(scope="session")
def ramp_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RampServer]:
    server = RampServer(Path(os.environ["RAMP_BIN"]), tmp_path_factory.mktemp("ramp"))
    request.config.stash[RAMP_SERVER_KEY] = server
    yield server
    server.shutdown()


@pytest.fixture
def world(mode, ramp_server: RampServer, request: pytest.FixtureRequest) -> Iterator[World]:
    tags = frozenset(marker.name for marker in request.node.iter_markers())
    world = World(
        mode=mode,
        server=ramp_server,
        domain=request.node.nodeid,
        fractional=server_fractional(mode, tags),
    )
    yield world
    api.clear_providers()
    ramp_server.settle()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    server = item.config.stash.get(RAMP_SERVER_KEY, None)
    if report.failed and server is not None:
        report.sections.append(("ramp flags serve (log tail)", server.log_tail()))
    return report


#: Outcomes in the order the summary prints them.
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """A table of outcomes per mode (test module), then the skip and xfail reasons per mode."""
    counts: dict[str, Counter[str]] = {}
    reasons: Counter[tuple[str, str]] = Counter()
    for outcome in OUTCOMES:
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if "::" not in nodeid:
                continue
            mode = (
                nodeid.split("::", 1)[0].removeprefix("test_").removesuffix(".py").replace("_", "-")
            )
            counts.setdefault(mode, Counter())[outcome] += 1
            if outcome in ("skipped", "xfailed"):
                reasons[(mode, f"{outcome}: {outcome_reason(report)}")] += 1
    if not counts:
        return
    write = terminalreporter.write_line
    terminalreporter.section("scenarios per mode")
    write(f"{'mode':<12}" + "".join(f"{outcome:>9}" for outcome in OUTCOMES))
    for mode in sorted(counts):
        write(f"{mode:<12}" + "".join(f"{counts[mode][o]:>9}" for o in OUTCOMES))
    for (mode, reason), count in sorted(reasons.items()):
        write(f"{mode:<12}{count:>4} {reason}")


def outcome_reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return report.wasxfail
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return longrepr[2].removeprefix("Skipped: ")
    return str(longrepr)
