"""Every testbed scenario through FlagdProvider's RPC resolver (flagd.evaluation.v2)."""

import pytest
from pytest_bdd import scenarios

from harness.modes import Mode
from harness.testbed import features_dir

MODE = Mode.RPC


@pytest.fixture
def mode() -> Mode:
    return MODE


scenarios(str(features_dir()))
