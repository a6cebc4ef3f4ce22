use super::*;
use crate::error::Problem;

const FULL: &str = r#"
listen: 127.0.0.1:8080
workers: 2
admin: localhost:9901
revisionHeader: X-Ramp-Revision
timeouts:
  connect: 500ms
  response: 1m
stickiness:
  cookie: user
revisions:
  - name: v1
    weight: 95
    instances: ["127.0.0.1:9001", "[::1]:9002"]
  - name: v2
    weight: 5
    instances: ["127.0.0.1:9003"]
rules:
  - revision: v2
    match:
      - header: X-Canary
        exact: "true"
      - cookie: beta
        regex: "yes|1"
mirrors:
  - revision: v2
    percent: 12.5
"#;

fn problems(text: &str) -> Vec<Problem> {
    match ProxyConfig::from_yaml(text) {
        Err(ModelError::Invalid(problems)) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[test]
fn full_document_parses() {
    let c = ProxyConfig::from_yaml(FULL).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.admin, Some("127.0.0.1:9901".parse().unwrap()));
    assert_eq!(c.workers, Some(2));
    assert!(c.pin_workers, "workers are pinned unless turned off");
    assert_eq!(c.revision_header.as_deref(), Some("x-ramp-revision"));
    assert_eq!(c.timeouts.connect, Duration::from_millis(500));
    assert_eq!(c.timeouts.response, Duration::from_secs(60));
    assert_eq!(c.timeouts.client_idle, Timeouts::default().client_idle);
    let revisions = c.table.revisions();
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0].instances[1], "[::1]:9002".parse().unwrap());
    assert_eq!(c.table.sticky_source(), Some(&Source::cookie("user")));
    let spec = c.table.spec();
    assert_eq!(spec.rules[0].conditions.len(), 2);
    assert_eq!(
        spec.rules[0].conditions[0].source,
        Source::header("x-canary")
    );
    assert_eq!(spec.mirrors[0].percent, 12.5);
}

#[test]
fn unknown_field_names_line_and_field() {
    let text = "listen: 127.0.0.1:1\nrevisions:\n  - name: a\n    weight: 1\n    instances: []\n    wieght: 3\n";
    let err = ProxyConfig::from_yaml(text).unwrap_err();
    let ModelError::Syntax {
        path,
        line,
        message,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*line, 6);
    assert_eq!(path.as_deref(), Some("revisions[0].wieght"));
    assert!(message.contains("unknown field `wieght`"), "{message}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("revisions[0].wieght (line 6, column 5): unknown field"),
        "{shown}"
    );
}

#[test]
fn missing_field_names_the_mapping() {
    let text = "listen: 127.0.0.1:1\nrevisions:\n  - weight: 1\n    instances: []\n";
    match ProxyConfig::from_yaml(text) {
        Err(ModelError::Syntax { path, message, .. }) => {
            assert_eq!(path.as_deref(), Some("revisions[0]"));
            assert!(message.contains("missing field `name`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_type_is_a_syntax_error_with_line() {
    let text = "listen: 127.0.0.1:1\nrevisions:\n  - name: a\n    weight: -4\n";
    match ProxyConfig::from_yaml(text) {
        Err(ModelError::Syntax {
            path,
            line: 4,
            column: 13,
            ..
        }) => {
            assert_eq!(path.as_deref(), Some("revisions[0].weight"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_value_problem_is_reported_with_its_path() {
    let text = r#"listen: nowhere
workers: 0
timeouts:
  connect: 5
revisions:
  - name: a
    weight: 1
    instances: ["127.0.0.1:1", "host-without-port"]
rules:
  - revision: a
    match:
      - header: x
        exact: "1"
        prefix: "2"
  - revision: a
    match:
      - cookie: c
        regex: "("
"#;
    let found = problems(text);
    let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "listen",
            "workers",
            "timeouts.connect",
            "revisions[0].instances[1]",
            "rules[0].match[0]",
            "rules[1].match[0].regex",
        ]
    );
    assert_eq!((found[0].line, found[0].column), (1, 9));
    assert_eq!(found[3].line, 8);
    assert!(found[2].message.contains("unit"), "{}", found[2].message);
}

#[test]
fn table_errors_point_at_the_offending_field() {
    let text = "listen: 127.0.0.1:1\nrevisions:\n  - name: a\n    weight: 1\n    instances: [\"127.0.0.1:2\"]\n  - name: a\n    weight: 1\n    instances: [\"127.0.0.1:3\"]\n";
    let found = problems(text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "revisions[1].name");
    assert_eq!(found[0].line, 6);
    assert!(found[0].message.contains("used twice"));

    let text = "listen: 127.0.0.1:1\nrevisions:\n  - name: a\n    weight: 1\n    instances: [\"127.0.0.1:2\"]\nmirrors:\n  - revision: b\n    percent: 10\n";
    let found = problems(text);
    assert_eq!(found[0].path, "mirrors[0].revision");
    assert_eq!(found[0].line, 7);

    let text = "listen: 127.0.0.1:1\nrevisions:\n  - name: a\n    weight: 0\n    instances: [\"127.0.0.1:2\"]\n";
    assert_eq!(problems(text)[0].path, "revisions");

    let text = "listen: 127.0.0.1:1\nrevisions:\n  - name: a\n    weight: 1\n    instances: [\"127.0.0.1:2\", \"127.0.0.1:2\"]\n";
    assert_eq!(problems(text)[0].path, "revisions[0].instances[1]");
}

#[test]
fn stickiness_needs_exactly_one_source() {
    let text = "listen: 127.0.0.1:1\nstickiness: {header: a, cookie: b}\nrevisions:\n  - name: a\n    weight: 1\n    instances: [\"127.0.0.1:2\"]\n";
    assert_eq!(problems(text)[0].path, "stickiness");
}

#[test]
fn display_names_path_line_and_message() {
    let err = ProxyConfig::from_yaml("listen: 127.0.0.1:99999\nrevisions: []\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("listen (line 1, column 9)"), "{text}");
}
