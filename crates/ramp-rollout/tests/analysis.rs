//! When analyses run and what their verdicts do: canary background analysis, a fresh
//! baseline, blue-green pre- and post-promotion analysis, and rolling per-batch analysis.

mod support;

use std::time::Duration;

use ramp_analysis::AnalysisRef;
use ramp_model::{BackgroundAnalysis, Baseline, CanaryStep, IntOrPercent, Rolling, Strategy};
use ramp_rollout::{AnalysisKind, Command, Input, Phase, Verdict, WantedAnalysis};
use support::{Sim, blue_green, canary, rolling, spec};

fn deployed(strategy: Strategy, replicas: u32) -> Sim {
    let mut sim = Sim::new(spec(strategy, replicas));
    sim.apply(1).unwrap();
    assert!(sim.run_until(30_000, Sim::completed), "{}", sim.phase());
    sim
}

fn wanted(sim: &Sim, kind: AnalysisKind) -> Option<WantedAnalysis> {
    sim.desired().analyses.into_iter().find(|a| a.kind == kind)
}

fn verdict(sim: &mut Sim, w: WantedAnalysis, verdict: Verdict) {
    sim.input(Input::AnalysisFinished {
        rollout: w.rollout,
        kind: w.kind,
        verdict,
        detail: format!("{verdict:?}"),
    })
    .unwrap();
}

fn with_background(strategy: Strategy, starting_step: usize, baseline: Baseline) -> Strategy {
    let Strategy::Canary(mut c) = strategy else {
        unreachable!()
    };
    c.analysis = Some(BackgroundAnalysis {
        analysis: AnalysisRef::default(),
        starting_step,
    });
    c.baseline = baseline;
    Strategy::Canary(c)
}

fn steps() -> Vec<CanaryStep> {
    vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Pause(Some(Duration::from_secs(60))),
        CanaryStep::SetWeight(50),
        CanaryStep::Pause(None),
    ]
}

#[test]
fn background_analysis_runs_from_its_starting_step_and_a_failure_aborts() {
    let mut sim = deployed(with_background(canary(steps()), 1, Baseline::Stable), 4);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| s.traffic().get(&2) == Some(&10.0)));
    let w = wanted(&sim, AnalysisKind::Background).expect("runs from step 2 (index 1) on");
    let r = sim.state.rollout.clone().unwrap();
    assert_eq!((w.canary, w.baseline), (r.to, r.from));
    // It keeps running through the timed pause; nothing waits for it.
    sim.run_until(30_000, |_| false);
    assert!(wanted(&sim, AnalysisKind::Background).is_some());
    verdict(&mut sim, w, Verdict::Failed);
    let r = sim.state.rollout.clone().unwrap();
    assert!(matches!(r.phase, Phase::Aborted { ref reason } if reason.contains("background")));
    assert_eq!(
        sim.traffic(),
        [(1, 100.0)].into(),
        "all traffic back at once"
    );
    assert!(sim.desired().analyses.is_empty());
    assert!(sim.event_kinds().contains(&"AnalysisFailed"));
}

#[test]
fn background_analysis_does_not_start_before_its_step() {
    let mut sim = deployed(with_background(canary(steps()), 2, Baseline::Stable), 4);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| s.traffic().get(&2) == Some(&10.0)));
    assert!(wanted(&sim, AnalysisKind::Background).is_none());
    sim.command(Command::Promote { full: false }).unwrap();
    assert!(sim.run_until(10_000, |s| wanted(s, AnalysisKind::Background).is_some()));
}

#[test]
fn an_inconclusive_background_verdict_pauses_and_promote_overrides_it() {
    let mut sim = deployed(with_background(canary(steps()), 0, Baseline::Stable), 4);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| s.traffic().get(&2) == Some(&10.0)));
    let w = wanted(&sim, AnalysisKind::Background).unwrap();
    verdict(&mut sim, w, Verdict::Inconclusive);
    assert!(sim.phase().contains("Paused"), "{}", sim.phase());
    assert!(
        wanted(&sim, AnalysisKind::Background).is_none(),
        "nothing runs while a person decides"
    );
    let step_before = sim.state.rollout.as_ref().unwrap().step;
    sim.command(Command::Promote { full: false }).unwrap();
    let r = sim.state.rollout.as_ref().unwrap();
    assert_eq!(
        r.step, step_before,
        "overriding the analysis does not skip a step"
    );
    assert!(r.analysis.background_done);
    assert!(wanted(&sim, AnalysisKind::Background).is_none());
}

