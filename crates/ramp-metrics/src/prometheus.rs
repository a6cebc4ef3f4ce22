//! A minimal writer for the Prometheus text exposition format, version 0.0.4
//! (`Content-Type: text/plain; version=0.0.4`).
//!
//! Hand-written rather than pulled from a client library: the router already holds its
//! metrics as snapshots, so all that is needed is correct escaping and number formatting.

use std::fmt::{self, Write as _};

use crate::histogram::HistogramSnapshot;

/// The `# TYPE` of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Monotonically increasing count.
    Counter,
    /// Value that can go up and down.
    Gauge,
    /// `_bucket` / `_sum` / `_count` series.
    Histogram,
}

impl MetricKind {
    /// The keyword used on the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// A sample value. Integers are written exactly as integers; floats use the shortest
/// representation that parses back to the same `f64`, with `+Inf`, `-Inf` and `NaN` for
/// the special values. Integral floats are written without a fraction (`1`, not `1.0`),
/// the same as integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SampleValue {
    /// A counter or non-negative gauge.
    Unsigned(u64),
    /// A gauge that may be negative.
    Signed(i64),
    /// Anything else.
    Float(f64),
}

impl From<u64> for SampleValue {
    fn from(v: u64) -> Self {
        SampleValue::Unsigned(v)
    }
}

impl From<i64> for SampleValue {
    fn from(v: i64) -> Self {
        SampleValue::Signed(v)
    }
}

impl From<f64> for SampleValue {
    fn from(v: f64) -> Self {
        SampleValue::Float(v)
    }
}

impl fmt::Display for SampleValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SampleValue::Unsigned(v) => write!(f, "{v}"),
            SampleValue::Signed(v) => write!(f, "{v}"),
            SampleValue::Float(v) if v.is_nan() => f.write_str("NaN"),
            SampleValue::Float(v) if v.is_infinite() => {
                f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            // Also turns -0 into 0.
            SampleValue::Float(0.0) => f.write_str("0"),
            // Plain decimals where they are short, exponent form (e.g. `1e-9`, `2.5e20`)
            // where `{}` would print long runs of zeros. Both are valid Go `ParseFloat`
            // input, which is what Prometheus uses.
            SampleValue::Float(v) if (1e-6..1e15).contains(&v.abs()) => write!(f, "{v}"),
            SampleValue::Float(v) => write!(f, "{v:e}"),
        }
    }
}

/// Appends text-format metric families to a `String`.
///
/// Metric and label names are written as given and must be valid Prometheus names;
/// label values and help text are escaped. All samples of a family must be written
/// right after its [`family`](Self::family) call (the format requires families to be
/// contiguous).
#[derive(Debug)]
pub struct PromWriter<'a> {
    out: &'a mut String,
    declared: Vec<String>,
}

impl<'a> PromWriter<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut String) -> Self {
        Self {
            out,
            declared: Vec::new(),
        }
    }

    /// Writes the `# HELP` and `# TYPE` lines of family `name`, once: later calls with a
    /// name already declared by this writer write nothing.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricKind) {
        if self.declared.iter().any(|d| d == name) {
            return;
        }
        self.declared.push(name.to_owned());
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    /// Writes one sample line: `name{label="value",...} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<SampleValue>) {
        self.line(name, "", labels, None, value.into());
    }

    /// Writes the series of a histogram: cumulative `name_bucket` lines for every classic
    /// bound plus `le="+Inf"`, then `name_sum` (in seconds) and `name_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        histogram: &HistogramSnapshot,
    ) {
        let mut le = String::new();
        for (bound, cumulative) in histogram.prometheus_buckets() {
            le.clear();
            push_display(&mut le, SampleValue::Float(bound));
            self.line(
                name,
                "_bucket",
                labels,
                Some(("le", &le)),
                cumulative.into(),
            );
        }
        let sum_seconds = histogram.sum_micros() as f64 / 1e6;
        self.line(name, "_sum", labels, None, sum_seconds.into());
        self.line(name, "_count", labels, None, histogram.count().into());
    }

    fn line(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        extra: Option<(&str, &str)>,
        value: SampleValue,
    ) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        let mut all = labels.iter().copied().chain(extra).peekable();
        if all.peek().is_some() {
            self.out.push('{');
            for (i, (key, val)) in all.enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(key);
                self.out.push_str("=\"");
                push_escaped_label_value(self.out, val);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_display(self.out, value);
        self.out.push('\n');
    }
}

