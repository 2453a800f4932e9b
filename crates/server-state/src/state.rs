use std::collections::VecDeque;

use heimdall_events::{
    Command, CommandKind, Envelope, EventBody, GameEvent, InteractionReply, ServerReady,
};
use serde::{Deserialize, Serialize};

use crate::messages;
use crate::stop::{LostReason, Stop, StopCause, StopPhase};

/// How many recent event ids are remembered to drop redeliveries.
const REMEMBERED_EVENTS: usize = 64;
/// A cap on the outbox, so that an unreachable Discord cannot grow the entity without bound.
const MAX_OUTBOX: usize = 32;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    #[default]
    Stopped,
    /// Capacity 1 requested; waiting for Azure.
    Starting,
    /// The VM exists; the game is loading the world.
    Booting,
    Running,
    /// On the way to capacity 0: saving the world first, waiting for Azure to take the VM, or
    /// scaling in (see [`Stop`]).
    Stopping,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "stopped",
            Status::Starting => "starting",
            Status::Booting => "booting",
            Status::Running => "running",
            Status::Stopping => "stopping",
        }
    }
}

/// What the owner configures; not stored with the state (the shell sets it on every load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub game_port: u16,
    /// How long a stop waits for the agent to report the game stopped before scaling in anyway.
    pub save_timeout_ms: u64,
    /// Silence from the agent after which the VM is taken for lost (it sends a heartbeat every
    /// few minutes).
    pub silence_timeout_ms: u64,
    /// How often Azure is asked whether the VM still exists while it should.
    pub instance_check_ms: u64,
    /// How long to wait for Azure to take an evicted VM before scaling in ourselves.
    pub eviction_wait_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            game_port: 2456,
            save_timeout_ms: 3 * 60_000,
            silence_timeout_ms: 15 * 60_000,
            instance_check_ms: 5 * 60_000,
            eviction_wait_ms: 10 * 60_000,
        }
    }
}

/// A scale operation: requested, then (once Azure accepted it) followed through its URL.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub capacity: u32,
    /// The `Azure-AsyncOperation` URL; `None` until the scale request was accepted.
    pub poll_url: Option<String>,
}

/// Something the shell must do. `id` is stable, so the shell can report it done after a retry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub id: String,
    /// When it was decided (ms since the Unix epoch): only stale effects are retried, so that a
    /// retry never races the invocation that is carrying the effect out right now.
    pub at_ms: u64,
    pub kind: EffectKind,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum EffectKind {
    /// Edit the reply to a slash command (progress of /start, /stop, the answer to /status).
    EditReply {
        reply: InteractionReply,
        content: String,
    },
    /// Post in the channel where the server was last commanded.
    PostMessage { channel_id: String, content: String },
    /// Ask the scaler for this capacity; its answer comes back as [`Input::Scaled`].
    Scale { capacity: u32 },
    /// Ask the scaler how the operation goes; the answer comes back as [`Input::Scaled`].
    PollOperation { capacity: u32, poll_url: String },
    /// Ask the scaler for the instance; the answer comes back as [`Input::Instance`].
    LookupInstance,
    /// Put a "save and stop" message on the control queue for the agent on `vm_name`. `id` is
    /// the control message's id, the same on every retry.
    SaveAndStop {
        id: String,
        vm_name: Option<String>,
        requested_by: String,
    },
}

/// What the scaler answered to a scale request or a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleOutcome {
    Succeeded,
    InProgress { poll_url: String },
    Failed { message: String },
}

/// What changes the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A message from the queue.
    Event(Box<Envelope>),
    /// The outcome of a `Scale` or `PollOperation` effect for `capacity`.
    Scaled {
        capacity: u32,
        outcome: ScaleOutcome,
    },
    /// The outcome of `LookupInstance`: the VM, if one exists.
    Instance {
        vm_name: Option<String>,
        public_ip: Option<String>,
    },
}

/// Which invocation of reactions is draining the queue. One at a time: concurrent kicks would
/// otherwise all fight over this one entity's ETag and mostly lose.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    /// After this (ms since the Unix epoch) the lease is free again, in case its owner died.
    pub until_ms: u64,
}

