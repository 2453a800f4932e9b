//! Azure Resource Manager (ARM) and Microsoft Entra, sans-IO, for the scaler component.
//!
//! Everything here builds `http::Request<Vec<u8>>` values and parses `http::Response<Vec<u8>>`;
//! the component shell sends them. No clock, no randomness, no sockets.
//!
//! - [`entra`]: client-credentials token for ARM.
//! - [`vmss`]: GET the scale set, PATCH its capacity, list its VMs.
//! - [`operation`]: follow a long-running operation (`Azure-AsyncOperation`, `Location` or the
//!   resource itself), refusing URLs outside ARM because they get our bearer token.
//! - [`instance`]: the (Flexible) scale set's VM, its NIC and its public IP.
//! - [`calls`]: every ARM call above with the permission Azure checks for it, the list the
//!   deployment's roles are held to.
//! - [`scaler_api`]: the JSON contract between the reactions component and the scaler.

pub mod calls;
pub mod entra;
mod error;
pub mod failure;
pub mod instance;
pub mod operation;
pub mod scaler_api;
pub mod vmss;

pub use entra::{AccessToken, ClientCredentials};
pub use error::ArmError;
pub use failure::FailureKind;
pub use instance::InstanceLookup;
pub use operation::{OperationStatus, OperationUrl};
pub use vmss::{ProvisioningState, ScaleSet, UpdateOutcome, Vmss};

/// Compute api-version for the scale set and its VMs (GET, PATCH, VM list, operation status).
pub const COMPUTE_API_VERSION: &str = "2024-11-01";

/// Network api-version for the VM's NIC and public IP (stable, as in the Network examples).
pub const NETWORK_API_VERSION: &str = "2024-07-01";

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