/// Escapes a label value as the format requires: `\` → `\\`, `"` → `\"`, newline → `\n`.
fn push_escaped_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_display(out: &mut String, value: impl fmt::Display) {
    // Formatting into a String cannot fail.
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut PromWriter<'_>)) -> String {
        let mut out = String::new();
        f(&mut PromWriter::new(&mut out));
        out
    }

    #[test]
    fn histogram_with_labels_puts_le_last() {
        let mut h = HistogramSnapshot::new();
        for us in [400, 1_000, 3_000, 2_000_000] {
            h.record_micros(us);
        }
        let out = render(|w| {
            w.family("lat_seconds", "Latency.", MetricKind::Histogram);
            w.histogram("lat_seconds", &[("revision", "v2"), ("path", "a\"b")], &h);
            w.histogram(
                "lat_seconds",
                &[("revision", "v3")],
                &HistogramSnapshot::new(),
            );
        });
        let expected = r#"# HELP lat_seconds Latency.
# TYPE lat_seconds histogram
lat_seconds_bucket{revision="v2",path="a\"b",le="0.0005"} 1
lat_seconds_bucket{revision="v2",path="a\"b",le="0.001"} 2
lat_seconds_bucket{revision="v2",path="a\"b",le="0.0025"} 2
lat_seconds_bucket{revision="v2",path="a\"b",le="0.005"} 3
lat_seconds_bucket{revision="v2",path="a\"b",le="0.01"} 3
lat_seconds_bucket{revision="v2",path="a\"b",le="0.025"} 3
lat_seconds_bucket{revision="v2",path="a\"b",le="0.05"} 3
lat_seconds_bucket{revision="v2",path="a\"b",le="0.1"} 3
lat_seconds_bucket{revision="v2",path="a\"b",le="0.25"} 3
lat_seconds_bucket{revision="v2",path="a\"b",le="0.5"} 3
lat_seconds_bucket{revision="v2",path="a\"b",le="1"} 3
lat_seconds_bucket{revision="v2",path="a\"b",le="2.5"} 4
lat_seconds_bucket{revision="v2",path="a\"b",le="5"} 4
lat_seconds_bucket{revision="v2",path="a\"b",le="10"} 4
lat_seconds_bucket{revision="v2",path="a\"b",le="+Inf"} 4
lat_seconds_sum{revision="v2",path="a\"b"} 2.0044
lat_seconds_count{revision="v2",path="a\"b"} 4
lat_seconds_bucket{revision="v3",le="0.0005"} 0
lat_seconds_bucket{revision="v3",le="0.001"} 0
lat_seconds_bucket{revision="v3",le="0.0025"} 0
lat_seconds_bucket{revision="v3",le="0.005"} 0
lat_seconds_bucket{revision="v3",le="0.01"} 0
lat_seconds_bucket{revision="v3",le="0.025"} 0
lat_seconds_bucket{revision="v3",le="0.05"} 0
lat_seconds_bucket{revision="v3",le="0.1"} 0
lat_seconds_bucket{revision="v3",le="0.25"} 0
lat_seconds_bucket{revision="v3",le="0.5"} 0
lat_seconds_bucket{revision="v3",le="1"} 0
lat_seconds_bucket{revision="v3",le="2.5"} 0
lat_seconds_bucket{revision="v3",le="5"} 0
lat_seconds_bucket{revision="v3",le="10"} 0
lat_seconds_bucket{revision="v3",le="+Inf"} 0
lat_seconds_sum{revision="v3"} 0
lat_seconds_count{revision="v3"} 0
"#;
        assert_eq!(out, expected);
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let out = render(|w| {
            w.family("m", "a \\ b\nc \"q\"", MetricKind::Gauge);
            w.sample("m", &[("path", "a\"b\\c\nd")], 1u64);
        });
        assert_eq!(
            out,
            "# HELP m a \\\\ b\\nc \"q\"\n# TYPE m gauge\nm{path=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
    }

    #[test]
    fn family_is_declared_once_per_writer() {
        let out = render(|w| {
            w.family("x_total", "X.", MetricKind::Counter);
            w.sample("x_total", &[], 1u64);
            w.family("x_total", "X.", MetricKind::Counter);
            w.sample("x_total", &[("a", "b")], 2u64);
        });
        assert_eq!(
            out,
            "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\nx_total{a=\"b\"} 2\n"
        );
    }

    #[test]
    fn numbers_are_formatted_validly() {
        let cases: [(SampleValue, &str); 14] = [
            (0u64.into(), "0"),
            (u64::MAX.into(), "18446744073709551615"),
            ((-3i64).into(), "-3"),
            (1.0.into(), "1"),
            (0.5.into(), "0.5"),
            (0.0005.into(), "0.0005"),
            ((-0.0).into(), "0"),
            (2.0044.into(), "2.0044"),
            (1e-9.into(), "1e-9"),
            (2.5e20.into(), "2.5e20"),
            (f64::INFINITY.into(), "+Inf"),
            (f64::NEG_INFINITY.into(), "-Inf"),
            (f64::NAN.into(), "NaN"),
            ((-1.5).into(), "-1.5"),
        ];
        for (value, text) in cases {
            assert_eq!(value.to_string(), text, "{value:?}");
            // Everything except the special values round-trips through Rust's parser,
            // which accepts the same decimal and exponent syntax as Go's ParseFloat.
            if let SampleValue::Float(f) = value
                && f.is_finite()
            {
                assert_eq!(text.parse::<f64>().ok(), Some(f));
            }
        }
    }

    #[test]
    fn histogram_series_layout() {
        let mut h = HistogramSnapshot::new();
        h.record_micros(250_000);
        h.record_micros(20_000_000);
        let out = render(|w| w.histogram("lat_seconds", &[], &h));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 15 + 2);
        assert_eq!(lines[0], "lat_seconds_bucket{le=\"0.0005\"} 0");
        assert_eq!(lines[8], "lat_seconds_bucket{le=\"0.25\"} 1");
        assert_eq!(lines[13], "lat_seconds_bucket{le=\"10\"} 1");
        assert_eq!(lines[14], "lat_seconds_bucket{le=\"+Inf\"} 2");
        assert_eq!(lines[15], "lat_seconds_sum 20.25");
        assert_eq!(lines[16], "lat_seconds_count 2");
    }
}
