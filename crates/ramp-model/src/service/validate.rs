//! From the document as written to a [`ServiceSpec`]: every value checked, every problem
//! collected with its field path and place, defaults filled in.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::doc::{
    AnalysisRefDoc, BlueGreenDoc, CheckDoc, ProbeDoc, RollingDoc, ServiceDoc, StopDoc, StrategyDoc,
    TemplateDoc,
};
use super::{
    BlueGreen, Check, IntOrPercent, Probe, ProbeAction, Rolling, ServiceSpec, StopPolicy, Strategy,
    Template,
};
use crate::duration::parse_duration;
use crate::error::{ModelError, Problems};
use crate::proxy::socket_addr;

mod canary;
mod providers;
mod references;
mod templates;

use references::Declared;

/// Defaults the format promises.
const REVISION_HISTORY_LIMIT: u32 = 10;
const PROGRESS_DEADLINE: Duration = Duration::from_secs(600);
const PORT_ENV: &str = "PORT";
const SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);
const EXPECT_STATUS: (u16, u16) = (200, 399);

impl ServiceDoc {
    pub(super) fn validate(self) -> Result<ServiceSpec, ModelError> {
        let mut problems = Problems::default();
        let p = &mut problems;
        for (field, path, want) in [
            (&self.api_version, "apiVersion", ServiceSpec::API_VERSION),
            (&self.kind, "kind", ServiceSpec::KIND),
        ] {
            if field.value != want {
                p.push(
                    path,
                    &field.referenced,
                    format!("must be {want:?}, not {:?}", field.value),
                );
            }
        }
        let name = &self.metadata.name;
        if !is_service_name(&name.value) {
            p.push(
                "metadata.name",
                &name.referenced,
                format!(
                    "{:?} is not a service name; use 1 to 40 of a-z, 0-9 and -, starting with \
                     a letter",
                    name.value
                ),
            );
        }
        let spec = &self.spec;
        let replicas = int_in(&spec.replicas, "spec.replicas", 1..=100, p);
        let listen = socket_addr(&spec.listen, "spec.listen", p);
        let revision_history_limit = match &spec.revision_history_limit {
            None => Some(REVISION_HISTORY_LIMIT),
            Some(limit) => int_in(limit, "spec.revisionHistoryLimit", 0..=100, p),
        };
        let progress_deadline = duration(
            spec.progress_deadline.as_ref(),
            "spec.progressDeadline",
            PROGRESS_DEADLINE,
            Min::AboveZero,
            p,
        );
        let template = spec.template.validate("spec.template", p);
        let template_docs = spec.analysis_templates.as_deref().unwrap_or_default();
        let analysis_templates = templates::templates(template_docs, p);
        let declared = Declared::new(template_docs);
        let strategy =
            spec.strategy
                .value
                .validate(&spec.strategy.referenced, replicas, listen, &declared, p);

        problems.sort_by_position();
        problems.into_result()?;
        Ok(ServiceSpec {
            name: name.value.clone(),
            replicas: replicas.unwrap_or_default(),
            listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            revision_history_limit: revision_history_limit.unwrap_or_default(),
            progress_deadline,
            template,
            strategy,
            analysis_templates,
        })
    }
}

/// `^[a-z][a-z0-9-]{0,39}$`
fn is_service_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=40).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

const ENV_NAME_RULE: &str = "use letters, digits and _, not starting with a digit";

