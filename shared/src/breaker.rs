//! The SMS circuit breaker: codes that are sent and never entered are SMS pumping's signature,
//! so each destination (a number range as the range budget keys it, and a country calling code)
//! has its conversion measured, codes sent against codes verified, over a sliding window, and a
//! state decided from it: `normal`, `challenge` (every send there needs the bot check) or
//! `blocked` (ranges only: no code to a new number there; registered numbers keep their own
//! caps and need the check).
//!
//! - Counting: a send counts `sent` in its own transaction, a spent code counts `verified` in
//!   the transaction that spends it, in the bucket of its send (`Conversion`); no request is
//!   added to either path.
//! - Deciding: off the hot path. The attempts table's stream hands the counted writes to the
//!   `sms-breaker` function (`review`), which reads each touched destination's window and its
//!   state, decides with hysteresis (`Breaker::decide`) and writes a change conditionally, with
//!   an `sms_breaker_changed` audit event.
//! - Enforcing (`SMS_BREAKER_MODE=enforce`): a send to a new number checks the state items in
//!   its transaction; a code to a registered number asks for the bot check up front, from the
//!   read the check makes anyway, so its answer tells nothing about the account.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::dynamodb::Event;
use futures_util::StreamExt;
use lambda_http::lambda_runtime::LambdaEvent;

use crate::App;
use crate::config::ConfigError;
use crate::error::AuthError;
use crate::limits;
use crate::phone::PhoneNumber;
use crate::settings::Env;

/// What the breaker does (`SMS_BREAKER_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerMode {
    /// Nothing is counted or decided.
    Off,
    /// Conversion is counted and states decided and reported; nothing is refused.
    Observe,
    /// As `observe`, and the states refuse sends.
    Enforce,
}

/// The breaker's settings, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    pub mode: BreakerMode,
    /// The sliding window conversion is measured over.
    pub window_seconds: u64,
    /// The buckets the window slides by (they divide it).
    pub buckets: u64,
    /// Codes sent to a destination in the window before any decision about it.
    pub min_sent: u64,
    /// Codes sent in the window before a destination may be blocked.
    pub block_min_sent: u64,
    /// Below this percentage of codes entered, a destination is challenged.
    pub challenge_below: u64,
    /// Below this percentage (and past `block_min_sent`), it is blocked.
    pub block_below: u64,
    /// At or above this percentage (or under `min_sent` sent), a state steps down one level.
    pub recover_at: u64,
    /// Items each destination's counts and state are split into (`OTP_SEND_BUDGET_SHARDS`), so
    /// that parallel sends and spends to one destination do not all write (and so collide on)
    /// one item.
    pub shards: u32,
}

impl Breaker {
    pub fn from_env(env: &Env<'_>, shards: u32) -> Result<Self, ConfigError> {
        let mode = env.choice(
            "SMS_BREAKER_MODE",
            &[
                ("off", BreakerMode::Off),
                ("observe", BreakerMode::Observe),
                ("enforce", BreakerMode::Enforce),
            ],
        )?;
        let window_seconds = env.bounded("SMS_BREAKER_WINDOW_SECONDS", 60..=86_400, " seconds")?;
        let buckets = env.bounded("SMS_BREAKER_BUCKETS", 1..=24, "")?;
        if window_seconds % buckets != 0 {
            return Err(ConfigError::Invalid {
                name: "SMS_BREAKER_BUCKETS",
                reason: format!("must divide SMS_BREAKER_WINDOW_SECONDS ({window_seconds})"),
            });
        }
        let shards = shards.max(1);
        // A review reads a destination's window (every bucket of every shard) and its state
        // (every shard) in one batch read, which takes at most 100 keys.
        if (buckets + 1) * u64::from(shards) > 100 {
            return Err(ConfigError::Invalid {
                name: "SMS_BREAKER_BUCKETS",
                reason: format!(
                    "plus one, times OTP_SEND_BUDGET_SHARDS ({shards}), must be at most 100 (one \
                     batch read)"
                ),
            });
        }
        let percent = |name| env.bounded(name, 0..=100, " percent");
        let breaker = Self {
            mode,
            window_seconds,
            buckets,
            min_sent: env.bounded("SMS_BREAKER_MIN_SENT", 1..=1_000_000, "")?,
            block_min_sent: env.bounded("SMS_BREAKER_BLOCK_MIN_SENT", 1..=1_000_000, "")?,
            challenge_below: percent("SMS_BREAKER_CHALLENGE_BELOW_PERCENT")?,
            block_below: percent("SMS_BREAKER_BLOCK_BELOW_PERCENT")?,
            recover_at: percent("SMS_BREAKER_RECOVER_PERCENT")?,
            shards,
        };
        if breaker.block_below > breaker.challenge_below {
            return Err(ConfigError::Invalid {
                name: "SMS_BREAKER_BLOCK_BELOW_PERCENT",
                reason: "must not be above SMS_BREAKER_CHALLENGE_BELOW_PERCENT".to_owned(),
            });
        }
        if breaker.recover_at < breaker.challenge_below {
            return Err(ConfigError::Invalid {
                name: "SMS_BREAKER_RECOVER_PERCENT",
                reason: "must not be below SMS_BREAKER_CHALLENGE_BELOW_PERCENT (no hysteresis)"
                    .to_owned(),
            });
        }
        Ok(breaker)
    }

