//! The scale set: GET it, PATCH its capacity, list its VMs and read the resources they
//! reference. PROTOCOLS.md 4.2–4.4; the lookup itself is in [`crate::instance`].

use serde::Deserialize;

use crate::error::{cloud_error, header_str, parse_json, retry_after_s, ArmError};
use crate::{path_segment, trim_origin, AccessToken, COMPUTE_API_VERSION};

/// Where the scale set lives. Built once from configuration; every name is checked and encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSet {
    arm_endpoint: String,
    /// `/subscriptions/{sub}/resourceGroups/{rg}`
    group_path: String,
    /// `{group_path}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}`
    resource_path: String,
}

impl ScaleSet {
    pub fn new(
        arm_endpoint: &str,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Self, ArmError> {
        let group_path = format!(
            "/subscriptions/{}/resourceGroups/{}",
            path_segment(subscription_id, "the subscription id")?,
            path_segment(resource_group, "the resource group")?,
        );
        let resource_path = format!(
            "{group_path}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
            path_segment(name, "the scale set name")?,
        );
        Ok(Self {
            arm_endpoint: trim_origin(arm_endpoint).to_owned(),
            group_path,
            resource_path,
        })
    }

    /// The scale set's URL with the Compute api-version; also a valid poll target for an
    /// update that gave no operation URL.
    pub fn resource_url(&self) -> String {
        format!(
            "{}{}?api-version={COMPUTE_API_VERSION}",
            self.arm_endpoint, self.resource_path
        )
    }

    /// `GET` the scale set.
    pub fn get_request(&self, token: &AccessToken) -> Result<http::Request<Vec<u8>>, ArmError> {
        authorized(http::Method::GET, &self.resource_url(), token, Vec::new())
    }

    /// `PATCH` `{"sku":{"capacity":N}}`, with `"name"` too when the VM size changes (a spot
    /// size without capacity, replaced by the next on the owner's list).
    pub fn set_capacity_request(
        &self,
        token: &AccessToken,
        capacity: u32,
        size: Option<&str>,
    ) -> Result<http::Request<Vec<u8>>, ArmError> {
        let mut sku = serde_json::json!({ "capacity": capacity });
        if let Some(size) = size {
            sku["name"] = size.into();
        }
        let body = serde_json::json!({ "sku": sku }).to_string();
        authorized(
            http::Method::PATCH,
            &self.resource_url(),
            token,
            body.into_bytes(),
        )
    }

    /// `GET …/providers/Microsoft.Compute/virtualMachines?$filter='virtualMachineScaleSet/id'
    /// eq '{id}'`: the VMs of this (Flexible) scale set, which are resources of the group.
    pub fn vm_list_request(&self, token: &AccessToken) -> Result<http::Request<Vec<u8>>, ArmError> {
        let filter = format!("'virtualMachineScaleSet/id' eq '{}'", self.resource_path);
        let url = format!(
            "{}{}/providers/Microsoft.Compute/virtualMachines?api-version={COMPUTE_API_VERSION}&$filter={}",
            self.arm_endpoint,
            self.group_path,
            percent_encoding::utf8_percent_encode(&filter, crate::SEGMENT)
        );
        authorized(http::Method::GET, &url, token, Vec::new())
    }

    /// `GET {id}` of a resource that an ARM answer referenced (a VM's NIC, a NIC's public IP).
    /// The id becomes a path on ARM's origin, segment by segment, so that whatever it holds
    /// cannot send the token anywhere else or add a query.
    pub fn resource_request(
        &self,
        token: &AccessToken,
        id: &str,
        api_version: &str,
    ) -> Result<http::Request<Vec<u8>>, ArmError> {
        let Some(rest) = id.strip_prefix("/subscriptions/") else {
            return Err(ArmError::InvalidInput(format!(
                "{id:?} is not an ARM resource id"
            )));
        };
        let mut path = String::from("/subscriptions");
        for segment in rest.split('/') {
            path.push('/');
            path.push_str(&path_segment(segment, "a segment of a resource id")?);
        }
        let url = format!("{}{path}?api-version={api_version}", self.arm_endpoint);
        authorized(http::Method::GET, &url, token, Vec::new())
    }
}

/// An ARM request with the bearer token (and a JSON body when there is one).
pub(crate) fn authorized(
    method: http::Method,
    url: &str,
    token: &AccessToken,
    body: Vec<u8>,
) -> Result<http::Request<Vec<u8>>, ArmError> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::AUTHORIZATION, token.authorization())
        .header(http::header::ACCEPT, "application/json");
    if !body.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    // The error names the URL's problem only; the token is never part of it.
    builder
        .body(body)
        .map_err(|e| ArmError::InvalidInput(format!("cannot build a request for {url}: {e}")))
}

