//! The ARM + Entra fake, driven with the project's own request builders and parsers
//! (heimdall-azure-arm) and checked against the official examples.

mod common;

use std::time::Duration;

use common::{
    assert_compatible, assert_has_keys, body_json, call, example, example_response, send,
};
use heimdall_azure_arm::operation::parse_operation;
use heimdall_azure_arm::vmss::{parse_update, parse_vmss};
use heimdall_azure_arm::{
    entra, AccessToken, ClientCredentials, FailureKind, InstanceLookup, OperationStatus,
    OperationUrl, ProvisioningState, ScaleSet, UpdateOutcome,
};
use heimdall_fakes::{ArmFake, ArmFakeConfig, Fault, VmState};

fn config() -> ArmFakeConfig {
    ArmFakeConfig {
        boot_delay: Duration::from_millis(50),
        polls_in_progress: 2,
        ..ArmFakeConfig::default()
    }
}

fn credentials(config: &ArmFakeConfig) -> ClientCredentials {
    ClientCredentials {
        tenant_id: config.tenant_id.clone(),
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
    }
}

async fn token(fake: &ArmFake, config: &ArmFakeConfig) -> AccessToken {
    let request =
        entra::token_request(&fake.origin(), &fake.origin(), &credentials(config)).unwrap();
    entra::parse_token_response(&send(request).await).expect("a token")
}

fn scale_set(fake: &ArmFake, config: &ArmFakeConfig) -> ScaleSet {
    ScaleSet::new(
        &fake.origin(),
        &config.subscription_id,
        &config.resource_group,
        &config.vmss_name,
    )
    .unwrap()
}

/// PATCHes the capacity and returns the operation URL to poll.
async fn patch(
    fake: &ArmFake,
    config: &ArmFakeConfig,
    token: &AccessToken,
    capacity: u32,
) -> String {
    let set = scale_set(fake, config);
    let response = send(set.set_capacity_request(token, capacity, None).unwrap()).await;
    assert_eq!(response.status(), 200);
    match parse_update(&response, &set.resource_url()).unwrap() {
        UpdateOutcome::Pending {
            poll_url,
            retry_after_s: Some(_),
        } => poll_url,
        other => panic!("expected a pending update with Retry-After, got {other:?}"),
    }
}

async fn poll(
    fake: &ArmFake,
    token: &AccessToken,
    url: &str,
) -> (OperationStatus, serde_json::Value) {
    let url =
        OperationUrl::parse(url, &fake.origin()).expect("the operation is on the fake's origin");
    let response = send(url.request(token).unwrap()).await;
    (parse_operation(&response).unwrap(), body_json(&response))
}

async fn instance(
    fake: &ArmFake,
    config: &ArmFakeConfig,
    token: &AccessToken,
) -> heimdall_azure_arm::scaler_api::InstanceReply {
    let set = scale_set(fake, config);
    let mut lookup = InstanceLookup::new(&set);
    while let Some(request) = lookup.request(token).unwrap() {
        lookup.on_response(&send(request).await).unwrap();
    }
    lookup.reply().cloned().expect("the lookup ends")
}

async fn wait_for_vm(fake: &ArmFake, want: impl Fn(&VmState) -> bool) -> VmState {
    let mut lifecycle = fake.lifecycle();
    let state = tokio::time::timeout(Duration::from_secs(5), lifecycle.wait_for(|s| want(s)))
        .await
        .expect("the VM changes state in time")
        .expect("the fake is alive");
    state.clone()
}

#[tokio::test]
async fn issues_tokens_like_entra() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let request =
        entra::token_request(&fake.origin(), &fake.origin(), &credentials(&config)).unwrap();
    let response = send(request).await;
    assert_eq!(response.status(), 200);
    let body = body_json(&response);
    let documented = example("entra/client-credentials-success.json");
    assert_has_keys(&body, &documented, &[]);
    assert_compatible(&body, &documented);
    assert!(entra::parse_token_response(&response).is_ok());
    fake.shutdown().await;
}

