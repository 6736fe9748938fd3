//! The abuse limits as pure rules: given a counter's state and the time, what an attempt may do.
//! The store keeps the counters; every rule here is decided before the guarded work runs, and
//! the store then takes the slot with one conditional write that fails if the state moved on.
//!
//! - Failed password checks and failed codes are counted per (phone, client network) pair; at
//!   `lockout_max_failures` the pair is refused until `lockout_seconds` after its last failure.
//!   Keying on the pair means a stranger cannot lock the owner out from the owner's network.
//! - Failed password checks are also counted per account, across networks: after
//!   `account_backoff_after_failures` each further attempt must wait (doubling, capped); from
//!   `account_max_failures` on a right password alone is not enough: the login needs a code sent
//!   by SMS (step-up), which an attacker without the phone cannot get.
//! - OTP sends are counted per phone (hour and day), per client network, per country calling
//!   code and overall, in fixed windows; SMS only go to mobile numbers of allowed countries.
//!   Codes to new numbers (sign-up, a change of number) also count per number range, and draw
//!   on other country and global budgets than codes to registered numbers (reset, login), so a
//!   flood of sends to fresh numbers cannot keep existing users out. The country and global
//!   budgets are split into shards, one chosen at random per send, so no single counter item
//!   limits the send rate of the whole service.

use std::net::IpAddr;

use crate::config::{Config, ConfigError};
use crate::error::AuthError;
use crate::phone::PhoneNumber;
use crate::settings::Env;

/// The limits, each field named after its variable (`LOCKOUT_MAX_FAILURES`: `lockout_max_failures`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Failed verifies (or logins) for one phone from one IP before that pair is blocked.
    pub lockout_max_failures: u32,
    pub lockout_seconds: u64,
    pub otp_sends_per_phone: u32,
    pub otp_sends_per_ip: u32,
    /// The window of the per-phone, per-IP and global caps (an hour by default).
    pub otp_send_window_seconds: u64,
    pub otp_sends_per_phone_per_day: u32,
    /// New-number sends (sign-up, change of number) per country calling code and day.
    pub otp_sends_per_country_per_day: u32,
    /// New-number sends of the whole service per send window.
    pub otp_sends_global_per_hour: u32,
    /// New-number sends per number range (`limits::number_range`) and send window.
    pub otp_sends_per_range_per_hour: u32,
    /// Sends to registered numbers (reset, login, step-up) per country calling code and day.
    pub otp_reserved_sends_per_country_per_day: u32,
    /// Sends to registered numbers of the whole service per send window.
    pub otp_reserved_sends_global_per_hour: u32,
    /// Shards of each country and global budget (`limits::shard_count`).
    pub otp_send_budget_shards: u32,
    /// Consecutive failed password checks of one account (from any IP) before back-off starts.
    pub account_backoff_after_failures: u32,
    pub account_backoff_base_seconds: u64,
    pub account_backoff_max_seconds: u64,
    /// Consecutive failures after which a login needs a code by SMS besides the password.
    pub account_max_failures: u32,
    /// How long an account's failures are remembered after the last one.
    pub account_failure_memory_seconds: u64,
    /// `check-phone` lookups per client network and send window (number enumeration).
    pub check_phone_lookups_per_ip: u32,
    /// Codes to one phone asked for from one client network per day.
    pub otp_sends_per_phone_network_per_day: u32,
    /// Reset and login codes asked for from one /24 (IPv4) or /48 (IPv6) per send window.
    pub otp_sends_per_ip_block_per_hour: u32,
    /// Step-up codes per account and day.
    pub otp_step_up_sends_per_day: u32,
    /// Codes per day to a registered number proved in the last 30 days once the reserve is spent.
    pub otp_proven_floor_per_day: u32,
    /// Wrong passwords one session may give (password change, account deletion) before it is
    /// ended; these checks are not held by the account back-off.
    pub session_password_max_failures: u32,
}

