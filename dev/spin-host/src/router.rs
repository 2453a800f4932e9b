//! Route matching for inbound requests, and the `spin-*` request headers Spin derives from it.

use crate::manifest::{Route, RouteDecl};

/// The public routes of the app, most specific first.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

/// The result of routing one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    /// The route as written in the manifest, e.g. `/reactions/...`.
    pub raw_route: String,
    /// The route without the wildcard, e.g. `/reactions`.
    pub component_route: String,
    /// The part of the path after `component_route` (empty for an exact match).
    pub path_info: String,
}

impl Router {
    /// Builds the router; private routes are left out, so they are unreachable from outside.
    pub fn new(decls: &[RouteDecl]) -> Self {
        let mut routes: Vec<(Route, String)> = decls
            .iter()
            .filter(|d| d.route != Route::Private)
            .map(|d| (d.route.clone(), d.component.clone()))
            .collect();
        // Exact routes beat wildcards; among wildcards the longest prefix wins.
        routes.sort_by_key(|(r, _)| match r {
            Route::Exact(_) => (0, 0),
            Route::Wildcard(prefix) => (1, usize::MAX - prefix.len()),
            Route::Private => (2, 0),
        });
        Self { routes }
    }

    /// Finds the component for a request path (without query).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.routes
            .iter()
            .find_map(|(route, component)| match_route(route, path, component))
    }
}

/// Matches `path` against one route.
pub fn match_route(route: &Route, path: &str, component: &str) -> Option<RouteMatch> {
    match route {
        Route::Exact(r) => {
            let normalized = match path.trim_end_matches('/') {
                "" => "/",
                p => p,
            };
            (normalized == r).then(|| RouteMatch {
                component: component.to_string(),
                raw_route: r.clone(),
                component_route: r.clone(),
                path_info: String::new(),
            })
        }
        Route::Wildcard(prefix) => {
            let rest = path.strip_prefix(prefix.as_str())?;
            if !rest.is_empty() && !rest.starts_with('/') {
                return None; // `/x/...` must not match `/xy`.
            }
            Some(wildcard_match(prefix, rest, component))
        }
        Route::Private => None,
    }
}

/// The match used for service chaining to a component: its wildcard route if it has one,
/// otherwise (private) the whole path as path info.
pub fn chained_match(decls: &[RouteDecl], component: &str, path: &str) -> RouteMatch {
    decls
        .iter()
        .filter(|d| d.component == component)
        .find_map(|d| match_route(&d.route, path, component))
        .unwrap_or_else(|| wildcard_match("", path, component))
}

fn wildcard_match(prefix: &str, rest: &str, component: &str) -> RouteMatch {
    RouteMatch {
        component: component.to_string(),
        raw_route: format!("{prefix}/..."),
        component_route: prefix.to_string(),
        path_info: rest.to_string(),
    }
}

/// Spin's request headers for a routed request.
pub fn spin_headers(m: &RouteMatch, full_url: &str, client: &str) -> Vec<(&'static str, String)> {
    vec![
        ("spin-full-url", full_url.to_string()),
        ("spin-path-info", m.path_info.clone()),
        ("spin-matched-route", m.raw_route.clone()),
        ("spin-raw-component-route", m.raw_route.clone()),
        ("spin-component-route", m.component_route.clone()),
        ("spin-base-path", "/".to_string()),
        ("spin-client-addr", client.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_route;

    fn decl(route: &str, component: &str) -> RouteDecl {
        RouteDecl {
            route: if route == "private" {
                Route::Private
            } else {
                parse_route(route).expect("valid route")
            },
            component: component.to_string(),
        }
    }

    fn router() -> Router {
        Router::new(&[
            decl("/...", "fallback"),
            decl("/reactions/...", "reactions"),
            decl("/reactions/deep/...", "deep"),
            decl("/interactions", "interactions"),
            decl("/reactions/exact", "exact"),
            decl("private", "scaler"),
        ])
    }

    fn component(path: &str) -> Option<String> {
        router().route(path).map(|m| m.component)
    }

    #[test]
    fn most_specific_wins() {
        assert_eq!(component("/interactions").as_deref(), Some("interactions"));
        assert_eq!(component("/interactions/").as_deref(), Some("interactions"));
        assert_eq!(component("/interactions/x").as_deref(), Some("fallback"));
        assert_eq!(component("/reactions/kick").as_deref(), Some("reactions"));
        assert_eq!(component("/reactions").as_deref(), Some("reactions"));
        assert_eq!(component("/reactions/exact").as_deref(), Some("exact"));
        assert_eq!(component("/reactions/deep/x").as_deref(), Some("deep"));
        assert_eq!(component("/reactionsx").as_deref(), Some("fallback"));
        assert_eq!(component("/").as_deref(), Some("fallback"));
    }

    #[test]
    fn private_routes_are_not_public() {
        let r = Router::new(&[decl("private", "scaler"), decl("/a", "a")]);
        assert_eq!(r.route("/"), None);
        assert_eq!(r.route("/capacity"), None);
    }

    #[test]
    fn match_details() {
        let m = router().route("/reactions/tick").expect("routed");
        assert_eq!(m.raw_route, "/reactions/...");
        assert_eq!(m.component_route, "/reactions");
        assert_eq!(m.path_info, "/tick");
        let m = router().route("/interactions").expect("routed");
        assert_eq!(m.path_info, "");
        assert_eq!(m.raw_route, "/interactions");
    }

    #[test]
    fn chaining_uses_the_component_route_or_the_whole_path() {
        let decls = [
            decl("/reactions/...", "reactions"),
            decl("private", "scaler"),
        ];
        let m = chained_match(&decls, "reactions", "/reactions/kick");
        assert_eq!(m.path_info, "/kick");
        let m = chained_match(&decls, "scaler", "/capacity");
        assert_eq!(m.path_info, "/capacity");
        assert_eq!(m.raw_route, "/...");
    }
}
