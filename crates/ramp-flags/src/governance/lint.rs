//! `ramp flags lint`: lifecycle rules over flag metadata, so that temporary flags have an owner
//! and a removal date, and flags past their use are found before they rot in the code.
//!
//! Rules and severities (ids are stable; CI scripts may match on them):
//!
//! | id                  | severity | when                                                       |
//! |---------------------|----------|------------------------------------------------------------|
//! | `invalid-owner`     | error    | `owner` is not a non-empty string                          |
//! | `invalid-type`      | error    | `type` is not release, experiment, ops or permission       |
//! | `invalid-expiry`    | error    | `expires` is not `YYYY-MM-DD` or an RFC 3339 date-time     |
//! | `expired`           | error    | the removal date has passed (not for permission flags)     |
//! | `missing-owner`     | warning  | a release or experiment flag has no `owner`                |
//! | `missing-expiry`    | warning  | a release or experiment flag has no `expires`              |
//! | `finished-release`  | warning  | a release flag has served one variant to everyone too long |
//! | `permission-expiry` | warning  | a permission flag carries `expires`                        |
//!
//! A lint run fails on any error, and with `strict` on any warning too.

use serde::Serialize;
use serde_json::{Map, Value};

use super::date::Date;
use super::metadata::{self, EXPIRES_KEY, Field, FlagType, OWNER_KEY, TYPE_KEY};
use super::single_variant::single_variant;
use crate::model::{Flag, FlagFile, JsonPath};

/// How long a release flag may serve one variant to everyone before it is reported finished.
pub const DEFAULT_FINISHED_AFTER_DAYS: u32 = 30;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth fixing; fails a run only in strict mode.
    Warning,
    /// Always fails a run.
    Error,
}

impl Severity {
    /// `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One lint rule; [`LintRule::id`] is its stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LintRule {
    /// `owner` present but not a non-empty string.
    InvalidOwner,
    /// `type` present but not one of the four types.
    InvalidType,
    /// `expires` present but not a date.
    InvalidExpiry,
    /// The removal date has passed.
    Expired,
    /// A release or experiment flag without `owner`.
    MissingOwner,
    /// A release or experiment flag without `expires`.
    MissingExpiry,
    /// A release flag that has served one variant to everyone for the threshold or longer.
    FinishedRelease,
    /// A permission flag with a removal date.
    PermissionExpiry,
}

impl LintRule {
    /// Every rule, in reporting order.
    pub const ALL: [LintRule; 8] = [
        LintRule::InvalidOwner,
        LintRule::InvalidType,
        LintRule::InvalidExpiry,
        LintRule::Expired,
        LintRule::MissingOwner,
        LintRule::MissingExpiry,
        LintRule::FinishedRelease,
        LintRule::PermissionExpiry,
    ];

    /// The stable kebab-case id (`missing-owner`, `expired`, ...).
    pub fn id(self) -> &'static str {
        match self {
            LintRule::InvalidOwner => "invalid-owner",
            LintRule::InvalidType => "invalid-type",
            LintRule::InvalidExpiry => "invalid-expiry",
            LintRule::Expired => "expired",
            LintRule::MissingOwner => "missing-owner",
            LintRule::MissingExpiry => "missing-expiry",
            LintRule::FinishedRelease => "finished-release",
            LintRule::PermissionExpiry => "permission-expiry",
        }
    }

    /// Broken metadata and passed removal dates are errors; the rest are warnings.
    pub fn severity(self) -> Severity {
        match self {
            LintRule::InvalidOwner
            | LintRule::InvalidType
            | LintRule::InvalidExpiry
            | LintRule::Expired => Severity::Error,
            LintRule::MissingOwner
            | LintRule::MissingExpiry
            | LintRule::FinishedRelease
            | LintRule::PermissionExpiry => Severity::Warning,
        }
    }
}

/// One problem with one flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The flag key.
    pub key: String,
    /// The rule that found it.
    pub rule: LintRule,
    /// The rule's severity.
    pub severity: Severity,
    /// JSON path of the value at fault (or where it belongs), e.g.
    /// `$.flags['checkout'].metadata.expires`.
    pub path: String,
    /// What is wrong and what to do, starting with the JSON path.
    pub message: String,
}

impl Finding {
    /// Whether this finding fails a run (`strict`: warnings fail too).
    pub fn fails(&self, strict: bool) -> bool {
        strict || self.severity == Severity::Error
    }
}

/// Whether any of `findings` fails a run.
pub fn run_fails(findings: &[Finding], strict: bool) -> bool {
    findings.iter().any(|finding| finding.fails(strict))
}

/// What the lint judges against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintPolicy {
    /// The day the lint runs (removal dates before it have passed).
    pub today: Date,
    /// Days a release flag may serve one variant to everyone before it is reported finished.
    pub finished_after_days: u32,
}

impl LintPolicy {
    /// The policy for `today` with the default threshold.
    pub fn new(today: Date) -> LintPolicy {
        LintPolicy {
            today,
            finished_after_days: DEFAULT_FINISHED_AFTER_DAYS,
        }
    }
}

