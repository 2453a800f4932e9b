//! Fake Microsoft Entra (client credentials) and Azure Resource Manager (one VM Scale Set),
//! both on one origin, plus the VM's lifecycle for the sandbox to follow.

mod authorization;
mod compute;
mod entra;
mod faults;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::server::Server;
use crate::util::{lock, segments, Reply, Utc};
use crate::RecordedRequest;
pub use faults::Fault;

/// The identity and scale set the fake knows, and how it behaves.
#[derive(Debug, Clone)]
pub struct ArmFakeConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub vmss_name: String,
    /// The address the VM gets while capacity is above 0.
    pub public_ip: String,
    /// How long the VM takes to boot after its scale-up operation has succeeded.
    pub boot_delay: Duration,
    /// How many polls of an operation answer `InProgress` before it succeeds.
    pub polls_in_progress: u32,
    /// The scale set's VM size until a PATCH changes it.
    pub vm_size: String,
    /// Secrets of the app that existed once and have expired: Entra answers them with
    /// `AADSTS7000222` rather than as unknown secrets.
    pub expired_client_secrets: Vec<String>,
}

impl Default for ArmFakeConfig {
    fn default() -> Self {
        Self {
            tenant_id: "00000000-0000-0000-0000-00000000aaaa".into(),
            client_id: "00000000-0000-0000-0000-00000000bbbb".into(),
            client_secret: "fake-client-secret".into(),
            subscription_id: "00000000-0000-0000-0000-00000000cccc".into(),
            resource_group: "heimdall".into(),
            vmss_name: "valheim".into(),
            public_ip: "203.0.113.10".into(),
            boot_delay: Duration::from_millis(200),
            polls_in_progress: 1,
            vm_size: "Standard_D2as_v4".into(),
            expired_client_secrets: Vec::new(),
        }
    }
}

/// The VM as the sandbox sees it: it starts and stops the agent on these transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmState {
    Deallocated,
    Running { vm_name: String, public_ip: String },
}

/// A running fake. Serves Entra's token endpoint and ARM on [`ArmFake::origin`].
pub struct ArmFake {
    server: Server,
    shared: Arc<Shared>,
}

impl ArmFake {
    /// Starts the fake on `127.0.0.1:0`, with the scale set at capacity 0.
    pub async fn start(config: ArmFakeConfig) -> anyhow::Result<ArmFake> {
        let (lifecycle, _) = watch::channel(VmState::Deallocated);
        let mut shared = None;
        let server = Server::start(|origin| {
            let state = Arc::new(Shared {
                state: Mutex::new(State {
                    size: config.vm_size.clone(),
                    grants: authorization::deployed_grants(&config),
                    ..State::default()
                }),
                config,
                origin,
                lifecycle,
            });
            shared = Some(Arc::clone(&state));
            Arc::new(move |request| handle(&state, request))
        })
        .await?;
        let shared =
            shared.ok_or_else(|| anyhow::anyhow!("the server did not build its handler"))?;
        Ok(ArmFake { server, shared })
    }

    /// `http://127.0.0.1:PORT`: use it as both `entra_endpoint` and `arm_endpoint`.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// Every capacity sent by PATCH, in order.
    pub fn capacity_patches(&self) -> Vec<u32> {
        self.patches().into_iter().map(|p| p.capacity).collect()
    }

    /// Every capacity sent by PATCH, with when it arrived.
    pub fn timed_patches(&self) -> Vec<(u32, Instant)> {
        self.patches()
            .into_iter()
            .map(|p| (p.capacity, p.at))
            .collect()
    }

    /// Every PATCH the scale set took: capacity, size (when it changed it) and when.
    pub fn patches(&self) -> Vec<Patch> {
        lock(&self.shared.state).patches.clone()
    }

    /// Makes trouble for the next requests (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.state).faults.add(fault);
    }

    /// Azure has no spot capacity for these sizes: a scale-up with one fails in its
    /// operation with `AllocationFailed`, as Compute reports it.
    pub fn no_capacity_for(&self, sizes: &[&str]) {
        let mut state = lock(&self.shared.state);
        state.faults.no_capacity = sizes.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Takes `action` out of the app's roles, e.g. `Microsoft.Compute/virtualMachineScaleSets/write`:
    /// a call that needs it gets 403 `AuthorizationFailed`, and the permissions list lacks it.
    /// The app starts with the roles infra/identity.tf assigns.
    pub fn revoke(&self, action: &str) {
        authorization::revoke(&mut lock(&self.shared.state), action);
    }

    /// The app's service principal has no role assignment at all.
    pub fn remove_role_assignments(&self) {
        lock(&self.shared.state).grants.clear();
    }

    /// The scale set's VM size now.
    pub fn vm_size(&self) -> String {
        lock(&self.shared.state).size.clone()
    }

    /// Azure takes the spot VM (eviction with the `Delete` policy): the instance is deleted and
    /// the capacity drops to match. No PATCH is recorded: nobody sent one.
    pub fn evict(&self) {
        evict(&self.shared);
    }

    /// [`ArmFake::evict`] for another fake to call (the metadata service, when an eviction it
    /// announced starts).
    pub fn evictor(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move || evict(&shared)
    }

    /// The scale set's capacity now.
    pub fn capacity(&self) -> u32 {
        lock(&self.shared.state).capacity
    }

    /// How many tokens Entra was asked for so far.
    pub fn token_requests(&self) -> usize {
        lock(&self.shared.state)
            .requests
            .iter()
            .filter(|r| r.uri.path().ends_with("/oauth2/v2.0/token"))
            .count()
    }

    /// Every request received, in order (token requests included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.state).requests.clone()
    }

    /// Follows the VM: `Running` `boot_delay` after a scale-up has succeeded, `Deallocated`
    /// as soon as the capacity is set to 0.
    pub fn lifecycle(&self) -> watch::Receiver<VmState> {
        self.shared.lifecycle.subscribe()
    }

    /// Stops serving and cancels a pending boot; returns once the port is closed.
    pub async fn shutdown(mut self) {
        self.shared.cancel_boot();
        self.server.stop().await;
    }
}