/// Everything reactions keeps about one game server (stored as one Table entity).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerState {
    pub status: Status,
    /// When `status` last changed (ms since the Unix epoch).
    #[serde(default)]
    pub status_since_ms: u64,
    pub public_ip: Option<String>,
    /// The VM the agent reported; control messages are addressed to it.
    #[serde(default)]
    pub vm_name: Option<String>,
    pub world: Option<String>,
    pub join_code: Option<String>,
    /// Characters online, in the order they joined.
    pub players: Vec<String>,
    pub operation: Option<Operation>,
    /// How the server is being stopped, while `status` is `Stopping`.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// The reply of the /start or /stop in progress, edited as it advances.
    pub progress_reply: Option<InteractionReply>,
    /// Where game events are announced: the channel of the latest command.
    pub channel_id: Option<String>,
    /// The last time the agent said anything (0: not since the VM came up).
    #[serde(default)]
    pub last_heard_ms: u64,
    /// The last world save the agent reported in this session.
    #[serde(default)]
    pub last_saved_ms: Option<u64>,
    /// When the game became ready in this session.
    #[serde(default)]
    pub ready_at_ms: Option<u64>,
    /// The last time Azure was asked whether the VM still exists.
    #[serde(default)]
    pub instance_checked_ms: u64,
    pub recent_events: VecDeque<String>,
    /// Effects decided but not yet reported done by the shell.
    pub outbox: Vec<Effect>,
    /// Counts effects ever created, to give each a unique id.
    pub effects_created: u64,
    #[serde(default)]
    pub drain_lease: Option<Lease>,
    /// The owner's settings (not stored).
    #[serde(skip)]
    pub settings: Settings,
    /// The time of the input being applied (not stored).
    #[serde(skip)]
    pub(crate) now_ms: u64,
}

impl ServerState {
    pub fn new(settings: Settings) -> ServerState {
        ServerState {
            settings,
            ..ServerState::default()
        }
    }

    /// Applies an input; the new effects are appended to the outbox and also returned.
    /// A queue event seen before returns no effects and changes nothing.
    pub fn apply(&mut self, input: Input, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        let before = self.outbox.len();
        match input {
            Input::Event(envelope) => self.event(*envelope),
            Input::Scaled { capacity, outcome } => self.scaled(capacity, outcome),
            Input::Instance { vm_name, public_ip } => self.instance(vm_name, public_ip),
        }
        // The time is for this input only; leaving it would make every state look changed.
        self.now_ms = 0;
        self.outbox[before..].to_vec()
    }

    /// The shell carried out these effects: drop them from the outbox.
    pub fn done(&mut self, ids: &[String]) {
        self.outbox.retain(|e| !ids.contains(&e.id));
    }

    /// Effects decided at least `age_ms` ago and still not done: the shell's retries.
    pub fn stale_effects(&self, now_ms: u64, age_ms: u64) -> Vec<Effect> {
        self.outbox
            .iter()
            .filter(|e| now_ms.saturating_sub(e.at_ms) >= age_ms)
            .cloned()
            .collect()
    }

    /// Takes the drain lease for `owner` unless someone else holds it unexpired.
    pub fn acquire_lease(&mut self, owner: &str, now_ms: u64, ttl_ms: u64) -> bool {
        if let Some(lease) = &self.drain_lease {
            if lease.owner != owner && lease.until_ms > now_ms {
                return false;
            }
        }
        self.drain_lease = Some(Lease {
            owner: owner.to_owned(),
            until_ms: now_ms + ttl_ms,
        });
        true
    }

    /// Gives the drain lease back, if `owner` still holds it.
    pub fn release_lease(&mut self, owner: &str) {
        if self.drain_lease.as_ref().is_some_and(|l| l.owner == owner) {
            self.drain_lease = None;
        }
    }

    /// Whether this event id was applied already.
    fn has_seen(&self, event_id: &str) -> bool {
        self.recent_events.iter().any(|id| id == event_id)
    }

    fn event(&mut self, envelope: Envelope) {
        if self.has_seen(&envelope.id) {
            return;
        }
        // Ticks and heartbeats change nothing when repeated; remembering them would push the
        // ids that matter out of the window.
        let repeatable = matches!(
            envelope.body,
            EventBody::Tick | EventBody::Game(GameEvent::Heartbeat(_))
        );
        if !repeatable {
            self.remember(envelope.id);
        }
        match envelope.body {
            EventBody::Command(command) => self.command(command),
            EventBody::Game(event) => self.game(event),
            EventBody::Tick => self.tick(),
        }
    }

    fn remember(&mut self, id: String) {
        self.recent_events.push_back(id);
        while self.recent_events.len() > REMEMBERED_EVENTS {
            self.recent_events.pop_front();
        }
    }

    pub(crate) fn set_status(&mut self, status: Status) {
        if self.status != status {
            self.status = status;
            self.status_since_ms = self.now_ms;
        }
    }

