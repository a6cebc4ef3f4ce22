//! Blue-green pre-promotion checks: smoke requests to the preview stack and commands.

use std::net::SocketAddr;
use std::time::Duration;

use ramp_model::{Check, ServiceSpec, Strategy};

use super::{Controller, Internal};

/// Runs the checks of `rollout` against `stack` in the background and reports the result.
pub(super) fn run(controller: &Controller, spec: &ServiceSpec, rollout: u64, stack: u64) {
    let Strategy::BlueGreen(settings) = &spec.strategy else {
        return;
    };
    let checks = settings.pre_promotion_checks.clone();
    // Through the preview listener when there is one (it is what users will hit), else
    // straight to a preview instance.
    let target = settings.preview_listen.or_else(|| {
        controller
            .instances
            .list
            .iter()
            .find(|i| i.stack == stack && i.is_ready())
            .map(|i| i.addr())
    });
    let report = controller.internal.clone();
    tokio::spawn(async move {
        let (passed, detail) = match target {
            Some(target) => run_all(&checks, target).await,
            None => (false, "no preview instance is ready".to_string()),
        };
        let _ = report.send(Internal::ChecksFinished {
            rollout,
            passed,
            detail,
        });
    });
}

async fn run_all(checks: &[Check], target: SocketAddr) -> (bool, String) {
    let mut passed = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        match run_one(check, target).await {
            Ok(what) => passed.push(what),
            Err(why) => return (false, format!("check {}: {why}", i + 1)),
        }
    }
    (true, passed.join("; "))
}

async fn run_one(check: &Check, target: SocketAddr) -> Result<String, String> {
    match check {
        Check::Http {
            path,
            requests,
            expect_status,
        } => {
            for n in 1..=*requests {
                let status = get(target, path).await?;
                if status < expect_status.0 || status > expect_status.1 {
                    return Err(format!(
                        "GET {path} answered {status} (request {n} of {requests}), expected {}-{}",
                        expect_status.0, expect_status.1
                    ));
                }
            }
            Ok(format!("GET {path} x{requests} ok"))
        }
        Check::Command { command, timeout } => {
            let args: Vec<String> = command
                .iter()
                .map(|a| a.replace("{preview}", &target.to_string()))
                .collect();
            // In its own process group, killed with it on timeout.
            ramp_runtime::run_command(&args, *timeout).await?;
            // `run_command` refuses an empty command, so there is a program.
            Ok(format!("{} ok", args[0]))
        }
    }
}

/// One `GET` on a fresh connection; returns the status code.
async fn get(target: SocketAddr, path: &str) -> Result<u16, String> {
    tokio::time::timeout(
        Duration::from_secs(10),
        ramp_runtime::http_status(target, path),
    )
    .await
    .map_err(|_| format!("GET {path}: no answer within 10s"))?
    .map_err(|e| format!("GET {path}: {e}"))
}