impl Limits {
    /// Every limit from its variable, the table's default when unset. The budgets and failure
    /// counts are read with `Env::limit`, which holds their rows to `Bench::Raise`.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            lockout_max_failures: env.limit("LOCKOUT_MAX_FAILURES")?,
            lockout_seconds: env.parse("LOCKOUT_SECONDS")?,
            otp_sends_per_phone: env.limit("OTP_SENDS_PER_PHONE")?,
            otp_sends_per_ip: env.limit("OTP_SENDS_PER_IP")?,
            otp_send_window_seconds: env.parse("OTP_SEND_WINDOW_SECONDS")?,
            otp_sends_per_phone_per_day: env.limit("OTP_SENDS_PER_PHONE_PER_DAY")?,
            otp_sends_per_country_per_day: env.limit("OTP_SENDS_PER_COUNTRY_PER_DAY")?,
            otp_sends_global_per_hour: env.limit("OTP_SENDS_GLOBAL_PER_HOUR")?,
            otp_sends_per_range_per_hour: env.limit("OTP_SENDS_PER_RANGE_PER_HOUR")?,
            otp_reserved_sends_per_country_per_day: env
                .limit("OTP_RESERVED_SENDS_PER_COUNTRY_PER_DAY")?,
            otp_reserved_sends_global_per_hour: env.limit("OTP_RESERVED_SENDS_GLOBAL_PER_HOUR")?,
            otp_send_budget_shards: env.bounded("OTP_SEND_BUDGET_SHARDS", 1..=100, "")?,
            account_backoff_after_failures: env.limit("ACCOUNT_BACKOFF_AFTER_FAILURES")?,
            account_backoff_base_seconds: env.parse("ACCOUNT_BACKOFF_BASE_SECONDS")?,
            account_backoff_max_seconds: env.parse("ACCOUNT_BACKOFF_MAX_SECONDS")?,
            account_max_failures: env.limit("ACCOUNT_MAX_FAILURES")?,
            account_failure_memory_seconds: env.parse("ACCOUNT_FAILURE_MEMORY_SECONDS")?,
            check_phone_lookups_per_ip: env.limit("CHECK_PHONE_LOOKUPS_PER_IP")?,
            otp_sends_per_phone_network_per_day: env
                .limit("OTP_SENDS_PER_PHONE_NETWORK_PER_DAY")?,
            otp_sends_per_ip_block_per_hour: env.limit("OTP_SENDS_PER_IP_BLOCK_PER_HOUR")?,
            otp_step_up_sends_per_day: env.limit("OTP_STEP_UP_SENDS_PER_DAY")?,
            otp_proven_floor_per_day: env.limit("OTP_PROVEN_FLOOR_PER_DAY")?,
            session_password_max_failures: env.limit("SESSION_PASSWORD_MAX_FAILURES")?,
        })
    }
}

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

/// The block of addresses a per-block limit counts: an IPv4 address's /24, an IPv6 address's
/// /48 (one site's allocation), so that a reset or login-code flood cannot escape the per-network
/// cap by walking the addresses of one provider's block.
pub fn block_of(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => block_of(&v4.to_string()),
            None => {
                let [a, b, c, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}::/48")
            }
        },
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
        Some(record) if record.failures >= limits.lockout_max_failures => Err(AuthError::Blocked {
            retry_after: record.expires_at.saturating_sub(now),
        }),
        Some(_) => Ok(PairSlot::Add),
    }
}

/// Failures the pair may still make after the one whose slot was planned from `record`.
pub fn pair_failures_left(limits: &Limits, record: Option<PairRecord>) -> u32 {
    let used = record.map_or(0, |record| record.failures) + 1;
    limits.lockout_max_failures.saturating_sub(used)
}

