//! Azure RBAC for the app's service principal: the role assignments it holds (by default those
//! infra/identity.tf makes, one per scope, with the actions `heimdall_azure_arm::calls` lists),
//! the 403 `AuthorizationFailed` ARM answers a call they do not allow, and
//! `GET {resource}/providers/Microsoft.Authorization/permissions`, which lists them.
//!
//! Actions are matched exactly, without case: the fake's roles name actions, not wildcards.

use bytes::Bytes;
use heimdall_azure_arm::calls::{required_actions, Scope};

use super::{ArmFakeConfig, Shared, State};
use crate::util::{json, query_param, Reply};

/// The api-versions of Microsoft.Authorization's permissions list.
const API_VERSIONS: &[&str] = &["2015-07-01", "2022-04-01"];

/// The object id Entra gave the fake's service principal, for ARM's messages.
const PRINCIPAL_OBJECT_ID: &str = "00000000-0000-0000-0000-00000000dddd";

/// One role assignment: where it sits, and the actions of its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Grant {
    scope: String,
    actions: Vec<String>,
}

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers`.
fn providers(config: &ArmFakeConfig) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers",
        config.subscription_id, config.resource_group
    )
}

/// The subnet the scale set places its VMs in.
pub(super) fn subnet_id(config: &ArmFakeConfig) -> String {
    format!(
        "{}/Microsoft.Network/virtualNetworks/heimdall-vnet/subnets/vm",
        providers(config)
    )
}

/// The user-assigned identity the scale set gives its VMs.
pub(super) fn identity_id(config: &ArmFakeConfig) -> String {
    format!(
        "{}/Microsoft.ManagedIdentity/userAssignedIdentities/{}-vm",
        providers(config),
        config.vmss_name
    )
}

/// What a deployment made by infra/ grants: each action the scaler needs, at its scope.
pub(super) fn deployed_grants(config: &ArmFakeConfig) -> Vec<Grant> {
    let mut grants: Vec<Grant> = Vec::new();
    for (action, scope) in required_actions() {
        let scope = match scope {
            Scope::ScaleSet => format!(
                "{}/Microsoft.Compute/virtualMachineScaleSets/{}",
                providers(config),
                config.vmss_name
            ),
            Scope::ResourceGroup => format!(
                "/subscriptions/{}/resourceGroups/{}",
                config.subscription_id, config.resource_group
            ),
            Scope::Subscription => format!("/subscriptions/{}", config.subscription_id),
            Scope::VmSubnet => subnet_id(config),
            Scope::VmIdentity => identity_id(config),
        };
        match grants.iter_mut().find(|g| g.scope == scope) {
            Some(grant) => grant.actions.push(action.to_owned()),
            None => grants.push(Grant {
                scope,
                actions: vec![action.to_owned()],
            }),
        }
    }
    grants
}

/// Takes `action` out of every role (a role definition edited, or a role never assigned).
pub(super) fn revoke(state: &mut State, action: &str) {
    for grant in &mut state.grants {
        grant.actions.retain(|a| !a.eq_ignore_ascii_case(action));
    }
}

/// Whether `scope` (a resource id, or a path below one) is `within` or under it, segment by
/// segment and without case, the way role assignments reach down.
fn reaches(grant_scope: &str, scope: &str) -> bool {
    let grant: Vec<&str> = grant_scope.split('/').filter(|s| !s.is_empty()).collect();
    let target: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    grant.len() <= target.len()
        && grant
            .iter()
            .zip(&target)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// The grants that reach `scope`.
fn reaching<'a>(state: &'a State, scope: &'a str) -> impl Iterator<Item = &'a Grant> + 'a {
    state
        .grants
        .iter()
        .filter(move |g| reaches(&g.scope, scope))
}

/// ARM's 403 when no role assignment that reaches `scope` allows `action`.
pub(super) fn authorize(
    shared: &Shared,
    state: &State,
    action: &str,
    scope: &str,
) -> Result<(), Reply> {
    let allowed =
        reaching(state, scope).any(|g| g.actions.iter().any(|a| a.eq_ignore_ascii_case(action)));
    if allowed {
        return Ok(());
    }
    Err(json(
        403,
        serde_json::json!({ "error": {
            "code": "AuthorizationFailed",
            "message": format!(
                "The client '{}' with object id '{PRINCIPAL_OBJECT_ID}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                shared.config.client_id
            ),
        } }),
    ))
}

/// The resource id of a `…/providers/Microsoft.Authorization/permissions` path, if it is one.
pub(super) fn permissions_target(segments: &[&str]) -> Option<String> {
    let [resource @ .., p, ns, kind] = segments else {
        return None;
    };
    let is = |segment: &str, name: &str| segment.eq_ignore_ascii_case(name);
    (is(p, "providers") && is(ns, "Microsoft.Authorization") && is(kind, "permissions"))
        .then(|| format!("/{}", resource.join("/")))
}

/// `GET {resource}/providers/Microsoft.Authorization/permissions`: one entry per role
/// assignment that reaches the resource, as ARM lists them.
pub(super) fn permissions(
    shared: &Shared,
    state: &State,
    resource: &str,
    request: &http::Request<Bytes>,
) -> Reply {
    if *request.method() != http::Method::GET {
        return super::compute::method_not_allowed(request);
    }
    match query_param(request.uri(), "api-version") {
        Some(version) if API_VERSIONS.contains(&version.as_str()) => {}
        _ => {
            return json(
                400,
                serde_json::json!({ "error": {
                    "code": "InvalidApiVersionParameter",
                    "message": format!("The api-version is missing or invalid. The supported versions are '{}'.", API_VERSIONS.join(",")),
                } }),
            )
        }
    }
    let subscription = format!("/subscriptions/{}", shared.config.subscription_id);
    if !reaches(&subscription, resource) {
        return json(
            404,
            serde_json::json!({ "error": {
                "code": "SubscriptionNotFound",
                "message": format!("The subscription of '{resource}' could not be found."),
            } }),
        );
    }
    let value: Vec<serde_json::Value> = reaching(state, resource)
        .filter(|g| !g.actions.is_empty())
        .map(|g| {
            serde_json::json!({
                "actions": g.actions,
                "notActions": [],
                "dataActions": [],
                "notDataActions": [],
            })
        })
        .collect();
    json(200, serde_json::json!({ "value": value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_reach_down_by_whole_segments() {
        assert!(reaches(
            "/subscriptions/s",
            "/subscriptions/S/resourceGroups/g"
        ));
        assert!(reaches(
            "/subscriptions/s/resourceGroups/g",
            "/subscriptions/s/resourceGroups/g"
        ));
        assert!(!reaches(
            "/subscriptions/s/resourceGroups/g",
            "/subscriptions/s/resourceGroups/g2"
        ));
        assert!(!reaches(
            "/subscriptions/s/resourceGroups/g",
            "/subscriptions/s"
        ));
    }

    #[test]
    fn the_deployment_grants_every_action_once() {
        let grants = deployed_grants(&ArmFakeConfig::default());
        let count: usize = grants.iter().map(|g| g.actions.len()).sum();
        assert_eq!(count, required_actions().len());
        assert_eq!(grants.len(), 5, "one role assignment per scope: {grants:?}");
    }

    #[test]
    fn finds_the_permissions_path() {
        let segments = [
            "subscriptions",
            "s",
            "resourceGroups",
            "g",
            "providers",
            "microsoft.authorization",
            "permissions",
        ];
        assert_eq!(
            permissions_target(&segments).as_deref(),
            Some("/subscriptions/s/resourceGroups/g")
        );
        assert_eq!(permissions_target(&["subscriptions", "s"]), None);
    }
}
