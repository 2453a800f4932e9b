//! The month's VM hours: how long a VM existed this calendar month (UTC), which is what Azure
//! bills, counted from the state changes. Only the current month is kept; a session that runs
//! over midnight at the turn of a month counts in each month for its part.

use serde::{Deserialize, Serialize};
use time::{Month, OffsetDateTime};

use crate::ServerState;

/// VM time in one calendar month.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct MonthHours {
    /// `YYYY-MM` (UTC) of the month counted; empty before the first VM ever ran.
    pub month: String,
    /// VM time of the sessions that ended in `month` (ms), the part within `month`.
    pub vm_ms: u64,
}

impl ServerState {
    /// A VM exists from now on (Azure made it): it bills until capacity is 0 again.
    pub(crate) fn vm_billing(&mut self) {
        self.vm_since_ms.get_or_insert(self.now_ms);
    }

    /// The VM is gone: its time counts to the month.
    pub(crate) fn vm_not_billing(&mut self) {
        if let Some(since) = self.vm_since_ms.take() {
            self.month_hours.add(since, self.now_ms);
        }
    }

    /// VM time this month up to `now_ms`, the running session included.
    pub fn vm_ms_this_month(&self, now_ms: u64) -> u64 {
        let month = month_key(now_ms);
        let ended = if self.month_hours.month == month {
            self.month_hours.vm_ms
        } else {
            0
        };
        let running = self.vm_since_ms.map_or(0, |since| {
            now_ms.saturating_sub(since.max(month_start_ms(now_ms)))
        });
        ended + running
    }
}

impl MonthHours {
    /// Counts `[from, to)` into the month of `to` (the part before that month is past).
    fn add(&mut self, from_ms: u64, to_ms: u64) {
        let month = month_key(to_ms);
        if self.month != month {
            self.month = month;
            self.vm_ms = 0;
        }
        self.vm_ms += to_ms.saturating_sub(from_ms.max(month_start_ms(to_ms)));
    }
}

/// How far into its month `now_ms` is (0 to 1), to spread monthly fixed costs.
pub(crate) fn month_elapsed_fraction(now_ms: u64) -> f64 {
    let start = month_start_ms(now_ms);
    let end = next_month_start_ms(now_ms);
    (now_ms - start) as f64 / (end - start).max(1) as f64
}

fn datetime(ms: u64) -> OffsetDateTime {
    let seconds = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn month_key(ms: u64) -> String {
    let at = datetime(ms);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

fn first_of(year: i32, month: Month) -> u64 {
    time::Date::from_calendar_date(year, month, 1)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_or(0, |s| u64::try_from(s).unwrap_or(0) * 1000)
}

fn month_start_ms(ms: u64) -> u64 {
    let at = datetime(ms);
    first_of(at.year(), at.month())
}

fn next_month_start_ms(ms: u64) -> u64 {
    let at = datetime(ms);
    match at.month() {
        Month::December => first_of(at.year() + 1, Month::January),
        month => first_of(at.year(), month.next()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T23:00:00Z
    const NOV_30_23H: u64 = 1_796_079_600_000;
    const HOUR: u64 = 3_600_000;

    #[test]
    fn months_in_utc() {
        assert_eq!(month_key(NOV_30_23H), "2026-11");
        assert_eq!(month_key(NOV_30_23H + HOUR), "2026-12");
        assert_eq!(next_month_start_ms(NOV_30_23H), NOV_30_23H + HOUR);
        assert_eq!(month_start_ms(NOV_30_23H + 2 * HOUR), NOV_30_23H + HOUR);
        assert_eq!(
            next_month_start_ms(NOV_30_23H + HOUR),
            NOV_30_23H + HOUR + 31 * 24 * HOUR
        );
        let half = month_elapsed_fraction(NOV_30_23H - 15 * 24 * HOUR + HOUR);
        assert!((half - 0.5).abs() < 1e-9, "{half}");
    }

    #[test]
    fn a_session_over_the_turn_of_the_month_counts_its_part() {
        let mut state = ServerState {
            now_ms: NOV_30_23H - HOUR,
            ..ServerState::default()
        };
        state.vm_billing();
        assert_eq!(state.vm_ms_this_month(NOV_30_23H), HOUR);
        // Past midnight, December has only its own half hour.
        assert_eq!(
            state.vm_ms_this_month(NOV_30_23H + HOUR + HOUR / 2),
            HOUR / 2
        );
        state.now_ms = NOV_30_23H + 2 * HOUR;
        state.vm_not_billing();
        assert_eq!(state.month_hours.month, "2026-12");
        assert_eq!(state.vm_ms_this_month(NOV_30_23H + 3 * HOUR), HOUR);
        // A month later nothing of it is left.
        assert_eq!(state.vm_ms_this_month(NOV_30_23H + 40 * 24 * HOUR), 0);
    }

    #[test]
    fn sessions_add_up_and_a_second_start_does_not_reset_the_clock() {
        let mut state = ServerState::default();
        for start in [20 * HOUR, 10 * HOUR] {
            state.now_ms = NOV_30_23H - start;
            state.vm_billing();
            state.now_ms += HOUR / 2;
            state.vm_billing(); // the agent's vm-up after Azure's answer
            state.now_ms += HOUR / 2;
            state.vm_not_billing();
        }
        assert_eq!(state.vm_ms_this_month(NOV_30_23H), 2 * HOUR);
        state.vm_not_billing(); // nothing running: nothing changes
        assert_eq!(state.vm_ms_this_month(NOV_30_23H), 2 * HOUR);
    }
}
