//! Standard JsonLogic operators, with the reference implementation's coercions.

use super::eval;
use crate::logic::{LogicOptions, Rule};
use serde_json::{Value, json};

fn check_all(cases: &[(Value, Value, Value)]) {
    for (rule, data, expected) in cases {
        assert_eq!(
            &eval(rule.clone(), data.clone()),
            expected,
            "{rule} with {data}"
        );
    }
}

fn pure(cases: &[(Value, Value)]) {
    for (rule, expected) in cases {
        assert_eq!(&eval(rule.clone(), json!({})), expected, "{rule}");
    }
}

#[test]
fn truthiness_table() {
    let table = [
        (json!(0), false),
        (json!(-1), true),
        (json!(0.5), true),
        (json!(""), false),
        (json!("0"), true),
        (json!([]), false),
        (json!([0]), true),
        (json!({}), true),
        (Value::Null, false),
        (json!(false), false),
        (json!(true), true),
    ];
    for (value, expected) in table {
        let data = json!({ "v": value });
        assert_eq!(
            eval(json!({ "!!": [{ "var": "v" }] }), data.clone()),
            json!(expected),
            "!! {value}"
        );
        assert_eq!(
            eval(json!({ "!": [{ "var": "v" }] }), data.clone()),
            json!(!expected),
            "! {value}"
        );
        let branch = eval(json!({ "if": [{ "var": "v" }, "yes", "no"] }), data);
        assert_eq!(
            branch,
            json!(if expected { "yes" } else { "no" }),
            "if {value}"
        );
    }
}

#[test]
fn loose_and_strict_equality() {
    pure(&[
        (json!({ "==": [1, "1"] }), json!(true)),
        (json!({ "==": [0, false] }), json!(true)),
        (json!({ "==": ["", 0] }), json!(true)),
        (json!({ "==": [null, 0] }), json!(false)),
        (json!({ "==": [null, null] }), json!(true)),
        (json!({ "==": [[1], "1"] }), json!(true)),
        (json!({ "==": [[1], [1]] }), json!(false)),
        (json!({ "==": ["abc", "abc"] }), json!(true)),
        (json!({ "==": [1.0, 1] }), json!(true)),
        (json!({ "===": [1, "1"] }), json!(false)),
        (json!({ "===": [1, 1.0] }), json!(true)),
        (json!({ "!=": [1, "2"] }), json!(true)),
        (json!({ "!==": [1, "1"] }), json!(true)),
        (json!({ "==": [null] }), json!(true)),
    ]);
}

#[test]
fn relational_comparisons_and_between() {
    pure(&[
        (json!({ "<": [1, 2] }), json!(true)),
        (json!({ "<": ["10", 9] }), json!(false)),
        (json!({ "<": ["10", "9"] }), json!(true)),
        (json!({ "<": [1, 2, 3] }), json!(true)),
        (json!({ "<": [1, 1, 3] }), json!(false)),
        (json!({ "<=": [1, 1, 3] }), json!(true)),
        (json!({ "<=": [1, 4, 3] }), json!(false)),
        (json!({ ">": [2, 1] }), json!(true)),
        (json!({ ">=": [1, 1] }), json!(true)),
        (json!({ ">=": ["a", 1] }), json!(false)),
        (json!({ "<": ["a", 1] }), json!(false)),
        (json!({ "<": [null, 1] }), json!(true)),
    ]);
}

#[test]
fn arithmetic_with_string_coercion() {
    pure(&[
        (json!({ "+": [1, "2", 3.5] }), json!(6.5)),
        (json!({ "+": [] }), json!(0)),
        (json!({ "+": ["3"] }), json!(3)),
        (json!({ "+": ["1px", 1] }), json!(2)),
        (json!({ "+": ["abc", 1] }), Value::Null),
        (json!({ "*": [2, "3"] }), json!(6)),
        (json!({ "*": ["3"] }), json!("3")),
        (json!({ "-": [5, "2"] }), json!(3)),
        (json!({ "-": [2] }), json!(-2)),
        (json!({ "/": [1, 4] }), json!(0.25)),
        (json!({ "/": [1, 0] }), Value::Null),
        (json!({ "%": [7, 3] }), json!(1)),
        (json!({ "%": [-7, 3] }), json!(-1)),
        (json!({ "min": [3, "1", 2] }), json!(1)),
        (json!({ "max": [3, 1, 2] }), json!(3)),
        (json!({ "max": [] }), Value::Null),
        (json!({ "min": [1, "x"] }), Value::Null),
    ]);
}

