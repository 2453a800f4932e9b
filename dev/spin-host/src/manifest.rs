//! The subset of Spin's manifest v2 (`spin.toml`) that this host understands.
//!
//! Anything the app does not use (key-value stores, non-HTTP triggers, remote sources) is either
//! ignored, when it cannot change behaviour, or refused with an error, when it would.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A parsed manifest with paths resolved; variables still unresolved templates.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub variables: BTreeMap<String, VariableDecl>,
    pub routes: Vec<RouteDecl>,
    pub components: BTreeMap<String, ComponentDecl>,
}

/// An application variable declaration (`[variables]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecl {
    pub route: Route,
    pub component: String,
}

/// A trigger route: a path (exact `/x` or wildcard `/x/...`) or private (no public route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Exact(String),
    /// The prefix without the trailing `/...`; `""` for the catch-all `/...`.
    Wildcard(String),
    Private,
}

/// One `[component.<id>]` table.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    pub source: PathBuf,
    pub allowed_outbound_hosts: Vec<String>,
    pub variables: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
    #[serde(flatten)]
    others: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: toml::Value,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(flatten)]
    others: BTreeMap<String, toml::Value>,
}

/// Keys of `[component.<id>]` that change nothing at run time for this host.
const IGNORED_COMPONENT_KEYS: &[&str] = &["build", "description", "exclude_files"];

/// Reads and parses `spin.toml`. `wasm_dir`, when given, replaces the directory of every
/// component `source` (builds live outside the clone); otherwise sources are relative to the
/// manifest's directory.
pub fn load(path: &Path, wasm_dir: Option<&Path>) -> Result<Manifest> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading manifest {}", path.display()))?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse(&text, base, wasm_dir).with_context(|| format!("in manifest {}", path.display()))
}

