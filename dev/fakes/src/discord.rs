//! Fake Discord REST API (v10): editing an interaction's original reply, and posting channel
//! messages as the bot; the bot's application and its slash commands in [`application`].
//! Refusals have Discord's JSON error shapes
//! (examples/discord/error-invalid-form-body-*.json and the well-known codes).

mod application;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;

use crate::server::Server;
use crate::util::{json, json_with, lock, segments, Reply, Utc};
use crate::RecordedRequest;

/// The application and bot the fake knows.
#[derive(Debug, Clone)]
pub struct DiscordFakeConfig {
    pub application_id: String,
    pub bot_token: String,
    /// The application's public key (hex) as `GET /applications/@me` shows it.
    pub verify_key: String,
    /// The Interactions Endpoint URL set in the Developer Portal, if any.
    pub interactions_endpoint_url: Option<String>,
}

impl Default for DiscordFakeConfig {
    fn default() -> Self {
        Self {
            application_id: "1100000000000000000".into(),
            bot_token: "fake-bot-token".into(),
            verify_key: "6a1f0b0c5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a".into(),
            interactions_endpoint_url: None,
        }
    }
}

/// Where a message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// `PATCH /webhooks/{application_id}/{token}/messages/@original`
    ReplyEdit { interaction_token: String },
    /// `POST /channels/{channel_id}/messages`
    ChannelMessage { channel_id: String },
}

/// A message as a player would see it.
#[derive(Debug, Clone)]
pub struct DiscordMessage {
    pub kind: MessageKind,
    /// Empty when the message has only embeds.
    pub content: String,
    pub embeds: Vec<serde_json::Value>,
    pub at: Instant,
}

/// A running fake on [`DiscordFake::origin`]; the API is under [`DiscordFake::api_base`].
pub struct DiscordFake {
    server: Server,
    shared: Arc<Shared>,
}

impl DiscordFake {
    pub async fn start(config: DiscordFakeConfig) -> anyhow::Result<DiscordFake> {
        let (count, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                application: application::Application::new(&config),
                ..State::default()
            }),
            config,
            count,
        });
        let for_server = Arc::clone(&shared);
        let server =
            Server::start(move |_origin| Arc::new(move |request| handle(&for_server, request)))
                .await?;
        Ok(DiscordFake { server, shared })
    }

    /// `http://127.0.0.1:PORT`: the `discord_api` variable.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// `{origin}/api/v10`
    pub fn api_base(&self) -> String {
        format!("{}/api/v10", self.origin())
    }

    /// Discord sent an interaction with this token and waits for the app's answer: until the
    /// answer arrives, its reply does not exist, and an edit gets 404 `Unknown Message` (10008).
    pub fn interaction_sent(&self, token: &str) {
        lock(&self.shared.state).pending.insert(token.to_owned());
    }

    /// The app answered the interaction: its reply exists and can be edited. Tokens Discord
    /// never issued get 404 `Unknown Webhook` (10015).
    pub fn register_interaction(&self, token: &str) {
        let mut state = lock(&self.shared.state);
        state.pending.remove(token);
        state.interactions.insert(token.to_owned(), snowflake());
    }

    /// Refuses the next `count` messages with 429 and `retry_after_s`, the way Discord's rate
    /// limits answer (examples/discord/rate-limit-429-user.http.txt).
    pub fn rate_limit(&self, count: u32, retry_after_s: f64) {
        lock(&self.shared.state).rate_limited = Some((count, retry_after_s));
    }

    /// The key the application's interactions are signed with, as the Developer Portal shows it
    /// (the sandbox's player signs with a key of its own).
    pub fn set_verify_key(&self, verify_key: &str) {
        lock(&self.shared.state).application.verify_key = verify_key.to_owned();
    }

    /// The Interactions Endpoint URL, as set in the Developer Portal.
    pub fn set_interactions_endpoint_url(&self, url: Option<&str>) {
        lock(&self.shared.state)
            .application
            .interactions_endpoint_url = url.map(str::to_owned);
    }

    /// The slash commands registered in a guild (`Some`) or globally (`None`), as Discord
    /// returns them.
    pub fn commands(&self, guild_id: Option<&str>) -> Vec<serde_json::Value> {
        lock(&self.shared.state).application.commands(guild_id)
    }

    /// Every message accepted, in order.
    pub fn messages(&self) -> Vec<DiscordMessage> {
        lock(&self.shared.state).messages.clone()
    }

    /// Every request received, in order (refused ones included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.state).requests.clone()
    }

    /// Waits until at least `n` messages have arrived or `timeout` has passed, and returns
    /// all messages so far (fewer than `n` on timeout).
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<DiscordMessage> {
        let mut count = self.shared.count.subscribe();
        // A timeout is not an error here: the caller sees how many arrived.
        let _ = tokio::time::timeout(timeout, count.wait_for(|seen| *seen >= n)).await;
        self.messages()
    }

    /// Stops serving; returns once the port is closed.
    pub async fn shutdown(mut self) {
        self.server.stop().await;
    }
}

