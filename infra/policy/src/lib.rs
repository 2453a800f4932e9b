//! Reads the Terraform of `infra/` with `hcl-rs`, so tests can check what it declares: the spot
//! scale set at capacity 0, the queues and table the app uses, and no secret in an output.

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
