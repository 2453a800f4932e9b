//! Plays Discord's part: builds slash-command interactions like Discord sends them (the shape of
//! the official example), signs them with the application's Ed25519 key, and posts them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::bail;
use ed25519_compact::KeyPair;
use heimdall_fakes::check_interaction_response;

use crate::client::HttpClient;

pub struct Player {
    http: HttpClient,
    keys: KeyPair,
    interactions_url: String,
    pub application_id: String,
    pub guild_id: String,
    pub channel_id: String,
    next_id: AtomicU64,
    /// Every answer the app gave with 200, in order.
    answers: Mutex<Vec<serde_json::Value>>,
}

/// What Discord got back for one interaction.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    /// The interaction's token, which keys later edits of the reply.
    pub token: String,
}

impl Answer {
    /// The text of a message reply (`data.content`).
    pub fn content(&self) -> String {
        self.body["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first embed of the reply.
    pub fn embed(&self) -> &serde_json::Value {
        &self.body["data"]["embeds"][0]
    }

    /// The reply as a player reads it: its text, then each embed's title, description and
    /// fields, one per line.
    pub fn text(&self) -> String {
        let mut lines = vec![self.content()];
        let empty = Vec::new();
        for embed in self.body["data"]["embeds"].as_array().unwrap_or(&empty) {
            let part = |key: &str| embed[key].as_str().unwrap_or_default().to_owned();
            lines.push(part("title"));
            lines.push(part("description"));
            for field in embed["fields"].as_array().unwrap_or(&empty) {
                let value = field["value"].as_str().unwrap_or_default();
                lines.push(format!(
                    "{}: {}",
                    field["name"].as_str().unwrap_or_default(),
                    value.replace('\n', ", ")
                ));
            }
            lines.push(
                embed["footer"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        lines.retain(|l| !l.is_empty());
        lines.join("\n    ")
    }

    /// Whether only the user who asked sees the reply.
    pub fn private(&self) -> bool {
        self.body["data"]["flags"].as_u64().unwrap_or(0) & (1 << 6) != 0
    }
}

/// An interaction ready to send.
pub struct Prepared {
    pub token: String,
    pub body: String,
}

/// How to spoil a request, to see it refused.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    None,
    /// Signed with a key that is not the application's.
    WrongKey,
    /// Correctly signed, but ten minutes old (a replay).
    OldTimestamp,
}

impl Player {
    pub fn new(http: HttpClient, interactions_url: String, application_id: String) -> Player {
        Player {
            http,
            keys: KeyPair::generate(),
            interactions_url,
            application_id,
            guild_id: "1200000000000000001".into(),
            channel_id: "1200000000000000002".into(),
            next_id: AtomicU64::new(1_300_000_000_000_000_000),
            answers: Mutex::new(Vec::new()),
        }
    }

    /// The public key to configure as `discord_public_key`.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.keys.pk.as_ref())
    }

    /// Builds `/name` as the user `user` would send it; [`Player::send`] sends it. The token is
    /// known before sending, so the fake Discord can learn it before any edit can arrive.
    pub fn prepare(&self, name: &str, user: &str) -> Prepared {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = format!("interaction-token-{id}");
        let body = serde_json::json!({
            "type": 2,
            "id": id.to_string(),
            "application_id": self.application_id,
            "token": token,
            "version": 1,
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "member": {
                "user": { "id": format!("53908232506{}", user.len()), "username": user, "global_name": user },
                "roles": ["539082325061836999"],
                "nick": null,
                "permissions": "2147483647"
            },
            "data": { "id": "771825006014889984", "name": name, "type": 1 },
            "locale": "en-US",
            "app_permissions": "442368"
        })
        .to_string();
        Prepared { token, body }
    }

    /// Sends an interaction; an answer with 200 that Discord would refuse is an error.
    pub async fn send(&self, prepared: Prepared, forgery: Forgery) -> anyhow::Result<Answer> {
        let response = self.post(prepared.body.into_bytes(), forgery).await?;
        self.answer(response, prepared.token)
    }

    /// Discord's PING, sent when the endpoint URL is saved.
    pub async fn ping(&self) -> anyhow::Result<Answer> {
        let response = self.post(br#"{"type":1}"#.to_vec(), Forgery::None).await?;
        self.answer(response, String::new())
    }

    /// Every answer the app gave with 200, in order.
    pub fn answers(&self) -> Vec<serde_json::Value> {
        self.answers.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn answer(&self, response: http::Response<Vec<u8>>, token: String) -> anyhow::Result<Answer> {
        let status = response.status().as_u16();
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        if status == 200 {
            if let Err(refusal) = check_interaction_response(&body) {
                bail!("Discord would refuse the answer ({refusal}): {body}");
            }
            if let Ok(mut answers) = self.answers.lock() {
                answers.push(body.clone());
            }
        }
        Ok(Answer {
            status,
            body,
            token,
        })
    }

    async fn post(
        &self,
        body: Vec<u8>,
        forgery: Forgery,
    ) -> anyhow::Result<http::Response<Vec<u8>>> {
        self.http.send(self.signed(body, forgery)?).await
    }

    /// The request Discord would send for `body`, signed now (or forged as asked).
    pub fn signed(
        &self,
        body: Vec<u8>,
        forgery: Forgery,
    ) -> anyhow::Result<http::Request<Vec<u8>>> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let timestamp = match forgery {
            Forgery::OldTimestamp => now - 600,
            _ => now,
        }
        .to_string();
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(&body);
        let signer = match forgery {
            Forgery::WrongKey => KeyPair::generate().sk,
            _ => self.keys.sk.clone(),
        };
        let signature = hex::encode(signer.sign(&message, None).as_ref());
        Ok(http::Request::post(&self.interactions_url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                "Discord-Interactions/1.0 (+https://discord.com)",
            )
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", timestamp)
            .body(body)?)
    }
}
