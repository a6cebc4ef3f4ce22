//! The state machine driven through whole rollouts in a simulated world with a fake clock.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use ramp_model::{CanaryStep, IntOrPercent, Strategy};
use ramp_rollout::{AnalysisKind, Command, Input, PauseReason, Phase, Split, Verdict};
use ramp_route::{Condition, Source, ValueMatch};
use support::{Sim, blue_green, canary, rolling, spec};

fn deployed(strategy: Strategy, replicas: u32) -> Sim {
    let mut sim = Sim::new(spec(strategy, replicas));
    sim.apply(1).unwrap();
    assert!(
        sim.run_until(30_000, Sim::completed),
        "first deploy: {}",
        sim.phase()
    );
    assert_eq!(sim.stable_revision(), Some(1));
    sim
}

#[test]
fn first_deploy_scales_up_and_serves() {
    let sim = deployed(Strategy::Recreate, 3);
    assert_eq!(sim.world().values().map(|s| s.ready).sum::<u32>(), 3);
    assert_eq!(sim.traffic().get(&1), Some(&100.0));
    assert_eq!(sim.event_kinds(), ["RolloutStarted", "Scaled", "Completed"]);
}

#[test]
fn recreate_ends_with_only_the_new_revision() {
    let mut sim = deployed(Strategy::Recreate, 3);
    sim.apply(2).unwrap();
    assert!(sim.run_until(30_000, |s| s.completed() && s.stable_revision() == Some(2)));
    assert_eq!(sim.traffic().get(&2), Some(&100.0));
    assert!(sim.instances.iter().all(|i| i.revision == 2));
}

