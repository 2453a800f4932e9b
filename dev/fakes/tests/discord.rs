//! The Discord fake: happy paths and each refusal, against the official examples.

mod common;

use std::time::Duration;

use common::{assert_compatible, assert_has_keys, body_json, call, example};
use heimdall_fakes::{DiscordFake, DiscordFakeConfig, MessageKind};

const AGENT: &str = "DiscordBot (https://github.com/heimdall, 0.1)";

fn config() -> DiscordFakeConfig {
    DiscordFakeConfig::default()
}

/// The headers a well-behaved bot sends, plus `extra`.
fn headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("user-agent", AGENT), ("content-type", "application/json")];
    all.extend_from_slice(extra);
    all
}

fn edit_url(fake: &DiscordFake, token: &str) -> String {
    format!(
        "{}/webhooks/{}/{token}/messages/@original",
        fake.api_base(),
        config().application_id
    )
}

fn channel_url(fake: &DiscordFake, channel: &str) -> String {
    format!("{}/channels/{channel}/messages", fake.api_base())
}

/// The 50035 shape of examples/discord/error-invalid-form-body-{request,object}.json.
fn assert_form_error(response: &http::Response<Vec<u8>>, field: Option<&str>, code: &str) {
    assert_eq!(response.status(), 400);
    let body = body_json(response);
    let (documented, errors) = match field {
        None => (
            example("discord/error-invalid-form-body-request.json"),
            body["errors"].clone(),
        ),
        Some(name) => {
            let documented = example("discord/error-invalid-form-body-object.json");
            (documented, body["errors"][name].clone())
        }
    };
    assert_compatible(&body, &documented);
    assert_eq!(body["code"], 50035);
    assert_eq!(body["message"], "Invalid Form Body");
    assert_eq!(errors["_errors"][0]["code"], code, "{body}");
    assert!(errors["_errors"][0]["message"].is_string());
}

#[tokio::test]
async fn edits_a_registered_interaction_reply() {
    let fake = DiscordFake::start(config()).await.unwrap();
    fake.register_interaction("tok-1");
    let response = call(
        "PATCH",
        &edit_url(&fake, "tok-1"),
        &headers(&[]),
        r#"{"content":"Starting the server…"}"#.as_bytes(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let message = body_json(&response);
    assert_eq!(message["content"], "Starting the server…");
    assert!(message["id"]
        .as_str()
        .unwrap()
        .bytes()
        .all(|b| b.is_ascii_digit()));
    assert!(message["edited_timestamp"].is_string());
    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].kind,
        MessageKind::ReplyEdit {
            interaction_token: "tok-1".into()
        }
    );
    assert_eq!(messages[0].content, "Starting the server…");
    fake.shutdown().await;
}