impl TemplateDoc {
    fn validate(&self, path: &str, p: &mut Problems) -> Template {
        if self.command.value.trim().is_empty() {
            p.push(
                format!("{path}.command"),
                &self.command.referenced,
                "must name a program",
            );
        }

        let port_env = match &self.port_env {
            None => PORT_ENV.to_string(),
            Some(name) => {
                if !is_env_name(&name.value) {
                    p.push(
                        format!("{path}.portEnv"),
                        &name.referenced,
                        format!(
                            "{:?} is not an environment variable name; {ENV_NAME_RULE}",
                            name.value
                        ),
                    );
                }
                name.value.clone()
            }
        };

        let mut env = BTreeMap::new();
        for (name, value) in self.env.iter().flat_map(|e| &e.0) {
            let field = format!("{path}.env.{}", name.value);
            if !is_env_name(&name.value) {
                p.push(
                    field,
                    &name.referenced,
                    format!(
                        "{:?} is not an environment variable name; {ENV_NAME_RULE}",
                        name.value
                    ),
                );
            } else if name.value == port_env {
                p.push(
                    field,
                    &name.referenced,
                    format!(
                        "{port_env} carries the instance's port (portEnv); set another \
                         portEnv or remove {port_env} from env",
                    ),
                );
            }
            env.insert(name.value.clone(), value.value.clone());
        }

        let working_dir = self.working_dir.as_ref().map(|dir| {
            if dir.value.trim().is_empty() {
                p.push(
                    format!("{path}.workingDir"),
                    &dir.referenced,
                    "must not be empty; leave it out for the directory the spec is applied from",
                );
            }
            dir.value.clone()
        });

        let mut seen: HashMap<String, usize> = HashMap::new();
        let files = self.files.as_deref().unwrap_or_default();
        for (i, file) in files.iter().enumerate() {
            let field = format!("{path}.files[{i}]");
            match relative_file(&file.value) {
                Err(message) => p.push(field, &file.referenced, message),
                Ok(normal) => {
                    if let Some(first) = seen.get(&normal) {
                        p.push(
                            field,
                            &file.referenced,
                            format!("{:?} is already listed as files[{first}]", file.value),
                        );
                    } else {
                        seen.insert(normal, i);
                    }
                }
            }
        }

        let probe = |doc: &Option<Spanned<ProbeDoc>>, name: &str, p: &mut Problems| {
            doc.as_ref().and_then(|d| {
                d.value
                    .validate(&format!("{path}.{name}"), &d.referenced, p)
            })
        };
        let readiness = probe(&self.readiness, "readiness", p);
        let liveness = probe(&self.liveness, "liveness", p);
        let stop = match &self.stop {
            None => StopPolicy::default(),
            Some(stop) => stop.validate(&format!("{path}.stop"), p),
        };

        Template {
            command: self.command.value.clone(),
            args: self.args.clone().unwrap_or_default(),
            env,
            working_dir,
            port_env,
            files: files.iter().map(|f| f.value.clone()).collect(),
            readiness,
            liveness,
            stop,
        }
    }
}

/// A path relative to the working directory that stays inside it, normalized (`./a//b` →
/// `a/b`) so the same file listed twice is recognised.
fn relative_file(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if text.starts_with(['/', '\\']) || drive {
        return Err(format!(
            "{text:?} is absolute; use a path relative to the working directory"
        ));
    }
    let parts: Vec<&str> = text
        .split(['/', '\\'])
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!(
            "{text:?} leaves the working directory; `..` is not allowed"
        ));
    }
    if parts.is_empty() {
        return Err(format!("{text:?} names no file"));
    }
    Ok(parts.join("/"))
}

impl ProbeDoc {
    fn validate(&self, path: &str, at: &Location, p: &mut Problems) -> Option<Probe> {
        let mut actions = Vec::new();
        let mut found = Vec::new();
        if let Some(http) = &self.http_get {
            found.push("httpGet");
            let request_path = http.value.as_ref().and_then(|h| h.path.as_ref());
            actions.push(ProbeAction::Http {
                path: url_path(request_path, &format!("{path}.httpGet.path"), p),
            });
        }
        if self.tcp_socket.is_some() {
            found.push("tcpSocket");
            actions.push(ProbeAction::Tcp);
        }
        if let Some(exec) = &self.exec {
            found.push("exec");
            let command = &exec.value.command;
            program(command, &format!("{path}.exec.command"), p);
            actions.push(ProbeAction::Exec {
                command: command.value.clone(),
            });
        }
        let one = exactly_one(path, at, &["httpGet", "tcpSocket", "exec"], &found, p);

        let threshold = |field: &Option<Spanned<i64>>, name: &str, default, p: &mut Problems| {
            field.as_ref().map_or(Some(default), |n| {
                int_in(n, &format!("{path}.{name}"), 1..=i64::from(u32::MAX), p)
            })
        };
        let initial_delay = duration(
            self.initial_delay.as_ref(),
            &format!("{path}.initialDelay"),
            Duration::ZERO,
            Min::Zero,
            p,
        );
        let period = duration(
            self.period.as_ref(),
            &format!("{path}.period"),
            Duration::from_secs(1),
            Min::AboveZero,
            p,
        );
        let timeout = duration(
            self.timeout.as_ref(),
            &format!("{path}.timeout"),
            Duration::from_secs(1),
            Min::AboveZero,
            p,
        );
        let success_threshold = threshold(&self.success_threshold, "successThreshold", 1, p);
        let failure_threshold = threshold(&self.failure_threshold, "failureThreshold", 3, p);

        let action = actions.into_iter().next().filter(|_| one)?;
        Some(Probe {
            action,
            initial_delay,
            period,
            timeout,
            success_threshold: success_threshold?,
            failure_threshold: failure_threshold?,
        })
    }
}

