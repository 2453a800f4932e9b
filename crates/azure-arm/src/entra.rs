//! Microsoft Entra client-credentials flow (shared secret) for an ARM token. PROTOCOLS.md 5.1.

use std::fmt;

use serde::Deserialize;

use crate::error::{parse_json, ArmError};
use crate::{path_segment, trim_origin};

/// The app's service principal. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// A bearer token for ARM. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: String,
    expires_in_s: u64,
}

impl AccessToken {
    pub fn new(token: impl Into<String>, expires_in_s: u64) -> Self {
        Self {
            token: token.into(),
            expires_in_s,
        }
    }

    /// The raw token, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// Lifetime in seconds from when it was issued (Entra's `expires_in`).
    pub fn expires_in_s(&self) -> u64 {
        self.expires_in_s
    }

    /// The `Authorization` header value.
    pub(crate) fn authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_in_s", &self.expires_in_s)
            .finish()
    }
}

/// The scope that asks for an ARM token: the resource's identifier plus `/.default`
/// (`https://management.azure.com/.default` for the real service).
pub fn arm_scope(arm_endpoint: &str) -> String {
    format!("{}/.default", trim_origin(arm_endpoint))
}

/// `POST {entra_endpoint}/{tenant}/oauth2/v2.0/token` with a form body.
pub fn token_request(
    entra_endpoint: &str,
    arm_endpoint: &str,
    credentials: &ClientCredentials,
) -> Result<http::Request<Vec<u8>>, ArmError> {
    if credentials.client_id.is_empty() || credentials.client_secret.is_empty() {
        return Err(ArmError::InvalidInput(
            "the client id and client secret must both be set".into(),
        ));
    }
    let uri = format!(
        "{}/{}/oauth2/v2.0/token",
        trim_origin(entra_endpoint),
        path_segment(&credentials.tenant_id, "the tenant id")?
    );
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &credentials.client_id)
        .append_pair("scope", &arm_scope(arm_endpoint))
        .append_pair("client_secret", &credentials.client_secret)
        .append_pair("grant_type", "client_credentials")
        .finish();
    http::Request::post(uri)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body.into_bytes())
        // The URI holds only the endpoint and the encoded tenant, never the secret.
        .map_err(|e| ArmError::InvalidInput(format!("cannot build the token request: {e}")))
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    /// A number here (a string only in the IMDS flavour, which is tolerated too).
    expires_in: serde_json::Value,
}

/// OAuth error body: `{error, error_description, error_codes, timestamp, trace_id, correlation_id}`.
#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Reads Entra's answer: the token on 200, Entra's own error otherwise.
pub fn parse_token_response(response: &http::Response<Vec<u8>>) -> Result<AccessToken, ArmError> {
    if !response.status().is_success() {
        return Err(token_error(response));
    }
    let body: TokenBody = parse_json(response, "token response")?;
    let expires_in_s = match &body.expires_in {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| ArmError::unexpected(response, "the token response has no valid expires_in"))?;
    Ok(AccessToken::new(body.access_token, expires_in_s))
}

fn token_error(response: &http::Response<Vec<u8>>) -> ArmError {
    match serde_json::from_slice::<OAuthErrorBody>(response.body()) {
        Ok(body) => ArmError::Entra {
            status: response.status().as_u16(),
            code: body.error,
            // The first line is the AADSTS code and text; trace and correlation ids follow.
            description: first_line(&body.error_description).to_owned(),
        },
        Err(_) => ArmError::unexpected(
            response,
            "Entra refused the token request without an OAuth error body",
        ),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{example, response};

    fn credentials() -> ClientCredentials {
        ClientCredentials {
            tenant_id: "contoso-tenant".into(),
            client_id: "11111111-2222-3333-4444-555555555555".into(),
            client_secret: "s3cr&t=+/ value".into(),
        }
    }

    fn form(request: &http::Request<Vec<u8>>) -> Vec<(String, String)> {
        form_urlencoded::parse(request.body())
            .into_owned()
            .collect()
    }

    #[test]
    fn builds_the_client_credentials_request_for_the_real_service() {
        let request = token_request(
            "https://login.microsoftonline.com/",
            "https://management.azure.com",
            &credentials(),
        )
        .unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(
            request.uri(),
            "https://login.microsoftonline.com/contoso-tenant/oauth2/v2.0/token"
        );
        assert_eq!(
            request.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        let fields = form(&request);
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("client_id"),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(get("scope"), Some("https://management.azure.com/.default"));
        assert_eq!(get("client_secret"), Some("s3cr&t=+/ value"));
        assert_eq!(get("grant_type"), Some("client_credentials"));
        // The secret is encoded, so its `&` and `=` cannot split the form.
        let raw = String::from_utf8(request.body().clone()).unwrap();
        assert!(
            raw.contains("client_secret=s3cr%26t%3D%2B%2F+value"),
            "{raw}"
        );
    }

    #[test]
    fn scope_follows_the_arm_endpoint() {
        assert_eq!(
            arm_scope("http://127.0.0.1:4000/"),
            "http://127.0.0.1:4000/.default"
        );
    }

    #[test]
    fn refuses_empty_credentials() {
        let mut creds = credentials();
        creds.client_secret.clear();
        assert!(matches!(
            token_request("https://e", "https://a", &creds),
            Err(ArmError::InvalidInput(_))
        ));
    }

    #[test]
    fn the_tenant_cannot_change_the_path() {
        let mut creds = credentials();
        creds.tenant_id = "../evil?x=".into();
        let request = token_request("https://e", "https://a", &creds).unwrap();
        assert_eq!(
            request.uri(),
            "https://e/..%2Fevil%3Fx%3D/oauth2/v2.0/token"
        );
        creds.tenant_id = "..".into();
        assert!(token_request("https://e", "https://a", &creds).is_err());
    }

    #[test]
    fn parses_the_documented_success() {
        let body = example("entra/client-credentials-success.json").into_bytes();
        let token = parse_token_response(&response(200, &[], body)).unwrap();
        assert!(token.secret().starts_with("eyJ0eXAiOiJKV1Qi"));
        assert_eq!(token.expires_in_s(), 3599);
    }

    #[test]
    fn parses_the_documented_error() {
        let body = example("entra/client-credentials-error-400.json").into_bytes();
        let error = parse_token_response(&response(400, &[], body)).unwrap_err();
        match &error {
            ArmError::Entra {
                status,
                code,
                description,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(code, "invalid_scope");
                assert!(description.starts_with("AADSTS70011:"), "{description}");
                assert!(!description.contains("Trace ID"), "{description}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(error.code(), "invalid_scope");
    }

    #[test]
    fn a_body_without_token_is_unexpected() {
        let error = parse_token_response(&response(200, &[], b"{}".to_vec())).unwrap_err();
        assert!(matches!(error, ArmError::Unexpected { status: 200, .. }));
    }

    #[test]
    fn non_oauth_error_is_unexpected() {
        let error = parse_token_response(&response(502, &[], b"bad gateway".to_vec())).unwrap_err();
        assert!(matches!(error, ArmError::Unexpected { status: 502, .. }));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!("{:?} {:?}", credentials(), AccessToken::new("tok-123", 5));
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(!shown.contains("tok-123"), "{shown}");
    }
}
