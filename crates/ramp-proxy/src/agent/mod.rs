//! The router agent: a long-lived process hosting routers by name, driven by the control plane
//! over a Unix socket, so that routing keeps serving while the control plane is down (even
//! after `kill -9`).
//!
//! [`serve_agent`] runs the server; [`AgentClient`] talks to it. The API is HTTP/1.1 with JSON
//! bodies (camelCase fields); every error answer is `{"error": "..."}` with status 400 (bad
//! request or table), 404 (no such router, endpoint or instance), 405, 409 (conflict: listen
//! address in use or changed, router being deleted), 413, 500 or 503 (shutting down).
//!
//! | Call | Body | Answer |
//! |------|------|--------|
//! | `GET /v1/health` | | [`Health`] `{"pid", "routers", "version"}` |
//! | `GET /v1/routers` | | [`RouterList`] `{"routers": {NAME: {"listen", "generation", "localAddr", "workers", "pinWorkers"}}}` |
//! | `PUT /v1/routers/{name}` | [`PutRouter`] | [`PutResult`] `{"generation", "localAddr", "applied", "created"}` |
//! | `GET /v1/routers/{name}` | | [`RouterState`]: the PUT in effect plus `localAddr` |
//! | `DELETE /v1/routers/{name}?graceMs=N` | | [`Deleted`] `{"connectionsCut"}` |
//! | `POST /v1/routers/{name}/drain` | [`DrainRequest`] `{"addr", "deadlineMs"}` | [`DrainOutcome`](crate::DrainOutcome) `{"outcome": "drained"}` or `{"outcome": "deadlineExceeded", "inFlight"}` |
//! | `POST /v1/routers/{name}/undrain` | [`UndrainRequest`] `{"addr"}` | `{}` |
//! | `GET /v1/routers/{name}/metrics` | | [`RouterMetrics`] `{"revisions": {REV: RevisionSnapshot}, "instances": [InstanceStatus]}` |
//! | `GET /metrics` | | Prometheus text of every router, labelled `service="NAME"` ([`render_prometheus_many`]) |
//! | `POST /v1/shutdown?graceMs=N` | | [`ShuttingDown`] `{"routers"}`, then every router shuts down and `serve_agent` returns |
//!
//! A PUT creates the router (binding its listen address; failing to bind is a 409 carrying the
//! OS error) or, for an existing router with the same `listen`, `workers` and `pinWorkers`,
//! swaps its table and settings in one step. A table that `RouteTable::new` refuses is a 400
//! and changes nothing. A PUT whose `generation` is lower than the one in effect is ignored
//! (200, `"applied": false`, the generation in effect); an equal generation is applied again.
//! Timeouts in `settings.timeouts` are milliseconds, or strings with units such as `"30s"`
//! (see [`SettingsSpec`]). Router names are 1-63 characters of `A-Z a-z 0-9 . _ -`.

mod api;
mod client;
mod prometheus;
mod server;

pub use api::{
    Deleted, DrainRequest, ErrorBody, Health, MAX_ROUTER_NAME_LEN, PutResult, PutRouter,
    RouterInfo, RouterList, RouterMetrics, RouterState, SettingsSpec, ShuttingDown, UndrainRequest,
    valid_router_name,
};
pub use client::{AgentClient, AgentError, CALL_TIMEOUT};
pub use prometheus::render_prometheus_many;
pub use server::serve_agent;
