//! The scaler: a private Spin component (reached only as `http://scaler.spin.internal`) that
//! turns the reactions component's requests into Azure Resource Manager calls. A thin shell:
//! requests, parsing and what a failure means live in `heimdall-azure-arm`; this file only
//! sends and routes.
//!
//! Spin starts a fresh instance per request, so nothing is kept between requests; instead the
//! caller hands back the token of its previous call (`scaler_api::ARM_TOKEN_HEADER`), and one
//! invocation of reactions costs at most one token from Entra.

use heimdall_azure_arm::scaler_api::{
    CapacityRequest, InstanceReply, OperationRequest, ScaleReply, ARM_TOKEN_HEADER, EVENT_HEADER,
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
const LOG: io::Log = io::Log::new("scaler");

#[spin_sdk::http_component]
async fn handle(request: Request) -> Response {
    let path = request.path().to_owned();
    let event = request
        .header(EVENT_HEADER)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let log = |failure: Failure| failure.into_response(&path, &event);
    let mut session = match Session::open(&request) {
        Ok(session) => session,
        Err(failure) => return log(failure),
    };
    let result = match (request.method(), path.as_str()) {
        (Method::Post, "/capacity") => set_capacity(&mut session, &request).await,
        (Method::Post, "/operation") => poll_operation(&mut session, &request).await,
        (Method::Get, "/instance") => instance(&mut session).await,
        (_, "/capacity" | "/operation" | "/instance") => {
            return io::text(405, "method not allowed")
        }
        _ => return io::text(404, "no such route"),
    };
    let mut response = match result {
        Ok(response) => {
            let answer = String::from_utf8_lossy(response.body());
            LOG.info(Some(&event), format_args!("{path}: {}", summary(&answer)));
            response
        }
        Err(failure) => log(failure),
    };
    if let Some(token) = &session.token {
        response.set_header(ARM_TOKEN_HEADER, token.secret());
    }
    response
}

/// What the scaler answered, for its log line: a scale reply's `status` (`succeeded`,
/// `in-progress`, ...); the ARM token travels in a header, never in the body.
fn summary(answer: &str) -> String {
    serde_json::from_str::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v.get("status").and_then(|o| o.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "answered".into())
}

/// `POST /capacity`: nothing to do if the scale set already has the capacity (and size), else
/// PATCH it.
async fn set_capacity(session: &mut Session, request: &Request) -> Result<Response, Failure> {
    let CapacityRequest { capacity, size } = json_body(request)?;
    let scale_set = session.config.scale_set.clone();
    let current = vmss::parse_vmss(&session.arm(|t| scale_set.get_request(t)).await?)?;
    let region = current.location.clone();
    let new_size = size.filter(|s| current.size.as_deref() != Some(s.as_str()));
    if current.capacity == capacity && new_size.is_none() {
        return Ok(scale_reply(&settled(
            &session.config,
            current.provisioning_state,
        )));
    }
    let patch = session
        .arm(|t| scale_set.set_capacity_request(t, capacity, new_size.as_deref()))
        .await;
    let outcome = patch
        .and_then(|patch| Ok(vmss::parse_update(&patch, &scale_set.resource_url())?))
        .map_err(|failure| failure.in_region(region.as_deref()))?;
    Ok(scale_reply(&from_update(outcome, region.as_deref())))
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

fn from_update(outcome: vmss::UpdateOutcome, region: Option<&str>) -> ScaleReply {
    match outcome {
        vmss::UpdateOutcome::Done => ScaleReply::Succeeded,
        vmss::UpdateOutcome::Pending {
            poll_url,
            retry_after_s,
        } => in_progress(poll_url, retry_after_s),
        vmss::UpdateOutcome::Failed { code, message } => {
            ScaleReply::failure(None, &code, &message, None, region)
        }
    }
}

/// `POST /operation`: poll once. The URL must be on ARM's origin, because the poll carries
/// our bearer token; it is checked before any token is fetched.
async fn poll_operation(session: &mut Session, request: &Request) -> Result<Response, Failure> {
    let OperationRequest { operation } = json_body(request)?;
    let url = OperationUrl::parse(&operation, &session.config.arm_endpoint).map_err(bad_input)?;
    let region = url.location().map(str::to_owned);
    let polled = session
        .arm(|t| url.request(t))
        .await
        .and_then(|response| Ok(operation::parse_operation(&response)?))
        .map_err(|failure| failure.in_region(region.as_deref()))?;
    let reply = match polled {
        OperationStatus::Succeeded => ScaleReply::Succeeded,
        OperationStatus::InProgress { retry_after_s } => in_progress(operation, retry_after_s),
        OperationStatus::Failed { code, message } => {
            ScaleReply::failure(None, &code, &message, None, region.as_deref())
        }
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
async fn instance(session: &mut Session) -> Result<Response, Failure> {
    let scale_set = session.config.scale_set.clone();
    let mut lookup = InstanceLookup::new(&scale_set);
    while let Some(response) = session.send(&|t| lookup.request(t)).await? {
        lookup.on_response(&response)?;
    }
    let reply: InstanceReply = lookup.reply().cloned().unwrap_or_default();
    Ok(io::json(200, &reply))
}

/// A `ScaleReply` with its status: anything but success or progress is Azure's answer relayed,
/// hence 502.
fn scale_reply(reply: &ScaleReply) -> Response {
    let status = if reply.is_success() { 200 } else { 502 };
    io::json(status, reply)
}

/// One request's configuration and ARM token.
struct Session {
    config: Config,
    token: Option<AccessToken>,
    /// The token came from the caller: if ARM refuses it, one new one is asked for.
    handed_in: bool,
}

impl Session {
    fn open(request: &Request) -> Result<Session, Failure> {
        let token = request
            .header(ARM_TOKEN_HEADER)
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
            .map(|t| AccessToken::new(t, 0));
        Ok(Session {
            config: Config::load()?,
            handed_in: token.is_some(),
            token,
        })
    }

    /// The token to use: the one handed in or got before, else a new one from Entra.
    async fn token(&mut self) -> Result<AccessToken, Failure> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let token = self.config.new_token().await?;
        self.token = Some(token.clone());
        Ok(token)
    }

    /// Builds a request with the token and sends it.
    async fn arm(
        &mut self,
        build: impl Fn(&AccessToken) -> Result<http::Request<Vec<u8>>, ArmError>,
    ) -> Result<http::Response<Vec<u8>>, Failure> {
        let answered = self.send(&|t| build(t).map(Some)).await?;
        answered.ok_or_else(|| Failure::Config(anyhow::anyhow!("no request was built")))
    }

    /// Sends the request `build` makes with the token (`None`: nothing left to ask). When ARM
    /// answers 401 to a token the caller handed in (it may have expired since), gets a new one
    /// and sends the request again, once.
    async fn send(
        &mut self,
        build: &Build<'_>,
    ) -> Result<Option<http::Response<Vec<u8>>>, Failure> {
        let token = self.token().await?;
        let Some(request) = build(&token)? else {
            return Ok(None);
        };
        let response = send(request).await?;
        if response.status() != http::StatusCode::UNAUTHORIZED || !self.handed_in {
            return Ok(Some(response));
        }
        self.handed_in = false;
        self.token = None;
        let token = self.token().await?;
        match build(&token)? {
            Some(request) => Ok(Some(send(request).await?)),
            None => Ok(Some(response)),
        }
    }
}

/// Makes the next ARM request with a token, or `None` when there is nothing left to ask.
type Build<'a> = dyn Fn(&AccessToken) -> Result<Option<http::Request<Vec<u8>>>, ArmError> + 'a;

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

    /// A new ARM token by client credentials.
    async fn new_token(&self) -> Result<AccessToken, Failure> {
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
    /// Entra or ARM answered with an error, relayed as a `ScaleReply` (502); the region is
    /// named in capacity errors.
    Upstream(ArmError, Option<String>),
    /// Entra or ARM could not be reached: 502 with `ScaleReply::Retry`.
    Unreachable(anyhow::Error),
}

impl From<ArmError> for Failure {
    fn from(error: ArmError) -> Self {
        match error {
            ArmError::InvalidInput(_) => Failure::Config(error.into()),
            other => Failure::Upstream(other, None),
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
    /// Names the region an upstream failure happened in.
    fn in_region(self, region: Option<&str>) -> Failure {
        match self {
            Failure::Upstream(error, None) => Failure::Upstream(error, region.map(str::to_owned)),
            other => other,
        }
    }

    fn into_response(self, route: &str, event: &str) -> Response {
        let event = Some(event);
        match self {
            Failure::BadInput(message) => {
                LOG.warn(event, format_args!("{route}: bad request: {message}"));
                io::text(400, &message)
            }
            Failure::Config(error) => {
                LOG.error(event, format_args!("{route}: configuration: {error:#}"));
                // In the contract, so that the caller knows this will not heal by itself.
                let reply = ScaleReply::Failed {
                    code: "ScalerMisconfigured".into(),
                    message: format!("the scaler is misconfigured: {error:#}"),
                };
                io::json(500, &reply)
            }
            Failure::Upstream(error, region) => {
                LOG.warn(event, format_args!("{route}: {error}"));
                let mut response = scale_reply(&ScaleReply::from_error(&error, region.as_deref()));
                if let Some(seconds) = error.retry_after_s() {
                    response.set_header("retry-after", seconds.to_string());
                }
                response
            }
            Failure::Unreachable(error) => {
                LOG.warn(event, format_args!("{route}: {error:#}"));
                scale_reply(&ScaleReply::Retry {
                    code: "Unreachable".into(),
                    message: format!("{error:#}"),
                    retry_after_s: None,
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
            from_update(vmss::UpdateOutcome::Done, None),
            ScaleReply::Succeeded
        );
        assert_eq!(
            from_update(
                vmss::UpdateOutcome::Pending {
                    poll_url: "https://op".into(),
                    retry_after_s: None
                },
                None
            ),
            ScaleReply::InProgress {
                operation: "https://op".into(),
                retry_after_s: DEFAULT_RETRY_AFTER_S
            }
        );
        assert_eq!(
            from_update(
                vmss::UpdateOutcome::Pending {
                    poll_url: "https://op".into(),
                    retry_after_s: Some(3)
                },
                None
            ),
            ScaleReply::InProgress {
                operation: "https://op".into(),
                retry_after_s: 3
            }
        );
        // An update that ends without capacity asks for another size, naming the region.
        assert_eq!(
            from_update(
                vmss::UpdateOutcome::Failed {
                    code: "AllocationFailed".into(),
                    message: "no capacity".into()
                },
                Some("westeurope")
            ),
            ScaleReply::NoCapacity {
                code: "AllocationFailed".into(),
                message: "no capacity".into(),
                region: Some("westeurope".into())
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
    fn throttling_is_a_retry_after_what_azure_said() {
        let failure = Failure::Upstream(
            ArmError::Cloud {
                status: 429,
                code: "TooManyRequests".into(),
                message: "slow down".into(),
                retry_after_s: Some(20),
            },
            None,
        );
        let response = failure.into_response("/capacity", "");
        assert_eq!(*response.status(), 502);
        assert_eq!(
            response.header("retry-after").and_then(|v| v.as_str()),
            Some("20")
        );
        assert!(matches!(
            reply_of(&response),
            ScaleReply::Retry { code, retry_after_s: Some(20), .. } if code == "TooManyRequests"
        ));
        let unreachable = Failure::Unreachable(anyhow::anyhow!("connection refused"));
        assert!(matches!(
            reply_of(&unreachable.into_response("/capacity", "")),
            ScaleReply::Retry { .. }
        ));
    }

    #[test]
    fn sku_not_available_asks_for_another_size_in_the_region() {
        let failure = Failure::Upstream(
            ArmError::Cloud {
                status: 409,
                code: "SkuNotAvailable".into(),
                message: "The requested tier is currently not available".into(),
                retry_after_s: None,
            },
            None,
        )
        .in_region(Some("westeurope"));
        assert!(matches!(
            reply_of(&failure.into_response("/capacity", "")),
            ScaleReply::NoCapacity { region: Some(r), .. } if r == "westeurope"
        ));
    }

    #[test]
    fn entra_failures_keep_entra_codes() {
        let failure = Failure::Upstream(
            ArmError::Entra {
                status: 401,
                code: "invalid_client".into(),
                description: "AADSTS7000215: Invalid client secret provided.".into(),
            },
            None,
        );
        let response = failure.into_response("/instance", "");
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
        assert_eq!(*failure.into_response("/capacity", "").status(), 400);
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
                .into_response("/operation", "")
                .status(),
            400
        );
    }

    #[test]
    fn debug_of_the_config_never_shows_the_secret() {
        assert!(!format!("{:?}", config().credentials).contains("super-secret"));
    }
}
