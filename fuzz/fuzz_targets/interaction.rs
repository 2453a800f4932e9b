//! Discord interaction requests, taken as the interactions component takes them: the signature
//! check, the parse, the access check and the answer.
//!
//! The input is a request body. Signed with a test key it must pass the check, and so reaches
//! the parser with every input; read as forged headers and body it must always be refused.

#![no_main]

use std::sync::OnceLock;

use ed25519_dalek::{Signer, SigningKey};
use heimdall_discord::{parse, Access, Incoming, Reply, Verifier};
use heimdall_events::{Command, Envelope, EventBody};
use heimdall_server_state::status::help;
use libfuzzer_sys::fuzz_target;

/// "Now" for the check, and the timestamp of the signed requests: always fresh.
const NOW_S: u64 = 1_764_000_000;
const TIMESTAMP: &str = "1764000000";
/// A deployment limited to the contract example's guild and operator role, so that commands
/// are both accepted and refused.
const GUILD: &str = "290926798626357999";
const OPERATOR_ROLE: &str = "539082325061836999";
const APPLICATION_ID: &str = "1100000000000000000";

struct Keys {
    signing: SigningKey,
    verifier: Verifier,
}

/// Made once: deriving the key costs more than a whole run of the target.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let public_hex = hex::encode(signing.verifying_key().as_bytes());
        let verifier = Verifier::new(&public_hex).expect("the test key is a valid public key");
        Keys { signing, verifier }
    })
}

fuzz_target!(|data: &[u8]| {
    refuses_forgery(data);
    answer_signed(data);
});

/// The input read as `signature \n timestamp \n body`: without the private key nothing the
/// fuzzer writes may pass. Headers that are not UTF-8 count as missing, as in the component.
fn refuses_forgery(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let signature = parts.next().and_then(utf8);
    let timestamp = parts.next().and_then(utf8);
    let body = parts.next().unwrap_or_default();
    let verdict = keys().verifier.verify(signature, timestamp, body, NOW_S);
    assert!(
        verdict.is_err(),
        "a request the fuzzer wrote passed the check"
    );
}

fn utf8(header: &[u8]) -> Option<&str> {
    std::str::from_utf8(header).ok()
}

/// The input as the body of a request Discord signed: accepted, then parsed and answered.
fn answer_signed(body: &[u8]) {
    let keys = keys();
    let mut message = TIMESTAMP.as_bytes().to_vec();
    message.extend_from_slice(body);
    let signature = hex::encode(keys.signing.sign(&message).to_bytes());
    let verdict = keys
        .verifier
        .verify(Some(&signature), Some(TIMESTAMP), body, NOW_S);
    assert_eq!(verdict, Ok(()), "a fresh, signed request was refused");
    let access = Access::from_settings(GUILD, OPERATOR_ROLE);
    let reply = match parse(body, || APPLICATION_ID.to_owned()) {
        Ok(Incoming::Ping) => Reply::Pong,
        Ok(Incoming::Command(command)) => accept(&access, command),
        Ok(Incoming::Question { guild_id, .. }) => match access.check_guild(guild_id.as_deref()) {
            Ok(()) => Reply::Private(help(&access.operators())),
            Err(refusal) => Reply::Private(refusal),
        },
        // Answered 400 with the error's text: nothing more to take.
        Err(_) => return,
    };
    reply.to_json();
}

/// A command from an operator goes on the queue, and its requester is told so by name.
fn accept(access: &Access, command: Command) -> Reply {
    if let Err(refusal) = access.check(&command) {
        return Reply::Private(refusal);
    }
    let content = format!(
        "⏳ /{} received from {}…",
        command.kind.name(),
        command.requester.name
    );
    queue_round_trip(command);
    Reply::Message(content)
}

/// The queue message reactions will read. Its decoder is stricter than the parser (ids must be
/// snowflakes), so it may refuse; what it accepts must be what was sent.
fn queue_round_trip(command: Command) {
    let id = format!("cmd-{}", command.reply.interaction_id);
    let envelope = Envelope::new(
        id,
        "valheim".into(),
        NOW_S * 1000,
        EventBody::Command(command),
    );
    if let Ok(decoded) = Envelope::from_json(envelope.to_json().as_bytes()) {
        assert_eq!(decoded, envelope, "the queue message changed on the way");
    }
}