/// The wait after `failures` consecutive failures of an account, if any: doubling from
/// `account_backoff_base_seconds` once `account_backoff_after_failures` is reached, capped.
pub fn backoff_wait(limits: &Limits, failures: u32) -> Option<u64> {
    let doublings = failures.checked_sub(limits.account_backoff_after_failures)?;
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

/// How many guesses without a verification id the live codes of one number and purpose share in
/// a code's lifetime (from the first such guess): two fewer than a code takes with its id. Such a
/// guess is compared with every live code of the number, so a code alive across two of these
/// windows may take `max_attempts` guesses with its id and twice this many without.
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
    pair_left == 0
        || account_failures.is_some_and(|count| count >= limits.account_backoff_after_failures)
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

/// Which budgets a code draws on: those of new numbers, or the reserve of registered ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPool {
    /// Sign-up and change-of-number codes: numbers nobody has proven yet, the ones pumping uses.
    NewNumbers,
    /// Password reset and login codes: only numbers that already have an account.
    Registered,
    /// Step-up codes of a login whose password was right: the registered numbers' reserve, and
    /// a small allowance per account instead of the phone's caps.
    StepUp,
}

impl SendPool {
    /// The shared budgets (besides the phone's and the client network's) a send draws on.
    pub fn budgets(self) -> &'static [SendScope] {
        match self {
            Self::NewNumbers => &[SendScope::Range, SendScope::Country, SendScope::Global],
            Self::Registered | Self::StepUp => {
                &[SendScope::ReservedCountry, SendScope::ReservedGlobal]
            }
        }
    }
}

/// Who asks for a code: the client's network and block, and whether the network is one the
/// number's owner proved the number from (`AttemptsTable::mark_proof`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester<'a> {
    pub network: &'a str,
    pub block: String,
    pub known_network: bool,
}

/// The counters of the phone and the client a send to `phone` from `pool` is counted in:
/// - every send: the client network's cap;
/// - step-up codes: the account's small daily allowance;
/// - the others: the (phone, network) pair's daily cap, and the phone's ceilings: strangers'
///   networks share the hourly and daily ones, the owner's proven networks a daily one of their
///   own, so strangers filling theirs cannot silence the owner's requests;
/// - reset and login codes (sent to numbers a stranger names), from a network the owner has not
///   proved the number from: the client block's cap too.
pub fn caller_counters(
    limits: &Limits,
    pool: SendPool,
    phone: &PhoneNumber,
    requester: &Requester<'_>,
    now: u64,
) -> Vec<SendCounter> {
    let phone_subject = phone.as_str().to_owned();
    let mut scopes = vec![(SendScope::ClientNetwork, requester.network.to_owned())];
    if pool == SendPool::StepUp {
        scopes.push((SendScope::StepUp, phone_subject));
    } else {
        let pair = format!("{phone_subject}@{}", requester.network);
        scopes.push((SendScope::PhoneNetwork, pair));
        if requester.known_network {
            scopes.push((SendScope::PhoneDailyKnown, phone_subject));
        } else {
            scopes.push((SendScope::Phone, phone_subject.clone()));
            scopes.push((SendScope::PhoneDaily, phone_subject));
        }
        // Not for the owner's proven networks: a flood from a carrier's shared block must not
        // silence the owners behind it.
        if pool == SendPool::Registered && !requester.known_network {
            scopes.push((SendScope::ClientBlock, requester.block.clone()));
        }
    }
    scopes
        .into_iter()
        .map(|(scope, subject)| send_counter(limits, scope, subject, now, |_| 0))
        .collect()
}

