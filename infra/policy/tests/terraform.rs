use hcl::Expression;
use heimdall_infra_policy::{attribute, blocks, label, nested, resources, string};

#[test]
fn the_game_runs_on_one_spot_instance_that_the_app_scales() {
    let blocks = blocks().expect("infra/*.tf parse");
    let sets = resources(&blocks, "azurerm_orchestrated_virtual_machine_scale_set");
    assert_eq!(sets.len(), 1, "one scale set");
    let set = sets[0];
    assert_eq!(string(attribute(set, "priority")), Some("Spot"));
    assert_eq!(string(attribute(set, "eviction_policy")), Some("Delete"));
    assert_eq!(string(attribute(set, "upgrade_mode")), Some("Manual"));
    assert!(
        matches!(attribute(set, "instances"), Some(Expression::Number(n)) if n.as_u64() == Some(0)),
        "idle at capacity 0"
    );
    let lifecycle = nested(set, "lifecycle").next().expect("a lifecycle block");
    let ignored = format!("{:?}", attribute(lifecycle, "ignore_changes"));
    assert!(
        ignored.contains("instances") && ignored.contains("sku_name"),
        "Terraform leaves the app's capacity and spot size alone"
    );
    let disk = nested(set, "os_disk").next().expect("an os_disk");
    let ephemeral = nested(disk, "diff_disk_settings")
        .next()
        .expect("an ephemeral OS disk");
    assert_eq!(string(attribute(ephemeral, "option")), Some("Local"));
    assert!(
        nested(set, "identity").next().is_some(),
        "the VM has a managed identity"
    );
}

#[test]
fn the_queues_and_table_are_the_ones_the_app_uses() {
    let blocks = blocks().expect("infra/*.tf parse");
    let names = |kind| -> Vec<String> {
        resources(&blocks, kind)
            .iter()
            .filter_map(|b| string(attribute(b, "name")).map(str::to_owned))
            .collect()
    };
    let mut queues = names("azurerm_storage_queue");
    queues.sort();
    // The names the components, the agent and the owner's command line use (what each
    // queue carries is said there).
    let mut ours = heimdall_events::queues::ALL.map(str::to_owned).to_vec();
    ours.sort();
    assert_eq!(queues, ours);
    assert_eq!(
        names("azurerm_storage_table"),
        [heimdall_server_state::stored::TABLE]
    );
}

#[test]
fn no_output_reveals_a_secret() {
    let blocks = blocks().expect("infra/*.tf parse");
    // Attributes and resources that hold secrets; an output may name a secret, not carry one.
    let secret_sources = [
        "access_key",
        "connection_string",
        "sas_url",
        "azurerm_key_vault_secret",
        "random_password",
    ];
    for output in blocks.iter().filter(|b| b.identifier() == "output") {
        let name = label(output, 0).unwrap_or_default();
        let value = format!("{:?}", attribute(output, "value")).to_lowercase();
        let sensitive = matches!(attribute(output, "sensitive"), Some(Expression::Bool(true)));
        for word in secret_sources {
            assert!(
                sensitive || !value.contains(word),
                "output {name} refers to {word} without being sensitive"
            );
        }
    }
}

#[test]
fn every_variable_says_what_it_is_for() {
    let blocks = blocks().expect("infra/*.tf parse");
    for variable in blocks.iter().filter(|b| b.identifier() == "variable") {
        let name = label(variable, 0).unwrap_or_default();
        let description = string(attribute(variable, "description")).unwrap_or_default();
        assert!(
            !description.trim().is_empty(),
            "variable {name} has no description"
        );
    }
}