impl Drop for ArmFake {
    fn drop(&mut self) {
        self.shared.cancel_boot();
    }
}

/// One PATCH the scale set took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub capacity: u32,
    /// The VM size it set, when it set one.
    pub size: Option<String>,
    pub at: Instant,
}

/// What the handler and the boot timer share.
struct Shared {
    config: ArmFakeConfig,
    origin: String,
    state: Mutex<State>,
    lifecycle: watch::Sender<VmState>,
}

#[derive(Default)]
struct State {
    /// Access tokens issued by the token endpoint.
    tokens: HashSet<String>,
    capacity: u32,
    /// Bumped on every update, as ARM's etag is.
    etag: u64,
    /// The VM's instance id while capacity is above 0; a new one on every scale-up from 0.
    instance_id: Option<u32>,
    next_instance_id: u32,
    /// The latest update's operation id; earlier ones have been preempted or have ended.
    current_operation: Option<String>,
    operations: HashMap<String, Operation>,
    patches: Vec<Patch>,
    requests: Vec<RecordedRequest>,
    boot: Option<AbortHandle>,
    /// The VM size (`sku.name`).
    size: String,
    /// The latest scale-up's allocation failed: the instance exists but will never run.
    allocation_failed: bool,
    faults: faults::Faults,
    /// The app's role assignments.
    grants: Vec<authorization::Grant>,
}

struct Operation {
    start_time: String,
    polls_left: u32,
    end: Option<(String, OperationEnd)>,
    /// A scale-up onto a size without spot capacity: it ends `AllocationFailed`.
    no_capacity: bool,
    /// Followed at a `Location` URL (202 while running) rather than `Azure-AsyncOperation`.
    location_style: bool,
}

#[derive(Clone, Copy)]
enum OperationEnd {
    Succeeded,
    /// A later update replaced this one before it finished (Compute's `OperationPreempted`).
    Preempted,
    /// No spot capacity for the size.
    AllocationFailed,
}

impl State {
    /// Whether the latest update is still running.
    fn updating(&self) -> bool {
        self.current_operation
            .as_ref()
            .and_then(|id| self.operations.get(id))
            .is_some_and(|op| op.end.is_none())
    }

    /// The VM exists (capacity above 0 and its update finished): it has an address.
    fn allocated(&self) -> bool {
        self.capacity > 0
            && self.instance_id.is_some()
            && !self.updating()
            && !self.allocation_failed
    }
}

impl Shared {
    fn set_vm(&self, vm: VmState) {
        self.lifecycle.send_if_modified(|current| {
            let changed = *current != vm;
            *current = vm;
            changed
        });
    }

    fn cancel_boot(&self) {
        if let Some(boot) = lock(&self.state).boot.take() {
            boot.abort();
        }
    }

    fn vm_name(&self, instance_id: u32) -> String {
        format!("{}_{instance_id}", self.config.vmss_name)
    }
}

fn evict(shared: &Shared) {
    let mut state = lock(&shared.state);
    if state.instance_id.is_some() {
        compute::set_capacity(shared, &mut state, 0);
    }
}

/// Boots the VM `boot_delay` from now unless it is running or booting already. The timer
/// checks the instance is still the same when it fires: a scale to 0 in between wins.
fn schedule_boot(shared: &Arc<Shared>, state: &mut State) {
    let Some(instance_id) = state.instance_id else {
        return;
    };
    let running = matches!(*shared.lifecycle.borrow(), VmState::Running { .. });
    if running || state.boot.as_ref().is_some_and(|b| !b.is_finished()) {
        return;
    }
    let shared_for_timer = Arc::clone(shared);
    let timer = tokio::spawn(async move {
        tokio::time::sleep(shared_for_timer.config.boot_delay).await;
        let state = lock(&shared_for_timer.state);
        if state.instance_id == Some(instance_id) && state.capacity > 0 {
            shared_for_timer.set_vm(VmState::Running {
                vm_name: shared_for_timer.vm_name(instance_id),
                public_ip: shared_for_timer.config.public_ip.clone(),
            });
        }
    });
    state.boot = Some(timer.abort_handle());
}

fn handle(shared: &Arc<Shared>, request: http::Request<Bytes>) -> Reply {
    let mut state = lock(&shared.state);
    state.requests.push(RecordedRequest::of(&request));
    let path = request.uri().path().to_owned();
    match segments(&path).as_slice() {
        [tenant, "oauth2", "v2.0", "token"] => entra::token(shared, &mut state, tenant, &request),
        resource => compute::handle(shared, &mut state, resource, &request),
    }
}

fn now() -> String {
    Utc::now().rfc3339()
}
