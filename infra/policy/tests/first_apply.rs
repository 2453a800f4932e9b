//! What a first `terraform apply` needs from the provider and from Azure, and the guards that
//! keep the world: the provider minimum against the attributes used, the per-VM public IP's
//! SKU (Flexible orchestration), `prevent_destroy` on the world, and inputs that cannot open
//! SSH to the internet or break the env file.

use hcl::{Block, Expression};
use heimdall_infra_policy::{
    attribute, blocks, label, nested, resources, string, string_literals, string_or_local,
    validations,
};

/// Attributes this configuration may use that azurerm 4.x did not always have, with the first
/// 4.x release that has them (read in the provider's source).
const ATTRIBUTES_SINCE: &[(&str, &str, &str)] = &[
    ("azurerm_storage_table", "storage_account_id", "4.77.0"),
    ("azurerm_storage_blob", "storage_container_id", "4.77.0"),
    ("azurerm_storage_queue", "storage_account_id", "4.46.0"),
    ("azurerm_storage_share", "storage_account_id", "4.9.0"),
    ("azurerm_storage_container", "storage_account_id", "4.9.0"),
    ("azurerm_key_vault", "rbac_authorization_enabled", "4.42.0"),
];

/// The lowest azurerm version `versions.tf` allows.
fn provider_minimum(blocks: &[Block]) -> semver::Version {
    let terraform = blocks
        .iter()
        .find(|b| b.identifier() == "terraform")
        .expect("a terraform block");
    let providers = nested(terraform, "required_providers")
        .next()
        .expect("required_providers");
    let azurerm = match attribute(providers, "azurerm") {
        Some(Expression::Object(object)) => object,
        other => panic!("required_providers.azurerm is an object, not {other:?}"),
    };
    let constraint = azurerm
        .iter()
        .find(|(key, _)| format!("{key:?}").contains("version"))
        .and_then(|(_, value)| string(Some(value)))
        .expect("azurerm has a version constraint");
    // The lower bound of `>= X` or `~> X`.
    let lower = constraint
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix(">=").or_else(|| part.strip_prefix("~>")))
        .unwrap_or_else(|| panic!("{constraint:?} has a lower bound (>= or ~>)"))
        .trim();
    let full = match lower.matches('.').count() {
        0 => format!("{lower}.0.0"),
        1 => format!("{lower}.0"),
        _ => lower.to_owned(),
    };
    semver::Version::parse(&full).unwrap_or_else(|e| panic!("{lower}: {e}"))
}

#[test]
fn the_provider_minimum_has_every_attribute_used() {
    let blocks = blocks().expect("infra/*.tf parse");
    let minimum = provider_minimum(&blocks);
    let mut checked = 0;
    for (kind, name, since) in ATTRIBUTES_SINCE {
        let used = resources(&blocks, kind)
            .iter()
            .any(|r| attribute(r, name).is_some());
        if used {
            checked += 1;
            let since = semver::Version::parse(since).unwrap();
            assert!(
                minimum >= since,
                "{kind}.{name} first exists in azurerm {since}, but versions.tf allows {minimum}"
            );
        }
    }
    assert!(
        checked > 0,
        "the table names attributes the configuration uses"
    );
}

fn scale_set(blocks: &[Block]) -> &Block {
    let sets = resources(blocks, "azurerm_orchestrated_virtual_machine_scale_set");
    assert_eq!(sets.len(), 1, "one Flexible scale set");
    sets[0]
}

