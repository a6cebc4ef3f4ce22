//! Command metrics: a program's last line of output, or its success, is `result`.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use ramp_analysis::CommandQuery;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{EXCERPT_CHARS, number};

/// Most of stdout kept: its end, where the result line is.
const MAX_STDOUT: usize = 64 << 10;
/// Most of stderr kept for error messages: its end, where the reason usually is.
const MAX_STDERR: usize = 4 << 10;

/// Runs `q.command` (program, then arguments) with stdin on `/dev/null`, in its own process
/// group, and waits up to `q.timeout` for it to exit and close its output.
///
/// When it exits 0, `result` is the last non-empty line of its stdout if that line is a
/// number (`0.25`, `-3`, `1e3`; `nan` and `inf` map as in [`super::number`]) or `true` /
/// `false`; otherwise — no output, or text — `result` is `true`: the command succeeded.
/// Only the last 64 KiB of stdout are kept, which always hold the last line.
///
/// Errors: a non-zero exit or death by a signal (with the end of stderr), whatever it printed;
/// a program that cannot be started; and a timeout, after which the whole process group is
/// killed so that nothing the command started outlives it.
pub async fn command(q: &CommandQuery) -> Result<Value, String> {
    let Some((program, args)) = q.command.split_first() else {
        return Err("empty command".to_owned());
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    // The group keeps this id while any member lives, even after the leader has exited.
    let group = GroupKiller(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let run = async {
        tokio::join!(
            read_tail(stdout, MAX_STDOUT),
            read_tail(stderr, MAX_STDERR),
            child.wait()
        )
    };
    let Ok((stdout, stderr, status)) = tokio::time::timeout(q.timeout, run).await else {
        drop(group);
        let _ = child.kill().await;
        return Err(format!(
            "`{program}` timed out after {:?} and was killed",
            q.timeout
        ));
    };
    group.disarm();
    let status = status.map_err(|e| format!("cannot wait for `{program}`: {e}"))?;
    let stdout = stdout.map_err(|e| format!("reading the output of `{program}`: {e}"))?;
    if !status.success() {
        let stderr = stderr.unwrap_or_default();
        return Err(format!(
            "`{program}` {}: {}",
            describe_exit(status),
            stderr_excerpt(&stderr)
        ));
    }
    Ok(result_of(&stdout))
}

/// Kills a process group with SIGKILL when dropped: on timeout, and when the measurement is
/// abandoned before the command ended.
#[derive(Debug)]
struct GroupKiller(Option<Pid>);

impl GroupKiller {
    /// The command ended in time: nothing to kill.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// Everything `pipe` yields until it closes, keeping only the last `cap` bytes.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return Ok(kept);
    };
    let mut chunk = vec![0u8; 8 << 10];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(kept);
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > cap {
            kept.drain(..kept.len() - cap);
        }
    }
}

/// `result` from a successful command's stdout.
fn result_of(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().map(str::trim).rfind(|line| !line.is_empty());
    match last {
        Some("true") => Value::Bool(true),
        Some("false") => Value::Bool(false),
        Some(line) => line.parse::<f64>().map_or(Value::Bool(true), number),
        None => Value::Bool(true),
    }
}

/// How the command ended: `exited with status 3`, `was killed by SIGTERM`.
fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(number) => match Signal::try_from(number) {
            Ok(signal) => format!("was killed by {}", signal.as_str()),
            Err(_) => format!("was killed by signal {number}"),
        },
        None => status.to_string(),
    }
}

