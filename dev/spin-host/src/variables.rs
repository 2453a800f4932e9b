//! Application variables and `{{ name }}` templates, resolved once at start-up.

use crate::manifest::VariableDecl;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};

/// Resolves application variables: the manifest default, overridden by `provided`.
/// A required variable with no value is an error naming it. Provided names the manifest does
/// not declare are ignored, as Spin's providers do, but logged (they are usually typos).
pub fn resolve_app_variables(
    decls: &BTreeMap<String, VariableDecl>,
    provided: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    for unknown in provided.keys().filter(|k| !decls.contains_key(*k)) {
        log::warn!("variable `{unknown}` is set but not declared in the manifest; ignored");
    }
    let mut missing = Vec::new();
    let mut values = HashMap::new();
    for (name, decl) in decls {
        match provided.get(name).or(decl.default.as_ref()) {
            Some(v) => {
                let shown = if decl.secret { "<secret>" } else { v.as_str() };
                log::debug!("variable {name} = {shown}");
                values.insert(name.clone(), v.clone());
            }
            None if decl.required => missing.push(name.as_str()),
            // Spin also rejects a variable with neither default nor `required`.
            None => bail!("variable `{name}` has no default and is not required"),
        }
    }
    if !missing.is_empty() {
        bail!(
            "required variable(s) not set: {} (set SPIN_VARIABLE_<NAME>)",
            missing.join(", ")
        );
    }
    Ok(values)
}

/// Expands `{{ name }}` references (spaces optional) against `vars`; other text is kept.
pub fn expand(template: &str, vars: &HashMap<String, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("unclosed `{{{{` in `{template}`"))?;
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .with_context(|| format!("`{template}` refers to undefined variable `{name}`"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves a component's `[component.<id>.variables]` against the app variables.
pub fn resolve_component_variables(
    component: &str,
    templates: &BTreeMap<String, String>,
    app: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    templates
        .iter()
        .map(|(name, template)| {
            if !is_valid_name(name) {
                bail!("component `{component}`: invalid variable name `{name}`");
            }
            let value = expand(template, app)
                .with_context(|| format!("component `{component}`, variable `{name}`"))?;
            Ok((name.clone(), value))
        })
        .collect()
}

/// Spin's rule for variable names: lower-case ASCII letters, digits and `_`, starting with a
/// letter.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(default: Option<&str>, required: bool) -> VariableDecl {
        VariableDecl {
            default: default.map(str::to_string),
            required,
            secret: false,
        }
    }

    #[test]
    fn defaults_are_overridden_and_required_are_checked() {
        let decls = BTreeMap::from([
            ("a".to_string(), decl(Some("1"), false)),
            ("b".to_string(), decl(None, true)),
        ]);
        let provided = HashMap::from([("b".to_string(), "2".to_string())]);
        let vals = resolve_app_variables(&decls, &provided).unwrap();
        assert_eq!(vals["a"], "1");
        assert_eq!(vals["b"], "2");
        let err = resolve_app_variables(&decls, &HashMap::new()).unwrap_err();
        assert!(
            err.to_string().contains("`b`") || err.to_string().contains(" b"),
            "{err}"
        );
    }

    #[test]
    fn templates_expand_with_literal_text() {
        let vars = HashMap::from([("h".to_string(), "x.test".to_string())]);
        assert_eq!(
            expand("http://{{ h }}:1/{{h}}", &vars).unwrap(),
            "http://x.test:1/x.test"
        );
        assert_eq!(expand("plain", &vars).unwrap(), "plain");
        assert!(expand("{{ nope }}", &vars).is_err());
        assert!(expand("{{ h ", &vars).is_err());
    }

    #[test]
    fn names() {
        assert!(is_valid_name("queue_endpoint2"));
        assert!(!is_valid_name("Queue"));
        assert!(!is_valid_name("_x"));
        assert!(!is_valid_name(""));
    }
}