/// Of a shared budget's `limit`, the sends that need no bot check while the check is asked for
/// only under pressure (`CAPTCHA_WHEN=under-pressure`): the first half. Counting a send without
/// a token against this smaller limit in its own transaction makes the switch atomic, so a
/// parallel burst cannot pass the half-way mark unchecked.
pub fn unchecked_share(limit: u32) -> u32 {
    limit.div_ceil(2)
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
    /// New numbers of one range (`number_range`), per window.
    Range,
    /// New numbers of one country calling code, per day.
    Country,
    /// New numbers, the whole service, per window.
    Global,
    /// Registered numbers of one country calling code, per day.
    ReservedCountry,
    /// Registered numbers, the whole service, per window.
    ReservedGlobal,
    /// Lookups of whether numbers are registered, by one client network, per window.
    Lookup,
    /// One phone from one client network, per day.
    PhoneNetwork,
    /// One phone from the networks its owner proved it from, per day.
    PhoneDailyKnown,
    /// Reset and login codes asked for from one /24 (IPv4) or /48 (IPv6), per window.
    ClientBlock,
    /// Step-up codes of one account, per day.
    StepUp,
    /// Codes to one registered number whose owner proved it recently, once the reserve is
    /// spent, per day.
    ProvenFloor,
}

impl SendScope {
    /// The name of the budget in counter keys, logs and audit events.
    pub fn name(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::PhoneDaily => "phone-day",
            Self::ClientNetwork => "ip",
            Self::Range => "range",
            Self::Country => "country",
            Self::Global => "global",
            Self::ReservedCountry => "reserved-country",
            Self::ReservedGlobal => "reserved-global",
            Self::Lookup => "lookup",
            Self::PhoneNetwork => "phone-net",
            Self::PhoneDailyKnown => "phone-day-known",
            Self::ClientBlock => "ip-block",
            Self::StepUp => "step-up",
            Self::ProvenFloor => "floor",
        }
    }

    /// Whether the budget is one of the registered numbers' reserve (which a recently proven
    /// number may go beyond, on its floor).
    pub fn is_reserve(self) -> bool {
        matches!(self, Self::ReservedCountry | Self::ReservedGlobal)
    }

    /// Whether the budget is split into shards: the ones every send of the service (or of a
    /// country) writes, whose single item would otherwise cap the send rate.
    pub fn is_sharded(self) -> bool {
        matches!(
            self,
            Self::Country | Self::Global | Self::ReservedCountry | Self::ReservedGlobal
        )
    }

    /// Whether the budget is shared by strangers (the service's, a country's, a range's, not
    /// one caller's): crossing half and nine tenths of it is an audit event, and a send without
    /// a bot check may use only its first half.
    pub fn is_shared_budget(self) -> bool {
        self == Self::Range || self.is_sharded()
    }

    /// Whether a send the provider failed is taken back from this budget. The phone's are, so
    /// that its owner asking again after a failure does not count twice; the client network's
    /// keeps it, so that a number the provider always refuses cannot be sent to in a loop that
    /// drains the shared budgets; the country and global budgets, which cap spend, keep it, since
    /// a failed or timed-out call may still have sent (and been billed for) the SMS.
    pub fn refunded_on_failed_send(self) -> bool {
        match self {
            Self::Phone
            | Self::PhoneDaily
            | Self::PhoneNetwork
            | Self::PhoneDailyKnown
            | Self::StepUp
            | Self::ProvenFloor => true,
            Self::ClientNetwork
            | Self::ClientBlock
            | Self::Range
            | Self::Country
            | Self::Global
            | Self::ReservedCountry
            | Self::ReservedGlobal
            | Self::Lookup => false,
        }
    }
}

/// One counter a send is counted in: the budget, whose it is (the phone, network, range,
/// country or `all`), the shard of a sharded budget, and the limit and window that apply (a
/// shard's limit is its share of the budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendCounter {
    pub scope: SendScope,
    pub subject: String,
    pub shard: Option<u32>,
    pub limit: u32,
    pub window: Window,
}

/// The counter of `scope` for `subject` at `now`; a sharded budget's shard is `pick_shard(n)`
/// of its `n` shards (random in production).
pub fn send_counter(
    limits: &Limits,
    scope: SendScope,
    subject: String,
    now: u64,
    pick_shard: impl FnOnce(u32) -> u32,
) -> SendCounter {
    let (limit, window) = send_limit(limits, scope, now);
    let mut counter = SendCounter {
        scope,
        subject,
        shard: None,
        limit,
        window,
    };
    if scope.is_sharded() {
        let count = shard_count(limit, limits.otp_send_budget_shards);
        let index = pick_shard(count).min(count - 1);
        counter.shard = Some(index);
        counter.limit = shard_limit(limit, count, index);
    }
    counter
}

