//! What the VM does at boot (infra/cloud-init.yaml): containers cannot act as the VM, secrets
//! and the agent install are retried, the game image is pinned, and the agent comes from the
//! deployment's own private blob, checked by hash.

use heimdall_infra_policy::{
    attribute, blocks, cloud_init, local, resource, source, string, string_literals, unit_values,
    validations, written_file,
};

const UNITS: &str = "/etc/systemd/system";

fn unit(name: &str) -> String {
    let doc = cloud_init().expect("cloud-init.yaml parses");
    written_file(&doc, &format!("{UNITS}/{name}"))
        .unwrap_or_else(|| panic!("cloud-init.yaml writes no {name}"))
}

/// The script a oneshot unit runs.
fn script_of(unit_name: &str) -> String {
    let doc = cloud_init().expect("cloud-init.yaml parses");
    let exec = unit_values(&unit(unit_name), "Service", "ExecStart");
    let path = exec
        .first()
        .unwrap_or_else(|| panic!("{unit_name} has an ExecStart"));
    written_file(&doc, path).unwrap_or_else(|| panic!("cloud-init.yaml writes no {path}"))
}

/// The rules the script adds (iptables lines, with the shell variable for the chain resolved).
fn firewall_rules(script: &str) -> Vec<String> {
    let chain = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("chain="))
        .unwrap_or("DOCKER-USER");
    script
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("iptables"))
        .map(|l| l.replace("\"$chain\"", chain).replace("$chain", chain))
        .collect()
}

#[test]
fn containers_cannot_reach_imds_or_the_wireserver() {
    let firewall_unit = "heimdall-container-firewall.service";
    let rules = firewall_rules(&script_of(firewall_unit));
    // The rules hang off DOCKER-USER, which Docker sends container traffic through.
    let hook = rules
        .iter()
        .find(|r| r.contains("DOCKER-USER") && r.contains("-j "))
        .expect("a jump from DOCKER-USER into the rules");
    let chain = hook.rsplit("-j ").next().unwrap_or_default().trim();
    for address in ["169.254.169.254/32", "168.63.129.16/32"] {
        let dropped = rules.iter().any(|r| {
            (r.contains(&format!("-A {chain} ")) || r.contains("DOCKER-USER"))
                && r.contains(&format!("-d {address}"))
                && r.ends_with("-j DROP")
                && !r.contains("--dport")
        });
        assert!(
            dropped,
            "container traffic to {address} is dropped: {rules:#?}"
        );
    }
    // Only DNS may pass to the WireServer, and only ahead of the drop.
    let position = |pred: &dyn Fn(&String) -> bool| rules.iter().position(pred);
    let drop = position(&|r| r.contains("-d 168.63.129.16/32") && r.ends_with("-j DROP")).unwrap();
    for (i, rule) in rules.iter().enumerate() {
        if rule.contains("-d 168.63.129.16/32") && rule.ends_with("-j RETURN") {
            assert!(rule.contains("--dport 53") && i < drop, "{rule}");
        }
    }
    // Set up with Docker (again after a Docker restart) and before the game starts.
    let firewall = unit(firewall_unit);
    assert!(unit_values(&firewall, "Unit", "After").contains(&"docker.service".to_owned()));
    assert!(unit_values(&firewall, "Unit", "PartOf").contains(&"docker.service".to_owned()));
    let game = unit("valheim.service");
    for key in ["Requires", "After"] {
        assert!(
            unit_values(&game, "Unit", key).contains(&firewall_unit.to_owned()),
            "valheim.service {key}= {firewall_unit}"
        );
    }
    let doc = cloud_init().unwrap();
    let enabled = format!("{:?}", doc["runcmd"]);
    assert!(
        enabled.contains(firewall_unit),
        "runcmd enables {firewall_unit}"
    );
}

#[test]
fn boot_steps_that_need_azure_are_retried_until_they_succeed() {
    for name in ["heimdall-secrets.service", "heimdall-agent-install.service"] {
        let unit = unit(name);
        assert_eq!(
            unit_values(&unit, "Service", "Restart"),
            ["on-failure"],
            "{name} restarts on failure"
        );
        assert!(
            !unit_values(&unit, "Service", "RestartSec").is_empty(),
            "{name}"
        );
        // Without this, systemd gives up after a few quick failures.
        assert_eq!(
            unit_values(&unit, "Unit", "StartLimitIntervalSec"),
            ["0"],
            "{name} is never given up on"
        );
    }
    let agent = unit("heimdall-agent.service");
    for key in ["Requires", "After"] {
        assert!(
            unit_values(&agent, "Unit", key).contains(&"heimdall-agent-install.service".to_owned()),
            "heimdall-agent.service {key}= heimdall-agent-install.service"
        );
    }
}

