//! Turns Valheim dedicated-server log lines into the game events of `wit/events.wit`.
//!
//! Sans-IO: the caller feeds lines one at a time to a [`LogParser`] and gets [`GameEvent`]s
//! back; reading the log (file, `docker logs -f`) is the agent's job.
//!
//! Benchmark (the budget is at least 1,000,000 lines/s per core):
//! `cargo run --release -p heimdall-valheim-log --example bench`
//!
//! # Where the message is
//! The game stamps its own lines `MM/DD/YYYY HH:MM:SS: message`. What comes before the stamp
//! depends on how the log is collected (supervisord's syslog-style prefix in
//! `lloesche/valheim-server`, BepInEx's `[Info   : Unity Log] `, or nothing), so the parser finds
//! the stamp anywhere in the line and reads the message after it. A line without a stamp is read
//! as a bare message (after one leading `[...]` tag, if any).
//!
//! # Decisions
//! - **Ready.** `Game server connected` is the moment players can connect: it yields
//!   `ServerReady` with the world name seen earlier (`Get create world X`, `Loading world: X`).
//!   Crossplay servers register their PlayFab session only *after* that line, so the first
//!   `Session "X" registered with join code N` of a run yields a second `ServerReady`, now with
//!   the world and the join code: consumers treat `ServerReady` as "ready, with what is known
//!   so far" (an update, not a second boot). A later `Created new join code N for session "X"`
//!   yields `JoinCodeChanged`: the server did not become ready again, but the old code no
//!   longer lets anyone in.
//! - **Join.** The first `Got character ZDOID from NAME : A:B` of a character in a session is
//!   the join. `0:0` is a death; a later ZDOID (respawn, new `B`) is not a new join.
//! - **Leave.** Exactly one `PlayerLeft` per `PlayerJoined`, from whichever signal comes first:
//!   - Steam: `Closing socket <steam id>` (printed twice); the Steam id is tied to the character
//!     by connection order (the oldest connected peer without a character gets the next new
//!     character). Peers with a wrong password are dropped from that order and never join.
//!   - `Destroying abandoned non persistent zdo A:B owner O`: the game removes a peer's
//!     character once the peer is gone; `O` is the character's ZDOID owner (`A` of its ZDOID).
//!   - Crossplay: `Player connection lost ... now 0 player(s)` means everyone is gone; with
//!     players still on, the zdo line above names the one who left.
//!   - A new game run (`Valheim version:` line) ends the session of anyone still recorded
//!     online, since the old process took them with it.
//! - **Saves.** `World saved ( 388.214ms )` and `World save (5/5) done. Total time [14ms]`
//!   yield `WorldSaved` with the duration rounded to whole milliseconds.

use std::collections::VecDeque;

pub use heimdall_events::{GameEvent, JoinCodeChanged, Player, ServerReady, WorldSaved};

/// Reads a game log line by line and keeps what it needs to name players and servers.
#[derive(Debug, Default)]
pub struct LogParser {
    /// The world this run loads, once a line has named it.
    world: Option<String>,
    /// `Game server connected` was seen in this run.
    ready: bool,
    /// The crossplay session's first registration was reported in this run.
    session_registered: bool,
    /// Steam peers that connected and have no character yet, oldest first.
    pending_peers: VecDeque<String>,
    /// Characters in the world, in join order.
    online: Vec<Online>,
}

/// A character in the world and the ids the game uses for its peer.
#[derive(Debug)]
struct Online {
    character: String,
    /// The user part of the character's ZDOID, which the `owner` of its zdo repeats.
    owner: i64,
    /// The Steam id of the peer (not known on crossplay).
    steam_id: Option<String>,
}

