//! The rules the clock drives, on every tick while a VM should exist: a start that takes too
//! long is given up, a server nobody plays on stops itself (after a warning), a silent agent or a
//! VM that Azure no longer has ends the session, and Azure is asked now and then whether the VM
//! is still there.

use crate::messages;
use crate::outbox::EffectKind;
use crate::state::{ServerState, Status};
use crate::stop::{LostReason, StopCause};

/// The idle warning comes this long before the stop (or a quarter of the idle time, if shorter).
const IDLE_WARNING_MS: u64 = 5 * 60_000;

impl ServerState {
    pub(crate) fn watch(&mut self) {
        match self.status {
            Status::Starting => self.start_deadline(),
            Status::Booting => {
                self.start_deadline();
                if self.status == Status::Booting {
                    self.watch_vm();
                }
            }
            Status::Running => {
                self.watch_vm();
                if self.status == Status::Running {
                    self.idle_rule();
                }
            }
            _ => {}
        }
    }

    /// A start not ready in time goes back to capacity 0, saying what was seen last.
    fn start_deadline(&mut self) {
        let started = self.now_ms.saturating_sub(self.start_began_ms);
        if started < self.settings.start_timeout_ms {
            return;
        }
        let reason = messages::start_timed_out(self);
        self.start_failed(reason);
    }

    /// While a VM should exist: give up on an agent that went silent, and now and then ask
    /// Azure whether the VM is still there.
    fn watch_vm(&mut self) {
        let heard = self.last_heard_ms.max(self.status_since_ms);
        if self.now_ms.saturating_sub(heard) >= self.settings.silence_timeout_ms {
            return self.lost(LostReason::Silent);
        }
        // Without the address there is nothing to tell players: ask on every tick until known.
        let due = self.public_ip.is_none()
            || self.now_ms.saturating_sub(self.instance_checked_ms)
                >= self.settings.instance_check_ms;
        if due && !self.scaler_call_queued() {
            self.instance_checked_ms = self.now_ms;
            self.push(EffectKind::LookupInstance);
        }
    }

    /// Nobody online for the idle time stops the server the way /stop does; a warning comes
    /// first, and anyone joining calls it off.
    fn idle_rule(&mut self) {
        let idle = self.settings.idle_ms;
        let Some(since) = self.idle_since_ms.filter(|_| idle > 0) else {
            return;
        };
        let idle_for = self.now_ms.saturating_sub(since);
        if idle_for >= idle {
            return self.save_then_stop(StopCause::Idle);
        }
        let warning_lead = IDLE_WARNING_MS.min(idle / 4);
        if !self.idle_warned && idle_for >= idle - warning_lead {
            self.idle_warned = true;
            let content = messages::idle_warning(idle_for, idle - idle_for);
            self.announce(content);
        }
    }

    /// The world just emptied (or the game became ready with nobody on it).
    pub(crate) fn nobody_online_since_now(&mut self) {
        if self.players.is_empty() && self.idle_since_ms.is_none() {
            self.idle_since_ms = Some(self.now_ms);
        }
    }

    /// Someone is online: the idle clock stops. True when players had been warned, so that
    /// the join can say the server stays up.
    pub(crate) fn someone_online(&mut self) -> bool {
        self.idle_since_ms = None;
        std::mem::take(&mut self.idle_warned)
    }
}
