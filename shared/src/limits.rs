//! The abuse limits as pure rules: given a counter's state and the time, what an attempt may do.
//! The store keeps the counters; every rule here is decided before the guarded work runs, and
//! the store then takes the slot with one conditional write that fails if the state moved on.
//!
//! - Failed password checks and failed codes are counted per (phone, client network) pair; at
//!   `max_failures_per_pair` the pair is refused until `block_seconds` after its last failure.
//!   Keying on the pair means a stranger cannot lock the owner out from the owner's network.
//! - Failed password checks are also counted per account, across networks: after
//!   `account_backoff_after` each further attempt must wait (doubling, capped); from
//!   `account_max_failures` on a right password alone is not enough: the login needs a code sent
//!   by SMS (step-up), which an attacker without the phone cannot get.
//! - OTP sends are counted per phone (hour and day), per client network, per country calling
//!   code and overall, in fixed windows; SMS only go to mobile numbers of allowed countries.

use std::net::IpAddr;

use crate::config::{Config, Limits};
use crate::error::AuthError;
use crate::phone::PhoneNumber;

/// The network a per-IP limit counts: an IPv4 address as is, an IPv6 address by its /64 (one
/// subscriber usually holds a whole /64, so counting single addresses would be no limit).
pub fn network_of(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
        // API Gateway always gives an address; anything else is counted as given.
        Err(_) => ip.trim().to_owned(),
    }
}

/// The live failure record of one (phone, network) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairRecord {
    pub failures: u32,
    pub expires_at: u64,
}

/// The live failure record of one account, across networks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountRecord {
    /// Consecutive failed password checks.
    pub failures: u32,
    /// No attempt is evaluated before this time (0: none pending).
    pub next_attempt_at: u64,
    pub expires_at: u64,
}

/// How a pair's slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairSlot {
    /// No live record: start one at one failure.
    Restart,
    /// Add one to the live record, provided it is still under the limit.
    Add,
}

/// How an account's slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountSlot {
    /// No live record: start one at one failure.
    Restart { next_attempt_at: u64 },
    /// Below the back-off: add one, provided the count is still below it (so any number of
    /// parallel attempts can take free slots, and no more than there are).
    Free,
    /// In back-off: exactly `expected` failures so far and the wait over; the slot sets the next
    /// wait, so parallel attempts get one slot between them.
    Gated { expected: u32, next_attempt_at: u64 },
    /// Exempt from the wait (a network the account logged in from before, or a step-up code):
    /// counted, but not held, so strangers who take every slot of the back-off cannot keep the
    /// owner out.
    Counted,
}

/// The pair's slot, or the refusal while it is blocked.
pub fn pair_slot(
    limits: &Limits,
    record: Option<PairRecord>,
    now: u64,
) -> Result<PairSlot, AuthError> {
    match record {
        None => Ok(PairSlot::Restart),
        Some(record) if record.failures >= limits.max_failures_per_pair => {
            Err(AuthError::Blocked {
                retry_after: record.expires_at.saturating_sub(now),
            })
        }
        Some(_) => Ok(PairSlot::Add),
    }
}

/// Failures the pair may still make after the one whose slot was planned from `record`.
pub fn pair_failures_left(limits: &Limits, record: Option<PairRecord>) -> u32 {
    let used = record.map_or(0, |record| record.failures) + 1;
    limits.max_failures_per_pair.saturating_sub(used)
}

/// The wait after `failures` consecutive failures of an account, if any: doubling from
/// `account_backoff_base_seconds` once `account_backoff_after` is reached, capped.
pub fn backoff_wait(limits: &Limits, failures: u32) -> Option<u64> {
    let doublings = failures.checked_sub(limits.account_backoff_after)?;
    let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
    Some(
        limits
            .account_backoff_base_seconds
            .saturating_mul(factor)
            .min(limits.account_backoff_max_seconds),
    )
}

/// The account's slot, or the refusal while it waits out its back-off. An attempt
/// `exempt_from_wait` (from a network the account logged in from recently, or with a step-up
/// code) is counted but not held.
pub fn account_slot(
    limits: &Limits,
    record: Option<AccountRecord>,
    exempt_from_wait: bool,
    now: u64,
) -> Result<AccountSlot, AuthError> {
    let next_after = |failures| backoff_wait(limits, failures).map_or(0, |wait| now + wait);
    let Some(record) = record else {
        return Ok(AccountSlot::Restart {
            next_attempt_at: next_after(1),
        });
    };
    if exempt_from_wait {
        return Ok(AccountSlot::Counted);
    }
    if record.next_attempt_at > now {
        return Err(AuthError::BackingOff {
            retry_after: record.next_attempt_at - now,
        });
    }
    let counted = record.failures.saturating_add(1);
    if backoff_wait(limits, counted).is_none() {
        return Ok(AccountSlot::Free);
    }
    Ok(AccountSlot::Gated {
        expected: record.failures,
        next_attempt_at: next_after(counted),
    })
}

