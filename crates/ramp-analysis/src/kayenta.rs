//! Kayenta's canary judgement: each metric's canary values are compared with its baseline's by
//! a Mann-Whitney test and classified High, Low, Pass or NoData; the classifications are
//! rolled up into a weighted score out of 100.
//!
//! The rules are Kayenta's at its defaults. A metric is High when the lower bound of the
//! interval on the shift (canary - baseline) exceeds a tolerance of 25% of the estimated
//! shift, so that a significant but negligible shift still passes, and the canary/baseline
//! mean ratio reaches `allowed_increase`; Low mirrors that with the upper bound and
//! `allowed_decrease`. The score is the weighted share of passing metrics; a critical metric
//! that does not pass, or no data for half of the metrics or more, scores 0.

use serde::Serialize;

use crate::mann_whitney::{MannWhitney, mann_whitney};
use crate::spec::{ComparedMetric, Direction, MannWhitneySettings};

/// Fraction of the estimated shift that the interval must clear for a change to count.
const SHIFT_TOLERANCE: f64 = 0.25;
/// Outliers lie beyond this many interquartile ranges outside the quartiles.
const OUTLIER_IQR_FACTOR: f64 = 3.0;
/// Share of metrics without data, in percent, from which the whole judgement fails.
const NO_DATA_FAILURE_PERCENT: f64 = 50.0;

/// How a metric's canary compares with its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Classification {
    /// No change that the metric's direction and allowances count as bad.
    Pass,
    /// The canary is significantly higher.
    High,
    /// The canary is significantly lower.
    Low,
    /// The canary or the baseline had no usable values; counts as a failure in the score.
    NoData,
}

/// One metric's verdict, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// The metric's name.
    pub name: String,
    /// The verdict.
    pub classification: Classification,
    /// Whether anything but Pass fails the whole judgement.
    pub critical: bool,
    /// Weight in the score.
    pub weight: f64,
    /// Mean of the canary values that were compared.
    pub canary_mean: Option<f64>,
    /// Mean of the baseline values that were compared.
    pub baseline_mean: Option<f64>,
    /// The test, when one was run (not for missing or identical data).
    pub test: Option<MannWhitney>,
    /// Why, in words.
    pub reason: String,
}

/// Compares a metric's canary values with its baseline's at `confidence` (Kayenta: 0.98).
///
/// NaN and infinite values are dropped, then outliers when the metric asks for it.
pub fn classify(
    metric: &ComparedMetric,
    canary: &[f64],
    baseline: &[f64],
    confidence: f64,
) -> MetricResult {
    let canary = prepare(canary, metric.remove_outliers);
    let baseline = prepare(baseline, metric.remove_outliers);
    let canary_mean = mean(&canary);
    let baseline_mean = mean(&baseline);
    let verdict = |classification, test, reason: String| MetricResult {
        name: metric.name.clone(),
        classification,
        critical: metric.critical,
        weight: metric.weight,
        canary_mean,
        baseline_mean,
        test,
        reason,
    };

    let (Some(canary_mean), Some(baseline_mean)) = (canary_mean, baseline_mean) else {
        let missing = match (canary.is_empty(), baseline.is_empty()) {
            (true, true) => "canary and baseline have",
            (true, false) => "canary has",
            _ => "baseline has",
        };
        let reason = format!("{}: {missing} no usable values", metric.name);
        return verdict(Classification::NoData, None, reason);
    };
    if canary == baseline {
        let reason = format!("{}: canary and baseline values are identical", metric.name);
        return verdict(Classification::Pass, None, reason);
    }
    let Some(test) = mann_whitney(&canary, &baseline, confidence) else {
        let reason = format!(
            "{}: cannot test at confidence {confidence}, which must be in (0, 1)",
            metric.name
        );
        return verdict(Classification::NoData, None, reason);
    };

    let ratio = mean_ratio(canary_mean, baseline_mean);
    let (classification, finding) = compare(metric, &test, ratio, confidence);
    let reason = format!("{}: {finding}", metric.name);
    verdict(classification, Some(test), reason)
}