/// ARM's `provisioningState`. Compute is not consistent about case (the GET example says
/// `succeeded`), so it is compared without case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisioningState {
    Succeeded,
    Failed,
    Canceled,
    /// Anything else (`Updating`, `Creating`, …): still running.
    InProgress(String),
}

impl ProvisioningState {
    pub fn parse(value: &str) -> Self {
        if value.eq_ignore_ascii_case("Succeeded") {
            Self::Succeeded
        } else if value.eq_ignore_ascii_case("Failed") {
            Self::Failed
        } else if value.eq_ignore_ascii_case("Canceled") || value.eq_ignore_ascii_case("Cancelled")
        {
            Self::Canceled
        } else {
            Self::InProgress(value.to_owned())
        }
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::InProgress(_))
    }

    /// The outcome of a terminal state that is not a success, as (code, message).
    pub(crate) fn failure(&self) -> Option<(String, String)> {
        let name = match self {
            Self::Failed => "Failed",
            Self::Canceled => "Canceled",
            _ => return None,
        };
        Some((
            format!("ProvisioningState{name}"),
            format!("the scale set's provisioningState is {name}"),
        ))
    }
}

/// What the scaler needs from a scale set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmss {
    pub capacity: u32,
    /// The VM size (`sku.name`).
    pub size: Option<String>,
    /// The region, for messages about capacity there.
    pub location: Option<String>,
    pub provisioning_state: Option<ProvisioningState>,
}

/// The fields of `VirtualMachineScaleSet` we read; all optional because an update's response
/// may carry any subset of them.
#[derive(Deserialize, Default)]
pub(crate) struct ResourceBody {
    sku: Option<Sku>,
    location: Option<String>,
    properties: Option<ResourceProperties>,
}

#[derive(Deserialize)]
struct Sku {
    name: Option<String>,
    capacity: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceProperties {
    provisioning_state: Option<String>,
}

impl ResourceBody {
    pub(crate) fn provisioning_state(&self) -> Option<ProvisioningState> {
        let state = self.properties.as_ref()?.provisioning_state.as_deref()?;
        Some(ProvisioningState::parse(state))
    }
}

/// Reads the answer to [`ScaleSet::get_request`].
pub fn parse_vmss(response: &http::Response<Vec<u8>>) -> Result<Vmss, ArmError> {
    if response.status() != http::StatusCode::OK {
        return Err(cloud_error(response));
    }
    let body: ResourceBody = parse_json(response, "scale set")?;
    let capacity = body
        .sku
        .as_ref()
        .and_then(|sku| sku.capacity)
        .ok_or_else(|| ArmError::unexpected(response, "the scale set has no sku.capacity"))?;
    Ok(Vmss {
        capacity,
        size: body.sku.as_ref().and_then(|sku| sku.name.clone()),
        location: body.location.clone(),
        provisioning_state: body.provisioning_state(),
    })
}

/// Where an update stands after ARM accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Finished and succeeded.
    Done,
    /// Still running: poll `poll_url` (an operation URL, or the resource itself), waiting
    /// `retry_after_s` if ARM said how long.
    Pending {
        poll_url: String,
        retry_after_s: Option<u32>,
    },
    /// Finished but not successfully.
    Failed { code: String, message: String },
}