/// Parses manifest text; see [`load`].
pub fn parse(text: &str, base: &Path, wasm_dir: Option<&Path>) -> Result<Manifest> {
    let raw: RawManifest = toml::from_str(text).context("parsing TOML")?;
    if raw.spin_manifest_version.as_integer() != Some(2) {
        bail!("only spin_manifest_version = 2 is supported");
    }
    if let Some(kind) = raw.trigger.others.keys().next() {
        bail!("trigger type `{kind}` is not supported by this host (only `http`)");
    }
    for (name, decl) in &raw.variables {
        if decl.required && decl.default.is_some() {
            bail!("variable `{name}` cannot be both required and have a default");
        }
    }
    let components = raw
        .component
        .into_iter()
        .map(|(id, c)| Ok((id.clone(), component(&id, c, base, wasm_dir)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let routes = raw
        .trigger
        .http
        .into_iter()
        .map(|t| route_decl(t, &components))
        .collect::<Result<Vec<_>>>()?;
    Ok(Manifest {
        variables: raw.variables,
        routes,
        components,
    })
}

fn component(
    id: &str,
    raw: RawComponent,
    base: &Path,
    wasm_dir: Option<&Path>,
) -> Result<ComponentDecl> {
    if let Some(key) = raw
        .others
        .keys()
        .find(|k| !IGNORED_COMPONENT_KEYS.contains(&k.as_str()))
    {
        bail!("component `{id}`: key `{key}` is not supported by this host");
    }
    let Some(source) = raw.source.as_str() else {
        bail!("component `{id}`: only a local file path is supported as `source`");
    };
    let source = match wasm_dir {
        Some(dir) => {
            let file = Path::new(source)
                .file_name()
                .with_context(|| format!("component `{id}`: source `{source}` has no file name"))?;
            dir.join(file)
        }
        None => base.join(source),
    };
    Ok(ComponentDecl {
        source,
        allowed_outbound_hosts: raw.allowed_outbound_hosts,
        variables: raw.variables,
    })
}

fn route_decl(
    raw: RawHttpTrigger,
    components: &BTreeMap<String, ComponentDecl>,
) -> Result<RouteDecl> {
    let Some(component) = raw.component.as_str() else {
        bail!("inline components in [[trigger.http]] are not supported; name a [component.<id>]");
    };
    if !components.contains_key(component) {
        bail!("[[trigger.http]] names component `{component}`, which is not defined");
    }
    let route = match raw.route {
        RawRoute::Private { private: true } => Route::Private,
        RawRoute::Private { private: false } => {
            bail!("route `{{ private = false }}` for `{component}` is not meaningful")
        }
        RawRoute::Path(p) => parse_route(&p).with_context(|| format!("component `{component}`"))?,
    };
    Ok(RouteDecl {
        route,
        component: component.to_string(),
    })
}

/// Parses a route string: `/x` is exact, `/x/...` is a wildcard (and `/...` catches all).
pub fn parse_route(route: &str) -> Result<Route> {
    if !route.starts_with('/') {
        bail!("route `{route}` must start with `/`");
    }
    if let Some(prefix) = route.strip_suffix("/...") {
        return Ok(Route::Wildcard(prefix.to_string()));
    }
    if route.contains("...") {
        bail!("route `{route}`: `...` is only allowed as the last segment");
    }
    // Spin treats `/x/` like `/x`.
    let trimmed = route.trim_end_matches('/');
    Ok(Route::Exact(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
a = { default = "x" }
b = { required = true, secret = true }
[[trigger.http]]
route = "/one"
component = "c1"
[[trigger.http]]
route = "/two/..."
component = "c1"
[[trigger.http]]
route = { private = true }
component = "c2"
[component.c1]
source = "target/x/c1.wasm"
allowed_outbound_hosts = ["{{ a }}"]
[component.c1.variables]
v = "{{ a }}"
[component.c1.build]
command = "true"
[component.c2]
source = "c2.wasm"
"#;

    #[test]
    fn parses_the_sample() {
        let m = parse(SAMPLE, Path::new("/app"), None).expect("parses");
        assert_eq!(m.variables.len(), 2);
        assert!(m.variables["b"].required && m.variables["b"].secret);
        assert_eq!(m.routes.len(), 3);
        assert_eq!(m.routes[0].route, Route::Exact("/one".into()));
        assert_eq!(m.routes[1].route, Route::Wildcard("/two".into()));
        assert_eq!(m.routes[2].route, Route::Private);
        assert_eq!(
            m.components["c1"].source,
            PathBuf::from("/app/target/x/c1.wasm")
        );
        assert_eq!(m.components["c1"].variables["v"], "{{ a }}");
    }

    #[test]
    fn wasm_dir_replaces_the_source_directory() {
        let m = parse(SAMPLE, Path::new("/app"), Some(Path::new("/cache/wasm"))).expect("parses");
        assert_eq!(
            m.components["c1"].source,
            PathBuf::from("/cache/wasm/c1.wasm")
        );
    }

    #[test]
    fn refuses_unknown_component_and_other_triggers() {
        let bad = SAMPLE.replace("component = \"c2\"", "component = \"nope\"");
        let err = format!("{:#}", parse(&bad, Path::new("."), None).unwrap_err());
        assert!(err.contains("nope"), "{err}");
        let redis = format!("{SAMPLE}\n[[trigger.redis]]\nchannel = \"x\"\ncomponent = \"c1\"\n");
        let err = format!("{:#}", parse(&redis, Path::new("."), None).unwrap_err());
        assert!(err.contains("redis"), "{err}");
    }

    #[test]
    fn route_forms() {
        assert_eq!(parse_route("/...").unwrap(), Route::Wildcard(String::new()));
        assert_eq!(parse_route("/a/").unwrap(), Route::Exact("/a".into()));
        assert_eq!(parse_route("/").unwrap(), Route::Exact("/".into()));
        assert!(parse_route("a").is_err());
        assert!(parse_route("/a/.../b").is_err());
    }
}
