//! Supervisors running real processes (`sh` scripts).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use ramp_model::{Probe, ProbeAction, StopPolicy};
use ramp_runtime::{
    InstanceSpec, InstanceState, Phase, ProcessId, RuntimeError, StopOutcome, Supervisor,
    is_same_process, stop_process, tail_log,
};
use tempfile::TempDir;
use tokio::sync::watch;

/// An instance running `sh -c script` in a fresh directory, logging to `<dir>/logs/app.log`.
fn spec(name: &str, script: &str) -> (InstanceSpec, TempDir) {
    let dir = common::temp_dir(name);
    (spec_in(dir.path(), name, script), dir)
}

/// An instance running `sh -c script` in `dir`.
fn spec_in(dir: &Path, name: &str, script: &str) -> InstanceSpec {
    InstanceSpec {
        id: format!("{name}-1-test"),
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".to_owned(), script.to_owned()],
        env: Vec::new(),
        port_env: "PORT".to_owned(),
        working_dir: dir.to_owned(),
        port: 40000,
        log_path: dir.join("logs").join("nested").join("app.log"),
        readiness: None,
        liveness: None,
        stop: StopPolicy {
            signal: "SIGTERM".to_owned(),
            grace_period: Duration::from_secs(5),
        },
    }
}

/// A probe checking every 50ms that `flag` exists.
fn file_probe(flag: &Path, failure_threshold: u32) -> Probe {
    Probe {
        action: ProbeAction::Exec {
            command: vec![
                "test".to_owned(),
                "-f".to_owned(),
                flag.display().to_string(),
            ],
        },
        initial_delay: Duration::ZERO,
        period: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
        success_threshold: 1,
        failure_threshold,
    }
}

async fn wait_state(
    rx: &mut watch::Receiver<InstanceState>,
    what: &str,
    ok: impl FnMut(&InstanceState) -> bool,
) -> InstanceState {
    let result = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(ok))
        .await
        .map(|r| r.map(|state| state.clone()));
    match result {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("supervisor gone while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}; state: {:?}", *rx.borrow()),
    }
}

async fn wait_ready(sup: &Supervisor) -> ProcessId {
    let state = wait_state(&mut sup.watch(), "ready", |s| s.phase == Phase::Ready).await;
    state.process.expect("a ready instance has a process")
}

/// `(pid, state, ppid)` of the processes in the group, from /proc.
fn members(pgid: u32) -> Vec<(u32, String, u32)> {
    let mut members = Vec::new();
    for pid in ramp_runtime::pids().unwrap() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        // Fields 3 (state), 4 (ppid), 5 (pgrp).
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields.get(2) == Some(&pgid.to_string().as_str()) {
            let ppid = fields[1].parse().unwrap_or(0);
            members.push((pid, fields[0].to_owned(), ppid));
        }
    }
    members
}

