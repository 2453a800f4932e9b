use base64::Engine as _;

use crate::StorageError;

/// A storage account name and its key. The key never appears in `Debug` output.
#[derive(Clone)]
pub struct Account {
    name: String,
    key: Vec<u8>,
}

impl Account {
    /// `base64_key` is the account key as the portal and Azurite print it.
    pub fn new(name: &str, base64_key: &str) -> Result<Account, StorageError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StorageError::config(format!(
                "storage account name {name:?} must be letters and digits"
            )));
        }
        let key = base64::engine::general_purpose::STANDARD
            .decode(base64_key.trim())
            .map_err(|_| StorageError::config("storage key is not valid Base64".into()))?;
        if key.is_empty() {
            return Err(StorageError::config("storage key is empty".into()));
        }
        Ok(Account {
            name: name.to_owned(),
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Where a service of the account lives: `https://<account>.queue.core.windows.net` on Azure,
/// `http://127.0.0.1:10001` on Azurite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    origin: String,
    /// Path prefix before the resource: `/<account>` path-style, empty otherwise.
    prefix: String,
}

impl Endpoint {
    pub fn new(origin: &str, account: &str) -> Result<Endpoint, StorageError> {
        let origin = origin.trim_end_matches('/');
        let uri: http::Uri = origin
            .parse()
            .map_err(|_| StorageError::config(format!("endpoint {origin:?} is not a URL")))?;
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return Err(StorageError::config(format!(
                "endpoint {origin:?} needs a scheme and a host"
            )));
        };
        if !matches!(scheme, "http" | "https") || uri.path() != "/" {
            return Err(StorageError::config(format!(
                "endpoint {origin:?} must be an http(s) origin without a path"
            )));
        }
        let prefix = if is_path_style_host(host) {
            format!("/{account}")
        } else {
            String::new()
        };
        Ok(Endpoint {
            origin: origin.to_owned(),
            prefix,
        })
    }

    /// The encoded path of a resource below the account, e.g. `/events/messages`.
    pub(crate) fn path(&self, resource: &str) -> String {
        format!("{}{resource}", self.prefix)
    }

    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.origin)
    }
}

fn is_path_style_host(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::Ipv4Addr>().is_ok() || host.starts_with('[')
    // IPv6 literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azurite_is_path_style_and_azure_is_not() {
        let azurite = Endpoint::new("http://127.0.0.1:10001/", "devstoreaccount1").unwrap();
        assert_eq!(azurite.path("/events"), "/devstoreaccount1/events");
        let azure = Endpoint::new("https://acct.queue.core.windows.net", "acct").unwrap();
        assert_eq!(azure.path("/events"), "/events");
    }

    #[test]
    fn refuses_bad_configuration() {
        assert!(Endpoint::new("not a url", "a").is_err());
        assert!(Endpoint::new("http://127.0.0.1:10001/devstoreaccount1", "a").is_err());
        assert!(Account::new("acct", "%%%").is_err());
        assert!(Account::new("bad-name", "AAAA").is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let account = Account::new("acct", "c2VjcmV0").unwrap();
        assert!(!format!("{account:?}").contains("c2VjcmV0"));
    }
}
