"""Every testbed scenario through FlagdProvider's in-process resolver (flagd.sync.v1)."""

import pytest
from pytest_bdd import scenarios

from harness.modes import Mode
from harness.testbed import features_dir

MODE = Mode.IN_PROCESS


@pytest.fixture
def mode() -> Mode:
    return MODE


scenarios(str(features_dir()))
