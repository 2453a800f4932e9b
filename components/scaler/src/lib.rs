//! The scaler: a private Spin component (reached only as `http://scaler.spin.internal`) that
//! turns the reactions component's requests into Azure Resource Manager calls. A thin shell:
//! requests and parsing live in `heimdall-azure-arm`; this file only sends and routes.
//!
//! Each request gets its own token by client credentials, since Spin starts a fresh instance
//! per request and there is nowhere to keep one yet.

use heimdall_azure_arm::scaler_api::{
    CapacityRequest, InstanceReply, OperationRequest, ScaleReply,
};
use heimdall_azure_arm::{entra, operation, vmss};
use heimdall_azure_arm::{
    AccessToken, ArmError, ClientCredentials, InstanceLookup, OperationStatus, OperationUrl,
    ProvisioningState, ScaleSet,
};
use heimdall_spin_io as io;
use spin_sdk::http::{Method, Request, Response};

/// Poll interval we suggest when ARM does not send `Retry-After`.
const DEFAULT_RETRY_AFTER_S: u32 = 10;

/// Requests are a few hundred bytes; operation URLs may exceed 4 KB, hence the margin.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[spin_sdk::http_component]
async fn handle(request: Request) -> Response {
    let path = request.path().to_owned();
    let result = match (request.method(), path.as_str()) {
        (Method::Post, "/capacity") => set_capacity(&request).await,
        (Method::Post, "/operation") => poll_operation(&request).await,
        (Method::Get, "/instance") => instance().await,
        (_, "/capacity" | "/operation" | "/instance") => {
            return io::text(405, "method not allowed")
        }
        _ => return io::text(404, "no such route"),
    };
    result.unwrap_or_else(|failure| failure.into_response(&path))
}

/// `POST /capacity`: nothing to do if the scale set already has it, else PATCH it.
async fn set_capacity(request: &Request) -> Result<Response, Failure> {
    let CapacityRequest { capacity } = json_body(request)?;
    let config = Config::load()?;
    let token = config.token().await?;
    let current = vmss::parse_vmss(&send(config.scale_set.get_request(&token)?).await?)?;
    let reply = if current.capacity == capacity {
        settled(&config, current.provisioning_state)
    } else {
        let patch = send(config.scale_set.set_capacity_request(&token, capacity)?).await?;
        from_update(vmss::parse_update(
            &patch,
            &config.scale_set.resource_url(),
        )?)
    };
    Ok(scale_reply(&reply))
}

/// The scale set already has the capacity; but if an update is still running (someone asked
/// a moment ago), the caller should follow the scale set until it settles.
fn settled(config: &Config, state: Option<ProvisioningState>) -> ScaleReply {
    match state {
        Some(state) if !state.is_terminal() => ScaleReply::InProgress {
            operation: config.scale_set.resource_url(),
            retry_after_s: DEFAULT_RETRY_AFTER_S,
        },
        _ => ScaleReply::Succeeded,
    }
}

fn from_update(outcome: vmss::UpdateOutcome) -> ScaleReply {
    match outcome {
        vmss::UpdateOutcome::Done => ScaleReply::Succeeded,
        vmss::UpdateOutcome::Pending {
            poll_url,
            retry_after_s,
        } => in_progress(poll_url, retry_after_s),
        vmss::UpdateOutcome::Failed { code, message } => ScaleReply::Failed { code, message },
    }
}

/// `POST /operation`: poll once. The URL must be on ARM's origin, because the poll carries
/// our bearer token; it is checked before any token is fetched.
async fn poll_operation(request: &Request) -> Result<Response, Failure> {
    let OperationRequest { operation } = json_body(request)?;
    let config = Config::load()?;
    let url = OperationUrl::parse(&operation, &config.arm_endpoint).map_err(bad_input)?;
    let token = config.token().await?;
    let reply = match operation::parse_operation(&send(url.request(&token)?).await?)? {
        OperationStatus::Succeeded => ScaleReply::Succeeded,
        OperationStatus::InProgress { retry_after_s } => in_progress(operation, retry_after_s),
        OperationStatus::Failed { code, message } => ScaleReply::Failed { code, message },
    };
    Ok(scale_reply(&reply))
}

fn in_progress(operation: String, retry_after_s: Option<u32>) -> ScaleReply {
    ScaleReply::InProgress {
        operation,
        retry_after_s: retry_after_s.unwrap_or(DEFAULT_RETRY_AFTER_S),
    }
}

