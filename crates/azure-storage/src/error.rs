/// A failed storage call or a bad configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("storage configuration: {0}")]
    Config(String),
    #[error("storage answered {status} {code}: {message}")]
    Service {
        status: u16,
        /// The service's error code, e.g. `UpdateConditionNotSatisfied`, `MessageNotFound`.
        code: String,
        message: String,
    },
    #[error("unexpected storage response: {0}")]
    Malformed(String),
}

impl StorageError {
    pub(crate) fn config(message: String) -> StorageError {
        StorageError::Config(message)
    }

    /// The HTTP status of a service error.
    pub fn status(&self) -> Option<u16> {
        match self {
            StorageError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the error is the service's answer with this code.
    pub fn is_code(&self, wanted: &str) -> bool {
        matches!(self, StorageError::Service { code, .. } if code == wanted)
    }
}

/// `Ok` for a 2xx response; otherwise the service's error code and message, read from the
/// `x-ms-error-code` header or from the XML (queue) or JSON (table) error body.
pub fn check(response: &http::Response<Vec<u8>>) -> Result<(), StorageError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = String::from_utf8_lossy(response.body());
    let (body_code, message) = parse_xml_error(&body)
        .or_else(|| parse_json_error(&body))
        .unwrap_or_default();
    let code = response
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|c| !c.is_empty())
        .unwrap_or(body_code);
    Err(StorageError::Service {
        status: status.as_u16(),
        code: if code.is_empty() {
            status.canonical_reason().unwrap_or("Error").to_owned()
        } else {
            code
        },
        message: first_line(&message),
    })
}

/// The service appends request ids and times on further lines; the first line is the message.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

fn parse_xml_error(body: &str) -> Option<(String, String)> {
    let doc = roxmltree::Document::parse(body).ok()?;
    let root = doc.root_element();
    let text = |name: &str| {
        root.children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or_default()
            .to_owned()
    };
    Some((text("Code"), text("Message")))
}

fn parse_json_error(body: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value.get("odata.error")?;
    let code = error.get("code")?.as_str()?.to_owned();
    let message = error
        .pointer("/message/value")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn reads_the_queue_xml_error_of_the_contract() {
        let body = include_str!(
            "../../../../shared/contracts/examples/azure-queue/error-invalid-popreceipt.xml"
        );
        let err = check(&response(400, body)).unwrap_err();
        assert!(err.is_code("InvalidQueryParameterValue"));
        assert_eq!(err.status(), Some(400));
    }

    #[test]
    fn reads_the_table_json_error_of_the_contract() {
        let body = include_str!("../../../../shared/contracts/examples/azure-table/error-response-resourcenotfound.json");
        let err = check(&response(404, body)).unwrap_err();
        assert_eq!(
            err,
            StorageError::Service {
                status: 404,
                code: "ResourceNotFound".into(),
                message: "The specified resource does not exist.".into()
            }
        );
    }

    #[test]
    fn success_and_bodiless_errors() {
        assert!(check(&response(204, "")).is_ok());
        let err = check(&response(503, "")).unwrap_err();
        assert!(err.is_code("Service Unavailable"));
    }
}
