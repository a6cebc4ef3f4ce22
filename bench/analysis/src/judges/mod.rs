//! The judges compared, each behind the same tick-by-tick interface so that one generated
//! stream feeds them all.

pub(crate) mod argo;
pub(crate) mod kayenta_mwu;
pub(crate) mod oracle;
pub(crate) mod ramp_sequential;

use argo::{ArgoJudge, Measurement, Thresholds};
use kayenta_mwu::KayentaJudge;
use oracle::OracleJudge;
use ramp_sequential::RampJudge;

use crate::scenario::Scenario;
use crate::stream::{Request, TICKS_PER_SECOND};

/// How a judge works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Canary-only thresholds measured every `interval_seconds` (calibrated on A/A runs).
    Argo {
        /// Seconds between measurements, and the window of each.
        interval_seconds: u32,
    },
    /// Kayenta's Mann-Whitney score every minute.
    Kayenta,
    /// Ramp's sequential test, fed every `slice_ticks` ticks.
    Ramp {
        /// Ticks per tally.
        slice_ticks: u32,
    },
    /// The yardstick: a test told both sides' true behaviour (see [`oracle`]).
    Oracle,
}

/// A judge of the line-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JudgeSpec {
    /// Name in the table and the JSON.
    pub(crate) name: &'static str,
    /// How it judges.
    pub(crate) method: Method,
}

/// Ours, in the headline.
pub(crate) const OURS: &str = "ramp_sequential";
/// The anchors the headline compares ours with.
pub(crate) const ANCHORS: [&str; 2] = ["argo_threshold", "kayenta_mwu"];

/// Every judge, in table order.
pub(crate) const LINEUP: [JudgeSpec; 6] = [
    JudgeSpec {
        name: "argo_threshold",
        method: Method::Argo {
            interval_seconds: 60,
        },
    },
    JudgeSpec {
        name: "argo_threshold_10s",
        method: Method::Argo {
            interval_seconds: 10,
        },
    },
    JudgeSpec {
        name: "kayenta_mwu",
        method: Method::Kayenta,
    },
    JudgeSpec {
        name: OURS,
        method: Method::Ramp {
            slice_ticks: TICKS_PER_SECOND,
        },
    },
    JudgeSpec {
        name: "ramp_sequential_100ms",
        method: Method::Ramp { slice_ticks: 1 },
    },
    JudgeSpec {
        name: ORACLE,
        method: Method::Oracle,
    },
];

/// The yardstick's name.
pub(crate) const ORACLE: &str = "oracle_sprt";

/// One judge's state over one run.
#[derive(Debug)]
pub(crate) enum Judge {
    /// See [`argo`].
    Argo(ArgoJudge),
    /// See [`kayenta_mwu`].
    Kayenta(Box<KayentaJudge>),
    /// See [`ramp_sequential`].
    Ramp(Box<RampJudge>),
    /// See [`oracle`].
    Oracle(Box<OracleJudge>),
}

impl Judge {
    /// A fresh judge for `spec` in `scenario`; Argo-style judges fail only once given
    /// `thresholds`; the oracle is held to `false_alarm_rate`.
    pub(crate) fn new(
        spec: &JudgeSpec,
        thresholds: Option<Thresholds>,
        scenario: &Scenario,
        false_alarm_rate: f64,
    ) -> Judge {
        match spec.method {
            Method::Argo { interval_seconds } => {
                Judge::Argo(ArgoJudge::new(interval_seconds, thresholds))
            }
            Method::Kayenta => Judge::Kayenta(Box::new(KayentaJudge::new())),
            Method::Ramp { slice_ticks } => Judge::Ramp(Box::new(RampJudge::new(slice_ticks))),
            Method::Oracle => Judge::Oracle(Box::new(OracleJudge::new(scenario, false_alarm_rate))),
        }
    }

    /// Takes tick `tick`'s requests; true when the judge alarms at the tick's end.
    pub(crate) fn observe_tick(&mut self, tick: u32, requests: &[Request]) -> bool {
        match self {
            Judge::Argo(judge) => judge.observe_tick(tick, requests),
            Judge::Kayenta(judge) => judge.observe_tick(tick, requests),
            Judge::Ramp(judge) => judge.observe_tick(tick, requests),
            Judge::Oracle(judge) => judge.observe_tick(tick, requests),
        }
    }

    /// The threshold measurements taken, for calibration (empty for other judges).
    pub(crate) fn into_measurements(self) -> Vec<Measurement> {
        match self {
            Judge::Argo(judge) => judge.into_measurements(),
            Judge::Kayenta(_) | Judge::Ramp(_) | Judge::Oracle(_) => Vec::new(),
        }
    }
}
