//! Following a long-running operation. PROTOCOLS.md 4.4.
//!
//! The URL to poll comes back to us from the reactions component, and the poll carries our
//! bearer token, so it must point at ARM and nowhere else: [`OperationUrl::parse`] refuses any
//! other origin.

use serde::Deserialize;

use crate::error::{cloud_error, retry_after_s, ArmError, ErrorDetail};
use crate::vmss::{authorized, ProvisioningState, ResourceBody};
use crate::AccessToken;

/// An operation URL known to be on the ARM endpoint's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationUrl(String);

impl OperationUrl {
    /// Accepts `url` only if its scheme, host and port are the ARM endpoint's.
    pub fn parse(url: &str, arm_endpoint: &str) -> Result<Self, ArmError> {
        let refuse = || {
            ArmError::InvalidInput(format!(
                "the operation URL must be on {arm_endpoint}; refusing to send the ARM token elsewhere"
            ))
        };
        let wanted = origin(arm_endpoint).ok_or_else(|| {
            ArmError::InvalidInput(format!(
                "the ARM endpoint {arm_endpoint:?} is not an absolute URL"
            ))
        })?;
        if origin(url).ok_or_else(refuse)? != wanted {
            return Err(refuse());
        }
        Ok(Self(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The region of a Compute operation URL (`…/locations/{region}/operations/{id}`), for
    /// messages about capacity there.
    pub fn location(&self) -> Option<&str> {
        let path = self.0.split(['?', '#']).next()?;
        let mut segments = path.split('/');
        segments.find(|s| s.eq_ignore_ascii_case("locations"))?;
        segments.next().filter(|s| !s.is_empty())
    }

    /// `GET` the operation (or resource) with the bearer token.
    pub fn request(&self, token: &AccessToken) -> Result<http::Request<Vec<u8>>, ArmError> {
        authorized(http::Method::GET, &self.0, token, Vec::new())
    }
}

/// (scheme, host, port) with the scheme's default port filled in; `None` for anything that is
/// not an absolute http(s) URL, or that has user info (`https://arm@evil.example/`).
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let port = authority.port_u16().unwrap_or(default_port);
    Some((scheme, authority.host().to_ascii_lowercase(), port))
}

/// Where a polled operation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    InProgress { retry_after_s: Option<u32> },
    Succeeded,
    Failed { code: String, message: String },
}

/// An `Azure-AsyncOperation` status body: `{status, error?: {code, message}, …}`.
#[derive(Deserialize)]
struct StatusBody {
    status: String,
    error: Option<ErrorDetail>,
}

/// Reads the answer to a poll, whichever kind of URL was polled:
/// - an `Azure-AsyncOperation` URL answers 200 with a `status` body;
/// - a `Location` URL answers 202 while running and 200 (or 204) when done;
/// - the resource itself answers 200 with its `provisioningState`.
pub fn parse_operation(response: &http::Response<Vec<u8>>) -> Result<OperationStatus, ArmError> {
    let retry_after_s = retry_after_s(response.headers());
    match response.status().as_u16() {
        202 => Ok(OperationStatus::InProgress { retry_after_s }),
        204 => Ok(OperationStatus::Succeeded),
        200 | 201 => from_body(response, retry_after_s),
        _ => Err(cloud_error(response)),
    }
}

fn from_body(
    response: &http::Response<Vec<u8>>,
    retry_after_s: Option<u32>,
) -> Result<OperationStatus, ArmError> {
    let body = response.body();
    // A finished `Location` poll may answer with no body at all.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(OperationStatus::Succeeded);
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ArmError::unexpected(response, format!("cannot read the operation status: {e}"))
    })?;
    if value.get("status").is_some() {
        let status: StatusBody = serde_json::from_value(value).map_err(|e| {
            ArmError::unexpected(response, format!("cannot read the operation status: {e}"))
        })?;
        return Ok(status.into_status(retry_after_s));
    }
    // Not a status body: the resource itself, whose provisioningState tells (none = done).
    let resource: ResourceBody = serde_json::from_value(value).unwrap_or_default();
    Ok(match resource.provisioning_state() {
        None | Some(ProvisioningState::Succeeded) => OperationStatus::Succeeded,
        Some(ProvisioningState::InProgress(_)) => OperationStatus::InProgress { retry_after_s },
        Some(state) => {
            let (code, message) = state.failure().unwrap_or_default();
            OperationStatus::Failed { code, message }
        }
    })
}

