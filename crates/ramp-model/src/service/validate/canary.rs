//! Canary settings: stickiness, and the steps with their routes, matches and analyses.

use std::collections::HashMap;
use std::time::Duration;

use ramp_route::{Condition, Source, ValueMatch};
use serde_saphyr::{Location, Spanned};

use super::references::Declared;
use super::{Min, SCALE_DOWN_DELAY, duration, exactly_one, int_in, one_of};
use crate::error::Problems;
use crate::service::doc::{
    CanaryDoc, HeaderRouteDoc, MatchDoc, MirrorRouteDoc, PauseDoc, StepDoc, StickinessDoc, ValueDoc,
};
use crate::service::{BackgroundAnalysis, Baseline, Canary, CanaryStep};
use crate::syntax::is_token;

/// Names of routes set so far in the steps, each with the step that set it.
#[derive(Debug, Default)]
struct RouteNames {
    header: HashMap<String, usize>,
    mirror: HashMap<String, usize>,
}

impl CanaryDoc {
    pub(super) fn validate(&self, path: &str, declared: &Declared<'_>, p: &mut Problems) -> Canary {
        let stickiness = self.stickiness.as_ref().and_then(|s| {
            s.value
                .validate(&format!("{path}.stickiness"), &s.referenced, p)
        });
        let scale_down_delay = duration(
            self.scale_down_delay.as_ref(),
            &format!("{path}.scaleDownDelay"),
            SCALE_DOWN_DELAY,
            Min::Zero,
            p,
        );
        if self.steps.value.is_empty() {
            p.push(
                format!("{path}.steps"),
                &self.steps.referenced,
                "needs at least one step",
            );
        }
        let mut routes = RouteNames::default();
        let steps = (self.steps.value.iter().enumerate())
            .filter_map(|(i, step)| {
                let path = format!("{path}.steps[{i}]");
                step.value
                    .validate(&path, &step.referenced, i, &mut routes, declared, p)
            })
            .collect();
        let baseline = self.baseline.as_ref().map_or(Baseline::Stable, |text| {
            let names = [("stable", Baseline::Stable), ("fresh", Baseline::Fresh)];
            one_of(text, &format!("{path}.baseline"), &names, p).unwrap_or_default()
        });
        let analysis = match &self.analysis {
            None => Some(BackgroundAnalysis::default()),
            Some(doc) => doc.value.validate(
                &format!("{path}.analysis"),
                &doc.referenced,
                self.steps.value.len(),
                declared,
                p,
            ),
        };
        Canary {
            steps,
            stickiness,
            scale_down_delay,
            baseline,
            analysis,
        }
    }
}

impl StickinessDoc {
    fn validate(&self, path: &str, at: &Location, p: &mut Problems) -> Option<Source> {
        let mut found = Vec::new();
        let mut sources = Vec::new();
        if let Some(header) = &self.header {
            found.push("header");
            let name = &header.value;
            if is_token(name) {
                sources.push(Source::header(name));
            } else {
                p.push(
                    format!("{path}.header"),
                    &header.referenced,
                    format!("{name:?} is not a valid header name"),
                );
            }
        }
        if let Some(cookie) = &self.cookie {
            found.push("cookie");
            let name = &cookie.value;
            if is_token(name) {
                sources.push(Source::cookie(name));
            } else {
                p.push(
                    format!("{path}.cookie"),
                    &cookie.referenced,
                    format!("{name:?} is not a valid cookie name"),
                );
            }
        }
        let one = exactly_one(path, at, &["header", "cookie"], &found, p);
        sources.into_iter().next().filter(|_| one)
    }
}

