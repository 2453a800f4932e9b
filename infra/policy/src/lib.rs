//! Reads the Terraform of `infra/` with `hcl-rs` and its cloud-config with `yaml-rust2`, so
//! tests can check what they declare: the spot scale set at capacity 0, the queues and table
//! the app uses, the roles, what the VM runs at boot, and no secret in an output.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hcl::{Block, Body, Expression};

/// The folder with the `.tf` files.
pub fn infra_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every top-level block of every `.tf` file in `infra/`.
pub fn blocks() -> anyhow::Result<Vec<Block>> {
    let mut blocks = Vec::new();
    for entry in std::fs::read_dir(infra_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tf") {
            let text = std::fs::read_to_string(&path)?;
            let body: Body =
                hcl::parse(&text).with_context(|| format!("parsing {}", path.display()))?;
            blocks.extend(body.into_blocks());
        }
    }
    Ok(blocks)
}

/// The `resource "<kind>" "<name>"` blocks of one kind.
pub fn resources<'a>(blocks: &'a [Block], kind: &str) -> Vec<&'a Block> {
    blocks
        .iter()
        .filter(|b| b.identifier() == "resource" && label(b, 0) == Some(kind))
        .collect()
}

pub fn label(block: &Block, i: usize) -> Option<&str> {
    block.labels().get(i).map(|l| l.as_str())
}

/// The expression of attribute `key` directly in `block`.
pub fn attribute<'a>(block: &'a Block, key: &str) -> Option<&'a Expression> {
    block
        .body()
        .attributes()
        .find(|a| a.key() == key)
        .map(|a| a.expr())
}

/// The nested blocks called `name`.
pub fn nested<'a>(block: &'a Block, name: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    block
        .body()
        .blocks()
        .filter(move |b| b.identifier() == name)
}

/// The literal string of an expression, if it is one.
pub fn string(expr: Option<&Expression>) -> Option<&str> {
    match expr {
        Some(Expression::String(s)) => Some(s),
        _ => None,
    }
}

/// An expression as Terraform source text, e.g. `azurerm_subnet.vm.id`.
pub fn source(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_else(|_| format!("{expr:?}"))
}

/// The resource `resource "<kind>" "<name>"`.
pub fn resource<'a>(blocks: &'a [Block], kind: &str, name: &str) -> Option<&'a Block> {
    resources(blocks, kind)
        .into_iter()
        .find(|b| label(b, 1) == Some(name))
}

/// The value of `local.<name>` (every `locals` block of every file).
pub fn local<'a>(blocks: &'a [Block], name: &str) -> Option<&'a Expression> {
    blocks
        .iter()
        .filter(|b| b.identifier() == "locals")
        .find_map(|b| attribute(b, name))
}

/// An attribute's literal string, looking through one `local.<name>` reference.
pub fn string_or_local<'a>(blocks: &'a [Block], expr: Option<&'a Expression>) -> Option<&'a str> {
    match expr? {
        Expression::String(s) => Some(s),
        other => {
            let text = source(other);
            let name = text.strip_prefix("local.")?;
            string(local(blocks, name))
        }
    }
}

/// Every string literal inside an expression, in order (function arguments, operands, ...):
/// how tests find the patterns of `regex(...)` calls in a validation condition.
pub fn string_literals(expr: &Expression) -> Vec<String> {
    let text = source(expr);
    let mut literals = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut literal = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => literal.push('\n'),
                    Some('t') => literal.push('\t'),
                    Some(other) => literal.push(other),
                    None => break,
                },
                '"' => break,
                other => literal.push(other),
            }
        }
        literals.push(literal);
    }
    literals
}

/// The `validation` blocks' conditions of `variable "<name>"`.
pub fn validations<'a>(blocks: &'a [Block], name: &str) -> Vec<&'a Expression> {
    blocks
        .iter()
        .filter(|b| b.identifier() == "variable" && label(b, 0) == Some(name))
        .flat_map(|v| nested(v, "validation"))
        .filter_map(|v| attribute(v, "condition"))
        .collect()
}

/// `infra/cloud-init.yaml`, parsed (Terraform's `${...}` placeholders are plain text to YAML).
pub fn cloud_init() -> anyhow::Result<yaml_rust2::Yaml> {
    let path = infra_dir().join("cloud-init.yaml");
    let text = std::fs::read_to_string(&path)?;
    let mut docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(docs.len() == 1, "one YAML document in {}", path.display());
    Ok(docs.remove(0))
}

/// The content of the `write_files` entry for `path`.
pub fn written_file(cloud_init: &yaml_rust2::Yaml, path: &str) -> Option<String> {
    cloud_init["write_files"]
        .as_vec()?
        .iter()
        .find(|entry| entry["path"].as_str() == Some(path))
        .and_then(|entry| entry["content"].as_str())
        .map(str::to_owned)
}

/// The `Key=Value` lines of one `[Section]` of a systemd unit, with `\` continuations joined.
pub fn unit_settings(unit: &str, section: &str) -> Vec<(String, String)> {
    let joined = unit.replace("\\\n", " ");
    let mut current = String::new();
    let mut settings = Vec::new();
    for line in joined.lines().map(str::trim) {
        if line.starts_with('[') && line.ends_with(']') {
            current = line[1..line.len() - 1].to_owned();
        } else if current == section {
            if let Some((key, value)) = line.split_once('=') {
                settings.push((key.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }
    settings
}

/// The values of one setting (e.g. every `Requires=`), split on whitespace.
pub fn unit_values(unit: &str, section: &str, key: &str) -> Vec<String> {
    unit_settings(unit, section)
        .into_iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}
