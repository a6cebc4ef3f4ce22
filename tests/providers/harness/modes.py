"""The three ways a client reaches Ramp, and the provider each one uses."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import grpc
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.provider import FeatureProvider

from .launchpad import DEFAULT_FRACTIONAL, RampServer
from .testbed import LaunchpadConfig


class Mode(enum.Enum):
    #: `FlagdProvider` resolving every evaluation over gRPC (flagd.evaluation.v2, EventStream).
    RPC = "rpc"
    #: `FlagdProvider` evaluating locally on flags synced over flagd.sync.v1.
    IN_PROCESS = "in-process"
    #: `OFREPProvider` over HTTP.
    OFREP = "ofrep"


@dataclass(frozen=True)
class ProviderSetup:
    """What `a <name> flagd provider` means: how the server is started and how the provider
    reaches it."""

    #: The launchpad configuration the server serves.
    config: str
    #: The token the server requires (`--token`), if any.
    server_token: str | None = None
    #: The token the provider presents, if any.
    client_token: str | None = None
    #: Whether the provider must be READY before the scenario goes on.
    awaits_ready: bool = True


#: The testbed's provider names. `forbidden` stands for a server that refuses the client: Ramp
#: requires a token and the provider presents another one, which Ramp answers with
#: PERMISSION_DENIED (the testbed puts an envoy answering 403 in front of flagd instead).
PROVIDER_SETUPS = {
    "stable": ProviderSetup("default"),
    "metadata": ProviderSetup("metadata"),
    "syncpayload": ProviderSetup("sync-payload"),
    "forbidden": ProviderSetup(
        "default",
        server_token="testbed-token",
        client_token="not-the-testbed-token",
        awaits_ready=False,
    ),
}

#: The testbed's tags for scenarios written against one `fractional` bucketing version, and the
#: `--fractional` value that version is served with.
FRACTIONAL_TAGS = {"fractional-v1": "v1", "fractional-v2": "v2", "fractional-v3": "v3"}


def server_fractional(mode: Mode, tags: frozenset[str]) -> str:
    """The bucketing the server must evaluate `fractional` with for a scenario tagged `tags`.

    In-process providers evaluate themselves (the server only syncs flags), so there the
    server keeps the default and is not restarted for it.
    """
    if mode is Mode.IN_PROCESS:
        return DEFAULT_FRACTIONAL
    versions = {version for tag, version in FRACTIONAL_TAGS.items() if tag in tags}
    if len(versions) > 1:
        raise ValueError(f"a scenario tagged for several fractional versions: {sorted(versions)}")
    return versions.pop() if versions else DEFAULT_FRACTIONAL


#: Timings the testbed's own Python runs use: one-second backoff, a two-second grace period
#: before STALE turns into ERROR, and no deadline on the long-lived streams.
FLAGD_TIMINGS: dict[str, Any] = {
    "deadline_ms": 1000,
    "stream_deadline_ms": 0,
    "retry_backoff_ms": 1000,
    "retry_backoff_max_ms": 1000,
    "retry_grace_period": 2,
}

#: OFREP requests time out like the flagd provider's unary calls.
OFREP_TIMEOUT_S = 1.0


def bearer_credentials(token: str) -> grpc.ChannelCredentials:
    """Sends `authorization: Bearer <token>` on every call over a plaintext local connection
    (gRPC only attaches call credentials to channels it considers secure; local ones count)."""
    return grpc.composite_channel_credentials(
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
        grpc.access_token_call_credentials(token),
    )


def flagd_provider(
    mode: Mode,
    server: RampServer,
    setup: ProviderSetup,
    config: LaunchpadConfig,
    options: dict[str, Any],
) -> FeatureProvider:
    """A `FlagdProvider` for `mode` pointed at `server`; `options` are the scenario's
    `an option ...` steps as keyword arguments, applied last."""
    if mode is Mode.RPC:
        resolver, port = ResolverType.RPC, server.ports.grpc
    else:
        resolver, port = ResolverType.IN_PROCESS, server.ports.sync
    arguments: dict[str, Any] = {
        **FLAGD_TIMINGS,
        "resolver_type": resolver,
        "host": "127.0.0.1",
        "port": port,
    }
    if setup.client_token is not None:
        arguments["channel_credentials"] = bearer_credentials(setup.client_token)
    if mode is Mode.IN_PROCESS and config.sync_metadata_disabled:
        # The configuration exists to prove the static context arrives with the sync payload
        # itself, so the deprecated side channel is not asked.
        arguments["sync_metadata_disabled"] = True
    arguments.update(options)
    return FlagdProvider(**arguments)


def ofrep_provider(server: RampServer, options: dict[str, Any]) -> FeatureProvider:
    """An `OFREPProvider` pointed at `server`; a `selector` option becomes the
    `Flagd-Selector` header, the way flagd's OFREP selects a flag set or source."""
    selector = options.get("selector")
    headers = {"Flagd-Selector": selector} if selector else {}
    timeout = options.get("deadline_ms", OFREP_TIMEOUT_S * 1000) / 1000
    return OFREPProvider(server.ofrep_url, headers_factory=lambda: dict(headers), timeout=timeout)


def provider_for(
    mode: Mode,
    server: RampServer,
    setup: ProviderSetup,
    config: LaunchpadConfig,
    options: dict[str, Any],
) -> FeatureProvider:
    if mode is Mode.OFREP:
        return ofrep_provider(server, options)
    return flagd_provider(mode, server, setup, config, options)
