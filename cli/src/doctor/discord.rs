//! Discord: the bot token, the application it belongs to (id and public key), and the
//! interactions endpoint, which must refuse what Discord did not sign and answer fast.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Finding, Report};
use crate::discord::{self, Application, DiscordError};
use heimdall_native_io::Http;

/// Discord gives up on an interaction that is not answered within 3 seconds.
const DISCORD_WAITS: Duration = Duration::from_secs(3);
/// Slower than this leaves little room for a real interaction's work.
const SLOW: Duration = Duration::from_secs(1);

const PORTAL: &str = "Discord Developer Portal (https://discord.com/developers/applications)";

pub fn check(report: &mut Report, http: &Http, interactions_url: Option<&str>) {
    let application = application(report, http);
    let portal_url = application
        .as_ref()
        .and_then(|app| app.interactions_endpoint_url.clone())
        .filter(|url| !url.is_empty());
    let url = match (interactions_url, portal_url.as_deref()) {
        (Some(given), Some(portal)) => {
            report.add(endpoint_match(given, portal));
            given
        }
        (Some(given), None) => {
            if application.is_some() {
                report.add(Finding::warn(
                    "Discord has no Interactions Endpoint URL for the application yet",
                    format!("set it to {given} in the {PORTAL}, General Information"),
                ));
            }
            given
        }
        (None, Some(portal)) => portal,
        (None, None) => {
            report.add(Finding::warn(
                "interactions endpoint: not checked, no URL known",
                "pass --interactions-url https://<your app>/interactions",
            ));
            return;
        }
    };
    report.step(&format!("sending an unsigned PING to {url}"));
    report.add(ping(http, url));
}

/// The bot's application, checked against the configured id and public key.
fn application(report: &mut Report, http: &Http) -> Option<Application> {
    let [api, token] = report.values("Discord bot token", ["discord_api", "discord_bot_token"])?;
    report.step("asking Discord for the bot's application");
    let answer = discord::application_request(&api, &token)
        .map_err(|e| e.to_string())
        .and_then(|request| http.send(request).map_err(|e| e.to_string()));
    let application = match answer.map(|a| discord::parse_application(&a.response)) {
        Err(unreachable) => {
            report.add(Finding::fail(
                format!("cannot reach Discord at {api}: {unreachable}"),
                "check discord_api (https://discord.com unless you run the fakes) and the network",
            ));
            return None;
        }
        Ok(Err(DiscordError::Unauthorized)) => {
            report.add(Finding::fail(
                "wrong bot token: Discord refused discord_bot_token (401 Unauthorized)",
                format!("in the {PORTAL}, Bot → Reset Token, and set discord_bot_token to the new token"),
            ));
            return None;
        }
        Ok(Err(other)) => {
            report.add(Finding::fail(
                format!("Discord bot token: {other}"),
                "try again; if it stays, check discord_api",
            ));
            return None;
        }
        Ok(Ok(application)) => application,
    };
    report.add(Finding::pass(format!(
        "Discord accepts the bot token (application \"{}\", {})",
        application.name, application.id
    )));
    if let Some([id]) = report.values("Discord application id", ["discord_application_id"]) {
        report.add(application_id(&id, &application));
    }
    if let Some([key]) = report.values("Discord public key", ["discord_public_key"]) {
        report.add(public_key(&key, &application));
    }
    Some(application)
}

fn application_id(configured: &str, application: &Application) -> Finding {
    if configured == application.id {
        return Finding::pass(format!(
            "discord_application_id is the bot's application ({configured})"
        ));
    }
    Finding::fail(
        format!(
            "discord_application_id is {configured}, but the bot token belongs to application {}",
            application.id
        ),
        format!(
            "set discord_application_id to {} (the {PORTAL}, General Information → Application ID), or use that application's bot token",
            application.id
        ),
    )
}

/// The key the app verifies signatures with must be the one Discord signs with.
fn public_key(configured: &str, application: &Application) -> Finding {
    if configured.eq_ignore_ascii_case(application.verify_key.trim()) {
        return Finding::pass("discord_public_key is the application's public key");
    }
    Finding::fail(
        "wrong public key: discord_public_key is not the application's public key, so the app would refuse every interaction Discord sends",
        format!(
            "copy Public Key from the {PORTAL}, General Information, into discord_public_key (it is {})",
            application.verify_key
        ),
    )
}

fn endpoint_match(given: &str, portal: &str) -> Finding {
    if given.trim_end_matches('/') == portal.trim_end_matches('/') {
        return Finding::pass(format!("Discord sends interactions to {given}"));
    }
    Finding::fail(
        format!("Discord sends interactions to {portal}, not to {given}"),
        format!(
            "set the Interactions Endpoint URL to {given} in the {PORTAL}, General Information"
        ),
    )
}