#[test]
fn recreate_never_overlaps_revisions() {
    let mut sim = deployed(Strategy::Recreate, 2);
    sim.apply(2).unwrap();
    for _ in 0..200 {
        let revisions: std::collections::BTreeSet<u64> =
            sim.instances.iter().map(|i| i.revision).collect();
        assert!(
            revisions.len() <= 1,
            "both revisions at {}: {revisions:?}",
            sim.now
        );
        sim.tick();
    }
    assert!(sim.completed() && sim.stable_revision() == Some(2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Kubernetes' promise: never more than replicas + maxSurge instances, never fewer than
    /// replicas - maxUnavailable ready, and the update finishes.
    #[test]
    fn rolling_update_respects_surge_and_unavailability(
        replicas in 1u32..8,
        surge in 0u32..4,
        unavailable in 0u32..4,
        surge_percent in any::<bool>(),
        ready_after in 100u64..2_000,
    ) {
        let surge = if surge_percent { IntOrPercent::Percent(surge * 25) } else { IntOrPercent::Count(surge) };
        let unavailable = IntOrPercent::Count(unavailable);
        let s = surge.round_up(replicas);
        let u = unavailable.round_down(replicas);
        prop_assume!(s + u > 0);
        let mut sim = deployed(rolling(surge, unavailable), replicas);
        sim.ready_after.insert(2, Some(ready_after));
        sim.samples.clear();
        sim.apply(2).unwrap();
        let done = sim.run_until(120_000, |s| s.completed() && s.stable_revision() == Some(2));
        prop_assert!(done, "did not finish: {}", sim.phase());
        for sample in &sim.samples {
            prop_assert!(sample.total <= replicas + s, "{} instances at {} (max {})", sample.total, sample.now, replicas + s);
            prop_assert!(sample.ready + u >= replicas, "{} ready at {} (min {})", sample.ready, sample.now, replicas - u);
        }
        prop_assert_eq!(sim.traffic().get(&2).copied(), Some(100.0));
    }
}

#[test]
fn canary_walks_its_steps() {
    let steps = vec![
        CanaryStep::SetWeight(25),
        CanaryStep::Pause(Some(Duration::from_secs(10))),
        CanaryStep::SetHeaderRoute {
            name: "beta".into(),
            conditions: vec![Condition {
                source: Source::header("x-beta"),
                value: ValueMatch::Present,
            }],
        },
        CanaryStep::SetWeight(50),
        CanaryStep::Pause(None),
    ];
    let mut sim = deployed(canary(steps), 4);
    sim.apply(2).unwrap();

    // Step 1: one canary instance (ceil(4 * 25%)), then 25% of traffic, stable still at 4.
    assert!(sim.run_until(10_000, |s| matches!(
        s.state.rollout.as_ref().map(|r| &r.phase),
        Some(Phase::Paused { .. })
    )));
    let traffic = sim.traffic();
    assert_eq!((traffic[&1], traffic[&2]), (75.0, 25.0));
    assert_eq!(sim.instances.iter().filter(|i| i.revision == 1).count(), 4);
    assert_eq!(sim.instances.iter().filter(|i| i.revision == 2).count(), 1);

    // Step 2 pauses 10 s, then the header route and 50% follow, and step 5 waits for a person.
    let paused_at = sim.now;
    assert!(sim.run_until(30_000, |s| matches!(
        s.state.rollout.as_ref().map(|r| &r.phase),
        Some(Phase::Paused {
            reason: ramp_rollout::PauseReason::StepIndefinite
        })
    )));
    assert!(sim.now - paused_at >= 10_000);
    let main = sim.desired().main.unwrap();
    assert_eq!(main.pinned.len(), 1);
    assert_eq!(sim.traffic()[&2], 50.0);
    assert_eq!(sim.instances.iter().filter(|i| i.revision == 2).count(), 2);

    // Nothing moves without a person.
    assert!(!sim.run_until(60_000, Sim::completed));

    // promote: the canary grows to full size, takes all traffic, the old stack stays warm.
    sim.command(Command::Promote { full: false }).unwrap();
    assert!(sim.run_until(30_000, Sim::completed));
    assert_eq!(sim.stable_revision(), Some(2));
    assert_eq!(sim.traffic().get(&2), Some(&100.0));
    assert!(
        sim.desired().main.unwrap().pinned.is_empty(),
        "routes end with the rollout"
    );
    assert_eq!(
        sim.instances.iter().filter(|i| i.revision == 1).count(),
        4,
        "kept warm"
    );
    sim.run_until(40_000, |s| s.instances.iter().all(|i| i.revision == 2));
    assert!(
        sim.instances.iter().all(|i| i.revision == 2),
        "scaled down after the delay"
    );
    let kinds = sim.event_kinds();
    for kind in [
        "WeightChanged",
        "Paused",
        "RouteChanged",
        "Promoted",
        "Completed",
        "ScaledDown",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing in {kinds:?}");
    }
}

#[test]
fn abort_is_a_routing_change_and_sticks_until_retry() {
    let mut sim = deployed(
        canary(vec![CanaryStep::SetWeight(50), CanaryStep::Pause(None)]),
        2,
    );
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| s.traffic().get(&2) == Some(&50.0)));

    sim.input(Input::Command(Command::Abort)).unwrap();
    // Before any instance changes: the desired routes already send everything to stable.
    assert_eq!(
        sim.desired().main.unwrap().split,
        Split::PerInstance(vec![sim.state.stable.unwrap()])
    );
    assert_eq!(sim.traffic(), [(1, 100.0)].into());
    assert!(matches!(
        sim.state.rollout.as_ref().unwrap().phase,
        Phase::Aborted { .. }
    ));

    // It stays there.
    sim.run_until(60_000, |_| false);
    assert_eq!(sim.stable_revision(), Some(1));
    assert_eq!(sim.traffic(), [(1, 100.0)].into());

    // Retry starts over from the first step.
    sim.command(Command::Retry).unwrap();
    assert!(sim.run_until(10_000, |s| s.traffic().get(&2) == Some(&50.0)));
    sim.command(Command::Promote { full: true }).unwrap();
    assert!(sim.run_until(30_000, Sim::completed));
    assert_eq!(sim.stable_revision(), Some(2));
}

#[test]
fn crash_looping_canary_aborts_by_itself() {
    let mut sim = deployed(
        canary(vec![CanaryStep::SetWeight(20), CanaryStep::Pause(None)]),
        2,
    );
    sim.ready_after.insert(2, None);
    sim.apply(2).unwrap();
    assert!(sim.run_until(30_000, |s| matches!(
        s.state.rollout.as_ref().map(|r| &r.phase),
        Some(Phase::Aborted { .. })
    )));
    let Some(Phase::Aborted { reason }) = sim.state.rollout.as_ref().map(|r| r.phase.clone())
    else {
        unreachable!()
    };
    assert!(reason.contains("crash-looping"), "{reason}");
    assert_eq!(sim.traffic(), [(1, 100.0)].into());
}

