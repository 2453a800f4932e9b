//! `heimdall doctor`: checks every credential and endpoint the deployment uses, with the values
//! the app gets (its Spin variables), and says in plain words what is wrong and how to fix it.
//! One line per check: ✓ fine, ! worth a look, ✗ broken (and a non-zero exit).

mod azure;
mod discord;
mod storage;

use std::process::ExitCode;

use crate::manifest::{env_name, Manifest};
use crate::progress::Progress;
use crate::values::{Source, Values};
use heimdall_native_io::Http;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    source: Source,
    /// The app's public interactions URL (https://<app>/interactions). Defaults to the
    /// Interactions Endpoint URL set in Discord's Developer Portal.
    #[arg(long, env = "HEIMDALL_INTERACTIONS_URL")]
    interactions_url: Option<String>,
    /// When the Entra client secret expires (RFC 3339 or YYYY-MM-DD, as
    /// `az ad app credential list` prints it); warns 30 days ahead.
    #[arg(long, env = "HEIMDALL_CLIENT_SECRET_EXPIRES", value_parser = azure::parse_expiry)]
    client_secret_expires: Option<time::OffsetDateTime>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Pass,
    Warn,
    Fail,
}

/// The outcome of one check, in words, with the fix when something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub mark: Mark,
    pub text: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn pass(text: impl Into<String>) -> Finding {
        Finding {
            mark: Mark::Pass,
            text: text.into(),
            fix: None,
        }
    }

    pub fn warn(text: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            mark: Mark::Warn,
            text: text.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(text: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            mark: Mark::Fail,
            text: text.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn line(&self) -> String {
        let mark = match self.mark {
            Mark::Pass => "✓",
            Mark::Warn => "!",
            Mark::Fail => "✗",
        };
        match &self.fix {
            Some(fix) => format!("{mark} {}. Fix: {fix}", self.text),
            None => format!("{mark} {}", self.text),
        }
    }
}

/// Prints each finding as it comes, with the progress of the next step in between, and hands
/// each check the values it needs.
pub struct Report<'a> {
    values: &'a Values,
    progress: Progress,
    findings: Vec<Finding>,
}

impl Report<'_> {
    fn new(values: &Values) -> Report<'_> {
        Report {
            values,
            progress: Progress::new(),
            findings: Vec::new(),
        }
    }

    pub fn step(&self, what: &str) {
        self.progress.step(what);
    }

    pub fn add(&mut self, finding: Finding) {
        self.progress.clear();
        println!("{}", finding.line());
        self.findings.push(finding);
    }

    /// The values of `names`; when one is unset, a warning that `check` was skipped (the
    /// variables check has already failed for it) and `None`.
    pub fn values<const N: usize>(&mut self, check: &str, names: [&str; N]) -> Option<[String; N]> {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.values.get(n).is_empty())
            .collect();
        if missing.is_empty() {
            return Some(names.map(|n| self.values.get(n).to_owned()));
        }
        self.add(Finding::warn(
            format!("{check}: not checked, {} not set", missing.join(", ")),
            "set the variables above",
        ));
        None
    }

    fn count(&self, mark: Mark) -> usize {
        self.findings.iter().filter(|f| f.mark == mark).count()
    }
}

pub fn run(args: &Args, manifest: &Manifest) -> anyhow::Result<ExitCode> {
    let values = Values::load(manifest, args.source.env_file.as_deref())?;
    let http = Http::new(args.source.timeout());
    let mut report = Report::new(&values);

    report.add(variables(manifest, &values));
    if !values.unknown_keys.is_empty() {
        report.add(Finding::warn(
            format!(
                "the env file sets {}, which spin.toml does not declare",
                values.unknown_keys.join(", ")
            ),
            "remove or rename them (a typo leaves the real variable unset)",
        ));
    }
    discord::check(&mut report, &http, args.interactions_url.as_deref());
    let now = time::OffsetDateTime::now_utc();
    if let Some(token) = azure::check_entra(&mut report, &http, args.client_secret_expires, now) {
        azure::check_scale_set(&mut report, &http, &token);
    }
    storage::check(&mut report, &http, now.into());

    let (failed, warned) = (report.count(Mark::Fail), report.count(Mark::Warn));
    println!();
    if failed == 0 {
        println!(
            "No problems found ({} checks, {warned} to look at).",
            report.findings.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} problem(s) found, {warned} to look at.");
        Ok(ExitCode::FAILURE)
    }
}

/// The variables spin.toml requires that are unset or empty.
fn variables(manifest: &Manifest, values: &Values) -> Finding {
    let missing = values.missing(manifest);
    if missing.is_empty() {
        return Finding::pass(format!(
            "every variable spin.toml requires is set ({} of {})",
            manifest.variables.iter().filter(|v| v.required).count(),
            manifest.variables.len()
        ));
    }
    let names: Vec<String> = missing.iter().map(|n| env_name(n)).collect();
    Finding::fail(
        format!(
            "spin.toml requires {}, which are missing or empty",
            missing.join(", ")
        ),
        format!(
            "set {} (`heimdall config` writes every variable from Terraform's outputs)",
            names.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_mark_and_the_fix() {
        assert_eq!(Finding::pass("all good").line(), "✓ all good");
        assert_eq!(
            Finding::fail("broken", "mend it").line(),
            "✗ broken. Fix: mend it"
        );
        assert_eq!(Finding::warn("odd", "look").line(), "! odd. Fix: look");
    }

    #[test]
    fn missing_variables_are_named_with_their_environment_names() {
        let manifest =
            Manifest::parse("[variables]\na = { required = true }\nb = { required = true }\nc = { default = \"\" }\n")
                .unwrap();
        let values = Values::resolve(&manifest, &[("a".into(), "1".into())], []);
        let finding = variables(&manifest, &values);
        assert_eq!(finding.mark, Mark::Fail);
        assert!(
            finding.line().contains("requires b") && finding.line().contains("SPIN_VARIABLE_B"),
            "{}",
            finding.line()
        );
        let values = Values::resolve(
            &manifest,
            &[("a".into(), "1".into()), ("b".into(), "2".into())],
            [],
        );
        assert_eq!(variables(&manifest, &values).mark, Mark::Pass);
    }
}
