//! Reactions: the app's worker. Kicked right after new events are queued and ticked about once a
//! minute, it takes events off the queue, applies them to the game server's state, and carries
//! out the resulting effects (Discord messages, scaler calls).

mod config;
mod effects;
mod inbox;
mod store;

use heimdall_spin_io::{answer, carries_secret, json, text, variable};
use spin_sdk::http::{Method, Request, Response, ResponseOutparam};

use crate::config::Config;
use crate::inbox::LOG;

/// Answers through [`answer`]: a caller that hangs up before the answer's body (the agent of a
/// VM being deleted, say) does not concern the work, which is done either way.
#[spin_sdk::http_component]
async fn handle(request: Request, out: ResponseOutparam) {
    answer(out, respond(request).await).await;
}

async fn respond(request: Request) -> Response {
    let secret = variable("app_secret").unwrap_or_default();
    if !carries_secret(&request, &secret) {
        return text(401, "missing or wrong secret");
    }
    let tick = match request.path().rsplit('/').next() {
        Some("kick") => false,
        Some("tick") => true,
        _ => return text(404, "no such route; use /reactions/kick or /reactions/tick"),
    };
    // `spin aka cron` calls the tick with GET; everyone else POSTs.
    let method = request.method();
    if !(*method == Method::Post || tick && *method == Method::Get) {
        return text(405, "only POST (or GET for the tick)");
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            LOG.error(None, format_args!("configuration: {e:#}"));
            return text(500, "not configured");
        }
    };
    match inbox::run(&config, tick).await {
        Ok(report) => json(200, &report),
        Err(e) => {
            LOG.warn(
                None,
                format_args!("could not finish, the next kick or tick will: {e:#}"),
            );
            text(503, "could not process events now; will retry")
        }
    }
}
