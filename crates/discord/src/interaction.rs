//! Reading an interaction request and writing the immediate answer.

use heimdall_events::{Command, CommandKind, InteractionReply, Requester};
use serde::Deserialize;

use crate::embed::{cut, Embed};
use crate::rest::MAX_CONTENT;

/// Interaction bodies above this size are refused before parsing (Discord's are a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
/// Interaction response type: a message, now.
const CHANNEL_MESSAGE: u8 = 4;
/// Message flag: only the invoking user sees the message.
const EPHEMERAL: u32 = 1 << 6;

/// What an interaction request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Ping,
    /// One of our slash commands that change the server, ready to put on the queue.
    Command(Command),
    /// A slash command that only reads, answered at once.
    Question {
        question: Question,
        guild_id: Option<String>,
    },
}

/// The slash commands that only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    Status,
    Help,
}

impl Question {
    fn from_name(name: &str) -> Option<Question> {
        match name {
            "status" => Some(Question::Status),
            "help" => Some(Question::Help),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not an interaction: {0}")]
    Malformed(String),
    #[error("interaction type {0} is not handled")]
    UnsupportedType(u8),
    #[error("unknown command /{0}")]
    UnknownCommand(String),
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    id: String,
    application_id: Option<String>,
    #[serde(default)]
    token: String,
    data: Option<RawData>,
    guild_id: Option<String>,
    channel_id: Option<String>,
    channel: Option<RawChannel>,
    member: Option<RawMember>,
    user: Option<RawUser>,
}

#[derive(Deserialize)]
struct RawData {
    name: String,
}

#[derive(Deserialize)]
struct RawChannel {
    id: String,
}

#[derive(Deserialize)]
struct RawMember {
    user: Option<RawUser>,
    nick: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
    username: String,
    global_name: Option<String>,
}

/// Parses a verified interaction body. `application_id` gives the app's own id, asked for only
/// when a command's body does not carry one (so a PING costs no lookup).
pub fn parse(body: &[u8], application_id: impl FnOnce() -> String) -> Result<Incoming, ParseError> {
    let raw: RawInteraction =
        serde_json::from_slice(body).map_err(|e| ParseError::Malformed(e.to_string()))?;
    match raw.kind {
        PING => Ok(Incoming::Ping),
        APPLICATION_COMMAND => slash_command(raw, application_id),
        other => Err(ParseError::UnsupportedType(other)),
    }
}

fn slash_command(
    raw: RawInteraction,
    application_id: impl FnOnce() -> String,
) -> Result<Incoming, ParseError> {
    let name = raw
        .data
        .as_ref()
        .map(|d| d.name.clone())
        .ok_or_else(|| missing("data"))?;
    if let Some(question) = Question::from_name(&name) {
        return Ok(Incoming::Question {
            question,
            guild_id: raw.guild_id,
        });
    }
    let kind = CommandKind::from_name(&name).ok_or(ParseError::UnknownCommand(name))?;
    command(raw, kind, application_id).map(Incoming::Command)
}

fn missing(what: &str) -> ParseError {
    ParseError::Malformed(format!("command without {what}"))
}

fn command(
    raw: RawInteraction,
    kind: CommandKind,
    application_id: impl FnOnce() -> String,
) -> Result<Command, ParseError> {
    let channel_id = raw
        .channel_id
        .or(raw.channel.map(|c| c.id))
        .ok_or_else(|| missing("channel"))?;
    let requester = requester(raw.member, raw.user).ok_or_else(|| missing("user"))?;
    if raw.token.is_empty() || raw.id.is_empty() {
        return Err(missing("id and token"));
    }
    let command = Command {
        kind,
        requester,
        guild_id: raw.guild_id,
        channel_id,
        reply: InteractionReply {
            application_id: raw.application_id.unwrap_or_else(application_id),
            interaction_id: raw.id,
            token: raw.token,
        },
    };
    // The same check as the queue's decoder: what is accepted here is never set aside there.
    command
        .check()
        .map_err(|e| ParseError::Malformed(e.to_string()))?;
    Ok(command)
}

/// In a guild the user is inside `member`; in a DM it is `user`.
fn requester(member: Option<RawMember>, user: Option<RawUser>) -> Option<Requester> {
    let (user, nick, roles) = match member {
        Some(m) => (m.user?, m.nick, m.roles),
        None => (user?, None, Vec::new()),
    };
    let name = nick.or(user.global_name).unwrap_or(user.username);
    Some(Requester {
        user_id: user.id,
        name,
        roles,
    })
}

/// The immediate answer to an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Pong,
    /// A message everyone in the channel sees; reactions edits it later with progress.
    Message(String),
    /// A message only the invoking user sees (refusals, errors, help).
    Private(String),
    /// An embed everyone in the channel sees.
    Embed(Embed),
}

impl Reply {
    /// The JSON body of the interaction response. Every message mentions no one, whatever its
    /// text says: player and user names like `@everyone` stay text.
    pub fn to_json(&self) -> Vec<u8> {
        let no_mentions = serde_json::json!({ "parse": [] });
        let data = match self {
            Reply::Pong => return br#"{"type":1}"#.to_vec(),
            Reply::Message(content) => serde_json::json!({
                "content": cut(content, MAX_CONTENT),
                "allowed_mentions": no_mentions,
            }),
            Reply::Private(content) => serde_json::json!({
                "content": cut(content, MAX_CONTENT),
                "flags": EPHEMERAL,
                "allowed_mentions": no_mentions,
            }),
            Reply::Embed(embed) => serde_json::json!({
                "embeds": [embed],
                "allowed_mentions": no_mentions,
            }),
        };
        serde_json::json!({ "type": CHANNEL_MESSAGE, "data": data })
            .to_string()
            .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLASH: &str = include_str!(
        "../../../../shared/contracts/examples/discord/interaction-application-command-slash.json"
    );

    fn with_name(name: &str) -> Vec<u8> {
        SLASH.replace("cardsearch", name).into_bytes()
    }

    #[test]
    fn reads_the_contract_slash_command() {
        let Incoming::Command(cmd) = parse(&with_name("start"), || "11".into()).unwrap() else {
            panic!("expected a command");
        };
        assert_eq!(cmd.kind, CommandKind::Start);
        assert_eq!(cmd.requester.user_id, "53908232506183680");
        assert_eq!(cmd.requester.name, "Mason");
        assert_eq!(cmd.requester.roles, vec!["539082325061836999".to_owned()]);
        assert_eq!(cmd.guild_id.as_deref(), Some("290926798626357999"));
        assert_eq!(cmd.channel_id, "645027906669510667");
        assert_eq!(cmd.reply.token, "A_UNIQUE_TOKEN");
        assert_eq!(cmd.reply.interaction_id, "786008729715212338");
        assert_eq!(cmd.reply.application_id, "11");
    }

    #[test]
    fn reads_ping_and_refuses_the_rest() {
        let never = || -> String { panic!("a PING needs no application id") };
        assert_eq!(parse(br#"{"type":1}"#, never).unwrap(), Incoming::Ping);
        assert_eq!(
            parse(&with_name("cardsearch"), || "a".into()),
            Err(ParseError::UnknownCommand("cardsearch".into()))
        );
        assert_eq!(
            parse(br#"{"type":3}"#, || "a".into()),
            Err(ParseError::UnsupportedType(3))
        );
        assert!(matches!(
            parse(b"[]", || "a".into()),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse(br#"{"type":2,"data":{"name":"start"}}"#, || "a".into()),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn takes_only_what_the_queue_takes_ids_that_are_snowflakes() {
        let start = SLASH.replace("cardsearch", "start");
        for (from, to) in [
            ("645027906669510667", "c"),
            ("290926798626357999", "x y/z"),
            ("786008729715212338", "an-id"),
        ] {
            let body = start.replace(from, to);
            assert!(
                matches!(
                    parse(body.as_bytes(), || "11".into()),
                    Err(ParseError::Malformed(_))
                ),
                "{to}"
            );
        }
        // The application id from the variables, when the body has none, is checked too.
        assert!(parse(start.as_bytes(), || "my-app".into()).is_err());
    }

    #[test]
    fn refuses_tokens_that_would_break_a_url() {
        let body = SLASH
            .replace("cardsearch", "start")
            .replace("A_UNIQUE_TOKEN", "a/../b?c");
        assert!(matches!(
            parse(body.as_bytes(), || "a".into()),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn dm_commands_use_the_user() {
        let body = br#"{"type":2,"id":"1","token":"t","channel_id":"3","data":{"name":"stop"},
            "user":{"id":"u","username":"ada","global_name":"Ada"}}"#;
        let Incoming::Command(cmd) = parse(body, || "2".into()).unwrap() else {
            panic!("expected a command");
        };
        assert_eq!(cmd.requester.name, "Ada");
        assert!(cmd.requester.roles.is_empty());
        assert_eq!(cmd.guild_id, None);
    }

    #[test]
    fn status_and_help_are_questions_answered_at_once() {
        for (name, question) in [("status", Question::Status), ("help", Question::Help)] {
            let never = || -> String { panic!("a question needs no application id") };
            assert_eq!(
                parse(&with_name(name), never).unwrap(),
                Incoming::Question {
                    question,
                    guild_id: Some("290926798626357999".into())
                }
            );
        }
    }

    #[test]
    fn no_reply_mentions_anyone() {
        let embed = Embed::new("@everyone", 0).description("@here");
        for reply in [
            Reply::Message("@everyone".into()),
            Reply::Private("@here".into()),
            Reply::Embed(embed),
        ] {
            let json: serde_json::Value = serde_json::from_slice(&reply.to_json()).unwrap();
            assert_eq!(json["type"], 4);
            assert_eq!(
                json["data"]["allowed_mentions"],
                serde_json::json!({ "parse": [] }),
                "{reply:?}"
            );
        }
    }

    #[test]
    fn replies_have_discords_shapes() {
        assert_eq!(Reply::Pong.to_json(), br#"{"type":1}"#);
        let private: serde_json::Value =
            serde_json::from_slice(&Reply::Private("no".into()).to_json()).unwrap();
        assert_eq!(private["data"]["flags"], 64);
        let public: serde_json::Value =
            serde_json::from_slice(&Reply::Message("hi".into()).to_json()).unwrap();
        assert_eq!(public["type"], 4);
        assert_eq!(public["data"]["content"], "hi");
    }
}
