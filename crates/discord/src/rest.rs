//! Discord REST requests that report back: editing the original interaction reply and posting
//! channel messages with the bot token.

use heimdall_events::{is_snowflake, is_url_token};

use crate::embed::cut;

/// Discord's content limit; longer text is cut with an ellipsis rather than refused.
pub const MAX_CONTENT: usize = 2000;
/// Discord requires a `DiscordBot (url, version)` user agent.
const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/heimdall-valheim/heimdall, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// `PATCH /webhooks/{application}/{token}/messages/@original`: no bot token, the interaction
/// token is the credential.
pub fn edit_original(
    api_origin: &str,
    application_id: &str,
    token: &str,
    content: &str,
) -> Result<http::Request<Vec<u8>>, RestError> {
    url_safe("application id", application_id, is_snowflake)?;
    url_safe("interaction token", token, is_url_token)?;
    let url = format!(
        "{}/api/v10/webhooks/{application_id}/{token}/messages/@original",
        api_origin.trim_end_matches('/')
    );
    json_request("PATCH", &url, content, None)
}

/// `POST /channels/{channel}/messages` with `Authorization: Bot <token>`.
pub fn create_message(
    api_origin: &str,
    bot_token: &str,
    channel_id: &str,
    content: &str,
) -> Result<http::Request<Vec<u8>>, RestError> {
    url_safe("channel id", channel_id, is_snowflake)?;
    let url = format!(
        "{}/api/v10/channels/{channel_id}/messages",
        api_origin.trim_end_matches('/')
    );
    json_request("POST", &url, content, Some(bot_token))
}

fn json_request(
    method: &str,
    url: &str,
    content: &str,
    bot_token: Option<&str>,
) -> Result<http::Request<Vec<u8>>, RestError> {
    let body = serde_json::json!({
        "content": cut(content, MAX_CONTENT),
        // Player and user names must never ping anyone.
        "allowed_mentions": { "parse": [] },
    });
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .header("user-agent", USER_AGENT);
    if let Some(token) = bot_token {
        builder = builder.header("authorization", format!("Bot {token}"));
    }
    builder
        .body(body.to_string().into_bytes())
        .map_err(|e| RestError::Request(e.to_string()))
}

/// Why a request to Discord could not be built; it never will be, so it is not retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// An id or token that would change the URL's path (they come from queue messages).
    #[error("the {0} is not URL-safe")]
    NotUrlSafe(&'static str),
    /// The API origin is not a URL (configuration), or a bot token not a header value.
    #[error("no valid request: {0}")]
    Request(String),
}

fn url_safe(what: &'static str, value: &str, ok: fn(&str) -> bool) -> Result<(), RestError> {
    if ok(value) {
        Ok(())
    } else {
        Err(RestError::NotUrlSafe(what))
    }
}

/// What became of a message sent to Discord, and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Delivered,
    /// Rate limited: again after this many seconds.
    RateLimited {
        retry_after_s: f64,
    },
    /// `10008 Unknown Message` on `@original`: the edit overtook the interaction's initial
    /// response, which Discord has not stored yet. Again shortly.
    NotYet,
    /// Discord's own trouble (5xx): again later.
    Unavailable {
        status: u16,
    },
    /// The reply's token expired (15 minutes) or the channel is gone: this will never arrive.
    Gone {
        code: Option<u64>,
    },
    /// Refused for good (a wrong bot token, no access, a body it will not take).
    Refused {
        status: u16,
        detail: String,
    },
}

/// Reads Discord's answer to a message.
pub fn delivery(response: &http::Response<Vec<u8>>) -> Delivery {
    let status = response.status().as_u16();
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    let code = body.get("code").and_then(serde_json::Value::as_u64);
    match status {
        200..=299 => Delivery::Delivered,
        429 => Delivery::RateLimited {
            retry_after_s: retry_after_s(response, &body).unwrap_or(1.0),
        },
        404 if code == Some(UNKNOWN_MESSAGE) => Delivery::NotYet,
        404 => Delivery::Gone { code },
        500..=599 => Delivery::Unavailable { status },
        _ => Delivery::Refused {
            status,
            detail: body
                .get("message")
                .and_then(serde_json::Value::as_str)
                .map_or_else(
                    || format!("HTTP {status}"),
                    |m| m.chars().take(200).collect(),
                ),
        },
    }
}

