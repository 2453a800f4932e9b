use std::collections::VecDeque;

use heimdall_events::{
    Command, CommandKind, Envelope, EventBody, GameEvent, InteractionReply, ServerReady,
};
use serde::{Deserialize, Serialize};

use crate::billing::MonthHours;
use crate::messages;
use crate::outbox::{Applied, Effect};
use crate::stop::{LostReason, Stop, StopCause, StopPhase};

/// How many recent event ids are remembered to drop redeliveries.
const REMEMBERED_EVENTS: usize = 64;

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
    /// The last start or stop failed (`ServerState::failure` says why); /start and /stop are
    /// allowed again.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "stopped",
            Status::Starting => "starting",
            Status::Booting => "booting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Failed => "failed",
        }
    }
}

/// What the owner configures; not stored with the state (the shell sets it on every load).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Nobody online this long stops the server; 0 turns it off.
    pub idle_ms: u64,
    /// A start not ready within this long is given up.
    pub start_timeout_ms: u64,
    /// Spot VM sizes in the order to try them; empty: the scale set's own, nothing else.
    pub vm_sizes: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            game_port: 2456,
            save_timeout_ms: 3 * 60_000,
            silence_timeout_ms: 15 * 60_000,
            instance_check_ms: 5 * 60_000,
            eviction_wait_ms: 10 * 60_000,
            idle_ms: 20 * 60_000,
            start_timeout_ms: 15 * 60_000,
            vm_sizes: Vec::new(),
        }
    }
}

/// A scale operation: requested, then (once Azure accepted it) followed through its URL.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub capacity: u32,
    /// The VM size asked for with it; `None`: the scale set's own.
    #[serde(default)]
    pub size: Option<String>,
    /// The `Azure-AsyncOperation` URL; `None` until the scale request was accepted.
    pub poll_url: Option<String>,
    /// Times Azure answered "not now".
    #[serde(default)]
    pub retries: u32,
    /// Not to be asked again before this (ms): `Retry-After`, a poll interval or a backoff.
    #[serde(default)]
    pub not_before_ms: u64,
    /// What Azure said last when it answered "not now", for players who ask.
    #[serde(default)]
    pub last_problem: Option<String>,
    /// The event that asked for it (a /start, a /stop, a save): the calls that follow it on
    /// later ticks carry its id in the logs.
    #[serde(default)]
    pub cause: String,
}

impl Operation {
    pub(crate) fn new(capacity: u32, size: Option<String>, cause: &str) -> Operation {
        Operation {
            capacity,
            size,
            poll_url: None,
            retries: 0,
            not_before_ms: 0,
            last_problem: None,
            cause: cause.to_owned(),
        }
    }
}