#[test]
fn string_operators() {
    pure(&[
        (
            json!({ "cat": ["a", 1, null, true, 1.5, [1, [2, null]]] }),
            json!("a1true1.51,2,"),
        ),
        (json!({ "cat": [0.1, 1e21, 1e-7] }), json!("0.11e+211e-7")),
        (json!({ "substr": ["jsonlogic", 4] }), json!("logic")),
        (json!({ "substr": ["jsonlogic", -5] }), json!("logic")),
        (json!({ "substr": ["jsonlogic", 1, 3] }), json!("son")),
        (json!({ "substr": ["jsonlogic", 4, -2] }), json!("log")),
        (json!({ "substr": ["héllo", 1, 1] }), json!("é")),
        (json!({ "substr": [12345, 1, 2] }), json!("23")),
        (json!({ "in": ["Spring", "Springfield"] }), json!(true)),
        (json!({ "in": ["x", "Springfield"] }), json!(false)),
        (json!({ "in": [1, "a1"] }), json!(true)),
        (json!({ "in": ["b", ["a", "b"]] }), json!(true)),
        (json!({ "in": [1, ["1"]] }), json!(false)),
        (json!({ "in": ["a", null] }), json!(false)),
        (
            json!({ "merge": [[1, 2], 3, [[4]]] }),
            json!([1, 2, 3, [4]]),
        ),
        (json!({ "merge": [] }), json!([])),
        (json!({ "log": "x" }), json!("x")),
    ]);
}

#[test]
fn var_paths_defaults_and_whole_data() {
    let data = json!({ "a": { "b": [10, { "c": "deep" }] }, "n": null, "": "empty-key", "x.y": 1 });
    check_all(&[
        (json!({ "var": "a.b.1.c" }), data.clone(), json!("deep")),
        (json!({ "var": ["a.b.0"] }), data.clone(), json!(10)),
        (
            json!({ "var": ["a.b.01", "dflt"] }),
            data.clone(),
            json!("dflt"),
        ),
        (json!({ "var": ["missing", 5] }), data.clone(), json!(5)),
        (json!({ "var": ["n", 5] }), data.clone(), Value::Null),
        (json!({ "var": ["n.deeper", 5] }), data.clone(), json!(5)),
        (json!({ "var": "missing" }), data.clone(), Value::Null),
        (
            json!({ "var": { "cat": ["a", ".b.0"] } }),
            data.clone(),
            json!(10),
        ),
        (
            json!({ "var": ["missing", { "var": "a.b.0" }] }),
            data.clone(),
            json!(10),
        ),
        (
            json!({ "var": "$flagd.flagKey" }),
            json!({ "$flagd": { "flagKey": "f" } }),
            json!("f"),
        ),
        (json!({ "var": "" }), json!({ "k": 1 }), json!({ "k": 1 })),
        (json!({ "var": [] }), json!({ "k": 1 }), json!({ "k": 1 })),
        (json!({ "var": 1 }), json!({ "1": "one" }), json!("one")),
    ]);
}

#[test]
fn if_and_or_return_the_deciding_operand() {
    let data = json!({ "t": "temp" });
    check_all(&[
        (json!({ "if": [] }), data.clone(), Value::Null),
        (json!({ "if": ["only"] }), data.clone(), json!("only")),
        (json!({ "if": [false, 1, 0, 2, 3] }), data.clone(), json!(3)),
        (
            json!({ "if": [false, 1, true, 2, 3] }),
            data.clone(),
            json!(2),
        ),
        (
            json!({ "if": [false, 1, false, 2] }),
            data.clone(),
            Value::Null,
        ),
        (json!({ "?:": [true, 1, 2] }), data.clone(), json!(1)),
        (json!({ "and": [1, "", 2] }), data.clone(), json!("")),
        (
            json!({ "and": [1, { "var": "t" }] }),
            data.clone(),
            json!("temp"),
        ),
        (json!({ "and": [] }), data.clone(), Value::Null),
        (
            json!({ "or": [0, [], { "var": "t" }, 3] }),
            data.clone(),
            json!("temp"),
        ),
        (json!({ "or": [0, false] }), data.clone(), json!(false)),
    ]);
}

