//! The state of one game server and how events change it, without I/O.
//!
//! [`ServerState::apply`] takes an [`Input`] (a queue event, or the outcome of an effect the
//! shell carried out) and returns what to do next as [`Effect`]s. Effects are kept in the
//! state's outbox until the shell reports them done, so an effect survives a crash between the
//! state write and the call; and every event id is remembered for a while, so a redelivered
//! queue message changes nothing. Time comes in with each input; the rules that depend on it
//! (save timeout, silence, instance checks) run on the tick.
//!
//! [`stored`] is how the state is kept in its Table entity, and [`status`] what /status and
//! /help show from it.

mod billing;
mod messages;
mod operation;
mod outbox;
mod state;
pub mod status;
mod stop;
pub mod stored;
mod timers;

pub use billing::MonthHours;
pub use outbox::{Applied, Effect, EffectKind};
pub use state::{Input, Lease, Operation, ScaleOutcome, ServerState, Settings, Status};
pub use stop::{LostReason, Stop, StopCause, StopPhase};

#[cfg(test)]
mod tests;
