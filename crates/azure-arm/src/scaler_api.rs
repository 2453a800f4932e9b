//! The JSON contract between the reactions component and the scaler
//! (`http://scaler.spin.internal`, see docs/ARCHITECTURE.md):
//! - `POST /capacity` [`CapacityRequest`] → [`ScaleReply`]
//! - `POST /operation` [`OperationRequest`] → [`ScaleReply`]
//! - `GET /instance` → [`InstanceReply`]
//!
//! A `Failed` reply comes with HTTP 502 and, when Azure asked for it, a `Retry-After` header;
//! a request the scaler cannot use gets a 400 with a text message.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CapacityRequest {
    pub capacity: u32,
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
    Failed {
        code: String,
        message: String,
    },
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
            CapacityRequest { capacity: 1 }
        );
    }
}
