//! The Spin variables of the repository's `spin.toml`, embedded when the CLI is built: the app
//! and the CLI can never disagree about a variable's name, whether it is required, or secret.

use serde::Deserialize;

/// `spin.toml` as it was when this binary was built.
const SPIN_TOML: &str = include_str!("../../spin.toml");

/// The environment variable that `spin up` reads a variable from.
pub fn env_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

/// One `[variables]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub required: bool,
    pub secret: bool,
    pub default: Option<String>,
}

/// The declared variables, in the order `spin.toml` lists them.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub variables: Vec<Variable>,
}

#[derive(Deserialize)]
struct Raw {
    variables: toml::map::Map<String, toml::Value>,
}

#[derive(Deserialize)]
struct RawVariable {
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
    default: Option<String>,
}

impl Manifest {
    /// The manifest this binary was built with.
    pub fn embedded() -> anyhow::Result<Manifest> {
        Manifest::parse(SPIN_TOML)
    }

    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let raw: Raw = toml::from_str(text)?;
        let variables = raw
            .variables
            .into_iter()
            .map(|(name, value)| {
                let spec: RawVariable = value
                    .try_into()
                    .map_err(|e| anyhow::anyhow!("spin.toml variable {name}: {e}"))?;
                Ok(Variable {
                    name,
                    required: spec.required,
                    secret: spec.secret,
                    default: spec.default,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Manifest { variables })
    }

    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The variable an environment key (`SPIN_VARIABLE_STORAGE_KEY`, or the bare
    /// `storage_key`) stands for, if spin.toml declares it.
    pub fn by_key(&self, key: &str) -> Option<&Variable> {
        let name = key.strip_prefix("SPIN_VARIABLE_").unwrap_or(key);
        self.variables
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_manifest_parses_in_order() {
        let manifest = Manifest::embedded().unwrap();
        assert_eq!(manifest.variables[0].name, "discord_public_key");
        let token = manifest.get("discord_bot_token").unwrap();
        assert!(token.required && token.secret);
        assert_eq!(
            manifest.get("discord_api").unwrap().default.as_deref(),
            Some("https://discord.com")
        );
    }

    #[test]
    fn reads_each_field() {
        let manifest = Manifest::parse(
            "[variables]\na = { required = true, secret = true }\nb = { default = \"x\" }\n",
        )
        .unwrap();
        assert_eq!(
            manifest.variables,
            vec![
                Variable {
                    name: "a".into(),
                    required: true,
                    secret: true,
                    default: None
                },
                Variable {
                    name: "b".into(),
                    required: false,
                    secret: false,
                    default: Some("x".into())
                },
            ]
        );
        assert_eq!(manifest.by_key("SPIN_VARIABLE_A").unwrap().name, "a");
        assert_eq!(manifest.by_key("b").unwrap().name, "b");
        assert!(manifest.by_key("SPIN_VARIABLE_C").is_none());
        assert_eq!(env_name("storage_key"), "SPIN_VARIABLE_STORAGE_KEY");
    }
}
