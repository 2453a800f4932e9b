//! Discord REST requests that report back: editing the original interaction reply and posting
//! channel messages with the bot token.

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
) -> http::Request<Vec<u8>> {
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
) -> http::Request<Vec<u8>> {
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
) -> http::Request<Vec<u8>> {
    let body = serde_json::json!({
        "content": truncate(content),
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
        .expect("the origin is configuration; ids and tokens were checked URL-safe on parsing")
}

fn truncate(content: &str) -> String {
    if content.chars().count() <= MAX_CONTENT {
        return content.to_owned();
    }
    let mut cut: String = content.chars().take(MAX_CONTENT - 1).collect();
    cut.push('…');
    cut
}

/// How long Discord asks us to wait after a 429, from `Retry-After` or the body's `retry_after`.
pub fn retry_after_s(response: &http::Response<Vec<u8>>) -> Option<f64> {
    if response.status() != http::StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    header.or_else(|| {
        serde_json::from_slice::<serde_json::Value>(response.body())
            .ok()?
            .get("retry_after")?
            .as_f64()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_original_targets_the_webhook() {
        let request = edit_original("https://discord.com/", "app", "tok", "Starting…");
        assert_eq!(request.method(), "PATCH");
        assert_eq!(
            request.uri(),
            "https://discord.com/api/v10/webhooks/app/tok/messages/@original"
        );
        assert!(request.headers().get("authorization").is_none());
        assert!(request.headers()["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("DiscordBot ("));
    }

    #[test]
    fn channel_messages_use_the_bot_token_and_never_ping() {
        let request = create_message("https://discord.com", "secret", "42", "Ada joined");
        assert_eq!(request.headers()["authorization"], "Bot secret");
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(body["content"], "Ada joined");
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    }

    #[test]
    fn long_content_is_cut_to_the_limit() {
        let long = "x".repeat(3000);
        let request = create_message("https://discord.com", "s", "1", &long);
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(
            body["content"].as_str().unwrap().chars().count(),
            MAX_CONTENT
        );
    }

    #[test]
    fn reads_retry_after_from_the_contract_429() {
        let text = include_str!(
            "../../../../shared/contracts/examples/discord/rate-limit-429-user.http.txt"
        );
        let body = &text[text.find('{').unwrap()..];
        let response = http::Response::builder()
            .status(429)
            .body(body.as_bytes().to_vec())
            .unwrap();
        assert!(retry_after_s(&response).unwrap() > 0.0);
        let ok = http::Response::builder().status(200).body(vec![]).unwrap();
        assert_eq!(retry_after_s(&ok), None);
    }
}
