//! The JSON contract between the reactions component and the scaler
//! (`http://scaler.spin.internal`, see docs/ARCHITECTURE.md):
//! - `POST /capacity` [`CapacityRequest`] → [`ScaleReply`]
//! - `POST /operation` [`OperationRequest`] → [`ScaleReply`]
//! - `GET /instance` → [`InstanceReply`]
//!
//! A reply that is not a success comes with HTTP 502 (Azure's answer relayed); a request the
//! scaler cannot use gets a 400 with a text message.
//!
//! Tokens: every answer carries the ARM token the scaler used in [`ARM_TOKEN_HEADER`], and a
//! request may hand one back in the same header, so that one invocation of reactions gets at most
//! one token from Entra however many scaler calls it makes. The header never leaves the app: the
//! scaler is reachable only from inside it.

use serde::{Deserialize, Serialize};

use crate::failure::{classify, FailureKind};
use crate::ArmError;

/// The header that carries an ARM bearer token between reactions and the scaler.
pub const ARM_TOKEN_HEADER: &str = "x-heimdall-arm-token";
/// The header that carries the id of the event a scaler call is for, so that the scaler's log
/// lines carry it too.
pub const EVENT_HEADER: &str = "x-heimdall-event";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CapacityRequest {
    pub capacity: u32,
    /// The VM size to run, when it must change (`None`: keep the scale set's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// The `operation` value of an `InProgress` reply, sent back to poll it once.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct OperationRequest {
    pub operation: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ScaleReply {
    Succeeded,
    InProgress {
        operation: String,
        retry_after_s: u32,
    },
    /// Not now (throttled, busy with another operation, Azure's own trouble, unreachable): ask
    /// again, after `retry_after_s` when Azure said.
    Retry {
        code: String,
        message: String,
        retry_after_s: Option<u32>,
    },
    /// Azure has no spot capacity (or no quota) for this VM size in this region right now.
    NoCapacity {
        code: String,
        message: String,
        region: Option<String>,
    },
    /// For good: asking again changes nothing.
    Failed {
        code: String,
        message: String,
    },
}

impl ScaleReply {
    /// What to tell reactions about a failure `code`/`message`: not now, another size, or for
    /// good ([`crate::failure`]). `status` is the HTTP status when it came as a response.
    pub fn failure(
        status: Option<u16>,
        code: &str,
        message: &str,
        retry_after_s: Option<u32>,
        region: Option<&str>,
    ) -> ScaleReply {
        let (code, message) = (code.to_owned(), message.to_owned());
        match classify(status, &code, &message) {
            FailureKind::Retry => ScaleReply::Retry {
                code,
                message,
                retry_after_s,
            },
            FailureKind::NoCapacity => ScaleReply::NoCapacity {
                code,
                message,
                region: region.map(str::to_owned),
            },
            FailureKind::Final => ScaleReply::Failed { code, message },
        }
    }

    /// The reply for an Entra or ARM error.
    pub fn from_error(error: &ArmError, region: Option<&str>) -> ScaleReply {
        let status = match error {
            ArmError::Cloud { status, .. }
            | ArmError::Entra { status, .. }
            | ArmError::Unexpected { status, .. } => Some(*status),
            ArmError::InvalidInput(_) => None,
        };
        ScaleReply::failure(
            status,
            error.code(),
            &error.to_string(),
            error.retry_after_s(),
            region,
        )
    }

    /// Whether this is a success or work in progress (HTTP 200) rather than a failure (502).
    pub fn is_success(&self) -> bool {
        matches!(self, ScaleReply::Succeeded | ScaleReply::InProgress { .. })
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct InstanceReply {
    pub vm_name: Option<String>,
    pub public_ip: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_form() {
        let cases = [
            (ScaleReply::Succeeded, json!({"status": "succeeded"})),
            (
                ScaleReply::InProgress {
                    operation: "https://op".into(),
                    retry_after_s: 10,
                },
                json!({"status": "in-progress", "operation": "https://op", "retry_after_s": 10}),
            ),
            (
                ScaleReply::Failed {
                    code: "AllocationFailed".into(),
                    message: "m".into(),
                },
                json!({"status": "failed", "code": "AllocationFailed", "message": "m"}),
            ),
        ];
        for (reply, wire) in cases {
            assert_eq!(serde_json::to_value(&reply).unwrap(), wire);
            assert_eq!(serde_json::from_value::<ScaleReply>(wire).unwrap(), reply);
        }
        assert_eq!(
            serde_json::to_value(InstanceReply::default()).unwrap(),
            json!({"vm_name": null, "public_ip": null})
        );
        assert_eq!(
            serde_json::from_str::<CapacityRequest>(r#"{"capacity":1}"#).unwrap(),
            CapacityRequest {
                capacity: 1,
                size: None
            }
        );
        let resized = ScaleReply::NoCapacity {
            code: "AllocationFailed".into(),
            message: "m".into(),
            region: Some("westeurope".into()),
        };
        let wire = json!({"status": "no-capacity", "code": "AllocationFailed", "message": "m", "region": "westeurope"});
        assert_eq!(serde_json::to_value(&resized).unwrap(), wire);
    }
}