#[test]
fn the_game_image_is_pinned_by_digest() {
    let blocks = blocks().expect("infra/*.tf parse");
    let variable = blocks
        .iter()
        .find(|b| {
            b.identifier() == "variable"
                && b.labels().first().map(|l| l.as_str()) == Some("valheim_image")
        })
        .expect("variable valheim_image");
    let conditions = validations(&blocks, "valheim_image");
    let patterns: Vec<regex::Regex> = conditions
        .iter()
        .flat_map(|c| string_literals(c))
        .filter_map(|p| regex::Regex::new(&p).ok())
        .collect();
    assert!(
        !patterns.is_empty(),
        "valheim_image has a validation pattern"
    );
    let accepted = |image: &str| patterns.iter().all(|p| p.is_match(image));
    let digest = "0123456789abcdef".repeat(4);
    assert!(accepted(&format!(
        "lloesche/valheim-server@sha256:{digest}"
    )));
    assert!(accepted(&format!(
        "lloesche/valheim-server:latest@sha256:{digest}"
    )));
    for tag_only in [
        "lloesche/valheim-server",
        "lloesche/valheim-server:latest",
        "lloesche/valheim-server@sha256:1234",
    ] {
        assert!(!accepted(tag_only), "{tag_only} is refused");
    }
    if let Some(default) = string(attribute(variable, "default")) {
        assert!(accepted(default), "the default {default} is pinned");
    }
    // The game runs exactly that image.
    let game = unit("valheim.service");
    let run = unit_values(&game, "Service", "ExecStart");
    assert_eq!(run.last().map(String::as_str), Some("${valheim_image}"));
    let vars = local(&blocks, "cloud_init_vars")
        .map(source)
        .unwrap_or_default();
    assert!(vars.contains("valheim_image = var.valheim_image"), "{vars}");
}

#[test]
fn the_vm_gets_the_agent_from_the_deployment_with_its_identity() {
    let blocks = blocks().expect("infra/*.tf parse");
    // Terraform uploads the binary into a private container of its own...
    let container =
        resource(&blocks, "azurerm_storage_container", "agent").expect("container agent");
    assert_eq!(
        string(attribute(container, "container_access_type")),
        Some("private")
    );
    let blob = resource(&blocks, "azurerm_storage_blob", "agent").expect("blob agent");
    assert_eq!(
        attribute(blob, "storage_container_id")
            .map(source)
            .as_deref(),
        Some("azurerm_storage_container.agent.id")
    );
    assert_eq!(
        attribute(blob, "source").map(source).as_deref(),
        Some("var.agent_binary_path")
    );
    // ...and hands the VM its URL and the hash of exactly that file.
    assert_eq!(
        local(&blocks, "agent_sha256").map(source).as_deref(),
        Some("filesha256(var.agent_binary_path)")
    );
    let vars = local(&blocks, "cloud_init_vars")
        .map(source)
        .unwrap_or_default();
    assert!(
        vars.contains("agent_blob_url = azurerm_storage_blob.agent.url"),
        "{vars}"
    );
    assert!(vars.contains("agent_sha256 = local.agent_sha256"), "{vars}");

    // The VM downloads it with a storage token of its identity and checks the hash first.
    let install = script_of("heimdall-agent-install.service");
    for needed in [
        "http://169.254.169.254/metadata/identity/oauth2/token",
        "resource=https://storage.azure.com/",
        "Authorization: Bearer",
        "x-ms-version:",
        "\"$AGENT_BLOB_URL\"",
        "sha256sum --check",
    ] {
        assert!(install.contains(needed), "install-agent.sh uses {needed}");
    }
    let check = install.find("sha256sum --check").unwrap();
    let installed = install.find("install -m").expect("it installs the binary");
    assert!(
        check < installed,
        "the hash is checked before the binary is installed"
    );

    // No download from anywhere but Azure at boot.
    let doc = cloud_init().unwrap();
    for entry in doc["write_files"].as_vec().unwrap() {
        let content = entry["content"].as_str().unwrap_or_default();
        for url in content
            .split_whitespace()
            .filter(|w| w.contains("https://"))
        {
            let host = url
                .split("https://")
                .nth(1)
                .and_then(|rest| rest.split(['/', '\'', '"', '?', '$']).next())
                .unwrap_or_default();
            assert!(
                host.is_empty()
                    || host.starts_with('$')
                    || host.ends_with(".azure.com")
                    || host.ends_with(".azure.net"),
                "{} fetches from {host}",
                entry["path"].as_str().unwrap_or_default()
            );
        }
    }
}