#[tokio::test]
async fn refuses_bad_client_credentials_like_entra() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let good = credentials(&config);
    let cases = [
        (
            ClientCredentials {
                client_secret: "wrong".into(),
                ..good.clone()
            },
            401,
            "invalid_client",
            "AADSTS7000215",
        ),
        (
            ClientCredentials {
                client_id: "someone-else".into(),
                ..good.clone()
            },
            400,
            "unauthorized_client",
            "AADSTS700016",
        ),
        (
            ClientCredentials {
                tenant_id: "other-tenant".into(),
                ..good.clone()
            },
            400,
            "invalid_request",
            "AADSTS90002",
        ),
    ];
    let documented = example("entra/client-credentials-error-400.json");
    for (credentials, status, code, aadsts) in cases {
        let response =
            send(entra::token_request(&fake.origin(), &fake.origin(), &credentials).unwrap()).await;
        assert_eq!(response.status(), status, "{code}");
        let body = body_json(&response);
        assert_has_keys(&body, &documented, &[]);
        assert_compatible(&body, &documented);
        assert_eq!(body["error"], code);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(aadsts),
            "{body}"
        );
        let error = entra::parse_token_response(&response).unwrap_err();
        assert_eq!(error.code(), code);
        assert!(!error.to_string().contains(&config.client_secret));
    }
    // A scope for another resource: the documented invalid_scope error.
    let wrong_scope =
        entra::token_request(&fake.origin(), "https://management.azure.com", &good).unwrap();
    let response = send(wrong_scope).await;
    assert_eq!(response.status(), 400);
    assert_eq!(body_json(&response)["error"], "invalid_scope");
    assert_eq!(body_json(&response)["error_codes"][0], 70011);
    fake.shutdown().await;
}

#[tokio::test]
async fn refuses_malformed_token_requests() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let url = format!("{}/{}/oauth2/v2.0/token", fake.origin(), config.tenant_id);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let no_grant = call("POST", &url, &form, b"client_id=x").await;
    assert_eq!(no_grant.status(), 400);
    assert_eq!(body_json(&no_grant)["error_codes"][0], 900144);
    let other_grant = call("POST", &url, &form, b"grant_type=password").await;
    assert_eq!(body_json(&other_grant)["error"], "unsupported_grant_type");
    let get = call("GET", &url, &[], b"").await;
    assert_eq!(get.status(), 400);
    fake.shutdown().await;
}

#[tokio::test]
async fn arm_requires_a_token_it_issued() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let url = scale_set(&fake, &config).resource_url();
    let missing = call("GET", &url, &[], b"").await;
    assert_eq!(missing.status(), 401);
    assert_eq!(body_json(&missing)["error"]["code"], "AuthenticationFailed");
    assert!(missing.headers().contains_key("www-authenticate"));
    let forged = send(
        scale_set(&fake, &config)
            .get_request(&AccessToken::new("forged", 1))
            .unwrap(),
    )
    .await;
    assert_eq!(forged.status(), 401);
    assert_eq!(
        parse_vmss(&forged).unwrap_err().code(),
        "InvalidAuthenticationToken"
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn arm_checks_api_version_and_names() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let bearer = format!("Bearer {}", token.secret());
    let auth = [("authorization", bearer.as_str())];
    let base = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
        fake.origin(),
        config.subscription_id,
        config.resource_group,
        config.vmss_name
    );
    let cases = [
        (base.clone(), 400, "MissingApiVersionParameter"),
        (
            format!("{base}?api-version=1999-01-01"),
            400,
            "NoRegisteredProviderFound",
        ),
        // The Uniform-only list of a scale set's public IPs: a Flexible set has none.
        (
            format!("{base}/publicipaddresses?api-version=2017-03-30"),
            404,
            "NotFound",
        ),
    ];
    for (url, status, code) in cases {
        let response = call("GET", &url, &auth, b"").await;
        assert_eq!(response.status(), status, "{url}");
        assert_eq!(parse_vmss(&response).unwrap_err().code(), code, "{url}");
    }
    let origin = fake.origin();
    let not_found = [
        (
            ScaleSet::new(
                &origin,
                &config.subscription_id,
                &config.resource_group,
                "other",
            )
            .unwrap(),
            "ResourceNotFound",
        ),
        (
            ScaleSet::new(
                &origin,
                &config.subscription_id,
                "other-rg",
                &config.vmss_name,
            )
            .unwrap(),
            "ResourceGroupNotFound",
        ),
        (
            ScaleSet::new(
                &origin,
                "other-sub",
                &config.resource_group,
                &config.vmss_name,
            )
            .unwrap(),
            "SubscriptionNotFound",
        ),
    ];
    for (set, code) in not_found {
        let response = send(set.get_request(&token).unwrap()).await;
        assert_eq!(response.status(), 404);
        let error = parse_vmss(&response).unwrap_err();
        assert_eq!(error.code(), code);
        // The documented CloudError shape.
        assert_compatible(
            &body_json(&response),
            &example("arm/error-response-format-compute.json"),
        );
    }
    // ARM names are case-insensitive.
    let upper = ScaleSet::new(
        &origin,
        &config.subscription_id,
        &config.resource_group.to_uppercase(),
        &config.vmss_name.to_uppercase(),
    )
    .unwrap();
    assert_eq!(send(upper.get_request(&token).unwrap()).await.status(), 200);
    fake.shutdown().await;
}

