//! Queue REST: create, put, get (dequeue with a visibility timeout), delete.

use std::time::SystemTime;

use base64::Engine as _;

use crate::request::{encode_segment, Call, Service};
use crate::{Account, Credential, Endpoint, StorageError};

/// One queue of an account, with the credential its requests carry.
#[derive(Clone, Debug)]
pub struct Queue {
    credential: Credential,
    /// Knows the account name too: path-style endpoints (Azurite) put it in the path.
    endpoint: Endpoint,
    name: String,
}

/// A message taken off the queue. It stays invisible until its visibility timeout ends and must
/// be deleted with its pop receipt once its effects are done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: String,
    pub pop_receipt: String,
    /// 1 on first delivery; grows with each redelivery (poison detection).
    pub dequeue_count: u32,
    /// The message text as stored (Base64 of what was put).
    pub text: String,
}

impl ReceivedMessage {
    /// The bytes that were put, decoding the Base64 that [`Queue::put_message`] applies.
    pub fn payload(&self) -> Result<Vec<u8>, StorageError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.text.trim())
            .map_err(|_| StorageError::Malformed(format!("message {} is not Base64", self.id)))
    }
}

impl Queue {
    /// A queue whose requests are signed with the account key (SharedKey).
    pub fn new(account: Account, endpoint: Endpoint, name: &str) -> Queue {
        Queue::with_credential(Credential::SharedKey(account), endpoint, name)
    }

    /// A queue whose requests carry `credential`, e.g. an Entra token
    /// ([`Credential::Bearer`]).
    pub fn with_credential(credential: Credential, endpoint: Endpoint, name: &str) -> Queue {
        Queue {
            credential,
            endpoint,
            name: name.to_owned(),
        }
    }

    /// Replaces the credential of the requests built from now on: a refreshed token.
    pub fn set_credential(&mut self, credential: Credential) {
        self.credential = credential;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Create Queue: 201 when created, 204 when it already exists with no metadata.
    pub fn create(&self, now: SystemTime) -> http::Request<Vec<u8>> {
        self.call("PUT", format!("/{}", self.name), vec![], vec![])
            .build(&self.credential, &self.endpoint, now)
    }

    /// Put Message. The text is Base64-encoded so that any bytes survive the XML body. It lives
    /// the service's default of 7 days.
    pub fn put_message(&self, text: &str, now: SystemTime) -> http::Request<Vec<u8>> {
        self.put(text, vec![], now)
    }

    /// Put Message that expires after `ttl_s` seconds: an order that makes no sense later (a
    /// stop for a VM that is long gone) must not wait for the next reader.
    pub fn put_expiring_message(
        &self,
        text: &str,
        ttl_s: u32,
        now: SystemTime,
    ) -> http::Request<Vec<u8>> {
        self.put(text, vec![("messagettl", ttl_s.max(1).to_string())], now)
    }

    fn put(
        &self,
        text: &str,
        query: Vec<(&str, String)>,
        now: SystemTime,
    ) -> http::Request<Vec<u8>> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        let body = format!("<QueueMessage><MessageText>{encoded}</MessageText></QueueMessage>");
        let mut call = self.call("POST", self.messages(), query, body.into_bytes());
        call.content_type = "application/xml";
        call.build(&self.credential, &self.endpoint, now)
    }

    /// Get Messages: up to `max` (1..=32) messages, hidden for `visibility_timeout_s` seconds.
    pub fn get_messages(
        &self,
        max: u8,
        visibility_timeout_s: u32,
        now: SystemTime,
    ) -> http::Request<Vec<u8>> {
        let query = vec![
            ("numofmessages", max.clamp(1, 32).to_string()),
            ("visibilitytimeout", visibility_timeout_s.max(1).to_string()),
        ];
        self.call("GET", self.messages(), query, vec![]).build(
            &self.credential,
            &self.endpoint,
            now,
        )
    }

    /// Peek Messages: up to `max` messages without taking them (no pop receipt, no count).
    pub fn peek_messages(&self, max: u8, now: SystemTime) -> http::Request<Vec<u8>> {
        let query = vec![
            ("numofmessages", max.clamp(1, 32).to_string()),
            ("peekonly", "true".to_owned()),
        ];
        self.call("GET", self.messages(), query, vec![]).build(
            &self.credential,
            &self.endpoint,
            now,
        )
    }

    /// Delete Message with the pop receipt of its latest dequeue.
    pub fn delete_message(
        &self,
        message: &ReceivedMessage,
        now: SystemTime,
    ) -> http::Request<Vec<u8>> {
        let resource = format!("{}/{}", self.messages(), encode_segment(&message.id));
        let query = vec![("popreceipt", message.pop_receipt.clone())];
        self.call("DELETE", resource, query, vec![])
            .build(&self.credential, &self.endpoint, now)
    }

    fn messages(&self) -> String {
        format!("/{}/messages", self.name)
    }

    fn call<'a>(
        &self,
        method: &'a str,
        resource: String,
        query: Vec<(&'a str, String)>,
        body: Vec<u8>,
    ) -> Call<'a> {
        Call {
            service: Service::Queue,
            method,
            resource,
            query,
            body,
            content_type: "",
            if_match: None,
            extra: vec![],
        }
    }
}

/// Parses the `QueueMessagesList` body of Get Messages.
pub fn parse_messages(body: &[u8]) -> Result<Vec<ReceivedMessage>, StorageError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| StorageError::Malformed("message list is not UTF-8".into()))?;
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| StorageError::Malformed(format!("message list is not XML: {e}")))?;
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("QueueMessage"))
        .map(parse_message)
        .collect()
}