#[test]
fn no_progress_past_the_deadline_aborts() {
    let mut s = spec(rolling(IntOrPercent::Count(1), IntOrPercent::Count(0)), 2);
    s.progress_deadline = Duration::from_secs(5);
    let mut sim = Sim::new(s);
    sim.apply(1).unwrap();
    assert!(sim.run_until(30_000, Sim::completed));
    sim.ready_after.insert(2, Some(u64::MAX)); // starts, never ready, never crashes
    sim.apply(2).unwrap();
    assert!(sim.run_until(30_000, |s| matches!(
        s.state.rollout.as_ref().map(|r| &r.phase),
        Some(Phase::Aborted { .. })
    )));
    let reason = format!("{:?}", sim.state.rollout.as_ref().unwrap().phase);
    assert!(reason.contains("progressDeadline"), "{reason}");
    assert_eq!(sim.traffic(), [(1, 100.0)].into());
}

#[test]
fn blue_green_checks_then_switches_at_once() {
    let mut sim = deployed(blue_green(true, None), 3);
    sim.apply(2).unwrap();
    // The preview comes up at full size while the old stack keeps all traffic.
    assert!(sim.run_until(10_000, |s| s.desired().run_checks.is_some()));
    assert_eq!(sim.instances.iter().filter(|i| i.revision == 2).count(), 3);
    assert_eq!(sim.traffic(), [(1, 100.0)].into());
    assert!(sim.desired().preview.is_some());

    let rollout = sim.state.rollout.as_ref().unwrap().id;
    sim.input(Input::ChecksFinished {
        rollout,
        passed: true,
        detail: "1/1 ok".into(),
    })
    .unwrap();
    sim.observe();
    assert!(matches!(
        sim.state.rollout.as_ref().unwrap().phase,
        Phase::Paused { .. }
    ));
    assert_eq!(sim.traffic(), [(1, 100.0)].into(), "waits for promote");

    sim.command(Command::Promote { full: false }).unwrap();
    assert!(sim.completed());
    assert_eq!(
        sim.traffic(),
        [(2, 100.0)].into(),
        "one swap, no mixed traffic"
    );
    assert!(sim.desired().preview.is_none());
}

#[test]
fn blue_green_failed_checks_abort() {
    let mut sim = deployed(blue_green(true, None), 2);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| s.desired().run_checks.is_some()));
    let rollout = sim.state.rollout.as_ref().unwrap().id;
    sim.input(Input::ChecksFinished {
        rollout,
        passed: false,
        detail: "GET / -> 500".into(),
    })
    .unwrap();
    assert!(matches!(
        sim.state.rollout.as_ref().unwrap().phase,
        Phase::Aborted { .. }
    ));
    assert_eq!(sim.traffic(), [(1, 100.0)].into());
}

#[test]
fn blue_green_auto_promotion_waits_its_delay() {
    let mut sim = deployed(blue_green(false, Some(Duration::from_secs(5))), 2);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| matches!(
        s.state.rollout.as_ref().map(|r| &r.phase),
        Some(Phase::Paused { .. })
    )));
    let ready_at = sim.now;
    assert!(sim.run_until(20_000, Sim::completed));
    assert!(sim.now - ready_at >= 5_000);
    assert_eq!(sim.traffic(), [(2, 100.0)].into());
}

#[test]
fn undo_to_a_warm_revision_is_a_routing_change() {
    let mut sim = deployed(blue_green(false, Some(Duration::ZERO)), 2);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, Sim::completed));
    let started = sim.instances.len();
    sim.command(Command::Undo { revision: 1 }).unwrap();
    // Same observation: revision 1's stack is still warm, so traffic moved without new instances.
    assert!(sim.completed());
    assert_eq!(sim.stable_revision(), Some(1));
    assert_eq!(sim.traffic(), [(1, 100.0)].into());
    assert_eq!(sim.instances.len(), started);
}