#[tokio::test]
async fn unknown_interactions_are_unknown_webhooks() {
    let fake = DiscordFake::start(config()).await.unwrap();
    fake.register_interaction("tok-1");
    let unknown = call(
        "PATCH",
        &edit_url(&fake, "tok-2"),
        &headers(&[]),
        br#"{"content":"x"}"#,
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        body_json(&unknown),
        serde_json::json!({"message": "Unknown Webhook", "code": 10015})
    );
    let other_app = format!("{}/webhooks/42/tok-1/messages/@original", fake.api_base());
    assert_eq!(
        call("PATCH", &other_app, &headers(&[]), br#"{"content":"x"}"#)
            .await
            .status(),
        404
    );
    assert!(fake.messages().is_empty());
    assert_eq!(fake.requests().len(), 2);
    fake.shutdown().await;
}

#[tokio::test]
async fn posts_channel_messages_as_the_bot() {
    let fake = DiscordFake::start(config()).await.unwrap();
    let auth = format!("Bot {}", config().bot_token);
    // The documented create-message body, with content and an embed.
    let body = serde_json::to_vec(&example("discord/create-message-request.json")).unwrap();
    let response = call(
        "POST",
        &channel_url(&fake, "123456789012345678"),
        &headers(&[("authorization", &auth)]),
        &body,
    )
    .await;
    assert_eq!(response.status(), 200);
    let message = body_json(&response);
    assert_eq!(message["channel_id"], "123456789012345678");
    assert_eq!(message["content"], "Hello, World!");
    assert_eq!(message["author"]["bot"], true);
    let messages = fake.messages();
    assert_eq!(
        messages[0].kind,
        MessageKind::ChannelMessage {
            channel_id: "123456789012345678".into()
        }
    );
    assert_eq!(messages[0].embeds.len(), 1);

    let embeds_only = br#"{"embeds":[{"title":"Server ready"}]}"#;
    let response = call(
        "POST",
        &channel_url(&fake, "1"),
        &headers(&[("authorization", &auth)]),
        embeds_only,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(fake.messages()[1].content, "");
    fake.shutdown().await;
}

#[tokio::test]
async fn channel_messages_need_the_bot_token() {
    let fake = DiscordFake::start(config()).await.unwrap();
    let unauthorized = serde_json::json!({"message": "401: Unauthorized", "code": 0});
    for auth in [None, Some("Bot wrong"), Some("Bearer fake-bot-token")] {
        let extra: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let response = call(
            "POST",
            &channel_url(&fake, "1"),
            &headers(&extra),
            br#"{"content":"x"}"#,
        )
        .await;
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(body_json(&response), unauthorized);
    }
    assert!(fake.messages().is_empty());
    fake.shutdown().await;
}

#[tokio::test]
async fn refuses_requests_without_bot_headers() {
    let fake = DiscordFake::start(config()).await.unwrap();
    fake.register_interaction("tok");
    let url = edit_url(&fake, "tok");
    let no_agent = call(
        "PATCH",
        &url,
        &[("content-type", "application/json")],
        br#"{"content":"x"}"#,
    )
    .await;
    assert_form_error(&no_agent, None, "USER_AGENT_INVALID");
    let browser = call(
        "PATCH",
        &url,
        &[
            ("user-agent", "Mozilla/5.0"),
            ("content-type", "application/json"),
        ],
        br#"{"content":"x"}"#,
    )
    .await;
    assert_form_error(&browser, None, "USER_AGENT_INVALID");
    let form = call(
        "PATCH",
        &url,
        &[
            ("user-agent", AGENT),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"content=x",
    )
    .await;
    assert_form_error(&form, None, "CONTENT_TYPE_INVALID");
    assert!(fake.messages().is_empty());
    fake.shutdown().await;
}

#[tokio::test]
async fn refuses_bad_message_bodies() {
    let fake = DiscordFake::start(config()).await.unwrap();
    fake.register_interaction("tok");
    let url = edit_url(&fake, "tok");
    let too_long = serde_json::json!({ "content": "é".repeat(2001) }).to_string();
    assert_form_error(
        &call("PATCH", &url, &headers(&[]), too_long.as_bytes()).await,
        Some("content"),
        "BASE_TYPE_MAX_LENGTH",
    );
    let exactly = serde_json::json!({ "content": "é".repeat(2000) }).to_string();
    assert_eq!(
        call("PATCH", &url, &headers(&[]), exactly.as_bytes())
            .await
            .status(),
        200
    );

    let empty = call("PATCH", &url, &headers(&[]), br#"{"content":""}"#).await;
    assert_eq!(empty.status(), 400);
    assert_eq!(body_json(&empty)["code"], 50006);
    let invalid = call("PATCH", &url, &headers(&[]), b"{oops").await;
    assert_eq!(invalid.status(), 400);
    assert_eq!(body_json(&invalid)["code"], 50109);
    let eleven =
        serde_json::json!({ "embeds": vec![serde_json::json!({"title": "x"}); 11] }).to_string();
    assert_form_error(
        &call("PATCH", &url, &headers(&[]), eleven.as_bytes()).await,
        Some("embeds"),
        "BASE_TYPE_MAX_LENGTH",
    );

    let auth = format!("Bot {}", config().bot_token);
    let bad_channel = call(
        "POST",
        &channel_url(&fake, "general"),
        &headers(&[("authorization", &auth)]),
        br#"{"content":"x"}"#,
    )
    .await;
    assert_form_error(&bad_channel, Some("channel_id"), "NUMBER_TYPE_COERCE");
    assert_eq!(fake.messages().len(), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let fake = DiscordFake::start(config()).await.unwrap();
    let missing = call(
        "GET",
        &format!("{}/users/@me", fake.api_base()),
        &headers(&[]),
        b"",
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(body_json(&missing)["code"], 0);
    let wrong_method = call("GET", &channel_url(&fake, "1"), &headers(&[]), b"").await;
    assert_eq!(wrong_method.status(), 405);
    fake.shutdown().await;
}

#[tokio::test]
async fn waits_for_messages() {
    let fake = DiscordFake::start(config()).await.unwrap();
    fake.register_interaction("tok");
    let url = edit_url(&fake, "tok");
    let sender = tokio::spawn(async move {
        for n in 0..3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let body = serde_json::json!({ "content": format!("step {n}") }).to_string();
            call("PATCH", &url, &headers(&[]), body.as_bytes()).await;
        }
    });
    let messages = fake.wait_for_messages(3, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 3);
    assert!(messages[0].at <= messages[2].at);
    assert_eq!(messages[2].content, "step 2");
    sender.await.unwrap();
    // On timeout it returns what it has.
    let started = std::time::Instant::now();
    assert_eq!(
        fake.wait_for_messages(4, Duration::from_millis(50))
            .await
            .len(),
        3
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    fake.shutdown().await;
}

#[tokio::test]
async fn message_objects_look_like_discords() {
    let fake = DiscordFake::start(config()).await.unwrap();
    let auth = format!("Bot {}", config().bot_token);
    let response = call(
        "POST",
        &channel_url(&fake, "1"),
        &headers(&[("authorization", &auth)]),
        br#"{"content":"hi","tts":false}"#,
    )
    .await;
    let message = body_json(&response);
    let required = serde_json::json!({
        "id": "", "channel_id": "", "content": "", "author": {"id": "", "username": ""},
        "timestamp": "", "tts": false, "embeds": [], "mentions": [], "attachments": [], "pinned": false, "type": 0
    });
    assert_has_keys(&message, &required, &[]);
    assert_compatible(&message, &required);
    let address = fake.origin().trim_start_matches("http://").to_owned();
    fake.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the port is closed"
    );
}

#[tokio::test]
async fn an_edit_before_the_answer_is_unknown_and_rate_limits_look_like_discords() {
    let fake = DiscordFake::start(config()).await.unwrap();
    fake.interaction_sent("tok-early");
    let body = br#"{"content":"VM up"}"#;
    let early = call("PATCH", &edit_url(&fake, "tok-early"), &headers(&[]), body).await;
    assert_eq!(early.status(), 404);
    assert_eq!(body_json(&early)["code"], 10008);
    fake.register_interaction("tok-early");
    let answered = call("PATCH", &edit_url(&fake, "tok-early"), &headers(&[]), body).await;
    assert_eq!(answered.status(), 200);

    fake.rate_limit(1, 1.5);
    let limited = call("PATCH", &edit_url(&fake, "tok-early"), &headers(&[]), body).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["x-ratelimit-reset-after"], "1.500");
    assert_eq!(body_json(&limited)["retry_after"], 1.5);
    let documented = common::example_http("discord/rate-limit-429-user.http.txt");
    common::assert_has_keys(&body_json(&limited), &documented, &[]);
    let again = call("PATCH", &edit_url(&fake, "tok-early"), &headers(&[]), body).await;
    assert_eq!(again.status(), 200, "one refusal only");
}