/// Parses the body of Peek Messages, which has no pop receipts: the message texts, oldest first.
pub fn parse_peeked(body: &[u8]) -> Result<Vec<String>, StorageError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| StorageError::Malformed("message list is not UTF-8".into()))?;
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| StorageError::Malformed(format!("message list is not XML: {e}")))?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("MessageText"))
        .map(|n| n.text().unwrap_or_default().to_owned())
        .collect())
}

fn parse_message(node: roxmltree::Node) -> Result<ReceivedMessage, StorageError> {
    let field = |name: &str| {
        node.children()
            .find(|n| n.has_tag_name(name))
            .map(|n| n.text().unwrap_or_default().to_owned())
            .ok_or_else(|| StorageError::Malformed(format!("queue message without {name}")))
    };
    let dequeue_count = field("DequeueCount")?
        .trim()
        .parse()
        .map_err(|_| StorageError::Malformed("DequeueCount is not a number".into()))?;
    Ok(ReceivedMessage {
        id: field("MessageId")?,
        pop_receipt: field("PopReceipt")?,
        dequeue_count,
        text: field("MessageText")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::DEV_KEY;

    fn queue() -> Queue {
        let account = Account::new("devstoreaccount1", DEV_KEY).unwrap();
        let endpoint = Endpoint::new("http://127.0.0.1:10001", "devstoreaccount1").unwrap();
        Queue::new(account, endpoint, "events")
    }

    #[test]
    fn parses_the_contract_example() {
        let body = include_bytes!(
            "../../../../shared/contracts/examples/azure-queue/get-messages-response.xml"
        );
        let messages = parse_messages(body).unwrap();
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.id, "5974b586-0df3-4e2d-ad0c-18e3892bfca2");
        assert_eq!(m.dequeue_count, 1);
        assert_eq!(m.payload().unwrap(), b"<test>this is a test message</test>");
    }

    #[test]
    fn put_message_body_matches_the_contract_shape() {
        let request = queue().put_message("<hi & bye>", SystemTime::UNIX_EPOCH);
        assert_eq!(request.method(), "POST");
        assert_eq!(
            request.uri(),
            "http://127.0.0.1:10001/devstoreaccount1/events/messages"
        );
        let body = String::from_utf8(request.body().clone()).unwrap();
        assert_eq!(
            body,
            "<QueueMessage><MessageText>PGhpICYgYnllPg==</MessageText></QueueMessage>"
        );
        let auth = request.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with("SharedKey devstoreaccount1:"));
        assert_eq!(
            request.headers()["x-ms-date"],
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn expiring_messages_carry_their_time_to_live() {
        let request = queue().put_expiring_message("stop", 3600, SystemTime::UNIX_EPOCH);
        assert_eq!(
            request.uri(),
            "http://127.0.0.1:10001/devstoreaccount1/events/messages?messagettl=3600"
        );
    }

    fn bearer(token: &str) -> Credential {
        Credential::Bearer(crate::BearerToken::new(token).unwrap())
    }

    #[test]
    fn bearer_put_carries_the_token_and_the_versioned_headers() {
        let endpoint = Endpoint::new("https://acct.queue.core.windows.net", "acct").unwrap();
        let queue = Queue::with_credential(bearer("eyJ0eXAi.token"), endpoint, "events");
        let request = queue.put_message("hi", SystemTime::UNIX_EPOCH);
        assert_eq!(
            request.uri(),
            "https://acct.queue.core.windows.net/events/messages"
        );
        let headers = request.headers();
        assert_eq!(headers["authorization"], "Bearer eyJ0eXAi.token");
        assert_eq!(headers["x-ms-version"], crate::API_VERSION);
        assert_eq!(headers["x-ms-date"], "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(headers["content-type"], "application/xml");
        assert!(!format!("{queue:?}").contains("token"));
    }

    #[test]
    fn bearer_keeps_the_account_in_path_style_urls_and_can_be_replaced() {
        let mut queue = queue();
        queue.set_credential(bearer("first"));
        let request = queue.create(SystemTime::UNIX_EPOCH);
        assert_eq!(
            request.uri(),
            "http://127.0.0.1:10001/devstoreaccount1/events"
        );
        assert_eq!(request.headers()["authorization"], "Bearer first");
        queue.set_credential(bearer("second"));
        let request = queue.peek_messages(1, SystemTime::UNIX_EPOCH);
        assert_eq!(request.headers()["authorization"], "Bearer second");
    }

    #[test]
    fn delete_encodes_the_pop_receipt() {
        let message = ReceivedMessage {
            id: "abc".into(),
            pop_receipt: "AgAAAAEAAAApAAAAGIw6Q29bzAE=".into(),
            dequeue_count: 1,
            text: String::new(),
        };
        let request = queue().delete_message(&message, SystemTime::UNIX_EPOCH);
        assert_eq!(
            request.uri().query(),
            Some("popreceipt=AgAAAAEAAAApAAAAGIw6Q29bzAE%3D")
        );
    }

    #[test]
    fn get_clamps_the_count() {
        let request = queue().get_messages(200, 0, SystemTime::UNIX_EPOCH);
        assert_eq!(
            request.uri().query(),
            Some("numofmessages=32&visibilitytimeout=1")
        );
    }

    #[test]
    fn malformed_lists_are_errors() {
        assert!(parse_messages(b"not xml").is_err());
        let missing = b"<QueueMessagesList><QueueMessage><MessageId>x</MessageId></QueueMessage></QueueMessagesList>";
        assert!(parse_messages(missing).is_err());
        assert_eq!(
            parse_messages(b"<QueueMessagesList/>").unwrap(),
            Vec::<ReceivedMessage>::new()
        );
    }
}
