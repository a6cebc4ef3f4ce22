"""Every testbed scenario through the OFREP provider."""

import pytest
from pytest_bdd import scenarios

from harness.modes import Mode
from harness.testbed import features_dir

MODE = Mode.OFREP


@pytest.fixture
def mode() -> Mode:
    return MODE


scenarios(str(features_dir()))
