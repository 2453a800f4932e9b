//! What the caller may do on an Azure resource: ARM's "list permissions for a resource"
//! (`GET {id}/providers/Microsoft.Authorization/permissions`), matched the way Azure RBAC
//! matches: without case, `*` standing for any run of characters, and an action allowed when
//! one entry's `actions` grant it and the same entry's `notActions` do not take it back.

use serde::Deserialize;

/// The api-version of Microsoft.Authorization's permissions list.
pub const API_VERSION: &str = "2022-04-01";

/// The path below a resource id that lists the caller's permissions on it.
pub fn path(resource_id: &str) -> String {
    format!(
        "{}/providers/Microsoft.Authorization/permissions",
        resource_id.trim_end_matches('/')
    )
}

/// One entry: the actions of one role assignment that reaches the resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
}

#[derive(Deserialize)]
struct PermissionList {
    value: Vec<Permission>,
}

/// The entries of a 200 answer.
pub fn parse(body: &[u8]) -> Result<Vec<Permission>, String> {
    serde_json::from_slice::<PermissionList>(body)
        .map(|list| list.value)
        .map_err(|e| format!("the permissions list is unreadable: {e}"))
}

/// Whether any entry allows `action`.
pub fn allows(permissions: &[Permission], action: &str) -> bool {
    permissions.iter().any(|p| {
        p.actions.iter().any(|a| matches(a, action))
            && !p.not_actions.iter().any(|n| matches(n, action))
    })
}

/// `pattern` (with `*` wildcards) against an action, without case.
pub fn matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let action = action.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    // Without a `*`, the one part must be the whole action.
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = action.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITE: &str = "Microsoft.Compute/virtualMachineScaleSets/write";

    #[test]
    fn wildcards_match_like_arm() {
        for pattern in [
            WRITE,
            "microsoft.compute/virtualmachinescalesets/WRITE",
            "*",
            "Microsoft.Compute/*",
            "Microsoft.Compute/virtualMachineScaleSets/*",
            "*/write",
            "Microsoft.*/virtualMachineScaleSets/*",
        ] {
            assert!(matches(pattern, WRITE), "{pattern}");
        }
        for pattern in [
            "Microsoft.Compute/virtualMachineScaleSets/read",
            "Microsoft.Network/*",
            "*/read",
            "Microsoft.Compute/virtualMachineScaleSets",
            "Microsoft.Compute/virtualMachineScaleSets/write/extra",
            "",
        ] {
            assert!(!matches(pattern, WRITE), "{pattern}");
        }
    }

    #[test]
    fn not_actions_take_back_within_their_entry_only() {
        let contributor_without_writes = Permission {
            actions: vec!["*".into()],
            not_actions: vec!["*/write".into()],
        };
        let alone = [contributor_without_writes.clone()];
        assert!(!allows(&alone, WRITE));
        assert!(allows(
            &alone,
            "Microsoft.Compute/virtualMachineScaleSets/read"
        ));
        let scaler = Permission {
            actions: vec![WRITE.into()],
            not_actions: vec![],
        };
        assert!(allows(&[contributor_without_writes, scaler], WRITE));
        assert!(!allows(&[], WRITE));
    }

    #[test]
    fn reads_the_list() {
        let body = br#"{"value":[{"actions":["Microsoft.Compute/*/read"],"notActions":[],"dataActions":[],"notDataActions":[]}],"nextLink":null}"#;
        let permissions = parse(body).unwrap();
        assert!(allows(
            &permissions,
            "Microsoft.Compute/virtualMachineScaleSets/read"
        ));
        assert!(parse(b"[]").is_err());
        assert_eq!(
            path("/subscriptions/s/resourceGroups/g/"),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Authorization/permissions"
        );
    }
}
