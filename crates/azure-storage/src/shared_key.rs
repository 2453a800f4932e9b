//! SharedKey authorization: the exact strings-to-sign of the Queue and Table services
//! ("Authorize with Shared Key"), which differ between the two.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Account;

/// The parts of a request that the signature covers.
pub(crate) struct Signed<'a> {
    pub method: &'a str,
    /// The encoded URI path as sent, e.g. `/devstoreaccount1/events/messages`.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(&'a str, String)],
    pub content_length: usize,
    pub content_type: &'a str,
    pub if_match: &'a str,
    /// `x-ms-*` headers, lower-case names.
    pub ms_headers: &'a [(&'a str, String)],
}

/// `SharedKey <account>:<signature>` for the Queue (and Blob/File) service.
pub(crate) fn queue_authorization(account: &Account, request: &Signed) -> String {
    let length = match request.content_length {
        0 => String::new(), // signed as empty since 2015-02-21
        n => n.to_string(),
    };
    let mut to_sign = format!(
        "{}\n\n\n{length}\n\n{}\n\n\n{}\n\n\n\n",
        request.method, request.content_type, request.if_match
    );
    to_sign.push_str(&canonical_headers(request.ms_headers));
    to_sign.push_str(&format!("/{}{}", account.name(), request.path));
    let mut query: Vec<_> = request
        .query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    query.sort();
    for (name, value) in query {
        to_sign.push_str(&format!("\n{name}:{value}"));
    }
    authorization(account, &to_sign)
}

/// `SharedKey <account>:<signature>` for the Table service: no canonical headers, the date
/// line always filled (from `x-ms-date`), and only `comp` of the query string.
pub(crate) fn table_authorization(account: &Account, request: &Signed) -> String {
    let date = request
        .ms_headers
        .iter()
        .find(|(name, _)| *name == "x-ms-date")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let mut to_sign = format!(
        "{}\n\n{}\n{date}\n/{}{}",
        request.method,
        request.content_type,
        account.name(),
        request.path
    );
    if let Some((_, comp)) = request.query.iter().find(|(k, _)| *k == "comp") {
        to_sign.push_str(&format!("?comp={comp}"));
    }
    authorization(account, &to_sign)
}

fn canonical_headers(headers: &[(&str, String)]) -> String {
    let mut sorted: Vec<_> = headers.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect()
}

fn authorization(account: &Account, to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(account.key()).expect("HMAC takes any key length");
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("SharedKey {}:{signature}", account.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::DEV_KEY;

    fn sign_queue(to_sign: &str) -> String {
        let account = Account::new("devstoreaccount1", DEV_KEY).unwrap();
        authorization(&account, to_sign)
    }

    #[test]
    fn queue_string_to_sign_has_the_documented_layout() {
        let account = Account::new("devstoreaccount1", DEV_KEY).unwrap();
        let headers = [
            ("x-ms-version", "2021-12-02".to_owned()),
            ("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT".to_owned()),
        ];
        let query = [
            ("visibilitytimeout", "60".to_owned()),
            ("numofmessages", "32".to_owned()),
        ];
        let signed = Signed {
            method: "GET",
            path: "/devstoreaccount1/events/messages",
            query: &query,
            content_length: 0,
            content_type: "",
            if_match: "",
            ms_headers: &headers,
        };
        let expected = "GET\n\n\n\n\n\n\n\n\n\n\n\n\
            x-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2021-12-02\n\
            /devstoreaccount1/devstoreaccount1/events/messages\nnumofmessages:32\nvisibilitytimeout:60";
        assert_eq!(queue_authorization(&account, &signed), sign_queue(expected));
    }

    #[test]
    fn table_string_to_sign_uses_x_ms_date_and_only_comp() {
        let account = Account::new("devstoreaccount1", DEV_KEY).unwrap();
        let headers = [("x-ms-date", "Mon, 27 Jun 2016 18:10:24 GMT".to_owned())];
        let query = [("$select", "Status".to_owned())];
        let signed = Signed {
            method: "PUT",
            path: "/devstoreaccount1/servers(PartitionKey='a',RowKey='b')",
            query: &query,
            content_length: 10,
            content_type: "application/json",
            if_match: "W/\"x\"",
            ms_headers: &headers,
        };
        let expected = "PUT\n\napplication/json\nMon, 27 Jun 2016 18:10:24 GMT\n\
            /devstoreaccount1/devstoreaccount1/servers(PartitionKey='a',RowKey='b')";
        assert_eq!(table_authorization(&account, &signed), sign_queue(expected));
    }
}
