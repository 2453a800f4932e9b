//! Trouble the ARM fake can be told to make, as Azure does on a bad evening: throttling,
//! its own errors, a scale set busy with another operation, long-running operations answered
//! with 202 and a `Location`, and spot sizes without capacity.

use std::collections::HashSet;

/// One kind of trouble for the next `count` requests it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `TooManyRequests` with `Retry-After`, to any ARM request.
    Throttle { count: u32, retry_after_s: u32 },
    /// This 5xx, to any ARM request.
    ServerError { count: u32, status: u16 },
    /// 409 `Conflict` ("another operation is in progress"), to a PATCH.
    Busy { count: u32 },
    /// 202 Accepted with a `Location` header and no body, to a PATCH: the operation is then
    /// followed at that URL, which answers 202 until it is done.
    Accepted { count: u32 },
}

impl Fault {
    fn left(&mut self) -> &mut u32 {
        match self {
            Fault::Throttle { count, .. }
            | Fault::ServerError { count, .. }
            | Fault::Busy { count }
            | Fault::Accepted { count } => count,
        }
    }

    fn applies_to_every_request(&self) -> bool {
        matches!(self, Fault::Throttle { .. } | Fault::ServerError { .. })
    }
}

/// The faults waiting to happen.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pending: Vec<Fault>,
    /// Spot sizes Azure has no capacity for: a scale-up with one fails `AllocationFailed`.
    pub(crate) no_capacity: HashSet<String>,
}

impl Faults {
    pub(crate) fn add(&mut self, fault: Fault) {
        self.pending.push(fault);
    }

    /// The fault for this request, if one is due (and counts it).
    pub(crate) fn take(&mut self, is_patch: bool) -> Option<Fault> {
        let i = self
            .pending
            .iter()
            .position(|f| f.applies_to_every_request() || is_patch)?;
        let fault = self.pending[i].clone();
        let left = self.pending[i].left();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.pending.remove(i);
        }
        Some(fault)
    }
}