/// Classifies a test's outcome by the metric's direction and allowed mean ratios. A mean
/// ratio that cannot be computed (a zero mean) does not veto a significant change.
fn compare(
    metric: &ComparedMetric,
    test: &MannWhitney,
    ratio: Option<f64>,
    confidence: f64,
) -> (Classification, String) {
    let tolerance = SHIFT_TOLERANCE * test.estimate.abs();
    let (lower, upper) = test.interval;
    let interval = format!(
        "the {:.0}% interval [{lower:.6}, {upper:.6}] on the shift",
        confidence * 100.0
    );

    let (change, harmless, allowed) = if lower > tolerance {
        (
            Classification::High,
            Direction::Decrease,
            metric.allowed_increase,
        )
    } else if upper < -tolerance {
        (
            Classification::Low,
            Direction::Increase,
            metric.allowed_decrease,
        )
    } else {
        let reason = format!("no significant shift: {interval} reaches within +-{tolerance:.6}");
        return (Classification::Pass, reason);
    };
    let (word, allowance) = match change {
        Classification::High => ("higher", "allowed increase"),
        _ => ("lower", "allowed decrease"),
    };
    let observed = format!("canary is {word}: {interval} clears +-{tolerance:.6}");
    let within_allowance = ratio.is_some_and(|r| match change {
        Classification::High => r < allowed,
        _ => r > allowed,
    });
    let ratio_text = ratio.map_or_else(|| "undefined".to_owned(), |r| format!("{r:.4}"));

    if metric.direction == harmless {
        let only = match harmless {
            Direction::Decrease => "a decrease",
            _ => "an increase",
        };
        (
            Classification::Pass,
            format!("{observed}; only {only} fails this metric"),
        )
    } else if within_allowance {
        let reason =
            format!("{observed}; mean ratio {ratio_text} is within the {allowance} {allowed}");
        (Classification::Pass, reason)
    } else {
        (change, format!("{observed}; mean ratio {ratio_text}"))
    }
}

/// Canary mean over baseline mean; `None` when either is 0, as the ratio says nothing then.
fn mean_ratio(canary_mean: f64, baseline_mean: f64) -> Option<f64> {
    (canary_mean != 0.0 && baseline_mean != 0.0).then(|| canary_mean / baseline_mean)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Finite values, ascending, without outliers when asked.
fn prepare(values: &[f64], remove_outliers: bool) -> Vec<f64> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_unstable_by(f64::total_cmp);
    if remove_outliers {
        without_outliers(finite)
    } else {
        finite
    }
}

/// Drops values beyond Tukey's fences at 3 IQR, widened to the 1st and 99th percentiles so
/// that a long but dense tail (typical of latencies) is not cut off.
fn without_outliers(sorted: Vec<f64>) -> Vec<f64> {
    if sorted.is_empty() {
        return sorted;
    }
    let q1 = percentile(&sorted, 0.25);
    let q3 = percentile(&sorted, 0.75);
    let spread = OUTLIER_IQR_FACTOR * (q3 - q1);
    let low = (q1 - spread).min(percentile(&sorted, 0.01));
    let high = (q3 + spread).max(percentile(&sorted, 0.99));
    sorted
        .into_iter()
        .filter(|v| (low..=high).contains(v))
        .collect()
}

/// The `p` quantile of non-empty sorted values, interpolating linearly between order
/// statistics (R's type 7).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let position = (sorted.len() - 1) as f64 * p;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

/// The judgement's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ScoreClass {
    /// Promote.
    Pass,
    /// Inconclusive.
    Marginal,
    /// Roll back.
    Fail,
}

/// A whole judgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// Out of 100, rounded to two decimals.
    pub score: f64,
    /// The score against the thresholds.
    pub class: ScoreClass,
    /// Every metric's verdict.
    pub results: Vec<MetricResult>,
    /// Why, in words.
    pub reason: String,
}

