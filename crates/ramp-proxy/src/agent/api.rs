//! The agent API's request and response bodies, shared by the server and the client.
//!
//! Every body is JSON with camelCase field names. Request bodies refuse unknown fields (a
//! newer control plane sending something an older agent does not understand gets a 400, not
//! a silently different router); response bodies ignore them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ramp_metrics::RevisionSnapshot;
use ramp_model::{Timeouts, is_token, parse_duration};
use ramp_route::TableSpec;
use serde::{Deserialize, Serialize};

use crate::router::InstanceStatus;
use crate::snapshot::ProxySettings;

/// Longest router name (names appear in URLs and metric labels).
pub const MAX_ROUTER_NAME_LEN: usize = 63;

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The agent's process id.
    pub pid: u32,
    /// Routers it hosts.
    pub routers: usize,
    /// The agent's version (`CARGO_PKG_VERSION` of ramp-proxy).
    #[serde(default)]
    pub version: String,
}

/// One router as `GET /v1/routers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterInfo {
    /// The listen address it was created with (port 0 stays 0 here).
    pub listen: SocketAddr,
    /// The generation of the last configuration applied.
    pub generation: u64,
    /// The address it actually listens on.
    pub local_addr: SocketAddr,
    /// Worker threads it was created with (0 = one per CPU).
    #[serde(default)]
    pub workers: usize,
    /// Whether its workers are pinned to CPUs.
    #[serde(default)]
    pub pin_workers: bool,
}

/// `GET /v1/routers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterList {
    /// Every router, by name.
    pub routers: BTreeMap<String, RouterInfo>,
}

/// `PUT /v1/routers/{name}`: the whole desired state of one router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutRouter {
    /// Where clients connect. Fixed for the router's life: a PUT naming another address for
    /// an existing router is refused with 409.
    pub listen: SocketAddr,
    /// Worker threads; 0 (the default) means one per CPU. Fixed for the router's life.
    #[serde(default)]
    pub workers: usize,
    /// Pin each worker thread to its own CPU (default off). Fixed for the router's life.
    #[serde(default)]
    pub pin_workers: bool,
    /// The sender's version of this configuration. A PUT older than the one applied is
    /// ignored, so a message delayed from before a restart never rolls routing back.
    #[serde(default)]
    pub generation: u64,
    /// The routing table, validated by `RouteTable::new`.
    pub table: TableSpec,
    /// Settings swapped in with the table.
    #[serde(default)]
    pub settings: SettingsSpec,
}

/// The answer to a PUT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutResult {
    /// The generation now in effect: the one sent, or the newer one kept when the PUT was
    /// stale.
    pub generation: u64,
    /// The address the router listens on.
    pub local_addr: SocketAddr,
    /// False when the PUT was older than the configuration in effect and was ignored.
    #[serde(default = "yes")]
    pub applied: bool,
    /// True when this PUT created the router.
    #[serde(default)]
    pub created: bool,
}

fn yes() -> bool {
    true
}

/// `GET /v1/routers/{name}`: what a router runs right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterState {
    /// The listen address it was created with.
    pub listen: SocketAddr,
    /// The address it actually listens on.
    pub local_addr: SocketAddr,
    /// Worker threads it was created with (0 = one per CPU).
    pub workers: usize,
    /// Whether its workers are pinned to CPUs.
    pub pin_workers: bool,
    /// The generation of the configuration in effect.
    pub generation: u64,
    /// The table in effect.
    pub table: TableSpec,
    /// The settings in effect.
    pub settings: SettingsSpec,
}

/// The router settings of a PUT (everything in `ProxySettings`).
///
/// `timeouts` is an object with the fields of `ProxyConfig`'s timeouts (`connect`,
/// `response`, `clientHeader`, `clientIdle`, `upstreamIdle`, `shutdownGrace`). Each is an
/// integer number of **milliseconds** or a string with units (`"30s"`, `"1m30s"`, `"250ms"`),
/// must be above 0, and takes its default when left out. Timeouts are always sent back as
/// milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsSpec {
    /// Response header naming the serving revision (a header name; stored lowercase), if any.
    #[serde(default)]
    pub revision_header: Option<String>,
    /// Timeouts.
    #[serde(default, with = "timeouts_json")]
    pub timeouts: Timeouts,
    /// Mirrored copies in flight per worker and revision (default 64).
    #[serde(default = "default_mirror_concurrency")]
    pub mirror_concurrency: usize,
    /// How long a request waits for a usable instance before a 503, in milliseconds (or a
    /// string with units); default 0 (answer at once).
    #[serde(default, with = "duration_json")]
    pub hold_unavailable: Duration,
}

fn default_mirror_concurrency() -> usize {
    ProxySettings::default().mirror_concurrency
}

impl Default for SettingsSpec {
    fn default() -> Self {
        SettingsSpec::from(ProxySettings::default())
    }
}

