//! The wasmtime side: compiling components once, and running each request in a fresh instance
//! (Spin's model) with WASI 0.2, wasi:http and Spin variables linked in.

use crate::imports;
use crate::manifest::RouteDecl;
use crate::outbound::OutboundPolicy;
use crate::outgoing::Outgoing;
use crate::router;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::bindings::ProxyPre;
use wasmtime_wasi_http::body::HyperOutgoingBody;
use wasmtime_wasi_http::types::{
    HostFutureIncomingResponse, IncomingResponse, OutgoingRequestConfig,
};
use wasmtime_wasi_http::{HttpResult, WasiHttpCtx, WasiHttpView};

/// Host bindings for `fermyon:spin/variables@2.0.0`, from the WIT copied out of spin-sdk 5.2.
mod spin_bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "host",
    });
}
use spin_bindings::fermyon::spin::variables;

/// How long one guest call may run in total, including work after its response was sent.
pub const GUEST_TIME_LIMIT: Duration = Duration::from_secs(30);
/// Guests yield to the async runtime this often, so that the time limit can stop a busy loop.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The suffix that routes an outbound request to a component of this app (service chaining).
const INTERNAL_SUFFIX: &str = ".spin.internal";

/// What the host needs to know to load one component; everything already resolved.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    pub id: String,
    pub wasm: PathBuf,
    pub variables: HashMap<String, String>,
    pub outbound: OutboundPolicy,
}

/// A guest's response, and how long its fresh instance took to create (the rest of the
/// host-side time is routing and the guest's own work up to its answer).
pub struct Invoked {
    pub response: hyper::Response<HyperOutgoingBody>,
    pub instantiate: Duration,
}

/// A compiled, pre-linked component with its resolved configuration.
pub struct LoadedComponent {
    pub id: String,
    pre: ProxyPre<HostState>,
    variables: HashMap<String, String>,
    outbound: OutboundPolicy,
}

/// The loaded app: shared by the server, the tick and every running guest.
pub struct App {
    engine: Engine,
    components: HashMap<String, Arc<LoadedComponent>>,
    routes: Vec<RouteDecl>,
    /// Guest calls running now, their work after the answer included.
    running: Arc<AtomicUsize>,
    /// Where guests' stdout and stderr go, if not the host's.
    guest_log: Option<OutputFile>,
    /// The connections guests' requests go out on.
    outgoing: Outgoing,
}

/// Counts one running guest call for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(count: &Arc<AtomicUsize>) -> Running {
        count.fetch_add(1, Ordering::SeqCst);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Per-request store data.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    component: Arc<LoadedComponent>,
    app: Arc<App>,
}

impl App {
    /// Compiles every component once (blocking: call from `spawn_blocking`) and checks imports.
    pub fn load(
        routes: Vec<RouteDecl>,
        specs: Vec<ComponentSpec>,
        guest_log: Option<std::fs::File>,
    ) -> Result<Self> {
        let engine = new_engine()?;
        let linker = new_linker(&engine)?;
        // The same .wasm may back several components; compile it once.
        let mut compiled: HashMap<PathBuf, Component> = HashMap::new();
        let mut components = HashMap::new();
        for spec in specs {
            let component = match compiled.get(&spec.wasm) {
                Some(c) => c.clone(),
                None => {
                    let c = compile(&engine, &spec)?;
                    compiled.insert(spec.wasm.clone(), c.clone());
                    c
                }
            };
            let loaded = prepare(&engine, &linker, &component, spec)?;
            components.insert(loaded.id.clone(), Arc::new(loaded));
        }
        Ok(Self {
            engine,
            components,
            routes,
            running: Arc::new(AtomicUsize::new(0)),
            guest_log: guest_log.map(OutputFile::new),
            outgoing: Outgoing::new(),
        })
    }

