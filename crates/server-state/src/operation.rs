//! Scale operations and what their answers mean: follow them, retry what Azure answers "not
//! now" to (after `Retry-After`, with a growing delay across ticks), move to the next spot VM
//! size when one has no capacity, and report only a final error as a failure.

use crate::messages;
use crate::outbox::{backoff_ms, EffectKind};
use crate::state::{Operation, ScaleOutcome, ServerState};
use crate::stop::{StopCause, StopPhase};

/// "Not now" answers to one operation before it counts as failed (with the delays of
/// `backoff_ms`, about 20 minutes).
const MAX_RETRIES: u32 = 10;

impl ServerState {
    pub(crate) fn request_capacity(&mut self, capacity: u32, size: Option<String>) {
        self.operation = Some(Operation::new(capacity, size.clone(), &self.cause));
        self.push(EffectKind::Scale { capacity, size });
    }

    /// Polls the operation, or sends the scale request again (it did not get through, or Azure
    /// said "not now"), once its wait is over. Scale requests are idempotent: the scaler
    /// compares with what the scale set has.
    pub(crate) fn follow_operation(&mut self) {
        let Some(operation) = self.operation.clone() else {
            return;
        };
        if self.scaler_call_queued() || self.now_ms < operation.not_before_ms {
            return;
        }
        let effect = match operation.poll_url {
            Some(poll_url) => EffectKind::PollOperation {
                capacity: operation.capacity,
                poll_url,
            },
            None => EffectKind::Scale {
                capacity: operation.capacity,
                size: operation.size,
            },
        };
        // Logged with the event that asked for the operation, not the tick that follows it.
        match operation.cause.as_str() {
            "" => self.push(effect),
            cause => self.push_for(effect, cause.to_owned()),
        }
    }

    pub(crate) fn scaled(&mut self, capacity: u32, outcome: ScaleOutcome) {
        let Some(operation) = self.operation.as_mut() else {
            return; // a late answer for an operation already settled
        };
        if operation.capacity != capacity {
            return; // the answer for an operation that a newer one replaced
        }
        match outcome {
            ScaleOutcome::InProgress {
                poll_url,
                retry_after_ms,
            } => {
                operation.poll_url = Some(poll_url);
                operation.not_before_ms = self.now_ms.saturating_add(retry_after_ms);
            }
            ScaleOutcome::Succeeded => {
                self.operation = None;
                if capacity > 0 {
                    self.vm_billing();
                    self.push(EffectKind::LookupInstance);
                } else {
                    self.stopped();
                }
            }
            ScaleOutcome::Retry {
                reason,
                retry_after_ms,
            } => self.not_now(reason, retry_after_ms),
            ScaleOutcome::NoCapacity { reason, region } if capacity > 0 => {
                self.next_size(&reason, region.as_deref())
            }
            ScaleOutcome::NoCapacity { reason, .. } | ScaleOutcome::Failed { message: reason } => {
                self.failed_for_good(capacity, &reason)
            }
        }
    }

    /// A final error from Azure, about a start or a stop.
    fn failed_for_good(&mut self, capacity: u32, detail: &str) {
        self.operation = None;
        if capacity > 0 {
            self.start_failed(messages::could_not_start(detail));
        } else {
            self.scale_in_failed(detail);
        }
    }

    /// Azure answered "not now": ask again later, unless it has said so too often.
    fn not_now(&mut self, reason: String, retry_after_ms: Option<u64>) {
        let Some(operation) = self.operation.as_mut() else {
            return;
        };
        operation.retries += 1;
        if operation.retries > MAX_RETRIES {
            let capacity = operation.capacity;
            return self.failed_for_good(capacity, &messages::kept_refusing(&reason));
        }
        let delay = retry_after_ms
            .unwrap_or(0)
            .max(backoff_ms(operation.retries));
        operation.not_before_ms = self.now_ms.saturating_add(delay);
        operation.last_problem = Some(reason.clone());
        if operation.retries == 1 && operation.capacity > 0 {
            self.progress(messages::waiting_for_azure(&reason, delay));
        }
    }

    /// The size asked for has no spot capacity: the next one on the owner's list, or the end.
    fn next_size(&mut self, reason: &str, region: Option<&str>) {
        let tried = self.operation.as_ref().and_then(|o| o.size.clone());
        let sizes = &self.settings.vm_sizes;
        let next = tried
            .as_ref()
            .and_then(|t| sizes.iter().position(|s| s == t))
            .and_then(|i| sizes.get(i + 1))
            .cloned();
        match next {
            Some(size) => {
                let content = messages::no_capacity(tried.as_deref(), region, reason, &size);
                self.tell(content);
                self.size = Some(size.clone());
                self.request_capacity(1, Some(size));
            }
            None => {
                let reason = messages::no_capacity_anywhere(sizes, tried.as_deref(), region);
                self.operation = None;
                self.start_failed(reason);
            }
        }
    }

    /// A failed start ends at capacity 0 (made sure of: a failed allocation can leave the
    /// capacity at 1), then `Failed` with `reason`, said once capacity 0 is sure (usually at
    /// once: the scaler then only reads it).
    pub(crate) fn start_failed(&mut self, reason: String) {
        self.begin_stop(StopCause::StartFailed { reason }, StopPhase::ScalingIn);
        self.request_capacity(0, None);
    }

    /// Azure refused capacity 0 for good. The VM may still run: `Failed`, and the owner must
    /// look. When this was making sure of capacity 0 after a failed start, the start's reason
    /// is what players need to hear.
    fn scale_in_failed(&mut self, detail: &str) {
        match self.stop.as_ref().map(|s| &s.cause) {
            Some(StopCause::StartFailed { reason }) => {
                let reason = reason.clone();
                self.fail(reason);
            }
            _ => self.fail(messages::stop_refused(detail)),
        }
    }
}
