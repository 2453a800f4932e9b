//! `POST /{tenant}/oauth2/v2.0/token`, client credentials with a shared secret, answering like
//! Entra (examples/entra/client-credentials-*.json): a random bearer token it remembers, or an
//! OAuth error body with the AADSTS code and trace ids.

use std::collections::HashMap;

use bytes::Bytes;

use super::{Shared, State};
use crate::util::{guid, json, random_hex, Reply, Utc};

/// Seconds a token lives, as Entra usually says.
const EXPIRES_IN_S: u64 = 3599;

pub(super) fn token(
    shared: &Shared,
    state: &mut State,
    tenant: &str,
    request: &http::Request<Bytes>,
) -> Reply {
    match check(shared, tenant, request) {
        Ok(()) => {
            let token = format!("fake-arm-{}", random_hex(24));
            state.tokens.insert(token.clone());
            json(
                200,
                serde_json::json!({
                    "token_type": "Bearer",
                    "expires_in": EXPIRES_IN_S,
                    "access_token": token,
                }),
            )
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Checks the request the way Entra does, one refusal at a time.
fn check(shared: &Shared, tenant: &str, request: &http::Request<Bytes>) -> Result<(), Refusal> {
    let config = &shared.config;
    if request.method() != http::Method::POST {
        return Err(Refusal::bad(
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        ));
    }
    if tenant != config.tenant_id {
        return Err(Refusal::bad(
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        ));
    }
    let form: HashMap<String, String> = form_urlencoded::parse(request.body())
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Refusal::bad(
                    "invalid_request",
                    900144,
                    &format!("The request body must contain the following parameter: '{name}'."),
                )
            })
    };
    let grant_type = field("grant_type")?;
    if grant_type != "client_credentials" {
        return Err(Refusal::bad(
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id = field("client_id")?;
    if client_id != config.client_id {
        return Err(Refusal::bad(
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
        ));
    }
    let secret = form.get("client_secret").filter(|s| !s.is_empty()).ok_or_else(|| {
        Refusal::bad(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    })?;
    if config.expired_client_secrets.contains(secret) {
        // A secret the app had: Entra says it expired (401, like a wrong one).
        return Err(Refusal {
            status: 401,
            ..Refusal::bad(
                "invalid_client",
                7000222,
                &format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."),
            )
        });
    }
    if *secret != config.client_secret {
        // Entra answers a wrong secret with 401, not 400.
        return Err(Refusal {
            status: 401,
            ..Refusal::bad(
                "invalid_client",
                7000215,
                &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
            )
        });
    }
    let scope = field("scope")?;
    if scope != format!("{}/.default", shared.origin) {
        return Err(Refusal::bad(
            "invalid_scope",
            70011,
            &format!("The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
        ));
    }
    Ok(())
}

/// An OAuth error answer.
struct Refusal {
    status: u16,
    error: &'static str,
    code: u32,
    text: String,
}

impl Refusal {
    fn bad(error: &'static str, code: u32, text: &str) -> Self {
        Self {
            status: 400,
            error,
            code,
            text: text.to_owned(),
        }
    }

    /// The body has the shape of examples/entra/client-credentials-error-400.json.
    fn into_response(self) -> Reply {
        let (trace_id, correlation_id, timestamp) = (guid(), guid(), Utc::now().entra());
        json(
            self.status,
            serde_json::json!({
                "error": self.error,
                "error_description": format!(
                    "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                    self.code, self.text
                ),
                "error_codes": [self.code],
                "timestamp": timestamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
            }),
        )
    }
}
