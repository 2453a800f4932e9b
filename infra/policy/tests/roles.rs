//! Who may do what: the app's service principal gets exactly the actions of the ARM calls the
//! scaler makes (listed once, in heimdall-azure-arm), each at the narrowest scope; the VM's
//! identity reaches only what it uses, never the `commands` queue.

use std::collections::{BTreeSet, HashMap};

use hcl::Block;
use heimdall_azure_arm::calls::{required_actions, Scope};
use heimdall_infra_policy::{attribute, blocks, label, nested, resources, source, string};

/// `(action, scope)` pairs, sorted, for readable failures.
type Grants = BTreeSet<(String, String)>;

/// The Terraform expression a role assignment for each scope must use.
fn scope_expression(scope: Scope) -> &'static str {
    match scope {
        Scope::ScaleSet => "azurerm_orchestrated_virtual_machine_scale_set.valheim.id",
        Scope::ResourceGroup => "azurerm_resource_group.main.id",
        Scope::Subscription => "data.azurerm_subscription.current.id",
        Scope::VmSubnet => "azurerm_subnet.vm.id",
        Scope::VmIdentity => "azurerm_user_assigned_identity.vm.id",
    }
}

/// Custom role definitions by their Terraform address, with their actions.
fn custom_roles(blocks: &[Block]) -> HashMap<String, Vec<String>> {
    resources(blocks, "azurerm_role_definition")
        .into_iter()
        .map(|role| {
            let actions = nested(role, "permissions")
                .filter_map(|p| attribute(p, "actions"))
                .flat_map(|a| match a {
                    hcl::Expression::Array(items) => items
                        .iter()
                        .filter_map(|i| string(Some(i)).map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                })
                .collect();
            let address = format!("azurerm_role_definition.{}", label(role, 1).unwrap_or(""));
            (address, actions)
        })
        .collect()
}

/// The assignments to `principal` (a Terraform expression).
fn assignments<'a>(blocks: &'a [Block], principal: &str) -> Vec<&'a Block> {
    resources(blocks, "azurerm_role_assignment")
        .into_iter()
        .filter(|a| attribute(a, "principal_id").map(source).as_deref() == Some(principal))
        .collect()
}

/// What the app's assignments grant, as (action, scope expression).
fn app_grants(blocks: &[Block]) -> Grants {
    let roles = custom_roles(blocks);
    let mut grants = Grants::new();
    for assignment in assignments(blocks, "var.app_principal_object_id") {
        let name = label(assignment, 1).unwrap_or_default();
        assert!(
            attribute(assignment, "role_definition_name").is_none(),
            "app assignment {name} uses a built-in role; built-in roles grant far more than the scaler's calls"
        );
        let definition = attribute(assignment, "role_definition_id")
            .map(source)
            .unwrap_or_default();
        let role = definition
            .split(".role_definition_resource_id")
            .next()
            .unwrap_or_default()
            .replace("[0]", "");
        let actions = roles.get(&role).unwrap_or_else(|| {
            panic!("app assignment {name} uses {definition}, not a custom role of infra/")
        });
        let scope = attribute(assignment, "scope")
            .map(source)
            .unwrap_or_default();
        for action in actions {
            grants.insert((action.clone(), scope.clone()));
        }
    }
    grants
}

#[test]
fn the_app_may_make_exactly_the_scalers_arm_calls() {
    let blocks = blocks().expect("infra/*.tf parse");
    let granted = app_grants(&blocks);
    let required: Grants = required_actions()
        .into_iter()
        .map(|(action, scope)| (action.to_owned(), scope_expression(scope).to_owned()))
        .collect();
    let missing: Vec<_> = required.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "the scaler's calls need these (action, scope) grants, which infra/identity.tf does not give: {missing:#?}"
    );
    let beyond: Vec<_> = granted.difference(&required).collect();
    assert!(
        beyond.is_empty(),
        "infra/identity.tf gives the app more than its calls need (or at a wider scope): {beyond:#?}"
    );
}

/// The VM's identity, by the scope each of its assignments must have.
const VM_SCOPES: &[&str] = &[
    "azurerm_storage_queue.events.id",
    "azurerm_storage_queue.control.id",
    "azurerm_storage_container.agent.id",
    "azurerm_key_vault.main.id",
    "azurerm_storage_account.world.id",
];

#[test]
fn the_vm_reaches_only_what_it_uses() {
    let blocks = blocks().expect("infra/*.tf parse");
    let vm = assignments(&blocks, "local.vm_principal_id");
    let mut scopes: Vec<String> = vm
        .iter()
        .map(|a| attribute(a, "scope").map(source).unwrap_or_default())
        .collect();
    scopes.sort();
    let mut expected: Vec<String> = VM_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(
        scopes, expected,
        "the VM's role assignments; in particular none on the commands queue, the table or the app account"
    );
    let role_of = |scope: &str| {
        vm.iter()
            .find(|a| attribute(a, "scope").map(source).as_deref() == Some(scope))
            .and_then(|a| string(attribute(a, "role_definition_name")))
    };
    assert_eq!(
        role_of("azurerm_storage_queue.events.id"),
        Some("Storage Queue Data Message Sender")
    );
    assert_eq!(
        role_of("azurerm_storage_queue.control.id"),
        Some("Storage Queue Data Message Processor")
    );
    assert_eq!(
        role_of("azurerm_storage_container.agent.id"),
        Some("Storage Blob Data Reader")
    );
    // Nothing else may name the VM's identity as a principal in any other way.
    let principals: Vec<String> = resources(&blocks, "azurerm_role_assignment")
        .iter()
        .filter_map(|a| attribute(a, "principal_id").map(source))
        .filter(|p| p.contains("vm") || p.contains("identity"))
        .collect();
    assert!(
        principals.iter().all(|p| p == "local.vm_principal_id"),
        "{principals:?}"
    );
}
