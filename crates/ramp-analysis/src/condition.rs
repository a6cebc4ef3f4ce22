//! Success and failure conditions: CEL expressions over a measurement's `result`, compiled
//! once when a run starts and evaluated for every measurement; and the `{{args.NAME}}`
//! substitution that fills template arguments into them.
//!
//! # How `result` looks to a condition
//!
//! JSON numbers become CEL doubles, integers included, so `result < 0.05` and `result > 3`
//! both work whatever the provider returned (CEL compares doubles with integer literals;
//! arithmetic does not mix them, so write `result * 100.0`, not `result * 100`). Strings,
//! booleans, null, lists and maps keep their kind; lists index as `result[0]`, maps as
//! `result.key` or `result["key"]`.
//!
//! Besides CEL's standard functions, conditions may call `len(x)` (the same as `size(x)`),
//! `isNaN(x)` and `isInf(x)`.
//!
//! # NaN
//!
//! JSON has no NaN, so providers hand a NaN measurement over as `null`; `isNaN(result)` is
//! true for it (and for a NaN computed inside the expression). An ordering comparison
//! (`<`, `<=`, `>`, `>=`) that involves null or NaN makes the whole condition false,
//! as NaN comparisons are false in Argo Rollouts: `result < 0.05` fails a NaN measurement
//! when it is the success condition and does not trip it when it is the failure condition.
//! The rule applies to the condition as a whole, so a negated comparison is false too; to
//! decide NaN explicitly, test it first: `isNaN(result) || result < 0.05` (CEL's `||`
//! evaluates its left side first). `==` with NaN is false and `!=` true.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use cel_interpreter::objects::{Key, Map};
use cel_interpreter::{Context, ExecutionError, FunctionContext, Program, Value};

/// The variable a condition reads.
const RESULT: &str = "result";

/// Functions a condition may call: CEL's standard ones (as this interpreter provides them
/// without its optional features) and Ramp's additions. Anything else is refused at compile
/// time rather than at the first measurement.
const FUNCTIONS: &[&str] = &[
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    "len",
    "isNaN",
    "isInf",
];

/// The function registry shared by every evaluation; each evaluation binds `result` in a
/// scope of its own on top of it.
static FUNCTION_CONTEXT: LazyLock<Context<'static>> = LazyLock::new(|| {
    let mut context = Context::default();
    context.add_function("len", cel_interpreter::functions::size);
    context.add_function("isNaN", is_nan);
    context.add_function("isInf", is_inf);
    context
});

/// A CEL condition over `result`, compiled once.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
}

