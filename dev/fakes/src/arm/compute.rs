//! The ARM side: authentication, api-version, the scale set (GET, PATCH), the Compute async
//! operations that a PATCH starts, and (in [`flexible`]) the VM, NIC and public IP a Flexible
//! scale set creates in its resource group. Bodies are shaped like the official examples
//! (examples/arm/vmss-get.json, operation-status-compute-inprogress.json); errors are ARM
//! `CloudError`s.

mod flexible;

use bytes::Bytes;

use super::{
    authorization, now, schedule_boot, Fault, Operation, OperationEnd, Patch, Shared, State,
    VmState,
};
use crate::util::{guid, json, json_with, query_param, Reply};

const COMPUTE_API_VERSIONS: &[&str] = &["2024-11-01"];
/// Network's stable versions around the one the scaler uses.
const NETWORK_API_VERSIONS: &[&str] = &["2023-11-01", "2024-05-01", "2024-07-01"];
const LOCATION: &str = "westeurope";
/// Seconds ARM asks us to wait between polls; short, so local runs are quick.
const RETRY_AFTER_S: u32 = 1;
/// Scale sets allow up to 1000 instances.
const MAX_CAPACITY: u64 = 1000;

/// A route of the ARM side, with the names as sent.
enum Route<'a> {
    ScaleSet {
        subscription: &'a str,
        group: &'a str,
        name: &'a str,
    },
    Operation {
        subscription: &'a str,
        id: &'a str,
    },
    /// `GET …/providers/Microsoft.Compute/virtualMachines` (the list, with its `$filter`).
    Vms {
        subscription: &'a str,
        group: &'a str,
    },
    /// `GET …/providers/Microsoft.Network/{kind}/{name}`: a NIC or a public IP.
    Network {
        subscription: &'a str,
        group: &'a str,
        kind: flexible::NetworkKind,
        name: &'a str,
    },
}

impl Route<'_> {
    /// The subscription, group and scale set must be the fake's.
    fn locate(&self, shared: &Shared) -> Result<(), Reply> {
        match *self {
            Route::ScaleSet {
                subscription,
                group,
                name,
            } => find_scale_set(shared, subscription, group, name),
            Route::Vms {
                subscription,
                group,
            }
            | Route::Network {
                subscription,
                group,
                ..
            } => find_group(shared, subscription, group),
            Route::Operation { subscription, .. } => {
                if subscription.eq_ignore_ascii_case(&shared.config.subscription_id) {
                    Ok(())
                } else {
                    Err(subscription_not_found(subscription))
                }
            }
        }
    }

    /// The RBAC action ARM checks for this call; `None` for a method the route refuses anyway.
    fn action(&self, method: &http::Method) -> Option<String> {
        let read = *method == http::Method::GET;
        let action = match self {
            Route::ScaleSet { .. } if read => "Microsoft.Compute/virtualMachineScaleSets/read",
            Route::ScaleSet { .. } if *method == http::Method::PATCH => {
                "Microsoft.Compute/virtualMachineScaleSets/write"
            }
            Route::Operation { .. } if read => "Microsoft.Compute/locations/operations/read",
            Route::Vms { .. } if read => "Microsoft.Compute/virtualMachines/read",
            Route::Network { kind, .. } if read => {
                return Some(format!("{}/read", kind.resource_type()))
            }
            _ => return None,
        };
        Some(action.to_owned())
    }
}

fn route<'a>(segments: &[&'a str]) -> Option<Route<'a>> {
    // ARM paths are case-insensitive in their fixed parts.
    let is = |segment: &str, name: &str| segment.eq_ignore_ascii_case(name);
    match segments {
        [s, subscription, r, group, p, ns, t, name]
            if is(s, "subscriptions")
                && is(r, "resourceGroups")
                && is(p, "providers")
                && is(ns, "Microsoft.Compute")
                && is(t, "virtualMachineScaleSets") =>
        {
            Some(Route::ScaleSet {
                subscription,
                group,
                name,
            })
        }
        [s, subscription, r, group, p, ns, t]
            if is(s, "subscriptions")
                && is(r, "resourceGroups")
                && is(p, "providers")
                && is(ns, "Microsoft.Compute")
                && is(t, "virtualMachines") =>
        {
            Some(Route::Vms {
                subscription,
                group,
            })
        }
        [s, subscription, r, group, p, ns, kind, name]
            if is(s, "subscriptions")
                && is(r, "resourceGroups")
                && is(p, "providers")
                && is(ns, "Microsoft.Network") =>
        {
            Some(Route::Network {
                subscription,
                group,
                kind: flexible::NetworkKind::of(kind)?,
                name,
            })
        }
        [s, subscription, p, ns, l, _location, o, id]
            if is(s, "subscriptions")
                && is(p, "providers")
                && is(ns, "Microsoft.Compute")
                && is(l, "locations")
                && is(o, "operations") =>
        {
            Some(Route::Operation { subscription, id })
        }
        _ => None,
    }
}