struct Shared {
    config: DiscordFakeConfig,
    state: Mutex<State>,
    /// How many messages have been accepted, for `wait_for_messages`.
    count: watch::Sender<usize>,
}

#[derive(Default)]
struct State {
    /// Registered interaction tokens → the original reply's message id.
    interactions: HashMap<String, String>,
    /// Interactions sent whose answer has not arrived yet.
    pending: HashSet<String>,
    /// Messages still to be refused with 429, and the wait they are told.
    rate_limited: Option<(u32, f64)>,
    messages: Vec<DiscordMessage>,
    requests: Vec<RecordedRequest>,
    application: application::Application,
}

fn handle(shared: &Shared, request: http::Request<Bytes>) -> Reply {
    let mut state = lock(&shared.state);
    state.requests.push(RecordedRequest::of(&request));
    if let Some(refusal) = rate_limited(&mut state) {
        return refusal;
    }
    let path = request.uri().path().to_owned();
    if let Some(reply) =
        application::handle(shared, &mut state.application, &segments(&path), &request)
    {
        return reply;
    }
    let answer = match segments(&path).as_slice() {
        ["api", "v10", "webhooks", application_id, token, "messages", "@original"] => {
            only(&request, http::Method::PATCH)
                .and_then(|()| edit_original(shared, &state, application_id, token, &request))
        }
        ["api", "v10", "channels", channel_id, "messages"] => only(&request, http::Method::POST)
            .and_then(|()| channel_message(shared, channel_id, &request)),
        _ => Err(json(
            404,
            serde_json::json!({ "message": "404: Not Found", "code": 0 }),
        )),
    };
    match answer {
        Ok((message, reply)) => {
            state.messages.push(message);
            shared.count.send_replace(state.messages.len());
            json(200, reply)
        }
        Err(refusal) => refusal,
    }
}

/// 429 with Discord's headers and body, while a rate limit was asked for.
fn rate_limited(state: &mut State) -> Option<Reply> {
    let (left, retry_after_s) = state.rate_limited?;
    state.rate_limited = (left > 1).then_some((left - 1, retry_after_s));
    Some(json_with(
        429,
        &[
            ("retry-after", retry_after_s.ceil().to_string()),
            ("x-ratelimit-limit", "5".into()),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset-after", format!("{retry_after_s:.3}")),
            ("x-ratelimit-bucket", "heimdall-fake".into()),
            ("x-ratelimit-scope", "user".into()),
        ],
        serde_json::json!({ "message": "You are being rate limited.", "retry_after": retry_after_s, "global": false }),
    ))
}

/// An accepted message, and the message object to answer with.
type Accepted = (DiscordMessage, serde_json::Value);

fn only(request: &http::Request<Bytes>, method: http::Method) -> Result<(), Reply> {
    if *request.method() == method {
        return Ok(());
    }
    Err(json(
        405,
        serde_json::json!({ "message": "405: Method Not Allowed", "code": 0 }),
    ))
}

