//! The simulated situations: how much traffic there is, how often each side fails and how
//! slow it is, possibly changing over time. Every scenario is either A/A-like (a judge that
//! alarms is wrong) or bad (a judge should alarm, the sooner the better).

/// Median latency of a healthy revision.
pub(crate) const BASE_MEDIAN_SECONDS: f64 = 0.050;
/// Spread of log-latency.
pub(crate) const LATENCY_SIGMA: f64 = 0.5;
/// Error rate of a healthy revision.
const BASE_ERROR_RATE: f64 = 0.01;
/// Period of the shared drift.
const DRIFT_PERIOD_SECONDS: f64 = 600.0;
/// Low traffic, in requests per second.
const LOW_RATE: f64 = 5.0;

/// Whether alarming is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Canary as good as baseline: an alarm is a false alarm.
    AaLike,
    /// Canary worse than baseline: an alarm is a detection.
    Bad,
}

/// How one side's error rate and median latency evolve over the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Behaviour {
    /// Error rate at time 0.
    pub(crate) error_rate: f64,
    /// Added to the error rate per second elapsed (a leak).
    pub(crate) error_slope_per_s: f64,
    /// Median latency in seconds at time 0.
    pub(crate) median_seconds: f64,
}

impl Behaviour {
    const fn healthy() -> Behaviour {
        Behaviour {
            error_rate: BASE_ERROR_RATE,
            error_slope_per_s: 0.0,
            median_seconds: BASE_MEDIAN_SECONDS,
        }
    }

    const fn with_errors(self, error_rate: f64) -> Behaviour {
        Behaviour { error_rate, ..self }
    }

    const fn with_median(self, median_seconds: f64) -> Behaviour {
        Behaviour {
            median_seconds,
            ..self
        }
    }
}

/// One simulated situation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scenario {
    /// Name in the table and the JSON.
    pub(crate) name: &'static str,
    /// What an alarm means.
    pub(crate) kind: Kind,
    /// Total requests per second (both sides); `None` = the benchmark's `--rate`.
    pub(crate) rate: Option<f64>,
    /// The baseline.
    pub(crate) baseline: Behaviour,
    /// The canary.
    pub(crate) canary: Behaviour,
    /// Both sides' error rate x (1 + 0.5 sin) and median x (1 + 0.3 sin), 10-minute period.
    pub(crate) shared_drift: bool,
}

/// Amplitudes of the shared drift.
const DRIFT_ERROR_AMPLITUDE: f64 = 0.5;
const DRIFT_LATENCY_AMPLITUDE: f64 = 0.3;

impl Scenario {
    /// Traffic of this scenario given the benchmark's default rate.
    pub(crate) fn rate_or(&self, default_rate: f64) -> f64 {
        self.rate.unwrap_or(default_rate)
    }

    /// `(error rate, median latency)` of a side at `t` seconds.
    pub(crate) fn state_at(&self, side: &Behaviour, t: f64) -> (f64, f64) {
        let mut error_rate = side.error_rate + side.error_slope_per_s * t;
        let mut median = side.median_seconds;
        if self.shared_drift {
            let wave = (std::f64::consts::TAU * t / DRIFT_PERIOD_SECONDS).sin();
            error_rate *= 1.0 + DRIFT_ERROR_AMPLITUDE * wave;
            median *= 1.0 + DRIFT_LATENCY_AMPLITUDE * wave;
        }
        (error_rate.clamp(0.0, 1.0), median)
    }