impl StopDoc {
    fn validate(&self, path: &str, p: &mut Problems) -> StopPolicy {
        let default = StopPolicy::default();
        let signal = match &self.signal {
            None => default.signal,
            Some(text) => StopPolicy::canonical_signal(&text.value).unwrap_or_else(|| {
                p.push(
                    format!("{path}.signal"),
                    &text.referenced,
                    format!(
                        "{:?} is not a stop signal; use one of {}",
                        text.value,
                        StopPolicy::SIGNALS.join(", ")
                    ),
                );
                default.signal
            }),
        };
        let grace_period = duration(
            self.grace_period.as_ref(),
            &format!("{path}.gracePeriod"),
            default.grace_period,
            Min::Zero,
            p,
        );
        StopPolicy {
            signal,
            grace_period,
        }
    }
}

impl StrategyDoc {
    fn validate(
        &self,
        at: &Location,
        replicas: Option<u32>,
        listen: Option<SocketAddr>,
        declared: &Declared<'_>,
        p: &mut Problems,
    ) -> Strategy {
        let path = "spec.strategy";
        let mut found = Vec::new();
        let mut strategies = Vec::new();
        if self.recreate.is_some() {
            found.push("recreate");
            strategies.push(Strategy::Recreate);
        }
        if let Some(rolling) = &self.rolling {
            found.push("rolling");
            let doc = rolling.value.as_ref();
            let path = format!("{path}.rolling");
            let at = &rolling.referenced;
            if let Some(r) = RollingDoc::validate(doc, &path, at, replicas, declared, p) {
                strategies.push(Strategy::Rolling(r));
            }
        }
        if let Some(blue_green) = &self.blue_green {
            found.push("blueGreen");
            let bg = match &blue_green.value {
                None => BlueGreen::default(),
                Some(doc) => doc.validate(&format!("{path}.blueGreen"), listen, declared, p),
            };
            strategies.push(Strategy::BlueGreen(bg));
        }
        if let Some(canary) = &self.canary {
            found.push("canary");
            let c = canary
                .value
                .validate(&format!("{path}.canary"), declared, p);
            strategies.push(Strategy::Canary(c));
        }
        exactly_one(
            path,
            at,
            &["recreate", "rolling", "blueGreen", "canary"],
            &found,
            p,
        );
        strategies.into_iter().next().unwrap_or(Strategy::Recreate)
    }
}

impl RollingDoc {
    fn validate(
        doc: Option<&Self>,
        path: &str,
        at: &Location,
        replicas: Option<u32>,
        declared: &Declared<'_>,
        p: &mut Problems,
    ) -> Option<Rolling> {
        let default = Rolling::default();
        let bound = |field: Option<&Spanned<String>>, name: &str, p: &mut Problems| match field {
            None => Some(match name {
                "maxSurge" => default.max_surge,
                _ => default.max_unavailable,
            }),
            Some(text) => (text.value.parse::<IntOrPercent>())
                .map_err(|message| p.push(format!("{path}.{name}"), &text.referenced, message))
                .ok(),
        };
        let max_surge = bound(doc.and_then(|d| d.max_surge.as_ref()), "maxSurge", p);
        let max_unavailable = bound(
            doc.and_then(|d| d.max_unavailable.as_ref()),
            "maxUnavailable",
            p,
        );
        let analysis = doc.and_then(|d| d.analysis.as_ref()).map(|a| {
            let path = format!("{path}.analysis");
            a.value.validate(&path, &a.referenced, declared, p)
        });
        let rolling = Rolling {
            max_surge: max_surge?,
            max_unavailable: max_unavailable?,
            analysis,
        };
        if let Some(replicas) = replicas
            && rolling.resolve(replicas) == (0, 0)
        {
            p.push(
                path,
                at,
                format!(
                    "maxSurge and maxUnavailable cannot both be 0 (they resolve to 0 for \
                     {replicas} replicas), or no instance could ever be replaced"
                ),
            );
        }
        Some(rolling)
    }
}

