//! Where a strategy uses analysis templates: every name must be declared, every argument
//! without a default must be given, and every argument given must be declared by a template
//! that is used.

use std::collections::HashMap;

use ramp_analysis::AnalysisRef;
use serde_saphyr::{Location, Spanned};

use super::listing;
use crate::error::Problems;
use crate::service::BackgroundAnalysis;
use crate::service::doc::{
    AnalysisRefDoc, AnalysisTemplateDoc, ArgDoc, BackgroundAnalysisDoc, TemplateRefDoc,
};

/// The templates a spec declares, as written: each name with its arguments and whether each
/// has a default. References are checked against this even when a template has problems of
/// its own, so each mistake is reported once, where it is.
#[derive(Debug, Default)]
pub(super) struct Declared<'a> {
    /// Template names in the order declared, for messages.
    names: Vec<&'a str>,
    /// Arguments by template name: `(name, has a default)`.
    args: HashMap<&'a str, Vec<(&'a str, bool)>>,
}

impl<'a> Declared<'a> {
    pub(super) fn new(docs: &'a [Spanned<AnalysisTemplateDoc>]) -> Self {
        let mut declared = Declared::default();
        for doc in docs {
            let name = doc.value.name.value.as_str();
            if declared.args.contains_key(name) {
                continue;
            }
            let args = (doc.value.args.iter().flatten())
                .map(|a| (a.value.name.value.as_str(), a.value.value.is_some()))
                .collect();
            declared.names.push(name);
            declared.args.insert(name, args);
        }
        declared
    }

    fn unknown(&self, name: &str) -> String {
        if self.names.is_empty() {
            format!("no analysis template named {name:?}; spec.analysisTemplates declares none")
        } else {
            format!(
                "no analysis template named {name:?}; spec.analysisTemplates declares {}",
                listing(&self.names, "and")
            )
        }
    }
}

impl AnalysisRefDoc {
    pub(super) fn validate(
        &self,
        path: &str,
        at: &Location,
        declared: &Declared<'_>,
        p: &mut Problems,
    ) -> AnalysisRef {
        reference(&self.templates, &self.args, path, at, declared, p)
    }
}

impl BackgroundAnalysisDoc {
    /// `None` when turned off; `steps` is the number of canary steps.
    pub(super) fn validate(
        &self,
        path: &str,
        at: &Location,
        steps: usize,
        declared: &Declared<'_>,
        p: &mut Problems,
    ) -> Option<BackgroundAnalysis> {
        let analysis = reference(&self.templates, &self.args, path, at, declared, p);
        let starting_step = self.starting_step.as_ref().map_or(0, |n| {
            let last = steps.saturating_sub(1);
            match usize::try_from(n.value) {
                Ok(step) if step < steps.max(1) => step,
                _ => {
                    p.push(
                        format!("{path}.startingStep"),
                        &n.referenced,
                        format!("{} is not a step; use 0 to {last}", n.value),
                    );
                    0
                }
            }
        });
        match &self.enabled {
            Some(enabled) if !enabled.value => {
                let set = [
                    ("templates", self.templates.is_some()),
                    ("args", self.args.is_some()),
                    ("startingStep", self.starting_step.is_some()),
                ];
                let set: Vec<&str> = (set.iter())
                    .filter_map(|(name, is_set)| is_set.then_some(*name))
                    .collect();
                if !set.is_empty() {
                    p.push(
                        format!("{path}.enabled"),
                        &enabled.referenced,
                        format!(
                            "the analysis is off, so {} would have no effect; remove {} or \
                             enabled: false",
                            listing(&set, "and"),
                            if set.len() == 1 { "it" } else { "them" }
                        ),
                    );
                }
                None
            }
            _ => Some(BackgroundAnalysis {
                analysis,
                starting_step,
            }),
        }
    }
}

fn reference(
    templates: &Option<Vec<Spanned<TemplateRefDoc>>>,
    args: &Option<Vec<Spanned<ArgDoc>>>,
    path: &str,
    at: &Location,
    declared: &Declared<'_>,
    p: &mut Problems,
) -> AnalysisRef {
    let templates = templates.as_deref().unwrap_or_default();
    let args = args.as_deref().unwrap_or_default();

    // Templates: declared, each used once. `used` holds the declared ones.
    let mut used: Vec<&str> = Vec::new();
    let mut all_known = true;
    for (i, template) in templates.iter().enumerate() {
        let name = &template.value.template_name;
        let field = format!("{path}.templates[{i}].templateName");
        if name.value.trim().is_empty() {
            p.push(field, &name.referenced, "must not be empty");
            all_known = false;
        } else if let Some(first) = templates[..i]
            .iter()
            .position(|t| t.value.template_name.value == name.value)
        {
            p.push(
                field,
                &name.referenced,
                format!("{:?} is already used by templates[{first}]", name.value),
            );
        } else if declared.args.contains_key(name.value.as_str()) {
            used.push(&name.value);
        } else {
            p.push(field, &name.referenced, declared.unknown(&name.value));
            all_known = false;
        }
    }

    // Arguments given: named once, and declared by a template in use (which can only be told
    // when every template named is known).
    let mut given: HashMap<&str, usize> = HashMap::new();
    for (i, arg) in args.iter().enumerate() {
        let name = &arg.value.name;
        let field = format!("{path}.args[{i}].name");
        if name.value.trim().is_empty() {
            p.push(field, &name.referenced, "must not be empty");
        } else if let Some(first) = given.get(name.value.as_str()) {
            p.push(
                field,
                &name.referenced,
                format!(
                    "argument {:?} is already given by args[{first}]",
                    name.value
                ),
            );
        } else {
            given.insert(&name.value, i);
            let declares = |t: &&str| declared.args[*t].iter().any(|(a, _)| *a == name.value);
            if templates.is_empty() {
                p.push(
                    field,
                    &name.referenced,
                    format!(
                        "Ramp's default analysis takes no arguments, so {:?} would be unused; \
                         name the templates that declare it",
                        name.value
                    ),
                );
            } else if all_known && !used.iter().any(declares) {
                p.push(
                    field,
                    &name.referenced,
                    format!(
                        "no template used here declares argument {:?} ({} {})",
                        name.value,
                        if used.len() == 1 {
                            "template"
                        } else {
                            "templates"
                        },
                        listing(&used, "and")
                    ),
                );
            }
        }
    }

    // Arguments needed: each one without a default gets a value here.
    let mut missing: Vec<&str> = Vec::new();
    for template in &used {
        for (arg, has_default) in &declared.args[template] {
            if !has_default && !given.contains_key(arg) && !missing.contains(arg) {
                missing.push(arg);
                p.push(
                    path,
                    at,
                    format!(
                        "template {template:?} needs a value for argument {arg:?}; add \
                         {{name: {arg}, value: ...}} to args"
                    ),
                );
            }
        }
    }

    AnalysisRef {
        templates: templates
            .iter()
            .map(|t| t.value.template_name.value.clone())
            .collect(),
        args: args
            .iter()
            .map(|a| (a.value.name.value.clone(), a.value.value.value.clone()))
            .collect(),
    }
}