pub(super) fn handle(
    shared: &std::sync::Arc<Shared>,
    state: &mut State,
    segments: &[&str],
    request: &http::Request<Bytes>,
) -> Reply {
    if let Err(refusal) = authenticate(shared, state, request) {
        return refusal;
    }
    if let Some(resource) = authorization::permissions_target(segments) {
        return authorization::permissions(shared, state, &resource, request);
    }
    let Some(route) = route(segments) else {
        return cloud_error(
            404,
            "NotFound",
            &format!(
                "The requested URI '{}' does not exist.",
                request.uri().path()
            ),
        );
    };
    let versions = match route {
        Route::Network { .. } => NETWORK_API_VERSIONS,
        _ => COMPUTE_API_VERSIONS,
    };
    if let Err(refusal) = check_api_version(request, versions) {
        return refusal;
    }
    if let Err(refusal) = route.locate(shared) {
        return refusal;
    }
    // Roles are checked on what exists: a wrong name keeps its 404 here, where Azure may answer
    // 403 for a name outside the caller's roles.
    if let Some(action) = route.action(request.method()) {
        let scope = request.uri().path();
        if let Err(refusal) = authorization::authorize(shared, state, &action, scope) {
            return refusal;
        }
    }
    let is_patch = *request.method() == http::Method::PATCH;
    let accepted = match state.faults.take(is_patch) {
        Some(fault @ (Fault::Throttle { .. } | Fault::ServerError { .. } | Fault::Busy { .. })) => {
            return fault_reply(&fault)
        }
        Some(Fault::Accepted { .. }) => true,
        None => false,
    };
    match route {
        Route::ScaleSet { .. } => match *request.method() {
            http::Method::GET => json(200, scale_set_body(shared, state)),
            http::Method::PATCH => patch(shared, state, request, accepted),
            _ => method_not_allowed(request),
        },
        Route::Vms { .. } => match *request.method() {
            http::Method::GET => flexible::vm_list(shared, state, request),
            _ => method_not_allowed(request),
        },
        Route::Network { kind, name, .. } => match *request.method() {
            http::Method::GET => flexible::network_resource(shared, state, kind, name),
            _ => method_not_allowed(request),
        },
        Route::Operation { id, .. } => match *request.method() {
            http::Method::GET => poll(shared, state, id),
            _ => method_not_allowed(request),
        },
    }
}

/// The answer an injected fault makes, shaped as ARM's.
fn fault_reply(fault: &Fault) -> Reply {
    match fault {
        Fault::Throttle { retry_after_s, .. } => json_with(
            429,
            &[("retry-after", retry_after_s.to_string())],
            serde_json::json!({ "error": { "code": "TooManyRequests", "message": "The request is being throttled as the limit has been reached for operation type - Write_30Min." } }),
        ),
        Fault::ServerError { status, .. } => cloud_error(
            *status,
            if *status == 503 { "ServiceUnavailable" } else { "InternalServerError" },
            "The server encountered an internal error. Please retry the request.",
        ),
        _ => cloud_error(
            409,
            "Conflict",
            "The request failed due to conflict with a concurrent request: another operation is in progress on the scale set.",
        ),
    }
}

/// ARM's error body: `{"error":{"code","message"}}`.
fn cloud_error(status: u16, code: &str, message: &str) -> Reply {
    json(
        status,
        serde_json::json!({ "error": { "code": code, "message": message } }),
    )
}

pub(super) fn method_not_allowed(request: &http::Request<Bytes>) -> Reply {
    cloud_error(
        405,
        "MethodNotAllowed",
        &format!(
            "The HTTP method '{}' is not supported for this resource.",
            request.method()
        ),
    )
}

