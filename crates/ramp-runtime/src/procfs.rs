//! Listing processes through `/proc`: every pid, and the processes whose command line
//! mentions something (how a run's leftovers are found: whatever it started names its
//! directory).

use std::{fs, io};

/// The pids of every process visible in `/proc`.
pub fn pids() -> io::Result<impl Iterator<Item = u32>> {
    Ok(fs::read_dir("/proc")?.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok()))
}

/// Every process other than this one whose command line contains `needle`, as
/// `(pid, command line with its arguments joined by spaces)`, by pid. Zombies have an empty
/// command line and so are not listed.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let Ok(pids) = pids() else {
        return Vec::new();
    };
    let mut found: Vec<(u32, String)> = pids
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw)
                .trim_end_matches('\0')
                .replace('\0', " ");
            cmdline.contains(needle).then_some((pid, cmdline))
        })
        .collect();
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn pids_include_this_process() {
        assert!(pids().unwrap().any(|pid| pid == std::process::id()));
    }

    /// Polls `processes_mentioning(needle)` until `done` holds of it (a process just spawned
    /// may still show its parent's command line for a moment).
    fn listing_until(needle: &str, done: impl Fn(&[(u32, String)]) -> bool) -> Vec<(u32, String)> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let found = processes_mentioning(needle);
            if done(&found) || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn finds_a_process_by_its_arguments_and_drops_it_once_a_zombie() {
        // `sleep` sums its operands: a unique, tiny second one marks this child.
        let marker = format!("0.000{}", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .args(["30", &marker])
            .spawn()
            .unwrap();
        let found = listing_until(&marker, |found| !found.is_empty());
        assert_eq!(found, vec![(child.id(), format!("sleep 30 {marker}"))]);

        child.kill().unwrap();
        let found = listing_until(&marker, <[_]>::is_empty);
        assert!(found.is_empty(), "still listed after SIGKILL: {found:?}");
        // Not reaped yet: the pid is still there, as a zombie, and is left out.
        assert!(pids().unwrap().any(|pid| pid == child.id()));
        child.wait().unwrap();
    }

    #[test]
    fn never_lists_this_process() {
        let own = fs::read(format!("/proc/{}/cmdline", std::process::id())).unwrap();
        let first_arg = String::from_utf8_lossy(&own)
            .split('\0')
            .next()
            .unwrap()
            .to_owned();
        let found = processes_mentioning(&first_arg);
        assert!(
            found.iter().all(|(pid, _)| *pid != std::process::id()),
            "{found:?}"
        );
    }
}