#[test]
fn undo_to_a_cold_revision_is_a_fast_rollout() {
    let mut sim = deployed(Strategy::Recreate, 2);
    sim.apply(2).unwrap();
    assert!(sim.run_until(20_000, |s| s.completed() && s.stable_revision() == Some(2)));
    sim.run_until(40_000, |s| s.instances.iter().all(|i| i.revision == 2));
    sim.command(Command::Undo { revision: 1 }).unwrap();
    // Revision 2 keeps serving until revision 1 is ready again: no gap.
    for _ in 0..100 {
        assert!(
            !sim.traffic().is_empty(),
            "no revision serving at {}",
            sim.now
        );
        if sim.completed() {
            break;
        }
        sim.tick();
    }
    assert_eq!(sim.stable_revision(), Some(1));
}

#[test]
fn one_operation_at_a_time() {
    let mut sim = deployed(
        canary(vec![CanaryStep::SetWeight(10), CanaryStep::Pause(None)]),
        2,
    );
    sim.apply(2).unwrap();
    let refused = sim.apply(3).unwrap_err().0;
    assert!(
        refused.contains("rollout") && refused.contains("revision 2"),
        "{refused}"
    );
    for command in [
        Command::Undo { revision: 1 },
        Command::Scale { replicas: 5 },
        Command::Restart,
        Command::Retry,
    ] {
        let why = sim.command(command.clone()).unwrap_err().0;
        assert!(
            why.contains("in progress") || why.contains("paused"),
            "{command:?}: {why}"
        );
    }
    assert!(sim.command(Command::Resume).is_err());
    sim.command(Command::Abort).unwrap();
    assert!(
        sim.command(Command::Abort)
            .unwrap_err()
            .0
            .contains("nothing to abort")
    );
    assert!(
        sim.command(Command::Promote { full: false })
            .unwrap_err()
            .0
            .contains("nothing to promote")
    );

    let mut rolling_sim = deployed(rolling(IntOrPercent::Count(1), IntOrPercent::Count(0)), 2);
    rolling_sim.apply(2).unwrap();
    let why = rolling_sim
        .command(Command::Promote { full: false })
        .unwrap_err()
        .0;
    assert!(why.contains("no steps to promote"), "{why}");
}

#[test]
fn manual_pause_holds_and_resume_continues() {
    let mut sim = deployed(rolling(IntOrPercent::Count(1), IntOrPercent::Count(0)), 3);
    sim.apply(2).unwrap();
    sim.command(Command::Pause).unwrap();
    // maxSurge 1: the one new instance asked for before the pause, and nothing more after.
    let count = |sim: &Sim, revision| {
        sim.instances
            .iter()
            .filter(|i| i.revision == revision)
            .count()
    };
    let held = sim.desired().stacks;
    sim.run_until(20_000, |_| false);
    assert!(!sim.completed());
    assert_eq!(sim.desired().stacks, held, "stack sizes moved while paused");
    assert_eq!((count(&sim, 1), count(&sim, 2)), (3, 1));
    sim.command(Command::Resume).unwrap();
    assert!(sim.run_until(30_000, Sim::completed));
}

#[test]
fn scale_and_restart() {
    let mut sim = deployed(rolling(IntOrPercent::Count(1), IntOrPercent::Count(0)), 2);
    let before = sim.events.len();
    sim.command(Command::Scale { replicas: 4 }).unwrap();
    let kinds: Vec<&str> = sim.events[before..]
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["Scaled"], "one event per scale");
    assert!(
        sim.run_until(10_000, |s| s.world().values().map(|w| w.ready).sum::<u32>()
            == 4)
    );
    let old_stack = sim.state.stable.unwrap();
    sim.command(Command::Restart).unwrap();
    assert!(sim.run_until(60_000, Sim::completed));
    let new_stack = sim.state.stable.unwrap();
    assert_ne!(new_stack, old_stack);
    assert_eq!(sim.stable_revision(), Some(1));
    sim.run_until(10_000, |s| s.instances.iter().all(|i| i.stack == new_stack));
    assert!(
        sim.instances.iter().all(|i| i.stack == new_stack),
        "every instance replaced"
    );
    assert_eq!(sim.instances.len(), 4);
}

