"""Support code for the provider conformance suite: the testbed's data, a launchpad for
`ramp flags serve`, the provider of each mode and the rules that choose scenarios."""