/// `GET /instance`: the VM's name and public IP, both `null` when no VM runs. The Flexible
/// scale set's VM, NIC and IP are looked up in turn (at most three ARM calls).
async fn instance() -> Result<Response, Failure> {
    let config = Config::load()?;
    let token = config.token().await?;
    let mut lookup = InstanceLookup::new(&config.scale_set);
    while let Some(request) = lookup.request(&token)? {
        lookup.on_response(&send(request).await?)?;
    }
    let reply: InstanceReply = lookup.reply().cloned().unwrap_or_default();
    Ok(io::json(200, &reply))
}

/// A `ScaleReply` with its status: `Failed` is Azure's failure relayed, hence 502.
fn scale_reply(reply: &ScaleReply) -> Response {
    let status = if matches!(reply, ScaleReply::Failed { .. }) {
        502
    } else {
        200
    };
    io::json(status, reply)
}

/// The scaler's variables (see `[component.scaler.variables]` in spin.toml).
struct Config {
    entra_endpoint: String,
    arm_endpoint: String,
    credentials: ClientCredentials,
    scale_set: ScaleSet,
}

impl Config {
    fn load() -> Result<Self, Failure> {
        let arm_endpoint = io::variable("arm_endpoint")?;
        let scale_set = ScaleSet::new(
            &arm_endpoint,
            &io::variable("azure_subscription_id")?,
            &io::variable("azure_resource_group")?,
            &io::variable("vmss_name")?,
        )
        .map_err(|e| Failure::Config(e.into()))?;
        Ok(Self {
            entra_endpoint: io::variable("entra_endpoint")?,
            credentials: ClientCredentials {
                tenant_id: io::variable("azure_tenant_id")?,
                client_id: io::variable("azure_client_id")?,
                client_secret: io::variable("azure_client_secret")?,
            },
            arm_endpoint,
            scale_set,
        })
    }

    /// A fresh ARM token by client credentials.
    async fn token(&self) -> Result<AccessToken, Failure> {
        let request =
            entra::token_request(&self.entra_endpoint, &self.arm_endpoint, &self.credentials)
                .map_err(|e| Failure::Config(e.into()))?;
        Ok(entra::parse_token_response(&send(request).await?)?)
    }
}