    fn command(&mut self, command: Command) {
        self.channel_id = Some(command.channel_id.clone());
        match command.kind {
            CommandKind::Start => self.start(command),
            CommandKind::Stop => self.stop_command(command),
            CommandKind::Status => {
                let content = messages::status(self);
                self.edit(command.reply, content);
            }
        }
    }

    fn start(&mut self, command: Command) {
        if self.status != Status::Stopped {
            let content = messages::already(self);
            return self.edit(command.reply, content);
        }
        self.set_status(Status::Starting);
        self.last_heard_ms = 0;
        self.last_saved_ms = None;
        self.ready_at_ms = None;
        self.request_capacity(1);
        self.progress_reply = Some(command.reply.clone());
        self.edit(command.reply, messages::starting(&command.requester.name));
    }

    pub(crate) fn request_capacity(&mut self, capacity: u32) {
        self.operation = Some(Operation {
            capacity,
            poll_url: None,
        });
        self.push(EffectKind::Scale { capacity });
    }

    /// The tick moves things along: an operation in flight, and the clock-driven rules of a
    /// stop in progress and of a VM that should be there.
    fn tick(&mut self) {
        self.follow_operation();
        match self.status {
            Status::Stopping => self.stop_tick(),
            Status::Booting | Status::Running => self.watch_vm(),
            Status::Stopped | Status::Starting => {}
        }
    }

