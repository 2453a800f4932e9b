//! The game VM of a Flexible scale set and its public IP.
//!
//! In Flexible orchestration the VMs, their NICs and their public IPs are ordinary resources of
//! the resource group (not children of the scale set), named by Azure. So the lookup follows
//! references, one GET each:
//! 1. the scale set's VMs: `GET …/providers/Microsoft.Compute/virtualMachines?$filter=
//!    'virtualMachineScaleSet/id' eq '<scale set id>'` (Compute, `VirtualMachines_List`);
//! 2. the VM's primary NIC, by the id in `properties.networkProfile.networkInterfaces`
//!    (Network, `NetworkInterfaces_Get`);
//! 3. the public IP, by the id in the NIC's primary IP configuration
//!    (`properties.ipConfigurations[].properties.publicIPAddress.id`; `PublicIPAddresses_Get`),
//!    whose `properties.ipAddress` players join.
//!
//! [`InstanceLookup`] walks these steps without I/O: the shell sends each request it asks for
//! and hands back the answer.

use serde::Deserialize;

use crate::error::{cloud_error, parse_json, ArmError};
use crate::scaler_api::InstanceReply;
use crate::vmss::ScaleSet;
use crate::{AccessToken, NETWORK_API_VERSION};

/// Where a lookup stands: what to ask next, or what it found.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Vms,
    Nic { vm_name: String, nic_id: String },
    PublicIp { vm_name: String, ip_id: String },
    Done(InstanceReply),
}

/// Finds the scale set's VM and its public IP in at most three requests.
#[derive(Debug)]
pub struct InstanceLookup<'a> {
    scale_set: &'a ScaleSet,
    step: Step,
}

impl<'a> InstanceLookup<'a> {
    pub fn new(scale_set: &'a ScaleSet) -> Self {
        Self {
            scale_set,
            step: Step::Vms,
        }
    }

    /// The next request to send, or `None` when the lookup is done.
    pub fn request(&self, token: &AccessToken) -> Result<Option<http::Request<Vec<u8>>>, ArmError> {
        let request = match &self.step {
            Step::Vms => self.scale_set.vm_list_request(token)?,
            Step::Nic { nic_id: id, .. } | Step::PublicIp { ip_id: id, .. } => self
                .scale_set
                .resource_request(token, id, NETWORK_API_VERSION)?,
            Step::Done(_) => return Ok(None),
        };
        Ok(Some(request))
    }

    /// Takes the answer to the last [`InstanceLookup::request`].
    pub fn on_response(&mut self, response: &http::Response<Vec<u8>>) -> Result<(), ArmError> {
        let step = std::mem::replace(&mut self.step, Step::Done(InstanceReply::default()));
        self.step = match step {
            Step::Vms => match game_vm(parse_vm_list(response)?) {
                None => Step::Done(InstanceReply::default()),
                Some(Vm {
                    name,
                    nic_id: Some(nic_id),
                    ..
                }) => Step::Nic {
                    vm_name: name,
                    nic_id,
                },
                Some(Vm {
                    name, nic_id: None, ..
                }) => Step::Done(named(name, None)),
            },
            Step::Nic { vm_name, .. } => match parse_nic(response)? {
                Some(ip_id) => Step::PublicIp { vm_name, ip_id },
                None => Step::Done(named(vm_name, None)),
            },
            Step::PublicIp { vm_name, .. } => {
                Step::Done(named(vm_name, parse_public_ip(response)?))
            }
            done @ Step::Done(_) => done,
        };
        Ok(())
    }

    /// What was found: both `None` when no VM exists, `public_ip: None` while it has none yet.
    pub fn reply(&self) -> Option<&InstanceReply> {
        match &self.step {
            Step::Done(reply) => Some(reply),
            _ => None,
        }
    }
}

fn named(vm_name: String, public_ip: Option<String>) -> InstanceReply {
    InstanceReply {
        vm_name: Some(vm_name),
        public_ip,
    }
}

/// A VM of the list, with what the lookup needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub name: String,
    /// The primary NIC's resource id (the only one, or the one marked `primary`).
    pub nic_id: Option<String>,
    pub deleting: bool,
}

/// The VM players should join: the scale set runs at most one, but for a moment during a
/// scale-in the one being deleted may still be listed.
fn game_vm(vms: Vec<Vm>) -> Option<Vm> {
    let (deleting, live): (Vec<Vm>, Vec<Vm>) = vms.into_iter().partition(|vm| vm.deleting);
    live.into_iter().next().or(deleting.into_iter().next())
}

#[derive(Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
}

