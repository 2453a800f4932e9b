//! What a Flexible scale set creates in its resource group for each VM: the VM itself, its NIC
//! and its Standard public IP, each an ordinary resource with a name Azure chooses. The VM is
//! listed from the scale-up on (`Creating` while its update runs); its IP has an address once it
//! is allocated. Bodies follow the Compute and Network examples: a VM references its NIC, the
//! NIC's IP configuration references the public IP (examples/arm/vmss-network-interface-list.json
//! and vmss-public-ip-list.json show the same fields).

use bytes::Bytes;

use super::{cloud_error, providers, resource_id, resource_not_found, LOCATION};
use crate::arm::{Shared, State};
use crate::util::{json, query_param, Reply};

/// The Network resource types the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NetworkKind {
    NetworkInterface,
    PublicIp,
}

impl NetworkKind {
    pub(super) fn of(segment: &str) -> Option<Self> {
        if segment.eq_ignore_ascii_case("networkInterfaces") {
            Some(Self::NetworkInterface)
        } else if segment.eq_ignore_ascii_case("publicIPAddresses") {
            Some(Self::PublicIp)
        } else {
            None
        }
    }

    pub(super) fn resource_type(self) -> &'static str {
        match self {
            Self::NetworkInterface => "Microsoft.Network/networkInterfaces",
            Self::PublicIp => "Microsoft.Network/publicIPAddresses",
        }
    }
}

/// The VM of the current instance, if one exists, with the names of what it owns.
struct Vm {
    name: String,
    nic: String,
    ip: String,
    /// The update that creates it has finished: it runs and has its address.
    allocated: bool,
}

fn current_vm(shared: &Shared, state: &State) -> Option<Vm> {
    let instance = state.instance_id.filter(|_| state.capacity > 0)?;
    let name = shared.vm_name(instance);
    Some(Vm {
        nic: format!("{name}-nic"),
        ip: format!("{name}-nic-ipconfig-pip"),
        name,
        allocated: state.allocated(),
    })
}

/// `GET …/virtualMachines?$filter='virtualMachineScaleSet/id' eq '{id}'`: the VMs of the group,
/// narrowed to one scale set. `VirtualMachines_List` allows no other filter.
pub(super) fn vm_list(shared: &Shared, state: &State, request: &http::Request<Bytes>) -> Reply {
    let ours = match query_param(request.uri(), "$filter") {
        None => true,
        Some(filter) => match scale_set_filter(&filter) {
            Some(id) => id.eq_ignore_ascii_case(&resource_id(shared)),
            None => {
                return cloud_error(
                    400,
                    "InvalidParameter",
                    &format!("The value '{filter}' of parameter '$filter' is not valid. The allowed value is 'virtualMachineScaleSet/id' eq '<scale set resource id>'."),
                )
            }
        },
    };
    let value: Vec<serde_json::Value> = current_vm(shared, state)
        .filter(|_| ours)
        .map(|vm| vm_body(shared, &vm))
        .into_iter()
        .collect();
    json(200, serde_json::json!({ "value": value }))
}

/// The scale set id of `'virtualMachineScaleSet/id' eq '<id>'`.
fn scale_set_filter(filter: &str) -> Option<&str> {
    let (property, value) = filter.split_once(" eq ")?;
    let property = property.trim();
    if !property.eq_ignore_ascii_case("'virtualMachineScaleSet/id'") {
        return None;
    }
    value
        .trim()
        .strip_prefix('\'')?
        .strip_suffix('\'')
        .filter(|id| !id.is_empty())
}