#[tokio::test]
async fn scale_up_follows_the_long_running_operation_then_boots() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let set = scale_set(&fake, &config);

    let response = send(set.get_request(&token).unwrap()).await;
    let body = body_json(&response);
    let documented = example_response("arm/vmss-get.json", "200");
    assert_compatible(&body, &documented);
    assert_has_keys(&body["sku"], &documented["sku"], &[]);
    assert_eq!(parse_vmss(&response).unwrap().capacity, 0);
    assert_eq!(instance(&fake, &config, &token).await, Default::default());

    let operation = patch(&fake, &config, &token, 1).await;
    let prefix = format!(
        "{}/subscriptions/{}/providers/Microsoft.Compute/locations/",
        fake.origin(),
        config.subscription_id
    );
    assert!(
        operation.starts_with(&prefix) && operation.ends_with("?api-version=2024-11-01"),
        "{operation}"
    );
    let updating = parse_vmss(&send(set.get_request(&token).unwrap()).await).unwrap();
    assert_eq!(updating.capacity, 1);
    assert!(!updating.provisioning_state.unwrap().is_terminal());

    for _ in 0..config.polls_in_progress {
        let (status, body) = poll(&fake, &token, &operation).await;
        assert!(
            matches!(
                status,
                OperationStatus::InProgress {
                    retry_after_s: Some(_)
                }
            ),
            "{status:?}"
        );
        let documented = example("arm/operation-status-compute-inprogress.json");
        assert_has_keys(&body, &documented, &[]);
        assert_compatible(&body, &documented);
        assert_eq!(*fake.lifecycle().borrow(), VmState::Deallocated);
    }
    let (status, body) = poll(&fake, &token, &operation).await;
    assert_eq!(status, OperationStatus::Succeeded);
    assert!(body["endTime"].is_string(), "{body}");
    // Polling a finished operation keeps saying so.
    assert_eq!(
        poll(&fake, &token, &operation).await.0,
        OperationStatus::Succeeded
    );

    let running = wait_for_vm(&fake, |s| matches!(s, VmState::Running { .. })).await;
    let vm_name = format!("{}_0", config.vmss_name);
    assert_eq!(
        running,
        VmState::Running {
            vm_name: vm_name.clone(),
            public_ip: config.public_ip.clone()
        }
    );

    let reply = instance(&fake, &config, &token).await;
    assert_eq!(reply.vm_name.as_deref(), Some(vm_name.as_str()));
    assert_eq!(reply.public_ip.as_deref(), Some(config.public_ip.as_str()));
    assert_eq!(fake.capacity_patches(), vec![1]);
    fake.shutdown().await;
}

#[tokio::test]
async fn scale_to_zero_deallocates_at_once() {
    let config = ArmFakeConfig {
        polls_in_progress: 0,
        ..config()
    };
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let up = patch(&fake, &config, &token, 1).await;
    assert_eq!(poll(&fake, &token, &up).await.0, OperationStatus::Succeeded);
    wait_for_vm(&fake, |s| matches!(s, VmState::Running { .. })).await;

    let down = patch(&fake, &config, &token, 0).await;
    assert_eq!(*fake.lifecycle().borrow(), VmState::Deallocated);
    assert_eq!(instance(&fake, &config, &token).await, Default::default());
    assert_eq!(
        poll(&fake, &token, &down).await.0,
        OperationStatus::Succeeded
    );

    // The next VM is a new instance.
    let again = patch(&fake, &config, &token, 1).await;
    poll(&fake, &token, &again).await;
    let running = wait_for_vm(&fake, |s| matches!(s, VmState::Running { .. })).await;
    assert_eq!(
        running,
        VmState::Running {
            vm_name: format!("{}_1", config.vmss_name),
            public_ip: config.public_ip.clone()
        }
    );
    assert_eq!(fake.capacity_patches(), vec![1, 0, 1]);
    fake.shutdown().await;
}