/// The shared budgets a send to `phone` from `pool` is counted in (`SendPool::budgets`).
pub fn budget_counters(
    limits: &Limits,
    pool: SendPool,
    phone: &PhoneNumber,
    now: u64,
    pick_shard: impl FnMut(u32) -> u32,
) -> Vec<SendCounter> {
    scope_counters(limits, pool.budgets(), phone, now, pick_shard)
}

/// Instead of the reserve, for a number its owner proved recently once the reserve is spent: the
/// number's own small floor, so that strangers spending a country's reserve cannot cut its
/// owners off.
pub fn floor_counters(limits: &Limits, phone: &PhoneNumber, now: u64) -> Vec<SendCounter> {
    scope_counters(limits, &[SendScope::ProvenFloor], phone, now, |_| 0)
}

fn scope_counters(
    limits: &Limits,
    scopes: &[SendScope],
    phone: &PhoneNumber,
    now: u64,
    mut pick_shard: impl FnMut(u32) -> u32,
) -> Vec<SendCounter> {
    let (country_code, _) = phone.sms_profile();
    scopes
        .iter()
        .map(|&scope| {
            let subject = match scope {
                SendScope::Range => number_range(phone).to_owned(),
                SendScope::Country | SendScope::ReservedCountry => country_code.to_string(),
                SendScope::ProvenFloor => phone.as_str().to_owned(),
                _ => "all".to_owned(),
            };
            send_counter(limits, scope, subject, now, &mut pick_shard)
        })
        .collect()
}

/// The range a number belongs to for the per-range budget: the E.164 number without its last
/// four digits. Pumping walks consecutive numbers; real users rarely share a range in an hour.
pub fn number_range(phone: &PhoneNumber) -> &str {
    let number = phone.as_str();
    &number[..number.len().saturating_sub(4)]
}

/// The least share of a budget a shard holds: smaller budgets have fewer shards (a budget under
/// twice this has one, and is then exact), since a send that finds its shard full is refused
/// after one more try even if a third shard has room.
pub const MIN_SHARD_SHARE: u32 = 10;

/// The shards a budget of `limit` is split into: `shards`, but none holding less than
/// `MIN_SHARD_SHARE`.
pub fn shard_count(limit: u32, shards: u32) -> u32 {
    shards.min(limit / MIN_SHARD_SHARE).max(1)
}

/// The share of a budget of `limit` that shard `index` (of `shard_count`) holds; the shares sum
/// to the budget.
pub fn shard_limit(limit: u32, shard_count: u32, index: u32) -> u32 {
    let count = shard_count.max(1);
    limit / count + u32::from(index < limit % count)
}

/// The pressure levels (percent of a budget) reported once per window each.
pub const PRESSURE_LEVELS: [u32; 2] = [50, 90];

