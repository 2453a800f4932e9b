//! `heimdall-spin-host --manifest spin.toml --listen 127.0.0.1:PORT [--wasm-dir DIR]
//! [--tick-every-ms N [--tick-path /reactions/tick]]`
//!
//! Variables come from `SPIN_VARIABLE_<UPPERCASE_NAME>` like `spin up`. The tick's bearer is the
//! `app_secret` variable. Logs go to stderr; `HEIMDALL_LOG=debug|info|warn|error|off`
//! (default `info`: one line per request). Runs until Ctrl-C.

use anyhow::{bail, Context, Result};
use heimdall_spin_host::{start, HostConfig, Tick};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage: heimdall-spin-host --manifest spin.toml --listen 127.0.0.1:PORT \
[--wasm-dir DIR] [--tick-every-ms N] [--tick-path /reactions/tick]";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logger();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` gives the whole context chain on one line, without a backtrace.
            eprintln!("heimdall-spin-host: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let config = parse_args(std::env::args().skip(1), std::env::vars())?;
    let host = start(config).await?;
    // The address on stdout so a parent process can read it when listening on port 0.
    println!("listening on http://{}", host.addr());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    host.shutdown().await;
    Ok(())
}

fn parse_args(
    args: impl Iterator<Item = String>,
    env: impl Iterator<Item = (String, String)>,
) -> Result<HostConfig> {
    let mut manifest = None;
    let mut listen = None;
    let mut wasm_dir = None;
    let mut tick_every = None;
    let mut tick_path = "/reactions/tick".to_string();
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value()?)),
            "--listen" => listen = Some(value()?.parse().context("--listen: not an address")?),
            "--wasm-dir" => wasm_dir = Some(PathBuf::from(value()?)),
            "--tick-every-ms" => {
                tick_every = Some(value()?.parse::<u64>().context("--tick-every-ms")?)
            }
            "--tick-path" => tick_path = value()?,
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let variables = variables_from_env(env);
    let tick = match tick_every {
        None => None,
        Some(ms) => Some(Tick {
            every: Duration::from_millis(ms),
            path: tick_path,
            bearer: variables
                .get("app_secret")
                .cloned()
                .context("--tick-every-ms needs SPIN_VARIABLE_APP_SECRET for the bearer")?,
        }),
    };
    Ok(HostConfig {
        manifest: manifest.context(USAGE)?,
        wasm_dir,
        listen: listen.context(USAGE)?,
        variables,
        tick,
        log_file: None,
    })
}

/// `SPIN_VARIABLE_QUEUE_ENDPOINT=x` → `queue_endpoint = x`.
fn variables_from_env(env: impl Iterator<Item = (String, String)>) -> HashMap<String, String> {
    env.filter_map(|(k, v)| {
        k.strip_prefix("SPIN_VARIABLE_")
            .map(|name| (name.to_ascii_lowercase(), v))
    })
    .collect()
}

/// A minimal stderr logger (the host needs nothing fancier).
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        // Dependencies (cranelift above all) are very chatty below `warn`.
        let own = metadata.target().starts_with("heimdall_spin_host");
        metadata.level() <= log::max_level() && (own || metadata.level() <= log::Level::Warn)
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!("[spin-host {}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

fn init_logger() {
    let level = match std::env::var("HEIMDALL_LOG").as_deref() {
        Ok("off") => log::LevelFilter::Off,
        Ok("error") => log::LevelFilter::Error,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("debug") => log::LevelFilter::Debug,
        Ok("trace") => log::LevelFilter::Trace,
        _ => log::LevelFilter::Info,
    };
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_flags_and_env() {
        let env = vec![
            ("SPIN_VARIABLE_APP_SECRET".to_string(), "s3".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let args = strings(&[
            "--manifest",
            "spin.toml",
            "--listen",
            "127.0.0.1:0",
            "--tick-every-ms",
            "500",
        ]);
        let c = parse_args(args.into_iter(), env.into_iter()).expect("valid");
        assert_eq!(c.manifest, PathBuf::from("spin.toml"));
        assert_eq!(c.variables.len(), 1);
        assert_eq!(c.variables["app_secret"], "s3");
        let tick = c.tick.expect("tick");
        assert_eq!(tick.bearer, "s3");
        assert_eq!(tick.path, "/reactions/tick");
        assert_eq!(tick.every, Duration::from_millis(500));
    }

    #[test]
    fn rejects_unknown_and_missing() {
        let no_env = std::iter::empty();
        assert!(parse_args(strings(&["--bogus"]).into_iter(), no_env).is_err());
        let args = strings(&["--manifest", "x"]);
        assert!(parse_args(args.into_iter(), std::iter::empty()).is_err());
    }
}
