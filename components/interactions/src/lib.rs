//! Discord's interactions endpoint: verify the signature, turn a slash command that changes the
//! server into an event on the queue, answer Discord at once, then kick reactions so the work
//! starts right away. /status and /help only read: they are answered from the stored state, with
//! no queue and no Azure Resource Manager on the way, so they answer at once whatever a start or
//! a stop is waiting for.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::StreamExt;
use heimdall_azure_storage::table::parse_entity;
use heimdall_azure_storage::{check, Account, Endpoint, Queue, Table};
use heimdall_discord::{interaction::MAX_BODY, parse, Access, Incoming, Question, Reply, Verifier};
use heimdall_events::{Command, Envelope, EventBody};
use heimdall_server_state::status::{help, status_embed, Prices};
use heimdall_server_state::{stored, ServerState, Settings};
use heimdall_spin_io::{answer, send, text, variable, Log};
use spin_sdk::http::{IncomingRequest, Method, Response, ResponseOutparam};

const KICK_URL: &str = "http://reactions.spin.internal/reactions/kick";
const LOG: Log = Log::new("interactions");

#[spin_sdk::http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let (response, queued) = match Delivery::read(incoming).await {
        Ok(delivery) => respond(&delivery).await,
        Err(refusal) => (refusal, None),
    };
    answer(out, response).await;
    if let Some(event) = queued {
        kick(&event).await;
    }
}

/// What the signature check needs from a request, and no more: its two signature headers and
/// its body. Taken straight from the incoming request rather than through spin-sdk's `Request`,
/// which copies every header first: the signature check is on every request's path.
struct Delivery {
    signature: Option<String>,
    timestamp: Option<String>,
    body: Vec<u8>,
}

impl Delivery {
    /// Reads a POST's headers and body; the body no further than [`MAX_BODY`].
    async fn read(incoming: IncomingRequest) -> Result<Delivery, Response> {
        if incoming.method() != Method::Post {
            return Err(text(405, "only POST"));
        }
        let headers = incoming.headers();
        let header = |name: &str| {
            let values = headers.get(name);
            values
                .into_iter()
                .next()
                .and_then(|v| String::from_utf8(v).ok())
        };
        let signature = header("x-signature-ed25519");
        let timestamp = header("x-signature-timestamp");
        drop(headers);
        let mut body = Vec::new();
        let mut stream = incoming.into_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| text(400, &format!("unreadable body: {e:?}")))?;
            body.extend(chunk);
            if body.len() > MAX_BODY {
                return Err(text(413, "interaction body too large"));
            }
        }
        Ok(Delivery {
            signature,
            timestamp,
            body,
        })
    }
}

/// The answer to Discord, and the id of the event it queued, if any.
async fn respond(delivery: &Delivery) -> (Response, Option<String>) {
    let verifier = match variable("discord_public_key")
        .and_then(|k| Verifier::new(&k).map_err(anyhow::Error::msg))
    {
        Ok(v) => v,
        Err(e) => {
            LOG.error(None, format_args!("configuration: {e:#}"));
            return (text(500, "not configured"), None);
        }
    };
    let verified = verifier.verify(
        delivery.signature.as_deref(),
        delivery.timestamp.as_deref(),
        &delivery.body,
        now().as_secs(),
    );
    if let Err(e) = verified {
        LOG.warn(None, format_args!("refused: {e}"));
        return (text(401, "invalid request signature"), None);
    }
    let application_id = || variable("discord_application_id").unwrap_or_default();
    match parse(&delivery.body, application_id) {
        Ok(Incoming::Ping) => (reply(Reply::Pong), None),
        Ok(Incoming::Command(command)) => accept(command).await,
        Ok(Incoming::Question { question, guild_id }) => {
            (answer_question(question, guild_id.as_deref()).await, None)
        }
        Err(e) => {
            LOG.warn(None, format_args!("bad interaction: {e}"));
            (text(400, &e.to_string()), None)
        }
    }
}