/// Of a code's `max_attempts` guesses, how many may be made without its verification id: all but
/// two, so that strangers (who have no id) always leave the client that asked for the code at
/// least two tries, and the total per code stays `max_attempts`.
pub fn anonymous_guesses(max_attempts: u32) -> u32 {
    max_attempts.saturating_sub(2).max(1)
}

/// True when a right password alone no longer logs in: the account has had
/// `account_max_failures` consecutive failures, so a code sent to the phone is needed too.
pub fn step_up_required(limits: &Limits, record: Option<AccountRecord>) -> bool {
    record.is_some_and(|record| record.failures >= limits.account_max_failures)
}

/// True when this failure is the one that blocked the pair or put the account into back-off
/// (a lock-out, for the audit log).
pub fn is_lockout(limits: &Limits, pair_left: u32, account_failures: Option<u32>) -> bool {
    pair_left == 0 || account_failures.is_some_and(|count| count >= limits.account_backoff_after)
}

/// Refuses numbers SMS must not go to: outside the allowed country codes, or of a kind that
/// cannot receive SMS or costs the sender extra (premium rate, shared cost, fixed lines). The
/// configured test numbers are exempt: they get no SMS.
pub fn ensure_sms_allowed(config: &Config, phone: &PhoneNumber) -> Result<(), AuthError> {
    if config.test_otp_numbers.contains_key(phone.as_str()) {
        return Ok(());
    }
    let (country_code, mobile) = phone.sms_profile();
    if !config.sms_allowed_to(country_code) {
        return Err(AuthError::InvalidRequest(
            "SMS codes are not available for this country.".into(),
        ));
    }
    if !mobile {
        return Err(AuthError::InvalidRequest(
            "This number cannot receive SMS codes; use a mobile number.".into(),
        ));
    }
    Ok(())
}

/// What a send counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendScope {
    /// One phone, per window (an hour by default).
    Phone,
    /// One phone, per day.
    PhoneDaily,
    /// One client network, per window.
    ClientNetwork,
    /// One country calling code, per day.
    Country,
    /// The whole service, per window.
    Global,
    /// Lookups of whether numbers are registered, by one client network, per window.
    Lookup,
}

impl SendScope {
    /// Whether a send the provider failed is taken back from this budget. The phone's are, so
    /// that its owner asking again after a failure does not count twice; the client network's
    /// keeps it, so that a number the provider always refuses cannot be sent to in a loop that
    /// drains the shared budgets; the country and global budgets, which cap spend, keep it, since
    /// a failed or timed-out call may still have sent (and been billed for) the SMS.
    pub fn refunded_on_failed_send(self) -> bool {
        match self {
            Self::Phone | Self::PhoneDaily => true,
            Self::ClientNetwork | Self::Country | Self::Global | Self::Lookup => false,
        }
    }
}

/// A fixed window a counter counts in: its index (named in the counter's key, so a new window
/// is a new item and nothing is ever reset) and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub index: u64,
    pub ends_at: u64,
}

const DAY_SECONDS: u64 = 86_400;

