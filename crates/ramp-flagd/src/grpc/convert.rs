//! `google.protobuf.Struct` to and from JSON objects.
//!
//! Protobuf numbers are doubles, so a context value sent as `30` arrives as `30.0`. Whole numbers
//! within the range a double holds exactly come back as JSON integers: rules compare and
//! concatenate them the way the client wrote them (`"30"`, not `"30.0"`). Non-finite doubles
//! have no JSON form and become null.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct};
use serde_json::{Map, Number, Value};

/// 2^53: every integer of smaller magnitude is exact in a double.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// A request's `Struct` as a JSON object (absent means empty).
pub(super) fn object_from_struct(value: Option<Struct>) -> Map<String, Value> {
    value.map_or_else(Map::new, |value| {
        value
            .fields
            .into_iter()
            .map(|(key, value)| (key, json_from_value(value)))
            .collect()
    })
}

/// A JSON object as a `Struct`, the shape flagd's RPCs carry contexts in.
pub fn struct_from_object(object: &Map<String, Value>) -> Struct {
    Struct {
        fields: object
            .iter()
            .map(|(key, value)| (key.clone(), value_from_json(value)))
            .collect(),
    }
}

fn json_from_value(value: prost_types::Value) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(flag)) => Value::Bool(flag),
        Some(Kind::NumberValue(number)) => json_number(number),
        Some(Kind::StringValue(text)) => Value::String(text),
        Some(Kind::StructValue(object)) => Value::Object(object_from_struct(Some(object))),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(json_from_value).collect())
        }
    }
}

fn json_number(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < EXACT_INTEGER_LIMIT {
        // In range and whole, so the conversion is exact.
        return Value::from(number as i64);
    }
    Number::from_f64(number).map_or(Value::Null, Value::Number)
}

/// A JSON value as a protobuf `Value`; numbers become doubles, as the wire type requires.
pub(super) fn value_from_json(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(flag) => Kind::BoolValue(*flag),
        Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or(f64::NAN)),
        Value::String(text) => Kind::StringValue(text.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(value_from_json).collect(),
        }),
        Value::Object(object) => Kind::StructValue(struct_from_object(object)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn round_trip(object: &Map<String, Value>) -> Map<String, Value> {
        object_from_struct(Some(struct_from_object(object)))
    }

    #[test]
    fn nested_values_survive_and_whole_numbers_stay_integers() {
        let object = json!({
            "targetingKey": "user-1",
            "age": 30,
            "score": 2.5,
            "beta": true,
            "missing": null,
            "tags": ["a", 1, {"deep": [false]}],
            "org": {"id": -7, "plan": "pro"}
        });
        let object = object.as_object().unwrap();
        assert_eq!(&round_trip(object), object);
    }

    #[test]
    fn absent_structs_and_unset_kinds_are_empty_or_null() {
        assert!(object_from_struct(None).is_empty());
        let unset = Struct {
            fields: [("x".to_owned(), prost_types::Value { kind: None })].into(),
        };
        assert_eq!(object_from_struct(Some(unset))["x"], Value::Null);
        assert_eq!(json_number(f64::INFINITY), Value::Null);
        assert_eq!(json_number(1e300), json!(1e300));
    }

    proptest! {
        /// Integers a double holds exactly, and finite doubles, come back unchanged.
        #[test]
        fn numbers_round_trip(
            whole in -(1i64 << 53) + 1..(1i64 << 53),
            fraction in proptest::num::f64::NORMAL,
        ) {
            let object = json!({"whole": whole, "fraction": fraction});
            let object = object.as_object().unwrap();
            let back = round_trip(object);
            prop_assert_eq!(&back["whole"], &json!(whole));
            let fraction_back = back["fraction"].as_f64().unwrap();
            prop_assert_eq!(fraction_back, fraction);
        }
    }
}