/// What the scaler answered to a scale request or a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleOutcome {
    Succeeded,
    InProgress {
        poll_url: String,
        /// When to poll again.
        retry_after_ms: u64,
    },
    /// Not now: throttled, busy, Azure's own trouble, unreachable.
    Retry {
        reason: String,
        retry_after_ms: Option<u64>,
    },
    /// No spot capacity (or quota) for the size asked.
    NoCapacity {
        reason: String,
        region: Option<String>,
    },
    /// For good.
    Failed {
        message: String,
    },
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
    /// When the last /start was accepted.
    #[serde(default)]
    pub start_began_ms: u64,
    /// Why the last start or stop failed (while `Failed`).
    #[serde(default)]
    pub failure: Option<String>,
    pub public_ip: Option<String>,
    /// The VM the agent reported; control messages are addressed to it.
    #[serde(default)]
    pub vm_name: Option<String>,
    /// The VM size of this start (the first of the owner's list, or one after it).
    #[serde(default)]
    pub size: Option<String>,
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
    /// Since when nobody has been online, while running.
    #[serde(default)]
    pub idle_since_ms: Option<u64>,
    /// Players were told that the server stops soon for want of them.
    #[serde(default)]
    pub idle_warned: bool,
    pub recent_events: VecDeque<String>,
    /// Effects decided but not yet reported done by the shell.
    pub outbox: Vec<Effect>,
    /// Counts effects ever created, to give each a unique id.
    pub effects_created: u64,
    #[serde(default)]
    pub drain_lease: Option<Lease>,
    /// Since when a VM exists (and bills), while one does.
    #[serde(default)]
    pub vm_since_ms: Option<u64>,
    /// VM time this month, of the sessions that ended.
    #[serde(default)]
    pub month_hours: MonthHours,
    /// The owner's settings (not stored).
    #[serde(skip)]
    pub settings: Settings,
    /// The time of the input being applied (not stored).
    #[serde(skip)]
    pub(crate) now_ms: u64,
    /// The ids of the effects decided while applying the input (not stored).
    #[serde(skip)]
    pub(crate) pushed: Vec<String>,
    /// The event the input being applied comes from (not stored).
    #[serde(skip)]
    pub(crate) cause: String,
    /// Messages pushed out of a full outbox while applying the input (not stored).
    #[serde(skip)]
    pub(crate) dropped: Vec<Effect>,
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
    pub fn apply(&mut self, input: Input, now_ms: u64) -> Applied {
        self.apply_caused(input, "", now_ms)
    }

    /// As [`ServerState::apply`], for the outcome of an effect that event `cause` led to (a
    /// scale call, an instance lookup): what it decides carries that event id too. An event
    /// from the queue is its own cause.
    pub fn apply_caused(&mut self, input: Input, cause: &str, now_ms: u64) -> Applied {
        self.now_ms = now_ms;
        self.cause = match &input {
            Input::Event(envelope) => envelope.id.clone(),
            _ => cause.to_owned(),
        };
        match input {
            Input::Event(envelope) => self.event(*envelope),
            Input::Scaled { capacity, outcome } => self.scaled(capacity, outcome),
            Input::Instance { vm_name, public_ip } => self.instance(vm_name, public_ip),
        }
        // The time and cause are for this input only; leaving them would make every state
        // look changed.
        self.now_ms = 0;
        self.cause.clear();
        let pushed = std::mem::take(&mut self.pushed);
        let effects = self
            .outbox
            .iter()
            .filter(|e| pushed.contains(&e.id))
            .cloned()
            .collect();
        Applied {
            effects,
            dropped: std::mem::take(&mut self.dropped),
        }
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
        }
    }

    fn start(&mut self, command: Command) {
        if !matches!(self.status, Status::Stopped | Status::Failed) {
            let content = messages::already(self);
            return self.edit(command.reply, content);
        }
        self.set_status(Status::Starting);
        self.start_began_ms = self.now_ms;
        self.failure = None;
        self.last_heard_ms = 0;
        self.last_saved_ms = None;
        self.ready_at_ms = None;
        self.size = self.settings.vm_sizes.first().cloned();
        self.request_capacity(1, self.size.clone());
        self.progress_reply = Some(command.reply.clone());
        self.edit(command.reply, messages::starting(&command.requester.name));
    }

    /// The tick moves things along: an operation in flight, and the rules that depend on the
    /// clock (`crate::timers`).
    fn tick(&mut self) {
        self.follow_operation();
        match self.status {
            Status::Stopping => self.stop_tick(),
            Status::Starting | Status::Booting | Status::Running => self.watch(),
            Status::Stopped | Status::Failed => {}
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
        self.vm_billing();
        self.set_status(Status::Booting);
        self.public_ip = ip;
        let content = messages::vm_up(self);
        self.progress(content);
    }

    fn game(&mut self, event: GameEvent) {
        if matches!(self.status, Status::Stopped | Status::Failed) {
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
                let stays = self.someone_online();
                let content = messages::joined(&player.character, self.players.len(), stays);
                self.announce(content);
            }
            GameEvent::PlayerLeft(player) => {
                if let Some(i) = self.players.iter().position(|p| *p == player.character) {
                    self.players.remove(i);
                }
                self.nobody_online_since_now();
                let content = messages::left(&player.character, self.players.len());
                self.announce(content);
            }
            GameEvent::WorldSaved(saved) => self.world_saved(saved.duration_ms),
            GameEvent::EvictionComing(eviction) => self.eviction_coming(eviction),
            GameEvent::GameStopped(stopped) => self.game_stopped(stopped.saved),
            GameEvent::JoinCodeChanged(changed) => self.join_code_changed(changed.join_code),
            GameEvent::Heartbeat(beat) => {
                if self.status == Status::Running {
                    // The agent's reading of the log is the truth; a missed leave heals here.
                    self.players = beat.players;
                    if self.players.is_empty() {
                        self.nobody_online_since_now();
                    } else {
                        self.someone_online();
                    }
                }
            }
        }
    }

    fn ready(&mut self, ready: ServerReady) {
        match self.status {
            Status::Stopping | Status::Stopped | Status::Failed => return,
            // Crossplay servers announce their join code in a second "ready": an update.
            Status::Running => return self.join_code_update(ready.join_code),
            Status::Starting | Status::Booting => {}
        }
        self.set_status(Status::Running);
        self.ready_at_ms = Some(self.now_ms);
        self.world = ready.world_name.or(self.world.take());
        self.join_code = ready.join_code.or(self.join_code.take());
        self.nobody_online_since_now();
        // Once, where players look: the /start reply they are watching, else the channel.
        let content = messages::ready(self);
        self.tell(content);
        self.progress_reply = None;
    }

    /// A crossplay server registers its session (and so its join code) after it is ready.
    fn join_code_update(&mut self, join_code: Option<String>) {
        if let Some(code) = join_code.filter(|c| self.join_code.as_ref() != Some(c)) {
            let content = messages::join_code(&code, self.join_code.is_some());
            self.join_code = Some(code);
            self.announce(content);
        }
    }

    /// The game made a new join code: the old one lets no one in any more.
    fn join_code_changed(&mut self, code: String) {
        match self.status {
            Status::Running => self.join_code_update(Some(code)),
            // Said with "ready".
            Status::Starting | Status::Booting => self.join_code = Some(code),
            Status::Stopping | Status::Stopped | Status::Failed => {}
        }
    }

    /// Capacity is 0: everything of the session ends. A failed start ends as `Failed`, with
    /// its reason, so that /status can say it.
    pub(crate) fn stopped(&mut self) {
        let farewell = messages::stopped(self);
        let failure = match self.stop.as_ref().map(|s| &s.cause) {
            Some(StopCause::StartFailed { reason }) => Some(reason.clone()),
            _ => None,
        };
        self.set_status(if failure.is_some() {
            Status::Failed
        } else {
            Status::Stopped
        });
        self.failure = failure;
        self.stop = None;
        self.operation = None;
        self.public_ip = None;
        self.vm_name = None;
        self.join_code = None;
        self.players.clear();
        self.idle_since_ms = None;
        self.idle_warned = false;
        self.vm_not_billing();
        self.tell(farewell);
        self.progress_reply = None;
    }

    /// Ends in `Failed` at once (nothing to scale in): says why, where players look.
    pub(crate) fn fail(&mut self, reason: String) {
        let content = messages::failed(&reason);
        self.set_status(Status::Failed);
        self.failure = Some(reason);
        self.stop = None;
        self.operation = None;
        self.vm_not_billing();
        self.tell(content);
        self.progress_reply = None;
    }

    /// Begins a stop: the status, and what is remembered about it.
    pub(crate) fn begin_stop(&mut self, cause: StopCause, phase: StopPhase) {
        self.set_status(Status::Stopping);
        self.idle_since_ms = None;
        self.stop = Some(Stop {
            cause,
            phase,
            saved_ms: None,
        });
    }
}
