//! Every environment variable the functions read, in one table (name, default, meaning, the
//! module that reads it, and what the benchmark sets it to), and the typed reader each module
//! parses its own settings with. A default is written here and nowhere else: the reader takes
//! it from the table; `docs/configuration.md`'s table of variables is generated from this one
//! (`scripts/settings-doc`), and tests hold `template.yaml`'s parameter defaults to it.
//!
//! To add a setting: add a row below, read it in its module through `Env` (`env.parse(NAME)`
//! takes the row's default; a budget that refuses requests is read with `env.limit(NAME)` and
//! its row says `Bench::Raise`), pass it in `template.yaml` if operators should set it (the
//! parameter's `Default` must equal the row's), then run `scripts/settings-doc`.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::config::ConfigError;

/// One environment variable.
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    pub default: IfUnset,
    /// What it does, as the docs say it (markdown).
    pub meaning: &'static str,
    pub owner: Owner,
    /// What the benchmark sets it to, so that it measures work, not refusals.
    pub bench: Bench,
}

/// What an unset (or empty) variable means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfUnset {
    /// The function does not start without it.
    Required,
    /// Nothing: the feature it configures is off, or another setting decides.
    Nothing,
    /// This value, parsed like a set one.
    Value(&'static str),
    /// Worked out from other settings or the request, as described.
    Computed(&'static str),
    /// Never read as a value: set, it stops the function (a former name of a secret's value).
    Refused,
}

/// The module that parses a setting (also the section of the docs it is listed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// `config.rs`: the tables.
    Tables,
    /// `config.rs`: codes, numbers and the service's name.
    Codes,
    /// `config.rs`: tokens, sessions and their keys.
    Tokens,
    /// `secrets.rs`: where the secrets are.
    Secrets,
    /// `limits.rs`: `Limits`.
    Limits,
    /// `sms.rs`: the SMS provider.
    Sms,
    /// `messages.rs`: the SMS text.
    Messages,
    /// `captcha.rs`: the bot check.
    Captcha,
    /// `breaker.rs`: the SMS circuit breaker.
    Breaker,
    /// `http.rs`: the proxy whose header names the client.
    Proxy,
    /// `telemetry.rs`: logging.
    Logging,
    /// `events.rs`: the domain events and their publisher.
    Events,
    /// `cognito.rs`: users moved from a Cognito user pool on their first login.
    Migration,
    /// Set by AWS Lambda, read by `config.rs` and `secrets.rs`.
    Lambda,
    /// Read by the AWS SDK itself, never by this code.
    Sdk,
}

impl Owner {
    pub const ALL: [Owner; 15] = [
        Owner::Tables,
        Owner::Codes,
        Owner::Tokens,
        Owner::Secrets,
        Owner::Limits,
        Owner::Sms,
        Owner::Messages,
        Owner::Captcha,
        Owner::Breaker,
        Owner::Proxy,
        Owner::Logging,
        Owner::Events,
        Owner::Migration,
        Owner::Lambda,
        Owner::Sdk,
    ];

    /// The source file that parses its settings.
    pub fn module(self) -> &'static str {
        match self {
            Owner::Tables | Owner::Codes | Owner::Tokens | Owner::Lambda => "shared/src/config.rs",
            Owner::Secrets => "shared/src/secrets.rs",
            Owner::Limits => "shared/src/limits.rs",
            Owner::Sms => "shared/src/sms.rs",
            Owner::Messages => "shared/src/messages.rs",
            Owner::Captcha => "shared/src/captcha.rs",
            Owner::Breaker => "shared/src/breaker.rs",
            Owner::Proxy => "shared/src/http.rs",
            Owner::Logging => "shared/src/telemetry.rs",
            // Rendered between backticks: two files.
            Owner::Events => "shared/src/events.rs` and `shared/src/publisher.rs",
            Owner::Migration => "shared/src/cognito.rs",
            Owner::Sdk => "the AWS SDK",
        }
    }

    /// The docs' heading of its settings.
    pub fn title(self) -> &'static str {
        match self {
            Owner::Tables => "Tables",
            Owner::Codes => "Codes and numbers",
            Owner::Tokens => "Tokens and sessions",
            Owner::Secrets => "Secrets",
            Owner::Limits => "Limits and budgets",
            Owner::Sms => "SMS provider",
            Owner::Messages => "SMS text",
            Owner::Captcha => "Bot check",
            Owner::Breaker => "SMS circuit breaker",
            Owner::Proxy => "Client address",
            Owner::Logging => "Logging",
            Owner::Events => "Events",
            Owner::Migration => "Moving users in",
            Owner::Lambda => "Set by AWS Lambda",
            Owner::Sdk => "Read by the AWS SDK",
        }
    }
}

/// What the benchmark does with a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bench {
    /// Left as it is.
    Keep,
    /// A budget or failure count that refuses requests once reached: raised to `BENCH_RAISED`.
    Raise,
    /// A wait between requests: set to 0.
    Zero,
}

/// What the benchmark raises every `Bench::Raise` limit to.
pub const BENCH_RAISED: &str = "1000000";