impl LogParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one line (with or without its trailing newline) and returns the events it causes,
    /// usually none. An empty `Vec` does not allocate.
    pub fn line(&mut self, line: &str) -> Vec<GameEvent> {
        let message = message_of(line);
        let mut events = Vec::new();
        self.message(message, &mut events);
        events
    }

    /// Characters currently recorded in the world, in join order.
    pub fn online(&self) -> impl Iterator<Item = &str> {
        self.online.iter().map(|player| player.character.as_str())
    }

    fn message(&mut self, message: &str, events: &mut Vec<GameEvent>) {
        // Dispatch on the first byte first: nearly every line is none of ours, and one byte
        // comparison rules most of them out.
        match message.as_bytes().first() {
            Some(b'G') => self.g_message(message, events),
            Some(b'C') => {
                self.closing_socket(message, events);
                new_join_code(message, events);
            }
            Some(b'D') => self.abandoned_zdo(message, events),
            Some(b'L') => self.loading_world(message),
            Some(b'P') => self.p_message(message, events),
            Some(b'S') => self.session_registered(message, events),
            Some(b'V') => self.new_run(message, events),
            Some(b'W') => world_saved(message, events),
            _ => {}
        }
    }

    fn g_message(&mut self, message: &str, events: &mut Vec<GameEvent>) {
        if let Some(rest) = message.strip_prefix("Got character ZDOID from ") {
            self.character(rest, events);
        } else if let Some(rest) = message.strip_prefix("Got connection SteamID ") {
            self.peer_connected(rest);
        } else if let Some(rest) = message.strip_prefix("Got handshake from client ") {
            self.peer_connected(rest);
        } else if let Some(world) = message.strip_prefix("Get create world ") {
            self.set_world(world);
        } else if message.trim_end() == "Game server connected" {
            self.ready = true;
            events.push(GameEvent::ServerReady(ServerReady {
                world_name: self.world.clone(),
                join_code: None,
            }));
        }
    }

    fn p_message(&mut self, message: &str, events: &mut Vec<GameEvent>) {
        if let Some(rest) = message.strip_prefix("Peer ") {
            if let Some(peer) = rest.trim_end().strip_suffix(" has wrong password") {
                self.forget_peer(peer);
            }
        } else if let Some(rest) = message.strip_prefix("Player connection lost ") {
            if player_count(rest) == Some(0) {
                for player in self.online.drain(..) {
                    events.push(left(player));
                }
            }
        }
    }

    fn loading_world(&mut self, message: &str) {
        if let Some(world) = message.strip_prefix("Loading world: ") {
            self.set_world(world);
        }
    }

    fn set_world(&mut self, world: &str) {
        let world = world.trim();
        if !world.is_empty() {
            self.world = Some(world.to_owned());
        }
    }

    /// `Session "X" registered with join code N`: the crossplay session is reachable.
    fn session_registered(&mut self, message: &str, events: &mut Vec<GameEvent>) {
        let Some(rest) = message.strip_prefix("Session \"") else {
            return;
        };
        let Some((world, rest)) = rest.rsplit_once("\" registered with join code ") else {
            return;
        };
        self.set_world(world);
        if self.ready && !self.session_registered {
            self.session_registered = true;
            let code = rest.trim();
            events.push(GameEvent::ServerReady(ServerReady {
                world_name: self.world.clone(),
                join_code: (!code.is_empty()).then(|| code.to_owned()),
            }));
        }
    }

    /// `Valheim version: ...` opens a new game run: nobody from the previous one is still on.
    fn new_run(&mut self, message: &str, events: &mut Vec<GameEvent>) {
        if message.starts_with("Valheim version") {
            events.extend(self.online.drain(..).map(left));
            *self = Self::default();
        }
    }

    fn peer_connected(&mut self, steam_id: &str) {
        let steam_id = steam_id.trim();
        let known = self.pending_peers.iter().any(|peer| peer == steam_id)
            || self
                .online
                .iter()
                .any(|p| p.steam_id.as_deref() == Some(steam_id));
        if !steam_id.is_empty() && !known {
            self.pending_peers.push_back(steam_id.to_owned());
        }
    }

    fn forget_peer(&mut self, steam_id: &str) {
        self.pending_peers.retain(|peer| peer != steam_id.trim());
    }

    /// `NAME : A:B` after `Got character ZDOID from `.
    fn character(&mut self, rest: &str, events: &mut Vec<GameEvent>) {
        let Some((name, zdoid)) = rest.rsplit_once(" : ") else {
            return;
        };
        let Some((owner, _)) = parse_zdoid(zdoid.trim()) else {
            return;
        };
        let name = name.trim();
        if owner == 0 || name.is_empty() {
            // `0:0`: the character died and has no body until it respawns.
            return;
        }
        if let Some(player) = self.online.iter_mut().find(|p| p.character == name) {
            // A respawn keeps the owner; a changed owner means the peer reconnected without a
            // leave line we could read. Either way the character never left: follow the owner.
            player.owner = owner;
            return;
        }
        let steam_id = self.pending_peers.pop_front();
        self.online.push(Online {
            character: name.to_owned(),
            owner,
            steam_id,
        });
        events.push(GameEvent::PlayerJoined(Player {
            character: name.to_owned(),
        }));
    }

    /// `Closing socket <steam id>` (the game prints it twice; the second finds nobody).
    fn closing_socket(&mut self, message: &str, events: &mut Vec<GameEvent>) {
        let Some(steam_id) = message.strip_prefix("Closing socket ") else {
            return;
        };
        let steam_id = steam_id.trim();
        self.forget_peer(steam_id);
        self.leave_where(|p| p.steam_id.as_deref() == Some(steam_id), events);
    }

    /// `Destroying abandoned non persistent zdo A:B owner O`.
    fn abandoned_zdo(&mut self, message: &str, events: &mut Vec<GameEvent>) {
        let Some(rest) = message.strip_prefix("Destroying abandoned non persistent zdo ") else {
            return;
        };
        let Some((_, owner)) = rest.rsplit_once(" owner ") else {
            return;
        };
        if let Ok(owner) = owner.trim().parse::<i64>() {
            self.leave_where(|p| p.owner == owner, events);
        }
    }

    fn leave_where(&mut self, matches: impl Fn(&Online) -> bool, events: &mut Vec<GameEvent>) {
        if let Some(index) = self.online.iter().position(matches) {
            events.push(left(self.online.remove(index)));
        }
    }
}

