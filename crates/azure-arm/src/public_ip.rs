//! The scale set's public IP list → the instance's VM name and address. PROTOCOLS.md 4.6.

use serde::Deserialize;

use crate::error::{cloud_error, parse_json, ArmError};
use crate::scaler_api::InstanceReply;

/// One entry of the list. Either part may be missing: a dynamic address is only assigned
/// once the VM is allocated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublicIp {
    /// `{scale set}_{instance id}`, derived from the entry's id.
    pub vm_name: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Deserialize)]
struct ListBody {
    #[serde(default)]
    value: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    id: Option<String>,
    properties: Option<EntryProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryProperties {
    ip_address: Option<String>,
}

/// Reads the answer to [`crate::ScaleSet::public_ips_request`]. Only the first page is read:
/// the scale set runs at most one VM.
pub fn parse_public_ips(response: &http::Response<Vec<u8>>) -> Result<Vec<PublicIp>, ArmError> {
    if response.status() != http::StatusCode::OK {
        return Err(cloud_error(response));
    }
    let body: ListBody = parse_json(response, "public IP list")?;
    Ok(body
        .value
        .into_iter()
        .map(|entry| PublicIp {
            vm_name: entry.id.as_deref().and_then(vm_name_from_id),
            ip_address: entry
                .properties
                .and_then(|p| p.ip_address)
                .filter(|ip| !ip.is_empty()),
        })
        .collect())
}

/// The VM name `{vmss}_{instanceId}` from an id such as
/// `…/virtualMachineScaleSets/vmss1/virtualMachines/1/networkInterfaces/…`. ARM ids are
/// case-insensitive, so the segment names are too.
pub fn vm_name_from_id(id: &str) -> Option<String> {
    let segments: Vec<&str> = id.split('/').collect();
    let after = |name: &str| {
        segments
            .windows(2)
            .find(|pair| pair[0].eq_ignore_ascii_case(name))
            .map(|pair| pair[1])
            .filter(|value| !value.is_empty())
    };
    Some(format!(
        "{}_{}",
        after("virtualMachineScaleSets")?,
        after("virtualMachines")?
    ))
}

/// The reply for `GET /instance`: the first entry with an address, else the first entry.
pub fn first_instance(ips: &[PublicIp]) -> InstanceReply {
    let chosen = ips
        .iter()
        .find(|ip| ip.ip_address.is_some())
        .or_else(|| ips.first())
        .cloned()
        .unwrap_or_default();
    InstanceReply {
        vm_name: chosen.vm_name,
        public_ip: chosen.ip_address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{response, response_body};

    #[test]
    fn reads_the_documented_list() {
        let body = response_body("arm/vmss-public-ip-list.json", "200");
        let ips = parse_public_ips(&response(200, &[], body)).unwrap();
        assert_eq!(
            ips,
            vec![
                PublicIp {
                    vm_name: Some("vmss1_1".into()),
                    ip_address: Some("13.67.119.72".into())
                },
                PublicIp {
                    vm_name: Some("vmss1_3".into()),
                    ip_address: Some("13.67.118.216".into())
                },
            ]
        );
        assert_eq!(
            first_instance(&ips),
            InstanceReply {
                vm_name: Some("vmss1_1".into()),
                public_ip: Some("13.67.119.72".into())
            }
        );
    }

    #[test]
    fn an_empty_list_has_no_instance() {
        let ips = parse_public_ips(&response(200, &[], br#"{"value":[]}"#.to_vec())).unwrap();
        assert_eq!(first_instance(&ips), InstanceReply::default());
    }

    #[test]
    fn prefers_an_entry_with_an_address() {
        let ips = [
            PublicIp {
                vm_name: Some("v_0".into()),
                ip_address: None,
            },
            PublicIp {
                vm_name: Some("v_1".into()),
                ip_address: Some("1.2.3.4".into()),
            },
        ];
        assert_eq!(first_instance(&ips).vm_name.as_deref(), Some("v_1"));
        assert_eq!(first_instance(&ips[..1]).public_ip, None);
    }

    #[test]
    fn vm_names_need_both_segments() {
        assert_eq!(
            vm_name_from_id("/subscriptions/s/resourcegroups/r/providers/microsoft.compute/VIRTUALMACHINESCALESETS/v/virtualmachines/12/x"),
            Some("v_12".into())
        );
        assert_eq!(
            vm_name_from_id("/subscriptions/s/virtualMachineScaleSets/v"),
            None
        );
    }

    #[test]
    fn list_errors_are_cloud_errors() {
        let body = br#"{"error":{"code":"ResourceNotFound","message":"no"}}"#.to_vec();
        assert_eq!(
            parse_public_ips(&response(404, &[], body))
                .unwrap_err()
                .code(),
            "ResourceNotFound"
        );
    }
}
