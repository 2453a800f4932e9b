//! Azure: the app's Entra client secret (and when it expires), the scale set, and the roles
//! that let the app do every ARM call the scaler makes (`heimdall_azure_arm::calls`, the one
//! list of them).

use heimdall_azure_arm::calls::{required_actions, Scope};
use heimdall_azure_arm::entra::{parse_token_response, token_request};
use heimdall_azure_arm::vmss::parse_vmss;
use heimdall_azure_arm::{AccessToken, ArmError, ClientCredentials, ScaleSet};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Finding, Report};
use crate::permissions::{self, Permission};
use heimdall_native_io::Http;

/// Warn this many days before the client secret expires.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// `--client-secret-expires`: RFC 3339 (`2026-05-01T10:00:00Z`, `…+00:00`), or a date alone.
pub fn parse_expiry(text: &str) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339))
        .map_err(|_| format!("{text:?} is not a date like 2026-05-01 or 2026-05-01T10:00:00Z"))
}

/// Asks Entra for an ARM token as the scaler does; the token, when Entra gives one.
pub fn check_entra(
    report: &mut Report,
    http: &Http,
    expires: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<AccessToken> {
    let names = [
        "entra_endpoint",
        "arm_endpoint",
        "azure_tenant_id",
        "azure_client_id",
        "azure_client_secret",
    ];
    let [entra, arm, tenant_id, client_id, client_secret] =
        report.values("Entra client secret", names)?;
    report.add(expiry(expires, now, &client_id));
    let credentials = ClientCredentials {
        tenant_id,
        client_id,
        client_secret,
    };
    report.step("asking Entra for an ARM token");
    let request = match token_request(&entra, &arm, &credentials) {
        Ok(request) => request,
        Err(e) => {
            report.add(Finding::fail(
                format!("cannot ask Entra: {e}"),
                "check azure_tenant_id",
            ));
            return None;
        }
    };
    let answer = match http.send(request) {
        Ok(answer) => answer,
        Err(e) => {
            report.add(Finding::fail(
                format!("cannot reach Entra at {entra}: {e}"),
                "check entra_endpoint (https://login.microsoftonline.com unless you run the fakes) and the network",
            ));
            return None;
        }
    };
    match parse_token_response(&answer.response) {
        Ok(token) => {
            report.add(Finding::pass(format!(
                "Entra gives the app (client {}) a token for {arm}",
                credentials.client_id
            )));
            Some(token)
        }
        Err(error) => {
            report.add(entra_refusal(&error, &credentials, &arm));
            None
        }
    }
}

/// Entra's AADSTS code in plain words.
fn entra_refusal(error: &ArmError, credentials: &ClientCredentials, arm: &str) -> Finding {
    let client = &credentials.client_id;
    let tenant = &credentials.tenant_id;
    let reset = format!("`az ad app credential reset --id {client}` prints a new secret; set azure_client_secret to it (and redeploy)");
    let ArmError::Entra { description, .. } = error else {
        return Finding::fail(format!("Entra: {error}"), "check entra_endpoint");
    };
    let code = description
        .strip_prefix("AADSTS")
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    match code.as_str() {
        "7000222" => Finding::fail(
            format!("the client secret has expired (Entra: {description})"),
            reset,
        ),
        "7000215" => Finding::fail(
            format!("wrong client secret: Entra refused azure_client_secret for client {client} (AADSTS7000215)"),
            format!("use the secret's Value, not its Secret ID; or {reset}"),
        ),
        "90002" => Finding::fail(
            format!("Entra knows no tenant {tenant} (AADSTS90002)"),
            "set azure_tenant_id to `az account show --query tenantId -o tsv`",
        ),
        "700016" => Finding::fail(
            format!("tenant {tenant} has no application with client id {client} (AADSTS700016)"),
            "set azure_client_id to the service principal's appId (`az ad sp list --display-name <name> --query [].appId -o tsv`)",
        ),
        "70011" => Finding::fail(
            format!("Entra refused the scope {arm}/.default (AADSTS70011)"),
            "check arm_endpoint (https://management.azure.com unless you run the fakes)",
        ),
        _ => Finding::fail(
            format!("Entra refused the token request: {description}"),
            "see the AADSTS code at https://login.microsoftonline.com/error",
        ),
    }
}

/// Whether the client secret has a month to live.
fn expiry(expires: Option<OffsetDateTime>, now: OffsetDateTime, client_id: &str) -> Finding {
    let reset = format!("before then, `az ad app credential reset --id {client_id} --append` and set azure_client_secret to the new secret");
    let Some(expires) = expires else {
        return Finding::warn(
            "client secret expiry: not known",
            format!("see it with `az ad app credential list --id {client_id} --query \"[].endDateTime\" -o tsv` and pass --client-secret-expires <date>"),
        );
    };
    let date = expires.date();
    let days = (expires - now).whole_days();
    if expires <= now {
        Finding::fail(
            format!("the client secret expired on {date}"),
            format!("`az ad app credential reset --id {client_id}` and set azure_client_secret to the new secret"),
        )
    } else if days < EXPIRY_WARNING_DAYS {
        Finding::warn(
            format!("the client secret expires on {date}, in {days} days"),
            reset,
        )
    } else {
        Finding::pass(format!(
            "the client secret is valid until {date} ({days} days)"
        ))
    }
}

/// GETs the scale set, then checks that the app's roles cover every action the scaler needs.
pub fn check_scale_set(report: &mut Report, http: &Http, token: &AccessToken) {
    let names = [
        "arm_endpoint",
        "azure_subscription_id",
        "azure_resource_group",
        "vmss_name",
        "azure_client_id",
    ];
    let Some([arm, subscription, group, name, client_id]) = report.values("scale set", names)
    else {
        return;
    };
    let at = Where {
        subscription: &subscription,
        group: &group,
        name: &name,
        client_id: &client_id,
    };
    report.step(&format!("reading scale set {name}"));
    match read_scale_set(http, token, &arm, &at) {
        Ok((set, model, found)) => {
            report.add(found);
            let linked = Linked::of(&model);
            for finding in roles(http, &set, token, &at, &linked) {
                report.add(finding);
            }
        }
        Err(problem) => report.add(problem),
    }
}

/// The scale set, its model (the GET's body) and the finding that it is there; or what is wrong.
fn read_scale_set(
    http: &Http,
    token: &AccessToken,
    arm: &str,
    at: &Where,
) -> Result<(ScaleSet, Vec<u8>, Finding), Finding> {
    let invalid = |e: ArmError| {
        Finding::fail(
            format!("scale set: {e}"),
            "check azure_subscription_id, azure_resource_group and vmss_name",
        )
    };
    let set = ScaleSet::new(arm, at.subscription, at.group, at.name).map_err(invalid)?;
    let request = set.get_request(token).map_err(invalid)?;
    let answer = http.send(request).map_err(|e| {
        Finding::fail(
            format!("cannot reach Azure Resource Manager at {arm}: {e}"),
            "check arm_endpoint (https://management.azure.com unless you run the fakes)",
        )
    })?;
    let vmss = parse_vmss(&answer.response).map_err(|e| scale_set_refusal(&e, at))?;
    let found = Finding::pass(format!(
        "scale set {} is there (capacity {}, size {})",
        at.name,
        vmss.capacity,
        vmss.size.as_deref().unwrap_or("unknown")
    ));
    Ok((set, answer.response.into_body(), found))
}

/// Names for the messages.
struct Where<'a> {
    subscription: &'a str,
    group: &'a str,
    name: &'a str,
    client_id: &'a str,
}

