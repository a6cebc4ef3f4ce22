//! The routing table: revisions, rules, mirrors and stickiness, validated once.
//!
//! A [`TableSpec`] is serializable (camelCase field names, unknown fields refused), e.g.:
//!
//! ```json
//! {"revisions": [{"name": "v1", "weight": 90, "instances": ["127.0.0.1:9001"]},
//!                {"name": "v2", "weight": 10, "instances": ["127.0.0.1:9002"]}],
//!  "rules": [{"conditions": [{"header": "x-canary", "value": {"present": true}}],
//!             "revision": "v2"}],
//!  "mirrors": [{"revision": "v2", "percent": 5.0, "conditions": []}],
//!  "sticky": {"cookie": "user"}}
//! ```
//!
//! `rules`, `mirrors`, `sticky`, a revision's `instances` and a mirror's `conditions` may be
//! left out. Deserializing does not validate; [`RouteTable::new`] does.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::hash::key_hash;
use crate::matcher::{Condition, Source};
use crate::split::{Share, WeightedSplit};

/// Longest accepted revision name: names end up in metric labels and response headers.
pub const MAX_NAME_LEN: usize = 63;

/// A revision as declared: a name, a weight and the instances that serve it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevisionSpec {
    /// Unique name (`[A-Za-z0-9._-]`, at most [`MAX_NAME_LEN`] bytes).
    pub name: String,
    /// Relative share of unpinned traffic.
    pub weight: u32,
    /// Addresses of the instances.
    #[serde(default)]
    pub instances: Vec<SocketAddr>,
}

/// Requests matching every condition go to `revision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// Conditions that must all hold (at least one).
    pub conditions: Vec<Condition>,
    /// Name of the revision that serves matching requests.
    pub revision: String,
}

/// A share of matching requests is copied to `revision`; the copy's response is discarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MirrorSpec {
    /// Name of the revision that receives the copies.
    pub revision: String,
    /// Share of matching requests to copy, in (0, 100].
    pub percent: f64,
    /// Conditions that must all hold (none = every request).
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// Everything a table is built from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableSpec {
    /// Revisions in declaration order.
    pub revisions: Vec<RevisionSpec>,
    /// Header/cookie rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Mirrors, first matching one that samples the request wins.
    #[serde(default)]
    pub mirrors: Vec<MirrorSpec>,
    /// Where the sticky user key is read from, if stickiness is on.
    #[serde(default)]
    pub sticky: Option<Source>,
}

/// Why a table spec was refused; indices point into the spec's lists.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    /// There are no revisions at all.
    #[error("at least one revision is required")]
    NoRevisions,
    /// A revision name is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("revision name {name:?} must be 1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ -")]
    InvalidName { revision: usize, name: String },
    /// Two revisions share a name.
    #[error("revision name {name:?} is used twice")]
    DuplicateName { revision: usize, name: String },
    /// No revision has a positive weight, so unpinned requests have nowhere to go.
    #[error("at least one revision needs a weight above 0")]
    NoWeight,
    /// A revision that can receive traffic has no instance.
    #[error("revision {name:?} receives traffic but has no instances")]
    NoInstances { revision: usize, name: String },
    /// A revision lists the same instance twice.
    #[error("instance {addr} is listed twice in revision {name:?}")]
    DuplicateInstance {
        revision: usize,
        name: String,
        addr: SocketAddr,
    },
    /// A rule names a revision that does not exist.
    #[error("rule sends to unknown revision {name:?}")]
    UnknownRuleRevision { rule: usize, name: String },
    /// A rule without conditions would shadow the weighted split.
    #[error("a rule needs at least one condition")]
    EmptyRule { rule: usize },
    /// A mirror names a revision that does not exist.
    #[error("mirror sends to unknown revision {name:?}")]
    UnknownMirrorRevision { mirror: usize, name: String },
    /// A mirror percentage outside (0, 100].
    #[error("mirror percent must be above 0 and at most 100, got {percent}")]
    MirrorPercent { mirror: usize, percent: f64 },
}

/// An immutable, validated routing table. The router swaps whole tables; it never edits one.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    spec: TableSpec,
    /// Revision index of each rule, parallel to `spec.rules`.
    rule_targets: Vec<usize>,
    /// Revision index and sample threshold of each mirror, parallel to `spec.mirrors`.
    /// A request is copied when its 64-bit random word is below the threshold.
    mirror_targets: Vec<(usize, u128)>,
    split: WeightedSplit,
}