/// Checks who asked, queues the command, and says what happens next.
async fn accept(command: Command) -> (Response, Option<String>) {
    // The interaction id is unique and stable: a duplicate delivery maps to the same event.
    let event = format!("cmd-{}", command.reply.interaction_id);
    if let Err(refusal) = access().check(&command) {
        LOG.info(
            Some(&event),
            format_args!("refused /{}: not an operator", command.kind.name()),
        );
        return (reply(Reply::Private(refusal)), None);
    }
    let kind = command.kind.name();
    let who = command.requester.name.clone();
    match enqueue(&event, command).await {
        Ok(()) => {
            LOG.info(Some(&event), format_args!("queued /{kind}"));
            let content = format!("⏳ /{kind} received from {who}…");
            (reply(Reply::Message(content)), Some(event))
        }
        Err(e) => {
            LOG.error(Some(&event), format_args!("could not queue /{kind}: {e:#}"));
            let sorry = "⚠️ Could not reach the server queue; please try again in a minute.";
            (reply(Reply::Private(sorry.into())), None)
        }
    }
}

fn access() -> Access {
    Access::from_settings(
        &variable("allowed_guild_id").unwrap_or_default(),
        &variable("operator_role_ids").unwrap_or_default(),
    )
}

/// /status (from the stored state) or /help.
async fn answer_question(question: Question, guild_id: Option<&str>) -> Response {
    let access = access();
    if let Err(refusal) = access.check_guild(guild_id) {
        return reply(Reply::Private(refusal));
    }
    match question {
        Question::Help => reply(Reply::Private(help(&access.operators()))),
        Question::Status => match status().await {
            Ok(embed) => reply(Reply::Embed(embed)),
            Err(e) => {
                LOG.error(None, format_args!("could not read the server state: {e:#}"));
                let sorry = "⚠️ Could not read the server's state; please try again in a minute.";
                reply(Reply::Private(sorry.into()))
            }
        },
    }
}

/// The /status embed, from the state entity reactions keeps.
async fn status() -> anyhow::Result<heimdall_discord::Embed> {
    let account = variable("storage_account")?;
    let table = Table::new(
        Account::new(&account, &variable("storage_key")?)?,
        Endpoint::new(&variable("table_endpoint")?, &account)?,
        stored::TABLE,
    );
    let settings = Settings {
        game_port: variable("game_port")?
            .trim()
            .parse()
            .context("variable `game_port` is not a port number")?,
        ..Settings::default()
    };
    let prices = Prices::parse(
        &variable("spot_price_per_hour")?,
        &variable("fixed_monthly_cost")?,
    )
    .map_err(anyhow::Error::msg)?;
    let response = send(table.get(&variable("server_id")?, stored::ROW, SystemTime::now())).await?;
    let state = match parse_entity(&response).context("reading the server state")? {
        Some(entity) => stored::decode(&entity.properties, settings).map_err(anyhow::Error::msg)?,
        // Never started: nothing stored yet.
        None => ServerState::new(settings),
    };
    Ok(status_embed(&state, now().as_millis() as u64, prices))
}

async fn enqueue(event: &str, command: Command) -> anyhow::Result<()> {
    let account = variable("storage_account")?;
    let queue = Queue::new(
        Account::new(&account, &variable("storage_key")?)?,
        Endpoint::new(&variable("queue_endpoint")?, &account)?,
        // Only this component writes it (the VM may write `events` only), so a command
        // reactions reads there passed Discord's signature and the role check here.
        heimdall_events::queues::COMMANDS,
    );
    let envelope = Envelope::new(
        event.to_owned(),
        variable("server_id")?,
        now().as_millis() as u64,
        EventBody::Command(command),
    );
    let response = send(queue.put_message(&envelope.to_json(), SystemTime::now())).await?;
    check(&response).context("put message")?;
    Ok(())
}

/// Asks reactions to take the new event now. A failed kick costs only latency: the scheduled
/// tick picks the event up.
async fn kick(event: &str) {
    let result = async {
        let request = http::Request::post(KICK_URL)
            .header(
                "authorization",
                format!("Bearer {}", variable("app_secret")?),
            )
            .body(Vec::new())?;
        let response = send(request).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "kick answered {}",
            response.status()
        );
        Ok::<_, anyhow::Error>(())
    };
    if let Err(e) = result.await {
        LOG.warn(
            Some(event),
            format_args!("kick failed (the tick will catch up): {e:#}"),
        );
    }
}

fn reply(reply: Reply) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(reply.to_json())
        .build()
}

fn now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