/// A PING with a signature that cannot be valid: the endpoint must answer 401, and in time.
fn ping(http: &Http, url: &str) -> Finding {
    let request = match unsigned_ping(url) {
        Ok(request) => request,
        Err(e) => {
            return Finding::fail(
                format!("interactions URL {url:?} is not a URL: {e}"),
                "pass https://<your app>/interactions",
            )
        }
    };
    match http.send(request) {
        Err(e) => Finding::fail(
            format!("cannot reach the interactions endpoint {url}: {e}"),
            "check the URL and that the Spin app is running and public",
        ),
        Ok(answer) => judge_ping(url, answer.response.status().as_u16(), answer.elapsed),
    }
}

fn unsigned_ping(url: &str) -> Result<http::Request<Vec<u8>>, http::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    http::Request::post(url)
        .header("content-type", "application/json")
        .header("x-signature-ed25519", "0".repeat(128))
        .header("x-signature-timestamp", now.to_string())
        .body(br#"{"type":1,"id":"0","token":"heimdall-doctor","version":1}"#.to_vec())
}

/// What the endpoint's answer to an unsigned PING says about it.
fn judge_ping(url: &str, status: u16, elapsed: Duration) -> Finding {
    let ms = elapsed.as_millis();
    match status {
        401 if elapsed > DISCORD_WAITS => Finding::fail(
            format!("the interactions endpoint {url} refuses a bad signature, but took {ms} ms; Discord gives up after 3 s"),
            "run the app closer to Discord or on a host without cold starts of seconds",
        ),
        401 if elapsed > SLOW => Finding::warn(
            format!("the interactions endpoint {url} refuses a bad signature, but took {ms} ms"),
            "Discord gives up after 3 s; look at the host's cold starts",
        ),
        401 => Finding::pass(format!(
            "the interactions endpoint {url} refuses a bad signature (401 in {ms} ms)"
        )),
        200..=299 => Finding::fail(
            format!("the interactions endpoint {url} accepted a PING with a bad signature ({status}): it does not verify Discord's signatures"),
            "point the URL at Heimdall's /interactions route and set discord_public_key; Discord refuses such endpoints, and anyone could send commands",
        ),
        404 | 405 => Finding::fail(
            format!("the interactions endpoint {url} answered {status}: no interactions route there"),
            "the URL must be https://<your app>/interactions",
        ),
        _ => Finding::fail(
            format!("the interactions endpoint {url} answered {status} instead of 401 to a bad signature"),
            "look at the app's log; a 5xx often means a variable is missing or wrong",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Mark;

    fn app() -> Application {
        Application {
            id: "11".into(),
            name: "Heimdall".into(),
            verify_key: "ABCD".into(),
            interactions_endpoint_url: None,
        }
    }

    #[test]
    fn the_configuration_must_name_the_bots_application() {
        assert_eq!(application_id("11", &app()).mark, Mark::Pass);
        let wrong = application_id("12", &app());
        assert_eq!(wrong.mark, Mark::Fail);
        assert!(wrong.line().contains("set discord_application_id to 11"));
        assert_eq!(public_key("abcd", &app()).mark, Mark::Pass);
        let wrong = public_key("abce", &app());
        assert!(wrong.line().contains("wrong public key") && wrong.line().contains("ABCD"));
    }

    #[test]
    fn only_a_quick_401_is_right() {
        let fast = Duration::from_millis(20);
        assert_eq!(judge_ping("u", 401, fast).mark, Mark::Pass);
        assert_eq!(
            judge_ping("u", 401, Duration::from_millis(1500)).mark,
            Mark::Warn
        );
        assert_eq!(
            judge_ping("u", 401, Duration::from_secs(4)).mark,
            Mark::Fail
        );
        let open = judge_ping("u", 200, fast);
        assert!(open.mark == Mark::Fail && open.text.contains("does not verify"));
        assert_eq!(judge_ping("u", 404, fast).mark, Mark::Fail);
        assert_eq!(judge_ping("u", 500, fast).mark, Mark::Fail);
    }

    #[test]
    fn the_portals_url_must_be_the_given_one() {
        assert_eq!(
            endpoint_match("https://a/interactions", "https://a/interactions/").mark,
            Mark::Pass
        );
        assert_eq!(
            endpoint_match("https://a/interactions", "https://b/interactions").mark,
            Mark::Fail
        );
    }

    #[test]
    fn the_ping_cannot_carry_a_valid_signature() {
        let request = unsigned_ping("http://127.0.0.1:1/interactions").unwrap();
        assert_eq!(
            request.headers()["x-signature-ed25519"],
            "0".repeat(128).as_str()
        );
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(body["type"], 1);
    }
}
