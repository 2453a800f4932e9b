//! End-to-end tests of the host with a real component (tests/echo-component, built on demand
//! for wasm32-wasip2) and the manifest tests/echo.toml. Everything binds 127.0.0.1 port 0 and
//! every test is bounded by a timeout.

use bytes::Bytes;
use heimdall_spin_host::{start, HostConfig, RunningHost, Tick};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const TEST_LIMIT: Duration = Duration::from_secs(60);
const BUILD_LIMIT: Duration = Duration::from_secs(900);

// ---------------------------------------------------------------------------------------------
// Building the echo component once per test binary.

fn cache_dir() -> PathBuf {
    match std::env::var_os("HEIMDALL_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/heimdall")
        }
    }
}

/// Builds tests/echo-component (release, wasm32-wasip2) and returns the directory holding the
/// `.wasm`, to be used as `wasm_dir`.
fn echo_wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/echo-component");
        let target = cache_dir().join("target-spin-host-echo");
        let mut child = Command::new("cargo")
            .args([
                "build",
                "--target",
                "wasm32-wasip2",
                "--release",
                "--manifest-path",
            ])
            .arg(crate_dir.join("Cargo.toml"))
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .spawn()
            .expect("cargo runs");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("waiting for cargo") {
                assert!(status.success(), "building the echo component failed");
                break;
            }
            if started.elapsed() > BUILD_LIMIT {
                let _ = child.kill();
                panic!("building the echo component took longer than {BUILD_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        target.join("wasm32-wasip2/release")
    })
}

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/echo.toml")
}

fn config(target: SocketAddr) -> HostConfig {
    HostConfig {
        manifest: manifest(),
        wasm_dir: Some(echo_wasm_dir().to_path_buf()),
        listen: "127.0.0.1:0".parse().expect("valid address"),
        variables: HashMap::from([
            ("secret_thing".to_string(), "s3cr3t".to_string()),
            ("target".to_string(), format!("http://{target}")),
        ]),
        tick: None,
        log_file: None,
    }
}

async fn start_host(config: HostConfig) -> RunningHost {
    start(config).await.expect("host starts")
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP client and a recording target server.

async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = Request::get(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request");
    send(addr, req).await
}

/// Records every request as `METHOD path body`. `/hold` answers only after `release`.
#[derive(Default)]
struct Target {
    seen: Mutex<Vec<String>>,
    arrived: Notify,
    release: Notify,
}

impl Target {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }

    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let line = format!("{} {}", req.method(), req.uri().path());
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
        self.seen
            .lock()
            .expect("lock")
            .push(format!("{line} {body}"));
        self.arrived.notify_one();
        if line.ends_with("/hold") {
            let _ = tokio::time::timeout(TEST_LIMIT, self.release.notified()).await;
        }
        Response::new(Full::new(Bytes::from("from-target")))
    }
}

