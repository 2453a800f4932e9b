//! Protocol-faithful fakes of the services Heimdall calls and that have no emulator:
//! Microsoft Entra + Azure Resource Manager ([`ArmFake`]), Discord's REST API
//! ([`DiscordFake`]) and the game VM's instance metadata service ([`MetadataFake`]).
//!
//! Each fake listens on `127.0.0.1` on a port of its own (bound to port 0), checks credentials
//! the way the real service does, answers with the status codes, headers and bodies of the
//! official examples in `../shared/contracts/examples`, and records what it was sent so tests
//! can inspect it. A fake stops on `shutdown().await`, and also when dropped.

mod arm;
mod discord;
mod metadata;
mod server;
mod util;

pub use arm::{ArmFake, ArmFakeConfig, Fault, Patch, VmState};
pub use discord::{
    check_interaction_response, DiscordFake, DiscordFakeConfig, DiscordMessage, MessageKind,
};
pub use metadata::{Approval, EventHook, Injected, MetadataFake};

/// One request as a fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: http::Method,
    /// Path and query, as sent.
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub(crate) fn of(request: &http::Request<bytes::Bytes>) -> Self {
        Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            body: request.body().to_vec(),
        }
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
