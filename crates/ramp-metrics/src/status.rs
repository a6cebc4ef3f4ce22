//! HTTP status classes, the granularity at which request outcomes are counted.
//!
//! Per-class counters (rather than per-code) keep the metric's cardinality fixed at five
//! series per revision while still separating the outcome the analysis engine cares about
//! most: server errors.

use serde::{Deserialize, Serialize};

/// The class of an HTTP status code (RFC 9110 §15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StatusClass {
    /// 1xx
    Informational,
    /// 2xx
    Success,
    /// 3xx
    Redirection,
    /// 4xx
    ClientError,
    /// 5xx
    ServerError,
}

impl StatusClass {
    /// Every class, in code order; `ALL[c.index()] == c`.
    pub const ALL: [StatusClass; 5] = [
        StatusClass::Informational,
        StatusClass::Success,
        StatusClass::Redirection,
        StatusClass::ClientError,
        StatusClass::ServerError,
    ];

    /// The class of `code`, or `None` outside `100..=599` (such codes are invalid HTTP).
    pub const fn from_code(code: u16) -> Option<StatusClass> {
        match code {
            100..=199 => Some(StatusClass::Informational),
            200..=299 => Some(StatusClass::Success),
            300..=399 => Some(StatusClass::Redirection),
            400..=499 => Some(StatusClass::ClientError),
            500..=599 => Some(StatusClass::ServerError),
            _ => None,
        }
    }

    /// The Prometheus label value: `"1xx"` ..= `"5xx"`.
    pub const fn label(self) -> &'static str {
        match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
        }
    }

    /// Position in [`StatusClass::ALL`] (0 for 1xx .. 4 for 5xx), for array-indexed counters.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes_at_the_boundaries() {
        assert_eq!(StatusClass::from_code(0), None);
        assert_eq!(StatusClass::from_code(99), None);
        assert_eq!(
            StatusClass::from_code(100),
            Some(StatusClass::Informational)
        );
        assert_eq!(
            StatusClass::from_code(199),
            Some(StatusClass::Informational)
        );
        assert_eq!(StatusClass::from_code(200), Some(StatusClass::Success));
        assert_eq!(StatusClass::from_code(304), Some(StatusClass::Redirection));
        assert_eq!(StatusClass::from_code(499), Some(StatusClass::ClientError));
        assert_eq!(StatusClass::from_code(500), Some(StatusClass::ServerError));
        assert_eq!(StatusClass::from_code(599), Some(StatusClass::ServerError));
        assert_eq!(StatusClass::from_code(600), None);
        assert_eq!(StatusClass::from_code(u16::MAX), None);
    }

    #[test]
    fn all_index_and_label_agree() {
        let labels: Vec<&str> = StatusClass::ALL.iter().map(|c| c.label()).collect();
        assert_eq!(labels, ["1xx", "2xx", "3xx", "4xx", "5xx"]);
        for (i, class) in StatusClass::ALL.into_iter().enumerate() {
            assert_eq!(class.index(), i);
            let code = 100 * (i as u16 + 1);
            assert_eq!(StatusClass::from_code(code), Some(class));
        }
    }
}