/// Scores metric verdicts: the weighted share of Pass among all of them, in percent, or 0
/// when a critical metric did not pass or half the metrics or more had no data.
///
/// score >= `pass` -> Pass; score <= `marginal` -> Fail; else Marginal. Unusable thresholds or
/// weights (not finite, negative weights, nothing weighed) fail with a reason.
pub fn score(results: Vec<MetricResult>, pass: f64, marginal: f64) -> Score {
    let (score, reason) = summary_score(&results).unwrap_or_else(|problem| (0.0, problem));
    let (class, reason) = if !(pass.is_finite() && marginal.is_finite()) {
        let problem = format!("unusable score thresholds: pass {pass}, marginal {marginal}");
        (ScoreClass::Fail, problem)
    } else if score >= pass {
        (ScoreClass::Pass, reason)
    } else if score <= marginal {
        (ScoreClass::Fail, reason)
    } else {
        (ScoreClass::Marginal, reason)
    };
    Score {
        score,
        class,
        results,
        reason,
    }
}

/// The score and why; `Err` when the results cannot be scored.
fn summary_score(results: &[MetricResult]) -> Result<(f64, String), String> {
    if results.is_empty() {
        return Err("no metrics were judged".to_owned());
    }
    if let Some(bad) = results
        .iter()
        .find(|r| !(r.weight.is_finite() && r.weight >= 0.0))
    {
        return Err(format!(
            "metric {} has an unusable weight {}",
            bad.name, bad.weight
        ));
    }
    if let Some(failed) = results
        .iter()
        .find(|r| r.critical && r.classification != Classification::Pass)
    {
        return Ok((0.0, format!("critical metric failed: {}", failed.reason)));
    }
    let count = |class| results.iter().filter(|r| r.classification == class).count();
    let no_data = count(Classification::NoData);
    if no_data as f64 * 100.0 >= NO_DATA_FAILURE_PERCENT * results.len() as f64 {
        return Ok((
            0.0,
            format!("{no_data} of {} metrics had no data", results.len()),
        ));
    }
    let total_weight: f64 = results.iter().map(|r| r.weight).sum();
    if total_weight <= 0.0 {
        return Err("the metrics' weights add up to 0".to_owned());
    }
    let passed_weight: f64 = results
        .iter()
        .filter(|r| r.classification == Classification::Pass)
        .map(|r| r.weight)
        .sum();
    let score = (passed_weight / total_weight * 10_000.0).round() / 100.0;
    let reason = format!(
        "{} of {} metrics passed ({} high, {} low, {no_data} without data)",
        count(Classification::Pass),
        results.len(),
        count(Classification::High),
        count(Classification::Low),
    );
    Ok((score, reason))
}