fn scale_set_refusal(error: &ArmError, at: &Where) -> Finding {
    let (status, code) = match error {
        ArmError::Cloud { status, code, .. } => (*status, code.as_str()),
        other => {
            return Finding::fail(
                format!("scale set {}: {other}", at.name),
                "try again; if it stays, check arm_endpoint",
            )
        }
    };
    match (status, code) {
        (403, _) => Finding::fail(
            format!(
                "missing role: the app (client {}) may not read scale set {} ({code}); it needs {}",
                at.client_id,
                at.name,
                role(Scope::ScaleSet)
            ),
            // Azure answers the same for a name outside the app's roles, so a typo looks alike.
            format!(
                "{}; and check vmss_name against `terraform output -raw vmss_name`",
                apply_roles(at.client_id)
            ),
        ),
        (404, "ResourceGroupNotFound") => Finding::fail(
            format!(
                "there is no resource group {} in subscription {}",
                at.group, at.subscription
            ),
            "set azure_resource_group to `terraform output -raw resource_group_name` (and azure_subscription_id to the subscription Terraform used)",
        ),
        (404, "SubscriptionNotFound") => Finding::fail(
            format!(
                "there is no subscription {} (or the app has no access to it)",
                at.subscription
            ),
            "set azure_subscription_id to `az account show --query id -o tsv`",
        ),
        (404, _) => Finding::fail(
            format!(
                "there is no scale set {} in resource group {}",
                at.name, at.group
            ),
            "set vmss_name to `terraform output -raw vmss_name`",
        ),
        (401, _) => Finding::fail(
            format!("Azure Resource Manager refused the app's token ({code})"),
            "entra_endpoint and arm_endpoint must belong to the same cloud",
        ),
        _ => Finding::fail(
            format!("scale set {}: {error}", at.name),
            "try again; if it stays, look at the Azure status page",
        ),
    }
}