/// Live (non-zombie) processes in the group.
fn live_members(pgid: u32) -> Vec<u32> {
    members(pgid)
        .into_iter()
        .filter(|(_, state, _)| state != "Z")
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Waits until the group has at least `count` live processes (a script's children are up).
async fn wait_live_members(pgid: u32, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while live_members(pgid).len() < count {
        assert!(Instant::now() < deadline, "children never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no live process is left in the group (a SIGKILL takes a moment to land).
async fn wait_no_live_members(pgid: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let live = live_members(pgid);
        if live.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "group {pgid} still has {live:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Makes this test process the reaper of orphaned descendants, so that [`wait_group_empty`]
/// does not depend on how soon init reaps the instance's orphaned children (some container
/// inits take seconds). Call before launching.
fn reap_orphans_here() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| nix::sys::prctl::set_child_subreaper(true).unwrap());
}

/// Waits until `kill(-pgid, 0)` fails: nothing, not even a zombie, is left in the group.
/// Zombies reparented to this process (see [`reap_orphans_here`]) are reaped here.
async fn wait_group_empty(pgid: u32) {
    let me = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        for (pid, state, ppid) in members(pgid) {
            if state == "Z" && ppid == me {
                let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
            }
        }
        match killpg(Pid::from_raw(pgid as i32), None) {
            Err(Errno::ESRCH) => return,
            other => assert!(
                Instant::now() < deadline,
                "group {pgid} still there: {other:?}, members {:?}",
                members(pgid)
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_process_is_restarted_with_growing_backoff() {
    let (spec, dir) = spec("crash", "echo run; exit 3");
    let log = spec.log_path.clone();
    let sup = Supervisor::launch(spec).unwrap();
    let mut rx = sup.watch();
    let mut seen = Vec::new();
    for restarts in 1..=3 {
        let state = wait_state(&mut rx, "a restart", |s| s.restarts == restarts).await;
        seen.push((Instant::now(), state));
    }
    for (_, state) in &seen {
        assert_eq!(state.phase, Phase::Restarting);
        assert_eq!(state.process, None);
        assert_eq!(state.last_exit.as_deref(), Some("exited with status 3"));
    }
    assert!(!seen[0].1.crash_looping);
    assert!(!seen[1].1.crash_looping);
    assert!(seen[2].1.crash_looping);
    let first_gap = seen[1].0 - seen[0].0;
    let second_gap = seen[2].0 - seen[1].0;
    assert!(first_gap >= Duration::from_millis(450), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(950), "{second_gap:?}");
    assert!(second_gap > first_gap);
    // Each run appended to the same log.
    let runs = std::fs::read_to_string(&log)
        .unwrap()
        .matches("run")
        .count();
    assert!(runs >= 3, "{runs} runs logged");
    assert_ne!(sup.stop().await, StopOutcome::Killed);
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn death_by_signal_is_described() {
    let (spec, dir) = spec("signal-death", "kill -KILL $$");
    let sup = Supervisor::launch(spec).unwrap();
    let state = wait_state(&mut sup.watch(), "a restart", |s| s.restarts == 1).await;
    assert_eq!(state.last_exit.as_deref(), Some("killed by SIGKILL"));
    sup.stop().await;
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_left_by_a_crash_are_killed_before_the_restart() {
    let (spec, dir) = spec("crash-orphans", "sleep 100 & echo $! >> children; exit 1");
    let children = dir.path().join("children");
    let sup = Supervisor::launch(spec).unwrap();
    wait_state(&mut sup.watch(), "a restart", |s| s.restarts == 1).await;
    let first: u32 = std::fs::read_to_string(&children)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The whole group of the crashed run is gone, not just its leader, before the restart.
    let stat = std::fs::read_to_string(format!("/proc/{first}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "orphan {first} alive: {stat}"
    );
    sup.stop().await;
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_land_in_the_log() {
    let script = "echo to-stdout; echo to-stderr >&2; \
                  i=1; while [ $i -le 50 ]; do echo line-$i; i=$((i+1)); done; exec sleep 100";
    let (spec, dir) = spec("logs", script);
    let log = spec.log_path.clone();
    let sup = Supervisor::launch(spec).unwrap();
    let text = common::wait_for_text(&log, "line-50\n", 5).await;
    assert!(text.starts_with("to-stdout\nto-stderr\nline-1\n"), "{text}");
    assert_eq!(
        tail_log(&log, 3).unwrap(),
        ["line-48", "line-49", "line-50"]
    );
    assert_eq!(tail_log(&log, 100).unwrap().len(), 52);
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_is_substituted_in_args_and_env_and_exported() {
    let (mut spec, dir) = spec("port", "");
    spec.args = vec![
        "-c".to_owned(),
        "echo \"arg=$1 url=$MY_URL port=$APP_PORT\"; exec sleep 100".to_owned(),
        "sh".to_owned(),
        "--listen=127.0.0.1:{port}".to_owned(),
    ];
    spec.env = vec![("MY_URL".to_owned(), "http://127.0.0.1:{port}/x".to_owned())];
    spec.port_env = "APP_PORT".to_owned();
    spec.port = 43210;
    let log = spec.log_path.clone();
    let sup = Supervisor::launch(spec).unwrap();
    common::wait_for_text(&log, "\n", 5).await;
    assert_eq!(
        tail_log(&log, 1).unwrap(),
        ["arg=--listen=127.0.0.1:43210 url=http://127.0.0.1:43210/x port=43210"]
    );
    sup.stop().await;
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sends_the_configured_signal_first() {
    let script = "trap 'echo got TERM; exit 0' TERM; echo started; while :; do sleep 0.05; done";
    let (spec, dir) = spec("stop-term", script);
    let log = spec.log_path.clone();
    let sup = Supervisor::launch(spec).unwrap();
    let mut rx = sup.watch();
    let pid = wait_ready(&sup).await.pid;
    common::wait_for_text(&log, "started", 5).await;
    let started = Instant::now();
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(std::fs::read_to_string(&log).unwrap().contains("got TERM"));
    assert!(live_members(pid).is_empty());
    let last = rx.borrow_and_update().clone();
    assert_eq!((last.phase, last.process), (Phase::Stopped, None));
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_uses_another_configured_signal() {
    let script = "trap 'echo got USR1; exit 0' USR1; echo started; while :; do sleep 0.05; done";
    let (mut spec, dir) = spec("stop-usr1", script);
    spec.stop.signal = "USR1".to_owned();
    let log = spec.log_path.clone();
    let sup = Supervisor::launch(spec).unwrap();
    common::wait_for_text(&log, "started", 5).await;
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    assert!(std::fs::read_to_string(&log).unwrap().contains("got USR1"));
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_escalates_to_sigkill_after_the_grace_period() {
    reap_orphans_here();
    let (mut spec, dir) = spec("stop-kill", "trap '' TERM; echo started; sleep 100");
    spec.stop.grace_period = Duration::from_millis(300);
    let log = spec.log_path.clone();
    let sup = Supervisor::launch(spec).unwrap();
    let process = wait_ready(&sup).await;
    common::wait_for_text(&log, "started", 5).await;
    let started = Instant::now();
    assert_eq!(sup.stop().await, StopOutcome::Killed);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(!is_same_process(process));
    assert!(live_members(process.pid).is_empty());
    wait_group_empty(process.pid).await;
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_leaves_no_children_behind() {
    reap_orphans_here();
    let (spec, dir) = spec("stop-children", "sleep 100 & sleep 100");
    let sup = Supervisor::launch(spec).unwrap();
    let pgid = wait_ready(&sup).await.pid;
    wait_live_members(pgid, 3).await;
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    assert!(live_members(pgid).is_empty());
    wait_group_empty(pgid).await;
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_children_that_ignore_the_signal() {
    reap_orphans_here();
    let (mut spec, dir) = spec(
        "stop-stubborn-children",
        "trap '' TERM; sleep 100 & sleep 100 & wait",
    );
    spec.stop.grace_period = Duration::from_millis(200);
    let sup = Supervisor::launch(spec).unwrap();
    let pgid = wait_ready(&sup).await.pid;
    wait_live_members(pgid, 3).await;
    assert_eq!(sup.stop().await, StopOutcome::Killed);
    assert!(live_members(pgid).is_empty());
    wait_group_empty(pgid).await;
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_between_restarts_finds_nothing_running() {
    let (spec, dir) = spec("stop-restarting", "exit 1");
    let sup = Supervisor::launch(spec).unwrap();
    wait_state(&mut sup.watch(), "restarting", |s| {
        s.phase == Phase::Restarting
    })
    .await;
    assert_eq!(sup.stop().await, StopOutcome::AlreadyGone);
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_readiness_probe_running_is_ready() {
    let (spec, dir) = spec("no-probe", "exec sleep 100");
    let sup = Supervisor::launch(spec).unwrap();
    let process = wait_ready(&sup).await;
    assert!(is_same_process(process));
    let state = sup.state();
    assert_eq!((state.restarts, state.crash_looping), (0, false));
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    assert!(!is_same_process(process));
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_gates_the_instance() {
    let (mut spec, dir) = spec("readiness", "exec sleep 100");
    let flag = dir.path().join("ready");
    spec.readiness = Some(file_probe(&flag, 2));
    let sup = Supervisor::launch(spec).unwrap();
    let mut rx = sup.watch();
    // Failing checks before the first success keep it Starting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = sup.state();
    assert_eq!(state.phase, Phase::Starting);
    assert!(state.process.is_some());

    std::fs::write(&flag, "").unwrap();
    let ready = wait_state(&mut rx, "ready", |s| s.phase == Phase::Ready).await;
    assert!(ready.since > state.since);
    std::fs::remove_file(&flag).unwrap();
    wait_state(&mut rx, "not ready", |s| s.phase == Phase::NotReady).await;
    std::fs::write(&flag, "").unwrap();
    let again = wait_state(&mut rx, "ready again", |s| s.phase == Phase::Ready).await;
    // Readiness never restarts anything.
    assert_eq!(again.restarts, 0);
    assert_eq!(again.process, ready.process);
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_over_http() {
    let (port, requests) =
        common::http_server(|path| if path == "/healthz" { 200 } else { 404 }).await;
    let (mut spec, dir) = spec("readiness-http", "exec sleep 100");
    spec.port = port;
    spec.readiness = Some(Probe {
        action: ProbeAction::Http {
            path: "/healthz".to_owned(),
        },
        initial_delay: Duration::from_millis(100),
        period: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
        success_threshold: 2,
        failure_threshold: 3,
    });
    let sup = Supervisor::launch(spec).unwrap();
    wait_ready(&sup).await;
    let seen = requests.lock().unwrap().clone();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen[0].starts_with("GET /healthz HTTP/1.1\r\n"));
    sup.stop().await;
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_failure_restarts_the_instance() {
    let (mut spec, dir) = spec("liveness", "exec sleep 100");
    let flag = dir.path().join("alive");
    std::fs::write(&flag, "").unwrap();
    spec.liveness = Some(file_probe(&flag, 2));
    let sup = Supervisor::launch(spec).unwrap();
    let mut rx = sup.watch();
    let first = wait_ready(&sup).await;
    std::fs::remove_file(&flag).unwrap();
    let state = wait_state(&mut rx, "a restart", |s| s.restarts == 1).await;
    std::fs::write(&flag, "").unwrap();
    assert_eq!(state.last_exit.as_deref(), Some("liveness probe failed"));
    assert!(!is_same_process(first));
    let state = wait_state(&mut rx, "ready again", |s| s.phase == Phase::Ready).await;
    let second = state.process.unwrap();
    assert_ne!(second, first);
    assert_eq!(state.restarts, 1);
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_instance_is_adopted_and_stopped() {
    let script = "trap 'echo got TERM; exit 0' TERM; echo started; while :; do sleep 0.05; done";
    let (spec, dir) = spec("adopt", script);
    let log = spec.log_path.clone();
    let sup = Supervisor::launch(spec.clone()).unwrap();
    let launched = wait_ready(&sup).await;
    common::wait_for_text(&log, "started", 5).await;
    let process = sup.detach().expect("a running process");
    assert_eq!(process, launched);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        is_same_process(process),
        "detach must leave the process running"
    );

    let sup = Supervisor::adopt(spec, process, 2).unwrap();
    let state = sup.state();
    assert_eq!((state.process, state.restarts), (Some(process), 2));
    assert_eq!(wait_ready(&sup).await, process);
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    assert!(!is_same_process(process));
    assert!(std::fs::read_to_string(&log).unwrap().contains("got TERM"));
    assert!(live_members(process.pid).is_empty());
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_instance_that_dies_is_restarted() {
    let (spec, dir) = spec("adopt-crash", "exec sleep 100");
    let sup = Supervisor::launch(spec.clone()).unwrap();
    wait_ready(&sup).await;
    let process = sup.detach().unwrap();
    let sup = Supervisor::adopt(spec, process, 0).unwrap();
    let mut rx = sup.watch();
    kill(Pid::from_raw(process.pid as i32), Signal::SIGKILL).unwrap();
    let state = wait_state(&mut rx, "a restart", |s| s.restarts == 1).await;
    assert_eq!(state.last_exit.as_deref(), Some("exited (status unknown)"));
    let state = wait_state(&mut rx, "a new process", |s| {
        s.phase == Phase::Ready && s.process.is_some()
    })
    .await;
    let replacement = state.process.unwrap();
    assert_ne!(replacement, process);
    assert!(is_same_process(replacement));
    sup.stop().await;
    assert!(!is_same_process(replacement));
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_a_dead_or_reused_pid_fails() {
    let (spec, dir) = spec("adopt-refused", "exec sleep 100");
    let sup = Supervisor::launch(spec.clone()).unwrap();
    let process = wait_ready(&sup).await;

    let reused = ProcessId {
        start_time: process.start_time + 1,
        ..process
    };
    let err = Supervisor::adopt(spec.clone(), reused, 0).unwrap_err();
    assert!(matches!(err, RuntimeError::NotRunning { .. }), "{err}");
    assert!(err.to_string().contains(&process.pid.to_string()), "{err}");
    assert!(
        is_same_process(process),
        "a refused adoption touches nothing"
    );

    sup.stop().await;
    let err = Supervisor::adopt(spec, process, 0).unwrap_err();
    assert!(matches!(err, RuntimeError::NotRunning { .. }), "{err}");
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_errors_name_what_is_wrong() {
    let (mut spec, dir) = spec("errors", "exit 0");
    spec.program = PathBuf::from("/nonexistent/ramp-no-such-program");
    let err = Supervisor::launch(spec.clone()).unwrap_err();
    assert!(matches!(err, RuntimeError::Spawn { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("/nonexistent/ramp-no-such-program"),
        "{err}"
    );

    let not_executable = dir.path().join("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    spec.program = not_executable.clone();
    let err = Supervisor::launch(spec.clone()).unwrap_err();
    assert!(
        err.to_string()
            .contains(&not_executable.display().to_string()),
        "{err}"
    );

    spec.program = PathBuf::from("/bin/sh");
    spec.working_dir = dir.path().join("missing");
    let err = Supervisor::launch(spec.clone()).unwrap_err();
    assert!(matches!(err, RuntimeError::WorkingDir { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");

    spec.working_dir = dir.path().to_owned();
    spec.stop.signal = "SIGWHATEVER".to_owned();
    let err = Supervisor::launch(spec).unwrap_err();
    assert_eq!(err.to_string(), "unknown signal `SIGWHATEVER`");
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_supervisor_kills_the_instance() {
    let (spec, dir) = spec("drop", "sleep 100 & exec sleep 100");
    let sup = Supervisor::launch(spec).unwrap();
    let process = wait_ready(&sup).await;
    // `drop` sends SIGKILL synchronously; delivery takes a moment.
    drop(sup);
    wait_no_live_members(process.pid).await;
    assert!(!is_same_process(process));
    dir.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_process_stops_an_unsupervised_instance() {
    let (spec, dir) = spec("stop-process", "exec sleep 100");
    let sup = Supervisor::launch(spec).unwrap();
    wait_ready(&sup).await;
    let process = sup.detach().unwrap();
    assert_eq!(
        stop_process(process, "TERM", Duration::from_secs(2)).await,
        StopOutcome::Exited
    );
    assert!(!is_same_process(process));
    assert_eq!(
        stop_process(process, "TERM", Duration::from_secs(2)).await,
        StopOutcome::AlreadyGone
    );
    dir.close().unwrap();
}

/// Set in the copy of this test binary that plays the control plane to be killed.
const CONTROL_PLANE_DIR: &str = "RAMP_RUNTIME_TEST_CONTROL_PLANE_DIR";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_survive_a_killed_control_plane_and_are_adopted() {
    let script = "trap 'echo got TERM; exit 0' TERM; while :; do echo tick; sleep 0.05; done";
    if let Some(dir) = std::env::var_os(CONTROL_PLANE_DIR) {
        // The control plane: launch, publish the process, wait to be killed.
        let dir = PathBuf::from(dir);
        let mut spec = spec_in(&dir, "control-plane-child", script);
        spec.log_path = dir.join("app.log");
        let sup = Supervisor::launch(spec).unwrap();
        let process = wait_ready(&sup).await;
        let published = dir.join("instance.tmp");
        std::fs::write(
            &published,
            format!("{} {}", process.pid, process.start_time),
        )
        .unwrap();
        std::fs::rename(published, dir.join("instance")).unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        panic!("the control plane was not killed");
    }

    let (mut spec, dir) = spec("control-plane", script);
    spec.log_path = dir.path().join("app.log");
    let mut control_plane = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "instances_survive_a_killed_control_plane_and_are_adopted",
            "--nocapture",
        ])
        .env(CONTROL_PLANE_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let published = common::wait_for_text(&dir.path().join("instance"), " ", 10).await;
    let (pid, start_time) = published.split_once(' ').unwrap();
    let process = ProcessId {
        pid: pid.parse().unwrap(),
        start_time: start_time.parse().unwrap(),
    };
    control_plane.kill().unwrap(); // SIGKILL
    control_plane.wait().unwrap();

    // The instance keeps running and logging without its control plane.
    let before = std::fs::metadata(&spec.log_path).unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is_same_process(process));
    assert!(std::fs::metadata(&spec.log_path).unwrap().len() > before);

    let sup = Supervisor::adopt(spec.clone(), process, 0).unwrap();
    assert_eq!(wait_ready(&sup).await, process);
    assert_eq!(sup.stop().await, StopOutcome::Exited);
    assert!(!is_same_process(process));
    assert_eq!(tail_log(&spec.log_path, 1).unwrap(), ["got TERM"]);
    assert!(live_members(process.pid).is_empty());
    dir.close().unwrap();
}
