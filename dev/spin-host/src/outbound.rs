//! `allowed_outbound_hosts`: parsing the (already template-expanded) entries and matching
//! outgoing request URLs against them, the way Spin does for HTTP.

use anyhow::{bail, Context, Result};

/// One allowed origin pattern: `scheme://host[:port]` with `*` wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: any host with at least one label before the suffix (stored with the dot).
    Subdomain(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// No port written: the scheme's default port.
    Default,
    Exact(u16),
}

impl AllowedHost {
    /// Parses one entry. Paths are refused (Spin does too); a lone trailing `/` is tolerated.
    pub fn parse(entry: &str) -> Result<Self> {
        let (scheme, rest) = entry.split_once("://").with_context(|| {
            format!("allowed host `{entry}` must look like scheme://host[:port]")
        })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "*" => SchemePattern::Any,
            s @ ("http" | "https") => SchemePattern::Exact(s.to_string()),
            s => bail!("allowed host `{entry}`: scheme `{s}` is not supported (http, https, *)"),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('?') || authority.contains('#') {
            bail!("allowed host `{entry}` must not contain a path");
        }
        let (host, port) = split_host_port(authority)
            .with_context(|| format!("allowed host `{entry}`: bad port"))?;
        let host = parse_host_pattern(host).with_context(|| format!("allowed host `{entry}`"))?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(
                p.parse()
                    .with_context(|| format!("allowed host `{entry}`: bad port `{p}`"))?,
            ),
        };
        if scheme == SchemePattern::Any && port == PortPattern::Default {
            bail!("allowed host `{entry}`: a `*` scheme needs an explicit port");
        }
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(s) => *s == scheme,
        };
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomain(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == port,
            PortPattern::Default => default_port(&scheme) == Some(port),
        };
        scheme_ok && host_ok && port_ok
    }
}

/// The whole list for one component.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn parse(entries: &[String]) -> Result<Self> {
        let allowed = entries
            .iter()
            .map(|e| AllowedHost::parse(e))
            .collect::<Result<_>>()?;
        Ok(Self { allowed })
    }

    /// Checks a request URI (absolute, as wasi-http builds it). The default port comes from
    /// the scheme.
    pub fn allows_uri(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let Some(port) = uri.port_u16().or_else(|| default_port(scheme)) else {
            return false;
        };
        self.allowed.iter().any(|a| a.allows(scheme, host, port))
    }
}

pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]`, keeping bracketed IPv6 literals intact.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']').context("unclosed `[`")?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(p) => Ok((host, Some(p))),
            None if rest.is_empty() => Ok((host, None)),
            None => bail!("unexpected `{rest}`"),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    })
}

fn parse_host_pattern(host: &str) -> Result<HostPattern> {
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        bail!("empty host");
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') {
            bail!("bad wildcard host `{host}`");
        }
        return Ok(HostPattern::Subdomain(format!(".{suffix}")));
    }
    if host.contains('*') {
        bail!("`*` is only allowed as the whole host or its first label");
    }
    // http::Uri::host() keeps the brackets of an IPv6 literal, so compare with them too.
    Ok(HostPattern::Exact(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        OutboundPolicy::parse(&entries).expect("valid entries")
    }

    fn allows(p: &OutboundPolicy, url: &str) -> bool {
        p.allows_uri(&url.parse().expect("valid uri"))
    }

    #[test]
    fn exact_origin_with_port() {
        let p = policy(&["http://127.0.0.1:10001"]);
        assert!(allows(&p, "http://127.0.0.1:10001/devstoreaccount1/q"));
        assert!(!allows(&p, "http://127.0.0.1:10002/"));
        assert!(!allows(&p, "https://127.0.0.1:10001/"));
        assert!(!allows(&p, "http://127.0.0.2:10001/"));
    }

    #[test]
    fn default_ports_come_from_the_scheme() {
        let p = policy(&["https://discord.com"]);
        assert!(allows(&p, "https://discord.com/api/v10"));
        assert!(allows(&p, "https://DISCORD.com:443/"));
        assert!(!allows(&p, "https://discord.com:8443/"));
        assert!(!allows(&p, "http://discord.com/"));
    }

    #[test]
    fn wildcards() {
        let p = policy(&["http://*.spin.internal", "https://example.com:*"]);
        assert!(allows(&p, "http://scaler.spin.internal/capacity"));
        assert!(!allows(&p, "http://spin.internal/"));
        assert!(!allows(&p, "http://evilspin.internal/"));
        assert!(allows(&p, "https://example.com:9999/"));
        let any = policy(&["*://*:*"]);
        assert!(allows(&any, "http://anything:1/"));
    }

    #[test]
    fn refuses_paths_and_junk() {
        assert!(AllowedHost::parse("http://x.test/path").is_err());
        assert!(AllowedHost::parse("http://x.test/").is_ok());
        assert!(AllowedHost::parse("x.test").is_err());
        assert!(AllowedHost::parse("ftp://x.test").is_err());
        assert!(AllowedHost::parse("http://x.test:port").is_err());
        assert!(AllowedHost::parse("http://a*b.test").is_err());
        assert!(AllowedHost::parse("*://x.test").is_err());
    }

    #[test]
    fn empty_policy_denies_everything() {
        assert!(!allows(&OutboundPolicy::default(), "http://127.0.0.1/"));
    }
}