impl BlueGreenDoc {
    fn validate(
        &self,
        path: &str,
        listen: Option<SocketAddr>,
        declared: &Declared<'_>,
        p: &mut Problems,
    ) -> BlueGreen {
        let preview_listen = self.preview_listen.as_ref().and_then(|text| {
            let field = format!("{path}.previewListen");
            let addr = socket_addr(text, &field, p)?;
            if let Some(listen) = listen
                && same_socket(addr, listen)
            {
                p.push(
                    field,
                    &text.referenced,
                    format!("must differ from spec.listen ({listen})"),
                );
            }
            Some(addr)
        });
        let checks = self.pre_promotion_checks.as_deref().unwrap_or_default();
        let pre_promotion_checks = (checks.iter().enumerate())
            .filter_map(|(i, check)| {
                let path = format!("{path}.prePromotionChecks[{i}]");
                check.value.validate(&path, &check.referenced, p)
            })
            .collect();
        // Ramp's default judge compares the new stack with the old one under the same
        // production traffic. Before the switch the preview serves no production traffic,
        // after it the old stack serves none: blue-green analyses must name their templates.
        let analysis = |doc: &Option<Spanned<AnalysisRefDoc>>, name: &str, p: &mut Problems| {
            doc.as_ref().map(|a| {
                let path = format!("{path}.{name}");
                let resolved = a.value.validate(&path, &a.referenced, declared, p);
                if resolved.templates.is_empty() {
                    p.push(
                        format!("{path}.templates"),
                        &a.referenced,
                        "blue-green analyses need templates: the preview and the previous stack \
                         never serve production traffic side by side, so the default \
                         canary-against-baseline judge has nothing to compare",
                    );
                }
                resolved
            })
        };
        let pre_promotion_analysis =
            analysis(&self.pre_promotion_analysis, "prePromotionAnalysis", p);
        let post_promotion_analysis =
            analysis(&self.post_promotion_analysis, "postPromotionAnalysis", p);
        let auto_promotion_delay = self.auto_promotion.as_ref().and_then(|auto| {
            let delay = duration(
                auto.delay.as_ref(),
                &format!("{path}.autoPromotion.delay"),
                Duration::ZERO,
                Min::Zero,
                p,
            );
            auto.enabled.unwrap_or(false).then_some(delay)
        });
        let scale_down_delay = duration(
            self.scale_down_delay.as_ref(),
            &format!("{path}.scaleDownDelay"),
            SCALE_DOWN_DELAY,
            Min::Zero,
            p,
        );
        BlueGreen {
            preview_listen,
            pre_promotion_checks,
            pre_promotion_analysis,
            post_promotion_analysis,
            auto_promotion_delay,
            scale_down_delay,
        }
    }
}