/// Reads the answer to [`ScaleSet::set_capacity_request`], following ARM's long-running
/// operation rules: a terminal `provisioningState` means done; otherwise poll
/// `Azure-AsyncOperation` (preferred), else `Location`, else the resource (`resource_url`).
pub fn parse_update(
    response: &http::Response<Vec<u8>>,
    resource_url: &str,
) -> Result<UpdateOutcome, ArmError> {
    let status = response.status().as_u16();
    if !(200..=202).contains(&status) {
        return Err(cloud_error(response));
    }
    let headers = response.headers();
    let operation =
        header_str(headers, "azure-asyncoperation").or_else(|| header_str(headers, "location"));
    // A 202 usually has no body; an unreadable 200/201 body is as good as no state.
    let body: ResourceBody = serde_json::from_slice(response.body()).unwrap_or_default();
    let pending = |poll_url: &str| UpdateOutcome::Pending {
        poll_url: poll_url.to_owned(),
        retry_after_s: retry_after_s(headers),
    };
    Ok(match body.provisioning_state() {
        Some(ProvisioningState::Succeeded) => UpdateOutcome::Done,
        Some(state @ (ProvisioningState::Failed | ProvisioningState::Canceled)) => {
            failed(state.failure())
        }
        Some(ProvisioningState::InProgress(_)) => pending(operation.unwrap_or(resource_url)),
        None => match operation {
            Some(url) => pending(url),
            None if status == 202 => pending(resource_url),
            // No state and nothing to follow: ARM's rule says the operation is done.
            None => UpdateOutcome::Done,
        },
    })
}

