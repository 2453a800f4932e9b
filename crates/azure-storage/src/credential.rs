//! How a request is authorized: SharedKey (the account key signs each request) or a Microsoft
//! Entra access token (`Authorization: Bearer`, "Authorize with Microsoft Entra ID").

use std::fmt;

use crate::{Account, StorageError};

/// The resource (audience) to ask Entra for when the token is meant for Azure Storage.
pub const STORAGE_RESOURCE: &str = "https://storage.azure.com/";

/// The credential a [`Queue`](crate::Queue) authorizes its requests with. Neither variant shows
/// its secret in `Debug` output.
#[derive(Clone, Debug)]
pub enum Credential {
    /// Sign each request with the account key.
    SharedKey(Account),
    /// Send an Entra access token for [`STORAGE_RESOURCE`]. Azure accepts it from
    /// `x-ms-version` 2017-11-09 on (ours is [`API_VERSION`](crate::API_VERSION)) and only over
    /// HTTPS; the caller gets a new one before it expires.
    Bearer(BearerToken),
}

impl From<Account> for Credential {
    fn from(account: Account) -> Credential {
        Credential::SharedKey(account)
    }
}

impl From<BearerToken> for Credential {
    fn from(token: BearerToken) -> Credential {
        Credential::Bearer(token)
    }
}

/// An Entra access token. Secret: `Debug` shows `<redacted>`, and there is no accessor.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Takes a token as a token service returned it. It must be non-empty visible ASCII, so that
    /// it is a valid header value (a JWT always is); the error never repeats it.
    pub fn new(token: &str) -> Result<BearerToken, StorageError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(StorageError::config("access token is empty".into()));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StorageError::config(
                "access token has characters a header cannot carry".into(),
            ));
        }
        Ok(BearerToken(token.to_owned()))
    }

    /// The `Authorization` header value.
    pub(crate) fn authorization(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_tokens_that_are_no_header_value() {
        assert!(BearerToken::new("  ").is_err());
        let error = BearerToken::new("eyJ0eXAi\nInjected: yes").unwrap_err();
        assert!(!error.to_string().contains("eyJ0eXAi"));
        assert!(BearerToken::new("eyJ0eXAi.eyJhdWQi.c2ln-_").is_ok());
    }

    #[test]
    fn debug_hides_the_token() {
        let token = BearerToken::new("eyJ0eXAi.secret").unwrap();
        let credential = Credential::from(token.clone());
        assert!(!format!("{token:?}").contains("secret"));
        assert!(!format!("{credential:?}").contains("secret"));
        assert_eq!(token.authorization(), "Bearer eyJ0eXAi.secret");
    }

    #[test]
    fn our_service_version_accepts_bearer_tokens() {
        // ISO dates compare as strings; Entra authorization needs 2017-11-09 or later.
        assert!(crate::API_VERSION >= "2017-11-09");
    }
}
