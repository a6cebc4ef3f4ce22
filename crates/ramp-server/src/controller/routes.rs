//! A service's routers in the agent: the main listener and, during a blue-green rollout, the
//! preview listener. A table is pushed only when it differs from the one in place.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ramp_model::{ServiceSpec, Strategy};
use ramp_proxy::PutRouter;
use ramp_proxy::agent::SettingsSpec;
use ramp_rollout::{Desired, ServiceState};
use ramp_route::TableSpec;

use super::Context;
use super::instances::Instances;
use crate::table::build_table;

/// Response header naming the revision that served a request.
pub(crate) const REVISION_HEADER: &str = "x-ramp-revision";

/// How long a request waits for an instance of its revision when none can take it: the gap
/// of a recreate, or a lone instance restarting, is a pause for clients instead of errors.
const HOLD_UNAVAILABLE: Duration = Duration::from_secs(10);

/// How often the agent is asked whether our routers are still there (it may have restarted).
const VERIFY_EVERY: Duration = Duration::from_secs(1);

/// The name of a service's blue-green preview router in the agent.
pub(crate) fn preview_router(service: &str) -> String {
    format!("{service}-preview")
}

#[derive(Debug)]
struct Link {
    name: String,
    generation: u64,
    pushed: Option<TableSpec>,
}

/// The main and preview routers of one service.
#[derive(Debug)]
pub(crate) struct RouterLinks {
    main: Link,
    preview: Link,
    verified: Option<Instant>,
}

impl RouterLinks {
    pub(crate) fn new(service: &str) -> RouterLinks {
        let link = |name: String| Link {
            name,
            generation: 0,
            pushed: None,
        };
        RouterLinks {
            main: link(service.to_string()),
            preview: link(preview_router(service)),
            verified: None,
        }
    }

    /// The table the main router serves, as last pushed.
    pub(crate) fn main_table(&self) -> Option<&TableSpec> {
        self.main.pushed.as_ref()
    }

    /// Picks up the generations and tables of routers an earlier control plane created.
    pub(crate) async fn restore(&mut self, ctx: &Context) {
        for link in [&mut self.main, &mut self.preview] {
            if let Ok(state) = ctx.agent.client().router(&link.name).await {
                link.generation = state.generation;
                link.pushed = Some(state.table);
            }
        }
    }

    /// Pushes the tables the desired routes make with the instances ready now.
    pub(crate) async fn push(
        &mut self,
        ctx: &Context,
        want: &Desired,
        state: &ServiceState,
        instances: &Instances,
        spec: &ServiceSpec,
    ) {
        self.verify(ctx).await;
        let ready = instances.ready_addrs();
        if let Some(table) = want
            .main
            .as_ref()
            .and_then(|r| build_table(r, &state.stacks, &ready))
        {
            push_link(&mut self.main, ctx, spec.listen, table).await;
        }
        let preview_listen = match &spec.strategy {
            Strategy::BlueGreen(b) => b.preview_listen,
            _ => None,
        };
        match (want.preview.as_ref(), preview_listen) {
            (Some(routes), Some(listen)) => {
                if let Some(table) = build_table(routes, &state.stacks, &ready) {
                    push_link(&mut self.preview, ctx, listen, table).await;
                }
            }
            _ if self.preview.pushed.is_some() => {
                let _ = ctx
                    .agent
                    .client()
                    .delete_router(&self.preview.name, Some(Duration::from_secs(5)))
                    .await;
                self.preview.pushed = None;
            }
            _ => {}
        }
    }

    /// Forgets what was pushed if the agent lost our routers (it restarted).
    async fn verify(&mut self, ctx: &Context) {
        if self.verified.is_some_and(|at| at.elapsed() < VERIFY_EVERY) {
            return;
        }
        self.verified = Some(Instant::now());
        let Ok(list) = ctx.agent.routers().await else {
            // Unreachable: bring it back; the next push re-creates the routers.
            if ctx.agent.ensure_running().await.unwrap_or(false) {
                self.main.pushed = None;
                self.preview.pushed = None;
            }
            return;
        };
        for link in [&mut self.main, &mut self.preview] {
            let there = list.routers.get(&link.name);
            if link.pushed.is_some() && there.is_none_or(|r| r.generation < link.generation) {
                link.pushed = None;
            }
        }
    }

    /// Removes both routers, letting in-flight requests finish within `grace`.
    pub(crate) async fn remove(&mut self, ctx: &Context, grace: Duration) {
        for link in [&mut self.main, &mut self.preview] {
            let _ = ctx
                .agent
                .client()
                .delete_router(&link.name, Some(grace))
                .await;
            link.pushed = None;
        }
    }
}

async fn push_link(link: &mut Link, ctx: &Context, listen: SocketAddr, table: TableSpec) {
    if link.pushed.as_ref() == Some(&table) {
        return;
    }
    let put = PutRouter {
        listen,
        workers: ctx.config.router_workers,
        pin_workers: false,
        generation: link.generation + 1,
        table: table.clone(),
        settings: SettingsSpec {
            revision_header: Some(REVISION_HEADER.into()),
            hold_unavailable: HOLD_UNAVAILABLE,
            ..SettingsSpec::default()
        },
    };
    match ctx.agent.put(&link.name, &put).await {
        Ok(result) => {
            link.generation = result.generation;
            // A newer configuration was already there (from before a restart): push again
            // with the next generation.
            if result.applied {
                link.pushed = Some(table);
            }
        }
        Err(e) => tracing::warn!(router = %link.name, "table not pushed, will retry: {e}"),
    }
}