#[test]
fn every_vm_gets_a_standard_public_ip_through_flexible_orchestration() {
    let blocks = blocks().expect("infra/*.tf parse");
    // A Uniform scale set cannot give its per-VM IP a SKU, and Azure creates no Basic IPs.
    assert!(
        resources(&blocks, "azurerm_linux_virtual_machine_scale_set").is_empty(),
        "no Uniform scale set"
    );
    let set = scale_set(&blocks);
    let ips: Vec<&Block> = nested(set, "network_interface")
        .flat_map(|nic| nested(nic, "ip_configuration"))
        .flat_map(|ip| nested(ip, "public_ip_address"))
        .collect();
    assert_eq!(ips.len(), 1, "one public IP per VM");
    assert_eq!(
        string_or_local(&blocks, attribute(ips[0], "sku_name")),
        Some("Standard_Regional"),
        "the per-VM public IP is a Standard one"
    );
    // A prefix would bill every hour, VM or not, and the scaler would need its join action.
    assert!(attribute(ips[0], "public_ip_prefix_id").is_none());
    assert!(resources(&blocks, "azurerm_public_ip_prefix").is_empty());
    // The VM's identity: azurerm's Flexible scale set takes user-assigned ones only.
    let identity = nested(set, "identity").next().expect("an identity");
    assert_eq!(string(attribute(identity, "type")), Some("UserAssigned"));
}

#[test]
fn a_plan_can_never_delete_the_world() {
    let blocks = blocks().expect("infra/*.tf parse");
    for (kind, name) in [
        ("azurerm_storage_account", "world"),
        ("azurerm_storage_share", "worlds"),
    ] {
        let resource = resources(&blocks, kind)
            .into_iter()
            .find(|r| label(r, 1) == Some(name))
            .unwrap_or_else(|| panic!("{kind}.{name}"));
        let protected = nested(resource, "lifecycle")
            .filter_map(|l| attribute(l, "prevent_destroy"))
            .any(|v| matches!(v, Expression::Bool(true)));
        assert!(
            protected,
            "{kind}.{name} has lifecycle.prevent_destroy = true"
        );
    }
}

/// The patterns of a variable's `regex(...)` validations.
fn patterns(blocks: &[Block], variable: &str) -> Vec<regex::Regex> {
    let found: Vec<regex::Regex> = validations(blocks, variable)
        .into_iter()
        .flat_map(string_literals)
        .filter(|s| s.starts_with('^') || s.starts_with('['))
        .map(|s| regex::Regex::new(&s).unwrap_or_else(|e| panic!("{variable}: {s:?}: {e}")))
        .collect();
    assert!(!found.is_empty(), "{variable} has regex validations");
    found
}

#[test]
fn the_server_name_stays_on_one_line() {
    let blocks = blocks().expect("infra/*.tf parse");
    // The validation refuses names its pattern finds something in.
    let forbidden = patterns(&blocks, "server_name");
    let refused = |name: &str| forbidden.iter().any(|p| p.is_match(name));
    for bad in ["Heim\ndall", "Heim\rdall", "Heim\tdall", "a\"b", "a$b"] {
        assert!(refused(bad), "{bad:?} is refused");
    }
    for good in ["Heimdall", "Vikings of Midgard", "Hall-2 (Odin)"] {
        assert!(!refused(good), "{good:?} is accepted");
    }
}

#[test]
fn ssh_and_operator_ranges_cannot_cover_the_internet() {
    let blocks = blocks().expect("infra/*.tf parse");
    for variable in ["admin_ssh_cidrs", "operator_cidrs"] {
        let allowed = patterns(&blocks, variable);
        let accepted = |cidr: &str| allowed.iter().any(|p| p.is_match(cidr));
        for wide in [
            "0.0.0.0/0",
            "0.0.0.0/1",
            "128.0.0.0/1",
            "10.0.0.0/8",
            "::/0",
            "::/1",
            "8000::/1",
            "2001:db8::/32",
        ] {
            assert!(!accepted(wide), "{variable} refuses {wide}");
        }
        assert!(accepted("203.0.113.7/32"), "{variable} takes a /32");
        assert!(accepted("198.51.100.0/24"), "{variable} takes a /24");
    }
    assert!(patterns(&blocks, "admin_ssh_cidrs")
        .iter()
        .any(|p| p.is_match("2001:db8:1::/48")));
}
