//! Test component for heimdall-spin-host. One build serves several manifest components; the
//! behaviour is chosen by the request path (after the route prefix):
//! - `.../var?name=N`      → 200 with the value of component variable N, 404 with the error
//! - `.../fetch?url=U`     → GET U; 200 with `<status> <body>` or 502 with the send error
//! - `.../after?url=U`     → answers `accepted` at once, THEN calls GET U (post-response work)
//! - `.../relay`           → POSTs its `authorization` header to `{{ relay_url }}/relayed`
//! - anything else          → 200 with the method, path and Spin's `spin-*` request headers

use futures::SinkExt;
use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingResponse, Request, Response, ResponseOutparam,
};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let path_and_query = req.path_with_query().unwrap_or_default();
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_and_query.clone(), String::new()),
    };
    let url = query_param(&query, "url");
    if path.ends_with("/var") {
        let name = query_param(&query, "name").unwrap_or_default();
        match spin_sdk::variables::get(&name) {
            Ok(v) => reply(out, 200, v).await,
            Err(e) => reply(out, 404, format!("{e:?}")).await,
        }
    } else if path.ends_with("/fetch") {
        let (status, body) = fetch(Method::Get, &url.unwrap_or_default(), Vec::new()).await;
        reply(out, status, body).await
    } else if path.ends_with("/after") {
        reply(out, 200, "accepted".to_string()).await;
        // The response is complete; the host must have delivered it already.
        let _ = fetch(Method::Get, &url.unwrap_or_default(), Vec::new()).await;
    } else if path.ends_with("/relay") {
        let auth = header(&req, "authorization");
        let target = spin_sdk::variables::get("relay_url").unwrap_or_default();
        let (status, body) = fetch(Method::Post, &format!("{target}/relayed"), auth.into()).await;
        reply(out, status, body).await
    } else {
        let mut lines = vec![
            format!("method={:?}", req.method()),
            format!("path={path_and_query}"),
        ];
        for name in [
            "spin-full-url",
            "spin-path-info",
            "spin-matched-route",
            "spin-raw-component-route",
            "spin-component-route",
            "spin-base-path",
            "spin-client-addr",
        ] {
            lines.push(format!("{name}={}", header(&req, name)));
        }
        reply(out, 200, lines.join("\n")).await
    }
}

/// Sends a request; returns (200, "<status> <body>") or (502, "<error>").
async fn fetch(method: Method, url: &str, body: Vec<u8>) -> (u16, String) {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .build();
    match spin_sdk::http::send::<_, Response>(request).await {
        Ok(resp) => (
            200,
            format!("{} {}", resp.status(), String::from_utf8_lossy(resp.body())),
        ),
        Err(e) => (502, format!("send error: {e:?}")),
    }
}

fn header(req: &IncomingRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// Sets the response, writes the whole body and closes it, so the client sees it complete.
async fn reply(out: ResponseOutparam, status: u16, body: String) {
    let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
        .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let mut sink = response.take_body();
    out.set(response);
    let _ = sink.send(body.into_bytes()).await;
    let _ = sink.close().await;
}
