//! The JSON form of route tables: round trips, a stable shape, and refusals that say why.

use ramp_route::{
    Condition, FullMatch, MirrorSpec, RevisionSpec, RouteTable, RuleSpec, Source, TableSpec,
    ValueMatch,
};

fn cond(source: Source, value: ValueMatch) -> Condition {
    Condition { source, value }
}

/// A table using every kind of source, value match, rule, mirror and stickiness.
fn everything() -> TableSpec {
    TableSpec {
        revisions: vec![
            RevisionSpec {
                name: "stable".into(),
                weight: 95,
                instances: vec![
                    "127.0.0.1:9001".parse().unwrap(),
                    "[::1]:9002".parse().unwrap(),
                ],
            },
            RevisionSpec {
                name: "canary".into(),
                weight: 5,
                instances: vec!["10.0.0.7:80".parse().unwrap()],
            },
            RevisionSpec {
                name: "shadow".into(),
                weight: 0,
                instances: vec!["127.0.0.1:9003".parse().unwrap()],
            },
            RevisionSpec {
                name: "idle".into(),
                weight: 0,
                instances: vec![],
            },
        ],
        rules: vec![
            RuleSpec {
                conditions: vec![
                    cond(Source::header("X-Canary"), ValueMatch::Present),
                    cond(
                        Source::cookie("Beta"),
                        ValueMatch::Exact("yes \"q\"".into()),
                    ),
                ],
                revision: "canary".into(),
            },
            RuleSpec {
                conditions: vec![cond(
                    Source::header("user-agent"),
                    ValueMatch::regex(r".*(iPhone|Android)\s.*").unwrap(),
                )],
                revision: "canary".into(),
            },
            RuleSpec {
                conditions: vec![cond(
                    Source::cookie("plan"),
                    ValueMatch::Prefix("ent-".into()),
                )],
                revision: "stable".into(),
            },
        ],
        mirrors: vec![
            MirrorSpec {
                revision: "shadow".into(),
                percent: 12.5,
                conditions: vec![],
            },
            MirrorSpec {
                revision: "shadow".into(),
                percent: 100.0,
                conditions: vec![cond(Source::header("x-debug"), ValueMatch::Present)],
            },
        ],
        sticky: Some(Source::cookie("session")),
    }
}

#[test]
fn every_kind_of_condition_round_trips() {
    let spec = everything();
    RouteTable::new(spec.clone()).expect("the example is a valid table");
    let json = serde_json::to_string(&spec).unwrap();
    let back: TableSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
    // And again through a generic value (key order must not matter).
    let value = serde_json::to_value(&spec).unwrap();
    let back: TableSpec = serde_json::from_value(value).unwrap();
    assert_eq!(back, spec);

    let header_sticky = TableSpec {
        sticky: Some(Source::header("X-User")),
        ..spec
    };
    let json = serde_json::to_string(&header_sticky).unwrap();
    assert_eq!(
        serde_json::from_str::<TableSpec>(&json).unwrap(),
        header_sticky
    );
}

#[test]
fn json_shape_is_stable() {
    let spec = TableSpec {
        revisions: vec![
            RevisionSpec {
                name: "v1".into(),
                weight: 90,
                instances: vec!["127.0.0.1:9001".parse().unwrap()],
            },
            RevisionSpec {
                name: "v2".into(),
                weight: 10,
                instances: vec!["127.0.0.1:9002".parse().unwrap()],
            },
        ],
        rules: vec![RuleSpec {
            conditions: vec![
                cond(Source::header("x-canary"), ValueMatch::Present),
                cond(Source::cookie("beta"), ValueMatch::Exact("1".into())),
                cond(Source::header("x-team"), ValueMatch::Prefix("web-".into())),
                cond(
                    Source::header("user-agent"),
                    ValueMatch::regex(".*iPhone.*").unwrap(),
                ),
            ],
            revision: "v2".into(),
        }],
        mirrors: vec![MirrorSpec {
            revision: "v2".into(),
            percent: 2.5,
            conditions: vec![],
        }],
        sticky: Some(Source::header("x-user")),
    };
    let golden = concat!(
        r#"{"revisions":["#,
        r#"{"name":"v1","weight":90,"instances":["127.0.0.1:9001"]},"#,
        r#"{"name":"v2","weight":10,"instances":["127.0.0.1:9002"]}],"#,
        r#""rules":[{"conditions":["#,
        r#"{"header":"x-canary","value":{"present":true}},"#,
        r#"{"cookie":"beta","value":{"exact":"1"}},"#,
        r#"{"header":"x-team","value":{"prefix":"web-"}},"#,
        r#"{"header":"user-agent","value":{"regex":".*iPhone.*"}}],"revision":"v2"}],"#,
        r#""mirrors":[{"revision":"v2","percent":2.5,"conditions":[]}],"#,
        r#""sticky":{"header":"x-user"}}"#,
    );
    assert_eq!(serde_json::to_string(&spec).unwrap(), golden);
    assert_eq!(serde_json::from_str::<TableSpec>(golden).unwrap(), spec);

    let minimal = r#"{"revisions":[{"name":"v1","weight":1,"instances":[]}]}"#;
    let parsed: TableSpec = serde_json::from_str(minimal).unwrap();
    assert_eq!(
        serde_json::to_string(&parsed).unwrap(),
        r#"{"revisions":[{"name":"v1","weight":1,"instances":[]}],"rules":[],"mirrors":[],"sticky":null}"#
    );
}

