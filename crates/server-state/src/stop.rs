//! How a server comes down without losing the world.
//!
//! Valheim saves on a clean shutdown only (and every 20 minutes), so capacity goes to 0 only
//! once the agent has stopped the game, or once waiting longer would only cost money:
//! - `/stop`, and nobody online for the idle time: the agent gets a "save and stop" control
//!   message; its `game-stopped` (or the save timeout) starts the scale-in.
//! - Eviction: Azure announced it; the agent saves on its own and approves the event. A VM that
//!   Azure deletes is waited for (its disappearance is confirmed with ARM), then capacity 0 is
//!   made sure of; a VM that Azure restarts comes back by itself.
//! - Lost: the VM vanished without notice, or the agent went silent: capacity 0 at once.
//! - A start that failed: capacity 0 made sure of, then `Failed` with the reason.

use heimdall_events::{Command, EvictionComing, EvictionKind};
use serde::{Deserialize, Serialize};

use crate::messages;
use crate::outbox::EffectKind;
use crate::state::{ServerState, Status};

/// A stop in progress.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub cause: StopCause,
    pub phase: StopPhase,
    /// The duration of the world save the agent reported during this stop, if it did.
    pub saved_ms: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StopCause {
    /// A player's `/stop`.
    Command { by: String },
    /// Nobody was online for the idle time.
    Idle,
    /// Azure Scheduled Events announced it.
    Eviction { kind: EvictionKind },
    /// Nobody asked: the VM or its agent is gone.
    Lost { reason: LostReason },
    /// The start failed for good (`reason` in plain words).
    StartFailed { reason: String },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LostReason {
    /// Azure has no instance any more, though the game should run.
    Vanished,
    /// The agent said nothing for longer than the silence timeout.
    Silent,
    /// The game stopped on the VM without anyone asking here.
    GameEnded,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StopPhase {
    /// Waiting for the agent to save and stop the game (since the stop began).
    Saving { since_ms: u64 },
    /// The game is down; waiting for Azure to take the VM it announced it would take.
    AwaitingAzure { since_ms: u64 },
    /// Capacity 0 requested.
    ScalingIn,
}

impl ServerState {
    pub(crate) fn stop_command(&mut self, command: Command) {
        let by = command.requester.name.clone();
        match self.status {
            Status::Stopped | Status::Stopping => {
                let content = messages::already(self);
                self.edit(command.reply, content);
            }
            // Nothing to save before the game is up (or after a failure): scale in at once.
            Status::Starting | Status::Booting | Status::Failed => {
                self.begin_stop(StopCause::Command { by: by.clone() }, StopPhase::ScalingIn);
                self.request_capacity(0, None);
                self.progress_reply = Some(command.reply.clone());
                self.edit(command.reply, messages::stopping_before_ready(&by));
            }
            Status::Running => {
                self.progress_reply = Some(command.reply.clone());
                self.save_then_stop(StopCause::Command { by });
            }
        }
    }

    /// Asks the agent to save and stop the game; the scale-in follows its answer.
    pub(crate) fn save_then_stop(&mut self, cause: StopCause) {
        let since_ms = self.now_ms;
        let requested_by = match &cause {
            StopCause::Command { by } => by.clone(),
            _ => "Heimdall".to_owned(),
        };
        self.begin_stop(cause, StopPhase::Saving { since_ms });
        // With the event that asked, so that the agent's log line about it greps with the
        // event's.
        let id = match self.next_id() {
            n if self.cause.is_empty() => format!("stop-{n}"),
            n => format!("stop-{n}-{}", self.cause),
        };
        self.push(EffectKind::SaveAndStop {
            id,
            vm_name: self.vm_name.clone(),
            requested_by,
        });
        let content = messages::saving(self);
        self.tell_stop(content);
    }

    pub(crate) fn eviction_coming(&mut self, eviction: EvictionComing) {
        let warning = messages::eviction(eviction.kind, &eviction.not_before);
        match self.status {
            Status::Stopped | Status::Failed => return,
            // A stop is already on its way; the eviction only makes it certain.
            Status::Stopping => {}
            Status::Starting | Status::Booting | Status::Running => {
                let since_ms = self.now_ms;
                self.begin_stop(
                    StopCause::Eviction {
                        kind: eviction.kind,
                    },
                    StopPhase::Saving { since_ms },
                );
            }
        }
        self.announce(warning);
    }

    pub(crate) fn world_saved(&mut self, duration_ms: Option<u32>) {
        self.last_saved_ms = Some(self.now_ms);
        let Some(stop) = self.stop.as_mut() else {
            return; // the autosave every 20 minutes: remembered, not announced
        };
        stop.saved_ms = Some(duration_ms.unwrap_or_default());
        let content = messages::world_saved(duration_ms);
        self.tell_stop(content);
    }

    pub(crate) fn game_stopped(&mut self, saved: bool) {
        self.players.clear();
        let Some(stop) = self.stop.clone() else {
            if matches!(self.status, Status::Booting | Status::Running) {
                self.lost(LostReason::GameEnded);
            }
            return;
        };
        if !matches!(stop.phase, StopPhase::Saving { .. }) {
            return; // a repeated report; the stop has moved on
        }
        if !saved && stop.saved_ms.is_none() {
            let content = messages::not_saved(self);
            self.tell_stop(content);
        }
        match stop.cause {
            StopCause::Eviction { kind } if kind.deletes_the_vm() => {
                let since_ms = self.now_ms;
                self.set_phase(StopPhase::AwaitingAzure { since_ms });
                self.push(EffectKind::LookupInstance);
            }
            StopCause::Eviction { .. } => {
                // Azure restarts the VM; the agent reports it back and the game gets ready again.
                self.stop = None;
                self.set_status(Status::Booting);
                self.announce(messages::restarting());
            }
            _ => self.scale_in(),
        }
    }

    /// The clock's part of a stop: give up waiting for the save, or for Azure.
    pub(crate) fn stop_tick(&mut self) {
        let Some(stop) = &self.stop else {
            return;
        };
        let waited = |since: u64| self.now_ms.saturating_sub(since);
        match stop.phase {
            StopPhase::Saving { since_ms } if waited(since_ms) >= self.settings.save_timeout_ms => {
                let content = messages::save_timed_out(self);
                self.tell_stop(content);
                self.scale_in();
            }
            StopPhase::AwaitingAzure { since_ms }
                if waited(since_ms) >= self.settings.eviction_wait_ms =>
            {
                self.scale_in();
            }
            StopPhase::AwaitingAzure { .. } if !self.scaler_call_queued() => {
                self.push(EffectKind::LookupInstance);
            }
            _ => {}
        }
    }

    /// The VM or its agent is gone: say so, and make sure nothing bills.
    pub(crate) fn lost(&mut self, reason: LostReason) {
        let content = messages::lost(reason, self);
        self.begin_stop(StopCause::Lost { reason }, StopPhase::ScalingIn);
        self.announce(content);
        self.request_capacity(0, None);
    }

    /// ARM has no instance any more while stopping: Azure took it.
    pub(crate) fn vm_gone(&mut self) {
        if matches!(
            self.stop.as_ref().map(|s| &s.phase),
            Some(StopPhase::AwaitingAzure { .. })
        ) {
            self.scale_in();
        }
    }

    /// Capacity 0, made sure of: a no-op for the scaler when Azure already deleted the VM.
    fn scale_in(&mut self) {
        self.set_phase(StopPhase::ScalingIn);
        if self.operation.as_ref().map(|o| o.capacity) != Some(0) {
            self.request_capacity(0, None);
        }
    }

    fn set_phase(&mut self, phase: StopPhase) {
        if let Some(stop) = self.stop.as_mut() {
            stop.phase = phase;
        }
    }

    /// Where a stop reports: the /stop reply for a player's stop, the channel otherwise.
    pub(crate) fn tell_stop(&mut self, content: String) {
        let by_command = matches!(
            self.stop.as_ref().map(|s| &s.cause),
            Some(StopCause::Command { .. })
        );
        if by_command {
            self.tell(content);
        } else {
            self.announce(content);
        }
    }
}