impl From<ProxySettings> for SettingsSpec {
    fn from(s: ProxySettings) -> Self {
        SettingsSpec {
            revision_header: s.revision_header,
            timeouts: s.timeouts,
            mirror_concurrency: s.mirror_concurrency,
            hold_unavailable: s.hold_unavailable,
        }
    }
}

impl SettingsSpec {
    /// Checks the settings and makes router settings of them.
    pub fn to_settings(&self) -> Result<ProxySettings, String> {
        let revision_header = match &self.revision_header {
            None => None,
            Some(name) if is_token(name) => Some(name.to_ascii_lowercase()),
            Some(name) => {
                return Err(format!(
                    "settings.revisionHeader {name:?} is not a valid header name"
                ));
            }
        };
        Ok(ProxySettings {
            revision_header,
            timeouts: self.timeouts,
            mirror_concurrency: self.mirror_concurrency,
            hold_unavailable: self.hold_unavailable,
        })
    }
}

/// `DELETE /v1/routers/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// Connections still open when the grace period ended.
    pub connections_cut: usize,
}

/// `POST /v1/routers/{name}/drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainRequest {
    /// The instance to take out of rotation.
    pub addr: SocketAddr,
    /// How long to wait for its in-flight requests, in milliseconds (default 30000).
    #[serde(default = "default_drain_ms")]
    pub deadline_ms: u64,
}

fn default_drain_ms() -> u64 {
    30_000
}

/// `POST /v1/routers/{name}/undrain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UndrainRequest {
    /// The instance to put back into rotation.
    pub addr: SocketAddr,
}

/// `GET /v1/routers/{name}/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterMetrics {
    /// Each revision of the table in effect, with its metrics since it joined the table.
    pub revisions: BTreeMap<String, RevisionSnapshot>,
    /// Every instance of the table with its live state, in table order.
    pub instances: Vec<InstanceStatus>,
}

/// `POST /v1/shutdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShuttingDown {
    /// Routers being shut down.
    pub routers: usize,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// Router names: 1 to [`MAX_ROUTER_NAME_LEN`] characters of `A-Z a-z 0-9 . _ -`.
pub fn valid_router_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROUTER_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A duration as a request body gives it: integer milliseconds, or a string with units.
#[derive(Deserialize)]
#[serde(untagged)]
enum In {
    Millis(u64),
    Text(String),
}

impl In {
    /// The duration meant; a bare `"0"` is zero (any other number needs a unit).
    fn duration(self) -> Result<Duration, String> {
        match self {
            In::Millis(ms) => Ok(Duration::from_millis(ms)),
            In::Text(text) if text.trim() == "0" => Ok(Duration::ZERO),
            In::Text(text) => parse_duration(&text),
        }
    }
}