impl StatusBody {
    fn into_status(self, retry_after_s: Option<u32>) -> OperationStatus {
        match ProvisioningState::parse(&self.status) {
            ProvisioningState::Succeeded => OperationStatus::Succeeded,
            // Any status that is not terminal (InProgress, Running, an RP's own) is running.
            ProvisioningState::InProgress(_) => OperationStatus::InProgress { retry_after_s },
            terminal => {
                let error = self.error.unwrap_or_default();
                let (default_code, default_message) = terminal.failure().unwrap_or_default();
                let message = error.full_message();
                OperationStatus::Failed {
                    code: error.code.unwrap_or(default_code),
                    message: if message.is_empty() {
                        default_message
                    } else {
                        message
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod location_tests {
    use super::*;

    #[test]
    fn the_region_comes_from_the_operation_url() {
        let arm = "https://management.azure.com";
        let url = OperationUrl::parse(
            "https://management.azure.com/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/o?api-version=2024-11-01",
            arm,
        )
        .unwrap();
        assert_eq!(url.location(), Some("westeurope"));
        let resource = OperationUrl::parse(
            "https://management.azure.com/subscriptions/s/resourceGroups/g?x=/locations/y/",
            arm,
        )
        .unwrap();
        assert_eq!(resource.location(), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{example, response};

    const ARM: &str = "https://management.azure.com";

    #[test]
    fn accepts_operation_urls_on_the_arm_origin() {
        let url = "https://management.azure.com/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/9a06?api-version=2024-11-01";
        assert_eq!(OperationUrl::parse(url, ARM).unwrap().as_str(), url);
        assert!(OperationUrl::parse("HTTPS://Management.Azure.com:443/x", ARM).is_ok());
        assert!(OperationUrl::parse("http://127.0.0.1:5000/op", "http://127.0.0.1:5000/").is_ok());
    }

    #[test]
    fn refuses_every_other_origin() {
        for url in [
            "https://evil.example/op",
            "http://management.azure.com/op",
            "https://management.azure.com:8443/op",
            "https://management.azure.com.evil.example/op",
            "https://management.azure.com@evil.example/op",
            "/subscriptions/s/op",
            "ftp://management.azure.com/op",
            "not a url",
            "",
        ] {
            let refused = OperationUrl::parse(url, ARM);
            assert!(
                matches!(refused, Err(ArmError::InvalidInput(_))),
                "{url}: {refused:?}"
            );
        }
        assert!(OperationUrl::parse("http://127.0.0.1:5001/op", "http://127.0.0.1:5000").is_err());
    }

    #[test]
    fn poll_request_carries_the_token() {
        let url = OperationUrl::parse(
            "https://management.azure.com/op?api-version=2024-11-01",
            ARM,
        )
        .unwrap();
        let request = url.request(&AccessToken::new("tok", 1)).unwrap();
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.headers()["authorization"], "Bearer tok");
    }

    #[test]
    fn reads_the_documented_in_progress_status() {
        let body = example("arm/operation-status-compute-inprogress.json").into_bytes();
        let status = parse_operation(&response(200, &[("retry-after", "15")], body)).unwrap();
        assert_eq!(
            status,
            OperationStatus::InProgress {
                retry_after_s: Some(15)
            }
        );
    }

    #[test]
    fn reads_the_documented_deployment_statuses() {
        let running = example("arm/operation-status-deployment-running.json").into_bytes();
        assert!(matches!(
            parse_operation(&response(200, &[], running)),
            Ok(OperationStatus::InProgress { .. })
        ));
        let succeeded = example("arm/operation-status-deployment-succeeded.json").into_bytes();
        assert_eq!(
            parse_operation(&response(200, &[], succeeded)),
            Ok(OperationStatus::Succeeded)
        );
    }

    #[test]
    fn failed_operations_carry_their_error() {
        let body = br#"{"status":"Failed","error":{"code":"AllocationFailed","message":"Allocation failed."}}"#.to_vec();
        assert_eq!(
            parse_operation(&response(200, &[], body)),
            Ok(OperationStatus::Failed {
                code: "AllocationFailed".into(),
                message: "Allocation failed.".into()
            })
        );
        let canceled = br#"{"status":"Canceled"}"#.to_vec();
        assert!(matches!(
            parse_operation(&response(200, &[], canceled)),
            Ok(OperationStatus::Failed { ref code, .. }) if code == "ProvisioningStateCanceled"
        ));
    }

    #[test]
    fn location_and_resource_polls() {
        assert_eq!(
            parse_operation(&response(202, &[("retry-after", "3")], Vec::new())),
            Ok(OperationStatus::InProgress {
                retry_after_s: Some(3)
            })
        );
        assert_eq!(
            parse_operation(&response(200, &[], Vec::new())),
            Ok(OperationStatus::Succeeded)
        );
        let updating =
            br#"{"sku":{"capacity":1},"properties":{"provisioningState":"Updating"}}"#.to_vec();
        assert!(matches!(
            parse_operation(&response(200, &[], updating)),
            Ok(OperationStatus::InProgress { .. })
        ));
        let done = crate::testing::response_body("arm/vmss-get.json", "200");
        assert_eq!(
            parse_operation(&response(200, &[], done)),
            Ok(OperationStatus::Succeeded)
        );
    }

    #[test]
    fn poll_errors_are_cloud_errors() {
        let body = br#"{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}"#.to_vec();
        assert_eq!(
            parse_operation(&response(401, &[], body))
                .unwrap_err()
                .code(),
            "InvalidAuthenticationToken"
        );
        assert!(matches!(
            parse_operation(&response(200, &[], b"<html/>".to_vec())),
            Err(ArmError::Unexpected { .. })
        ));
    }
}
