//! Deterministic CBOR (RFC 8949 §4.2.1) of JSON values: the hashing input of `fractional` v3.
//! Whole numbers become integers, other numbers the shortest exact float, map keys are sorted
//! by their encoded bytes.

use serde_json::Value;

const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;

/// Lower bound of the integer range numbers are normalised into (`-2^63`).
const MIN_INTEGER: f64 = -9_223_372_036_854_775_808.0;
/// Exclusive upper bound of that range (`2^64`).
const INTEGER_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// Encodes `value` deterministically.
pub(super) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(flag) => out.push(if *flag { 0xf5 } else { 0xf4 }),
        Value::Number(number) => {
            if let Some(unsigned) = number.as_u64() {
                write_head(out, UNSIGNED, unsigned);
            } else if let Some(signed) = number.as_i64() {
                write_head(out, NEGATIVE, (-1 - signed).cast_unsigned());
            } else {
                write_float(out, number.as_f64().unwrap_or(f64::NAN));
            }
        }
        Value::String(text) => write_text(out, text),
        Value::Array(items) => {
            write_head(out, ARRAY, items.len() as u64);
            for item in items {
                write_value(out, item);
            }
        }
        Value::Object(map) => {
            let mut entries: Vec<(Vec<u8>, &Value)> = map
                .iter()
                .map(|(key, value)| {
                    let mut encoded_key = Vec::new();
                    write_text(&mut encoded_key, key);
                    (encoded_key, value)
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            write_head(out, MAP, entries.len() as u64);
            for (key, value) in entries {
                out.extend_from_slice(&key);
                write_value(out, value);
            }
        }
    }
}

fn write_text(out: &mut Vec<u8>, text: &str) {
    write_head(out, TEXT, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// A major type with its argument in the shortest form.
fn write_head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    if argument < 24 {
        out.push(major | argument as u8);
    } else if let Ok(byte) = u8::try_from(argument) {
        out.extend_from_slice(&[major | 24, byte]);
    } else if let Ok(short) = u16::try_from(argument) {
        out.push(major | 25);
        out.extend_from_slice(&short.to_be_bytes());
    } else if let Ok(word) = u32::try_from(argument) {
        out.push(major | 26);
        out.extend_from_slice(&word.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&argument.to_be_bytes());
    }
}

fn write_float(out: &mut Vec<u8>, number: f64) {
    if number.fract() == 0.0 && (MIN_INTEGER..INTEGER_LIMIT).contains(&number) {
        if number >= 0.0 {
            write_head(out, UNSIGNED, number as u64);
        } else {
            write_head(out, NEGATIVE, (-1.0 - number) as u64);
        }
    } else if let Some(half) = to_f16_bits(number) {
        out.push(0xf9);
        out.extend_from_slice(&half.to_be_bytes());
    } else if f64::from(number as f32) == number {
        out.push(0xfa);
        out.extend_from_slice(&(number as f32).to_bits().to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&number.to_bits().to_be_bytes());
    }
}

/// The IEEE half-precision bits of `number` when it is exactly representable.
pub(super) fn to_f16_bits(number: f64) -> Option<u16> {
    let bits = number.to_bits();
    let sign = ((bits >> 63) as u16) << 15;
    let raw_exponent = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = bits & ((1 << 52) - 1);
    if raw_exponent == 0 || raw_exponent == 0x7ff {
        return None;
    }
    let exponent = raw_exponent - 1023;
    if exponent > 15 {
        return None;
    }
    if exponent >= -14 {
        if mantissa & ((1 << 42) - 1) != 0 {
            return None;
        }
        let biased = ((exponent + 15) as u16) << 10;
        return Some(sign | biased | (mantissa >> 42) as u16);
    }
    // Subnormal half: the value must be a whole multiple of 2^-24.
    let significand = mantissa | (1 << 52);
    let shift = (28 - exponent) as u32;
    if shift >= 64 || significand & ((1 << shift) - 1) != 0 {
        return None;
    }
    Some(sign | (significand >> shift) as u16)
}