#[test]
fn a_late_verdict_for_another_analysis_changes_nothing() {
    let mut sim = deployed(with_background(canary(steps()), 0, Baseline::Stable), 4);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| s.traffic().get(&2) == Some(&10.0)));
    let mut w = wanted(&sim, AnalysisKind::Background).unwrap();
    w.kind = AnalysisKind::Step(3);
    let before = sim.state.clone();
    verdict(&mut sim, w, Verdict::Failed);
    assert_eq!(sim.state, before);
}

#[test]
fn a_fresh_baseline_gets_the_canary_share_and_goes_away_with_the_rollout() {
    let mut sim = deployed(with_background(canary(steps()), 0, Baseline::Fresh), 4);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| s.traffic().get(&2) == Some(&10.0)));
    let r = sim.state.rollout.clone().unwrap();
    let baseline = r.baseline.expect("a fresh baseline stack");
    assert_ne!(Some(baseline), r.from);
    let stack = sim.state.stacks.iter().find(|s| s.id == baseline).unwrap();
    assert_eq!(
        (stack.revision, stack.replicas),
        (1, 1),
        "revision 1, sized like the canary"
    );
    // Revision 1 gets 90%: 80 through the stable stack, 10 through the baseline.
    assert_eq!(sim.traffic(), [(1, 90.0), (2, 10.0)].into());
    let main = sim.desired().main.unwrap();
    let ramp_rollout::Split::Weighted(split) = main.split else {
        panic!("weighted")
    };
    assert!(
        split.contains(&(baseline, 10)) && split.contains(&(r.to, 10)),
        "{split:?}"
    );
    let w = wanted(&sim, AnalysisKind::Background).unwrap();
    assert_eq!(
        w.baseline,
        Some(baseline),
        "the canary is compared with the fresh baseline"
    );

    sim.command(Command::Promote { full: true }).unwrap();
    assert!(sim.run_until(30_000, Sim::completed));
    let gone = sim.state.stacks.iter().all(|s| s.id != baseline)
        || sim
            .state
            .stacks
            .iter()
            .any(|s| s.id == baseline && s.replicas == 0);
    assert!(gone, "{:?}", sim.state.stacks);
}

fn blue_green_with(pre: bool, post: bool) -> Strategy {
    let Strategy::BlueGreen(mut b) = blue_green(false, None) else {
        unreachable!()
    };
    b.pre_promotion_analysis = pre.then(AnalysisRef::default);
    b.post_promotion_analysis = post.then(AnalysisRef::default);
    Strategy::BlueGreen(b)
}

#[test]
fn blue_green_pre_promotion_analysis_gates_the_promotion() {
    let mut sim = deployed(blue_green_with(true, false), 2);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| wanted(s, AnalysisKind::PrePromotion).is_some()));
    assert_eq!(sim.traffic(), [(1, 100.0)].into());
    let w = wanted(&sim, AnalysisKind::PrePromotion).unwrap();
    verdict(&mut sim, w, Verdict::Successful);
    assert!(
        sim.phase().contains("Paused"),
        "waits for promote: {}",
        sim.phase()
    );
    sim.command(Command::Promote { full: false }).unwrap();
    assert!(sim.run_until(10_000, Sim::completed));

    let mut failing = deployed(blue_green_with(true, false), 2);
    failing.apply(2).unwrap();
    assert!(failing.run_until(10_000, |s| wanted(s, AnalysisKind::PrePromotion).is_some()));
    let w = wanted(&failing, AnalysisKind::PrePromotion).unwrap();
    verdict(&mut failing, w, Verdict::Failed);
    assert!(failing.phase().contains("Aborted"));
    assert_eq!(failing.traffic(), [(1, 100.0)].into());
}