impl Setting {
    /// The value the benchmark gives the variable, if it sets it.
    pub fn bench_value(&self) -> Option<&'static str> {
        match self.bench {
            Bench::Keep => None,
            Bench::Raise => Some(BENCH_RAISED),
            Bench::Zero => Some("0"),
        }
    }
}

/// The variables that name the tables.
pub fn table_variables() -> impl Iterator<Item = &'static str> {
    SETTINGS
        .iter()
        .filter(|setting| setting.owner == Owner::Tables)
        .map(|setting| setting.name)
}

/// The setting called `name`, if the table has it.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|setting| setting.name == name)
}

const fn row(
    name: &'static str,
    default: IfUnset,
    owner: Owner,
    bench: Bench,
    meaning: &'static str,
) -> Setting {
    Setting {
        name,
        default,
        meaning,
        owner,
        bench,
    }
}

use Bench::{Keep, Raise, Zero};
use IfUnset::{Computed, Nothing, Refused, Required, Value};

/// Every environment variable the functions read.
pub static SETTINGS: &[Setting] = &[
    // Tables.
    row(
        "USERS_TABLE",
        Required,
        Owner::Tables,
        Keep,
        "the users table (set by the template)",
    ),
    row(
        "OTPS_TABLE",
        Required,
        Owner::Tables,
        Keep,
        "the codes table (set by the template)",
    ),
    row(
        "REGISTRATION_TOKENS_TABLE",
        Required,
        Owner::Tables,
        Keep,
        "the registration tokens table (set by the template)",
    ),
    row(
        "ATTEMPTS_TABLE",
        Required,
        Owner::Tables,
        Keep,
        "the counters of the limits (set by the template)",
    ),
    row(
        "SESSIONS_TABLE",
        Required,
        Owner::Tables,
        Keep,
        "the sessions table (set by the template)",
    ),
    row(
        "SIGNING_KEYS_TABLE",
        Required,
        Owner::Tables,
        Keep,
        "the published signing keys (set by the template)",
    ),
    row(
        "EVENTS_TABLE",
        Required,
        Owner::Tables,
        Keep,
        "the outbox of domain events, whose stream feeds the publisher (set by the template)",
    ),
    // Codes and numbers.
    row(
        "DEFAULT_REGION",
        Value("IR"),
        Owner::Codes,
        Keep,
        "region (ISO 3166 alpha-2) in which numbers without a country code are read",
    ),
    row(
        "ALLOWED_COUNTRY_CODES",
        Computed("the calling code of `DEFAULT_REGION`"),
        Owner::Codes,
        Keep,
        "country calling codes SMS may go to, e.g. `98,44` (others: 400)",
    ),
    row(
        "OTP_LENGTH",
        Value("6"),
        Owner::Codes,
        Keep,
        "digits per code, 4 to 10; codes sent and accepted (every code field) have exactly this \
         many. Mind the odds: a code takes 5 guesses, so with 4 digits whoever asks for a reset \
         code guesses it with probability 1/2000 per code (about 0.5% a day at 10 codes a phone \
         a day), with 6 digits 1/200,000",
    ),
    row(
        "OTP_TTL_SECONDS",
        Value("300"),
        Owner::Codes,
        Keep,
        "code lifetime",
    ),
    row(
        "OTP_RESEND_SECONDS",
        Value("60"),
        Owner::Codes,
        Zero,
        "wait before a new code for the same phone and purpose from the same client network (the \
         next request from elsewhere is not held)",
    ),
    row(
        "OTP_MAX_ATTEMPTS",
        Value("5"),
        Owner::Codes,
        Keep,
        "wrong tries per code with its `verification_id` (see [lock-outs](security.md#lock-outs-that-cannot-be-aimed-at-a-victim))",
    ),
    row(
        "REGISTRATION_TOKEN_TTL_SECONDS",
        Value("600"),
        Owner::Codes,
        Keep,
        "registration token lifetime",
    ),
    row(
        "TEST_OTP_NUMBERS",
        Nothing,
        Owner::Codes,
        Keep,
        "opt-in fixed codes, `+15555550100=123456,...` (each `OTP_LENGTH` digits): those numbers \
         get that code and no SMS (app-store review, `scripts/smoke`, e2e tests). Listed numbers \
         are accepted even when libphonenumber calls them invalid (as it does the fictional \
         +1 555 01xx range). Send limits still apply",
    ),
    row(
        "SERVICE_NAME",
        Value("Phone Auth"),
        Owner::Codes,
        Keep,
        "named at the start of every SMS",
    ),
    // Tokens and sessions.
    row(
        "ACCESS_TOKEN_TTL_SECONDS",
        Value("900"),
        Owner::Tokens,
        Keep,
        "access token lifetime",
    ),
    row(
        "REFRESH_TOKEN_TTL_SECONDS",
        Value("604800"),
        Owner::Tokens,
        Keep,
        "refresh token lifetime",
    ),
    row(
        "SESSION_MAX_SECONDS",
        Value("2592000"),
        Owner::Tokens,
        Keep,
        "absolute lifetime of a session from its login, however often it is refreshed",
    ),
    row(
        "REFRESH_REUSE_GRACE_SECONDS",
        Value("10"),
        Owner::Tokens,
        Keep,
        "how long after its first use a refresh token still rotates (two tabs, a retry) before \
         presenting it again revokes the session; 0 for the strict rule",
    ),
    row(
        "RECENT_LOGIN_SECONDS",
        Value("600"),
        Owner::Tokens,
        Keep,
        "how recent a session's login must be to change the phone number",
    ),
    row(
        "JWT_ISSUER",
        Computed("this API's URL, learned from the first request"),
        Owner::Tokens,
        Keep,
        "`iss` claim and the discovery document's issuer (see [Tokens](api.md#tokens)); \
         discovery needs it to be the URL the API is served at",
    ),
    row(
        "SCOPES_DEFAULT",
        Value("profile"),
        Owner::Tokens,
        Keep,
        "space-separated `scope` of access tokens (RFC 6749 scope tokens)",
    ),
    row(
        "TOKEN_HOOK_FUNCTION",
        Nothing,
        Owner::Tokens,
        Keep,
        "name or ARN of a function that adds claims to each access token before it is signed \
         (registration, login, refresh): fail-closed, 1 s at most \
         (see [Tokens](api.md#tokens))",
    ),
    row(
        "COGNITO_MIGRATION_USER_POOL_ID",
        Nothing,
        Owner::Migration,
        Keep,
        "a Cognito user pool whose users are moved on their first login: a login for a number \
         unknown here is tried against it (see [Moving users in](../README.md#moving-users-in)); \
         set with `COGNITO_MIGRATION_CLIENT_ID`",
    ),
    row(
        "COGNITO_MIGRATION_CLIENT_ID",
        Nothing,
        Owner::Migration,
        Keep,
        "an app client of that pool that allows `ALLOW_ADMIN_USER_PASSWORD_AUTH` and has no \
         client secret",
    ),
    row(
        "JWT_AUDIENCE",
        Value("phone-auth-clients"),
        Owner::Tokens,
        Keep,
        "`aud` of access tokens",
    ),
    row(
        "JWT_REFRESH_AUDIENCE",
        Computed("`JWT_AUDIENCE` + `#refresh`"),
        Owner::Tokens,
        Keep,
        "`aud` of the legacy refresh JWTs (refresh tokens are opaque; those issued before are \
         verified until they expire); must differ from `JWT_AUDIENCE`",
    ),
    row(
        "JWT_ALGORITHM",
        Value("EdDSA"),
        Owner::Tokens,
        Keep,
        "`RS256` or `ES256` (signed in AWS KMS, or in-process under the key of \
         `JWT_SIGNING_SECRET_ID`) or `EdDSA` (see [Tokens](api.md#tokens)). Unset means EdDSA, \
         what deployments signed with before the choice; the template parameter `JwtAlgorithm` \
         defaults to RS256",
    ),
    row(
        "JWT_KMS_KEY_ID",
        Nothing,
        Owner::Tokens,
        Keep,
        "RS256/ES256: the KMS key that signs (ARN; not a secret), whose public key is read once \
         at cold start (`kms:GetPublicKey`). The template sets it on the functions that sign or \
         verify tokens; only the signing ones may `kms:Sign`. Refused with EdDSA and beside \
         `JWT_SIGNING_SECRET_ID`",
    ),
    row(
        "JWT_PREVIOUS_KMS_KEY_ID",
        Nothing,
        Owner::Tokens,
        Keep,
        "a KMS key (RSA or EC P-256) that verifies and is published but does not sign: the \
         previous key while rotating, or the next one before it signs",
    ),
    row(
        "LOCAL_JWT_PRIVATE_KEY_FILE",
        Nothing,
        Owner::Tokens,
        Keep,
        "**local runs only**, RS256/ES256: a PKCS#8 PEM private key file instead of KMS \
         (`scripts/dev` and `scripts/test` generate `.local/jwt-rs256.pem` and \
         `.local/jwt-es256.pem`); every function reads it, as all read a KMS key's public key. \
         Refused together with `JWT_KMS_KEY_ID` or `JWT_SIGNING_SECRET_ID`, with EdDSA, and on \
         AWS Lambda (above)",
    ),
    row(
        "JWT_PREVIOUS_PUBLIC_KEY",
        Nothing,
        Owner::Tokens,
        Keep,
        "a public key that verifies and is published but does not sign (the previous key while \
         rotating, or the next one before it signs): an Ed25519 key's JWK `x`, any key's JWK \
         (JSON, as the JWKS serves it) or a PEM public key whose line breaks may be spaces (see \
         [Tokens](api.md#tokens))",
    ),
    // Secrets.
    row(
        "JWT_SIGNING_SECRET_ID",
        Nothing,
        Owner::Secrets,
        Keep,
        "ARN or name of the Secrets Manager secret whose value is the private key the signing \
         functions hold (read once at cold start): for EdDSA an Ed25519 PKCS#8 PEM key or any \
         string (≥ 32 bytes) whose SHA-256 is the seed; for RS256/ES256 a PKCS#8 PEM RSA key \
         (≥ 2048 bits) or EC P-256 key, which signs in-process instead of KMS (template \
         parameter `JwtSigningSecretArn`). The template sets it on register, login, login-otp \
         and refresh only; a function without it (and without a KMS key or local key) has no \
         private key, and a route of it that must sign answers 500",
    ),
    row(
        "LOCAL_JWT_SIGNING_KEY",
        Nothing,
        Owner::Secrets,
        Keep,
        "**local runs only** (the tests), EdDSA only: the signing key itself, PKCS#8 PEM or a \
         secret string (≥ 32 bytes) whose SHA-256 is the seed (ignored for RS256/ES256, which \
         run locally with `LOCAL_JWT_PRIVATE_KEY_FILE`). Refused together with \
         `JWT_SIGNING_SECRET_ID`, and on AWS Lambda (above)",
    ),
    row(
        "JWT_SIGNING_KEY",
        Refused,
        Owner::Secrets,
        Keep,
        "the signing key's former variable: refused with a message naming its replacements",
    ),
    row(
        "KEY_PUBLICATION_SECRET_ID",
        Nothing,
        Owner::Secrets,
        Keep,
        "ARN or name of the secret (≥ 32 bytes) under which published keys carry their MAC (see \
         [Tokens](api.md#tokens)). The template sets it on the functions that verify tokens \
         (refresh, logout, sessions, session-revoke, profile, password-change, \
         phone-change-request, phone-change-confirm, jwks, openid-configuration), and on \
         register, login and login-otp too when they hold the key (EdDSA, or \
         `JwtSigningSecretArn`); a function without it trusts no published key, and a signing \
         function holding its key without it does not start",
    ),
    row(
        "LOCAL_KEY_PUBLICATION_SECRET",
        Nothing,
        Owner::Secrets,
        Keep,
        "**local runs only**: the key publication secret itself (≥ 32 bytes). Refused together \
         with `KEY_PUBLICATION_SECRET_ID`, and on AWS Lambda (above)",
    ),
    row(
        "KEY_PUBLICATION_SECRET",
        Refused,
        Owner::Secrets,
        Keep,
        "the key publication secret's value in the environment: refused",
    ),
    row(
        "OTP_HMAC_SECRET_ID",
        Nothing,
        Owner::Secrets,
        Keep,
        "ARN or name of the secret holding the key of the OTP hashes (≥ 32 bytes). The template \
         sets it on the functions that send or check codes (check-phone, verify, login, \
         login-otp-request, login-otp, password-reset-request, password-reset-confirm, \
         phone-change-request, phone-change-confirm) only; elsewhere a route that needs it \
         answers 500",
    ),
    row(
        "LOCAL_OTP_HMAC_SECRET",
        Nothing,
        Owner::Secrets,
        Keep,
        "**local runs only**: the OTP key itself (≥ 32 bytes). Refused together with \
         `OTP_HMAC_SECRET_ID`, and on AWS Lambda (above)",
    ),
    row(
        "OTP_HMAC_SECRET",
        Refused,
        Owner::Secrets,
        Keep,
        "the OTP key's former variable: refused with a message naming its replacements",
    ),
    // Limits and budgets (security.md explains each).
    row(
        "LOCKOUT_MAX_FAILURES",
        Value("3"),
        Owner::Limits,
        Raise,
        "failed verifies, or failed password checks, for one phone from one client network \
         before that pair is refused (403)",
    ),
    row(
        "LOCKOUT_SECONDS",
        Value("3600"),
        Owner::Limits,
        Keep,
        "how long the pair is refused after its last failure",
    ),
    row(
        "SESSION_PASSWORD_MAX_FAILURES",
        Value("5"),
        Owner::Limits,
        Raise,
        "wrong passwords one session may give (account deletion, password change, change of \
         number) before it is ended",
    ),
    row(
        "ACCOUNT_BACKOFF_AFTER_FAILURES",
        Value("10"),
        Owner::Limits,
        Raise,
        "consecutive failed password checks of one account, from any network, before back-off \
         (429) starts",
    ),
    row(
        "ACCOUNT_BACKOFF_BASE_SECONDS",
        Value("30"),
        Owner::Limits,
        Keep,
        "first back-off wait; each further failure doubles it",
    ),
    row(
        "ACCOUNT_BACKOFF_MAX_SECONDS",
        Value("3600"),
        Owner::Limits,
        Keep,
        "longest back-off wait",
    ),
    row(
        "ACCOUNT_MAX_FAILURES",
        Value("100"),
        Owner::Limits,
        Raise,
        "consecutive failures after which the right password also needs a login code by SMS \
         (step-up)",
    ),
    row(
        "ACCOUNT_FAILURE_MEMORY_SECONDS",
        Value("2592000"),
        Owner::Limits,
        Keep,
        "how long an account's failures are remembered after the last one",
    ),
    row(
        "CHECK_PHONE_LOOKUPS_PER_IP",
        Value("100"),
        Owner::Limits,
        Raise,
        "`check-phone` lookups per client network and window (enumeration)",
    ),
    row(
        "OTP_SENDS_PER_PHONE",
        Value("5"),
        Owner::Limits,
        Raise,
        "codes to one phone per window, asked for from networks its owner has not proved it from",
    ),
    row(
        "OTP_SENDS_PER_PHONE_PER_DAY",
        Value("10"),
        Owner::Limits,
        Raise,
        "codes to one phone per day, from such networks; and again, separately, from its owner's \
         proven networks",
    ),
    row(
        "OTP_SENDS_PER_PHONE_NETWORK_PER_DAY",
        Value("5"),
        Owner::Limits,
        Raise,
        "codes to one phone asked for from one client network per day",
    ),
    row(
        "OTP_SENDS_PER_IP",
        Value("10"),
        Owner::Limits,
        Raise,
        "codes for one client IP per window",
    ),
    row(
        "OTP_SENDS_PER_IP_BLOCK_PER_HOUR",
        Value("30"),
        Owner::Limits,
        Raise,
        "reset and login codes asked for from one IPv4 /24 or IPv6 /48 per window",
    ),
    row(
        "OTP_STEP_UP_SENDS_PER_DAY",
        Value("2"),
        Owner::Limits,
        Raise,
        "step-up codes per account per day (beside the reserve)",
    ),
    row(
        "OTP_PROVEN_FLOOR_PER_DAY",
        Value("2"),
        Owner::Limits,
        Raise,
        "codes per day to a registered number proved in the last 30 days, once the reserve is \
         spent (instead of it)",
    ),
    row(
        "OTP_SENDS_PER_RANGE_PER_HOUR",
        Value("20"),
        Owner::Limits,
        Raise,
        "codes to new numbers of one range (the number without its last 4 digits) per window",
    ),
    row(
        "OTP_SENDS_PER_COUNTRY_PER_DAY",
        Value("1000"),
        Owner::Limits,
        Raise,
        "codes to new numbers of one country calling code per day",
    ),
    row(
        "OTP_SENDS_GLOBAL_PER_HOUR",
        Value("500"),
        Owner::Limits,
        Raise,
        "codes to new numbers, whole service, per window",
    ),
    row(
        "OTP_RESERVED_SENDS_PER_COUNTRY_PER_DAY",
        Value("1000"),
        Owner::Limits,
        Raise,
        "the reserve: codes to registered numbers of one country calling code per day",
    ),
    row(
        "OTP_RESERVED_SENDS_GLOBAL_PER_HOUR",
        Value("500"),
        Owner::Limits,
        Raise,
        "the reserve: codes to registered numbers, whole service, per window",
    ),
    row(
        "OTP_SEND_BUDGET_SHARDS",
        Value("8"),
        Owner::Limits,
        Keep,
        "items each country and global budget is split into (shards), 1 to 100",
    ),
    row(
        "OTP_SEND_WINDOW_SECONDS",
        Value("3600"),
        Owner::Limits,
        Keep,
        "the window of the `*_PER_HOUR`, per-phone and per-IP budgets (fixed windows aligned to \
         multiples of it; days are UTC days)",
    ),
    // SMS provider.
    row(
        "SMS_PROVIDER",
        Value("sns"),
        Owner::Sms,
        Keep,
        "`sns` (Amazon SNS `Publish`, transactional), `end-user-messaging` (AWS End User \
         Messaging SMS), `lambda` (your function) or `outbox` (append to a file); see \
         [\"SMS messages\"](#sms-messages). The template sets it, and the variables below, on the \
         five functions that send codes (check-phone, login, login-otp-request, \
         password-reset-request, phone-change-request) and on phone-change-confirm (the notice \
         to the old number) only",
    ),
    row(
        "SMS_HOOK_FUNCTION",
        Nothing,
        Owner::Sms,
        Keep,
        "`lambda` only, required: name or ARN of the function that sends each SMS",
    ),
    row(
        "SMS_ORIGINATION_IDENTITY",
        Nothing,
        Owner::Sms,
        Keep,
        "`end-user-messaging` only: phone number, sender ID or pool to send from",
    ),
    row(
        "SMS_CONFIGURATION_SET",
        Nothing,
        Owner::Sms,
        Keep,
        "`end-user-messaging` only: configuration set of the sends",
    ),
    row(
        "SMS_OUTBOX_PATH",
        Value(".local/sms-outbox.jsonl"),
        Owner::Sms,
        Keep,
        "`outbox` only: the outbox file",
    ),
    row(
        "SMS_TIMEOUT_SECONDS",
        Value("6"),
        Owner::Sms,
        Keep,
        "1 to 8: how long one provider call may take; never retried, and a call that times out \
         keeps its code",
    ),
    // SMS text.
    row(
        "SMS_TEMPLATES",
        Nothing,
        Owner::Messages,
        Keep,
        "your SMS templates as JSON, over the built-in `en` and `fa` (see \
         [\"SMS messages\"](#sms-messages))",
    ),
    row(
        "SMS_TEMPLATES_FILE",
        Nothing,
        Owner::Messages,
        Keep,
        "the same from a JSON file; refused together with `SMS_TEMPLATES`",
    ),
    row(
        "WEBOTP_DOMAIN",
        Nothing,
        Owner::Messages,
        Keep,
        "host name for the last line `@<host> #<code>` of every code SMS (WebOTP)",
    ),
    row(
        "ANDROID_APP_HASH",
        Nothing,
        Owner::Messages,
        Keep,
        "11-character SMS Retriever hash of your Android app, on its own line",
    ),
    // Bot check.
    row(
        "CAPTCHA_PROVIDER",
        Nothing,
        Owner::Captcha,
        Keep,
        "`turnstile` (Cloudflare), `hcaptcha` or `recaptcha` (Google; v2, or v3 with a score); \
         unset, there is no bot check (see [\"The bot check\"](#the-bot-check-captcha))",
    ),
    row(
        "CAPTCHA_WHEN",
        Value("under-pressure"),
        Owner::Captcha,
        Keep,
        "`always`, or `under-pressure`: only once a budget the code would draw on (new numbers: \
         the global, the number's country and its range; registered: the reserve's global and \
         country) is half used in its window, so ordinary users never see the check",
    ),
    row(
        "CAPTCHA_SECRET_ID",
        Nothing,
        Owner::Captcha,
        Keep,
        "required with a provider: the Secrets Manager secret holding the provider's secret key \
         (≥ 32 characters, as all three issue), read at cold start by the five functions that \
         ask for it (check-phone, password-reset-request, login-otp-request, \
         phone-change-request, and login for step-up codes) only",
    ),
    row(
        "LOCAL_CAPTCHA_SECRET",
        Nothing,
        Owner::Captcha,
        Keep,
        "**local runs only**: the provider's secret key itself. Refused together with \
         `CAPTCHA_SECRET_ID`, and on AWS Lambda (above)",
    ),
    row(
        "CAPTCHA_SECRET",
        Refused,
        Owner::Captcha,
        Keep,
        "the provider's secret key in the environment: refused",
    ),
    row(
        "CAPTCHA_MIN_SCORE",
        Value("0.5"),
        Owner::Captcha,
        Keep,
        "lowest score accepted when the provider gives one (reCAPTCHA v3), 0 to 1",
    ),
    row(
        "CAPTCHA_VERIFY_URL",
        Computed("the provider's siteverify URL"),
        Owner::Captcha,
        Keep,
        "for tests (a local stub); must be `https://`, plain `http://` only to 127.0.0.1 or \
         localhost",
    ),
    // SMS circuit breaker.
    row(
        "SMS_BREAKER_MODE",
        Value("observe"),
        Owner::Breaker,
        Keep,
        "`off` (nothing counted), `observe` (conversion counted, states decided and reported, \
         nothing refused) or `enforce` (the states refuse sends too)",
    ),
    row(
        "SMS_BREAKER_WINDOW_SECONDS",
        Value("3600"),
        Owner::Breaker,
        Keep,
        "the sliding window a destination's codes sent and entered are counted over, 60 to 86400",
    ),
    row(
        "SMS_BREAKER_BUCKETS",
        Value("4"),
        Owner::Breaker,
        Keep,
        "the buckets the window slides by, 1 to 24; they must divide the window, and one more \
         than them times `OTP_SEND_BUDGET_SHARDS` must be at most 100",
    ),
    row(
        "SMS_BREAKER_MIN_SENT",
        Value("10"),
        Owner::Breaker,
        Keep,
        "codes sent to a destination (a number range or a country) in the window before any \
         decision about it",
    ),
    row(
        "SMS_BREAKER_BLOCK_MIN_SENT",
        Value("20"),
        Owner::Breaker,
        Keep,
        "codes to new numbers (sign-up, change of number) sent to a number range in the window \
         before it may be blocked (a country is only ever challenged)",
    ),
    row(
        "SMS_BREAKER_CHALLENGE_BELOW_PERCENT",
        Value("20"),
        Owner::Breaker,
        Keep,
        "a destination whose codes were entered less often than this (percent) is challenged: \
         every send there needs the bot check",
    ),
    row(
        "SMS_BREAKER_BLOCK_BELOW_PERCENT",
        Value("10"),
        Owner::Breaker,
        Keep,
        "below this (percent) of its codes to new numbers entered, past \
         `SMS_BREAKER_BLOCK_MIN_SENT`, a number range is blocked: no code to a new number there",
    ),
    row(
        "SMS_BREAKER_RECOVER_PERCENT",
        Value("50"),
        Owner::Breaker,
        Keep,
        "at or above this (percent), or under `SMS_BREAKER_MIN_SENT` codes in the window, a \
         state steps down one level",
    ),
    // Client address.
    row(
        "TRUSTED_PROXY",
        Value("none"),
        Owner::Proxy,
        Keep,
        "whose address the per-network limits count: `none`, API Gateway's source IP (headers \
         ignored); `cloudfront`, the viewer address in `CloudFront-Viewer-Address` on requests \
         whose `X-Origin-Verify` carries the origin secret (see \
         [\"Behind CloudFront\"](operations.md#behind-cloudfront))",
    ),
    row(
        "TRUSTED_PROXY_ORIGIN_SECRET_SHA256",
        Nothing,
        Owner::Proxy,
        Keep,
        "with `cloudfront`, required: the SHA-256 (64 hex digits) of the origin secret \
         CloudFront adds as `X-Origin-Verify`",
    ),
    // Logging.
    row(
        "RUST_LOG",
        Nothing,
        Owner::Logging,
        Keep,
        "log directives (e.g. `auth_shared=debug`), and the level when `AWS_LAMBDA_LOG_LEVEL` \
         is unset (other crates stay at INFO at most: see \
         [Audit events](security.md#audit-events))",
    ),
    row(
        "AWS_LAMBDA_LOG_LEVEL",
        Computed("`RUST_LOG`'s level, else `info`"),
        Owner::Logging,
        Keep,
        "log level (Lambda's advanced logging controls set it)",
    ),
    row(
        "AWS_LAMBDA_LOG_FORMAT",
        Nothing,
        Owner::Logging,
        Keep,
        "`JSON` for JSON log lines (Lambda sets it when the function logs JSON)",
    ),
    // Events.
    row(
        "EVENTS_INCLUDE_PHONE",
        Value("false"),
        Owner::Events,
        Keep,
        "`true` puts the full phone numbers in the events' `phone` and `previous_phone`; \
         otherwise they carry only the masked ones",
    ),
    row(
        "EVENT_BUS_NAME",
        Required,
        Owner::Events,
        Keep,
        "the publisher's only: the EventBridge bus the events are put on, by name or ARN (set by \
         the template: the bus it creates, or `ExistingEventBusName`)",
    ),
    row(
        "EVENT_SOURCE",
        Value("phone-auth"),
        Owner::Events,
        Keep,
        "the publisher's only: the events' `source`, what a rule matches them by",
    ),
    // Set by AWS Lambda.
    row(
        "AWS_REGION",
        Value("us-east-1"),
        Owner::Lambda,
        Keep,
        "the region, for the issuer URL when `JWT_ISSUER` is unset (Lambda always sets it)",
    ),
    row(
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        Nothing,
        Owner::Lambda,
        Keep,
        "set by Lambda in every runtime (a function's configuration cannot set it), not by \
         `cargo lambda watch`: tells real Lambda, where local-only secrets are refused",
    ),
    row(
        "LAMBDA_TASK_ROOT",
        Nothing,
        Owner::Lambda,
        Keep,
        "as `AWS_LAMBDA_INITIALIZATION_TYPE`",
    ),
    // Read by the AWS SDK.
    row(
        "AWS_ENDPOINT_URL_DYNAMODB",
        Nothing,
        Owner::Sdk,
        Keep,
        "DynamoDB endpoint override (DynamoDB Local)",
    ),
    row(
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        Nothing,
        Owner::Sdk,
        Keep,
        "Secrets Manager endpoint override",
    ),
];