#[test]
fn scoped_operators_see_the_item_as_data() {
    let data = json!({ "xs": [1, 2, 3], "people": [{ "age": 20 }, { "age": 15 }] });
    check_all(&[
        (
            json!({ "map": [{ "var": "xs" }, { "*": [{ "var": "" }, 2] }] }),
            data.clone(),
            json!([2, 4, 6]),
        ),
        (
            json!({ "filter": [{ "var": "xs" }, { ">": [{ "var": "" }, 1] }] }),
            data.clone(),
            json!([2, 3]),
        ),
        (
            json!({ "reduce": [{ "var": "xs" }, { "+": [{ "var": "current" }, { "var": "accumulator" }] }, 10] }),
            data.clone(),
            json!(16),
        ),
        (
            json!({ "reduce": [{ "var": "nothing" }, { "var": "current" }, 7] }),
            data.clone(),
            json!(7),
        ),
        (
            json!({ "all": [{ "var": "people" }, { ">=": [{ "var": "age" }, 18] }] }),
            data.clone(),
            json!(false),
        ),
        (json!({ "all": [[], true] }), data.clone(), json!(false)),
        (
            json!({ "some": [{ "var": "people" }, { ">=": [{ "var": "age" }, 18] }] }),
            data.clone(),
            json!(true),
        ),
        (
            json!({ "none": [{ "var": "people" }, { ">": [{ "var": "age" }, 30] }] }),
            data.clone(),
            json!(true),
        ),
        (
            json!({ "map": [{ "var": "absent" }, 1] }),
            data.clone(),
            json!([]),
        ),
        (
            json!({ "map": [[{ "x": 1, "y": 2 }], { "var": "x" }] }),
            data.clone(),
            json!([1]),
        ),
    ]);
}

#[test]
fn missing_and_missing_some() {
    let data = json!({ "a": 1, "e": "", "n": null, "o": { "p": 0 } });
    check_all(&[
        (
            json!({ "missing": ["a", "b", "e", "n", "o.p", "o.q"] }),
            data.clone(),
            json!(["b", "e", "n", "o.q"]),
        ),
        (
            json!({ "missing": [["a", "z"]] }),
            data.clone(),
            json!(["z"]),
        ),
        (
            json!({ "missing": { "merge": [["a"], ["y"]] } }),
            data.clone(),
            json!(["y"]),
        ),
        (
            json!({ "missing_some": [1, ["a", "b"]] }),
            data.clone(),
            json!([]),
        ),
        (
            json!({ "missing_some": [2, ["a", "b", "c"]] }),
            data.clone(),
            json!(["b", "c"]),
        ),
    ]);
}

#[test]
fn non_operation_objects_are_literals() {
    pure(&[
        (json!({}), json!({})),
        (
            json!({ "a": 1, "b": { "var": "x" } }),
            json!({ "a": 1, "b": { "var": "x" } }),
        ),
        (json!([1, { "+": [1, 1] }]), json!([1, 2])),
    ]);
}

fn compile_error(rule: Value) -> (String, String) {
    let error = Rule::compile(&rule, &LogicOptions::default()).expect_err("must not compile");
    assert!(
        error.to_string().starts_with(&error.path),
        "display names the path: {error}"
    );
    (error.path, error.message)
}

#[test]
fn compile_errors_name_operator_and_location() {
    let (path, message) = compile_error(json!({ "if": [true, { "nope": [1] }] }));
    assert_eq!(path, "/if/1/nope");
    assert!(message.contains("unknown operator \"nope\""), "{message}");
    let (path, _) = compile_error(json!({ "if": [{ "fractional": [{ "bogus": 1 }] }] }));
    assert_eq!(path, "/if/0/fractional/0/bogus");
    let (path, _) = compile_error(json!({ "and": { "a/b~": 1 } }));
    assert_eq!(path, "/and/a~1b~0");
    let (path, message) = compile_error(json!({ "map": [[1]] }));
    assert_eq!(
        (path.as_str(), message.contains("[data, logic]")),
        ("/map", true)
    );
    let (path, _) = compile_error(json!({ "or": [{ "reduce": [[1], 1, 2, 3] }] }));
    assert_eq!(path, "/or/0/reduce");
    let (path, _) = compile_error(json!({ "*": [] }));
    assert_eq!(path, "/*");
    let mut deep = json!(1);
    for _ in 0..300 {
        deep = json!({ "!": [deep] });
    }
    assert!(compile_error(deep).1.contains("deeper"));
}

#[test]
fn custom_operators_compile_with_any_arity() {
    for rule in [
        json!({ "sem_ver": [] }),
        json!({ "starts_with": 1 }),
        json!({ "fractional": [] }),
    ] {
        assert_eq!(eval(rule, json!({})), Value::Null);
    }
}

#[test]
fn constant_sub_trees_are_folded_at_compile_time() {
    let rule = Rule::compile(
        &json!({ "if": [{ "==": [1, 1] }, { "cat": ["a", "b"] }, "c"] }),
        &LogicOptions::default(),
    )
    .expect("compiles");
    assert!(
        matches!(rule.root, crate::logic::node::Node::Literal(ref v) if v == "ab"),
        "{:?}",
        rule.root
    );
}
