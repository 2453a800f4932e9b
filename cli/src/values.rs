//! Where `doctor` and `register` find the app's variables: where `spin up` finds them, the
//! environment's `SPIN_VARIABLE_<NAME>`, plus an env file (`KEY=VALUE` or
//! `export SPIN_VARIABLE_X='…'` lines, as `heimdall config --host spin-up` writes them). The
//! environment wins over the file, as it does when the file is sourced into a shell that already
//! has the variable; spin.toml's defaults fill the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::manifest::{env_name, Manifest};

/// Where the app's variables come from, for the commands that talk to a deployment.
#[derive(clap::Args, Debug)]
pub struct Source {
    /// An env file with the app's variables (`export SPIN_VARIABLE_<NAME>='…'` or `name=value`
    /// lines, as `heimdall config --host spin-up` writes it). SPIN_VARIABLE_<NAME> in the
    /// environment wins over it.
    #[arg(long, env = "HEIMDALL_ENV_FILE")]
    pub env_file: Option<PathBuf>,
    /// Seconds to wait for each service's answer.
    #[arg(long, env = "HEIMDALL_TIMEOUT_SECONDS", default_value_t = 10)]
    pub timeout_seconds: u64,
}

impl Source {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.max(1))
    }
}

/// The value of every variable that has one, by name.
#[derive(Debug, Clone, Default)]
pub struct Values {
    map: BTreeMap<String, String>,
    /// Lines of the env file that name no variable of spin.toml (typos, leftovers).
    pub unknown_keys: Vec<String>,
}

impl Values {
    /// Reads the env file (if any) and the process environment.
    pub fn load(manifest: &Manifest, env_file: Option<&Path>) -> anyhow::Result<Values> {
        let file = match env_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the env file {}", path.display()))?;
                parse_env_file(&text)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("reading the env file {}", path.display()))?
            }
            None => Vec::new(),
        };
        Ok(Values::resolve(manifest, &file, std::env::vars()))
    }

    /// The values from the file's entries, then the environment's `SPIN_VARIABLE_*`, then
    /// spin.toml's defaults.
    pub fn resolve(
        manifest: &Manifest,
        file: &[(String, String)],
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Values {
        let mut values = Values::default();
        for (key, value) in file {
            match manifest.by_key(key) {
                Some(variable) => {
                    values.map.insert(variable.name.clone(), value.clone());
                }
                None => values.unknown_keys.push(key.clone()),
            }
        }
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for variable in &manifest.variables {
            if let Some(value) = env.get(&env_name(&variable.name)) {
                values.map.insert(variable.name.clone(), value.clone());
            }
            if let Some(default) = &variable.default {
                values
                    .map
                    .entry(variable.name.clone())
                    .or_insert_with(|| default.clone());
            }
        }
        values
    }

    /// The value, trimmed; empty when unset.
    pub fn get(&self, name: &str) -> &str {
        self.map.get(name).map_or("", |v| v.trim())
    }

    /// The required variables that are unset or empty, in spin.toml's order.
    pub fn missing<'m>(&self, manifest: &'m Manifest) -> Vec<&'m str> {
        manifest
            .variables
            .iter()
            .filter(|v| v.required && self.get(&v.name).is_empty())
            .map(|v| v.name.as_str())
            .collect()
    }
}

/// The `KEY=VALUE` entries of an env file. Blank lines and `#` comments are skipped, `export `
/// is allowed, and values may be quoted as a POSIX shell reads them (nothing is expanded).
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", number + 1))?;
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "line {}: {key:?} is not a variable name",
                number + 1
            ));
        }
        let value = shell_word(value).map_err(|e| format!("line {}: {e}", number + 1))?;
        entries.push((key.to_owned(), value));
    }
    Ok(entries)
}

/// One shell word: unquoted, '…', "…" (with \" \\ \$ \` escapes) or a mix, up to an unquoted
/// space; a `#` comment may follow.
fn shell_word(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("a ' is not closed".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("a \" is not closed".into()),
                    },
                    Some(c) => out.push(c),
                    None => return Err("a \" is not closed".into()),
                }
            },
            '\\' => out.extend(chars.next()),
            c if c.is_whitespace() => {
                let rest = chars.as_str().trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
                return Err("a value with spaces must be quoted".into());
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `value` as one single-quoted shell word, which the shell and [`parse_env_file`] read back
/// unchanged whatever it holds.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse("[variables]\ntoken = { required = true, secret = true }\napi = { default = \"https://d\" }\nid = { required = true }\n")
            .unwrap()
    }

    #[test]
    fn reads_what_config_writes_and_what_people_write() {
        let text = "# made by heimdall config\n\nexport SPIN_VARIABLE_TOKEN='a b'\\''c'\nid=\"x\\\"y\" # note\nPLAIN=z\n";
        assert_eq!(
            parse_env_file(text).unwrap(),
            vec![
                ("SPIN_VARIABLE_TOKEN".into(), "a b'c".into()),
                ("id".into(), "x\"y".into()),
                ("PLAIN".into(), "z".into()),
            ]
        );
    }

    #[test]
    fn refuses_what_a_shell_would_not_read() {
        for bad in ["novalue", "A='open", "A=two words", "BAD KEY=1", "A=\"open"] {
            assert!(parse_env_file(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_round_trips() {
        for value in ["", "plain", "it's", "$HOME `x` \"q\" \\ #", "a\tb"] {
            let line = format!("K={}", shell_quote(value));
            assert_eq!(parse_env_file(&line).unwrap()[0].1, value, "{line}");
        }
    }

    #[test]
    fn the_environment_wins_and_defaults_fill_in() {
        let file = vec![
            ("SPIN_VARIABLE_TOKEN".to_owned(), "from-file".to_owned()),
            ("SPIN_VARIABLE_TYPO".to_owned(), "x".to_owned()),
        ];
        let env = [("SPIN_VARIABLE_TOKEN".to_owned(), "from-env".to_owned())];
        let values = Values::resolve(&manifest(), &file, env);
        assert_eq!(values.get("token"), "from-env");
        assert_eq!(values.get("api"), "https://d");
        assert_eq!(values.unknown_keys, vec!["SPIN_VARIABLE_TYPO".to_owned()]);
        assert_eq!(values.missing(&manifest()), vec!["id"]);
    }

    #[test]
    fn blank_counts_as_missing() {
        let env = [("SPIN_VARIABLE_ID".to_owned(), "  ".to_owned())];
        let values = Values::resolve(&manifest(), &[], env);
        assert_eq!(values.missing(&manifest()), vec!["token", "id"]);
    }
}