/// The process environment, as `Env` reads it in the functions.
pub fn process_variable(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The typed reader of the environment: every read names a row of `SETTINGS` (a name not in
/// the table is refused, so the table lists every variable read), an unset or blank variable
/// takes the row's default, and every error names the variable.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    fn row(&self, name: &'static str) -> Result<&'static Setting, ConfigError> {
        setting(name).ok_or(ConfigError::Unlisted(name))
    }

    /// The value as set, if set and not blank.
    pub fn get(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        self.row(name)?;
        Ok((self.lookup)(name).filter(|value| !value.trim().is_empty()))
    }

    /// The value as set, through `parse` (whose error is the reason given), if set.
    pub fn parsed_with<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)?
            .map(|raw| parse(&raw).map_err(|reason| ConfigError::Invalid { name, reason }))
            .transpose()
    }

    /// Whether the variable is set (and not blank).
    pub fn is_set(&self, name: &'static str) -> Result<bool, ConfigError> {
        Ok(self.get(name)?.is_some())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name)?.ok_or(ConfigError::Missing(name))
    }

    /// The value as set, else the table's default value.
    pub fn text(&self, name: &'static str) -> Result<String, ConfigError> {
        match self.get(name)? {
            Some(value) => Ok(value),
            None => self.default_text(name).map(str::to_owned),
        }
    }

    fn default_text(&self, name: &'static str) -> Result<&'static str, ConfigError> {
        match self.row(name)?.default {
            IfUnset::Value(text) => Ok(text),
            _ => Err(ConfigError::Invalid {
                name,
                reason: "has no default value in the settings table".to_owned(),
            }),
        }
    }

    /// Parsed from the value as set, else from the table's default.
    pub fn parse<T: FromStr>(&self, name: &'static str) -> Result<T, ConfigError> {
        let raw = self.text(name)?;
        raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("cannot parse '{raw}'"),
        })
    }

    /// As `parse`, within `bounds` (`unit` follows the bounds in the error: " seconds").
    pub fn bounded<T: FromStr + PartialOrd + Display>(
        &self,
        name: &'static str,
        bounds: RangeInclusive<T>,
        unit: &str,
    ) -> Result<T, ConfigError> {
        let value: T = self.parse(name)?;
        if !bounds.contains(&value) {
            return Err(ConfigError::Invalid {
                name,
                reason: format!(
                    "must be {} to {}{unit}, not {value}",
                    bounds.start(),
                    bounds.end()
                ),
            });
        }
        Ok(value)
    }

    /// A budget or failure count that refuses requests once reached: its row must say
    /// `Bench::Raise`, so that the benchmark raises it.
    pub fn limit(&self, name: &'static str) -> Result<u32, ConfigError> {
        if self.row(name)?.bench != Bench::Raise {
            return Err(ConfigError::Invalid {
                name,
                reason: "is read as a limit but the settings table does not mark it for the \
                         benchmark to raise (Bench::Raise)"
                    .to_owned(),
            });
        }
        self.parse(name)
    }

    /// One of `choices` by name (trimmed), else the table's default.
    pub fn choice<T: Copy>(
        &self,
        name: &'static str,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let raw = self.text(name)?;
        let raw = raw.trim();
        choices
            .iter()
            .find(|(choice, _)| *choice == raw)
            .map(|(_, value)| *value)
            .ok_or_else(|| ConfigError::Invalid {
                name,
                reason: format!(
                    "'{raw}' is not one of: {}",
                    choices
                        .iter()
                        .map(|(choice, _)| *choice)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn names_are_unique_and_defaults_parse_where_they_are_numbers() {
        let mut seen = BTreeSet::new();
        for setting in SETTINGS {
            assert!(seen.insert(setting.name), "{} twice", setting.name);
            assert!(
                setting
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                setting.name
            );
        }
    }

    #[test]
    fn the_benchmark_raises_only_counts_with_a_default() {
        for setting in SETTINGS.iter().filter(|s| s.bench != Bench::Keep) {
            let IfUnset::Value(default) = setting.default else {
                panic!("{} has no default value", setting.name);
            };
            assert!(default.parse::<u64>().is_ok(), "{}", setting.name);
        }
    }

    /// The string literals of Rust code (comments, `'"'` and escapes skipped; enough for ours).
    fn string_literals(code: &str) -> Vec<String> {
        let mut literals = Vec::new();
        let mut chars = code.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '/' if chars.peek() == Some(&'/') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '\'' => {
                    // A char literal such as '"' or '\\'; a lifetime has no closing quote.
                    let rest: String = chars.clone().take(3).collect();
                    if let Some(end) = rest.find('\'').filter(|&end| end > 0) {
                        for _ in 0..=end {
                            chars.next();
                        }
                    }
                }
                '"' => {
                    let mut literal = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '"' => break,
                            c => literal.push(c),
                        }
                    }
                    literals.push(literal);
                }
                _ => {}
            }
        }
        literals
    }

    /// The string literals that look like variable names in the library's code (tests aside).
    fn names_in_code() -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|ext| ext != "rs") || path.ends_with("settings.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                assert!(
                    !code.contains("env::var"),
                    "{}: read the environment through settings::Env",
                    path.display()
                );
                names.extend(string_literals(code).into_iter().filter(|piece| {
                    piece.len() > 3
                        && piece.contains('_')
                        && piece.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
                        && piece
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                }));
            }
        }
        names
    }

    #[test]
    fn every_variable_the_code_names_is_in_the_table_and_every_row_is_read() {
        let in_code = names_in_code();
        let unlisted: Vec<&String> = in_code.iter().filter(|n| setting(n).is_none()).collect();
        assert!(unlisted.is_empty(), "not in SETTINGS: {unlisted:?}");
        let unread: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| s.owner != Owner::Sdk && !in_code.contains(s.name))
            .map(|s| s.name)
            .collect();
        assert!(
            unread.is_empty(),
            "in SETTINGS but read nowhere: {unread:?}"
        );
    }

    #[test]
    fn the_reader_refuses_names_not_in_the_table() {
        let lookup = |_: &str| Some("1".to_owned());
        let env = Env::new(&lookup);
        assert!(matches!(
            env.get("NOT_A_SETTING"),
            Err(ConfigError::Unlisted("NOT_A_SETTING"))
        ));
        assert!(matches!(
            env.limit("LOCKOUT_SECONDS"),
            Err(ConfigError::Invalid {
                name: "LOCKOUT_SECONDS",
                ..
            })
        ));
        assert_eq!(env.limit("LOCKOUT_MAX_FAILURES").unwrap(), 1);
        let unset = |_: &str| None;
        let env = Env::new(&unset);
        assert_eq!(env.parse::<u64>("OTP_TTL_SECONDS").unwrap(), 300);
        assert!(env.parse::<u64>("SMS_HOOK_FUNCTION").is_err());
    }
}