    /// Waits until no guest call runs any more, or `bound` has passed; whether they all ended.
    /// A host that stops takes no new requests first, so the count only falls.
    pub async fn settle(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while self.running.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn component(&self, id: &str) -> Option<&Arc<LoadedComponent>> {
        self.components.get(id)
    }

    /// Runs `req` in a fresh instance of `component`. Resolves as soon as the guest sets its
    /// response; the guest keeps running in its own task (bounded by [`GUEST_TIME_LIMIT`]) so it
    /// can finish the body and do work after answering.
    pub async fn invoke<B>(
        self: &Arc<Self>,
        component: &Arc<LoadedComponent>,
        req: hyper::Request<B>,
    ) -> Result<Invoked>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<ErrorCode>,
    {
        let mut store = self.new_store(component);
        // Set before the guest runs, so always known once it has answered.
        let instantiated = Arc::new(OnceLock::new());
        let instantiated_in_task = instantiated.clone();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().new_response_outparam(sender)?;
        let pre = component.pre.clone();
        let id = component.id.clone();
        let running = Running::new(&self.running);
        tokio::spawn(async move {
            let _running = running;
            let started = Instant::now();
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                let _ = instantiated_in_task.set(started.elapsed());
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            match tokio::time::timeout(GUEST_TIME_LIMIT, run).await {
                Ok(Ok(())) => log::debug!("component `{id}` finished in {:?}", started.elapsed()),
                Ok(Err(e)) => log::error!("component `{id}` failed: {e:?}"),
                Err(_) => log::error!("component `{id}` stopped after {GUEST_TIME_LIMIT:?}"),
            }
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(Invoked {
                response,
                instantiate: instantiated.get().copied().unwrap_or_default(),
            }),
            Ok(Err(code)) => Err(anyhow!(
                "component `{}` set an error response: {code:?}",
                component.id
            )),
            Err(_) => Err(anyhow!(
                "component `{}` did not set a response (its error is logged)",
                component.id
            )),
        }
    }

    fn new_store(self: &Arc<Self>, component: &Arc<LoadedComponent>) -> Store<HostState> {
        let mut wasi = WasiCtx::builder();
        match &self.guest_log {
            Some(log) => wasi.stdout(log.clone()).stderr(log.clone()),
            None => wasi.inherit_stdout().inherit_stderr(),
        };
        // Raw sockets would bypass allowed_outbound_hosts; only wasi:http goes out.
        let wasi = wasi
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            component: component.clone(),
            app: self.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store
    }

    /// Service chaining: runs an outbound request to `http://<id>.spin.internal/...` in a fresh
    /// instance of component `<id>`, without touching the network.
    async fn dispatch_internal(
        self: Arc<Self>,
        target: String,
        mut request: hyper::Request<HyperOutgoingBody>,
        between_bytes_timeout: Duration,
    ) -> Result<IncomingResponse, ErrorCode> {
        let Some(component) = self.components.get(&target).cloned() else {
            log::warn!("service chaining: no component `{target}` in this app");
            return Err(ErrorCode::DestinationNotFound);
        };
        let m = router::chained_match(&self.routes, &target, request.uri().path());
        let full_url = request.uri().to_string();
        let shown = without_query(request.uri());
        set_headers(
            request.headers_mut(),
            router::spin_headers(&m, &full_url, "127.0.0.1:0"),
        );
        let started = Instant::now();
        let method = request.method().clone();
        let result = self.invoke(&component, request).await;
        let status = result
            .as_ref()
            .map_or(500, |r| r.response.status().as_u16());
        log::info!(
            "{method} {shown} {target} {status} {}us (internal)",
            started.elapsed().as_micros()
        );
        match result {
            Ok(invoked) => Ok(IncomingResponse {
                resp: invoked.response,
                worker: None,
                between_bytes_timeout,
            }),
            Err(e) => {
                log::error!("service chaining to `{target}`: {e:#}");
                Err(ErrorCode::InternalError(Some(e.to_string())))
            }
        }
    }
}

/// Inserts headers, replacing any the client sent under the same names.
pub fn set_headers(headers: &mut http::HeaderMap, values: Vec<(&'static str, String)>) {
    for (name, value) in values {
        match HeaderValue::from_str(&value) {
            Ok(v) => {
                headers.insert(HeaderName::from_static(name), v);
            }
            Err(_) => log::warn!("header {name}: value {value:?} is not a valid header value"),
        }
    }
}

fn new_engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if std::env::var_os("HEIMDALL_SPIN_PERFMAP").is_some() {
        // For profiling: names the compiled guest functions in /tmp/perf-<pid>.map, which
        // `perf report` reads (see dev/spin-host/README.md).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    // Spin's own switch: 0 turns the pool off, 1 insists on it.
    let forced = match std::env::var("SPIN_WASMTIME_POOLING").as_deref() {
        Ok("0") => return wt(Engine::new(&config)).context("creating the wasmtime engine"),
        Ok("1") => true,
        Ok(other) => anyhow::bail!("SPIN_WASMTIME_POOLING={other}: only 0 or 1"),
        Err(_) => false,
    };
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
        pooling_config(),
    ));
    match wt(Engine::new(&config)) {
        Ok(engine) => Ok(engine),
        Err(e) if !forced => {
            // As Spin does: where the address space is too small for the pool, instances are
            // allocated one by one instead.
            log::warn!("pooling allocator unavailable ({e:#}); allocating instances on demand");
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
            wt(Engine::new(&config)).context("creating the wasmtime engine")
        }
        Err(e) => Err(e).context("creating the wasmtime engine with the pooling allocator"),
    }
}

/// Instances the pool holds at once, Spin's default (`SPIN_MAX_INSTANCE_COUNT`). A request's
/// instance lives on while it works after its answer, and so does each one it kicks: 50
/// `/start`s in flight, each kicking reactions, which calls the scaler, hold far more than 50.
/// When the pool is full, a request fails as it would on Spin.
const POOLED_INSTANCES: u32 = 1_000;

/// The pooling allocator as Spin configures it by default: fresh instances reuse slots whose
/// memory stays mapped, instead of an mmap and munmap per request. The per-component limits are
/// Spin's, so that a component that Spin accepts is accepted here too.
fn pooling_config() -> wasmtime::PoolingAllocationConfig {
    const MB: usize = 1 << 20;
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling
        .total_component_instances(POOLED_INSTANCES)
        .total_memories(POOLED_INSTANCES)
        .total_tables(2 * POOLED_INSTANCES)
        .total_stacks(POOLED_INSTANCES)
        .total_core_instances(4 * POOLED_INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MB)
        .max_core_instance_size(10 * MB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MB)
        .table_keep_resident(MB / 2);
    pooling
}

fn new_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wt(wasmtime_wasi::p2::add_to_linker_async(&mut linker)).context("linking WASI 0.2")?;
    wt(wasmtime_wasi_http::add_only_http_to_linker_async(
        &mut linker,
    ))
    .context("linking wasi:http")?;
    wt(variables::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    ))
    .context("linking fermyon:spin/variables")?;
    Ok(linker)
}