#[tokio::test]
async fn a_later_update_preempts_the_running_one() {
    let config = ArmFakeConfig {
        polls_in_progress: 0,
        boot_delay: Duration::from_millis(20),
        ..config()
    };
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let up = patch(&fake, &config, &token, 1).await;
    let down = patch(&fake, &config, &token, 0).await;
    match poll(&fake, &token, &up).await.0 {
        OperationStatus::Failed { code, .. } => assert_eq!(code, "OperationPreempted"),
        other => panic!("expected the first update preempted, got {other:?}"),
    }
    assert_eq!(
        poll(&fake, &token, &down).await.0,
        OperationStatus::Succeeded
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*fake.lifecycle().borrow(), VmState::Deallocated);
    fake.shutdown().await;
}

#[tokio::test]
async fn scaling_to_zero_during_boot_cancels_it() {
    let config = ArmFakeConfig {
        polls_in_progress: 0,
        boot_delay: Duration::from_millis(100),
        ..config()
    };
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let up = patch(&fake, &config, &token, 1).await;
    poll(&fake, &token, &up).await;
    patch(&fake, &config, &token, 0).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(*fake.lifecycle().borrow(), VmState::Deallocated);
    fake.shutdown().await;
}

#[tokio::test]
async fn refuses_bad_update_bodies() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let url = scale_set(&fake, &config).resource_url();
    let bearer = format!("Bearer {}", token.secret());
    let json = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Headers, &[u8], u16, &str); 4] = [
        (&json, b"{not json", 400, "InvalidRequestContent"),
        (
            &json,
            br#"{"sku":{"capacity":-1}}"#,
            400,
            "InvalidParameter",
        ),
        (
            &json,
            br#"{"sku":{"capacity":5000}}"#,
            400,
            "InvalidParameter",
        ),
        (
            &json[..1],
            br#"{"sku":{"capacity":1}}"#,
            415,
            "UnsupportedMediaType",
        ),
    ];
    for (headers, body, status, code) in cases {
        let response = call("PATCH", &url, headers, body).await;
        assert_eq!(response.status(), status, "{code}");
        assert_eq!(body_json(&response)["error"]["code"], code);
    }
    assert!(fake.capacity_patches().is_empty());
    let unknown = OperationUrl::parse(
        &format!("{}/subscriptions/{}/providers/Microsoft.Compute/locations/westeurope/operations/nope?api-version=2024-11-01", fake.origin(), config.subscription_id),
        &fake.origin(),
    )
    .unwrap();
    assert_eq!(send(unknown.request(&token).unwrap()).await.status(), 404);
    fake.shutdown().await;
}

#[tokio::test]
async fn records_requests_and_stops_on_shutdown() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    send(scale_set(&fake, &config).get_request(&token).unwrap()).await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, http::Method::POST);
    assert!(requests[0]
        .body_text()
        .contains("grant_type=client_credentials"));
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Bearer {}", token.secret()).as_str())
    );
    let address = fake.origin().trim_start_matches("http://").to_owned();
    fake.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the port is closed"
    );
}