/// The levels `hits` of `limit` has reached.
pub fn pressure_reached(hits: u64, limit: u32) -> impl Iterator<Item = u32> {
    PRESSURE_LEVELS
        .into_iter()
        .filter(move |level| limit > 0 && hits * 100 >= u64::from(*level) * u64::from(limit))
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
        SendScope::Range => (
            limits.otp_sends_per_range_per_hour,
            limits.otp_send_window_seconds,
        ),
        SendScope::Country => (limits.otp_sends_per_country_per_day, DAY_SECONDS),
        SendScope::Global => (
            limits.otp_sends_global_per_hour,
            limits.otp_send_window_seconds,
        ),
        SendScope::ReservedCountry => (limits.otp_reserved_sends_per_country_per_day, DAY_SECONDS),
        SendScope::ReservedGlobal => (
            limits.otp_reserved_sends_global_per_hour,
            limits.otp_send_window_seconds,
        ),
        SendScope::Lookup => (
            limits.check_phone_lookups_per_ip,
            limits.otp_send_window_seconds,
        ),
        SendScope::PhoneNetwork => (limits.otp_sends_per_phone_network_per_day, DAY_SECONDS),
        SendScope::PhoneDailyKnown => (limits.otp_sends_per_phone_per_day, DAY_SECONDS),
        SendScope::ClientBlock => (
            limits.otp_sends_per_ip_block_per_hour,
            limits.otp_send_window_seconds,
        ),
        SendScope::StepUp => (limits.otp_step_up_sends_per_day, DAY_SECONDS),
        SendScope::ProvenFloor => (limits.otp_proven_floor_per_day, DAY_SECONDS),
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
        crate::config::Config::from_lookup(|name| {
            crate::settings::table_variables()
                .any(|table| table == name)
                .then(|| "t".to_owned())
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
    fn blocks_are_an_ipv4_24_and_an_ipv6_48() {
        assert_eq!(block_of("203.0.113.7"), "203.0.113.0/24");
        assert_eq!(block_of("::ffff:203.0.113.7"), "203.0.113.0/24");
        assert_eq!(block_of("2001:db8:1:2::1"), "2001:db8:1::/48");
        assert_eq!(block_of("2001:db8:1:ffff::1"), block_of("2001:db8:1:2::9"));
        assert_ne!(block_of("2001:db8:1::1"), block_of("2001:db8:2::1"));
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
            SendScope::Range,
            SendScope::Country,
            SendScope::Global,
            SendScope::ReservedCountry,
            SendScope::ReservedGlobal,
            SendScope::Lookup,
            SendScope::PhoneNetwork,
            SendScope::PhoneDailyKnown,
            SendScope::ClientBlock,
            SendScope::StepUp,
            SendScope::ProvenFloor,
        ]
        .into_iter()
        .filter(|scope| scope.refunded_on_failed_send())
        .collect();
        assert_eq!(
            refunded,
            [
                SendScope::Phone,
                SendScope::PhoneDaily,
                SendScope::PhoneNetwork,
                SendScope::PhoneDailyKnown,
                SendScope::StepUp,
                SendScope::ProvenFloor
            ]
        );
    }

    #[test]
    fn shares_of_a_sharded_budget_sum_to_the_budget() {
        for (limit, shards) in [
            (500, 8),
            (7, 8),
            (1, 8),
            (0, 8),
            (1000, 1),
            (13, 4),
            (45, 8),
        ] {
            let count = shard_count(limit, shards);
            assert!(count >= 1 && count <= shards.max(1));
            assert!(count == 1 || limit / count >= MIN_SHARD_SHARE);
            let shares: Vec<u32> = (0..count).map(|i| shard_limit(limit, count, i)).collect();
            assert_eq!(shares.iter().sum::<u32>(), limit, "{limit} in {shards}");
            if limit > 0 {
                assert!(shares.iter().all(|share| *share >= 1));
            }
        }
        assert_eq!(shard_count(500, 8), 8);
        assert_eq!(shard_count(45, 8), 4);
        assert_eq!(shard_count(19, 8), 1);
    }

    #[test]
    fn a_range_is_the_number_without_its_last_four_digits() {
        let phone = PhoneNumber::parse("+989101234567", phonenumber::country::Id::IR).unwrap();
        assert_eq!(number_range(&phone), "+98910123");
    }

    #[test]
    fn pressure_is_reached_at_half_and_nine_tenths() {
        assert_eq!(pressure_reached(4, 10).count(), 0);
        assert_eq!(pressure_reached(5, 10).collect::<Vec<_>>(), [50]);
        assert_eq!(pressure_reached(9, 10).collect::<Vec<_>>(), [50, 90]);
        assert_eq!(pressure_reached(1, 1).collect::<Vec<_>>(), [50, 90]);
        assert_eq!(pressure_reached(0, 0).count(), 0);
    }
}
