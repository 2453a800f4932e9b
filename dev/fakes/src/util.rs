//! Small helpers the fakes share: locking, JSON answers, ids and timestamps.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// Locks a fake's state. A panic in one handler must not wedge every later request (each
/// handler updates the state in one go, so it stays consistent).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fake's answer: status, extra headers and a body (JSON, or the plain text that the
/// metadata service gives for `format=text`). Small, so that handlers can pass refusals around
/// in `Result`s; the server turns it into an HTTP response.
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Json(serde_json::Value),
    Text(String),
    Empty,
}

impl Reply {
    /// An answer with headers and no body (a 202, a 204).
    pub(crate) fn empty(status: u16, headers: &[(&'static str, String)]) -> Reply {
        Reply {
            status,
            headers: headers.to_vec(),
            body: Body::Empty,
        }
    }

    /// A plain-text answer.
    pub(crate) fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Text(body.to_owned()),
        }
    }

    pub(crate) fn into_response(self) -> http::Response<Bytes> {
        let (bytes, content_type) = match self.body {
            Body::Json(value) => (value.to_string(), "application/json; charset=utf-8"),
            Body::Text(text) => (text, "text/plain; charset=utf-8"),
            Body::Empty => (String::new(), ""),
        };
        let mut response = http::Response::new(Bytes::from(bytes));
        *response.status_mut() = http::StatusCode::from_u16(self.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let map = response.headers_mut();
        if !content_type.is_empty() {
            map.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(content_type),
            );
        }
        for (name, value) in self.headers {
            // Values are built by the fakes from config and ids; one that is not a valid header
            // would be a bug in the fake, and leaving it out shows in the tests.
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                map.insert(name, value);
            }
        }
        response
    }
}

/// A JSON answer.
pub(crate) fn json(status: u16, body: serde_json::Value) -> Reply {
    json_with(status, &[], body)
}

/// A JSON answer with extra headers (lower-case names).
pub(crate) fn json_with(
    status: u16,
    headers: &[(&'static str, String)],
    body: serde_json::Value,
) -> Reply {
    Reply {
        status,
        headers: headers.to_vec(),
        body: Body::Json(body),
    }
}

/// 64 random bits. The std hasher is seeded randomly per `RandomState`; a counter makes
/// successive calls differ even when seeds repeat. Not for cryptography: tokens only have to
/// be unguessable by the component under test, which never tries.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// `bytes` random bytes in hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        out.push_str(&format!("{:016x}", random_u64()));
    }
    out.truncate(bytes * 2);
    out
}

/// A random GUID in the 8-4-4-4-12 form Azure uses for operation, trace and correlation ids.
pub(crate) fn guid() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A UTC time split into its calendar parts.
pub(crate) struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
    pub micros: u32,
}

impl Utc {
    pub(crate) fn now() -> Self {
        Self::at(SystemTime::now())
    }

    pub(crate) fn at(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        Self {
            year,
            month,
            day,
            hour: secs % 86_400 / 3600,
            minute: secs % 3600 / 60,
            second: secs % 60,
            micros: since.subsec_micros(),
        }
    }

    /// RFC 3339 with fractional seconds, as ARM and Discord write times.
    pub(crate) fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.micros
        )
    }

    /// Entra's `timestamp` form: `2016-01-09 02:02:12Z`.
    pub(crate) fn entra(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Splits a path into its non-empty segments.
/// The request's `Content-Type` and whether it is JSON, as both services require.
pub(crate) fn json_content_type(request: &http::Request<bytes::Bytes>) -> (bool, &str) {
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_json = content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json");
    (is_json, content_type)
}

pub(crate) fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// A query parameter's value, decoded.
pub(crate) fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_times() {
        let t = UNIX_EPOCH + Duration::from_micros(1_483_729_104_759_632);
        assert_eq!(Utc::at(t).rfc3339(), "2017-01-06T18:58:24.759632+00:00");
        assert_eq!(Utc::at(t).entra(), "2017-01-06 18:58:24Z");
        assert_eq!(
            Utc::at(UNIX_EPOCH + Duration::from_secs(951_782_400)).entra(),
            "2000-02-29 00:00:00Z"
        );
    }

    #[test]
    fn ids_look_right_and_differ() {
        let a = guid();
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(a, guid());
        assert_eq!(random_hex(5).len(), 10);
    }
}