#[derive(Deserialize)]
struct VmEntry {
    name: Option<String>,
    properties: Option<VmProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VmProperties {
    network_profile: Option<NetworkProfile>,
    provisioning_state: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NetworkProfile {
    #[serde(default)]
    network_interfaces: Vec<Reference>,
}

/// `{"id": "…", "properties": {"primary": true}}`: a reference to another resource.
#[derive(Deserialize)]
struct Reference {
    id: Option<String>,
    properties: Option<Primary>,
}

#[derive(Deserialize)]
struct Primary {
    primary: Option<bool>,
}

/// Of several references, the primary one; a single one is primary by definition.
fn primary<T>(items: Vec<T>, is_primary: impl Fn(&T) -> bool) -> Option<T> {
    if items.len() == 1 {
        return items.into_iter().next();
    }
    items.into_iter().find(is_primary)
}

fn marked_primary(primary: &Option<Primary>) -> bool {
    primary.as_ref().and_then(|p| p.primary) == Some(true)
}

/// Reads the answer to [`ScaleSet::vm_list_request`]. Only the first page is read: the scale
/// set runs at most one VM.
pub fn parse_vm_list(response: &http::Response<Vec<u8>>) -> Result<Vec<Vm>, ArmError> {
    if response.status() != http::StatusCode::OK {
        return Err(cloud_error(response));
    }
    let body: List<VmEntry> = parse_json(response, "virtual machine list")?;
    Ok(body
        .value
        .into_iter()
        .filter_map(|entry| {
            let properties = entry.properties;
            let deleting = properties
                .as_ref()
                .and_then(|p| p.provisioning_state.as_deref())
                .is_some_and(|state| state.eq_ignore_ascii_case("Deleting"));
            let nics = properties
                .and_then(|p| p.network_profile)
                .map(|n| n.network_interfaces)
                .unwrap_or_default();
            let nic_id =
                primary(nics, |nic| marked_primary(&nic.properties)).and_then(|nic| nic.id);
            Some(Vm {
                name: entry.name.filter(|n| !n.is_empty())?,
                nic_id,
                deleting,
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct Nic {
    properties: Option<NicProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NicProperties {
    #[serde(default)]
    ip_configurations: Vec<IpConfiguration>,
}

#[derive(Deserialize)]
struct IpConfiguration {
    properties: Option<IpConfigurationProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IpConfigurationProperties {
    primary: Option<bool>,
    #[serde(rename = "publicIPAddress")]
    public_ip_address: Option<Reference>,
}

/// Reads a NIC: the public IP's resource id of its primary IP configuration, if it has one.
pub fn parse_nic(response: &http::Response<Vec<u8>>) -> Result<Option<String>, ArmError> {
    if response.status() != http::StatusCode::OK {
        return Err(cloud_error(response));
    }
    let nic: Nic = parse_json(response, "network interface")?;
    let configurations = nic
        .properties
        .map(|p| p.ip_configurations)
        .unwrap_or_default();
    let is_primary =
        |c: &IpConfiguration| c.properties.as_ref().and_then(|p| p.primary) == Some(true);
    Ok(primary(configurations, is_primary)
        .and_then(|c| c.properties)
        .and_then(|p| p.public_ip_address)
        .and_then(|ip| ip.id))
}

#[derive(Deserialize)]
struct PublicIpBody {
    properties: Option<PublicIpProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicIpProperties {
    ip_address: Option<String>,
}

/// Reads a public IP: its address, once Azure has assigned one.
pub fn parse_public_ip(response: &http::Response<Vec<u8>>) -> Result<Option<String>, ArmError> {
    if response.status() != http::StatusCode::OK {
        return Err(cloud_error(response));
    }
    let body: PublicIpBody = parse_json(response, "public IP address")?;
    Ok(body
        .properties
        .and_then(|p| p.ip_address)
        .filter(|ip| !ip.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{response, response_body};

    const ARM: &str = "https://management.azure.com";
    const RG: &str = "/subscriptions/subid/resourceGroups/rg1/providers";

    fn scale_set() -> ScaleSet {
        ScaleSet::new(ARM, "subid", "rg1", "vmss1").unwrap()
    }

    fn token() -> AccessToken {
        AccessToken::new("tok", 3599)
    }

    fn ok(body: serde_json::Value) -> http::Response<Vec<u8>> {
        response(200, &[], serde_json::to_vec(&body).unwrap())
    }

    /// A `VirtualMachines_List` answer, shaped like the Compute examples: a Flexible member
    /// names its scale set and references its NIC.
    fn vm_list(vms: &[(&str, &str)]) -> serde_json::Value {
        let value: Vec<serde_json::Value> = vms
            .iter()
            .map(|(name, state)| {
                serde_json::json!({
                    "name": name,
                    "id": format!("{RG}/Microsoft.Compute/virtualMachines/{name}"),
                    "type": "Microsoft.Compute/virtualMachines",
                    "location": "westeurope",
                    "properties": {
                        "vmId": "0f47b100-583c-48e3-a4c0-aefc2c9bbcc1",
                        "hardwareProfile": { "vmSize": "Standard_D2as_v4" },
                        "networkProfile": { "networkInterfaces": [ {
                            "id": format!("{RG}/Microsoft.Network/networkInterfaces/{name}-nic"),
                            "properties": { "primary": true }
                        } ] },
                        "virtualMachineScaleSet": { "id": format!("{RG}/Microsoft.Compute/virtualMachineScaleSets/vmss1") },
                        "priority": "Spot",
                        "provisioningState": state
                    }
                })
            })
            .collect();
        serde_json::json!({ "value": value })
    }

    /// A `NetworkInterfaces_Get` answer, shaped like the NIC entries of
    /// examples/arm/vmss-network-interface-list.json.
    fn nic(public_ip: Option<&str>) -> serde_json::Value {
        let mut configuration = serde_json::json!({
            "name": "ipconfig",
            "id": format!("{RG}/Microsoft.Network/networkInterfaces/vm-nic/ipConfigurations/ipconfig"),
            "properties": {
                "provisioningState": "Succeeded",
                "privateIPAddress": "10.42.0.4",
                "privateIPAllocationMethod": "Dynamic",
                "subnet": { "id": "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet/subnets/vm" },
                "primary": true,
                "privateIPAddressVersion": "IPv4"
            }
        });
        if let Some(id) = public_ip {
            configuration["properties"]["publicIPAddress"] = serde_json::json!({ "id": id });
        }
        serde_json::json!({
            "name": "vm-nic",
            "id": format!("{RG}/Microsoft.Network/networkInterfaces/vm-nic"),
            "properties": {
                "provisioningState": "Succeeded",
                "ipConfigurations": [configuration],
                "primary": true,
                "virtualMachine": { "id": format!("{RG}/Microsoft.Compute/virtualMachines/vmss1_1a2b3c4d") }
            }
        })
    }

    /// A `PublicIPAddresses_Get` answer, shaped like the entries of
    /// examples/arm/vmss-public-ip-list.json, with the Standard SKU the scale set asks for.
    fn public_ip(address: Option<&str>) -> serde_json::Value {
        let mut body = serde_json::json!({
            "name": "vm-pip",
            "id": format!("{RG}/Microsoft.Network/publicIPAddresses/vm-pip"),
            "location": "westeurope",
            "sku": { "name": "Standard", "tier": "Regional" },
            "properties": {
                "provisioningState": "Succeeded",
                "publicIPAddressVersion": "IPv4",
                "publicIPAllocationMethod": "Static",
                "idleTimeoutInMinutes": 4,
                "ipConfiguration": { "id": format!("{RG}/Microsoft.Network/networkInterfaces/vm-nic/ipConfigurations/ipconfig") }
            }
        });
        if let Some(address) = address {
            body["properties"]["ipAddress"] = address.into();
        }
        body
    }

    fn run(answers: Vec<http::Response<Vec<u8>>>) -> (Vec<String>, InstanceReply) {
        let set = scale_set();
        let mut lookup = InstanceLookup::new(&set);
        let mut urls = Vec::new();
        let mut answers = answers.into_iter();
        while let Some(request) = lookup.request(&token()).unwrap() {
            urls.push(request.uri().to_string());
            lookup
                .on_response(&answers.next().expect("an answer for every request"))
                .unwrap();
        }
        (urls, lookup.reply().cloned().expect("done"))
    }

    #[test]
    fn follows_vm_nic_and_ip() {
        let ip_id = format!("{RG}/Microsoft.Network/publicIPAddresses/vm-pip");
        let (urls, reply) = run(vec![
            ok(vm_list(&[("vmss1_1a2b3c4d", "Succeeded")])),
            ok(nic(Some(&ip_id))),
            ok(public_ip(Some("20.1.2.3"))),
        ]);
        assert_eq!(
            urls,
            vec![
                format!("{ARM}/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines?api-version=2024-11-01&$filter=%27virtualMachineScaleSet%2Fid%27%20eq%20%27%2Fsubscriptions%2Fsubid%2FresourceGroups%2Frg1%2Fproviders%2FMicrosoft.Compute%2FvirtualMachineScaleSets%2Fvmss1%27"),
                format!("{ARM}{RG}/Microsoft.Network/networkInterfaces/vmss1_1a2b3c4d-nic?api-version=2024-07-01"),
                format!("{ARM}{ip_id}?api-version=2024-07-01"),
            ]
        );
        assert_eq!(
            reply,
            named("vmss1_1a2b3c4d".into(), Some("20.1.2.3".into()))
        );
    }

    /// The first entry of an official list example: each is the resource as its own GET
    /// returns it (`NetworkInterfaces_Get`, `PublicIPAddresses_Get`).
    fn first_documented(example: &str) -> http::Response<Vec<u8>> {
        let list: serde_json::Value =
            serde_json::from_slice(&response_body(example, "200")).unwrap();
        ok(list["value"][0].clone())
    }

    #[test]
    fn reads_the_official_examples() {
        assert_eq!(
            parse_nic(&first_documented("arm/vmss-network-interface-list.json")).unwrap().as_deref(),
            Some("/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1/virtualMachines/0/networkInterfaces/nic1/ipConfigurations/ip1/publicIPAddresses/pub1")
        );
        assert_eq!(
            parse_public_ip(&first_documented("arm/vmss-public-ip-list.json"))
                .unwrap()
                .as_deref(),
            Some("13.67.119.72")
        );
    }

    #[test]
    fn no_vm_is_no_instance() {
        let (urls, reply) = run(vec![ok(serde_json::json!({ "value": [] }))]);
        assert_eq!(urls.len(), 1);
        assert_eq!(reply, InstanceReply::default());
    }

    #[test]
    fn a_vm_without_an_address_yet_is_named() {
        let ip_id = format!("{RG}/Microsoft.Network/publicIPAddresses/vm-pip");
        let (_, reply) = run(vec![
            ok(vm_list(&[("v_1", "Creating")])),
            ok(nic(Some(&ip_id))),
            ok(public_ip(None)),
        ]);
        assert_eq!(reply, named("v_1".into(), None));
        let (urls, reply) = run(vec![ok(vm_list(&[("v_1", "Creating")])), ok(nic(None))]);
        assert_eq!(urls.len(), 2);
        assert_eq!(reply, named("v_1".into(), None));
    }

    #[test]
    fn prefers_a_vm_that_is_not_being_deleted() {
        let vms = parse_vm_list(&ok(vm_list(&[("old", "Deleting"), ("new", "Creating")]))).unwrap();
        assert_eq!(game_vm(vms).map(|vm| vm.name).as_deref(), Some("new"));
        let vms = parse_vm_list(&ok(vm_list(&[("old", "Deleting")]))).unwrap();
        assert_eq!(game_vm(vms).map(|vm| vm.name).as_deref(), Some("old"));
    }

    #[test]
    fn picks_the_primary_nic_and_configuration() {
        let two_nics = serde_json::json!({ "value": [ { "name": "v", "properties": {
            "networkProfile": { "networkInterfaces": [
                { "id": "/subscriptions/s/x/second", "properties": { "primary": false } },
                { "id": "/subscriptions/s/x/first", "properties": { "primary": true } }
            ] } } } ] });
        let vms = parse_vm_list(&ok(two_nics)).unwrap();
        assert_eq!(vms[0].nic_id.as_deref(), Some("/subscriptions/s/x/first"));
        let one_unmarked = serde_json::json!({ "value": [ { "name": "v", "properties": {
            "networkProfile": { "networkInterfaces": [ { "id": "/subscriptions/s/x/only" } ] } } } ] });
        assert_eq!(
            parse_vm_list(&ok(one_unmarked)).unwrap()[0]
                .nic_id
                .as_deref(),
            Some("/subscriptions/s/x/only")
        );
    }

    #[test]
    fn errors_are_cloud_errors() {
        let not_found = || {
            response(
                404,
                &[],
                br#"{"error":{"code":"ResourceNotFound","message":"gone"}}"#.to_vec(),
            )
        };
        assert_eq!(
            parse_vm_list(&not_found()).unwrap_err().code(),
            "ResourceNotFound"
        );
        assert_eq!(
            parse_nic(&not_found()).unwrap_err().code(),
            "ResourceNotFound"
        );
        assert_eq!(
            parse_public_ip(&not_found()).unwrap_err().code(),
            "ResourceNotFound"
        );
        let throttled = response(429, &[("retry-after", "7")], Vec::new());
        assert_eq!(
            parse_vm_list(&throttled).unwrap_err().retry_after_s(),
            Some(7)
        );
    }
}