/// Two listen addresses that cannot both be bound: equal, or the same port with one of them
/// on every interface (`0.0.0.0:8080` and `127.0.0.1:8080`).
pub fn same_socket(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

impl CheckDoc {
    fn validate(&self, path: &str, at: &Location, p: &mut Problems) -> Option<Check> {
        let mut found = Vec::new();
        let mut checks = Vec::new();
        if let Some(http) = &self.http {
            found.push("http");
            let doc = http.value.as_ref();
            let request_path = url_path(
                doc.and_then(|d| d.path.as_ref()),
                &format!("{path}.http.path"),
                p,
            );
            let requests = match doc.and_then(|d| d.requests.as_ref()) {
                None => Some(1),
                Some(n) => int_in(n, &format!("{path}.http.requests"), 1..=1000, p),
            };
            let expect_status = match doc.and_then(|d| d.expect_status.as_ref()) {
                None => Some(EXPECT_STATUS),
                Some(text) => status_range(&text.value)
                    .map_err(|message| {
                        p.push(
                            format!("{path}.http.expectStatus"),
                            &text.referenced,
                            message,
                        )
                    })
                    .ok(),
            };
            if let (Some(requests), Some(expect_status)) = (requests, expect_status) {
                checks.push(Check::Http {
                    path: request_path,
                    requests,
                    expect_status,
                });
            }
        }
        if let Some(command) = &self.command {
            found.push("command");
            let doc = &command.value;
            program(&doc.command, &format!("{path}.command.command"), p);
            let timeout = duration(
                doc.timeout.as_ref(),
                &format!("{path}.command.timeout"),
                CHECK_TIMEOUT,
                Min::AboveZero,
                p,
            );
            checks.push(Check::Command {
                command: doc.command.value.clone(),
                timeout,
            });
        }
        let one = exactly_one(path, at, &["http", "command"], &found, p);
        checks.into_iter().next().filter(|_| one)
    }
}

/// `200` or `200-299`, each a status code (100–599), low before high.
fn status_range(text: &str) -> Result<(u16, u16), String> {
    let code = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    let range = match text.split_once('-') {
        None => code(text).map(|c| (c, c)),
        Some((low, high)) => code(low).zip(code(high)),
    };
    match range {
        Some((low, high)) if low <= high => Ok((low, high)),
        Some(_) => Err(format!(
            "{text:?} is an empty range; write the low code first"
        )),
        None => Err(format!(
            "{text:?} is not a status code or range; use e.g. 200 or \"200-299\" (codes 100-599)"
        )),
    }
}

/// A request path (default `/`); it must start with `/`.
fn url_path(text: Option<&Spanned<String>>, path: &str, p: &mut Problems) -> String {
    let Some(text) = text else {
        return "/".to_string();
    };
    if !text.value.starts_with('/') {
        p.push(
            path,
            &text.referenced,
            format!("{:?} must start with /", text.value),
        );
    }
    text.value.clone()
}

/// A command line: at least a program name.
fn program(command: &Spanned<Vec<String>>, path: &str, p: &mut Problems) {
    if command.value.first().is_none_or(|c| c.trim().is_empty()) {
        p.push(
            path,
            &command.referenced,
            "must start with a program to run",
        );
    }
}

/// Set exactly one of `allowed`: true when `found` (the ones set) has one name, else a
/// problem at the item.
fn exactly_one(
    path: &str,
    at: &Location,
    allowed: &[&str],
    found: &[&str],
    p: &mut Problems,
) -> bool {
    if found.len() == 1 {
        return true;
    }
    let mut message = format!("set exactly one of {}", listing(allowed, "or"));
    if !found.is_empty() {
        message.push_str(&format!(", not {} together", listing(found, "and")));
    }
    p.push(path, at, message);
    false
}

/// `a, b or c`.
fn listing(names: &[&str], conjunction: &str) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

/// One of `names` (as written in a spec) to its value; else a problem listing the names.
fn one_of<T: Copy>(
    text: &Spanned<String>,
    path: &str,
    names: &[(&str, T)],
    p: &mut Problems,
) -> Option<T> {
    let found = names.iter().find(|(name, _)| *name == text.value);
    if found.is_none() {
        let allowed: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
        p.push(
            path,
            &text.referenced,
            format!("{:?} is not one of {}", text.value, listing(&allowed, "or")),
        );
    }
    found.map(|(_, value)| *value)
}

/// An integer in `range`, as a `u32`; else a problem.
fn int_in(
    value: &Spanned<i64>,
    path: &str,
    range: RangeInclusive<i64>,
    p: &mut Problems,
) -> Option<u32> {
    if range.contains(&value.value) {
        return u32::try_from(value.value).ok();
    }
    let message = if *range.end() >= i64::from(u32::MAX) && value.value < *range.start() {
        format!(
            "{} is too small; use at least {}",
            value.value,
            range.start()
        )
    } else {
        format!(
            "{} is out of range; use {} to {}",
            value.value,
            range.start(),
            range.end()
        )
    };
    p.push(path, &value.referenced, message);
    None
}

/// The least a duration may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Min {
    Zero,
    AboveZero,
}

/// A duration with units, `default` when absent or invalid (the problem is then recorded).
fn duration(
    text: Option<&Spanned<String>>,
    path: &str,
    default: Duration,
    min: Min,
    p: &mut Problems,
) -> Duration {
    let Some(text) = text else {
        return default;
    };
    match parse_duration(&text.value) {
        Ok(d) if d.is_zero() && min == Min::AboveZero => {
            p.push(path, &text.referenced, "must be above 0");
            default
        }
        Ok(d) => d,
        Err(message) => {
            p.push(path, &text.referenced, message);
            default
        }
    }
}