impl Condition {
    /// Compiles `source`; the error names the syntax error or the unknown function.
    pub fn compile(source: &str) -> Result<Condition, String> {
        if source.trim().is_empty() {
            return Err("condition is empty".to_string());
        }
        // The parser panics on some malformed input instead of reporting it.
        let program = catch_unwind(|| Program::compile(source))
            .map_err(|_| format!("condition `{source}` does not parse"))?
            .map_err(|e| format!("condition `{source}` does not parse: {e}"))?;
        let references = program.references();
        if let Some(unknown) = references
            .functions()
            .into_iter()
            .find(|name| !is_operator(name) && !FUNCTIONS.contains(name))
        {
            return Err(format!(
                "condition `{source}` calls unknown function `{unknown}`"
            ));
        }
        Ok(Condition {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with `result` bound to the measurement (see the [module docs](self) for how
    /// JSON values and NaN appear). Must yield a bool, else the error names the type it got.
    pub fn evaluate(&self, result: &serde_json::Value) -> Result<bool, String> {
        let mut scope = FUNCTION_CONTEXT.new_inner_scope();
        scope.add_variable_from_value(RESULT, to_cel(result));
        // The interpreter panics on a few expressions it does not support (struct literals,
        // macros over a non-collection); a condition must fail as a value instead.
        let evaluated = catch_unwind(AssertUnwindSafe(|| self.program.execute(&scope)));
        match evaluated {
            Ok(Ok(Value::Bool(holds))) => Ok(holds),
            Ok(Ok(other)) => Err(format!(
                "condition `{}` gave a {}, not a bool",
                self.source,
                type_name(&other)
            )),
            Ok(Err(ExecutionError::ValuesNotComparable(left, right)))
                if is_missing_number(&left) || is_missing_number(&right) =>
            {
                Ok(false)
            }
            Ok(Err(e)) => Err(format!("condition `{}`: {e}", self.source)),
            Err(_) => Err(format!(
                "condition `{}` uses an expression that cannot be evaluated on {result}",
                self.source
            )),
        }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// Two conditions are the same when they are written the same.
impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Replaces `{{args.NAME}}` (spaces inside the braces allowed) with argument values; an
/// unknown name is an error naming it. Other `{{…}}` text is left as it is.
pub fn substitute(text: &str, args: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let inner = after_open[..close].trim();
        match inner.strip_prefix("args.") {
            Some(name) => match args.get(name) {
                Some(value) => out.push_str(value),
                None => return Err(format!("unknown argument `{name}` in `{text}`")),
            },
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after_open[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Operators and parser-internal calls are spelled with `_` or `@` (`_<_`, `!_`, `@in`).
fn is_operator(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('@') || name.ends_with('_')
}

/// A JSON value as CEL sees it: every number a double.
fn to_cel(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, Value::Float),
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(to_cel).collect()))
        }
        serde_json::Value::Object(fields) => {
            let map: HashMap<Key, Value> = fields
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), to_cel(v)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// Null (a NaN measurement) or a NaN computed in the expression.
fn is_missing_number(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Float(x) => x.is_nan(),
        _ => false,
    }
}

/// `isNaN(x)`: true for NaN and for null, which is how a NaN measurement arrives.
fn is_nan(ftx: &FunctionContext, value: Value) -> Result<bool, ExecutionError> {
    match value {
        Value::Null => Ok(true),
        Value::Float(x) => Ok(x.is_nan()),
        Value::Int(_) | Value::UInt(_) => Ok(false),
        other => Err(ftx.error(format!("expects a number, got a {}", type_name(&other)))),
    }
}

/// `isInf(x)`: true for ±infinity.
fn is_inf(ftx: &FunctionContext, value: Value) -> Result<bool, ExecutionError> {
    match value {
        Value::Float(x) => Ok(x.is_infinite()),
        Value::Null | Value::Int(_) | Value::UInt(_) => Ok(false),
        other => Err(ftx.error(format!("expects a number, got a {}", type_name(&other)))),
    }
}

/// CEL's name for a value's type.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        // Time types exist only when the interpreter's `chrono` feature is on.
        #[allow(unreachable_patterns)]
        _ => "time value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn eval(source: &str, result: serde_json::Value) -> Result<bool, String> {
        Condition::compile(source)?.evaluate(&result)
    }

    /// Each condition on its `result` gives the wanted verdict.
    fn assert_cases(cases: &[(&str, serde_json::Value, bool)]) {
        for (source, result, want) in cases {
            assert_eq!(
                eval(source, result.clone()),
                Ok(*want),
                "{source} on {result}"
            );
        }
    }

    #[test]
    fn numbers_compare_whether_integer_or_double() {
        let cases = [
            ("result < 0.05", json!(0.01), true),
            ("result < 0.05", json!(0.2), false),
            ("result < 0.05", json!(0), true),
            ("result > 3", json!(4), true),
            ("result > 3", json!(3.5), true),
            ("result > 3", json!(3), false),
            ("result >= 3", json!(3), true),
            ("result == 3", json!(3), true),
            ("result == 3", json!(3.0), true),
            ("result == 3.0", json!(3), true),
            ("result != 2", json!(3), true),
            ("result <= 0.95", json!(1), false),
            ("result * 100.0 > 5.0", json!(0.06), true),
        ];
        assert_cases(&cases);
    }

    #[test]
    fn lists_maps_strings_and_bools() {
        let cases = [
            ("result[0] >= 0.95", json!([0.97, 0.5]), true),
            ("result[1] >= 0.95", json!([0.97, 0.5]), false),
            ("len(result) > 0", json!([1]), true),
            ("len(result) > 0", json!([]), false),
            ("size(result) == 2", json!([1, 2]), true),
            ("result.all(x, x < 1)", json!([0.1, 0.2]), true),
            ("result.exists(x, x > 1)", json!([0.1, 0.2]), false),
            ("result.p99 < 0.5", json!({"p99": 0.3}), true),
            ("result[\"p99\"] < 0.5", json!({"p99": 0.7}), false),
            ("result == true", json!(true), true),
            ("result == true", json!(false), false),
            ("result", json!(true), true),
            ("result == 'ok'", json!("ok"), true),
            ("result.startsWith('o')", json!("ok"), true),
            ("result == null", json!(null), true),
        ];
        assert_cases(&cases);
    }

    #[test]
    fn nan_fails_comparisons_and_is_detected() {
        let nan = json!(null);
        let cases = [
            ("result < 0.05", false),
            ("result >= 0.95", false),
            ("result > 3", false),
            ("!(result < 0.05)", false),
            ("isNaN(result)", true),
            ("isNaN(result) || result >= 0.95", true),
            ("result == 1.0", false),
            ("result != 1.0", true),
            ("isInf(result)", false),
        ];
        for (source, want) in cases {
            assert_eq!(eval(source, nan.clone()), Ok(want), "{source} on NaN");
        }
        assert_eq!(eval("result[0] < 1.0", json!([null])), Ok(false));
        assert_eq!(eval("isNaN(result[0])", json!([null, 1])), Ok(true));
        assert_eq!(eval("isNaN(result[1])", json!([null, 1])), Ok(false));
        assert_eq!(eval("0.0 / 0.0 < result", json!(1)), Ok(false));
        assert_eq!(eval("isNaN(0.0 / 0.0)", json!(1)), Ok(true));
        assert_eq!(eval("isInf(1.0 / 0.0)", json!(1)), Ok(true));
        assert_eq!(eval("isNaN(result)", json!(0.5)), Ok(false));
    }

    #[test]
    fn a_condition_must_yield_a_bool() {
        let err = eval("result + 1.0", json!(1)).unwrap_err();
        assert!(err.contains("gave a double"), "{err}");
        let err = eval("result", json!("yes")).unwrap_err();
        assert!(err.contains("gave a string"), "{err}");
        let err = eval("result", json!([true])).unwrap_err();
        assert!(err.contains("gave a list"), "{err}");
    }

    #[test]
    fn evaluation_errors_are_values() {
        let err = eval("result < 0.05", json!("high")).unwrap_err();
        assert!(err.contains("result < 0.05"), "{err}");
        let err = eval("reslt < 0.05", json!(0.01)).unwrap_err();
        assert!(err.contains("reslt"), "{err}");
        let err = eval("isNaN(result)", json!("x")).unwrap_err();
        assert!(err.contains("expects a number"), "{err}");
        // The interpreter cannot run a macro over a number; that must not panic.
        assert!(eval("result.all(x, x > 1)", json!(3)).is_err());
    }

    #[test]
    fn compile_errors_name_the_problem() {
        for malformed in [
            "result <",
            "result < 0.05)",
            "(result",
            "result <> 1",
            "'open",
        ] {
            let err = Condition::compile(malformed).unwrap_err();
            assert!(err.contains("does not parse"), "{malformed}: {err}");
            assert!(err.contains(malformed), "{malformed}: {err}");
        }
        let err = Condition::compile("   ").unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = Condition::compile("median(result) < 1.0").unwrap_err();
        assert!(err.contains("unknown function `median`"), "{err}");
        let ok = Condition::compile("result.all(x, x in [1.0, 2.0]) && len(result) > 0");
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn source_and_equality() {
        let a = Condition::compile("result < 1.0").unwrap();
        assert_eq!(a.source(), "result < 1.0");
        assert_eq!(a.clone(), a);
        assert_ne!(a, Condition::compile("result < 2.0").unwrap());
        assert!(format!("{a:?}").contains("result < 1.0"));
    }

    #[test]
    fn substitute_fills_arguments() {
        let args = BTreeMap::from([
            ("service".to_string(), "checkout".to_string()),
            ("threshold".to_string(), "0.05".to_string()),
        ]);
        let cases = [
            ("result < {{args.threshold}}", "result < 0.05"),
            ("result < {{ args.threshold }}", "result < 0.05"),
            (
                "rate(x{svc=\"{{args.service}}\"}[1m]) > {{args.threshold}}",
                "rate(x{svc=\"checkout\"}[1m]) > 0.05",
            ),
            ("{{args.service}}{{args.service}}", "checkoutcheckout"),
            ("no placeholders", "no placeholders"),
            ("{{metric.name}} stays", "{{metric.name}} stays"),
            ("unclosed {{args.service", "unclosed {{args.service"),
            ("", ""),
        ];
        for (text, want) in cases {
            assert_eq!(substitute(text, &args).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn substitute_names_a_missing_argument() {
        let args = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let err = substitute("{{args.a}} and {{ args.missing }}", &args).unwrap_err();
        assert!(err.contains("`missing`"), "{err}");
    }

    proptest! {
        #[test]
        fn numeric_comparisons_match_f64(x in -1.0e6f64..1.0e6, t in -1.0e6f64..1.0e6) {
            let less = Condition::compile(&format!("result < {t:?}")).unwrap();
            prop_assert_eq!(less.evaluate(&json!(x)), Ok(x < t));
            let ge = Condition::compile(&format!("result >= {}", t.round() as i64)).unwrap();
            prop_assert_eq!(ge.evaluate(&json!(x)), Ok(x >= t.round()));
        }

        #[test]
        fn substitute_leaves_text_without_placeholders(text in "[^{}]*") {
            prop_assert_eq!(substitute(&text, &BTreeMap::new()), Ok(text));
        }
    }
}