async fn start_target() -> (SocketAddr, Arc<Target>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let target = Arc::new(Target::default());
    let t = target.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let t = t.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let t = t.clone();
                    async move { Ok::<_, Infallible>(t.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, target)
}

fn header_line<'a>(body: &'a str, name: &str) -> &'a str {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// Builds the component first (its own, longer limit), then runs `test` within [`TEST_LIMIT`].
async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::task::spawn_blocking(echo_wasm_dir)
        .await
        .expect("build task");
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test finished in time");
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_wildcards_exact_and_sets_spin_headers() {
    bounded(async {
        let (target, _) = start_target().await;
        let host = start_host(config(target)).await;
        let addr = host.addr();

        let (status, body) = get(addr, "/echo/a/b?x=1").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header_line(&body, "path"), "/echo/a/b?x=1");
        assert_eq!(header_line(&body, "spin-path-info"), "/a/b");
        assert_eq!(header_line(&body, "spin-matched-route"), "/echo/...");
        assert_eq!(header_line(&body, "spin-raw-component-route"), "/echo/...");
        assert_eq!(header_line(&body, "spin-component-route"), "/echo");
        assert_eq!(header_line(&body, "spin-base-path"), "/");
        assert_eq!(
            header_line(&body, "spin-full-url"),
            format!("http://{addr}/echo/a/b?x=1")
        );
        assert!(header_line(&body, "spin-client-addr").starts_with("127.0.0.1:"));

        // The longer wildcard wins.
        let (_, body) = get(addr, "/echo/special/z").await;
        assert_eq!(header_line(&body, "spin-component-route"), "/echo/special");
        assert_eq!(header_line(&body, "spin-path-info"), "/z");

        let (status, body) = get(addr, "/exact").await;
        assert_eq!(status, 200);
        assert_eq!(header_line(&body, "spin-matched-route"), "/exact");
        assert_eq!(header_line(&body, "spin-path-info"), "");

        assert_eq!(get(addr, "/exactly").await.0, 404);
        assert_eq!(get(addr, "/echoes").await.0, 404);
        assert_eq!(get(addr, "/").await.0, 404);
        host.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_component_only_reachable_through_spin_internal() {
    bounded(async {
        let (target, _) = start_target().await;
        let host = start_host(config(target)).await;
        let addr = host.addr();
        for path in ["/", "/hidden", "/hidden/var?name=who", "/var?name=who"] {
            assert_eq!(get(addr, path).await.0, 404, "{path}");
        }
        let url = "http://hidden.spin.internal/some/var?name=who";
        let (status, body) = get(addr, &format!("/echo/fetch?url={url}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, "200 the hidden one");

        // Chained requests get Spin's headers too (the whole path is the path info).
        let url = "http://hidden.spin.internal/deep/path";
        let (_, body) = get(addr, &format!("/echo/fetch?url={url}")).await;
        assert!(body.contains("spin-path-info=/deep/path"), "{body}");

        // A component name that does not exist.
        let url = "http://nobody.spin.internal/";
        let (status, body) = get(addr, &format!("/echo/fetch?url={url}")).await;
        assert_eq!(status, 502, "{body}");
        host.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_variables_resolve_from_app_variables() {
    bounded(async {
        let (target, _) = start_target().await;
        let mut cfg = config(target);
        cfg.variables.insert("greeting".into(), "hej".into());
        let host = start_host(cfg).await;
        let addr = host.addr();
        assert_eq!(
            get(addr, "/echo/var?name=greeting").await,
            (200, "hej, world".to_string())
        );
        assert_eq!(
            get(addr, "/echo/var?name=secret_thing").await,
            (200, "s3cr3t".to_string())
        );
        // An app variable the component did not declare is not visible to it.
        let (status, body) = get(addr, "/echo/var?name=target").await;
        assert_eq!(status, 404);
        assert!(body.contains("Undefined"), "{body}");
        let (status, body) = get(addr, "/echo/var?name=Bad-Name").await;
        assert_eq!(status, 404);
        assert!(body.contains("InvalidName"), "{body}");
        host.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_variable_is_a_startup_error_naming_it() {
    bounded(async {
        let mut cfg = config("127.0.0.1:9".parse().expect("addr"));
        cfg.variables.remove("secret_thing");
        let err = start(cfg).await.err().expect("start fails");
        assert!(format!("{err:#}").contains("secret_thing"), "{err:#}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_requests_are_allowed_or_denied() {
    bounded(async {
        let (target, seen) = start_target().await;
        // Another loopback server that must never be reached.
        let (other, other_seen) = start_target().await;
        let host = start_host(config(target)).await;
        let addr = host.addr();

        let (status, body) = get(addr, &format!("/echo/fetch?url=http://{target}/ok")).await;
        assert_eq!((status, body.as_str()), (200, "200 from-target"));
        assert_eq!(seen.seen(), vec!["GET /ok ".to_string()]);

        let (status, body) = get(addr, &format!("/echo/fetch?url=http://{other}/no")).await;
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("HttpRequestDenied"), "{body}");
        assert!(other_seen.seen().is_empty());

        // `special` has no allowed_outbound_hosts at all: even chaining is denied.
        let url = "http://hidden.spin.internal/x";
        let (status, body) = get(addr, &format!("/echo/special/fetch?url={url}")).await;
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("HttpRequestDenied"), "{body}");
        host.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_is_returned_before_the_guest_finishes() {
    bounded(async {
        let (target, seen) = start_target().await;
        let host = start_host(config(target)).await;
        let addr = host.addr();
        // The guest answers, then calls /hold, which the target only answers after we got the
        // response: if the host waited for the guest to finish, this would never complete.
        let (status, body) = get(addr, &format!("/echo/after?url=http://{target}/hold")).await;
        assert_eq!((status, body.as_str()), (200, "accepted"));
        while !seen.seen().iter().any(|l| l.starts_with("GET /hold")) {
            seen.arrived.notified().await;
        }
        seen.release.notify_one();
        host.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_posts_with_the_bearer() {
    bounded(async {
        let (target, seen) = start_target().await;
        let mut cfg = config(target);
        cfg.tick = Some(Tick {
            every: Duration::from_millis(200),
            path: "/tick/relay".to_string(),
            bearer: "tick-token".to_string(),
        });
        let host = start_host(cfg).await;
        let relayed = "POST /relayed Bearer tick-token".to_string();
        while seen.seen().iter().filter(|l| **l == relayed).count() < 2 {
            seen.arrived.notified().await;
        }
        host.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused() {
    bounded(async {
        let (target, _) = start_target().await;
        let host = start_host(config(target)).await;
        let addr = host.addr();
        // Only the head is sent: the host refuses on the declared length without reading the
        // body, so a client still writing a megabyte could see its socket closed first.
        let too_big = heimdall_spin_host::MAX_BODY_BYTES + 1;
        let head =
            format!("POST /echo/x HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {too_big}\r\n\r\n");
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("write head");
        let mut answer = vec![0u8; 64];
        let n = stream.read(&mut answer).await.expect("read answer");
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let req = Request::post("/echo/x")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::from_static(b"small")))
            .expect("request");
        assert_eq!(send(addr, req).await.0, 200);
        host.shutdown().await;
    })
    .await
}

/// Found by running the same app under real Spin 3.6.3: what it refuses before the guest runs,
/// and the health check it answers itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_what_spin_refuses_and_answers_its_health_check() {
    bounded(async {
        let (target, _) = start_target().await;
        let host = start_host(config(target)).await;
        let addr = host.addr();
        let request = |host: &[u8], extra: &[u8]| {
            Request::get("/echo/x")
                .header("host", http::HeaderValue::from_bytes(host).expect("value"))
                .header(
                    "x-extra",
                    http::HeaderValue::from_bytes(extra).expect("value"),
                )
                .body(Full::new(Bytes::new()))
                .expect("request")
        };
        let internal = request(b"hidden.spin.internal", b"");
        assert_eq!(
            send(addr, internal).await.0,
            400,
            "a Host naming a component"
        );
        let internal_with_port = request(b"Hidden.Spin.Internal:80", b"");
        assert_eq!(send(addr, internal_with_port).await.0, 400);
        let not_utf8 = request(addr.to_string().as_bytes(), b"\xff\xfe");
        assert_eq!(
            send(addr, not_utf8).await.0,
            500,
            "a header value that is not UTF-8"
        );
        assert_eq!(
            get(addr, "/.well-known/spin/health").await,
            (200, "OK".into())
        );
        assert_eq!(
            get(addr, "/echo/x").await.0,
            200,
            "and the rest still works"
        );
        host.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_listener() {
    bounded(async {
        let (target, _) = start_target().await;
        let host = start_host(config(target)).await;
        let addr = host.addr();
        assert_eq!(get(addr, "/exact").await.0, 200);
        host.shutdown().await;
        assert!(TcpStream::connect(addr).await.is_err());
    })
    .await
}

#[test]
fn unsupported_imports_are_refused_by_name() {
    let imports = [
        "wasi:http/types@0.2.0",
        "fermyon:spin/variables@2.0.0",
        "fermyon:spin/key-value@2.0.0",
    ];
    let err = heimdall_spin_host::check_imports("x", imports).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "component `x` imports `fermyon:spin/key-value@2.0.0`, which this host does not provide"
    );
    assert_eq!(
        heimdall_spin_host::unsupported_imports(imports),
        vec!["fermyon:spin/key-value@2.0.0"]
    );
}