/// The Terraform role assignment that grants the actions of a scope.
fn role(scope: Scope) -> &'static str {
    match scope {
        Scope::ScaleSet => "the scaler role on the scale set (azurerm_role_assignment.app_scaler)",
        Scope::ResourceGroup => {
            "the instance reader role on the resource group (azurerm_role_assignment.app_instance_reader)"
        }
        Scope::Subscription => {
            "the operation reader role on the subscription (azurerm_role_assignment.app_operation_status_reader, grant_operation_status_read = true)"
        }
        Scope::VmSubnet => "the subnet join role on the VM subnet (azurerm_role_assignment.app_subnet_join)",
        Scope::VmIdentity => "the identity assign role on the VM's identity (azurerm_role_assignment.app_identity_assign)",
    }
}

fn apply_roles(client_id: &str) -> String {
    format!("`terraform apply` in infra/ assigns the app's roles; app_principal_object_id must be this service principal's object id (`az ad sp show --id {client_id} --query id -o tsv`)")
}

/// The existing resources a scale-out uses, which Azure checks the caller's rights on too
/// (linked access checks): the subnet and the user-assigned identity of the VM model.
#[derive(Default)]
struct Linked {
    subnets: Vec<String>,
    identities: Vec<String>,
}

#[derive(Deserialize, Default)]
struct VmssModel {
    #[serde(default)]
    identity: serde_json::Value,
    #[serde(default)]
    properties: serde_json::Value,
}

impl Linked {
    fn of(body: &[u8]) -> Linked {
        let model: VmssModel = serde_json::from_slice(body).unwrap_or_default();
        let list = |value: &serde_json::Value| value.as_array().cloned().unwrap_or_default();
        let subnets = list(
            &model.properties["virtualMachineProfile"]["networkProfile"]
                ["networkInterfaceConfigurations"],
        )
        .iter()
        .flat_map(|nic| list(&nic["properties"]["ipConfigurations"]))
        .filter_map(|ip| ip["properties"]["subnet"]["id"].as_str().map(str::to_owned))
        .collect();
        let identities = model.identity["userAssignedIdentities"]
            .as_object()
            .map(|ids| ids.keys().cloned().collect())
            .unwrap_or_default();
        Linked {
            subnets,
            identities,
        }
    }

    fn ids(&self, scope: Scope) -> Option<&[String]> {
        match scope {
            Scope::VmSubnet => Some(&self.subnets),
            Scope::VmIdentity => Some(&self.identities),
            _ => None,
        }
    }
}

/// One finding per missing action, or one saying all are there.
fn roles(
    http: &Http,
    set: &ScaleSet,
    token: &AccessToken,
    at: &Where,
    linked: &Linked,
) -> Vec<Finding> {
    let on_set = match permissions_at(http, set, token, &set_id(at)) {
        Ok(permissions) => permissions,
        Err(problem) => {
            return vec![Finding::fail(
                format!("cannot list the app's permissions on the scale set: {problem}"),
                apply_roles(at.client_id),
            )]
        }
    };
    let mut findings = Vec::new();
    let required = required_actions();
    for (action, scope) in &required {
        // Roles on the group and the subscription reach down to the scale set, so its list
        // holds them; the linked resources have lists of their own.
        let Some(ids) = linked.ids(*scope) else {
            if !permissions::allows(&on_set, action) {
                findings.push(missing(action, *scope, at));
            }
            continue;
        };
        if ids.is_empty() {
            findings.push(Finding::warn(
                format!(
                    "{action}: not checked, the scale set's model names no {}",
                    scope_name(*scope)
                ),
                "look at the scale set in the portal",
            ));
        }
        for id in ids {
            match permissions_at(http, set, token, id) {
                Ok(permissions) if permissions::allows(&permissions, action) => {}
                Ok(_) => findings.push(missing(action, *scope, at)),
                Err(problem) => findings.push(Finding::fail(
                    format!("cannot list the app's permissions on {id}: {problem}"),
                    apply_roles(at.client_id),
                )),
            }
        }
    }
    if findings.is_empty() {
        findings.push(Finding::pass(format!(
            "the app's roles allow all {} actions the scaler needs",
            required.len()
        )));
    }
    findings
}

fn missing(action: &str, scope: Scope, at: &Where) -> Finding {
    Finding::fail(
        format!(
            "missing role: the app (client {}) may not {action}; that is {}",
            at.client_id,
            role(scope)
        ),
        apply_roles(at.client_id),
    )
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::ScaleSet => "scale set",
        Scope::ResourceGroup => "resource group",
        Scope::Subscription => "subscription",
        Scope::VmSubnet => "subnet",
        Scope::VmIdentity => "user-assigned identity",
    }
}