impl StepDoc {
    fn validate(
        &self,
        path: &str,
        at: &Location,
        index: usize,
        routes: &mut RouteNames,
        declared: &Declared<'_>,
        p: &mut Problems,
    ) -> Option<CanaryStep> {
        let mut found = Vec::new();
        let mut steps = Vec::new();
        if let Some(weight) = &self.set_weight {
            found.push("setWeight");
            let path = format!("{path}.setWeight");
            steps.push(int_in(weight, &path, 0..=100, p).map(CanaryStep::SetWeight));
        }
        if let Some(pause) = &self.pause {
            found.push("pause");
            let path = format!("{path}.pause");
            steps.push(Some(PauseDoc::validate(pause.value.as_ref(), &path, p)));
        }
        if let Some(route) = &self.set_header_route {
            found.push("setHeaderRoute");
            let path = format!("{path}.setHeaderRoute");
            steps.push(Some(route.value.validate(&path, index, routes, p)));
        }
        if let Some(route) = &self.set_mirror_route {
            found.push("setMirrorRoute");
            let path = format!("{path}.setMirrorRoute");
            steps.push(Some(route.value.validate(&path, index, routes, p)));
        }
        if let Some(analysis) = &self.analysis {
            found.push("analysis");
            let path = format!("{path}.analysis");
            let analysis = match &analysis.value {
                None => Default::default(),
                Some(doc) => doc.validate(&path, &analysis.referenced, declared, p),
            };
            steps.push(Some(CanaryStep::Analysis(analysis)));
        }
        let allowed = [
            "setWeight",
            "pause",
            "setHeaderRoute",
            "setMirrorRoute",
            "analysis",
        ];
        let one = exactly_one(path, at, &allowed, &found, p);
        steps.into_iter().next().flatten().filter(|_| one)
    }
}

impl PauseDoc {
    fn validate(doc: Option<&Self>, path: &str, p: &mut Problems) -> CanaryStep {
        let wait = doc.and_then(|d| d.duration.as_ref()).map(|text| {
            duration(
                Some(text),
                &format!("{path}.duration"),
                Duration::ZERO,
                Min::AboveZero,
                p,
            )
        });
        CanaryStep::Pause(wait)
    }
}

/// A route name: not empty; set by at most one step of its kind; removed only after a step
/// set it.
fn route_name(
    name: &Spanned<String>,
    path: &str,
    kind: &str,
    sets: bool,
    index: usize,
    names: &mut HashMap<String, usize>,
    p: &mut Problems,
) {
    let path = format!("{path}.name");
    if name.value.trim().is_empty() {
        p.push(path, &name.referenced, "must not be empty");
        return;
    }
    match (names.get(&name.value), sets) {
        (Some(step), true) => p.push(
            path,
            &name.referenced,
            format!(
                "{kind} route {:?} is already set by steps[{step}]; route names must be \
                 unique (a later step with this name and no match removes the route)",
                name.value
            ),
        ),
        (None, true) => {
            names.insert(name.value.clone(), index);
        }
        (None, false) => p.push(
            path,
            &name.referenced,
            format!(
                "no earlier step sets {kind} route {:?}, so there is nothing to remove",
                name.value
            ),
        ),
        (Some(_), false) => {}
    }
}

impl HeaderRouteDoc {
    fn validate(
        &self,
        path: &str,
        index: usize,
        routes: &mut RouteNames,
        p: &mut Problems,
    ) -> CanaryStep {
        let conditions = conditions(self.conditions.as_ref(), path, p);
        let sets = self
            .conditions
            .as_ref()
            .is_some_and(|c| !c.value.is_empty());
        let names = &mut routes.header;
        route_name(&self.name, path, "header", sets, index, names, p);
        CanaryStep::SetHeaderRoute {
            name: self.name.value.clone(),
            conditions,
        }
    }
}

impl MirrorRouteDoc {
    fn validate(
        &self,
        path: &str,
        index: usize,
        routes: &mut RouteNames,
        p: &mut Problems,
    ) -> CanaryStep {
        let conditions = conditions(self.conditions.as_ref(), path, p);
        let percentage = self.percentage.as_ref().map(|pct| {
            if !(pct.value > 0.0 && pct.value <= 100.0) {
                p.push(
                    format!("{path}.percentage"),
                    &pct.referenced,
                    format!(
                        "{} is out of range; use above 0 and at most 100 (leave it out to \
                         remove the route)",
                        pct.value
                    ),
                );
            }
            pct.value
        });
        if percentage.is_none()
            && let Some(c) = &self.conditions
            && !c.value.is_empty()
        {
            p.push(
                format!("{path}.match"),
                &c.referenced,
                "has no effect without percentage: a mirror route without percentage is \
                 removed",
            );
        }
        let names = &mut routes.mirror;
        route_name(
            &self.name,
            path,
            "mirror",
            percentage.is_some(),
            index,
            names,
            p,
        );
        CanaryStep::SetMirrorRoute {
            name: self.name.value.clone(),
            percentage,
            conditions,
        }
    }
}

