//! Which component imports this host provides. Checked before instantiation so that an
//! unsupported import (say `fermyon:spin/key-value@2.0.0`) fails at start-up, by name, rather
//! than as an obscure linker error or, worse, at the first request.

use anyhow::{bail, Result};

/// WASI 0.2 interfaces linked by `wasmtime_wasi::p2::add_to_linker_async` and
/// `wasmtime_wasi_http::add_only_http_to_linker_async`. Sockets are linked (Rust's std may
/// import them) but every address is denied by the WASI context, so they cannot bypass
/// `allowed_outbound_hosts`.
const WASI_P2_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/ip-name-lookup",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
];

/// Spin interfaces this host implements, with their exact versions.
const SPIN_INTERFACES: &[&str] = &["fermyon:spin/variables@2.0.0"];

/// Whether the host provides the import called `name` (e.g. `wasi:io/streams@0.2.3`).
pub fn is_provided(name: &str) -> bool {
    if SPIN_INTERFACES.contains(&name) {
        return true;
    }
    let Some((interface, version)) = name.split_once('@') else {
        return false;
    };
    // Any 0.2.x: the linker matches semver-compatible versions of WASI 0.2.
    WASI_P2_INTERFACES.contains(&interface) && version.starts_with("0.2.")
}

/// The names among `imports` that the host does not provide, in order.
pub fn unsupported<'a>(imports: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    imports.into_iter().filter(|n| !is_provided(n)).collect()
}

/// Fails, naming the component and each unsupported import, if there is any.
pub fn check<'a>(component: &str, imports: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let missing = unsupported(imports);
    match missing.as_slice() {
        [] => Ok(()),
        [one] => bail!("component `{component}` imports `{one}`, which this host does not provide"),
        many => bail!(
            "component `{component}` imports {}, which this host does not provide",
            many.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `wasm-tools component wit` shows for a spin-sdk 5.2 HTTP component using variables.
    const SPIN_SDK_COMPONENT: &[&str] = &[
        "wasi:io/error@0.2.0",
        "wasi:io/poll@0.2.0",
        "wasi:io/streams@0.2.0",
        "wasi:http/types@0.2.0",
        "wasi:http/outgoing-handler@0.2.0",
        "fermyon:spin/variables@2.0.0",
        "wasi:cli/environment@0.2.3",
        "wasi:cli/exit@0.2.3",
        "wasi:cli/stderr@0.2.3",
        "wasi:random/random@0.2.3",
        "wasi:clocks/monotonic-clock@0.2.6",
    ];

    #[test]
    fn a_spin_sdk_http_component_is_fully_provided() {
        assert!(unsupported(SPIN_SDK_COMPONENT.iter().copied()).is_empty());
        assert!(check("x", SPIN_SDK_COMPONENT.iter().copied()).is_ok());
    }

    #[test]
    fn refuses_key_value_by_name() {
        let imports = ["wasi:io/streams@0.2.0", "fermyon:spin/key-value@2.0.0"];
        let err = check("interactions", imports).unwrap_err().to_string();
        assert_eq!(
            err,
            "component `interactions` imports `fermyon:spin/key-value@2.0.0`, \
             which this host does not provide"
        );
    }

    #[test]
    fn refuses_other_versions_and_unversioned_names() {
        let imports = [
            "fermyon:spin/variables@3.0.0",
            "wasi:http/types@0.3.0-rc-2026-01-06",
            "wasi:keyvalue/store@0.2.0-draft2",
            "spin:postgres/postgres@4.0.0",
            "custom-import",
        ];
        assert_eq!(unsupported(imports), imports.to_vec());
        let err = check("c", imports).unwrap_err().to_string();
        assert!(
            err.contains("`custom-import`") && err.contains("`wasi:keyvalue/store@0.2.0-draft2`")
        );
    }
}