    pub fn counts(&self) -> bool {
        self.mode != BreakerMode::Off
    }

    pub fn enforces(&self) -> bool {
        self.mode == BreakerMode::Enforce
    }

    fn bucket_seconds(&self) -> u64 {
        (self.window_seconds / self.buckets).max(1)
    }

    /// The bucket a send at `at` counts in.
    pub fn bucket_of(&self, at: u64) -> u64 {
        at / self.bucket_seconds()
    }

    /// The buckets of the window at `now`, the current one last.
    pub fn window_buckets(&self, now: u64) -> std::ops::RangeInclusive<u64> {
        let current = self.bucket_of(now);
        current.saturating_sub(self.buckets - 1)..=current
    }

    /// When a bucket's counts leave every window: its item's TTL.
    pub fn bucket_expires_at(&self, bucket: u64) -> u64 {
        (bucket + 1) * self.bucket_seconds() + self.window_seconds
    }

    /// The level the counts of a destination at `current` lead to: up at once to the worst
    /// level the counts show, down one level only once they recover (fewer than `min_sent`
    /// codes sent in the window, or `recover_at` percent entered), so that a ratio between
    /// the thresholds holds the state where it is.
    ///
    /// Only codes to new numbers, and their entries, block (and keep blocking): codes to
    /// registered numbers, and the stand-ins of codes to numbers without an account, which
    /// anyone can have counted with no SMS sent and no budget of the destination spent, raise a
    /// destination to `challenge` at most, and cannot dilute the ratio a block is decided on.
    pub fn decide(&self, current: Level, counts: Counts) -> Level {
        let judged = counts.sent >= self.min_sent;
        let percent = counts.percent_verified();
        let blocking = counts.sent_to_new >= self.block_min_sent
            && counts.percent_verified_new() < self.recover_at;
        let shown = if blocking && counts.percent_verified_new() < self.block_below {
            Level::Blocked
        } else if judged && percent < self.challenge_below {
            Level::Challenge
        } else {
            Level::Normal
        };
        if shown > current {
            return shown;
        }
        let recovered = !judged || percent >= self.recover_at;
        match current {
            Level::Blocked if !blocking => Level::Challenge,
            Level::Challenge if recovered => Level::Normal,
            _ => current,
        }
    }

    /// The state items a level decided at `now` is written as: blocked for a window (then
    /// challenged for another, unless a review lowers it), or challenged for a window. A state
    /// nobody reviews therefore lapses by itself once the counts that caused it left the window.
    pub fn state_at(&self, level: Level, now: u64) -> BreakerState {
        let window = self.window_seconds;
        match level {
            Level::Normal => BreakerState::default(),
            Level::Challenge => BreakerState {
                challenge_until: now + window,
                blocked_until: 0,
            },
            Level::Blocked => BreakerState {
                challenge_until: now + 2 * window,
                blocked_until: now + window,
            },
        }
    }
}

/// Where codes go, as the breaker judges them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    /// A number range (`limits::number_range`).
    Range(String),
    /// A country calling code.
    Country(u16),
}

impl Destination {
    /// The two destinations of a number: its range and its country.
    pub fn of(phone: &PhoneNumber) -> [Self; 2] {
        let (country_code, _) = phone.sms_profile();
        [
            Self::Range(limits::number_range(phone).to_owned()),
            Self::Country(country_code),
        ]
    }

