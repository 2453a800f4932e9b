//! The ARM fake's Flexible scale set: the VM, NIC and public IP it creates in the resource
//! group, as the scaler's lookup (heimdall-azure-arm `InstanceLookup`) reads them, checked
//! against the official examples and refusing what ARM refuses.

mod common;

use std::time::Duration;

use common::{assert_compatible, assert_has_keys, body_json, call, example_response, send};
use heimdall_azure_arm::instance::{parse_nic, parse_public_ip, parse_vm_list};
use heimdall_azure_arm::operation::parse_operation;
use heimdall_azure_arm::{
    entra, AccessToken, ClientCredentials, OperationStatus, OperationUrl, ScaleSet,
    NETWORK_API_VERSION,
};
use heimdall_fakes::{ArmFake, ArmFakeConfig, VmState};

fn config() -> ArmFakeConfig {
    ArmFakeConfig {
        boot_delay: Duration::from_millis(20),
        polls_in_progress: 0,
        ..ArmFakeConfig::default()
    }
}

async fn start() -> (ArmFake, ArmFakeConfig, AccessToken, ScaleSet) {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let credentials = ClientCredentials {
        tenant_id: config.tenant_id.clone(),
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
    };
    let request = entra::token_request(&fake.origin(), &fake.origin(), &credentials).unwrap();
    let token = entra::parse_token_response(&send(request).await).unwrap();
    let set = ScaleSet::new(
        &fake.origin(),
        &config.subscription_id,
        &config.resource_group,
        &config.vmss_name,
    )
    .unwrap();
    (fake, config, token, set)
}

/// Scales to 1 and waits until the VM runs.
async fn boot(fake: &ArmFake, token: &AccessToken, set: &ScaleSet) {
    let response = send(set.set_capacity_request(token, 1, None).unwrap()).await;
    let operation = response.headers()["azure-asyncoperation"].to_str().unwrap();
    let url = OperationUrl::parse(operation, &fake.origin()).unwrap();
    let polled = send(url.request(token).unwrap()).await;
    assert_eq!(
        parse_operation(&polled).unwrap(),
        OperationStatus::Succeeded
    );
    let mut lifecycle = fake.lifecycle();
    tokio::time::timeout(
        Duration::from_secs(5),
        lifecycle.wait_for(|s| matches!(s, VmState::Running { .. })),
    )
    .await
    .expect("the VM boots in time")
    .expect("the fake is alive");
}

/// The first element of a documented list answer.
fn documented_entry(name: &str) -> serde_json::Value {
    example_response(name, "200")["value"][0].clone()
}

#[tokio::test]
async fn the_vm_nic_and_ip_look_like_the_official_examples() {
    let (fake, config, token, set) = start().await;
    boot(&fake, &token, &set).await;

    let list = send(set.vm_list_request(&token).unwrap()).await;
    assert_eq!(list.status(), 200);
    let vms = body_json(&list);
    assert_has_keys(
        &vms["value"][0],
        &documented_entry("arm/vmss-vm-list-minimumset.json"),
        &[],
    );
    let vm = parse_vm_list(&list).unwrap().remove(0);
    assert_eq!(vm.name, format!("{}_0", config.vmss_name));

    let nic_id = vm.nic_id.expect("the VM references its NIC");
    let nic = send(
        set.resource_request(&token, &nic_id, NETWORK_API_VERSION)
            .unwrap(),
    )
    .await;
    assert_eq!(nic.status(), 200);
    let documented = documented_entry("arm/vmss-network-interface-list.json");
    assert_compatible(&body_json(&nic), &documented);
    assert_has_keys(
        &body_json(&nic)["properties"]["ipConfigurations"][0],
        &documented["properties"]["ipConfigurations"][0],
        &[
            "/properties/loadBalancerBackendAddressPools",
            "/properties/loadBalancerInboundNatRules",
        ],
    );

    let ip_id = parse_nic(&nic).unwrap().expect("the NIC references its IP");
    let ip = send(
        set.resource_request(&token, &ip_id, NETWORK_API_VERSION)
            .unwrap(),
    )
    .await;
    let documented = documented_entry("arm/vmss-public-ip-list.json");
    assert_compatible(&body_json(&ip), &documented);
    assert_has_keys(&body_json(&ip), &documented, &["/properties/dnsSettings"]);
    assert_eq!(body_json(&ip)["sku"]["name"], "Standard");
    assert_eq!(
        parse_public_ip(&ip).unwrap().as_deref(),
        Some(config.public_ip.as_str())
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn the_vm_list_takes_only_the_scale_set_filter() {
    let (fake, config, token, set) = start().await;
    boot(&fake, &token, &set).await;
    let bearer = format!("Bearer {}", token.secret());
    let auth = [("authorization", bearer.as_str())];
    let list = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines?api-version=2024-11-01",
        fake.origin(),
        config.subscription_id,
        config.resource_group
    );
    let count = |response: &http::Response<Vec<u8>>| parse_vm_list(response).unwrap().len();

    // No filter: every VM of the group, which is ours.
    assert_eq!(count(&call("GET", &list, &auth, b"").await), 1);
    // Another scale set's VMs: none.
    let other = format!(
        "{list}&$filter=%27virtualMachineScaleSet%2Fid%27%20eq%20%27%2Fsubscriptions%2F{}%2FresourceGroups%2F{}%2Fproviders%2FMicrosoft.Compute%2FvirtualMachineScaleSets%2Fother%27",
        config.subscription_id, config.resource_group
    );
    assert_eq!(count(&call("GET", &other, &auth, b"").await), 0);
    // Any other filter is refused.
    let refused = call(
        "GET",
        &format!("{list}&$filter=location%20eq%20%27westeurope%27"),
        &auth,
        b"",
    )
    .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        parse_vm_list(&refused).unwrap_err().code(),
        "InvalidParameter"
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn network_reads_are_checked_like_arm() {
    let (fake, config, token, set) = start().await;
    let nic_id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkInterfaces/{}_0-nic",
        config.subscription_id, config.resource_group, config.vmss_name
    );
    // Before a VM exists, its NIC does not either.
    let missing = send(
        set.resource_request(&token, &nic_id, NETWORK_API_VERSION)
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(parse_nic(&missing).unwrap_err().code(), "ResourceNotFound");

    boot(&fake, &token, &set).await;
    let found = send(
        set.resource_request(&token, &nic_id, NETWORK_API_VERSION)
            .unwrap(),
    )
    .await;
    assert_eq!(found.status(), 200);
    // Network's own api-versions, not Compute's.
    let wrong_version = send(set.resource_request(&token, &nic_id, "2024-11-01").unwrap()).await;
    assert_eq!(wrong_version.status(), 400);
    assert_eq!(
        parse_nic(&wrong_version).unwrap_err().code(),
        "NoRegisteredProviderFound"
    );
    // A token the fake did not issue.
    let stranger = AccessToken::new("not-issued", 3599);
    let refused = send(
        set.resource_request(&stranger, &nic_id, NETWORK_API_VERSION)
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status(), 401);
    fake.shutdown().await;
}
