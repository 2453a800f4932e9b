//! Azure Storage Queue and Table REST, without I/O: requests are built as `http::Request`
//! values signed with SharedKey (or, for queues, carrying a Microsoft Entra bearer token, see
//! [`Credential`]), responses are parsed from `http::Response` values.
//!
//! The same code talks to Azure and to Azurite: an endpoint whose host is an IP address or
//! `localhost` is addressed path-style (`http://127.0.0.1:10001/<account>/<queue>`), as the
//! emulator and Azure's own SDKs do.

mod account;
mod credential;
mod error;
pub mod queue;
mod request;
mod shared_key;
pub mod table;

pub use account::{Account, Endpoint};
pub use credential::{BearerToken, Credential, STORAGE_RESOURCE};
pub use error::{check, StorageError};
pub use queue::{Queue, ReceivedMessage};
pub use table::{Entity, Table};

/// The service version we speak; Azurite 3.x serves it and so does Azure.
pub const API_VERSION: &str = "2021-12-02";

/// The key of Azurite's well-known development account (public, documented), for unit tests.
#[cfg(test)]
pub(crate) const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