fn left(player: Online) -> GameEvent {
    GameEvent::PlayerLeft(Player {
        character: player.character,
    })
}

/// `Created new join code N for session "X"`: the crossplay code changed.
fn new_join_code(message: &str, events: &mut Vec<GameEvent>) {
    let Some(rest) = message.strip_prefix("Created new join code ") else {
        return;
    };
    let code = rest.split_whitespace().next().unwrap_or_default();
    if !code.is_empty() {
        events.push(GameEvent::JoinCodeChanged(JoinCodeChanged {
            join_code: code.to_owned(),
        }));
    }
}

/// `World saved ( 388.214ms )` or `World save (5/5) done. Total time [14ms]`.
fn world_saved(message: &str, events: &mut Vec<GameEvent>) {
    let duration = if let Some(rest) = message.strip_prefix("World saved (") {
        rest.split_once("ms").map(|(number, _)| number)
    } else if let Some(rest) = message.strip_prefix("World save (") {
        let Some((_, total)) = rest.split_once(" done. Total time [") else {
            return;
        };
        total.split_once("ms").map(|(number, _)| number)
    } else {
        return;
    };
    let duration_ms = duration.and_then(|number| number.trim().parse::<f64>().ok());
    events.push(GameEvent::WorldSaved(WorldSaved {
        duration_ms: duration_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms <= f64::from(u32::MAX))
            .map(|ms| ms.round() as u32),
    }));
}

/// `A:B` of a ZDOID: the owner (user id, may be negative) and the object's number.
fn parse_zdoid(zdoid: &str) -> Option<(i64, u32)> {
    let (owner, id) = zdoid.split_once(':')?;
    Some((owner.parse().ok()?, id.parse().ok()?))
}

/// `..., now N player(s)` at the end of PlayFab's session lines.
fn player_count(rest: &str) -> Option<u32> {
    let (_, tail) = rest.rsplit_once(", now ")?;
    tail.strip_suffix(" player(s)")
        .or_else(|| tail.trim_end().strip_suffix(" player(s)"))?
        .parse()
        .ok()
}

/// The game's message: the text after the `MM/DD/YYYY HH:MM:SS: ` stamp wherever it is, or the
/// line itself (less a leading `[...]` tag) when it has no stamp. Leading blanks are dropped
/// (the game indents its second `Closing socket`) and so is a trailing `\r`.
fn message_of(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let message = match find_stamp_end(line.as_bytes()) {
        Some(end) => &line[end..],
        None => strip_tag(line),
    };
    message.trim_start()
}

/// `[Info   : Unity Log] Game server connected` → `Game server connected`.
fn strip_tag(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some(end) = trimmed.find("] ") {
            return &trimmed[end + 2..];
        }
    }
    trimmed
}

/// The length of `MM/DD/YYYY HH:MM:SS: ` (21 bytes, the trailing blank included).
const STAMP_LEN: usize = 21;

/// Byte offset just past the first game stamp in `line`. Anchored on the first `/` of the date,
/// found with a fast byte search; a `/` that is not part of a stamp moves on to the next one.
fn find_stamp_end(line: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = line[from..].iter().position(|&b| b == b'/') {
        let slash = from + offset;
        if let Some(start) = slash.checked_sub(2) {
            if is_stamp(&line[start..]) {
                return Some(start + STAMP_LEN);
            }
        }
        from = slash + 1;
    }
    None
}

/// Whether `bytes` starts with `DD/DD/DDDD DD:DD:DD: ` (D a digit).
fn is_stamp(bytes: &[u8]) -> bool {
    const PATTERN: &[u8; STAMP_LEN] = b"00/00/0000 00:00:00: ";
    bytes.len() >= STAMP_LEN
        && PATTERN.iter().zip(bytes).all(|(&want, &got)| {
            if want == b'0' {
                got.is_ascii_digit()
            } else {
                want == got
            }
        })
}

#[cfg(test)]
mod tests;