fn compile(engine: &Engine, spec: &ComponentSpec) -> Result<Component> {
    let bytes = std::fs::read(&spec.wasm).with_context(|| {
        format!(
            "component `{}`: reading {} (built yet?)",
            spec.id,
            spec.wasm.display()
        )
    })?;
    let started = Instant::now();
    let component = wt(Component::new(engine, &bytes))
        .with_context(|| format!("component `{}`: compiling {}", spec.id, spec.wasm.display()))?;
    log::debug!(
        "compiled {} in {:?}",
        spec.wasm.display(),
        started.elapsed()
    );
    Ok(component)
}

/// Checks imports by name, then links and pre-instantiates.
fn prepare(
    engine: &Engine,
    linker: &Linker<HostState>,
    component: &Component,
    spec: ComponentSpec,
) -> Result<LoadedComponent> {
    let ty = component.component_type();
    imports::check(&spec.id, ty.imports(engine).map(|(name, _)| name))?;
    let pre = wt(linker.instantiate_pre(component))
        .with_context(|| format!("component `{}`: linking its imports", spec.id))?;
    let pre = wt(ProxyPre::new(pre)).with_context(|| {
        format!(
            "component `{}` does not export wasi:http/incoming-handler@0.2",
            spec.id
        )
    })?;
    Ok(LoadedComponent {
        id: spec.id,
        pre,
        variables: spec.variables,
        outbound: spec.outbound,
    })
}

/// wasmtime has its own error type; anyhow's `Context` needs it converted first.
fn wt<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(anyhow::Error::from)
}

/// The URI as logs show it: without its query, which may carry a secret (a scheduler that cannot
/// set headers authenticates with one there) or a SAS signature.
pub fn without_query(uri: &http::Uri) -> String {
    let mut shown = String::new();
    if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
        shown = format!("{scheme}://{authority}");
    }
    shown.push_str(uri.path());
    shown
}

/// `Some(id)` for `http(s)://<id>.spin.internal`.
fn internal_target(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?.to_ascii_lowercase();
    host.strip_suffix(INTERNAL_SUFFIX)
        .filter(|id| !id.is_empty() && !id.contains('.'))
        .map(str::to_string)
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn ctx(&mut self) -> &mut WasiHttpCtx {
        &mut self.http
    }

    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Enforces `allowed_outbound_hosts`, then either chains to a component of this app or
    /// sends the request over the network.
    fn send_request(
        &mut self,
        request: hyper::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> HttpResult<HostFutureIncomingResponse> {
        if !self.component.outbound.allows_uri(request.uri()) {
            log::warn!(
                "component `{}`: outbound request to {} denied (not in allowed_outbound_hosts)",
                self.component.id,
                without_query(request.uri())
            );
            return Err(ErrorCode::HttpRequestDenied.into());
        }
        if let Some(target) = internal_target(request.uri()) {
            let app = self.app.clone();
            let timeout = config.between_bytes_timeout;
            let handle = wasmtime_wasi::runtime::spawn(async move {
                Ok(app.dispatch_internal(target, request, timeout).await)
            });
            return Ok(HostFutureIncomingResponse::pending(handle));
        }
        Ok(self.app.outgoing.send(request, config))
    }
}

impl variables::Host for HostState {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        if !crate::variables::is_valid_name(&name) {
            return Err(variables::Error::InvalidName(name));
        }
        self.component
            .variables
            .get(&name)
            .cloned()
            .ok_or(variables::Error::Undefined(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_uris_have_no_query() {
        let shown = |u: &str| without_query(&u.parse().expect("uri"));
        assert_eq!(
            shown("http://reactions.spin.internal/reactions/tick?secret=s3"),
            "http://reactions.spin.internal/reactions/tick"
        );
        assert_eq!(shown("/reactions/tick?secret=s3"), "/reactions/tick");
    }

    #[test]
    fn internal_targets() {
        let t = |u: &str| internal_target(&u.parse().expect("uri"));
        assert_eq!(
            t("http://scaler.spin.internal/x").as_deref(),
            Some("scaler")
        );
        assert_eq!(t("http://Scaler.SPIN.internal").as_deref(), Some("scaler"));
        assert_eq!(t("http://spin.internal/"), None);
        assert_eq!(t("http://a.b.spin.internal/"), None);
        assert_eq!(t("http://example.com/"), None);
    }
}