/// Judges every metric of `settings` and scores them. `samples[i]` holds the (canary,
/// baseline) values of `settings.metrics[i]`; a metric without an entry has no data, and
/// entries beyond the metrics are not looked at.
pub fn judge(settings: &MannWhitneySettings, samples: &[(Vec<f64>, Vec<f64>)]) -> Score {
    let results = settings
        .metrics
        .iter()
        .enumerate()
        .map(|(index, metric)| {
            let (canary, baseline) = samples
                .get(index)
                .map_or((&[][..], &[][..]), |(c, b)| (c.as_slice(), b.as_slice()));
            classify(metric, canary, baseline, settings.confidence)
        })
        .collect();
    score(results, settings.pass_score, settings.marginal_score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mann_whitney::test_samples::normal;
    use crate::spec::Measure;
    use proptest::prelude::*;

    fn metric(name: &str, direction: Direction) -> ComparedMetric {
        ComparedMetric {
            name: name.to_owned(),
            measure: Measure::Latency,
            direction,
            critical: false,
            weight: 1.0,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
            remove_outliers: false,
        }
    }

    fn verdict(classification: Classification, weight: f64, critical: bool) -> MetricResult {
        MetricResult {
            name: format!("{classification:?}"),
            classification,
            critical,
            weight,
            canary_mean: None,
            baseline_mean: None,
            test: None,
            reason: format!("{classification:?} by construction"),
        }
    }

    fn verdicts(classes: &[Classification]) -> Vec<MetricResult> {
        classes.iter().map(|&c| verdict(c, 1.0, false)).collect()
    }

    use Classification::{High, Low, NoData, Pass};

    #[test]
    fn identical_samples_pass() {
        let values = normal(1, 100, 50.0, 5.0);
        let mut shuffled = values.clone();
        shuffled.reverse();
        let result = classify(
            &metric("latency", Direction::Either),
            &values,
            &shuffled,
            0.98,
        );
        assert_eq!(result.classification, Pass);
        assert_eq!(result.test, None);
        assert!(result.reason.contains("identical"), "{}", result.reason);
    }

    #[test]
    fn similar_samples_pass() {
        let canary = normal(2, 300, 50.0, 5.0);
        let baseline = normal(3, 300, 50.0, 5.0);
        let result = classify(
            &metric("latency", Direction::Either),
            &canary,
            &baseline,
            0.98,
        );
        assert_eq!(result.classification, Pass, "{}", result.reason);
        assert!(result.test.is_some());
    }

    #[test]
    fn clear_increase_is_high_unless_allowed() {
        let canary = normal(4, 300, 130.0, 10.0);
        let baseline = normal(5, 300, 100.0, 10.0);
        let strict = metric("latency", Direction::Either);
        let result = classify(&strict, &canary, &baseline, 0.98);
        assert_eq!(result.classification, High, "{}", result.reason);
        let ratio = result.canary_mean.unwrap() / result.baseline_mean.unwrap();
        assert!((ratio - 1.3).abs() < 0.05, "{ratio}");

        let lenient = ComparedMetric {
            allowed_increase: 1.5,
            ..strict.clone()
        };
        let result = classify(&lenient, &canary, &baseline, 0.98);
        assert_eq!(result.classification, Pass, "{}", result.reason);
        assert!(
            result.reason.contains("allowed increase"),
            "{}",
            result.reason
        );

        let just_below = ComparedMetric {
            allowed_increase: ratio - 0.01,
            ..strict
        };
        assert_eq!(
            classify(&just_below, &canary, &baseline, 0.98).classification,
            High
        );
    }

    #[test]
    fn decrease_fails_only_where_the_direction_says() {
        let canary = normal(6, 300, 70.0, 10.0);
        let baseline = normal(7, 300, 100.0, 10.0);
        let judged = |direction| classify(&metric("m", direction), &canary, &baseline, 0.98);
        assert_eq!(judged(Direction::Increase).classification, Pass);
        assert_eq!(judged(Direction::Decrease).classification, Low);
        assert_eq!(judged(Direction::Either).classification, Low);

        let increase = normal(8, 300, 130.0, 10.0);
        let judged = |direction| classify(&metric("m", direction), &increase, &baseline, 0.98);
        assert_eq!(judged(Direction::Decrease).classification, Pass);
        assert_eq!(judged(Direction::Increase).classification, High);
    }

    #[test]
    fn allowed_decrease_tolerates_a_small_drop() {
        let canary = normal(9, 300, 90.0, 5.0);
        let baseline = normal(10, 300, 100.0, 5.0);
        let lenient = ComparedMetric {
            allowed_decrease: 0.8,
            ..metric("throughput", Direction::Decrease)
        };
        assert_eq!(
            classify(&lenient, &canary, &baseline, 0.98).classification,
            Pass
        );
        let strict = ComparedMetric {
            allowed_decrease: 0.95,
            ..lenient
        };
        assert_eq!(
            classify(&strict, &canary, &baseline, 0.98).classification,
            Low
        );
    }

    #[test]
    fn missing_values_are_no_data() {
        let m = metric("errors", Direction::Increase);
        let empty = classify(&m, &[], &[1.0, 2.0], 0.98);
        assert_eq!(empty.classification, NoData);
        assert!(empty.reason.contains("canary"), "{}", empty.reason);
        assert_eq!(empty.canary_mean, None);
        assert_eq!(empty.baseline_mean, Some(1.5));

        let nans = classify(&m, &[1.0], &[f64::NAN, f64::NAN], 0.98);
        assert_eq!(nans.classification, NoData);
        assert!(nans.reason.contains("baseline"), "{}", nans.reason);
    }

    #[test]
    fn nans_are_dropped_before_comparing() {
        let m = metric("latency", Direction::Either);
        let result = classify(&m, &[1.0, f64::NAN, 2.0], &[2.0, 1.0], 0.98);
        assert_eq!(result.classification, Pass);
        assert_eq!(result.canary_mean, Some(1.5));
    }

    #[test]
    fn invalid_confidence_is_reported_not_tested() {
        let result = classify(&metric("m", Direction::Either), &[1.0, 2.0], &[3.0], 1.5);
        assert_eq!(result.classification, NoData);
        assert!(result.reason.contains("confidence"), "{}", result.reason);
    }

    #[test]
    fn outlier_removal_changes_the_verdict() {
        let mut canary = normal(11, 200, 103.0, 5.0);
        let baseline = normal(12, 200, 100.0, 5.0);
        canary.push(100_000.0);
        let keep = ComparedMetric {
            allowed_increase: 1.1,
            ..metric("latency", Direction::Increase)
        };
        let kept = classify(&keep, &canary, &baseline, 0.98);
        assert_eq!(kept.classification, High, "{}", kept.reason);

        let remove = ComparedMetric {
            remove_outliers: true,
            ..keep
        };
        let removed = classify(&remove, &canary, &baseline, 0.98);
        assert_eq!(removed.classification, Pass, "{}", removed.reason);
        assert!(removed.canary_mean.unwrap() < 110.0);
    }

    #[test]
    fn outlier_fences_keep_the_bulk() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        values.push(10_000.0);
        let kept = without_outliers(values);
        assert_eq!(kept.len(), 100);
        assert_eq!(kept.last(), Some(&100.0));
    }

    #[test]
    fn percentile_interpolates_like_r_type_7() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 1.0), 4.0);
        assert_eq!(percentile(&sorted, 0.25), 1.75);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn critical_failure_scores_zero() {
        let mut results = verdicts(&[Pass, Pass, Pass]);
        results.push(verdict(High, 1.0, true));
        let judged = score(results, 75.0, 50.0);
        assert_eq!(judged.score, 0.0);
        assert_eq!(judged.class, ScoreClass::Fail);
        assert!(judged.reason.contains("critical"), "{}", judged.reason);

        let mut results = verdicts(&[Pass, Pass, Pass]);
        results.push(verdict(Pass, 1.0, true));
        assert_eq!(score(results, 75.0, 50.0).score, 100.0);
    }

    #[test]
    fn critical_metric_without_data_fails() {
        let mut results = verdicts(&[Pass, Pass, Pass]);
        results.push(verdict(NoData, 1.0, true));
        assert_eq!(score(results, 75.0, 50.0).score, 0.0);
    }

    #[test]
    fn half_without_data_scores_zero() {
        let judged = score(verdicts(&[Pass, Pass, NoData, NoData]), 75.0, 50.0);
        assert_eq!(judged.score, 0.0);
        assert!(judged.reason.contains("no data"), "{}", judged.reason);

        // Below half, no data only counts as one failed metric.
        let judged = score(verdicts(&[Pass, Pass, Pass, NoData]), 75.0, 50.0);
        assert_eq!(judged.score, 75.0);
        assert_eq!(judged.class, ScoreClass::Pass);
    }

    #[test]
    fn score_is_the_weighted_share_of_passes() {
        let results = vec![verdict(Pass, 3.0, false), verdict(High, 1.0, false)];
        assert_eq!(score(results, 75.0, 50.0).score, 75.0);

        let results = vec![
            verdict(Pass, 1.0, false),
            verdict(Low, 2.0, false),
            verdict(Pass, 0.0, false),
        ];
        assert_eq!(score(results, 75.0, 50.0).score, 33.33);

        let judged = score(verdicts(&[Pass, High, Low]), 75.0, 50.0);
        assert_eq!(judged.score, 33.33);
        assert_eq!(judged.results.len(), 3);
    }

    #[test]
    fn thresholds_bound_the_classes() {
        let class = |passes: usize, fails: usize| {
            let mut classes = vec![Pass; passes];
            classes.extend(vec![High; fails]);
            score(verdicts(&classes), 75.0, 50.0).class
        };
        assert_eq!(class(3, 1), ScoreClass::Pass); // 75 = pass
        assert_eq!(class(2, 1), ScoreClass::Marginal); // 66.67
        assert_eq!(class(1, 1), ScoreClass::Fail); // 50 = marginal
        assert_eq!(class(1, 2), ScoreClass::Fail); // 33.33
        assert_eq!(class(1, 0), ScoreClass::Pass);
    }

    #[test]
    fn unusable_inputs_fail_with_a_reason() {
        let judged = score(Vec::new(), 75.0, 50.0);
        assert_eq!((judged.score, judged.class), (0.0, ScoreClass::Fail));

        let judged = score(vec![verdict(Pass, f64::NAN, false)], 75.0, 50.0);
        assert_eq!(judged.class, ScoreClass::Fail);
        assert!(judged.reason.contains("weight"), "{}", judged.reason);

        let judged = score(vec![verdict(Pass, 0.0, false)], 75.0, 50.0);
        assert_eq!(judged.class, ScoreClass::Fail);

        let judged = score(verdicts(&[Pass]), f64::NAN, 50.0);
        assert_eq!(judged.class, ScoreClass::Fail);
        assert!(judged.reason.contains("threshold"), "{}", judged.reason);
    }

    #[test]
    fn judge_classifies_and_scores_every_metric() {
        let settings = MannWhitneySettings {
            metrics: vec![
                metric("latency", Direction::Increase),
                metric("errors", Direction::Increase),
                metric("throughput", Direction::Decrease),
                metric("unmeasured", Direction::Either),
            ],
            confidence: 0.98,
            pass_score: 75.0,
            marginal_score: 50.0,
        };
        let samples = vec![
            (normal(13, 200, 10.0, 1.0), normal(14, 200, 10.0, 1.0)),
            (normal(15, 200, 0.2, 0.01), normal(16, 200, 0.1, 0.01)),
            (normal(17, 200, 110.0, 5.0), normal(18, 200, 100.0, 5.0)),
        ];
        let judged = judge(&settings, &samples);
        let classes: Vec<Classification> =
            judged.results.iter().map(|r| r.classification).collect();
        assert_eq!(classes, [Pass, High, Pass, NoData]);
        assert_eq!(judged.score, 50.0);
        assert_eq!(judged.class, ScoreClass::Fail);

        let critical = MannWhitneySettings {
            metrics: vec![ComparedMetric {
                critical: true,
                ..metric("errors", Direction::Increase)
            }],
            ..settings
        };
        let judged = judge(&critical, &samples[1..2]);
        assert_eq!((judged.score, judged.class), (0.0, ScoreClass::Fail));
    }

    fn classification() -> impl Strategy<Value = Classification> {
        prop_oneof![Just(Pass), Just(High), Just(Low), Just(NoData)]
    }

    proptest! {
        #[test]
        fn scores_stay_in_range(
            entries in prop::collection::vec((classification(), 0.0f64..10.0, any::<bool>()), 1..12),
        ) {
            let results: Vec<MetricResult> =
                entries.iter().map(|&(c, w, critical)| verdict(c, w, critical)).collect();
            let critical_failure = entries.iter().any(|&(c, _, critical)| critical && c != Pass);
            let judged = score(results, 75.0, 50.0);
            prop_assert!((0.0..=100.0).contains(&judged.score));
            if critical_failure {
                prop_assert_eq!(judged.score, 0.0);
                prop_assert_eq!(judged.class, ScoreClass::Fail);
            }
            if entries.iter().all(|&(c, _, _)| c == Pass) && entries.iter().any(|e| e.1 > 0.0) {
                prop_assert_eq!(judged.score, 100.0);
            }
        }

        #[test]
        fn direction_forbids_the_harmless_failure(
            canary in prop::collection::vec(0.0f64..100.0, 1..60),
            baseline in prop::collection::vec(0.0f64..100.0, 1..60),
        ) {
            let increase = classify(&metric("m", Direction::Increase), &canary, &baseline, 0.98);
            prop_assert_ne!(increase.classification, Low);
            let decrease = classify(&metric("m", Direction::Decrease), &canary, &baseline, 0.98);
            prop_assert_ne!(decrease.classification, High);
            let either = classify(&metric("m", Direction::Either), &canary, &baseline, 0.98);
            if either.classification == High {
                prop_assert_eq!(increase.classification, High);
            }
            if either.classification == Low {
                prop_assert_eq!(decrease.classification, Low);
            }
        }
    }
}