/// `Authorization: Bearer <token issued by our token endpoint>`, as ARM requires.
fn authenticate(
    shared: &Shared,
    state: &State,
    request: &http::Request<Bytes>,
) -> Result<(), Reply> {
    let header = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (code, message) = match header.map(|v| v.strip_prefix("Bearer ")) {
        None => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ),
        Some(None) => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        ),
        Some(Some(token)) if !state.tokens.contains(token) => {
            ("InvalidAuthenticationToken", "The access token is invalid.")
        }
        Some(Some(_)) => return Ok(()),
    };
    let challenge = format!(
        "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"{message}\"",
        shared.origin, shared.config.tenant_id
    );
    Err(json_with(
        401,
        &[("www-authenticate", challenge)],
        serde_json::json!({ "error": { "code": code, "message": message } }),
    ))
}

fn check_api_version(request: &http::Request<Bytes>, supported: &[&str]) -> Result<(), Reply> {
    let Some(version) = query_param(request.uri(), "api-version") else {
        return Err(cloud_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    if supported.contains(&version.as_str()) {
        return Ok(());
    }
    Err(cloud_error(
        400,
        "NoRegisteredProviderFound",
        &format!(
            "No registered resource provider found for location '{LOCATION}' and API version '{version}' for type 'virtualMachineScaleSets'. The supported api-versions are '{}'.",
            supported.join(", ")
        ),
    ))
}

fn subscription_not_found(subscription: &str) -> Reply {
    cloud_error(
        404,
        "SubscriptionNotFound",
        &format!("The subscription '{subscription}' could not be found."),
    )
}

/// The subscription and resource group must be ours; ARM names are case-insensitive.
fn find_group(shared: &Shared, subscription: &str, group: &str) -> Result<(), Reply> {
    let config = &shared.config;
    if !subscription.eq_ignore_ascii_case(&config.subscription_id) {
        return Err(subscription_not_found(subscription));
    }
    if !group.eq_ignore_ascii_case(&config.resource_group) {
        return Err(cloud_error(
            404,
            "ResourceGroupNotFound",
            &format!("Resource group '{group}' could not be found."),
        ));
    }
    Ok(())
}

/// ARM's answer for a resource of the group that does not exist.
fn resource_not_found(resource_type: &str, name: &str, group: &str) -> Reply {
    cloud_error(
        404,
        "ResourceNotFound",
        &format!("The Resource '{resource_type}/{name}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
    )
}

/// The scale set must be ours.
fn find_scale_set(
    shared: &Shared,
    subscription: &str,
    group: &str,
    name: &str,
) -> Result<(), Reply> {
    find_group(shared, subscription, group)?;
    if !name.eq_ignore_ascii_case(&shared.config.vmss_name) {
        return Err(resource_not_found(
            "Microsoft.Compute/virtualMachineScaleSets",
            name,
            group,
        ));
    }
    Ok(())
}

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers`: where every resource of the fake lives.
fn providers(shared: &Shared) -> String {
    let config = &shared.config;
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers",
        config.subscription_id, config.resource_group
    )
}

fn resource_id(shared: &Shared) -> String {
    format!(
        "{}/Microsoft.Compute/virtualMachineScaleSets/{}",
        providers(shared),
        shared.config.vmss_name
    )
}

/// The scale set, shaped like examples/arm/vmss-get.json, as Heimdall's Terraform makes it: a
/// spot scale set in Flexible orchestration whose VMs get a Standard public IP each.
fn scale_set_body(shared: &Shared, state: &State) -> serde_json::Value {
    let provisioning_state = if state.updating() {
        "Updating"
    } else if state.allocation_failed {
        "Failed"
    } else {
        "Succeeded"
    };
    serde_json::json!({
        "name": shared.config.vmss_name,
        "id": resource_id(shared),
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": LOCATION,
        "tags": {},
        "identity": {
            "type": "UserAssigned",
            "userAssignedIdentities": {
                authorization::identity_id(&shared.config): {
                    "principalId": "00000000-0000-0000-0000-00000000eeee",
                    "clientId": "00000000-0000-0000-0000-00000000ffff"
                }
            }
        },
        "sku": { "name": state.size, "tier": "Standard", "capacity": state.capacity },
        "etag": format!("\"{}\"", state.etag),
        "properties": {
            "singlePlacementGroup": false,
            "orchestrationMode": "Flexible",
            "upgradePolicy": { "mode": "Manual" },
            "virtualMachineProfile": {
                "osProfile": {
                    "computerNamePrefix": shared.config.vmss_name,
                    "adminUsername": "heimdall",
                    "linuxConfiguration": { "disablePasswordAuthentication": true }
                },
                "networkProfile": {
                    "networkApiVersion": "2020-11-01",
                    "networkInterfaceConfigurations": [ {
                        "name": "nic",
                        "properties": {
                            "primary": true,
                            "ipConfigurations": [ {
                                "name": "ipconfig",
                                "properties": {
                                    "primary": true,
                                    "subnet": { "id": authorization::subnet_id(&shared.config) },
                                    "publicIPAddressConfiguration": {
                                        "name": "pip",
                                        "sku": { "name": "Standard", "tier": "Regional" },
                                        "properties": { "idleTimeoutInMinutes": 4 }
                                    }
                                }
                            } ]
                        }
                    } ]
                },
                "priority": "Spot",
                "evictionPolicy": "Delete",
                "billingProfile": { "maxPrice": -1 }
            },
            "provisioningState": provisioning_state,
            "platformFaultDomainCount": 1
        }
    })
}

/// `PATCH` the scale set: applies the capacity (and size) at once and starts an operation that
/// finishes after `polls_in_progress` polls. Answers 200 `Updating` with `Azure-AsyncOperation`
/// and `Retry-After`, or (an injected fault) 202 with only a `Location`.
fn patch(
    shared: &std::sync::Arc<Shared>,
    state: &mut State,
    request: &http::Request<Bytes>,
    accepted: bool,
) -> Reply {
    let (capacity, size) = match requested_sku(request, state.capacity) {
        Ok(sku) => sku,
        Err(refusal) => return refusal,
    };
    state.patches.push(Patch {
        capacity,
        size: size.clone(),
        at: std::time::Instant::now(),
    });
    if let Some(size) = size.filter(|s| *s != state.size) {
        state.size = size;
        // A new size makes a new VM: the one that could not be allocated goes.
        if capacity > 0 && state.capacity > 0 {
            set_capacity(shared, state, 0);
        }
    }
    set_capacity(shared, state, capacity);
    let no_capacity = capacity > 0 && state.faults.no_capacity.contains(&state.size);
    let id = start_operation(shared, state, no_capacity);
    let operation_url = format!(
        "{}/subscriptions/{}/providers/Microsoft.Compute/locations/{LOCATION}/operations/{id}?api-version={}",
        shared.origin, shared.config.subscription_id, COMPUTE_API_VERSIONS[0]
    );
    if accepted {
        if let Some(operation) = state.operations.get_mut(&id) {
            operation.location_style = true;
        }
        return Reply::empty(
            202,
            &[
                ("location", format!("{operation_url}&monitor=true")),
                ("retry-after", RETRY_AFTER_S.to_string()),
            ],
        );
    }
    json_with(
        200,
        &[
            ("azure-asyncoperation", operation_url),
            ("retry-after", RETRY_AFTER_S.to_string()),
        ],
        scale_set_body(shared, state),
    )
}

/// `sku.capacity` (absent: unchanged) and `sku.name` from a `VirtualMachineScaleSetUpdate`.
fn requested_sku(
    request: &http::Request<Bytes>,
    current: u32,
) -> Result<(u32, Option<String>), Reply> {
    let (is_json, content_type) = crate::util::json_content_type(request);
    if !is_json {
        return Err(cloud_error(
            415,
            "UnsupportedMediaType",
            &format!("The content media type '{content_type}' is not supported. Only 'application/json' is supported."),
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(request.body()).map_err(|e| {
        cloud_error(
            400,
            "InvalidRequestContent",
            &format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })?;
    let size = match body.pointer("/sku/name") {
        None => None,
        Some(serde_json::Value::String(name)) if name.starts_with("Standard_") => {
            Some(name.clone())
        }
        Some(other) => {
            return Err(cloud_error(
                400,
                "InvalidParameter",
                &format!("The value {other} of parameter 'sku.name' is not a valid VM size."),
            ))
        }
    };
    let Some(value) = body.pointer("/sku/capacity") else {
        return Ok((current, size));
    };
    let capacity = value
        .as_u64()
        .filter(|n| *n <= MAX_CAPACITY)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            cloud_error(
                400,
                "InvalidParameter",
                &format!("The value {value} of parameter 'sku.capacity' is out of range. The value must be between 0 and {MAX_CAPACITY}, inclusive."),
            )
        })?;
    Ok((capacity, size))
}

/// Capacity takes effect at once: going to 0 deallocates the VM now; going up from 0 makes a
/// new instance (it boots once the operation has succeeded).
pub(super) fn set_capacity(shared: &Shared, state: &mut State, capacity: u32) {
    let previous = state.capacity;
    state.capacity = capacity;
    state.etag += 1;
    if capacity == 0 {
        state.instance_id = None;
        if let Some(boot) = state.boot.take() {
            boot.abort();
        }
        shared.set_vm(VmState::Deallocated);
    } else if previous == 0 {
        state.instance_id = Some(state.next_instance_id);
        state.next_instance_id += 1;
        state.allocation_failed = false;
    }
}

/// A new operation preempts the one still running, as Compute does.
fn start_operation(shared: &Shared, state: &mut State, no_capacity: bool) -> String {
    if let Some(previous) = state
        .current_operation
        .take()
        .and_then(|id| state.operations.get_mut(&id))
    {
        if previous.end.is_none() {
            previous.end = Some((now(), OperationEnd::Preempted));
        }
    }
    let id = guid();
    state.operations.insert(
        id.clone(),
        Operation {
            start_time: now(),
            polls_left: shared.config.polls_in_progress,
            end: None,
            no_capacity,
            location_style: false,
        },
    );
    state.current_operation = Some(id.clone());
    id
}

/// `GET` an operation: `InProgress` (with `Retry-After`) until its polls are used up, then
/// `Succeeded` with an `endTime` (or `Failed` with `AllocationFailed` on a size without spot
/// capacity); success of the latest update boots the VM if needed. A `Location` URL answers
/// 202 while running and 200 with no status when done.
fn poll(shared: &std::sync::Arc<Shared>, state: &mut State, id: &str) -> Reply {
    let Some(operation) = state.operations.get_mut(id) else {
        return cloud_error(
            404,
            "NotFound",
            &format!("The operation '{id}' could not be found."),
        );
    };
    let location_style = operation.location_style;
    if operation.end.is_none() {
        if operation.polls_left > 0 {
            operation.polls_left -= 1;
            if location_style {
                return Reply::empty(202, &[("retry-after", RETRY_AFTER_S.to_string())]);
            }
            let body = serde_json::json!({ "startTime": operation.start_time, "status": "InProgress", "name": id });
            return json_with(200, &[("retry-after", RETRY_AFTER_S.to_string())], body);
        }
        let current = state.current_operation.as_deref() == Some(id);
        if operation.no_capacity {
            operation.end = Some((now(), OperationEnd::AllocationFailed));
            state.allocation_failed |= current;
        } else {
            operation.end = Some((now(), OperationEnd::Succeeded));
            if current && state.capacity > 0 {
                schedule_boot(shared, state);
            }
        }
    }
    if location_style {
        return json(200, serde_json::json!({}));
    }
    json(200, ended_operation_body(state, id))
}

fn ended_operation_body(state: &State, id: &str) -> serde_json::Value {
    let Some(Operation {
        start_time,
        end: Some((end_time, end)),
        ..
    }) = state.operations.get(id)
    else {
        return serde_json::Value::Null;
    };
    let mut body = serde_json::json!({ "startTime": start_time, "endTime": end_time, "name": id });
    match end {
        OperationEnd::Succeeded => body["status"] = "Succeeded".into(),
        OperationEnd::Preempted => {
            body["status"] = "Canceled".into();
            body["error"] = serde_json::json!({
                "code": "OperationPreempted",
                "message": "Operation execution has been preempted by a more recent operation."
            });
        }
        OperationEnd::AllocationFailed => {
            body["status"] = "Failed".into();
            body["error"] = serde_json::json!({
                "code": "AllocationFailed",
                "message": "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance"
            });
        }
    }
    body
}
