//! What a failure from Entra or ARM means for the caller: try again later, try another VM size,
//! or give up. Only the last is a failure to report to players.
//!
//! - **Not now**: throttling (429), Azure's own trouble (5xx), another operation on the scale set
//!   (409 other than capacity), an operation preempted by a newer one, a network failure.
//! - **No capacity**: Azure has no spot capacity (or no quota) for the VM size in the region;
//!   another size may have some. The codes are those of Compute's allocation errors
//!   (PROTOCOLS.md 4.7); they come either with the PATCH or in the failed async operation.
//! - **Final**: everything else (a missing role, a bad request, an invalid client secret).

use crate::ArmError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Retry,
    NoCapacity,
    Final,
}

/// Compute's codes for "no capacity for this size here, now" (compared without case: the docs
/// spell `OverConstrained…` and the service `Overconstrained…`).
const NO_CAPACITY: &[&str] = &[
    "AllocationFailed",
    "ZonalAllocationFailed",
    "OverconstrainedAllocationRequest",
    "OverconstrainedZonalAllocationRequest",
    "SkuNotAvailable",
    "QuotaExceeded",
    "AzureSpotIsNotSupportedForThisVMSize",
];

/// Codes that mean "try again": transient by their own description.
const RETRYABLE: &[&str] = &[
    "TooManyRequests",
    "RetryableError",
    "RetryableErrorDueToAnotherOperation",
    "OperationPreempted",
    "InternalExecutionError",
    "InternalServerError",
    "ServerTimeout",
    "Unreachable",
];

/// The kind of a failure given its HTTP status (if it came as a response) and its code.
pub fn classify(status: Option<u16>, code: &str, message: &str) -> FailureKind {
    let is = |list: &[&str]| list.iter().any(|c| c.eq_ignore_ascii_case(code));
    // Quota errors come as OperationNotAllowed with the quota named in the message.
    let quota = code.eq_ignore_ascii_case("OperationNotAllowed")
        && message.to_ascii_lowercase().contains("quota");
    if is(NO_CAPACITY) || quota {
        return FailureKind::NoCapacity;
    }
    match status {
        Some(429 | 409) | Some(500..=599) => FailureKind::Retry,
        _ if is(RETRYABLE) => FailureKind::Retry,
        _ => FailureKind::Final,
    }
}

impl ArmError {
    pub fn kind(&self) -> FailureKind {
        match self {
            ArmError::Cloud {
                status,
                code,
                message,
                ..
            } => classify(Some(*status), code, message),
            // Entra: throttled or in trouble is worth waiting for; a refused client is not.
            ArmError::Entra { status, code, .. } => classify(Some(*status), code, ""),
            ArmError::Unexpected { status, .. } => classify(Some(*status), "", ""),
            ArmError::InvalidInput(_) => FailureKind::Final,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{example, response};

    #[test]
    fn capacity_and_quota_errors_ask_for_another_size() {
        for code in [
            "AllocationFailed",
            "ZonalAllocationFailed",
            "OverConstrainedAllocationRequest",
            "SkuNotAvailable",
        ] {
            assert_eq!(
                classify(Some(409), code, ""),
                FailureKind::NoCapacity,
                "{code}"
            );
            assert_eq!(
                classify(None, code, ""),
                FailureKind::NoCapacity,
                "{code} in an operation"
            );
        }
        let quota = "Operation could not be completed as it results in exceeding approved LowPriorityCores quota.";
        assert_eq!(
            classify(Some(409), "OperationNotAllowed", quota),
            FailureKind::NoCapacity
        );
    }

    #[test]
    fn throttling_trouble_and_busy_are_not_now() {
        assert_eq!(
            classify(Some(429), "TooManyRequests", ""),
            FailureKind::Retry
        );
        assert_eq!(
            classify(Some(503), "ServiceUnavailable", ""),
            FailureKind::Retry
        );
        assert_eq!(
            classify(Some(409), "Conflict", "another operation is in progress"),
            FailureKind::Retry
        );
        assert_eq!(classify(None, "OperationPreempted", ""), FailureKind::Retry);
        let throttled =
            crate::error::cloud_error(&response(429, &[("retry-after", "7")], Vec::new()));
        assert_eq!(throttled.kind(), FailureKind::Retry);
    }

    #[test]
    fn refusals_are_final() {
        assert_eq!(
            classify(Some(403), "AuthorizationFailed", ""),
            FailureKind::Final
        );
        assert_eq!(
            classify(Some(400), "InvalidParameter", ""),
            FailureKind::Final
        );
        assert_eq!(
            classify(None, "ProvisioningStateFailed", ""),
            FailureKind::Final
        );
        let documented = example("entra/client-credentials-error-400.json").into_bytes();
        let refused = crate::entra::parse_token_response(&response(400, &[], documented));
        assert_eq!(refused.unwrap_err().kind(), FailureKind::Final);
    }
}
