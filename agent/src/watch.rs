//! The watcher: Azure Scheduled Events about once a second, and the heartbeat.
//!
//! On an event that takes this VM away or restarts it (spot `Preempt` as little as 30 s ahead,
//! `Terminate`, `Reboot`, `Redeploy`), the agent: reports `eviction-coming` at once; stops the
//! game gracefully and reports the save; waits (briefly) for those reports to reach the queue,
//! since the VM and its spool may be gone a moment later; then approves the event with
//! `StartRequests`, so that Azure goes ahead without waiting out the notice.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use heimdall_events::{EvictionComing, GameEvent, GameStopped, Heartbeat};

use crate::backoff::sleep_unless_stopped;
use crate::scheduled::{self, id_part, Notice};
use crate::Agent;

/// Azure's advice: poll about once a second.
const POLL: Duration = Duration::from_secs(1);
/// A failing metadata service is logged at most this often.
const QUIET: Duration = Duration::from_secs(60);
/// The longest wait for the reports to reach the queue before approving.
const FLUSH_MAX: Duration = Duration::from_secs(15);
/// Approve this long before `NotBefore` at the latest, while waiting for the reports.
const APPROVE_MARGIN: Duration = Duration::from_secs(3);

pub(crate) fn run(agent: &Agent) {
    let Some(vm_name) = agent.wait_for_vm_name() else {
        return;
    };
    let mut watcher = Watcher {
        handled: HashSet::new(),
        last_error: None,
    };
    // The VM's arrival was the first sign of life.
    let mut next_heartbeat = Instant::now() + agent.config.heartbeat;
    while !agent.stopped() {
        if agent.config.scheduled_events {
            watcher.check(agent, vm_name);
        }
        if Instant::now() >= next_heartbeat {
            let players = agent
                .players
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            agent.emit_new(GameEvent::Heartbeat(Heartbeat { players }));
            next_heartbeat = Instant::now() + agent.config.heartbeat;
        }
        sleep_unless_stopped(&agent.stop, POLL);
    }
}

struct Watcher {
    /// Scheduled events acted on already (they stay in the document until they are over).
    handled: HashSet<String>,
    last_error: Option<Instant>,
}

impl Watcher {
    fn check(&mut self, agent: &Agent, vm_name: &str) {
        let document = scheduled::document_request(&agent.config.imds_endpoint)
            .and_then(|request| agent.http.send(request))
            .and_then(|response| scheduled::parse_document(&response));
        let document = match document {
            Ok(document) => document,
            Err(error) => return self.failed(&error),
        };
        for notice in scheduled::notices_for(&document, vm_name) {
            if self.handled.insert(notice.event_id.clone()) {
                handle(agent, &notice);
            }
        }
    }

    fn failed(&mut self, error: &anyhow::Error) {
        if self.last_error.is_none_or(|at| at.elapsed() >= QUIET) {
            tracing::warn!("Scheduled Events: {error:#}");
            self.last_error = Some(Instant::now());
        }
    }
}

fn handle(agent: &Agent, notice: &Notice) {
    let started = Instant::now();
    let id = id_part(&notice.event_id);
    tracing::warn!(
        scheduled_event = notice.event_id,
        kind = ?notice.kind,
        not_before = notice.not_before,
        "Azure announced an event for this VM; saving the world"
    );
    agent.emit(
        format!("evict-{id}"),
        GameEvent::EvictionComing(EvictionComing {
            kind: notice.kind,
            scheduled_event_id: notice.event_id.clone(),
            not_before: notice.not_before.clone(),
        }),
    );
    let report = agent.stopper.stop(&agent.stop);
    agent.emit(
        format!("stopped-{id}"),
        GameEvent::GameStopped(GameStopped {
            saved: report.saved,
            duration_ms: u32::try_from(report.duration.as_millis()).unwrap_or(u32::MAX),
        }),
    );
    wait_until_sent(agent, flush_deadline(&notice.not_before));
    approve(agent, notice, started);
}

/// Until the spool is empty (the reports are on the queue) or the deadline.
fn wait_until_sent(agent: &Agent, deadline: Instant) {
    while Instant::now() < deadline {
        match agent.spool.pending() {
            Ok(pending) if pending.is_empty() => return,
            Ok(_) => {}
            Err(error) => return tracing::warn!("reading the spool: {error}"),
        }
        if !sleep_unless_stopped(&agent.stop, Duration::from_millis(20)) {
            return;
        }
    }
    tracing::warn!("approving before every report reached the queue");
}

/// [`FLUSH_MAX`] from now, but not later than shortly before Azure acts anyway.
fn flush_deadline(not_before: &str) -> Instant {
    let latest = Instant::now() + FLUSH_MAX;
    let Ok(at) = httpdate::parse_http_date(not_before) else {
        return latest;
    };
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(APPROVE_MARGIN);
    latest.min(Instant::now() + left)
}

fn approve(agent: &Agent, notice: &Notice, started: Instant) {
    let answer = scheduled::approve_request(&agent.config.imds_endpoint, &notice.event_id)
        .and_then(|request| agent.http.send(request));
    let ms = started.elapsed().as_millis() as u64;
    match answer {
        Ok(response) if response.status().is_success() => tracing::info!(
            scheduled_event = notice.event_id,
            ms_since_notice = ms,
            "approved: Azure may go ahead"
        ),
        Ok(response) => tracing::error!(
            scheduled_event = notice.event_id,
            status = response.status().as_u16(),
            "the approval was refused; Azure goes ahead at NotBefore"
        ),
        Err(error) => tracing::error!(
            scheduled_event = notice.event_id,
            "approving: {error:#}; Azure goes ahead at NotBefore"
        ),
    }
}
