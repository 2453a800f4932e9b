//! Builds authorized requests; shared by the queue and table modules.

use std::time::SystemTime;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::shared_key::{queue_authorization, table_authorization, Signed};
use crate::{Credential, Endpoint, API_VERSION};

/// Characters left as they are in a query value; everything else is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Clone, Copy)]
pub(crate) enum Service {
    Queue,
    Table,
}

/// One request to sign and build.
pub(crate) struct Call<'a> {
    pub service: Service,
    pub method: &'a str,
    /// Encoded resource path below the account, e.g. `/events/messages`.
    pub resource: String,
    /// Decoded query parameters.
    pub query: Vec<(&'a str, String)>,
    pub body: Vec<u8>,
    pub content_type: &'a str,
    pub if_match: Option<&'a str>,
    /// Further headers that the signature does not cover.
    pub extra: Vec<(&'a str, &'a str)>,
}

impl Call<'_> {
    pub fn build(
        self,
        credential: &Credential,
        endpoint: &Endpoint,
        now: SystemTime,
    ) -> http::Request<Vec<u8>> {
        let path = endpoint.path(&self.resource);
        // A bearer token needs both headers too: x-ms-version says which rules apply (2017-11-09
        // or later for tokens) and x-ms-date dates the request.
        let ms_headers = [
            ("x-ms-date", httpdate::fmt_http_date(now)),
            ("x-ms-version", API_VERSION.to_owned()),
        ];
        let authorization = self.authorization(credential, &path, &ms_headers);
        let mut builder = http::Request::builder()
            .method(self.method)
            .uri(endpoint.url(&with_query(&path, &self.query)))
            .header("authorization", authorization)
            .header("content-length", self.body.len());
        for (name, value) in &ms_headers {
            builder = builder.header(*name, value);
        }
        if !self.content_type.is_empty() {
            builder = builder.header("content-type", self.content_type);
        }
        if let Some(etag) = self.if_match {
            builder = builder.header("if-match", etag);
        }
        for (name, value) in self.extra {
            builder = builder.header(name, value);
        }
        builder
            .body(self.body)
            .expect("method, URI and headers are built from validated parts")
    }

    /// The `Authorization` value: a SharedKey signature over the request's parts (whose layout
    /// differs between the services), or the bearer token as it is.
    fn authorization(
        &self,
        credential: &Credential,
        path: &str,
        ms_headers: &[(&str, String)],
    ) -> String {
        let account = match credential {
            Credential::SharedKey(account) => account,
            Credential::Bearer(token) => return token.authorization(),
        };
        let signed = Signed {
            method: self.method,
            path,
            query: &self.query,
            content_length: self.body.len(),
            content_type: self.content_type,
            if_match: self.if_match.unwrap_or_default(),
            ms_headers,
        };
        match self.service {
            Service::Queue => queue_authorization(account, &signed),
            Service::Table => table_authorization(account, &signed),
        }
    }
}

fn with_query(path: &str, query: &[(&str, String)]) -> String {
    let mut url = path.to_owned();
    for (i, (name, value)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(name);
        url.push('=');
        url.push_str(&utf8_percent_encode(value, QUERY_VALUE).to_string());
    }
    url
}

/// Characters a path segment keeps as they are: those of JavaScript's `encodeURIComponent`,
/// which Azure's own SDKs use for message ids and entity keys.
const SEGMENT: &AsciiSet = &QUERY_VALUE
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Percent-encodes one path segment.
pub(crate) fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}
