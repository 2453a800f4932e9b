//! Azure Resource Manager (ARM) and Microsoft Entra, sans-IO, for the scaler component.
//!
//! Everything here builds `http::Request<Vec<u8>>` values and parses `http::Response<Vec<u8>>`;
//! the component shell sends them. No clock, no randomness, no sockets.
//!
//! - [`entra`]: client-credentials token for ARM.
//! - [`vmss`]: GET the scale set, PATCH its capacity, list its public IPs.
//! - [`operation`]: follow a long-running operation (`Azure-AsyncOperation`, `Location` or the
//!   resource itself), refusing URLs outside ARM because they get our bearer token.
//! - [`public_ip`]: the instance's VM name and public IP.
//! - [`scaler_api`]: the JSON contract between the reactions component and the scaler.

pub mod entra;
mod error;
pub mod operation;
pub mod public_ip;
pub mod scaler_api;
pub mod vmss;

pub use entra::{AccessToken, ClientCredentials};
pub use error::ArmError;
pub use operation::{OperationStatus, OperationUrl};
pub use public_ip::PublicIp;
pub use vmss::{ProvisioningState, ScaleSet, UpdateOutcome, Vmss};

/// Compute api-version for the scale set itself (GET, PATCH, operation status).
pub const COMPUTE_API_VERSION: &str = "2024-11-01";

/// api-version for the scale set's public IP list: the only value in the swagger enum
/// (`ApiVersionVmssParameter`), see PROTOCOLS.md 4.6.
pub const PUBLIC_IP_API_VERSION: &str = "2017-03-30";

/// An endpoint origin without the trailing slash, so paths can be appended with `/`.
fn trim_origin(endpoint: &str) -> &str {
    endpoint.trim_end_matches('/')
}

/// Characters left as they are in a path segment: RFC 3986's unreserved set.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment from configuration, encoded so that it can never add segments or a query.
fn path_segment(value: &str, what: &str) -> Result<String, ArmError> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(ArmError::InvalidInput(format!(
            "{what} must be a name, not {value:?}"
        )));
    }
    Ok(percent_encoding::utf8_percent_encode(value, SEGMENT).to_string())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Loads the official contract examples shared by every part of the project.

    use std::path::PathBuf;

    pub fn contracts_dir() -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/contracts");
        assert!(
            dir.is_dir(),
            "the contract examples are missing: expected them at {} (../shared/contracts next to the repository)",
            dir.display()
        );
        dir
    }

    /// The raw text of `examples/<name>`.
    pub fn example(name: &str) -> String {
        let path = contracts_dir().join("examples").join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read contract example {}: {e}", path.display()))
    }

    /// The body of an example's response for `status` (the swagger examples wrap bodies in
    /// `{"responses":{"200":{"body":…}}}`).
    pub fn response_body(name: &str, status: &str) -> Vec<u8> {
        let doc: serde_json::Value = serde_json::from_str(&example(name)).expect("example is JSON");
        serde_json::to_vec(&doc["responses"][status]["body"]).expect("re-encode")
    }

    pub fn response(
        status: u16,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> http::Response<Vec<u8>> {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(body).expect("valid test response")
    }
}