/// `PATCH /webhooks/{application_id}/{token}/messages/@original`: no `Authorization`, the
/// interaction token is the credential.
fn edit_original(
    shared: &Shared,
    state: &State,
    application_id: &str,
    token: &str,
    request: &http::Request<Bytes>,
) -> Result<Accepted, Reply> {
    check_user_agent(request)?;
    if state.pending.contains(token) {
        // The edit overtook the app's answer to the interaction.
        return Err(json(
            404,
            serde_json::json!({ "message": "Unknown Message", "code": 10008 }),
        ));
    }
    let message_id = state
        .interactions
        .get(token)
        .filter(|_| application_id == shared.config.application_id)
        .ok_or_else(|| {
            json(
                404,
                serde_json::json!({ "message": "Unknown Webhook", "code": 10015 }),
            )
        })?;
    let body = MessageBody::read(request)?;
    let mut reply = body.message_object(
        message_id,
        INTERACTION_CHANNEL_ID,
        &shared.config.application_id,
    );
    // The original reply is the interaction's (type 20, CHAT_INPUT_COMMAND), now edited.
    reply["type"] = 20.into();
    reply["webhook_id"] = shared.config.application_id.clone().into();
    reply["application_id"] = shared.config.application_id.clone().into();
    reply["edited_timestamp"] = Utc::now().rfc3339().into();
    let kind = MessageKind::ReplyEdit {
        interaction_token: token.to_owned(),
    };
    Ok((body.into_message(kind), reply))
}

/// The channel an interaction's reply is in; the fake does not track real channels.
const INTERACTION_CHANNEL_ID: &str = "1100000000000000001";

/// `POST /channels/{channel_id}/messages` as the bot (`Authorization: Bot <token>`).
fn channel_message(
    shared: &Shared,
    channel_id: &str,
    request: &http::Request<Bytes>,
) -> Result<Accepted, Reply> {
    check_user_agent(request)?;
    check_bot(shared, request)?;
    if channel_id.is_empty() || !channel_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(form_error(
            Some("channel_id"),
            "NUMBER_TYPE_COERCE",
            &format!("Value \"{channel_id}\" is not snowflake."),
        ));
    }
    let body = MessageBody::read(request)?;
    let reply = body.message_object(&snowflake(), channel_id, &shared.config.application_id);
    let kind = MessageKind::ChannelMessage {
        channel_id: channel_id.to_owned(),
    };
    Ok((body.into_message(kind), reply))
}

/// `Authorization: Bot <token>` with the bot's token, or 401 as Discord answers it.
fn check_bot(shared: &Shared, request: &http::Request<Bytes>) -> Result<(), Reply> {
    let expected = format!("Bot {}", shared.config.bot_token);
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if authorization == Some(expected.as_str()) {
        return Ok(());
    }
    Err(json(
        401,
        serde_json::json!({ "message": "401: Unauthorized", "code": 0 }),
    ))
}

/// Discord wants `User-Agent: DiscordBot ($url, $versionNumber)` from bots.
fn check_user_agent(request: &http::Request<Bytes>) -> Result<(), Reply> {
    let agent = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    if agent.is_some_and(|a| a.starts_with("DiscordBot")) {
        return Ok(());
    }
    Err(form_error(
        None,
        "USER_AGENT_INVALID",
        "Expected \"User-Agent\" header to be \"DiscordBot ($url, $versionNumber)\".",
    ))
}

/// Discord's 50035 error, shaped like examples/discord/error-invalid-form-body-*.json: for one
/// field, or for the request as a whole (`field` = `None`).
fn form_error(field: Option<&str>, code: &str, message: &str) -> Reply {
    form_error_at(field.as_slice(), code, message)
}

/// Discord's 50035 error for a field deep in the body, e.g. `["0", "name"]` for the name of
/// the first command of a list.
fn form_error_at(path: &[&str], code: &str, message: &str) -> Reply {
    let mut errors = serde_json::json!({ "_errors": [{ "code": code, "message": message }] });
    for name in path.iter().rev() {
        errors = serde_json::json!({ *name: errors });
    }
    json(
        400,
        serde_json::json!({ "code": 50035, "errors": errors, "message": "Invalid Form Body" }),
    )
}