fn failed(failure: Option<(String, String)>) -> UpdateOutcome {
    let (code, message) = failure.unwrap_or_default();
    UpdateOutcome::Failed { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{example, response, response_body};

    const ARM: &str = "https://management.azure.com";

    fn scale_set() -> ScaleSet {
        ScaleSet::new(
            ARM,
            "{subscription-id}",
            "myResourceGroup",
            "myVirtualMachineScaleSet",
        )
        .unwrap()
    }

    fn token() -> AccessToken {
        AccessToken::new("tok", 3599)
    }

    fn example_parameters(name: &str) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&example(name)).unwrap()["parameters"].clone()
    }

    #[test]
    fn get_targets_the_documented_path() {
        let request = scale_set().get_request(&token()).unwrap();
        let params = example_parameters("arm/vmss-get.json");
        // The example's id is the resource path; `{` and `}` are encoded in a real request.
        let id = String::from_utf8(response_body("arm/vmss-get.json", "200")).unwrap();
        let id: serde_json::Value = serde_json::from_str(&id).unwrap();
        let expected = format!(
            "{ARM}{}?api-version={}",
            id["id"]
                .as_str()
                .unwrap()
                .replace('{', "%7B")
                .replace('}', "%7D"),
            params["api-version"].as_str().unwrap()
        );
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.uri().to_string(), expected);
        assert_eq!(request.headers()["authorization"], "Bearer tok");
        assert!(request.body().is_empty());
    }

    #[test]
    fn patch_sends_the_capacity_and_a_new_size_only_when_asked() {
        let request = scale_set().set_capacity_request(&token(), 1, None).unwrap();
        assert_eq!(request.method(), http::Method::PATCH);
        assert_eq!(request.uri().to_string(), scale_set().resource_url());
        assert_eq!(request.headers()["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(body, serde_json::json!({"sku": {"capacity": 1}}));
        let resized = scale_set()
            .set_capacity_request(&token(), 1, Some("Standard_D2s_v3"))
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(resized.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"sku": {"capacity": 1, "name": "Standard_D2s_v3"}})
        );
    }

    #[test]
    fn referenced_resources_stay_on_arm() {
        let set = ScaleSet::new(ARM, "subid", "rg", "vmss1").unwrap();
        let nic = "/subscriptions/subid/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vmss1_1a2b-nic";
        let request = set.resource_request(&token(), nic, "2024-07-01").unwrap();
        assert_eq!(
            request.uri().to_string(),
            format!("{ARM}{nic}?api-version=2024-07-01")
        );
        assert_eq!(request.headers()["authorization"], "Bearer tok");
        // Whatever an answer holds, it stays a path on ARM's origin.
        let odd = set
            .resource_request(&token(), "/subscriptions/s/x?api-version=1#y", "v")
            .unwrap();
        assert_eq!(
            odd.uri().to_string(),
            format!("{ARM}/subscriptions/s/x%3Fapi-version%3D1%23y?api-version=v")
        );
        for bad in [
            "https://evil.example/x",
            "subscriptions/s",
            "/subscriptions/s/../x",
            "/subscriptions//x",
        ] {
            assert!(set.resource_request(&token(), bad, "v").is_err(), "{bad}");
        }
    }

    #[test]
    fn names_cannot_escape_their_segment() {
        let set = ScaleSet::new(ARM, "sub", "rg/../x", "a?b").unwrap();
        assert!(set.resource_url().contains("/resourceGroups/rg%2F..%2Fx/"));
        assert!(set
            .resource_url()
            .contains("/virtualMachineScaleSets/a%3Fb?"));
        assert!(ScaleSet::new(ARM, "", "rg", "n").is_err());
    }

    #[test]
    fn parses_the_documented_scale_set() {
        let body = response_body("arm/vmss-get.json", "200");
        let vmss = parse_vmss(&response(200, &[], body)).unwrap();
        assert_eq!(vmss.capacity, 4);
        assert_eq!(vmss.size.as_deref(), Some("Standard_D2s_v3"));
        assert_eq!(vmss.location.as_deref(), Some("westus"));
        assert_eq!(vmss.provisioning_state, Some(ProvisioningState::Succeeded));
    }

    #[test]
    fn get_errors_are_cloud_errors() {
        let body = br#"{"error":{"code":"ResourceNotFound","message":"not found"}}"#.to_vec();
        let error = parse_vmss(&response(404, &[], body)).unwrap_err();
        assert_eq!(error.code(), "ResourceNotFound");
    }

    #[test]
    fn update_with_async_operation_is_pending() {
        let headers = [
            (
                "Azure-AsyncOperation",
                "https://management.azure.com/op/1?api-version=2024-11-01",
            ),
            ("Location", "https://management.azure.com/loc/1"),
            ("Retry-After", "10"),
        ];
        let body =
            br#"{"sku":{"capacity":1},"properties":{"provisioningState":"Updating"}}"#.to_vec();
        let outcome = parse_update(&response(200, &headers, body), "https://x").unwrap();
        assert_eq!(
            outcome,
            UpdateOutcome::Pending {
                poll_url: "https://management.azure.com/op/1?api-version=2024-11-01".into(),
                retry_after_s: Some(10)
            }
        );
    }

    #[test]
    fn update_falls_back_to_location_then_the_resource() {
        let located = parse_update(
            &response(202, &[("location", "https://l")], Vec::new()),
            "https://r",
        );
        assert!(
            matches!(located, Ok(UpdateOutcome::Pending { ref poll_url, retry_after_s: None }) if poll_url == "https://l")
        );
        let bare = parse_update(&response(202, &[], Vec::new()), "https://r");
        assert!(
            matches!(bare, Ok(UpdateOutcome::Pending { ref poll_url, .. }) if poll_url == "https://r")
        );
        let updating = br#"{"properties":{"provisioningState":"Updating"}}"#.to_vec();
        let resource = parse_update(&response(200, &[], updating), "https://r");
        assert!(
            matches!(resource, Ok(UpdateOutcome::Pending { ref poll_url, .. }) if poll_url == "https://r")
        );
    }

    #[test]
    fn terminal_state_means_done() {
        // The documented update responses: a full resource, and one without provisioningState.
        let body = response_body("arm/vmss-update-minimumset.json", "200");
        assert_eq!(
            parse_update(&response(200, &[], body), "https://r"),
            Ok(UpdateOutcome::Done)
        );
        let succeeded = br#"{"properties":{"provisioningState":"Succeeded"}}"#.to_vec();
        assert_eq!(
            parse_update(
                &response(200, &[("azure-asyncoperation", "https://op")], succeeded),
                "https://r"
            ),
            Ok(UpdateOutcome::Done)
        );
    }

    #[test]
    fn failed_state_is_a_failure() {
        let body = br#"{"properties":{"provisioningState":"Failed"}}"#.to_vec();
        let outcome = parse_update(&response(200, &[], body), "https://r").unwrap();
        assert!(
            matches!(outcome, UpdateOutcome::Failed { ref code, .. } if code == "ProvisioningStateFailed")
        );
    }

    #[test]
    fn update_errors_keep_code_and_retry_after() {
        let body = br#"{"error":{"code":"OperationNotAllowed","message":"quota","details":[{"code":"SkuNotAvailable","message":"no spot"}]}}"#.to_vec();
        let error = parse_update(&response(409, &[], body), "https://r").unwrap_err();
        assert_eq!(error.code(), "OperationNotAllowed");
        assert!(error.to_string().contains("SkuNotAvailable: no spot"));
        let throttled = parse_update(
            &response(429, &[("retry-after", "30")], Vec::new()),
            "https://r",
        );
        assert_eq!(throttled.unwrap_err().retry_after_s(), Some(30));
    }
}
