//! What can go wrong talking to Entra and ARM, in a form the scaler can hand on as
//! `ScaleReply::Failed { code, message }`.

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// An Entra or ARM failure. Never carries a secret: request bodies and tokens are not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmError {
    /// Entra refused to issue a token (OAuth error body, e.g. `invalid_client`).
    #[error("Entra refused the token request (HTTP {status}, {code}): {description}")]
    Entra {
        status: u16,
        code: String,
        description: String,
    },
    /// ARM answered with a `CloudError` (or a bare 429).
    #[error("Azure Resource Manager answered HTTP {status} {code}: {message}")]
    Cloud {
        status: u16,
        code: String,
        message: String,
        retry_after_s: Option<u32>,
    },
    /// A response we cannot make sense of.
    #[error("unexpected response (HTTP {status}): {detail}")]
    Unexpected { status: u16, detail: String },
    /// The caller's input cannot make a valid request.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl ArmError {
    /// A short, stable code for `ScaleReply::Failed`.
    pub fn code(&self) -> &str {
        match self {
            ArmError::Entra { code, .. } | ArmError::Cloud { code, .. } => code,
            ArmError::Unexpected { .. } => "UnexpectedResponse",
            ArmError::InvalidInput(_) => "InvalidInput",
        }
    }

    /// How long the service asked us to wait before retrying, when it said so.
    pub fn retry_after_s(&self) -> Option<u32> {
        match self {
            ArmError::Cloud { retry_after_s, .. } => *retry_after_s,
            _ => None,
        }
    }

    pub(crate) fn unexpected(
        response: &http::Response<Vec<u8>>,
        detail: impl Into<String>,
    ) -> Self {
        ArmError::Unexpected {
            status: response.status().as_u16(),
            detail: detail.into(),
        }
    }
}

/// The `Retry-After` header in seconds. ARM sends delta-seconds; an HTTP date (RFC 9110 allows
/// it) is read against the response's own `Date`, so that no local clock is needed and a skewed
/// one does not matter. A date without a `Date` header to compare with is not guessed at.
pub(crate) fn retry_after_s(headers: &http::HeaderMap) -> Option<u32> {
    let value = header_str(headers, "retry-after")?;
    if let Ok(seconds) = value.parse() {
        return Some(seconds);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let sent = httpdate::parse_http_date(header_str(headers, "date")?).ok()?;
    let wait = at.duration_since(sent).unwrap_or_default();
    Some(u32::try_from(wait.as_secs()).unwrap_or(u32::MAX))
}

/// A header's value as text, if present and readable.
pub(crate) fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Decodes a JSON body, naming what could not be read.
pub(crate) fn parse_json<T: DeserializeOwned>(
    response: &http::Response<Vec<u8>>,
    what: &str,
) -> Result<T, ArmError> {
    serde_json::from_slice(response.body())
        .map_err(|e| ArmError::unexpected(response, format!("cannot read the {what}: {e}")))
}

/// ARM's `CloudError`: `{"error":{"code","message","details":[…]}}`. Some services put
/// `code`/`message` at the top level, so both are accepted.
#[derive(Deserialize, Default)]
struct CloudErrorBody {
    error: Option<ErrorDetail>,
    #[serde(flatten)]
    top_level: ErrorDetail,
}

#[derive(Deserialize, Default)]
pub(crate) struct ErrorDetail {
    pub code: Option<String>,
    pub message: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

impl ErrorDetail {
    /// The message with the inner details appended, since Compute often puts the useful part
    /// (e.g. the allocation failure) there.
    pub(crate) fn full_message(&self) -> String {
        let mut message = self.message.clone().unwrap_or_default();
        for inner in &self.details {
            let part = match (&inner.code, &inner.message) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(only), None) | (None, Some(only)) => only.clone(),
                (None, None) => continue,
            };
            if !message.is_empty() {
                message.push_str(" | ");
            }
            message.push_str(&part);
        }
        message
    }
}

/// Turns a non-success ARM response into an error.
pub(crate) fn cloud_error(response: &http::Response<Vec<u8>>) -> ArmError {
    let status = response.status();
    let retry_after_s = retry_after_s(response.headers());
    let body: CloudErrorBody = serde_json::from_slice(response.body()).unwrap_or_default();
    let detail = body.error.unwrap_or(body.top_level);
    match detail.code.clone() {
        Some(code) => ArmError::Cloud {
            status: status.as_u16(),
            code,
            message: detail.full_message(),
            retry_after_s,
        },
        // Throttling may come without a body; the status and Retry-After say it all.
        None if status == http::StatusCode::TOO_MANY_REQUESTS => ArmError::Cloud {
            status: status.as_u16(),
            code: "TooManyRequests".into(),
            message: "Azure Resource Manager is throttling requests".into(),
            retry_after_s,
        },
        None => ArmError::unexpected(
            response,
            format!("no error body ({})", snippet(response.body())),
        ),
    }
}

/// The start of a body, for error messages about bodies we could not read.
fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if text.is_empty() => "empty body".into(),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{example, response};

    #[test]
    fn reads_the_documented_compute_error_format() {
        let body = example("arm/error-response-format-compute.json").into_bytes();
        let error = cloud_error(&response(409, &[], body));
        assert_eq!(
            error,
            ArmError::Cloud {
                status: 409,
                code: "Top level error code".into(),
                message:
                    "Top level error message | Inner level error code: Inner level error message"
                        .into(),
                retry_after_s: None,
            }
        );
    }

    #[test]
    fn throttling_keeps_retry_after() {
        let body = br#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#.to_vec();
        let error = cloud_error(&response(429, &[("retry-after", "17")], body));
        assert_eq!(error.code(), "TooManyRequests");
        assert_eq!(error.retry_after_s(), Some(17));
    }

    #[test]
    fn throttling_without_a_body_is_still_understood() {
        let error = cloud_error(&response(429, &[("Retry-After", " 5 ")], Vec::new()));
        assert_eq!(error.code(), "TooManyRequests");
        assert_eq!(error.retry_after_s(), Some(5));
    }

    #[test]
    fn top_level_code_is_accepted() {
        let body = br#"{"code":"NotFound","message":"gone"}"#.to_vec();
        assert_eq!(cloud_error(&response(404, &[], body)).code(), "NotFound");
    }

    #[test]
    fn unreadable_error_bodies_are_unexpected() {
        let error = cloud_error(&response(500, &[], b"<html>oops</html>".to_vec()));
        assert!(
            matches!(error, ArmError::Unexpected { status: 500, ref detail } if detail.contains("oops"))
        );
    }

    #[test]
    fn http_date_retry_after_is_read_against_the_response_date() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_s(&headers), None, "no Date to compare with");
        headers.insert("date", "Wed, 21 Oct 2015 07:27:15 GMT".parse().unwrap());
        assert_eq!(retry_after_s(&headers), Some(45));
        headers.insert("date", "Wed, 21 Oct 2015 07:29:00 GMT".parse().unwrap());
        assert_eq!(retry_after_s(&headers), Some(0), "already past");
    }
}