#[test]
fn blue_green_post_promotion_failure_switches_back_to_the_warm_stack() {
    let mut sim = deployed(blue_green_with(false, true), 2);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| s.phase().contains("Paused")));
    sim.command(Command::Promote { full: false }).unwrap();
    assert!(sim.run_until(10_000, |s| wanted(s, AnalysisKind::PostPromotion).is_some()));
    assert_eq!(
        sim.traffic(),
        [(2, 100.0)].into(),
        "switched before the analysis"
    );
    let w = wanted(&sim, AnalysisKind::PostPromotion).unwrap();
    verdict(&mut sim, w, Verdict::Failed);
    assert!(sim.phase().contains("Aborted"));
    assert_eq!(
        sim.traffic(),
        [(1, 100.0)].into(),
        "back in one routing change"
    );

    let mut good = deployed(blue_green_with(false, true), 2);
    good.apply(2).unwrap();
    assert!(good.run_until(10_000, |s| s.phase().contains("Paused")));
    good.command(Command::Promote { full: false }).unwrap();
    assert!(good.run_until(10_000, |s| wanted(s, AnalysisKind::PostPromotion).is_some()));
    let w = wanted(&good, AnalysisKind::PostPromotion).unwrap();
    verdict(&mut good, w, Verdict::Successful);
    assert!(good.completed());
    assert_eq!(good.stable_revision(), Some(2));
}

#[test]
fn rolling_batches_wait_for_their_analysis() {
    let Strategy::Rolling(bounds) = rolling(IntOrPercent::Count(1), IntOrPercent::Count(0)) else {
        unreachable!()
    };
    let strategy = Strategy::Rolling(Rolling {
        analysis: Some(AnalysisRef::default()),
        ..bounds
    });
    let mut sim = deployed(strategy, 3);
    sim.apply(2).unwrap();
    let mut judged = Vec::new();
    for _ in 0..3 {
        assert!(sim.run_until(20_000, |s| {
            s.desired()
                .analyses
                .iter()
                .any(|a| matches!(a.kind, AnalysisKind::Batch(_)))
        }));
        let w = sim.desired().analyses[0];
        let AnalysisKind::Batch(n) = w.kind else {
            unreachable!()
        };
        // Nothing moves while a batch is judged.
        let sizes = sim.state.stacks.clone();
        sim.run_until(5_000, |_| false);
        assert_eq!(sim.state.stacks, sizes, "batch of {n} waits");
        judged.push(n);
        verdict(&mut sim, w, Verdict::Successful);
    }
    assert_eq!(judged, vec![1, 2, 3]);
    assert!(sim.run_until(20_000, Sim::completed));

    let Strategy::Rolling(bounds) = rolling(IntOrPercent::Count(1), IntOrPercent::Count(0)) else {
        unreachable!()
    };
    let mut failing = deployed(
        Strategy::Rolling(Rolling {
            analysis: Some(AnalysisRef::default()),
            ..bounds
        }),
        3,
    );
    failing.apply(2).unwrap();
    assert!(failing.run_until(20_000, |s| !s.desired().analyses.is_empty()));
    let w = failing.desired().analyses[0];
    verdict(&mut failing, w, Verdict::Failed);
    assert!(failing.phase().contains("Aborted"));
    assert!(failing.run_until(20_000, |s| s.traffic() == [(1, 100.0)].into()));
}

#[test]
fn a_rolling_batch_does_not_grow_before_it_is_judged() {
    // With room to lose an instance, old instances go early and the surge budget frees up
    // while a batch is still starting: the new stack must not grow past the unjudged batch.
    let strategy = Strategy::Rolling(Rolling {
        max_surge: IntOrPercent::Count(1),
        max_unavailable: IntOrPercent::Count(1),
        analysis: Some(AnalysisRef::default()),
    });
    let mut sim = deployed(strategy, 4);
    sim.apply(2).unwrap();
    let new_stack = sim.state.rollout.as_ref().unwrap().to;
    let new_size = |sim: &Sim| {
        let stack = sim.state.stacks.iter().find(|s| s.id == new_stack);
        stack.map_or(0, |s| s.replicas)
    };
    let (mut judged, give_up) = (Vec::new(), sim.now + 120_000);
    while !sim.completed() {
        assert!(sim.now < give_up, "stuck: {}", sim.phase());
        let (size, verified) = (
            new_size(&sim),
            sim.state.rollout.as_ref().unwrap().analysis.batch_verified,
        );
        sim.tick();
        assert!(
            new_size(&sim) <= size || size <= verified,
            "the new stack grew from an unjudged batch of {size} (judged good: {verified})"
        );
        if let Some(w) = sim.desired().analyses.first().copied() {
            let AnalysisKind::Batch(n) = w.kind else {
                unreachable!()
            };
            judged.push(n);
            verdict(&mut sim, w, Verdict::Successful);
        }
    }
    assert_eq!(
        judged,
        vec![1, 2, 3, 4],
        "one new instance at a time, each judged"
    );
}