/// Lints every flag of a file. `unchanged_since` says since when a flag has been as it is now
/// (for a file, its modification time; for managed flags, their last change); `None` means
/// unknown, and then a flag is never reported finished.
pub fn lint_file(
    file: &FlagFile,
    policy: &LintPolicy,
    unchanged_since: impl Fn(&Flag) -> Option<Date>,
) -> Vec<Finding> {
    file.flags()
        .flat_map(|flag| {
            let paths = Paths::new(flag, Some(file.metadata()));
            lint_with_paths(flag, &paths, policy, unchanged_since(flag))
        })
        .collect()
}

/// Lints one flag; paths point into the flag's own metadata.
pub fn lint_flag(flag: &Flag, policy: &LintPolicy, unchanged_since: Option<Date>) -> Vec<Finding> {
    lint_with_paths(flag, &Paths::new(flag, None), policy, unchanged_since)
}

fn lint_with_paths(
    flag: &Flag,
    paths: &Paths,
    policy: &LintPolicy,
    unchanged_since: Option<Date>,
) -> Vec<Finding> {
    let metadata = flag.metadata();
    let owner = metadata::owner(metadata);
    let kind = metadata::flag_type(metadata);
    let expires = metadata::expires(metadata);
    let mut found = Findings {
        key: flag.key(),
        findings: Vec::new(),
    };

    if let Field::Invalid(value) = &owner {
        found.push(
            LintRule::InvalidOwner,
            paths.metadata(OWNER_KEY),
            format!("{value} is not an owner; use a non-empty string naming a team or person"),
        );
    }
    if let Field::Invalid(value) = &kind {
        found.push(
            LintRule::InvalidType,
            paths.metadata(TYPE_KEY),
            format!("{value} is not a flag type; use release, experiment, ops or permission"),
        );
    }
    if let Field::Invalid(value) = &expires {
        found.push(
            LintRule::InvalidExpiry,
            paths.metadata(EXPIRES_KEY),
            format!("{value} is not a removal date; use YYYY-MM-DD or an RFC 3339 date-time"),
        );
    }
    let kind = match kind {
        Field::Valid(kind) => Some(kind),
        Field::Absent | Field::Invalid(_) => None,
    };

    if let Field::Valid(date) = expires
        && kind != Some(FlagType::Permission)
        && date < policy.today
    {
        let days = policy.today.days_since(date);
        found.push(
            LintRule::Expired,
            paths.metadata(EXPIRES_KEY),
            format!(
                "removal date {date} passed {days} day{} ago; remove the flag and the code \
                 that reads it, or agree on a new date",
                plural(days)
            ),
        );
    }
    if let Some(kind) = kind.filter(|kind| kind.is_temporary()) {
        if !owner.is_present() {
            found.push(
                LintRule::MissingOwner,
                paths.metadata(OWNER_KEY),
                format!(
                    "{} flag has no owner; set metadata.owner to who will remove it",
                    kind.as_str()
                ),
            );
        }
        if !expires.is_present() {
            found.push(
                LintRule::MissingExpiry,
                paths.metadata(EXPIRES_KEY),
                format!(
                    "{} flag has no removal date; set metadata.expires (YYYY-MM-DD)",
                    kind.as_str()
                ),
            );
        }
    }
    if kind == Some(FlagType::Release)
        && let Some(variant) = single_variant(flag)
        && let Some(since) = unchanged_since
    {
        let days = policy.today.days_since(since);
        if days >= i64::from(policy.finished_after_days) {
            found.push(
                LintRule::FinishedRelease,
                paths.flag.to_string(),
                format!(
                    "has served variant '{variant}' to everyone for {days} day{} (unchanged \
                     since {since}); the release is finished: remove the flag and keep the \
                     code path it selects",
                    plural(days)
                ),
            );
        }
    }
    if kind == Some(FlagType::Permission) && expires.is_present() {
        found.push(
            LintRule::PermissionExpiry,
            paths.metadata(EXPIRES_KEY),
            "permission flags are permanent; remove metadata.expires or change the type".to_owned(),
        );
    }
    found.findings
}

fn plural(count: i64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Findings of one flag under construction.
struct Findings<'f> {
    key: &'f str,
    findings: Vec<Finding>,
}

impl Findings<'_> {
    fn push(&mut self, rule: LintRule, path: String, message: String) {
        self.findings.push(Finding {
            key: self.key.to_owned(),
            rule,
            severity: rule.severity(),
            message: format!("{path}: {message}"),
            path,
        });
    }
}

/// Where a flag and its metadata fields are in the file.
struct Paths<'m> {
    flag: JsonPath,
    /// The file's flag-set metadata, which flags inherit unless they override a field.
    set_metadata: Option<&'m Map<String, Value>>,
    flag_metadata: &'m Map<String, Value>,
}

impl<'m> Paths<'m> {
    fn new(flag: &'m Flag, set_metadata: Option<&'m Map<String, Value>>) -> Self {
        Paths {
            flag: JsonPath::root().field("flags").key(flag.key()),
            set_metadata,
            flag_metadata: flag.metadata(),
        }
    }

    /// The path of metadata `field`: the flag set's when the flag inherits the value from it,
    /// the flag's own otherwise (also where a missing field belongs).
    fn metadata(&self, field: &str) -> String {
        let inherited = self
            .set_metadata
            .and_then(|set| set.get(field))
            .is_some_and(|value| self.flag_metadata.get(field) == Some(value));
        let owner = if inherited {
            JsonPath::root()
        } else {
            self.flag.clone()
        };
        owner.field("metadata").field(field).to_string()
    }
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