/// Discord takes JSON bodies only.
fn check_json(request: &http::Request<Bytes>) -> Result<(), Reply> {
    if crate::util::json_content_type(request).0 {
        return Ok(());
    }
    Err(form_error(
        None,
        "CONTENT_TYPE_INVALID",
        "Expected \"Content-Type\" header to be one of {'application/json'}.",
    ))
}

/// Discord's answer to a body that is not JSON (or not the JSON kind it wants).
fn invalid_json() -> Reply {
    json(
        400,
        serde_json::json!({ "code": 50109, "message": "The request body contains invalid JSON." }),
    )
}

/// The parts of a message body the fake checks and keeps.
struct MessageBody {
    content: String,
    embeds: Vec<serde_json::Value>,
    tts: bool,
}

impl MessageBody {
    const MAX_CONTENT_CHARS: usize = 2000;
    const MAX_EMBEDS: usize = 10;

    fn read(request: &http::Request<Bytes>) -> Result<Self, Reply> {
        check_json(request)?;
        let body: serde_json::Value =
            serde_json::from_slice(request.body()).map_err(|_| invalid_json())?;
        let fields = body.as_object().ok_or_else(invalid_json)?;
        let content = match fields.get("content") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(_) => {
                return Err(form_error(
                    Some("content"),
                    "BASE_TYPE_STRING",
                    "Must be a string.",
                ))
            }
        };
        if content.chars().count() > Self::MAX_CONTENT_CHARS {
            return Err(form_error(
                Some("content"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 2000 or fewer in length.",
            ));
        }
        let embeds = match fields.get("embeds") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(list)) if list.len() <= Self::MAX_EMBEDS => list.clone(),
            Some(serde_json::Value::Array(_)) => {
                return Err(form_error(
                    Some("embeds"),
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 10 or fewer in length.",
                ))
            }
            Some(_) => {
                return Err(form_error(
                    Some("embeds"),
                    "BASE_TYPE_ARRAY",
                    "Must be an array.",
                ))
            }
        };
        if content.is_empty() && embeds.is_empty() {
            return Err(json(
                400,
                serde_json::json!({ "message": "Cannot send an empty message", "code": 50006 }),
            ));
        }
        for embed in &embeds {
            check_embed(embed)
                .map_err(|message| form_error(Some("embeds"), "BASE_TYPE_BAD", &message))?;
        }
        let tts = fields
            .get("tts")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            content,
            embeds,
            tts,
        })
    }

    /// A Discord message object for the answer.
    fn message_object(
        &self,
        id: &str,
        channel_id: &str,
        application_id: &str,
    ) -> serde_json::Value {
        serde_json::json!({
            "id": id,
            "type": 0,
            "channel_id": channel_id,
            "content": self.content,
            "author": {
                "id": application_id,
                "username": "Heimdall",
                "discriminator": "0000",
                "global_name": null,
                "avatar": null,
                "bot": true
            },
            "attachments": [],
            "embeds": self.embeds,
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": false,
            "pinned": false,
            "tts": self.tts,
            "timestamp": Utc::now().rfc3339(),
            "edited_timestamp": null,
            "flags": 0,
            "components": []
        })
    }

    fn into_message(self, kind: MessageKind) -> DiscordMessage {
        DiscordMessage {
            kind,
            content: self.content,
            embeds: self.embeds,
            at: Instant::now(),
        }
    }
}

/// A fresh snowflake: milliseconds since Discord's epoch (2015) above a sequence number.
fn snowflake() -> String {
    const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed) & 0x3f_ffff;
    (now_ms.saturating_sub(DISCORD_EPOCH_MS) << 22 | sequence).to_string()
}

/// Interaction response types Discord takes from an app: PONG, a message now, a message later.
const RESPONSE_TYPES: [u64; 3] = [1, 4, 5];
/// Message flags an interaction response may set: SUPPRESS_EMBEDS, EPHEMERAL,
/// SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2.
const RESPONSE_FLAGS: u64 = (1 << 2) | (1 << 6) | (1 << 12) | (1 << 15);