/// A route's `match` list (none when left out); `path` is the route's.
fn conditions(
    docs: Option<&Spanned<Vec<Spanned<MatchDoc>>>>,
    path: &str,
    p: &mut Problems,
) -> Vec<Condition> {
    let docs = docs.map_or(&[][..], |d| &d.value);
    (docs.iter().enumerate())
        .filter_map(|(i, doc)| {
            doc.value
                .validate(&format!("{path}.match[{i}]"), &doc.referenced, p)
        })
        .collect()
}

impl MatchDoc {
    fn validate(&self, path: &str, at: &Location, p: &mut Problems) -> Option<Condition> {
        let (source, value, value_field) = match (&self.header_name, &self.cookie_name) {
            (Some(name), None) => {
                misplaced(&self.cookie_value, path, "cookieValue", "cookieName", p);
                let source = is_token(&name.value).then(|| Source::header(&name.value));
                if source.is_none() {
                    p.push(
                        format!("{path}.headerName"),
                        &name.referenced,
                        format!("{:?} is not a valid header name", name.value),
                    );
                }
                (source, &self.header_value, "headerValue")
            }
            (None, Some(name)) => {
                misplaced(&self.header_value, path, "headerValue", "headerName", p);
                let source = is_token(&name.value).then(|| Source::cookie(&name.value));
                if source.is_none() {
                    p.push(
                        format!("{path}.cookieName"),
                        &name.referenced,
                        format!("{:?} is not a valid cookie name", name.value),
                    );
                }
                (source, &self.cookie_value, "cookieValue")
            }
            (header, cookie) => {
                let found: Vec<&str> = [("headerName", header), ("cookieName", cookie)]
                    .into_iter()
                    .filter_map(|(name, set)| set.is_some().then_some(name))
                    .collect();
                exactly_one(path, at, &["headerName", "cookieName"], &found, p);
                return None;
            }
        };
        let value = match value {
            None => Some(ValueMatch::Present),
            Some(doc) => doc
                .value
                .validate(&format!("{path}.{value_field}"), &doc.referenced, p),
        };
        Some(Condition {
            source: source?,
            value: value?,
        })
    }
}

/// `headerValue` next to `cookieName` (or the other way round) is a mistake, not ignored.
fn misplaced(
    value: &Option<Spanned<ValueDoc>>,
    path: &str,
    field: &str,
    belongs_to: &str,
    p: &mut Problems,
) {
    if let Some(value) = value {
        p.push(
            format!("{path}.{field}"),
            &value.referenced,
            format!("{field} goes with {belongs_to}"),
        );
    }
}

impl ValueDoc {
    fn validate(&self, path: &str, at: &Location, p: &mut Problems) -> Option<ValueMatch> {
        let mut found = Vec::new();
        let mut values = Vec::new();
        if let Some(exact) = &self.exact {
            found.push("exact");
            values.push(Some(ValueMatch::Exact(exact.clone())));
        }
        if let Some(prefix) = &self.prefix {
            found.push("prefix");
            values.push(Some(ValueMatch::Prefix(prefix.clone())));
        }
        if let Some(regex) = &self.regex {
            found.push("regex");
            let compiled = ValueMatch::regex(&regex.value).map_err(|e| {
                // The library's message quotes the anchored pattern over several lines; its
                // last `error:` line is what is wrong.
                let text = e.to_string();
                let reason = text.rsplit("error: ").next().unwrap_or(&text).trim();
                p.push(
                    format!("{path}.regex"),
                    &regex.referenced,
                    format!(
                        "{:?} is not a valid regular expression: {reason}",
                        regex.value
                    ),
                );
            });
            values.push(compiled.ok());
        }
        if found.is_empty() {
            p.push(
                path,
                at,
                "set exactly one of exact, prefix or regex (leave the value out to match any)",
            );
            return None;
        }
        let one = exactly_one(path, at, &["exact", "prefix", "regex"], &found, p);
        values.into_iter().next().flatten().filter(|_| one)
    }
}