/// The end of stderr as one line: whitespace runs collapsed, at most [`EXCERPT_CHARS`]
/// characters, with `…` in front when cut.
fn stderr_excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "nothing on stderr".to_owned();
    }
    let chars = line.chars().count();
    if chars <= EXCERPT_CHARS {
        return line;
    }
    let tail: String = line.chars().skip(chars - EXCERPT_CHARS).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    fn sh(script: &str, timeout: Duration) -> CommandQuery {
        CommandQuery {
            command: vec!["sh".into(), "-c".into(), script.into()],
            timeout,
        }
    }

    async fn run(script: &str) -> Result<Value, String> {
        command(&sh(script, Duration::from_secs(10))).await
    }

    #[tokio::test]
    async fn the_last_number_printed_is_the_result() {
        assert_eq!(run("echo checking; echo 0.75; echo").await, Ok(json!(0.75)));
        assert_eq!(run("printf '12'").await, Ok(json!(12.0)));
        assert_eq!(run("echo nan").await, Ok(Value::Null));
    }

    #[tokio::test]
    async fn booleans_are_results_too() {
        assert_eq!(run("echo false").await, Ok(json!(false)));
        assert_eq!(run("echo 1; echo true").await, Ok(json!(true)));
    }

    #[tokio::test]
    async fn success_without_a_number_is_true() {
        assert_eq!(run("true").await, Ok(json!(true)));
        assert_eq!(run("echo 5; echo all good").await, Ok(json!(true)));
    }

    #[tokio::test]
    async fn failure_is_an_error_with_the_end_of_stderr() {
        let err = run("echo 0.1; echo 'cannot reach db' >&2; exit 3")
            .await
            .unwrap_err();
        assert_eq!(err, "`sh` exited with status 3: cannot reach db");
        let err = run("kill -TERM $$").await.unwrap_err();
        assert_eq!(err, "`sh` was killed by SIGTERM: nothing on stderr");
    }

    #[tokio::test]
    async fn long_output_keeps_its_last_line() {
        let script =
            "i=0; while [ $i -lt 20000 ]; do echo noise-line-$i; i=$((i+1)); done; echo 42";
        assert_eq!(run(script).await, Ok(json!(42.0)));
    }

    #[tokio::test]
    async fn bad_commands_are_errors() {
        let empty = CommandQuery {
            command: Vec::new(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(command(&empty).await, Err("empty command".to_owned()));
        let missing = CommandQuery {
            command: vec!["/nonexistent/ramp-check".into()],
            timeout: Duration::from_secs(1),
        };
        let err = command(&missing).await.unwrap_err();
        assert!(
            err.starts_with("cannot run `/nonexistent/ramp-check`"),
            "{err}"
        );
    }

    /// Whether process `pid` is gone (or a zombie waiting for a parent that does not reap).
    fn gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    /// A script that starts `sleep 30` in the background, writes its pid to a file, and
    /// waits for it; with that file's path.
    fn sleeper_script() -> (String, std::path::PathBuf) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let pid_file =
            std::env::temp_dir().join(format!("ramp-measure-sleep-{}-{nanos}", std::process::id()));
        let script = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
        (script, pid_file)
    }

    /// Waits until the sleep whose pid is in `pid_file` is gone; fails after a few seconds.
    async fn assert_sleep_ends(pid_file: &std::path::Path) {
        let pid = std::fs::read_to_string(pid_file).expect("the script wrote the sleep's pid");
        let _ = std::fs::remove_file(pid_file);
        let pid = pid.trim();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(pid) {
            assert!(
                Instant::now() < deadline,
                "sleep {pid} outlived its command"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let (script, pid_file) = sleeper_script();
        let started = Instant::now();
        let err = command(&sh(&script, Duration::from_millis(500)))
            .await
            .unwrap_err();
        assert_eq!(err, "`sh` timed out after 500ms and was killed");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_sleep_ends(&pid_file).await;
    }

    #[tokio::test]
    async fn an_abandoned_measurement_kills_the_whole_group() {
        let (script, pid_file) = sleeper_script();
        let q = sh(&script, Duration::from_secs(60));
        let abandoned = tokio::time::timeout(Duration::from_millis(500), command(&q)).await;
        assert!(abandoned.is_err(), "the command was still running");
        assert_sleep_ends(&pid_file).await;
    }

    #[test]
    fn stderr_excerpts_keep_the_end() {
        let long = format!("{} final reason", "x".repeat(500));
        let cut = stderr_excerpt(long.as_bytes());
        assert!(
            cut.starts_with('…') && cut.ends_with("final reason"),
            "{cut}"
        );
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
    }

    proptest! {
        #[test]
        fn a_printed_number_comes_back(
            noise in proptest::collection::vec("[a-z ]{0,10}", 0..4),
            value in -1e15f64..1e15,
            blank_lines in 0usize..3,
        ) {
            let mut out = noise.join("\n");
            out.push_str(&format!("\n  {value}  \n"));
            out.push_str(&"\n".repeat(blank_lines));
            prop_assert_eq!(result_of(out.as_bytes()), json!(value));
        }

        #[test]
        fn the_tail_is_kept(all in proptest::collection::vec(any::<u8>(), 0..20_000), cap in 1usize..10_000) {
            let kept = block_on(read_tail(Some(all.as_slice()), cap)).unwrap();
            prop_assert_eq!(&kept[..], &all[all.len().saturating_sub(cap)..]);
        }
    }

    /// Runs a future that never waits on I/O readiness to completion.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }
}