fn vm_body(shared: &Shared, vm: &Vm) -> serde_json::Value {
    let providers = providers(shared);
    serde_json::json!({
        "name": vm.name,
        "id": format!("{providers}/Microsoft.Compute/virtualMachines/{}", vm.name),
        "type": "Microsoft.Compute/virtualMachines",
        "location": LOCATION,
        "properties": {
            "vmId": "5c3a1d8e-7f45-4d2b-9a55-2f0e6b1c9d3a",
            "hardwareProfile": { "vmSize": "Standard_D2as_v4" },
            "networkProfile": { "networkInterfaces": [ {
                "id": format!("{providers}/Microsoft.Network/networkInterfaces/{}", vm.nic),
                "properties": { "primary": true }
            } ] },
            "virtualMachineScaleSet": { "id": resource_id(shared) },
            "priority": "Spot",
            "evictionPolicy": "Delete",
            "billingProfile": { "maxPrice": -1 },
            "provisioningState": if vm.allocated { "Succeeded" } else { "Creating" }
        }
    })
}

/// `GET` a NIC or public IP of the current VM; anything else is not found.
pub(super) fn network_resource(
    shared: &Shared,
    state: &State,
    kind: NetworkKind,
    name: &str,
) -> Reply {
    let vm = current_vm(shared, state);
    let body = vm.and_then(|vm| match kind {
        NetworkKind::NetworkInterface if name.eq_ignore_ascii_case(&vm.nic) => {
            Some(nic_body(shared, &vm))
        }
        NetworkKind::PublicIp if name.eq_ignore_ascii_case(&vm.ip) => Some(ip_body(shared, &vm)),
        _ => None,
    });
    match body {
        Some(body) => json(200, body),
        None => resource_not_found(kind.resource_type(), name, &shared.config.resource_group),
    }
}

fn nic_body(shared: &Shared, vm: &Vm) -> serde_json::Value {
    let providers = providers(shared);
    let nic_id = format!("{providers}/Microsoft.Network/networkInterfaces/{}", vm.nic);
    serde_json::json!({
        "name": vm.nic,
        "id": nic_id,
        "location": LOCATION,
        "properties": {
            "provisioningState": "Succeeded",
            "ipConfigurations": [ {
                "name": "ipconfig",
                "id": format!("{nic_id}/ipConfigurations/ipconfig"),
                "properties": {
                    "provisioningState": "Succeeded",
                    "privateIPAddress": "10.42.0.4",
                    "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": {
                        "id": format!("{providers}/Microsoft.Network/publicIPAddresses/{}", vm.ip)
                    },
                    "subnet": { "id": crate::arm::authorization::subnet_id(&shared.config) },
                    "primary": true,
                    "privateIPAddressVersion": "IPv4"
                }
            } ],
            "primary": true,
            "virtualMachine": {
                "id": format!("{providers}/Microsoft.Compute/virtualMachines/{}", vm.name)
            }
        }
    })
}

fn ip_body(shared: &Shared, vm: &Vm) -> serde_json::Value {
    let providers = providers(shared);
    let mut body = serde_json::json!({
        "name": vm.ip,
        "id": format!("{providers}/Microsoft.Network/publicIPAddresses/{}", vm.ip),
        "location": LOCATION,
        "sku": { "name": "Standard", "tier": "Regional" },
        "properties": {
            "provisioningState": "Succeeded",
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": "IPv4",
            "ipConfiguration": {
                "id": format!("{providers}/Microsoft.Network/networkInterfaces/{}/ipConfigurations/ipconfig", vm.nic)
            },
            "idleTimeoutInMinutes": 4
        }
    });
    if vm.allocated {
        body["properties"]["ipAddress"] = shared.config.public_ip.clone().into();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_the_scale_set_filter() {
        assert_eq!(
            scale_set_filter("'virtualMachineScaleSet/id' eq '/subscriptions/s/x'"),
            Some("/subscriptions/s/x")
        );
        assert_eq!(
            scale_set_filter("'VirtualMachineScaleSet/Id' eq  '/x' "),
            Some("/x")
        );
        for bad in [
            "location eq 'westeurope'",
            "'virtualMachineScaleSet/id' eq ''",
            "'virtualMachineScaleSet/id' eq /x",
            "",
        ] {
            assert_eq!(scale_set_filter(bad), None, "{bad}");
        }
    }
}