    /// A stable number for seeding: the FNV-1a hash of the name, so that adding or reordering
    /// scenarios leaves every other scenario's streams unchanged.
    pub(crate) fn seed_key(&self) -> u64 {
        self.name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

const fn aa_like(name: &'static str, rate: Option<f64>, shared_drift: bool) -> Scenario {
    Scenario {
        name,
        kind: Kind::AaLike,
        rate,
        baseline: Behaviour::healthy(),
        canary: Behaviour::healthy(),
        shared_drift,
    }
}

const fn bad(
    name: &'static str,
    rate: Option<f64>,
    baseline: Behaviour,
    canary: Behaviour,
) -> Scenario {
    Scenario {
        name,
        kind: Kind::Bad,
        rate,
        baseline,
        canary,
        shared_drift: false,
    }
}

/// The A/A scenario the Argo-style thresholds are calibrated on.
pub(crate) const AA: Scenario = aa_like("aa", None, false);

/// Every scenario, A/A first.
pub(crate) const ALL: [Scenario; 10] = [
    AA,
    aa_like("drift", None, true),
    // Not a bad scenario: the A/A reference for `low_traffic`, so that judges are compared at
    // the false-alarm rate they have at that traffic.
    aa_like("low_traffic_aa", Some(LOW_RATE), false),
    bad(
        "errors_1_to_2",
        None,
        Behaviour::healthy(),
        Behaviour::healthy().with_errors(0.02),
    ),
    bad(
        "errors_1_to_5",
        None,
        Behaviour::healthy(),
        Behaviour::healthy().with_errors(0.05),
    ),
    bad(
        "errors_0.1_to_1",
        None,
        Behaviour::healthy().with_errors(0.001),
        Behaviour::healthy().with_errors(0.01),
    ),
    bad(
        "latency_plus_10",
        None,
        Behaviour::healthy(),
        Behaviour::healthy().with_median(BASE_MEDIAN_SECONDS * 1.1),
    ),
    bad(
        "latency_plus_50",
        None,
        Behaviour::healthy(),
        Behaviour::healthy().with_median(BASE_MEDIAN_SECONDS * 1.5),
    ),
    bad(
        "slow_leak",
        None,
        Behaviour::healthy(),
        Behaviour {
            error_slope_per_s: 0.01 / 60.0,
            ..Behaviour::healthy()
        },
    ),
    bad(
        "low_traffic",
        Some(LOW_RATE),
        Behaviour::healthy(),
        Behaviour::healthy().with_errors(0.05),
    ),
];

/// The A/A-like scenario at the same traffic as `scenario`: the one whose false-alarm rate a
/// judge's detections in `scenario` must be read against.
pub(crate) fn aa_reference(scenario: &Scenario) -> &'static Scenario {
    ALL.iter()
        .find(|s| s.kind == Kind::AaLike && !s.shared_drift && s.rate == scenario.rate)
        .unwrap_or(&AA)
}

/// Looks a scenario up by name.
#[cfg(test)]
pub(crate) fn by_name(name: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_seed_keys_differ() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.seed_key(), b.seed_key());
            }
        }
    }

    #[test]
    fn the_leak_adds_one_point_per_minute() {
        let leak = by_name("slow_leak").unwrap();
        let (at_0, _) = leak.state_at(&leak.canary, 0.0);
        let (at_5min, _) = leak.state_at(&leak.canary, 300.0);
        assert!((at_0 - 0.01).abs() < 1e-12);
        assert!((at_5min - 0.06).abs() < 1e-12);
        assert_eq!(leak.state_at(&leak.baseline, 300.0).0, 0.01);
    }

    #[test]
    fn the_drift_moves_both_sides_alike() {
        let drift = by_name("drift").unwrap();
        let quarter = DRIFT_PERIOD_SECONDS / 4.0;
        let canary = drift.state_at(&drift.canary, quarter);
        let baseline = drift.state_at(&drift.baseline, quarter);
        assert_eq!(canary, baseline);
        assert!((canary.0 - 0.015).abs() < 1e-12);
        assert!((canary.1 - 0.065).abs() < 1e-12);
    }

    #[test]
    fn low_traffic_is_read_against_its_own_aa() {
        let low = by_name("low_traffic").unwrap();
        assert_eq!(aa_reference(low).name, "low_traffic_aa");
        assert_eq!(aa_reference(by_name("errors_1_to_5").unwrap()).name, "aa");
    }
}
