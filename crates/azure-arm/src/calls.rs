//! Every Azure Resource Manager call the scaler makes, with the action Azure's RBAC checks for
//! it and the narrowest scope that grants it. This is the one list of the scaler's permissions:
//! the tests below hold the request builders of this crate to it, and `infra/policy` holds the
//! roles the deployment gives the app's service principal (`infra/identity.tf`) to it.

/// Where a role assignment must sit for an action to cover the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The game server's scale set only.
    ScaleSet,
    /// The resource group that holds the scale set and the VMs, NICs and IPs it creates.
    ResourceGroup,
    /// The subscription: Compute's operation status URLs are not under any resource.
    Subscription,
    /// The subnet the scale set places its VMs in.
    VmSubnet,
    /// The user-assigned identity the scale set gives its VMs.
    VmIdentity,
}

/// One ARM call of the scaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmCall {
    pub method: &'static str,
    /// The path, `{name}` for each variable segment.
    pub path: &'static str,
    /// The RBAC action Azure checks on the caller.
    pub action: &'static str,
    pub scope: Scope,
}

const SCALE_SET: &str = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}";

/// The calls, one entry each.
pub const SCALER_CALLS: &[ArmCall] = &[
    // `ScaleSet::get_request`: capacity and provisioning state.
    ArmCall {
        method: "GET",
        path: SCALE_SET,
        action: "Microsoft.Compute/virtualMachineScaleSets/read",
        scope: Scope::ScaleSet,
    },
    // `ScaleSet::set_capacity_request`: capacity, and the size (`sku.name`) when a spot size has
    // no capacity and the next one is tried; the same write.
    ArmCall {
        method: "PATCH",
        path: SCALE_SET,
        action: "Microsoft.Compute/virtualMachineScaleSets/write",
        scope: Scope::ScaleSet,
    },
    // `OperationUrl::request`: the `Azure-AsyncOperation` of a PATCH.
    ArmCall {
        method: "GET",
        path: "/subscriptions/{subscription}/providers/Microsoft.Compute/locations/{location}/operations/{operation}",
        action: "Microsoft.Compute/locations/operations/read",
        scope: Scope::Subscription,
    },
    // `ScaleSet::vm_list_request`: the Flexible scale set's VMs.
    ArmCall {
        method: "GET",
        path: "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines",
        action: "Microsoft.Compute/virtualMachines/read",
        scope: Scope::ResourceGroup,
    },
    // `ScaleSet::resource_request` on the VM's NIC.
    ArmCall {
        method: "GET",
        path: "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network/networkInterfaces/{name}",
        action: "Microsoft.Network/networkInterfaces/read",
        scope: Scope::ResourceGroup,
    },
    // `ScaleSet::resource_request` on the NIC's public IP.
    ArmCall {
        method: "GET",
        path: "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network/publicIPAddresses/{name}",
        action: "Microsoft.Network/publicIPAddresses/read",
        scope: Scope::ResourceGroup,
    },
];

/// What Azure also checks on the caller of a scale-set write that creates VMs (linked access
/// checks, `LinkedAuthorizationFailed` when missing): the existing resources the new VMs use.
/// The NICs and IPs the scale set creates are not checked this way; a public IP prefix would be
/// (`publicIPPrefixes/join/action`), which is one reason the deployment uses none.
pub const SCALE_OUT_LINKED_ACTIONS: &[(&str, Scope)] = &[
    (
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        Scope::VmSubnet,
    ),
    (
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        Scope::VmIdentity,
    ),
];

/// Every action the scaler needs, each with its scope: the calls' and the linked checks'.
pub fn required_actions() -> Vec<(&'static str, Scope)> {
    SCALER_CALLS
        .iter()
        .map(|call| (call.action, call.scope))
        .chain(SCALE_OUT_LINKED_ACTIONS.iter().copied())
        .collect()
}

impl ArmCall {
    /// Whether a request is this call: same method, same path with any value in each `{…}`
    /// segment (ARM compares the fixed parts without case).
    pub fn matches(&self, request: &http::Request<Vec<u8>>) -> bool {
        let pattern: Vec<&str> = self.path.split('/').collect();
        let path: Vec<&str> = request.uri().path().split('/').collect();
        request.method().as_str() == self.method
            && pattern.len() == path.len()
            && pattern.iter().zip(&path).all(|(want, got)| {
                (want.starts_with('{') && !got.is_empty()) || want.eq_ignore_ascii_case(got)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccessToken, OperationUrl, ScaleSet, NETWORK_API_VERSION};

    const ARM: &str = "https://management.azure.com";

    /// One request of each kind the crate builds.
    fn every_request() -> Vec<http::Request<Vec<u8>>> {
        let token = AccessToken::new("tok", 3599);
        let set = ScaleSet::new(ARM, "sub", "rg", "vmss").unwrap();
        let operation = OperationUrl::parse(
            &format!("{ARM}/subscriptions/sub/providers/Microsoft.Compute/locations/westeurope/operations/op1?api-version=2024-11-01"),
            ARM,
        )
        .unwrap();
        let group = "/subscriptions/sub/resourceGroups/rg/providers";
        vec![
            set.get_request(&token).unwrap(),
            set.set_capacity_request(&token, 1, Some("Standard_D2s_v3"))
                .unwrap(),
            operation.request(&token).unwrap(),
            set.vm_list_request(&token).unwrap(),
            set.resource_request(
                &token,
                &format!("{group}/Microsoft.Network/networkInterfaces/vmss_1a-nic"),
                NETWORK_API_VERSION,
            )
            .unwrap(),
            set.resource_request(
                &token,
                &format!("{group}/Microsoft.Network/publicIPAddresses/vmss_1a-pip"),
                NETWORK_API_VERSION,
            )
            .unwrap(),
        ]
    }

    #[test]
    fn every_request_is_listed_once_and_every_entry_is_made() {
        let requests = every_request();
        for request in &requests {
            let matching = SCALER_CALLS.iter().filter(|c| c.matches(request)).count();
            assert_eq!(
                matching,
                1,
                "{} {} must match exactly one entry of SCALER_CALLS",
                request.method(),
                request.uri().path()
            );
        }
        for call in SCALER_CALLS {
            assert!(
                requests.iter().any(|r| call.matches(r)),
                "{} {} is listed but no request builder makes it",
                call.method,
                call.path
            );
        }
    }

    #[test]
    fn matching_is_by_method_and_fixed_segments() {
        let call = &SCALER_CALLS[0];
        let request = |method: &str, path: &str| {
            http::Request::builder()
                .method(method)
                .uri(format!("{ARM}{path}"))
                .body(Vec::new())
                .unwrap()
        };
        let path = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachinescalesets/v";
        assert!(call.matches(&request("GET", path)));
        assert!(!call.matches(&request("DELETE", path)));
        assert!(!call.matches(&request("GET", &format!("{path}/virtualMachines"))));
        assert!(!call.matches(&request("GET", "/subscriptions/s/resourceGroups/rg")));
    }
}