impl RouteTable {
    /// Validates a spec and precomputes everything a routing decision needs.
    pub fn new(spec: TableSpec) -> Result<Self, TableError> {
        if spec.revisions.is_empty() {
            return Err(TableError::NoRevisions);
        }
        validate_revisions(&spec.revisions)?;
        let index_of = |name: &str| spec.revisions.iter().position(|r| r.name == name);

        let mut rule_targets = Vec::with_capacity(spec.rules.len());
        for (i, rule) in spec.rules.iter().enumerate() {
            if rule.conditions.is_empty() {
                return Err(TableError::EmptyRule { rule: i });
            }
            let revision =
                index_of(&rule.revision).ok_or_else(|| TableError::UnknownRuleRevision {
                    rule: i,
                    name: rule.revision.clone(),
                })?;
            rule_targets.push(revision);
        }

        let mut mirror_targets = Vec::with_capacity(spec.mirrors.len());
        for (i, mirror) in spec.mirrors.iter().enumerate() {
            let revision =
                index_of(&mirror.revision).ok_or_else(|| TableError::UnknownMirrorRevision {
                    mirror: i,
                    name: mirror.revision.clone(),
                })?;
            if !(mirror.percent > 0.0 && mirror.percent <= 100.0) {
                return Err(TableError::MirrorPercent {
                    mirror: i,
                    percent: mirror.percent,
                });
            }
            mirror_targets.push((revision, (mirror.percent / 100.0 * 2f64.powi(64)) as u128));
        }

        let shares: Vec<Share> = spec
            .revisions
            .iter()
            .enumerate()
            .map(|(i, r)| Share {
                revision: i,
                weight: r.weight,
                salt: key_hash(r.name.as_bytes()),
            })
            .collect();
        let split = WeightedSplit::new(&shares).ok_or(TableError::NoWeight)?;

        let receives_traffic = |i: usize| {
            spec.revisions[i].weight > 0
                || rule_targets.contains(&i)
                || mirror_targets.iter().any(|&(m, _)| m == i)
        };
        if let Some((i, r)) = spec
            .revisions
            .iter()
            .enumerate()
            .find(|(i, r)| r.instances.is_empty() && receives_traffic(*i))
        {
            return Err(TableError::NoInstances {
                revision: i,
                name: r.name.clone(),
            });
        }

        Ok(RouteTable {
            spec,
            rule_targets,
            mirror_targets,
            split,
        })
    }

    /// The revisions, indexed by the ids that decisions return.
    pub fn revisions(&self) -> &[RevisionSpec] {
        &self.spec.revisions
    }

    /// The spec this table was built from (to show it, or to derive the next table from it).
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The split's total weight (for showing percentages).
    pub fn total_weight(&self) -> u64 {
        self.split.total_weight()
    }

    /// Where the sticky key comes from, if stickiness is on.
    pub fn sticky_source(&self) -> Option<&Source> {
        self.spec.sticky.as_ref()
    }

    pub(crate) fn rules(&self) -> impl Iterator<Item = (&[Condition], usize)> {
        let conditions = self.spec.rules.iter().map(|r| r.conditions.as_slice());
        conditions.zip(self.rule_targets.iter().copied())
    }

    pub(crate) fn mirrors(&self) -> impl Iterator<Item = (&[Condition], usize, u128)> {
        let conditions = self.spec.mirrors.iter().map(|m| m.conditions.as_slice());
        conditions
            .zip(&self.mirror_targets)
            .map(|(c, &(revision, threshold))| (c, revision, threshold))
    }

    pub(crate) fn split(&self) -> &WeightedSplit {
        &self.split
    }
}

fn validate_revisions(revisions: &[RevisionSpec]) -> Result<(), TableError> {
    for (i, r) in revisions.iter().enumerate() {
        let valid_name = !r.name.is_empty()
            && r.name.len() <= MAX_NAME_LEN
            && r.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_name {
            return Err(TableError::InvalidName {
                revision: i,
                name: r.name.clone(),
            });
        }
        if revisions[..i].iter().any(|earlier| earlier.name == r.name) {
            return Err(TableError::DuplicateName {
                revision: i,
                name: r.name.clone(),
            });
        }
        for (j, addr) in r.instances.iter().enumerate() {
            if r.instances[..j].contains(addr) {
                return Err(TableError::DuplicateInstance {
                    revision: i,
                    name: r.name.clone(),
                    addr: *addr,
                });
            }
        }
    }
    Ok(())
}
