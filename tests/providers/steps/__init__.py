"""Step definitions for the flagd testbed's Gherkin, loaded as pytest plugins by conftest.py."""