#[test]
fn analysis_step_waits_for_a_verdict() {
    let steps = vec![
        CanaryStep::SetWeight(20),
        CanaryStep::Analysis(Default::default()),
        CanaryStep::SetWeight(60),
        CanaryStep::Pause(None),
    ];
    let mut sim = deployed(canary(steps.clone()), 2);
    sim.apply(2).unwrap();
    assert!(sim.run_until(10_000, |s| !s.desired().analyses.is_empty()));
    let wanted = sim.desired().analyses[0];
    let (rollout, kind) = (wanted.rollout, wanted.kind);
    assert_eq!(kind, AnalysisKind::Step(1));
    sim.run_until(20_000, |_| false);
    assert_eq!(sim.traffic()[&2], 20.0, "no verdict, no progress");

    sim.input(Input::AnalysisFinished {
        rollout,
        kind,
        verdict: Verdict::Inconclusive,
        detail: "no data".into(),
    })
    .unwrap();
    assert!(matches!(
        sim.state.rollout.as_ref().unwrap().phase,
        Phase::Paused { .. }
    ));
    sim.command(Command::Promote { full: false }).unwrap();
    assert!(sim.run_until(10_000, |s| s.traffic().get(&2) == Some(&60.0)));

    let mut failing = deployed(canary(steps), 2);
    failing.apply(2).unwrap();
    assert!(failing.run_until(10_000, |s| !s.desired().analyses.is_empty()));
    let wanted = failing.desired().analyses[0];
    failing
        .input(Input::AnalysisFinished {
            rollout: wanted.rollout,
            kind: wanted.kind,
            verdict: Verdict::Failed,
            detail: "error rate 5%".into(),
        })
        .unwrap();
    assert!(matches!(
        failing.state.rollout.as_ref().unwrap().phase,
        Phase::Aborted { .. }
    ));
    assert_eq!(failing.traffic(), [(1, 100.0)].into());
}

#[test]
fn state_survives_serialization_mid_rollout() {
    let mut sim = deployed(
        canary(vec![
            CanaryStep::SetWeight(50),
            CanaryStep::Pause(Some(Duration::from_secs(30))),
        ]),
        2,
    );
    sim.apply(2).unwrap();
    sim.run_until(5_000, |s| {
        matches!(
            s.state.rollout.as_ref().map(|r| &r.phase),
            Some(Phase::Paused { .. })
        )
    });
    let Some(Phase::Paused {
        reason: PauseReason::Step { until },
    }) = sim.state.rollout.as_ref().map(|r| r.phase.clone())
    else {
        panic!("not paused: {}", sim.phase());
    };
    let json = serde_json::to_string(&sim.state).unwrap();
    let back: ramp_rollout::ServiceState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sim.state);

    // A new control plane (a fresh machine) starts from the stored state alone; the instances
    // kept running. The pause still ends at its time, not earlier, and the rollout completes.
    let mut restarted = Sim::new(sim.spec.clone());
    restarted.state = back;
    restarted.instances = sim.instances.clone();
    restarted.now = sim.now;
    assert!(restarted.run_until(40_000, Sim::completed));
    let completed_at = restarted.now;
    assert!(
        completed_at >= until,
        "completed at {completed_at}, pause ends at {until}"
    );
    assert!(
        completed_at < until + 2_000,
        "late: completed at {completed_at}, pause ends at {until}"
    );
    assert_eq!(restarted.stable_revision(), Some(2));
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let mut sim = deployed(
            canary(vec![
                CanaryStep::SetWeight(30),
                CanaryStep::Pause(Some(Duration::from_secs(3))),
            ]),
            3,
        );
        sim.apply(2).unwrap();
        sim.run_until(60_000, Sim::completed);
        (sim.state, sim.events)
    };
    assert_eq!(run(), run());
}

#[test]
fn route_names_follow_revisions() {
    let mut sim = deployed(rolling(IntOrPercent::Count(1), IntOrPercent::Count(0)), 1);
    sim.command(Command::Restart).unwrap();
    let stacks = sim.state.stacks.clone();
    let names: Vec<String> = stacks.iter().map(|s| s.route_name(&stacks)).collect();
    assert_eq!(names[0], "r1");
    assert!(names[1].starts_with("r1-"), "{names:?}");
}
