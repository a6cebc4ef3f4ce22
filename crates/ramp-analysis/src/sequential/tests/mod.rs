mod calibration;
mod evidence;
mod fast_services;
mod judge;
mod properties;
mod sim;

use crate::{Moments, Tally};

/// Moments of `n` log latencies with the given mean and (sample) standard deviation.
fn moments(n: f64, mean: f64, sd: f64) -> Moments {
    let deviations = if n >= 1.0 { (n - 1.0) * sd * sd } else { 0.0 };
    Moments {
        n,
        sum: n * mean,
        sum_sq: deviations + n * mean * mean,
    }
}

fn slice(requests: u64, errors: u64, log_latency: Moments) -> Tally {
    Tally {
        requests,
        errors,
        log_latency,
    }
}