/// Sends a request; a transport failure is an upstream failure, not ours.
async fn send(request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, Failure> {
    io::send(request).await.map_err(Failure::Unreachable)
}

fn json_body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, Failure> {
    let body = request.body();
    if body.len() > MAX_BODY_BYTES {
        return Err(Failure::BadInput(format!(
            "the body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| Failure::BadInput(format!("the body is not the expected JSON: {e}")))
}

fn bad_input(error: ArmError) -> Failure {
    Failure::BadInput(error.to_string())
}

/// Why a request could not be served. None of these ever holds a secret: `ArmError` keeps no
/// tokens or request bodies, and `io::send` names requests without their query.
enum Failure {
    /// The caller's request is unusable: 400.
    BadInput(String),
    /// A variable is missing or unusable: 500, the operator must fix the deployment.
    Config(anyhow::Error),
    /// Entra or ARM answered with an error: 502 with `ScaleReply::Failed`.
    Upstream(ArmError),
    /// Entra or ARM could not be reached: 502 with `ScaleReply::Failed`.
    Unreachable(anyhow::Error),
}

impl From<ArmError> for Failure {
    fn from(error: ArmError) -> Self {
        match error {
            ArmError::InvalidInput(_) => Failure::Config(error.into()),
            other => Failure::Upstream(other),
        }
    }
}

impl From<anyhow::Error> for Failure {
    /// Only `io::variable` yields bare `anyhow` errors here.
    fn from(error: anyhow::Error) -> Self {
        Failure::Config(error)
    }
}

impl Failure {
    fn into_response(self, route: &str) -> Response {
        match self {
            Failure::BadInput(message) => io::text(400, &message),
            Failure::Config(error) => {
                eprintln!("scaler {route}: configuration: {error:#}");
                io::text(500, &format!("the scaler is misconfigured: {error:#}"))
            }
            Failure::Upstream(error) => {
                eprintln!("scaler {route}: {error}");
                let mut response = scale_reply(&ScaleReply::Failed {
                    code: error.code().to_owned(),
                    message: error.to_string(),
                });
                if let Some(seconds) = error.retry_after_s() {
                    response.set_header("retry-after", seconds.to_string());
                }
                response
            }
            Failure::Unreachable(error) => {
                eprintln!("scaler {route}: {error:#}");
                scale_reply(&ScaleReply::Failed {
                    code: "Unreachable".into(),
                    message: format!("{error:#}"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The shell's own decisions; the requests and parsing are tested in heimdall-azure-arm.

    use super::*;

    fn config() -> Config {
        Config {
            entra_endpoint: "https://login.microsoftonline.com".into(),
            arm_endpoint: "https://management.azure.com".into(),
            credentials: ClientCredentials {
                tenant_id: "t".into(),
                client_id: "c".into(),
                client_secret: "super-secret".into(),
            },
            scale_set: ScaleSet::new("https://management.azure.com", "s", "rg", "vmss").unwrap(),
        }
    }

    fn reply_of(response: &Response) -> ScaleReply {
        serde_json::from_slice(response.body()).expect("a ScaleReply")
    }

    #[test]
    fn update_outcomes_become_replies() {
        assert_eq!(
            from_update(vmss::UpdateOutcome::Done),
            ScaleReply::Succeeded
        );
        assert_eq!(
            from_update(vmss::UpdateOutcome::Pending {
                poll_url: "https://op".into(),
                retry_after_s: None
            }),
            ScaleReply::InProgress {
                operation: "https://op".into(),
                retry_after_s: DEFAULT_RETRY_AFTER_S
            }
        );
        assert_eq!(
            from_update(vmss::UpdateOutcome::Pending {
                poll_url: "https://op".into(),
                retry_after_s: Some(3)
            }),
            ScaleReply::InProgress {
                operation: "https://op".into(),
                retry_after_s: 3
            }
        );
    }

    #[test]
    fn same_capacity_still_updating_follows_the_scale_set() {
        let config = config();
        assert_eq!(
            settled(&config, Some(ProvisioningState::Succeeded)),
            ScaleReply::Succeeded
        );
        assert_eq!(settled(&config, None), ScaleReply::Succeeded);
        match settled(&config, Some(ProvisioningState::parse("Updating"))) {
            ScaleReply::InProgress { operation, .. } => {
                assert_eq!(operation, config.scale_set.resource_url());
                // What it answers must be accepted back by POST /operation.
                assert!(OperationUrl::parse(&operation, &config.arm_endpoint).is_ok());
            }
            other => panic!("expected in progress, got {other:?}"),
        }
    }

    #[test]
    fn azure_failures_are_502_with_retry_after() {
        let failure = Failure::Upstream(ArmError::Cloud {
            status: 429,
            code: "TooManyRequests".into(),
            message: "slow down".into(),
            retry_after_s: Some(20),
        });
        let response = failure.into_response("/capacity");
        assert_eq!(*response.status(), 502);
        assert_eq!(
            response.header("retry-after").and_then(|v| v.as_str()),
            Some("20")
        );
        assert!(
            matches!(reply_of(&response), ScaleReply::Failed { code, .. } if code == "TooManyRequests")
        );
    }

    #[test]
    fn entra_failures_keep_entra_codes() {
        let failure = Failure::Upstream(ArmError::Entra {
            status: 401,
            code: "invalid_client".into(),
            description: "AADSTS7000215: Invalid client secret provided.".into(),
        });
        let response = failure.into_response("/instance");
        assert_eq!(*response.status(), 502);
        assert!(
            matches!(reply_of(&response), ScaleReply::Failed { code, .. } if code == "invalid_client")
        );
    }

    #[test]
    fn bad_input_is_400() {
        let request = Request::builder()
            .method(Method::Post)
            .uri("/capacity")
            .body(r#"{"capacity":-1}"#)
            .build();
        let failure = json_body::<CapacityRequest>(&request).expect_err("refused");
        assert_eq!(*failure.into_response("/capacity").status(), 400);
        let huge = Request::builder()
            .method(Method::Post)
            .uri("/operation")
            .body(vec![b' '; MAX_BODY_BYTES + 1])
            .build();
        assert!(json_body::<OperationRequest>(&huge).is_err());
        let foreign = OperationUrl::parse("https://evil.example/op", &config().arm_endpoint)
            .map_err(bad_input);
        assert_eq!(
            *foreign
                .expect_err("refused")
                .into_response("/operation")
                .status(),
            400
        );
    }

    #[test]
    fn debug_of_the_config_never_shows_the_secret() {
        assert!(!format!("{:?}", config().credentials).contains("super-secret"));
    }
}