    /// The worst level it may be put at: a country is challenged at most. Blocking a whole
    /// country would be a lock-out anyone could aim with a few dozen numbers spread over its
    /// ranges; its pumped sends are held by the bot check and the country budget instead.
    pub fn worst_level(&self) -> Level {
        match self {
            Self::Range(_) => Level::Blocked,
            Self::Country(_) => Level::Challenge,
        }
    }

    /// As keys and events name it: `range:+98910123`, `country:98`.
    pub fn name(&self) -> String {
        match self {
            Self::Range(range) => format!("range:{range}"),
            Self::Country(code) => format!("country:{code}"),
        }
    }

    /// The destination a name (`name`) stands for.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(range) = name.strip_prefix("range:") {
            return (range.starts_with('+') && range.len() > 1).then(|| Self::Range(range.into()));
        }
        name.strip_prefix("country:")?
            .parse()
            .ok()
            .map(Self::Country)
    }
}

/// What a conversion counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// A code to a registered number, or the stand-in of one (counted alike, so that counts
    /// tell nothing of accounts).
    Sent,
    /// A code to a new number (sign-up, change of number): also counted as sent.
    SentToNewNumber,
    Verified,
    /// A code to a new number entered: also counted as verified.
    VerifiedNewNumber,
}

impl Conversion {
    /// The attributes of the counter item it adds one to.
    pub fn attributes(self) -> &'static [&'static str] {
        match self {
            Self::Sent => &["sent"],
            Self::SentToNewNumber => &["sent", "sent_new"],
            Self::Verified => &["verified"],
            Self::VerifiedNewNumber => &["verified", "verified_new"],
        }
    }
}

/// One conversion counter item: a shard of a destination's bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionCounter {
    pub destination: Destination,
    pub shard: u32,
    pub bucket: u64,
    /// When the bucket leaves every window.
    pub expires_at: u64,
}

impl Breaker {
    /// The counters a code to `phone` sent at `sent_at` counts in (a shard of its range's
    /// bucket and of its country's, chosen by `pick_shard`); none when the breaker is off.
    pub fn counters_of(
        &self,
        phone: &PhoneNumber,
        sent_at: u64,
        mut pick_shard: impl FnMut(u32) -> u32,
    ) -> Vec<ConversionCounter> {
        if !self.counts() {
            return Vec::new();
        }
        let bucket = self.bucket_of(sent_at);
        Destination::of(phone)
            .into_iter()
            .map(|destination| ConversionCounter {
                shard: pick_shard(self.shards).min(self.shards - 1),
                destination,
                bucket,
                expires_at: self.bucket_expires_at(bucket),
            })
            .collect()
    }

    /// Every counter of `destination`'s window at `now` (each bucket, each shard).
    pub fn window_counters(&self, destination: &Destination, now: u64) -> Vec<ConversionCounter> {
        self.window_buckets(now)
            .flat_map(|bucket| {
                (0..self.shards).map(move |shard| ConversionCounter {
                    destination: destination.clone(),
                    shard,
                    bucket,
                    expires_at: self.bucket_expires_at(bucket),
                })
            })
            .collect()
    }
}

/// Codes sent to a destination in a window and how many of them were entered, and the same of
/// the codes to new numbers among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub sent_to_new: u64,
    pub verified: u64,
    pub verified_new: u64,
}

impl Counts {
    /// The percentage of codes entered (100 with none sent; a code counted verified whose send
    /// was not counted, from before the breaker was on, is not more than one).
    pub fn percent_verified(self) -> u64 {
        percent(self.verified, self.sent)
    }

    /// The same, of the codes to new numbers.
    pub fn percent_verified_new(self) -> u64 {
        percent(self.verified_new, self.sent_to_new)
    }
}

fn percent(verified: u64, sent: u64) -> u64 {
    if sent == 0 {
        return 100;
    }
    verified.min(sent) * 100 / sent
}

/// A destination's state, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Normal,
    Challenge,
    Blocked,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Challenge => "challenge",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Normal, Self::Challenge, Self::Blocked]
            .into_iter()
            .find(|level| level.name() == name)
    }
}

/// A destination's state as stored: until when it is challenged and blocked (0: not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerState {
    pub challenge_until: u64,
    pub blocked_until: u64,
}

