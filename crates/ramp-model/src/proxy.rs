//! The standalone router's configuration file (`ramp proxy --config FILE`).
//!
//! ```yaml
//! listen: 127.0.0.1:8080
//! revisions:
//!   - name: v1
//!     weight: 95
//!     instances: ["127.0.0.1:9001", "127.0.0.1:9002"]
//!   - name: v2
//!     weight: 5
//!     instances: ["127.0.0.1:9003"]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use ramp_route::{
    Condition, MirrorSpec, RevisionSpec, RouteTable, RuleSpec, Source, TableError, TableSpec,
    ValueMatch,
};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::duration::parse_duration;
use crate::error::{ModelError, Problem, Problems};
use crate::syntax::{is_token, parse_socket_addr};

/// A validated router configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Worker threads; `None` means one per CPU.
    pub workers: Option<usize>,
    /// Run each worker thread on its own CPU (default on).
    pub pin_workers: bool,
    /// Where `/metrics`, `/healthz` and `/routes` are served, if anywhere.
    pub admin: Option<SocketAddr>,
    /// Response header naming the revision that served the request, lowercase.
    pub revision_header: Option<String>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// The routing table.
    pub table: RouteTable,
}

/// Router timeouts; each has a default that suits a service behind a load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect to an instance.
    pub connect: Duration,
    /// From sending a request until the instance starts its response.
    pub response: Duration,
    /// How long a client may take to send a request head.
    pub client_header: Duration,
    /// Idle keep-alive client connections are closed after this.
    pub client_idle: Duration,
    /// Idle pooled connections to instances are closed after this.
    pub upstream_idle: Duration,
    /// On shutdown, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(60),
            client_header: Duration::from_secs(10),
            client_idle: Duration::from_secs(60),
            upstream_idle: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl ProxyConfig {
    /// Parses and validates a configuration document.
    pub fn from_yaml(text: &str) -> Result<Self, ModelError> {
        let doc: ProxyDoc =
            serde_saphyr::from_str(text).map_err(|e| ModelError::from_parser(&e, text))?;
        doc.validate()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProxyDoc {
    listen: Spanned<String>,
    workers: Option<Spanned<usize>>,
    pin_workers: Option<bool>,
    admin: Option<Spanned<String>>,
    revision_header: Option<Spanned<String>>,
    timeouts: Option<TimeoutsDoc>,
    stickiness: Option<Spanned<StickinessDoc>>,
    revisions: Spanned<Vec<RevisionDoc>>,
    #[serde(default)]
    rules: Vec<RuleDoc>,
    #[serde(default)]
    mirrors: Vec<MirrorDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TimeoutsDoc {
    connect: Option<Spanned<String>>,
    response: Option<Spanned<String>>,
    client_header: Option<Spanned<String>>,
    client_idle: Option<Spanned<String>>,
    upstream_idle: Option<Spanned<String>>,
    shutdown_grace: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StickinessDoc {
    header: Option<Spanned<String>>,
    cookie: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevisionDoc {
    name: Spanned<String>,
    weight: Spanned<u32>,
    #[serde(default)]
    instances: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    #[serde(rename = "match")]
    conditions: Spanned<Vec<Spanned<ConditionDoc>>>,
    revision: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MirrorDoc {
    revision: Spanned<String>,
    percent: Spanned<f64>,
    #[serde(default, rename = "match")]
    conditions: Vec<Spanned<ConditionDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionDoc {
    header: Option<String>,
    cookie: Option<String>,
    exact: Option<String>,
    prefix: Option<String>,
    regex: Option<Spanned<String>>,
}

impl ProxyDoc {
    fn validate(self) -> Result<ProxyConfig, ModelError> {
        let mut problems = Problems::default();
        let listen = socket_addr(&self.listen, "listen", &mut problems);
        let admin = self
            .admin
            .as_ref()
            .and_then(|a| socket_addr(a, "admin", &mut problems));
        if let Some(workers) = &self.workers
            && !(1..=256).contains(&workers.value)
        {
            problems.push("workers", &workers.referenced, "must be between 1 and 256");
        }
        let revision_header = self.revision_header.as_ref().and_then(|h| {
            let valid = is_token(&h.value);
            if !valid {
                problems.push(
                    "revisionHeader",
                    &h.referenced,
                    "must be a valid header name",
                );
            }
            valid.then(|| h.value.to_ascii_lowercase())
        });
        let timeouts = self
            .timeouts
            .as_ref()
            .map(|t| t.validate(&mut problems))
            .unwrap_or_default();
        let sticky = self
            .stickiness
            .as_ref()
            .and_then(|s| stickiness(s, &mut problems));

        let revisions: Vec<RevisionSpec> = (self.revisions.value.iter().enumerate())
            .map(|(i, r)| r.validate(&format!("revisions[{i}]"), &mut problems))
            .collect();
        let rules: Vec<RuleSpec> = (self.rules.iter().enumerate())
            .map(|(i, r)| RuleSpec {
                conditions: conditions(
                    &r.conditions.value,
                    &format!("rules[{i}].match"),
                    &mut problems,
                ),
                revision: r.revision.value.clone(),
            })
            .collect();
        let mirrors: Vec<MirrorSpec> = (self.mirrors.iter().enumerate())
            .map(|(i, m)| MirrorSpec {
                revision: m.revision.value.clone(),
                percent: m.percent.value,
                conditions: conditions(
                    &m.conditions,
                    &format!("mirrors[{i}].match"),
                    &mut problems,
                ),
            })
            .collect();
        problems.into_result()?;

        let table = RouteTable::new(TableSpec {
            revisions,
            rules,
            mirrors,
            sticky,
        })
        .map_err(|e| {
            let (path, at) = self.locate(&e);
            ModelError::Invalid(vec![Problem::at(path, at, e.to_string())])
        })?;
        Ok(ProxyConfig {
            listen: listen.expect("an invalid listen address is a problem found above"),
            workers: self.workers.map(|w| w.value),
            pin_workers: self.pin_workers.unwrap_or(true),
            admin,
            revision_header,
            timeouts,
            table,
        })
    }

    /// The field a table error is about, and where it is in the text.
    fn locate<'a>(&'a self, err: &TableError) -> (String, &'a Location) {
        let revisions = &self.revisions.value;
        match err {
            TableError::NoRevisions | TableError::NoWeight => {
                ("revisions".into(), &self.revisions.referenced)
            }
            TableError::InvalidName { revision, .. }
            | TableError::DuplicateName { revision, .. } => (
                format!("revisions[{revision}].name"),
                &revisions[*revision].name.referenced,
            ),
            TableError::NoInstances { revision, .. } => (
                format!("revisions[{revision}].instances"),
                &revisions[*revision].name.referenced,
            ),
            TableError::DuplicateInstance { revision, addr, .. } => {
                let r = &revisions[*revision];
                let position = r
                    .instances
                    .iter()
                    .rposition(|i| parse_socket_addr(&i.value) == Some(*addr))
                    .unwrap_or(0);
                let at = r
                    .instances
                    .get(position)
                    .map_or(&r.name.referenced, |i| &i.referenced);
                (format!("revisions[{revision}].instances[{position}]"), at)
            }
            TableError::UnknownRuleRevision { rule, .. } => (
                format!("rules[{rule}].revision"),
                &self.rules[*rule].revision.referenced,
            ),
            TableError::EmptyRule { rule } => (
                format!("rules[{rule}].match"),
                &self.rules[*rule].conditions.referenced,
            ),
            TableError::UnknownMirrorRevision { mirror, .. } => (
                format!("mirrors[{mirror}].revision"),
                &self.mirrors[*mirror].revision.referenced,
            ),
            TableError::MirrorPercent { mirror, .. } => (
                format!("mirrors[{mirror}].percent"),
                &self.mirrors[*mirror].percent.referenced,
            ),
        }
    }
}

impl TimeoutsDoc {
    fn validate(&self, problems: &mut Problems) -> Timeouts {
        let defaults = Timeouts::default();
        let mut pick = |field: &Option<Spanned<String>>, name: &str, default: Duration| match field
        {
            None => default,
            Some(text) => match parse_duration(&text.value) {
                Ok(d) if d.is_zero() => {
                    problems.push(
                        format!("timeouts.{name}"),
                        &text.referenced,
                        "must be above 0",
                    );
                    default
                }
                Ok(d) => d,
                Err(message) => {
                    problems.push(format!("timeouts.{name}"), &text.referenced, message);
                    default
                }
            },
        };
        Timeouts {
            connect: pick(&self.connect, "connect", defaults.connect),
            response: pick(&self.response, "response", defaults.response),
            client_header: pick(&self.client_header, "clientHeader", defaults.client_header),
            client_idle: pick(&self.client_idle, "clientIdle", defaults.client_idle),
            upstream_idle: pick(&self.upstream_idle, "upstreamIdle", defaults.upstream_idle),
            shutdown_grace: pick(
                &self.shutdown_grace,
                "shutdownGrace",
                defaults.shutdown_grace,
            ),
        }
    }
}

fn stickiness(doc: &Spanned<StickinessDoc>, problems: &mut Problems) -> Option<Source> {
    match (&doc.value.header, &doc.value.cookie) {
        (Some(h), None) if is_token(&h.value) => Some(Source::header(&h.value)),
        (Some(h), None) => {
            problems.push(
                "stickiness.header",
                &h.referenced,
                "must be a valid header name",
            );
            None
        }
        (None, Some(c)) if is_token(&c.value) => Some(Source::cookie(&c.value)),
        (None, Some(c)) => {
            problems.push(
                "stickiness.cookie",
                &c.referenced,
                "must be a valid cookie name",
            );
            None
        }
        _ => {
            problems.push(
                "stickiness",
                &doc.referenced,
                "set exactly one of header or cookie",
            );
            None
        }
    }
}

impl RevisionDoc {
    fn validate(&self, path: &str, problems: &mut Problems) -> RevisionSpec {
        let instances = (self.instances.iter().enumerate())
            .filter_map(|(j, text)| socket_addr(text, &format!("{path}.instances[{j}]"), problems))
            .collect();
        RevisionSpec {
            name: self.name.value.clone(),
            weight: self.weight.value,
            instances,
        }
    }
}

fn conditions(
    docs: &[Spanned<ConditionDoc>],
    path: &str,
    problems: &mut Problems,
) -> Vec<Condition> {
    (docs.iter().enumerate())
        .filter_map(|(i, doc)| condition(doc, &format!("{path}[{i}]"), problems))
        .collect()
}

fn condition(
    spanned: &Spanned<ConditionDoc>,
    path: &str,
    problems: &mut Problems,
) -> Option<Condition> {
    let doc = &spanned.value;
    let source = match (&doc.header, &doc.cookie) {
        (Some(h), None) if is_token(h) => Source::header(h),
        (None, Some(c)) if is_token(c) => Source::cookie(c),
        (Some(_), None) | (None, Some(_)) => {
            problems.push(
                path,
                &spanned.referenced,
                "header or cookie name has invalid characters",
            );
            return None;
        }
        _ => {
            problems.push(
                path,
                &spanned.referenced,
                "set exactly one of header or cookie",
            );
            return None;
        }
    };
    let value = match (&doc.exact, &doc.prefix, &doc.regex) {
        (None, None, None) => ValueMatch::Present,
        (Some(exact), None, None) => ValueMatch::Exact(exact.clone()),
        (None, Some(prefix), None) => ValueMatch::Prefix(prefix.clone()),
        (None, None, Some(regex)) => match ValueMatch::regex(&regex.value) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{path}.regex"), &regex.referenced, e.to_string());
                return None;
            }
        },
        _ => {
            problems.push(
                path,
                &spanned.referenced,
                "set at most one of exact, prefix or regex",
            );
            return None;
        }
    };
    Some(Condition { source, value })
}

pub(crate) fn socket_addr(
    text: &Spanned<String>,
    path: &str,
    problems: &mut Problems,
) -> Option<SocketAddr> {
    let addr = parse_socket_addr(&text.value);
    if addr.is_none() {
        problems.push(
            path,
            &text.referenced,
            format!(
                "{:?} is not an address; use host:port with an IP or localhost",
                text.value
            ),
        );
    }
    addr
}

#[cfg(test)]
mod tests;