/// Checks the answer an app gives to an interaction the way Discord does; Discord shows
/// "This interaction failed" for an answer it refuses. `Err` says what is wrong.
pub fn check_interaction_response(body: &serde_json::Value) -> Result<(), String> {
    let kind = body["type"]
        .as_u64()
        .ok_or("the response has no numeric type")?;
    if !RESPONSE_TYPES.contains(&kind) {
        return Err(format!("response type {kind} is not one an app may send"));
    }
    if kind == 1 {
        return Ok(());
    }
    let data = &body["data"];
    if kind == 5 && data.is_null() {
        return Ok(());
    }
    let content = data["content"].as_str().unwrap_or_default();
    if content.chars().count() > MessageBody::MAX_CONTENT_CHARS {
        return Err("content is longer than 2000 characters".into());
    }
    let embeds = match &data["embeds"] {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(list) if list.len() <= MessageBody::MAX_EMBEDS => list.clone(),
        _ => return Err("embeds must be an array of at most 10".into()),
    };
    for embed in &embeds {
        check_embed(embed)?;
    }
    if kind == 4 && content.is_empty() && embeds.is_empty() {
        return Err("a message needs content or an embed".into());
    }
    let flags = data["flags"].as_u64().unwrap_or(0);
    if flags & !RESPONSE_FLAGS != 0 {
        return Err(format!("flags {flags} are not allowed in a response"));
    }
    Ok(())
}

/// Discord's embed limits: title 256, description 4096, 25 fields of name 256 and value 1024
/// (neither empty), footer 2048, and 6000 characters in all.
fn check_embed(embed: &serde_json::Value) -> Result<(), String> {
    let text = |value: &serde_json::Value| value.as_str().map_or(0, |s| s.chars().count());
    let within = |what: &str, count: usize, max: usize| {
        if count > max {
            Err(format!("embed {what} is longer than {max} characters"))
        } else {
            Ok(count)
        }
    };
    let mut total = within("title", text(&embed["title"]), 256)?;
    total += within("description", text(&embed["description"]), 4096)?;
    total += within("footer", text(&embed["footer"]["text"]), 2048)?;
    let fields = match &embed["fields"] {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(list) if list.len() <= 25 => list.clone(),
        _ => return Err("embed fields must be an array of at most 25".into()),
    };
    for field in &fields {
        let (name, value) = (text(&field["name"]), text(&field["value"]));
        if name == 0 || value == 0 {
            return Err("an embed field needs a name and a value".into());
        }
        total += within("field name", name, 256)? + within("field value", value, 1024)?;
    }
    if total > 6000 {
        return Err("the embed has more than 6000 characters".into());
    }
    if let Some(colour) = embed.get("color") {
        if colour.as_u64().is_none_or(|c| c > 0xFF_FF_FF) {
            return Err("embed color must be an RGB integer".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod checks {
    use super::*;

    #[test]
    fn refuses_what_discord_refuses() {
        let ok = serde_json::json!({"type": 4, "data": {"embeds": [{"title": "t", "fields": [{"name": "n", "value": "v"}]}]}});
        assert_eq!(check_interaction_response(&ok), Ok(()));
        for bad in [
            serde_json::json!({"type": 2}),
            serde_json::json!({"type": 4, "data": {}}),
            serde_json::json!({"type": 4, "data": {"content": "x".repeat(2001)}}),
            serde_json::json!({"type": 4, "data": {"content": "x", "flags": 1}}),
            serde_json::json!({"type": 4, "data": {"embeds": [{"title": "x".repeat(257)}]}}),
            serde_json::json!({"type": 4, "data": {"embeds": [{"fields": [{"name": "n", "value": ""}]}]}}),
            serde_json::json!({"type": 4, "data": {"embeds": [{"color": -1}]}}),
        ] {
            assert!(check_interaction_response(&bad).is_err(), "{bad}");
        }
    }
}