fn set_id(at: &Where) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
        at.subscription, at.group, at.name
    )
}

/// The caller's permissions on a resource; the id's segments are encoded by the request
/// builder, so an id read from an answer cannot send the token elsewhere.
fn permissions_at(
    http: &Http,
    set: &ScaleSet,
    token: &AccessToken,
    id: &str,
) -> Result<Vec<Permission>, String> {
    let request = set
        .resource_request(token, &permissions::path(id), permissions::API_VERSION)
        .map_err(|e| e.to_string())?;
    let answer = http.send(request).map_err(|e| e.to_string())?;
    let status = answer.response.status();
    if status != http::StatusCode::OK {
        return Err(format!(
            "HTTP {status} {}",
            error_code(answer.response.body())
        ));
    }
    permissions::parse(answer.response.body())
}

/// ARM's error code (`{"error":{"code":…}}`), for a message.
fn error_code(body: &[u8]) -> String {
    let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Mark;

    fn at() -> Where<'static> {
        Where {
            subscription: "sub",
            group: "rg",
            name: "vmss",
            client_id: "cid",
        }
    }

    #[test]
    fn reads_dates_as_az_prints_them() {
        let day = parse_expiry("2026-05-01").unwrap();
        assert_eq!(day, parse_expiry("2026-05-01T00:00:00Z").unwrap());
        assert_eq!(day, parse_expiry("2026-05-01T02:00:00+02:00").unwrap());
        assert!(parse_expiry("next week").is_err());
    }

    #[test]
    fn warns_a_month_ahead() {
        let now = parse_expiry("2026-01-01").unwrap();
        let mark = |date: &str| expiry(Some(parse_expiry(date).unwrap()), now, "cid").mark;
        assert_eq!(mark("2026-06-01"), Mark::Pass);
        assert_eq!(mark("2026-01-20"), Mark::Warn);
        assert_eq!(mark("2025-12-31"), Mark::Fail);
        let unknown = expiry(None, now, "cid");
        assert!(
            unknown.mark == Mark::Warn
                && unknown
                    .line()
                    .contains("az ad app credential list --id cid")
        );
    }

    #[test]
    fn names_entras_refusals() {
        let credentials = ClientCredentials {
            tenant_id: "t".into(),
            client_id: "cid".into(),
            client_secret: "s".into(),
        };
        let refusal = |description: &str| ArmError::Entra {
            status: 401,
            code: "invalid_client".into(),
            description: description.into(),
        };
        let expired = entra_refusal(
            &refusal("AADSTS7000222: The provided client secret keys for app 'cid' are expired."),
            &credentials,
            "a",
        );
        assert!(
            expired.line().contains("client secret has expired")
                && expired
                    .line()
                    .contains("az ad app credential reset --id cid")
        );
        assert!(entra_refusal(
            &refusal("AADSTS7000215: Invalid client secret provided."),
            &credentials,
            "a"
        )
        .line()
        .contains("wrong client secret"));
        assert!(entra_refusal(
            &refusal("AADSTS90002: Tenant 't' not found."),
            &credentials,
            "a"
        )
        .line()
        .contains("no tenant t"));
        assert!(entra_refusal(
            &refusal("AADSTS700016: Application not found"),
            &credentials,
            "a"
        )
        .line()
        .contains("no application with client id cid"));
    }

    #[test]
    fn names_the_scale_sets_refusals() {
        let cloud = |status, code: &str| ArmError::Cloud {
            status,
            code: code.into(),
            message: String::new(),
            retry_after_s: None,
        };
        let forbidden = scale_set_refusal(&cloud(403, "AuthorizationFailed"), &at());
        assert!(
            forbidden.line().contains("missing role") && forbidden.line().contains("app_scaler"),
            "{}",
            forbidden.line()
        );
        assert!(scale_set_refusal(&cloud(404, "ResourceNotFound"), &at())
            .line()
            .contains("no scale set vmss"));
        assert!(
            scale_set_refusal(&cloud(404, "ResourceGroupNotFound"), &at())
                .line()
                .contains("no resource group rg")
        );
    }

    #[test]
    fn finds_the_linked_resources_in_the_model() {
        let body = serde_json::json!({
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/s/x/id1": {}}},
            "properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": [
                {"properties": {"ipConfigurations": [{"properties": {"subnet": {"id": "/subscriptions/s/x/subnet1"}}}]}}
            ]}}}
        });
        let linked = Linked::of(body.to_string().as_bytes());
        assert_eq!(
            linked.subnets,
            vec!["/subscriptions/s/x/subnet1".to_owned()]
        );
        assert_eq!(linked.identities, vec!["/subscriptions/s/x/id1".to_owned()]);
        assert!(Linked::of(b"not json").subnets.is_empty());
    }
}