/// [`Timeouts`] as JSON: milliseconds out, milliseconds or unit strings in.
mod timeouts_json {
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Out {
        connect: u64,
        response: u64,
        client_header: u64,
        client_idle: u64,
        upstream_idle: u64,
        shutdown_grace: u64,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct InDoc {
        connect: Option<In>,
        response: Option<In>,
        client_header: Option<In>,
        client_idle: Option<In>,
        upstream_idle: Option<In>,
        shutdown_grace: Option<In>,
    }

    fn millis(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn serialize<S: Serializer>(t: &Timeouts, s: S) -> Result<S::Ok, S::Error> {
        Out {
            connect: millis(t.connect),
            response: millis(t.response),
            client_header: millis(t.client_header),
            client_idle: millis(t.client_idle),
            upstream_idle: millis(t.upstream_idle),
            shutdown_grace: millis(t.shutdown_grace),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timeouts, D::Error> {
        let doc = Option::<InDoc>::deserialize(d)?;
        let defaults = Timeouts::default();
        let Some(doc) = doc else {
            return Ok(defaults);
        };
        let pick =
            |value: Option<In>, name: &str, default: Duration| -> Result<Duration, D::Error> {
                let Some(value) = value else {
                    return Ok(default);
                };
                let d = value
                    .duration()
                    .map_err(|e| D::Error::custom(format!("timeouts.{name}: {e}")))?;
                if d.is_zero() {
                    return Err(D::Error::custom(format!("timeouts.{name} must be above 0")));
                }
                Ok(d)
            };
        Ok(Timeouts {
            connect: pick(doc.connect, "connect", defaults.connect)?,
            response: pick(doc.response, "response", defaults.response)?,
            client_header: pick(doc.client_header, "clientHeader", defaults.client_header)?,
            client_idle: pick(doc.client_idle, "clientIdle", defaults.client_idle)?,
            upstream_idle: pick(doc.upstream_idle, "upstreamIdle", defaults.upstream_idle)?,
            shutdown_grace: pick(doc.shutdown_grace, "shutdownGrace", defaults.shutdown_grace)?,
        })
    }
}

/// A duration as integer milliseconds, read from milliseconds or a string with units; zero
/// allowed.
mod duration_json {
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        In::deserialize(d)?.duration().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instances::DrainOutcome;
    use serde_json::json;

    #[test]
    fn drain_outcomes_have_a_fixed_shape() {
        let drained = serde_json::to_value(DrainOutcome::Drained).unwrap();
        assert_eq!(drained, json!({"outcome": "drained"}));
        assert_eq!(
            serde_json::from_value::<DrainOutcome>(drained).unwrap(),
            DrainOutcome::Drained
        );
        let late = DrainOutcome::DeadlineExceeded { in_flight: 3 };
        let value = serde_json::to_value(late).unwrap();
        assert_eq!(value, json!({"outcome": "deadlineExceeded", "inFlight": 3}));
        assert_eq!(
            serde_json::from_value::<DrainOutcome>(value).unwrap(),
            DrainOutcome::DeadlineExceeded { in_flight: 3 }
        );
    }

    #[test]
    fn instances_have_a_fixed_shape() {
        let status = InstanceStatus {
            revision: "v2".into(),
            addr: "127.0.0.1:9001".parse().unwrap(),
            in_flight: 2,
            ejected: false,
            ejections: 1,
            draining: true,
        };
        let value = serde_json::to_value(&status).unwrap();
        assert_eq!(
            value,
            json!({"revision": "v2", "addr": "127.0.0.1:9001", "inFlight": 2,
                   "ejected": false, "ejections": 1, "draining": true})
        );
        assert_eq!(
            serde_json::from_value::<InstanceStatus>(value).unwrap(),
            status
        );
    }

    #[test]
    fn settings_default_and_accept_millis_or_units() {
        let s: SettingsSpec = serde_json::from_value(json!({})).unwrap();
        assert_eq!(s, SettingsSpec::default());
        assert_eq!(s.to_settings().unwrap(), ProxySettings::default());

        let s: SettingsSpec = serde_json::from_value(json!({
            "revisionHeader": "X-Ramp-Revision",
            "timeouts": {"connect": 500, "response": "1m30s", "shutdownGrace": "250ms"},
            "mirrorConcurrency": 8,
        }))
        .unwrap();
        let settings = s.to_settings().unwrap();
        assert_eq!(settings.revision_header.as_deref(), Some("x-ramp-revision"));
        assert_eq!(settings.timeouts.connect, Duration::from_millis(500));
        assert_eq!(settings.timeouts.response, Duration::from_secs(90));
        assert_eq!(settings.timeouts.shutdown_grace, Duration::from_millis(250));
        assert_eq!(
            settings.timeouts.client_idle,
            Timeouts::default().client_idle
        );
        assert_eq!(settings.mirror_concurrency, 8);

        let out = serde_json::to_value(&s).unwrap();
        assert_eq!(
            out["timeouts"],
            json!({"connect": 500, "response": 90000, "clientHeader": 10000,
                   "clientIdle": 60000, "upstreamIdle": 30000, "shutdownGrace": 250})
        );
        let back: SettingsSpec = serde_json::from_value(out).unwrap();
        assert_eq!(back, s);

        let null: SettingsSpec =
            serde_json::from_value(json!({"timeouts": null, "revisionHeader": null})).unwrap();
        assert_eq!(null, SettingsSpec::default());
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |v: serde_json::Value| serde_json::from_value::<SettingsSpec>(v).unwrap_err();
        assert!(
            err(json!({"timeouts": {"connect": 0}}))
                .to_string()
                .contains("timeouts.connect must be above 0")
        );
        assert!(
            err(json!({"timeouts": {"response": "5"}}))
                .to_string()
                .contains("timeouts.response")
        );
        assert!(
            err(json!({"timeouts": {"connectMs": 5}}))
                .to_string()
                .contains("unknown field")
        );
        assert!(
            err(json!({"header": "x"}))
                .to_string()
                .contains("unknown field")
        );
        let bad_header = SettingsSpec {
            revision_header: Some("x bad".into()),
            ..SettingsSpec::default()
        };
        assert!(
            bad_header
                .to_settings()
                .unwrap_err()
                .contains("revisionHeader")
        );
    }

    #[test]
    fn put_router_defaults() {
        let put: PutRouter = serde_json::from_value(json!({
            "listen": "127.0.0.1:8080",
            "table": {"revisions": [{"name": "v1", "weight": 1, "instances": ["127.0.0.1:9001"]}]},
        }))
        .unwrap();
        assert_eq!(put.workers, 0);
        assert!(!put.pin_workers);
        assert_eq!(put.generation, 0);
        assert_eq!(put.settings, SettingsSpec::default());
        let value = serde_json::to_value(&put).unwrap();
        assert_eq!(value["pinWorkers"], json!(false));
        assert_eq!(value["listen"], json!("127.0.0.1:8080"));
        assert_eq!(serde_json::from_value::<PutRouter>(value).unwrap(), put);
    }

    #[test]
    fn router_names() {
        for ok in ["web", "a", "my-svc.v2_x", &"x".repeat(63)] {
            assert!(valid_router_name(ok), "{ok}");
        }
        for bad in ["", "a/b", "a b", "é", &"x".repeat(64), "a?b"] {
            assert!(!valid_router_name(bad), "{bad}");
        }
    }
}
