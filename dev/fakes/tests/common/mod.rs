//! Test helpers: a small HTTP client, the contract examples, and a JSON shape comparison.
#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Sends a request and reads the whole answer.
pub async fn send(request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client
        .request(request.map(|body| Full::new(Bytes::from(body))))
        .await
        .expect("the fake answers");
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .expect("a whole body")
        .to_bytes()
        .to_vec();
    http::Response::from_parts(parts, body)
}

/// Builds and sends a request.
pub async fn call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> http::Response<Vec<u8>> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(builder.body(body.to_vec()).expect("a valid request")).await
}

/// The body as JSON.
pub fn body_json(response: &http::Response<Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(response.body())
        )
    })
}

/// `../shared/contracts` next to the repository; the tests cannot say anything without it.
pub fn contracts_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/contracts");
    assert!(
        dir.is_dir(),
        "the contract examples are missing: expected them at {} (../shared/contracts next to the repository)",
        dir.display()
    );
    dir
}

/// An example file as JSON.
pub fn example(name: &str) -> serde_json::Value {
    let path = contracts_dir().join("examples").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read contract example {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The JSON body of an example HTTP transcript (`*.http.txt`: headers, then the body).
pub fn example_http(name: &str) -> serde_json::Value {
    let path = contracts_dir().join("examples").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read contract example {}: {e}", path.display()));
    let body = &text[text.find('{').expect("a JSON body")..];
    serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{} has no JSON body: {e}", path.display()))
}

/// The body of a swagger example's response for `status`.
pub fn example_response(name: &str, status: &str) -> serde_json::Value {
    example(name)["responses"][status]["body"].clone()
}

/// Where `ours` and `example` both have a key, the values have the same JSON kind, all the way
/// down (arrays are compared by their first elements).
pub fn assert_compatible(ours: &serde_json::Value, example: &serde_json::Value) {
    compatible(ours, example, "$");
}

fn compatible(ours: &serde_json::Value, example: &serde_json::Value, at: &str) {
    use serde_json::Value::*;
    match (ours, example) {
        (Object(a), Object(b)) => {
            for (key, value) in a {
                if let Some(other) = b.get(key) {
                    compatible(value, other, &format!("{at}.{key}"));
                }
            }
        }
        (Array(a), Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                compatible(x, y, &format!("{at}[0]"));
            }
        }
        (Null, _) | (_, Null) => {}
        (Bool(_), Bool(_)) | (Number(_), Number(_)) | (String(_), String(_)) => {}
        _ => panic!("{at}: ours is {ours}, the example has {example}"),
    }
}

/// Every key of `example`'s objects is in `ours`, except the listed JSON pointers.
pub fn assert_has_keys(ours: &serde_json::Value, example: &serde_json::Value, except: &[&str]) {
    has_keys(ours, example, "", except);
}

fn has_keys(ours: &serde_json::Value, example: &serde_json::Value, at: &str, except: &[&str]) {
    match (ours, example) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (key, value) in b {
                let pointer = format!("{at}/{key}");
                if except.contains(&pointer.as_str()) {
                    continue;
                }
                let mine = a
                    .get(key)
                    .unwrap_or_else(|| panic!("missing {pointer} (present in the example)"));
                has_keys(mine, value, &pointer, except);
            }
        }
        (serde_json::Value::Array(a), serde_json::Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                has_keys(x, y, &format!("{at}/0"), except);
            }
        }
        _ => {}
    }
}
