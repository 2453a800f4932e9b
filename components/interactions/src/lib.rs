//! Discord's interactions endpoint: verify the signature, turn a slash command into an event on
//! the queue, answer Discord at once, then kick reactions so the work starts right away.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::StreamExt;
use heimdall_azure_storage::{check, Account, Endpoint, Queue};
use heimdall_discord::{interaction::MAX_BODY, parse, Access, Incoming, Reply, Verifier};
use heimdall_events::{Command, Envelope, EventBody};
use heimdall_spin_io::{answer, send, text, variable};
use spin_sdk::http::{IncomingRequest, Method, Response, ResponseOutparam};

/// The queue of slash commands: only this component writes it (the VM may write `events` only),
/// so a command reactions reads there passed Discord's signature and the role check here.
const COMMANDS_QUEUE: &str = "commands";
const KICK_URL: &str = "http://reactions.spin.internal/reactions/kick";

#[spin_sdk::http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let (response, queued) = match Delivery::read(incoming).await {
        Ok(delivery) => respond(&delivery).await,
        Err(refusal) => (refusal, false),
    };
    answer(out, response).await;
    if queued {
        kick().await;
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

/// The answer to Discord, and whether an event was queued.
async fn respond(delivery: &Delivery) -> (Response, bool) {
    let verifier = match variable("discord_public_key")
        .and_then(|k| Verifier::new(&k).map_err(anyhow::Error::msg))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("interactions: configuration: {e:#}");
            return (text(500, "not configured"), false);
        }
    };
    let verified = verifier.verify(
        delivery.signature.as_deref(),
        delivery.timestamp.as_deref(),
        &delivery.body,
        now().as_secs(),
    );
    if let Err(e) = verified {
        eprintln!("interactions: refused: {e}");
        return (text(401, "invalid request signature"), false);
    }
    let application_id = || variable("discord_application_id").unwrap_or_default();
    match parse(&delivery.body, application_id) {
        Ok(Incoming::Ping) => (reply(Reply::Pong), false),
        Ok(Incoming::Command(command)) => accept(command).await,
        Err(e) => {
            eprintln!("interactions: bad interaction: {e}");
            (text(400, &e.to_string()), false)
        }
    }
}

/// Checks who asked, queues the command, and says what happens next.
async fn accept(command: Command) -> (Response, bool) {
    let access = Access::from_settings(
        &variable("allowed_guild_id").unwrap_or_default(),
        &variable("operator_role_ids").unwrap_or_default(),
    );
    if let Err(refusal) = access.check(&command) {
        return (reply(Reply::Private(refusal)), false);
    }
    let kind = command.kind.name();
    let who = command.requester.name.clone();
    match enqueue(command).await {
        Ok(()) => (
            reply(Reply::Message(format!("🪄 /{kind} received from {who}…"))),
            true,
        ),
        Err(e) => {
            eprintln!("interactions: could not queue /{kind}: {e:#}");
            let sorry = "⚠️ Could not reach the server queue; please try again in a minute.";
            (reply(Reply::Private(sorry.into())), false)
        }
    }
}

async fn enqueue(command: Command) -> anyhow::Result<()> {
    let account = variable("storage_account")?;
    let queue = Queue::new(
        Account::new(&account, &variable("storage_key")?)?,
        Endpoint::new(&variable("queue_endpoint")?, &account)?,
        COMMANDS_QUEUE,
    );
    // The interaction id is unique and stable: a duplicate delivery maps to the same event.
    let id = format!("cmd-{}", command.reply.interaction_id);
    let envelope = Envelope::new(
        id,
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
async fn kick() {
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
        eprintln!("interactions: kick failed (the tick will catch up): {e:#}");
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