impl BreakerState {
    /// The level at `now` (a state past its time has lapsed).
    pub fn level_at(self, now: u64) -> Level {
        if self.blocked_until > now {
            Level::Blocked
        } else if self.challenge_until > now {
            Level::Challenge
        } else {
            Level::Normal
        }
    }
}

/// A destination's state as a review read it: the level last decided (and reported), the items'
/// times, and the version a change must still find.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredState {
    pub decided: Option<Level>,
    pub state: BreakerState,
    pub version: u64,
    /// Another shard of the state holds something else than the first (a review cut off
    /// between its writes): the next review writes them all again.
    pub stale_shards: bool,
}

/// A state change a review made, as its audit event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub destination: Destination,
    pub old: Level,
    pub new: Level,
    pub counts: Counts,
}

/// A decided level is written again before it lapses, once less than this share of its
/// window is left, so that a state under steady traffic holds without a write per review.
const RENEW_WHEN_LEFT_BELOW: u64 = 2;

/// Reviews each destination: reads its window's counts and its state, decides, and writes the
/// level when it changed (or is near lapsing), conditionally on the state as read (a parallel
/// review that wrote first wins; its decision came from the same counts). Each change is
/// reported (`sms_breaker_changed`). Returns the changes made. A destination whose review
/// failed is logged and passed over: the next count there reviews it again.
pub async fn review(app: &App, destinations: &BTreeSet<Destination>) -> Vec<Change> {
    if !app.config.sms_breaker.counts() {
        return Vec::new();
    }
    let reviews = futures_util::stream::iter(destinations)
        .map(|destination| async move { (destination, review_one(app, destination).await) })
        .buffered(REVIEW_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut changes = Vec::new();
    for (destination, review) in reviews {
        match review {
            Ok(change) => changes.extend(change),
            Err(error) => {
                tracing::error!(%error, destination = destination.name(), "breaker review failed");
            }
        }
    }
    changes
}

/// How many destinations one invocation reviews side by side.
const REVIEW_CONCURRENCY: usize = 10;

async fn review_one(app: &App, destination: &Destination) -> Result<Option<Change>, AuthError> {
    let breaker = &app.config.sms_breaker;
    let now = app.clock.now();
    let attempts = &app.store.attempts;
    let (counts, stored) = attempts.breaker_view(breaker, destination, now).await?;
    let current = stored.state.level_at(now);
    let decided = breaker
        .decide(current, counts)
        .min(destination.worst_level());
    let reported = stored.decided.unwrap_or(Level::Normal);
    let left = match decided {
        Level::Normal => u64::MAX,
        Level::Challenge => stored.state.challenge_until.saturating_sub(now),
        Level::Blocked => stored.state.blocked_until.saturating_sub(now),
    };
    let renew = decided != Level::Normal && left < breaker.window_seconds / RENEW_WHEN_LEFT_BELOW;
    if decided == current && decided == reported && !renew && !stored.stale_shards {
        return Ok(None);
    }
    let state = breaker.state_at(decided, now);
    let written = attempts
        .write_breaker_state(breaker, destination, decided, state, (stored.version, now))
        .await?;
    if !written || decided == reported {
        return Ok(None);
    }
    let change = Change {
        destination: destination.clone(),
        old: reported,
        new: decided,
        counts,
    };
    crate::audit::breaker_changed(&change, breaker);
    Ok(Some(change))
}

/// The destinations whose conversion counters the records of a stream batch wrote (the keys
/// `conv#<destination>[~<shard>]#<bucket>`); other records are passed over.
pub fn touched_destinations(event: &Event) -> BTreeSet<Destination> {
    event
        .records
        .iter()
        .filter_map(|record| {
            let key: RecordKey = serde_dynamo::from_item(record.change.keys.clone()).ok()?;
            crate::store::attempts::conversion_destination(&key.pk)
        })
        .collect()
}

/// The SMS whose codes were entered, by the notes a stream batch inserted
/// (`AttemptsTable::note_entered`); a note's expiry (a removal) is passed over.
pub fn entered_messages(event: &Event) -> Vec<String> {
    event
        .records
        .iter()
        .filter(|record| record.event_name == "INSERT")
        .filter_map(|record| {
            let key: RecordKey = serde_dynamo::from_item(record.change.keys.clone()).ok()?;
            crate::store::attempts::feedback_message(&key.pk).map(str::to_owned)
        })
        .collect()
}

/// Reports the entered codes of a batch to the provider, a few at a time. Best effort: a
/// report that fails is logged and dropped (the provider then counts that message as not
/// received), so it never holds up the stream.
async fn report_entered(app: &App, message_ids: &[String]) {
    futures_util::stream::iter(message_ids)
        .for_each_concurrent(FEEDBACK_CONCURRENCY, |message_id| async move {
            if let Err(error) = app.sms.report_received(message_id).await {
                tracing::warn!(%error, message_id, "sms feedback failed");
            }
        })
        .await;
}

/// How many feedback reports one invocation has in flight.
const FEEDBACK_CONCURRENCY: usize = 10;

/// The key of an attempts table item in a stream record.
#[derive(serde::Deserialize)]
struct RecordKey {
    pk: String,
}

/// The `sms-breaker` function: reviews the destinations a stream batch touched, then reports
/// its entered codes to the provider, each in the time the invocation has left. It never fails
/// the batch (a failed or unfinished review is logged, and the next count there reviews that
/// destination again), so a batch is never handed again and nothing is reported twice.
pub async fn handle(
    app: &App,
    event: LambdaEvent<Event>,
) -> Result<(), lambda_http::lambda_runtime::Error> {
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let time_left = |keep: Duration| {
        deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(keep)
    };
    let destinations = touched_destinations(&event.payload);
    let reviewed = tokio::time::timeout(
        time_left(FEEDBACK_TIME + END_MARGIN),
        review(app, &destinations),
    )
    .await;
    let changes = reviewed.unwrap_or_else(|_| {
        tracing::warn!(
            destinations = destinations.len(),
            "breaker review cut short by the invocation's deadline"
        );
        Vec::new()
    });
    let message_ids = entered_messages(&event.payload);
    let reported =
        tokio::time::timeout(time_left(END_MARGIN), report_entered(app, &message_ids)).await;
    if reported.is_err() {
        tracing::warn!(
            messages = message_ids.len(),
            "sms feedback cut short by the invocation's deadline"
        );
    }
    tracing::info!(
        destinations = destinations.len(),
        changes = changes.len(),
        feedback = message_ids.len(),
        "breaker reviewed"
    );
    Ok(())
}

/// The time an invocation keeps for its feedback reports after its review.
const FEEDBACK_TIME: Duration = Duration::from_secs(15);

/// The time an invocation keeps back at its end, to return before its deadline.
const END_MARGIN: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker {
            mode: BreakerMode::Enforce,
            window_seconds: 3600,
            buckets: 4,
            min_sent: 10,
            block_min_sent: 20,
            challenge_below: 20,
            block_below: 10,
            recover_at: 50,
            shards: 8,
        }
    }

    /// Counts of codes to new numbers.
    fn counts(sent: u64, verified: u64) -> Counts {
        Counts {
            sent,
            sent_to_new: sent,
            verified,
            verified_new: verified,
        }
    }

    #[test]
    fn codes_to_registered_numbers_and_their_stand_ins_never_block() {
        let breaker = breaker();
        let registered = |sent, sent_to_new| Counts {
            sent,
            sent_to_new,
            verified: 0,
            verified_new: 0,
        };
        assert_eq!(
            breaker.decide(Level::Normal, registered(40, 19)),
            Level::Challenge
        );
        assert_eq!(
            breaker.decide(Level::Challenge, registered(40, 19)),
            Level::Challenge
        );
        assert_eq!(
            breaker.decide(Level::Normal, registered(40, 20)),
            Level::Blocked
        );
        // A block lasts while codes to new numbers keep showing it: stand-ins do not hold it.
        assert_eq!(
            breaker.decide(Level::Blocked, registered(40, 5)),
            Level::Challenge
        );
        // Nor do they dilute honest sign-ups' entries into a block: 20 codes to new numbers,
        // 12 entered, beside 100 stand-ins.
        let diluted = Counts {
            sent: 120,
            sent_to_new: 20,
            verified: 12,
            verified_new: 12,
        };
        assert_eq!(breaker.decide(Level::Normal, diluted), Level::Challenge);
        assert_eq!(breaker.decide(Level::Blocked, diluted), Level::Challenge);
    }

    #[test]
    fn nothing_is_decided_below_the_minimum_volume() {
        let breaker = breaker();
        assert_eq!(breaker.decide(Level::Normal, counts(9, 0)), Level::Normal);
        assert_eq!(
            breaker.decide(Level::Normal, counts(10, 1)),
            Level::Challenge
        );
        assert_eq!(breaker.decide(Level::Normal, counts(10, 2)), Level::Normal);
    }

    #[test]
    fn blocking_needs_its_own_volume_and_may_come_at_once() {
        let breaker = breaker();
        assert_eq!(
            breaker.decide(Level::Challenge, counts(19, 0)),
            Level::Challenge
        );
        assert_eq!(
            breaker.decide(Level::Challenge, counts(20, 1)),
            Level::Blocked
        );
        assert_eq!(breaker.decide(Level::Normal, counts(40, 0)), Level::Blocked);
    }

    #[test]
    fn states_step_down_one_level_once_recovered_and_hold_in_between() {
        let breaker = breaker();
        // Between the thresholds: held.
        assert_eq!(
            breaker.decide(Level::Blocked, counts(40, 12)),
            Level::Blocked
        );
        assert_eq!(
            breaker.decide(Level::Challenge, counts(40, 12)),
            Level::Challenge
        );
        // Recovered by conversion, or the window emptied: one level down.
        assert_eq!(
            breaker.decide(Level::Blocked, counts(40, 20)),
            Level::Challenge
        );
        assert_eq!(
            breaker.decide(Level::Challenge, counts(40, 20)),
            Level::Normal
        );
        assert_eq!(
            breaker.decide(Level::Blocked, counts(3, 0)),
            Level::Challenge
        );
    }

    #[test]
    fn a_state_lapses_by_itself() {
        let breaker = breaker();
        let blocked = breaker.state_at(Level::Blocked, 1000);
        assert_eq!(blocked.level_at(1000), Level::Blocked);
        assert_eq!(blocked.level_at(1000 + 3600), Level::Challenge);
        assert_eq!(blocked.level_at(1000 + 7200), Level::Normal);
        assert_eq!(
            breaker.state_at(Level::Normal, 5).level_at(5),
            Level::Normal
        );
    }

    #[test]
    fn windows_slide_by_buckets() {
        let breaker = breaker();
        assert_eq!(breaker.bucket_of(899), 0);
        assert_eq!(breaker.bucket_of(900), 1);
        assert_eq!(breaker.window_buckets(3 * 900 + 10), 0..=3);
        assert_eq!(breaker.window_buckets(4 * 900), 1..=4);
        assert_eq!(breaker.bucket_expires_at(1), 1800 + 3600);
    }

    #[test]
    fn destinations_name_and_parse_back() {
        for destination in [
            Destination::Range("+98910123".into()),
            Destination::Country(98),
        ] {
            assert_eq!(Destination::parse(&destination.name()), Some(destination));
        }
        assert_eq!(Destination::parse("range:"), None);
        assert_eq!(Destination::parse("country:x"), None);
    }

    /// The chance that honest users who enter each code with probability `p` enter so few of
    /// `sent` codes that `percent_below` is not reached: P(entered * 100 < percent * sent).
    fn honest_tripping(sent: u64, percent_below: u64, p: f64) -> f64 {
        let choose = |n: u64, k: u64| (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64);
        (0..=sent)
            .filter(|&entered| entered * 100 < percent_below * sent)
            .map(|k| choose(sent, k) * p.powi(k as i32) * (1.0 - p).powi((sent - k) as i32))
            .sum()
    }

    /// docs/security.md's model of honest traffic: 60% of codes entered, at the defaults.
    #[test]
    fn honest_traffic_rarely_trips_the_defaults() {
        let defaults = Breaker::from_env(&Env::new(&|_| None), 8).unwrap();
        let challenge = honest_tripping(defaults.min_sent, defaults.challenge_below, 0.6);
        let block = honest_tripping(defaults.block_min_sent, defaults.block_below, 0.6);
        assert!(challenge < 0.002, "{challenge}");
        assert!(block < 1e-6, "{block}");
    }

    #[test]
    fn entered_codes_beyond_the_sent_ones_count_as_all() {
        assert_eq!(counts(0, 0).percent_verified(), 100);
        assert_eq!(counts(4, 9).percent_verified(), 100);
        assert_eq!(counts(10, 1).percent_verified(), 10);
    }
}
