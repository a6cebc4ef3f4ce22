//! Records one request in its revision's metrics, whatever way the request ends.

use std::time::Instant;

use ramp_metrics::RevisionShard;

use crate::snapshot::LocalSnapshot;
use crate::worker::Worker;

/// Counts a request as in flight from creation; on [`Recorder::finish`] records its status and
/// latency. Dropped unfinished (the client went away, the task was cancelled), it is counted as
/// abandoned, so the in-flight gauge never drifts.
#[derive(Debug)]
pub(crate) struct Recorder {
    snapshot: LocalSnapshot,
    revision: usize,
    worker: usize,
    started: Instant,
    done: bool,
}

impl Recorder {
    pub(crate) fn start(snapshot: &LocalSnapshot, revision: usize, worker: &Worker) -> Self {
        let recorder = Recorder {
            snapshot: LocalSnapshot::clone(snapshot),
            revision,
            worker: worker.id,
            started: worker.now(),
            done: false,
        };
        recorder.shard().request_started();
        recorder
    }

    fn shard(&self) -> &RevisionShard {
        self.snapshot.revisions[self.revision]
            .metrics
            .shard(self.worker)
    }

    /// Records the outcome: the status the client got (none if no response was started) and
    /// whether an instance failed to answer.
    pub(crate) fn finish(mut self, status: Option<u16>, upstream_failed: bool) {
        self.done = true;
        let shard = self.shard();
        if upstream_failed {
            shard.upstream_error();
        }
        match status {
            Some(status) => {
                shard.request_finished(status, self.started.elapsed().as_micros() as u64)
            }
            None => shard.request_abandoned(),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.done {
            self.shard().request_abandoned();
        }
    }
}
