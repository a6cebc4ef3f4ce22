//! Turns flag-file text (JSON or YAML) into a JSON value; the rest of the model only sees JSON.

use serde_json::Value;

use super::error::ModelErrors;

/// The syntax of a flag file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// JSON text.
    Json,
    /// YAML text (flagd accepts `.yaml` / `.yml` flag files).
    Yaml,
    /// Decide from the text: a document whose first meaningful character is `{` or `[` is
    /// JSON, anything else YAML.
    #[default]
    Auto,
}

impl Format {
    /// The concrete format of `text` (JSON or YAML), resolving [`Format::Auto`].
    pub fn detect(text: &str) -> Format {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next()
        {
            Some('{') | Some('[') => Format::Json,
            _ => Format::Yaml,
        }
    }

    /// The format a file name implies (`.json`, `.yaml`, `.yml`), if any.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// Parses `text` in `format` into a JSON value; a syntax error is reported at the root path.
pub(crate) fn parse_text(text: &str, format: Format) -> Result<Value, ModelErrors> {
    let format = match format {
        Format::Auto => Format::detect(text),
        concrete => concrete,
    };
    match format {
        Format::Json => serde_json::from_str(text)
            .map_err(|error| ModelErrors::single("$", format!("not valid JSON: {error}"))),
        _ => serde_saphyr::from_str::<Value>(text)
            .map_err(|error| ModelErrors::single("$", format!("not valid YAML: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_json_by_leading_brace_and_yaml_otherwise() {
        assert_eq!(Format::detect("  \n{\"flags\": {}}"), Format::Json);
        assert_eq!(Format::detect("[1]"), Format::Json);
        assert_eq!(Format::detect("flags:\n  a: 1\n"), Format::Yaml);
        assert_eq!(Format::from_file_name("flags.YML"), Some(Format::Yaml));
        assert_eq!(Format::from_file_name("flags.json"), Some(Format::Json));
        assert_eq!(Format::from_file_name("flags"), None);
    }

    #[test]
    fn yaml_and_json_give_the_same_value() {
        let yaml = "flags:\n  f:\n    state: ENABLED\n    variants: {on: true, n: 1.5, i: 3}\n";
        let from_yaml = parse_text(yaml, Format::Auto).unwrap();
        let from_json = parse_text(
            r#"{"flags":{"f":{"state":"ENABLED","variants":{"on":true,"n":1.5,"i":3}}}}"#,
            Format::Auto,
        )
        .unwrap();
        assert_eq!(from_yaml, from_json);
        assert_eq!(from_yaml["flags"]["f"]["variants"]["i"], json!(3));
    }

    #[test]
    fn syntax_errors_name_the_format_and_root() {
        let errors = parse_text("{\"flags\": ", Format::Json).unwrap_err();
        assert_eq!(errors.errors()[0].path, "$");
        assert!(errors.errors()[0].message.starts_with("not valid JSON"));
        let errors = parse_text("flags: [unclosed", Format::Yaml).unwrap_err();
        assert!(errors.errors()[0].message.starts_with("not valid YAML"));
    }
}