/// Discord's code for "Unknown Message".
const UNKNOWN_MESSAGE: u64 = 10008;

/// How long Discord asks us to wait after a 429: `X-RateLimit-Reset-After` (with decimals),
/// `Retry-After`, or the body's `retry_after`.
fn retry_after_s(response: &http::Response<Vec<u8>>, body: &serde_json::Value) -> Option<f64> {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    header("x-ratelimit-reset-after")
        .or_else(|| header("retry-after"))
        .or_else(|| body.get("retry_after")?.as_f64())
        .filter(|s| s.is_finite() && *s >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_original_targets_the_webhook() {
        let request = edit_original("https://discord.com/", "123", "tok", "Starting…").unwrap();
        assert_eq!(request.method(), "PATCH");
        assert_eq!(
            request.uri(),
            "https://discord.com/api/v10/webhooks/123/tok/messages/@original"
        );
        assert!(request.headers().get("authorization").is_none());
        assert!(request.headers()["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("DiscordBot ("));
    }

    #[test]
    fn channel_messages_use_the_bot_token_and_never_ping() {
        let request = create_message("https://discord.com", "secret", "42", "Ada joined").unwrap();
        assert_eq!(request.headers()["authorization"], "Bot secret");
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(body["content"], "Ada joined");
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    }

    #[test]
    fn long_content_is_cut_to_the_limit() {
        let long = "x".repeat(3000);
        let request = create_message("https://discord.com", "s", "1", &long).unwrap();
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(
            body["content"].as_str().unwrap().chars().count(),
            MAX_CONTENT
        );
    }

    #[test]
    fn ids_and_tokens_that_would_change_the_path_are_refused() {
        let edit = |app: &str, token: &str| edit_original("https://discord.com", app, token, "x");
        assert_eq!(
            edit("1", "../../channels/9").unwrap_err(),
            RestError::NotUrlSafe("interaction token")
        );
        assert_eq!(
            edit("1?x=", "t").unwrap_err(),
            RestError::NotUrlSafe("application id")
        );
        let post = create_message("https://discord.com", "s", "1/../2", "x");
        assert_eq!(post.unwrap_err(), RestError::NotUrlSafe("channel id"));
        let bad_origin = create_message("not a url\n", "s", "1", "x");
        assert!(matches!(bad_origin, Err(RestError::Request(_))));
        let bad_token = create_message("https://discord.com", "a\nb", "1", "x");
        assert!(matches!(bad_token, Err(RestError::Request(_))));
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Vec<u8>> {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn reads_retry_after_from_the_contract_429() {
        let text = include_str!(
            "../../../../shared/contracts/examples/discord/rate-limit-429-user.http.txt"
        );
        let body = &text[text.find('{').unwrap()..];
        // The contract's headers say 64.57 s to the bucket's reset; the body says the same.
        let with_headers = answer(
            429,
            &[("retry-after", "65"), ("x-ratelimit-reset-after", "64.57")],
            body,
        );
        assert_eq!(
            delivery(&with_headers),
            Delivery::RateLimited {
                retry_after_s: 64.57
            }
        );
        assert_eq!(
            delivery(&answer(429, &[], body)),
            Delivery::RateLimited {
                retry_after_s: 64.57
            }
        );
        assert_eq!(delivery(&answer(200, &[], "{}")), Delivery::Delivered);
    }

    #[test]
    fn tells_an_early_edit_from_a_lost_reply() {
        let early = r#"{"message": "Unknown Message", "code": 10008}"#;
        assert_eq!(delivery(&answer(404, &[], early)), Delivery::NotYet);
        let expired = r#"{"message": "Unknown Webhook", "code": 10015}"#;
        assert_eq!(
            delivery(&answer(404, &[], expired)),
            Delivery::Gone { code: Some(10015) }
        );
        assert_eq!(
            delivery(&answer(503, &[], "<html>")),
            Delivery::Unavailable { status: 503 }
        );
        assert!(matches!(
            delivery(&answer(401, &[], r#"{"message": "401: Unauthorized", "code": 0}"#)),
            Delivery::Refused { status: 401, detail } if detail == "401: Unauthorized"
        ));
    }
}