    /// Polls the operation, or re-sends a scale request that did not get through. Scale
    /// requests are idempotent (the scaler compares with the current capacity).
    fn follow_operation(&mut self) {
        let Some(operation) = self.operation.clone() else {
            return;
        };
        if self.scaler_call_queued() {
            return; // still queued for the shell
        }
        match operation.poll_url {
            Some(poll_url) => self.push(EffectKind::PollOperation {
                capacity: operation.capacity,
                poll_url,
            }),
            None => self.push(EffectKind::Scale {
                capacity: operation.capacity,
            }),
        }
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

    pub(crate) fn scaler_call_queued(&self) -> bool {
        self.outbox.iter().any(|e| is_scaler_call(&e.kind))
    }

    fn scaled(&mut self, capacity: u32, outcome: ScaleOutcome) {
        let Some(operation) = self.operation.as_mut() else {
            return; // a late answer for an operation already settled
        };
        if operation.capacity != capacity {
            return; // the answer for an operation that a newer one replaced
        }
        match outcome {
            ScaleOutcome::InProgress { poll_url } => operation.poll_url = Some(poll_url),
            ScaleOutcome::Succeeded => {
                self.operation = None;
                if capacity > 0 {
                    self.push(EffectKind::LookupInstance);
                } else {
                    self.stopped();
                }
            }
            ScaleOutcome::Failed { message } if capacity > 0 => {
                self.operation = None;
                self.set_status(Status::Stopped);
                self.progress(messages::scale_failed(capacity, &message));
            }
            ScaleOutcome::Failed { message } => self.scale_in_failed(&message),
        }
    }

    fn instance(&mut self, vm_name: Option<String>, public_ip: Option<String>) {
        match (self.status, vm_name, public_ip) {
            (Status::Starting | Status::Booting, Some(vm), ip @ Some(_)) => {
                self.vm_name.get_or_insert(vm);
                self.vm_up(ip);
            }
            // Ready before the address was known (Azure was slow to report it): say it now.
            (Status::Running, Some(_), Some(ip)) if self.public_ip.is_none() => {
                self.public_ip = Some(ip);
                let content = messages::ready(self);
                self.announce(content);
            }
            (Status::Booting | Status::Running, None, _) => self.lost(LostReason::Vanished),
            (Status::Stopping, None, _) => self.vm_gone(),
            _ => {}
        }
    }

    /// The VM is up. Its address comes from the agent when the VM can know it, else from
    /// Azure Resource Manager (the scaler's instance lookup); whichever comes first is said.
    fn vm_up(&mut self, ip: Option<String>) {
        if !matches!(self.status, Status::Starting | Status::Booting) {
            return;
        }
        let ip = ip.or_else(|| self.public_ip.clone());
        if self.status == Status::Booting && ip == self.public_ip {
            return; // the agent and the scaler both report it; say it once
        }
        self.set_status(Status::Booting);
        self.public_ip = ip;
        let content = messages::vm_up(self);
        self.progress(content);
    }

    fn game(&mut self, event: GameEvent) {
        if self.status == Status::Stopped {
            // A late word from a VM that is gone (its last heartbeat, a leave on shutdown).
            return;
        }
        self.last_heard_ms = self.now_ms;
        match event {
            GameEvent::VmUp(up) => {
                self.vm_name = Some(up.vm_name);
                self.vm_up(up.public_ip);
            }
            GameEvent::ServerReady(ready) => self.ready(ready),
            GameEvent::PlayerJoined(player) => {
                self.players.push(player.character.clone());
                let content = messages::joined(&player.character, self.players.len());
                self.announce(content);
            }
            GameEvent::PlayerLeft(player) => {
                if let Some(i) = self.players.iter().position(|p| *p == player.character) {
                    self.players.remove(i);
                }
                let content = messages::left(&player.character, self.players.len());
                self.announce(content);
            }
            GameEvent::WorldSaved(saved) => self.world_saved(saved.duration_ms),
            GameEvent::EvictionComing(eviction) => self.eviction_coming(eviction),
            GameEvent::GameStopped(stopped) => self.game_stopped(stopped.saved),
            GameEvent::Heartbeat(beat) => {
                if self.status == Status::Running {
                    // The agent's reading of the log is the truth; a missed leave heals here.
                    self.players = beat.players;
                }
            }
        }
    }

    fn ready(&mut self, ready: ServerReady) {
        match self.status {
            Status::Stopping | Status::Stopped => return,
            // Crossplay servers announce their join code in a second "ready": an update.
            Status::Running => return self.join_code_update(ready.join_code),
            Status::Starting | Status::Booting => {}
        }
        self.set_status(Status::Running);
        self.ready_at_ms = Some(self.now_ms);
        self.world = ready.world_name.or(self.world.take());
        self.join_code = ready.join_code;
        let content = messages::ready(self);
        self.progress(content.clone());
        self.progress_reply = None;
        self.announce(content);
    }

    fn join_code_update(&mut self, join_code: Option<String>) {
        if join_code.is_none() || join_code == self.join_code {
            return;
        }
        self.join_code = join_code;
        let content = messages::ready(self);
        self.announce(content);
    }

    /// Everything of the session that ends when the VM goes.
    pub(crate) fn stopped(&mut self) {
        let farewell = messages::stopped(self);
        self.set_status(Status::Stopped);
        self.stop = None;
        self.public_ip = None;
        self.vm_name = None;
        self.join_code = None;
        self.players.clear();
        self.tell(farewell);
        self.progress_reply = None;
    }

    /// Begins a stop: the status, and what is remembered about it.
    pub(crate) fn begin_stop(&mut self, cause: StopCause, phase: StopPhase) {
        self.set_status(Status::Stopping);
        self.stop = Some(Stop {
            cause,
            phase,
            saved_ms: None,
            scale_in_failures: 0,
        });
    }

    /// Edits the reply of the /start or /stop in progress, if there is one.
    pub(crate) fn progress(&mut self, content: String) {
        if let Some(reply) = self.progress_reply.clone() {
            self.edit(reply, content);
        }
    }

    /// Edits the reply in progress, or says it in the channel when there is none.
    pub(crate) fn tell(&mut self, content: String) {
        if self.progress_reply.is_some() {
            self.progress(content);
        } else {
            self.announce(content);
        }
    }

    pub(crate) fn edit(&mut self, reply: InteractionReply, content: String) {
        self.push(EffectKind::EditReply { reply, content });
    }

    pub(crate) fn announce(&mut self, content: String) {
        if let Some(channel_id) = self.channel_id.clone() {
            self.push(EffectKind::PostMessage {
                channel_id,
                content,
            });
        }
    }

    /// A fresh id for something this state creates (effects, control messages).
    pub(crate) fn next_id(&mut self) -> u64 {
        self.effects_created += 1;
        self.effects_created
    }

    pub(crate) fn push(&mut self, kind: EffectKind) {
        let n = self.next_id();
        if self.outbox.len() >= MAX_OUTBOX {
            // Keep scaler and control calls; drop the oldest message, stale by now anyway.
            if let Some(i) = self.outbox.iter().position(|e| is_message(&e.kind)) {
                self.outbox.remove(i);
            }
        }
        self.outbox.push(Effect {
            id: format!("e{n}"),
            at_ms: self.now_ms,
            kind,
        });
    }
}

fn is_scaler_call(kind: &EffectKind) -> bool {
    matches!(
        kind,
        EffectKind::Scale { .. } | EffectKind::PollOperation { .. } | EffectKind::LookupInstance
    )
}

fn is_message(kind: &EffectKind) -> bool {
    matches!(
        kind,
        EffectKind::EditReply { .. } | EffectKind::PostMessage { .. }
    )
}