#[tokio::test]
async fn injected_throttling_busy_and_server_errors_look_like_arm() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let set = scale_set(&fake, &config);
    fake.inject(Fault::Throttle {
        count: 1,
        retry_after_s: 7,
    });
    let throttled = parse_vmss(&send(set.get_request(&token).unwrap()).await).unwrap_err();
    assert_eq!(throttled.code(), "TooManyRequests");
    assert_eq!(throttled.retry_after_s(), Some(7));
    assert_eq!(throttled.kind(), FailureKind::Retry);
    fake.inject(Fault::ServerError {
        count: 1,
        status: 503,
    });
    let unavailable = parse_vmss(&send(set.get_request(&token).unwrap()).await).unwrap_err();
    assert_eq!(unavailable.kind(), FailureKind::Retry);
    // Busy applies to writes only: a read goes through.
    fake.inject(Fault::Busy { count: 1 });
    assert!(parse_vmss(&send(set.get_request(&token).unwrap()).await).is_ok());
    let busy = send(set.set_capacity_request(&token, 1, None).unwrap()).await;
    assert_eq!(busy.status(), 409);
    let error = parse_update(&busy, &set.resource_url()).unwrap_err();
    assert_eq!(error.kind(), FailureKind::Retry);
    assert_eq!(
        fake.capacity_patches(),
        Vec::<u32>::new(),
        "a refused PATCH changes nothing"
    );
    // And then it works.
    let url = patch(&fake, &config, &token, 1).await;
    assert!(url.contains("/operations/"));
}

#[tokio::test]
async fn an_accepted_update_is_followed_at_its_location() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let set = scale_set(&fake, &config);
    fake.inject(Fault::Accepted { count: 1 });
    let response = send(set.set_capacity_request(&token, 1, None).unwrap()).await;
    assert_eq!(response.status(), 202);
    assert!(response.body().is_empty());
    let UpdateOutcome::Pending { poll_url, .. } =
        parse_update(&response, &set.resource_url()).unwrap()
    else {
        panic!("a 202 is pending");
    };
    assert!(poll_url.contains("monitor=true"), "{poll_url}");
    let url = OperationUrl::parse(&poll_url, &fake.origin()).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let answer = send(url.request(&token).unwrap()).await;
        statuses.push((answer.status().as_u16(), parse_operation(&answer).unwrap()));
    }
    assert!(matches!(
        statuses[0],
        (202, OperationStatus::InProgress { .. })
    ));
    assert!(matches!(statuses[2], (200, OperationStatus::Succeeded)));
    wait_for_vm(&fake, |vm| matches!(vm, VmState::Running { .. })).await;
}

#[tokio::test]
async fn a_size_without_spot_capacity_fails_its_allocation_and_the_next_size_runs() {
    let config = config();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let token = token(&fake, &config).await;
    let set = scale_set(&fake, &config);
    fake.no_capacity_for(&["Standard_D2as_v4"]);
    let url = patch(&fake, &config, &token, 1).await;
    let (status, body) = loop {
        let polled = poll(&fake, &token, &url).await;
        if !matches!(polled.0, OperationStatus::InProgress { .. }) {
            break polled;
        }
    };
    assert!(
        matches!(status, OperationStatus::Failed { ref code, .. } if code == "AllocationFailed")
    );
    assert_eq!(
        heimdall_azure_arm::failure::classify(None, "AllocationFailed", ""),
        FailureKind::NoCapacity
    );
    assert_compatible(
        &body,
        &example("arm/operation-status-compute-inprogress.json"),
    );
    let vmss = parse_vmss(&send(set.get_request(&token).unwrap()).await).unwrap();
    assert_eq!(vmss.capacity, 1);
    assert_eq!(vmss.provisioning_state, Some(ProvisioningState::Failed));
    assert_eq!(
        instance(&fake, &config, &token).await.public_ip,
        None,
        "a VM that was not allocated has no address"
    );
    // The next size: a PATCH with sku.name.
    let resized = send(
        set.set_capacity_request(&token, 1, Some("Standard_D2s_v3"))
            .unwrap(),
    )
    .await;
    let UpdateOutcome::Pending { poll_url, .. } =
        parse_update(&resized, &set.resource_url()).unwrap()
    else {
        panic!("pending");
    };
    while matches!(
        poll(&fake, &token, &poll_url).await.0,
        OperationStatus::InProgress { .. }
    ) {}
    wait_for_vm(&fake, |vm| matches!(vm, VmState::Running { .. })).await;
    assert_eq!(fake.vm_size(), "Standard_D2s_v3");
    let patches: Vec<(u32, Option<String>)> = fake
        .patches()
        .into_iter()
        .map(|p| (p.capacity, p.size))
        .collect();
    assert_eq!(
        patches,
        vec![(1, None), (1, Some("Standard_D2s_v3".into()))]
    );
    let bad = send(set.set_capacity_request(&token, 1, Some("D2")).unwrap()).await;
    assert_eq!(bad.status(), 400);
}