#[test]
fn regex_keeps_the_pattern_as_written_and_stays_anchored() {
    let m = ValueMatch::regex("a|b").unwrap();
    let ValueMatch::Regex(re) = &m else {
        panic!("a regex")
    };
    assert_eq!(re.as_str(), "a|b");
    assert_eq!(re.regex().as_str(), "^(?:a|b)$");
    assert!(re.is_match(b"a") && re.is_match(b"b") && !re.is_match(b"ab"));
    assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"regex":"a|b"}"#);
    let back: ValueMatch = serde_json::from_str(r#"{"regex":"a|b"}"#).unwrap();
    assert_eq!(back, m);
    let ValueMatch::Regex(back) = back else {
        panic!("a regex")
    };
    assert!(!back.is_match(b"xa"), "anchored after a round trip");
    assert_eq!(FullMatch::new("x").unwrap(), FullMatch::new("x").unwrap());
    assert_ne!(
        FullMatch::new("x").unwrap(),
        FullMatch::new("(?:x)").unwrap()
    );
}

#[test]
fn header_names_are_lowercased_on_the_way_in() {
    let c: Condition =
        serde_json::from_str(r#"{"header":"X-Canary","value":{"present":true}}"#).unwrap();
    assert_eq!(c.source, Source::Header("x-canary".into()));
    let s: Source = serde_json::from_str(r#"{"header":"X-User"}"#).unwrap();
    assert_eq!(s, Source::Header("x-user".into()));
    let s: Source = serde_json::from_str(r#"{"cookie":"Session"}"#).unwrap();
    assert_eq!(
        s,
        Source::Cookie("Session".into()),
        "cookie names keep their case"
    );
}

#[test]
fn malformed_json_is_refused_with_a_reason() {
    let err = |json: &str| {
        serde_json::from_str::<Condition>(json)
            .expect_err(json)
            .to_string()
    };
    let bad_regex = err(r#"{"header":"x","value":{"regex":"(unclosed"}}"#);
    assert!(
        bad_regex.contains("invalid regex \"(unclosed\""),
        "{bad_regex}"
    );
    assert!(
        err(r#"{"header":"x","cookie":"y","value":{"present":true}}"#)
            .contains("exactly one of header or cookie")
    );
    assert!(err(r#"{"value":{"present":true}}"#).contains("exactly one of header or cookie"));
    assert!(
        err(r#"{"header":"x","value":{"exact":"a","prefix":"b"}}"#)
            .contains("exactly one of present, exact, prefix or regex")
    );
    assert!(
        err(r#"{"header":"x","value":{}}"#)
            .contains("exactly one of present, exact, prefix or regex")
    );
    assert!(err(r#"{"header":"x","value":{"present":false}}"#).contains("only be true"));
    assert!(err(r#"{"header":"x","value":{"suffix":"b"}}"#).contains("unknown field"));
    assert!(err(r#"{"header":"x"}"#).contains("missing field `value`"));

    let table = |json: &str| {
        serde_json::from_str::<TableSpec>(json)
            .expect_err(json)
            .to_string()
    };
    assert!(table(r#"{"revisions":[],"extra":1}"#).contains("unknown field `extra`"));
    assert!(
        table(r#"{"revisions":[{"name":"v1","weight":1,"instances":["nowhere"]}]}"#)
            .contains("invalid socket address")
    );
    assert!(table(r#"{"revisions":[{"name":"v1","weight":-1}]}"#).contains("invalid value"));
}