/// The limit of `scope` and the window it counts in at `now`.
pub fn send_limit(limits: &Limits, scope: SendScope, now: u64) -> (u32, Window) {
    let (limit, length) = match scope {
        SendScope::Phone => (limits.otp_sends_per_phone, limits.otp_send_window_seconds),
        SendScope::PhoneDaily => (limits.otp_sends_per_phone_per_day, DAY_SECONDS),
        SendScope::ClientNetwork => (limits.otp_sends_per_ip, limits.otp_send_window_seconds),
        SendScope::Country => (limits.otp_sends_per_country_per_day, DAY_SECONDS),
        SendScope::Global => (
            limits.otp_sends_global_per_window,
            limits.otp_send_window_seconds,
        ),
        SendScope::Lookup => (
            limits.check_phone_lookups_per_ip,
            limits.otp_send_window_seconds,
        ),
    };
    let length = length.max(1);
    let index = now / length;
    (
        limit,
        Window {
            index,
            ends_at: (index + 1) * length,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        crate::config::Config::from_lookup(|name| match name {
            "USERS_TABLE"
            | "OTPS_TABLE"
            | "REGISTRATION_TOKENS_TABLE"
            | "ATTEMPTS_TABLE"
            | "SESSIONS_TABLE"
            | "SIGNING_KEYS_TABLE" => Some("t".to_owned()),
            _ => None,
        })
        .expect("config")
        .limits
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_as_is() {
        assert_eq!(network_of("203.0.113.7"), "203.0.113.7");
        assert_eq!(
            network_of("2001:db8:1:2:aaaa::1"),
            network_of("2001:db8:1:2:ffff:1:2:3")
        );
        assert_eq!(network_of("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(network_of("2001:db8:1:2::1"), network_of("2001:db8:1:3::1"));
        assert_eq!(network_of("::ffff:203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn a_pair_is_refused_at_its_limit_until_its_record_expires() {
        let limits = limits();
        assert_eq!(pair_slot(&limits, None, 100).unwrap(), PairSlot::Restart);
        let record = |failures| {
            Some(PairRecord {
                failures,
                expires_at: 3700,
            })
        };
        assert_eq!(pair_slot(&limits, record(2), 100).unwrap(), PairSlot::Add);
        assert!(matches!(
            pair_slot(&limits, record(3), 100),
            Err(AuthError::Blocked { retry_after: 3600 })
        ));
        assert_eq!(pair_failures_left(&limits, record(1)), 1);
        assert_eq!(pair_failures_left(&limits, None), 2);
    }

    #[test]
    fn the_account_back_off_starts_at_ten_doubles_and_is_capped() {
        let limits = limits();
        assert_eq!(backoff_wait(&limits, 9), None);
        assert_eq!(backoff_wait(&limits, 10), Some(30));
        assert_eq!(backoff_wait(&limits, 11), Some(60));
        assert_eq!(backoff_wait(&limits, 40), Some(3600));
        assert_eq!(backoff_wait(&limits, u32::MAX), Some(3600));
    }

    #[test]
    fn account_slots_are_free_below_the_back_off_and_gated_in_it() {
        let limits = limits();
        let now = 1_000;
        let record = |failures, next_attempt_at| {
            Some(AccountRecord {
                failures,
                next_attempt_at,
                expires_at: now + 100,
            })
        };
        assert_eq!(
            account_slot(&limits, None, false, now).unwrap(),
            AccountSlot::Restart { next_attempt_at: 0 }
        );
        assert_eq!(
            account_slot(&limits, record(8, 0), false, now).unwrap(),
            AccountSlot::Free
        );
        // The tenth failure sets the first wait.
        assert_eq!(
            account_slot(&limits, record(9, 0), false, now).unwrap(),
            AccountSlot::Gated {
                expected: 9,
                next_attempt_at: now + 30
            }
        );
        assert!(matches!(
            account_slot(&limits, record(10, now + 5), false, now),
            Err(AuthError::BackingOff { retry_after: 5 })
        ));
        assert_eq!(
            account_slot(&limits, record(10, now), false, now).unwrap(),
            AccountSlot::Gated {
                expected: 10,
                next_attempt_at: now + 60
            }
        );
        // A network the account logged in from is counted, never held.
        assert_eq!(
            account_slot(&limits, record(50, now + 3000), true, now).unwrap(),
            AccountSlot::Counted
        );
    }

    #[test]
    fn step_up_is_required_from_the_maximum_failures_on() {
        let limits = limits();
        let record = |failures| {
            Some(AccountRecord {
                failures,
                ..AccountRecord::default()
            })
        };
        assert!(!step_up_required(&limits, None));
        assert!(!step_up_required(&limits, record(99)));
        assert!(step_up_required(&limits, record(100)));
    }

    #[test]
    fn send_windows_are_fixed_and_named_by_their_index() {
        let limits = limits();
        let (limit, window) = send_limit(&limits, SendScope::Phone, 7_300);
        assert_eq!(limit, 5);
        assert_eq!(
            window,
            Window {
                index: 2,
                ends_at: 10_800
            }
        );
        let (limit, _) = send_limit(&limits, SendScope::Lookup, 0);
        assert_eq!(limit, 100);
    }

    #[test]
    fn a_failed_send_is_refunded_to_the_caller_but_not_to_the_spend_caps() {
        let refunded: Vec<SendScope> = [
            SendScope::Phone,
            SendScope::PhoneDaily,
            SendScope::ClientNetwork,
            SendScope::Country,
            SendScope::Global,
            SendScope::Lookup,
        ]
        .into_iter()
        .filter(|scope| scope.refunded_on_failed_send())
        .collect();
        assert_eq!(refunded, [SendScope::Phone, SendScope::PhoneDaily]);
    }
}
