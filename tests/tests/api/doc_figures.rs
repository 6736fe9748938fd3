//! The figures the docs state in prose, held to the code: each claim below is a phrase of a doc
//! rendered from the value the code has (a setting's default, a constant, a count of the
//! things the code or the template holds; a private constant, a literal client setting or a
//! script's default is read from the text of the file that holds it), and the doc must contain
//! it as rendered. Change a
//! default and the phrase no longer matches: the test names the doc to fix. Figures that are
//! not the code's (AWS quotas and prices) cite their source where they stand instead; the
//! tables of limits and settings have their own tests (`settings.rs`), and the README's
//! walk-through is run (`walk_through.rs`).

use std::path::Path;
use std::time::Duration;

use auth_shared::settings::{IfUnset, setting};
use auth_shared::{http, limits, otp, password, profile, publisher, sms};
use auth_tests::tables::{read_template, template_path};
use serde_yaml_ng::Value;

/// A setting's default, as a number.
fn default_of(name: &str) -> u64 {
    match setting(name).map(|setting| setting.default) {
        Some(IfUnset::Value(value)) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}'s default {value} is not a number")),
        other => panic!("{name} has no default value: {other:?}"),
    }
}

/// A small count as a word, as the docs write it in prose.
fn word(n: u64) -> &'static str {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    WORDS
        .get(usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or_else(|| panic!("{n} is not written as a word"))
}

/// Seconds as the docs write a whole number of days, hours or minutes: "7 days", "an hour",
/// "15 minutes".
fn duration(seconds: u64) -> String {
    let (count, unit) = match seconds {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    match count {
        1 if unit == "hour" => "an hour".to_owned(),
        1 => format!("a {unit}"),
        n => format!("{n} {unit}s"),
    }
}

/// A setting's default, as it is written (for the settings that are not numbers).
fn default_text(name: &str) -> &'static str {
    match setting(name).map(|setting| setting.default) {
        Some(IfUnset::Value(value)) => value,
        other => panic!("{name} has no default value: {other:?}"),
    }
}

/// A small ordinal as a word ("the fifth").
fn ordinal(n: u64) -> &'static str {
    const WORDS: [&str; 11] = [
        "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
        "ninth", "tenth",
    ];
    WORDS
        .get(usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or_else(|| panic!("{n} is not written as an ordinal"))
}

/// The unit a window of `seconds` counts per: "hour" or "day".
fn per(seconds: u64) -> &'static str {
    match seconds {
        3_600 => "hour",
        86_400 => "day",
        other => panic!("a window of {other} s is not written as per hour or per day"),
    }
}

/// A number with thousands separators, as the docs write large ones: "19,640".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A duration in seconds as the docs write short timeouts: "0.5", "2".
fn seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1_000) {
        (millis / 1_000).to_string()
    } else {
        format!("{}", duration.as_secs_f64())
    }
}

/// A figure of BENCHMARKS.md (copied from the benchmark's output): the `from_end`th cell from
/// the end (1: the last) of the first table row under the heading `section` that starts with
/// `row`.
fn benchmark_cell(section: &str, row: &str, from_end: usize) -> f64 {
    let text = file("BENCHMARKS.md");
    let line = text
        .split(section)
        .nth(1)
        .unwrap_or_else(|| panic!("BENCHMARKS.md has no `{section}`"))
        .lines()
        .find(|line| line.starts_with(row))
        .unwrap_or_else(|| panic!("BENCHMARKS.md has no row `{row}`"));
    let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
    let cell = cells[cells.len() - from_end].trim_start_matches('$');
    cell.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("BENCHMARKS.md `{row}`: {cell} is not a number"))
}

/// A repository file's text (a path from the workspace root).
fn file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The number a file writes right after the first `prefix` (digits, `_` allowed): for private
/// constants and literal settings the test cannot name, and scripts' defaults. A renamed or
/// moved value fails here, naming the file and the text it looked for.
fn number_after(path: &str, prefix: &str) -> u64 {
    let text = file(path);
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{path} no longer has `{prefix}`"))
        + prefix.len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{path}: no number after `{prefix}`"))
}

/// The text a file writes between the first `prefix` and the next `end`.
fn text_after(path: &str, prefix: &str, end: char) -> String {
    let text = file(path);
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{path} no longer has `{prefix}`"))
        + prefix.len();
    text[start..]
        .split(end)
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `template.yaml`.
fn template() -> Value {
    read_template(&template_path())
        .unwrap_or_else(|e| panic!("template.yaml: {e}"))
        .0
}

/// A number of the template at `path` (keys from the top), e.g. a parameter's `Default`.
fn template_number(path: &[&str]) -> u64 {
    let template = template();
    let mut value = &template;
    for key in path {
        value = value
            .get(*key)
            .unwrap_or_else(|| panic!("template.yaml has no {}", path.join(".")));
    }
    value
        .as_u64()
        .unwrap_or_else(|| panic!("template.yaml's {} is not a number", path.join(".")))
}

/// How many resources of `kind` the template declares.
fn resources_of(kind: &str) -> u64 {
    let (_, resources) = read_template(&template_path()).expect("template.yaml");
    let count = resources
        .values()
        .filter(|resource| resource.get("Type").and_then(Value::as_str) == Some(kind))
        .count();
    u64::try_from(count).expect("a count")
}

/// The bits of every random opaque token (refresh token secrets, registration tokens,
/// verification ids): `tokens.rs`'s `OPAQUE_TOKEN_BYTES`.
fn random_bits() -> u64 {
    number_after("shared/src/tokens.rs", "const OPAQUE_TOKEN_BYTES: usize = ") * 8
}

/// The claims of one doc.
fn in_doc(
    file: &'static str,
    phrases: Vec<String>,
) -> impl Iterator<Item = (&'static str, String)> {
    phrases.into_iter().map(move |phrase| (file, phrase))
}

fn doc(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    // Prose is wrapped at any space: compare with every run of white space as one space.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every claim: the doc, and the phrase as the code's values render it.
fn claims() -> Vec<(&'static str, String)> {
    let minutes = |name: &str| default_of(name) / 60;
    let mut claims = vec![
        (
            "README.md",
            format!(
                "`registration_token` ({} min, single use)",
                minutes("REGISTRATION_TOKEN_TTL_SECONDS")
            ),
        ),
        (
            "README.md",
            format!(
                "Access tokens ({}) are JWTs",
                duration(default_of("ACCESS_TOKEN_TTL_SECONDS"))
            ),
        ),
        (
            "README.md",
            format!(
                "refresh tokens ({}) are opaque",
                duration(default_of("REFRESH_TOKEN_TTL_SECONDS"))
            ),
        ),
        (
            "README.md",
            format!(
                "Asking again for the same number within {} s is a 429; {} wrong codes from one \
                 network block that (phone, network) pair for {}.",
                default_of("OTP_RESEND_SECONDS"),
                word(default_of("LOCKOUT_MAX_FAILURES")),
                duration(default_of("LOCKOUT_SECONDS"))
            ),
        ),
        (
            "README.md",
            format!(
                "a Rust toolchain ({}+)",
                workspace_rust_version().expect("rust-version in Cargo.toml")
            ),
        ),
    ];

    // The defaults the docs below keep coming back to.
    let otp_ttl = default_of("OTP_TTL_SECONDS");
    let resend = default_of("OTP_RESEND_SECONDS");
    let max_attempts = default_of("OTP_MAX_ATTEMPTS");
    let anonymous = u64::from(limits::anonymous_guesses(
        u32::try_from(max_attempts).expect("a small number"),
    ));
    let otp_length = default_of("OTP_LENGTH");
    let lockout = default_of("LOCKOUT_MAX_FAILURES");
    let access = default_of("ACCESS_TOKEN_TTL_SECONDS");
    let refresh = default_of("REFRESH_TOKEN_TTL_SECONDS");
    let registration = default_of("REGISTRATION_TOKEN_TTL_SECONDS");
    let session_passwords = default_of("SESSION_PASSWORD_MAX_FAILURES");
    let step_up = default_of("OTP_STEP_UP_SENDS_PER_DAY");
    let floor = default_of("OTP_PROVEN_FLOOR_PER_DAY");
    let per_phone = default_of("OTP_SENDS_PER_PHONE");
    let per_phone_day = default_of("OTP_SENDS_PER_PHONE_PER_DAY");
    let window = default_of("OTP_SEND_WINDOW_SECONDS");
    let memory = default_of("ACCOUNT_FAILURE_MEMORY_SECONDS");
    let backoff_after = default_of("ACCOUNT_BACKOFF_AFTER_FAILURES");
    let backoff_max = default_of("ACCOUNT_BACKOFF_MAX_SECONDS");
    let margin = number_after(
        "shared/src/tokens.rs",
        "const PUBLICATION_MARGIN_SECONDS: u64 = ",
    );
    let key_cache = number_after("shared/src/handlers/jwks.rs", "max-age=");
    let retry_after = number_after(
        "shared/src/error.rs",
        "const UNAVAILABLE_RETRY_AFTER: u64 = ",
    );
    let slot_attempts = number_after(
        "shared/src/service/guard/slot.rs",
        "const SLOT_ATTEMPTS: usize = ",
    );
    let template_default = |parameter: &str| template_number(&["Parameters", parameter, "Default"]);
    // The KMS client's timeouts and attempts (`jwt_keys.rs`), and the DynamoDB client's
    // (`load_aws_config`, which every other AWS client starts from).
    let client = |path: &str| {
        format!(
            "{} s to connect, {} s an attempt and {} s in all ({} attempts)",
            seconds(Duration::from_millis(number_after(
                path,
                ".connect_timeout(Duration::from_millis("
            ))),
            number_after(path, ".operation_attempt_timeout(Duration::from_secs("),
            number_after(path, ".operation_timeout(Duration::from_secs("),
            word(number_after(path, ".with_max_attempts(")),
        )
    };
    let kms_timeouts = client("shared/src/jwt_keys.rs");
    let kms_total = number_after(
        "shared/src/jwt_keys.rs",
        ".operation_timeout(Duration::from_secs(",
    );
    let aws_attempts = number_after("shared/src/lib.rs", ".with_max_attempts(");
    let (rsa_min, rsa_max) = {
        let bits = text_after(
            "shared/src/jwt_keys.rs",
            "const RSA_BITS: std::ops::RangeInclusive<usize> = ",
            ';',
        );
        let (min, max) = bits.split_once("..=").expect("RSA_BITS is a range");
        (min.to_owned(), max.to_owned())
    };
    let levels = limits::PRESSURE_LEVELS;
    let functions = resources_of("AWS::Serverless::Function");

    // docs/api.md: the answers' lifetimes and limits, and the lengths and timeouts it states.
    claims.extend(in_doc(
        "docs/api.md",
        vec![
            format!(
                "Request bodies are JSON objects of at most {} KiB",
                http::MAX_BODY_BYTES / 1024
            ),
            format!("| body over {} KiB | 413 |", http::MAX_BODY_BYTES / 1024),
            format!("(the key set may be cached for {})", duration(key_cache)),
            format!("Cacheable for {}.", duration(key_cache)),
            format!("\"expires_in\": {otp_ttl}, \"resend_after\": {resend}"),
            format!("| again within {resend} s | 429 |"),
            format!(
                "(`CHECK_PHONE_LOOKUPS_PER_IP`, {} per {} by default, IPv6 counted by /64)",
                default_of("CHECK_PHONE_LOOKUPS_PER_IP"),
                per(window)
            ),
            format!("\"registration_token\": \"...\", \"expires_in\": {registration}}}"),
            format!("\"token_type\": \"Bearer\", \"expires_in\": {access}}}"),
            format!(
                "code not `OTP_LENGTH` digits ({otp_length} by default) | 400 | `{{\"error\": \
                 \"Invalid field 'code': must be {otp_length} digits.\"}}`"
            ),
            format!(
                "`attempts_left` is the smaller of what the code has left ({max_attempts} wrong \
                 tries per code) and what the (phone, client IP) pair has left before its \
                 lock-out ({lockout} failures)"
            ),
            format!(
                "A code takes {max_attempts} wrong guesses in all, and at most {anonymous} of \
                 them from guesses without its id (`OTP_MAX_ATTEMPTS` − {})",
                max_attempts - anonymous
            ),
            format!(
                "can never use up the last {} tries of the client that asked for it, and the \
                 total a code can be guessed stays {max_attempts}",
                max_attempts - anonymous
            ),
            format!("keep working, with {anonymous} tries."),
            format!(
                "must be {} to {} characters.",
                password::MIN_PASSWORD_CHARS,
                password::MAX_PASSWORD_CHARS
            ),
            format!(
                "Passwords are {} to {} characters (characters, not bytes)",
                password::MIN_PASSWORD_CHARS,
                password::MAX_PASSWORD_CHARS
            ),
            format!(
                "Names are at most {} characters as sent",
                profile::MAX_NAME_CHARS
            ),
            format!(
                "when the code sent less than {} ago from this network",
                duration(resend)
            ),
            format!("the code's limits spent (the account's {step_up} a day, the reserve)"),
            format!(
                "After `ACCOUNT_MAX_FAILURES` ({}) consecutive failed passwords",
                default_of("ACCOUNT_MAX_FAILURES")
            ),
            format!("(`OTP_STEP_UP_SENDS_PER_DAY`, {step_up}), and asks for the bot check"),
            format!(
                "a refresh token spent less than `REFRESH_REUSE_GRACE_SECONDS` ({}) ago",
                default_of("REFRESH_REUSE_GRACE_SECONDS")
            ),
            format!(
                "(`REFRESH_REUSE_GRACE_SECONDS`, default {} s, counted from the first spend",
                default_of("REFRESH_REUSE_GRACE_SECONDS")
            ),
            format!(
                "older than `RECENT_LOGIN_SECONDS` ({} min)",
                minutes("RECENT_LOGIN_SECONDS")
            ),
            format!(
                "counts against the session's own budget (the {} ends the session: 401",
                ordinal(session_passwords)
            ),
            format!(
                "(`SESSION_PASSWORD_MAX_FAILURES`, {session_passwords}: the {} ends the session)",
                ordinal(session_passwords)
            ),
            format!(
                "(`SESSION_PASSWORD_MAX_FAILURES`, {session_passwords}: the {} wrong one ends the \
                 session)",
                ordinal(session_passwords)
            ),
            format!("cut to {} characters", http::MAX_USER_AGENT_CHARS),
            format!(
                "at most one access-token lifetime ({} min) behind",
                access / 60
            ),
            format!(
                "and {} random bits from the operating system's generator (base64url)",
                random_bits()
            ),
            format!(
                "(`REFRESH_TOKEN_TTL_SECONDS`, {}, after the upgrade)",
                duration(refresh)
            ),
            format!(
                "Access tokens live {}, refresh tokens {} (each refresh extends the session by \
                 another {} from then)",
                duration(access),
                duration(refresh),
                duration(refresh)
            ),
            format!(
                "a `RAW` message of under {} KB",
                number_after(
                    "shared/src/jwt_keys.rs",
                    "const KMS_MAX_MESSAGE_BYTES: usize = "
                ) / 1024
            ),
            format!(
                "**{}** (RSA {}; the template's default",
                template()["Parameters"]["JwtAlgorithm"]["Default"]
                    .as_str()
                    .expect("JwtAlgorithm's default"),
                text_after(
                    "template.yaml",
                    "KeySpec: !If [UseEs256, ECC_NIST_P256, RSA_",
                    ']'
                )
            ),
            format!("The KMS client gives up after {kms_timeouts}"),
            format!("RSA of {rsa_min} to {rsa_max} bits for RS256"),
            format!(
                "(such a string of at least {} bytes",
                number_after("shared/src/secrets.rs", "const MIN_SECRET_BYTES: usize = ")
            ),
            format!(
                "for as long as the longest token it signs lives plus {}",
                duration(margin)
            ),
            format!(
                "(at most once {} per instance",
                duration(number_after(
                    "shared/src/tokens.rs",
                    "const PUBLISHED_KEYS_RELOAD_INTERVAL: Duration = Duration::from_secs("
                ))
            ),
            format!(
                "publication lasts, {} after the last instance signing with it",
                duration(refresh + margin)
            ),
            format!(
                "its publication ending {} after its last access token",
                duration(margin)
            ),
            format!(
                "Length limits (phone {}, `locale` {}, names {}, email {} characters)",
                number_after("shared/src/phone.rs", "const MAX_INPUT_CHARS: usize = "),
                number_after("shared/src/messages.rs", "const MAX_LOCALE_CHARS: usize = "),
                profile::MAX_NAME_CHARS,
                profile::MAX_EMAIL_CHARS
            ),
            format!("\"retry_after\": {retry_after}}}` + `Retry-After`"),
            format!(
                "until it expires ({}, `AccessTokenTtlSeconds`)",
                duration(access)
            ),
            format!(
                "with {} generated cases per operation",
                number_after("scripts/contract", "CONTRACT_EXAMPLES:-")
            ),
            format!(
                "The {} signing functions (register, login, login-otp, refresh)",
                word(signing_functions())
            ),
            format!(
                "the API's contract (OpenAPI {}): every path",
                openapi_version()
            ),
            format!("(the document is valid OpenAPI {})", openapi_version()),
        ],
    ));

    // docs/security.md: the rules' lifetimes and sizes, the lock-outs and budgets in prose, and
    // the timeouts of the reliability section.
    claims.extend(in_doc(
        "docs/security.md",
        vec![
            format!("to its lifetime ({}), since the authorizer", duration(access)),
            format!(
                "`OTP_LENGTH` digits ({otp_length} by default; {} to {})",
                otp::OTP_LENGTHS.start(),
                otp::OTP_LENGTHS.end()
            ),
            format!("time; lives {}; single use", duration(otp_ttl)),
            format!(
                "{} purposes (sign-up, password reset, login, change of number)",
                word(u64::try_from(otp::OtpPurpose::ALL.len()).expect("a count"))
            ),
            format!(
                "again for the same number and purpose after {resend} s. Its `verification_id` \
                 ({} random bits)",
                random_bits()
            ),
            format!("counts against that code ({max_attempts} tries)"),
            format!(
                "a budget they share ({anonymous} in each {} from the first such guess)",
                duration(otp_ttl)
            ),
            format!("(one conditional update; `SESSION_PASSWORD_MAX_FAILURES`, {session_passwords})"),
            format!(
                "20 parallel wrong passwords from one network: {lockout} checked; 30 from 30 \
                 networks: {backoff_after} checked"
            ),
            format!(
                "**Registration token**: {} random bits from the OS generator",
                random_bits()
            ),
            format!(
                "lives {}, spent in the same `TransactWriteItems`",
                duration(registration)
            ),
            format!(
                "(m={} KiB, t={}, p={})",
                number_after("shared/src/password.rs", "const MEMORY_KIB: u32 = "),
                number_after("shared/src/password.rs", "const ITERATIONS: u32 = "),
                number_after("shared/src/password.rs", "const PARALLELISM: u32 = ")
            ),
            format!(
                "in {} MiB of working memory",
                number_after("shared/src/password.rs", "const MEMORY_KIB: u32 = ") / 1024
            ),
            format!(
                "Refresh tokens are opaque, {} random bits from the operating system's generator",
                random_bits()
            ),
            format!(
                "`SESSION_MAX_SECONDS` ({}) from its login",
                duration(default_of("SESSION_MAX_SECONDS"))
            ),
            format!(
                "retried (up to {} times, with jitter)",
                number_after("shared/src/store/mod.rs", "const CONFLICT_RETRIES: u32 = ")
            ),
            format!("from the state the refusal reports (up to {slot_attempts} times)"),
            format!(
                "({} from the first such guess; a code alive across two such windows may so take \
                 {max_attempts} + {} guesses)",
                duration(otp_ttl),
                2 * anonymous
            ),
            format!(
                "after {backoff_after} failures each further attempt waits, doubling up to {}",
                duration(backoff_max)
            ),
            format!("(about {} a day at the cap)", 86_400 / backoff_max),
            format!(
                "After {} failures the right password is answered with a login code",
                default_of("ACCOUNT_MAX_FAILURES")
            ),
            format!(
                "account's own allowance (`OTP_STEP_UP_SENDS_PER_DAY`, {step_up}) instead of the \
                 phone's caps"
            ),
            format!("last {} (`ACCOUNT_FAILURE_MEMORY_SECONDS`;", duration(memory)),
            format!("and the {} ends the session.", ordinal(session_passwords)),
            format!("keeps its {} tries", word(max_attempts)),
            format!(
                "the phone's {}ly and daily ceilings ({per_phone}, {per_phone_day}) count only",
                per(window)
            ),
            format!("proven networks count against a daily ceiling of their own ({per_phone_day})"),
            format!(
                "(`OTP_SENDS_PER_PHONE_NETWORK_PER_DAY`, {})",
                default_of("OTP_SENDS_PER_PHONE_NETWORK_PER_DAY")
            ),
            format!(
                "in the last {} keeps a small floor of its own (`OTP_PROVEN_FLOOR_PER_DAY`, {floor})",
                duration(memory)
            ),
            format!(
                "fill them for {} ({per_phone}) or a day ({per_phone_day})",
                duration(window)
            ),
            format!(
                "(`OTP_SENDS_PER_IP_BLOCK_PER_HOUR`, {})",
                default_of("OTP_SENDS_PER_IP_BLOCK_PER_HOUR")
            ),
            format!("gets up to {floor} codes a day per account"),
            format!(
                "{per_phone_day} codes asked for from networks the owner never proved the number \
                 from, {per_phone_day} from networks they did, {step_up} step-up codes, and, once \
                 the reserve is spent, none beyond those (the floor, {floor}, counts within them \
                 as well as against its own cap); plus one notice per completed change of number \
                 away from it. That is {} codes a day",
                2 * per_phone_day + step_up
            ),
            format!(
                "split into `OTP_SEND_BUDGET_SHARDS` items (default {})",
                default_of("OTP_SEND_BUDGET_SHARDS")
            ),
            format!(
                "tries {} other before it is refused",
                word(number_after(
                    "shared/src/service/guard/send.rs",
                    "const SHARD_ATTEMPTS: usize = "
                ) - 1)
            ),
            format!(
                "A budget under {} has one shard (exact), and no shard holds less than {}.",
                2 * limits::MIN_SHARD_SHARE,
                limits::MIN_SHARD_SHARE
            ),
            format!(
                "the per-IP cap ({} an {})",
                default_of("OTP_SENDS_PER_IP"),
                per(window)
            ),
            format!(
                "siteverify call ({} s timeout)",
                number_after(
                    "shared/src/captcha.rs",
                    "const VERIFY_TIMEOUT: Duration = Duration::from_secs("
                )
            ),
            format!("the reserve's {}% mark", levels[0]),
            format!("crosses {}% and {}% of its window", levels[0], levels[1]),
            format!(
                "without its last {} digits, e.g. `+98912345`",
                word(number_after("shared/src/limits.rs", "number.len().saturating_sub("))
            ),
            format!(
                "the number without its last {} digits)",
                number_after("shared/src/limits.rs", "number.len().saturating_sub(")
            ),
            format!(
                "the range budget can be aimed: {} sends ({} of them with solved captchas under \
                 pressure)",
                default_of("OTP_SENDS_PER_RANGE_PER_HOUR"),
                default_of("OTP_SENDS_PER_RANGE_PER_HOUR") / 2
            ),
            format!("It expires in {}. Do not share it.", duration(otp_ttl)),
            format!(
                "{} once lowercased",
                thousands(
                    u64::try_from(file("shared/data/common-passwords.txt").lines().count())
                        .expect("a count")
                )
            ),
            format!(
                "`shared/data/common-passwords.txt` ({} KB, compiled in",
                // To two significant figures, as the doc writes it.
                (file("shared/data/common-passwords.txt").len() + 5_000) / 10_000 * 10
            ),
            format!(
                "gives up on a connection after {} s, on one attempt after {} s and on an \
                 operation after {} s (`AWS_CALL_TIMEOUT`), with the SDK's standard retry mode \
                 ({aws_attempts} attempts",
                seconds(Duration::from_millis(number_after(
                    "shared/src/lib.rs",
                    ".connect_timeout(Duration::from_millis("
                ))),
                number_after(
                    "shared/src/lib.rs",
                    ".operation_attempt_timeout(Duration::from_secs("
                ),
                auth_shared::AWS_CALL_TIMEOUT.as_secs()
            ),
            format!(
                "Every function behind the API has API Gateway's ceiling, {} s",
                template_number(&["Globals", "Function", "Timeout"])
            ),
            format!(
                "the events publisher, which no request waits for, has {} s)",
                template_number(&["Resources", "EventsPublisherFunction", "Properties", "Timeout"])
            ),
            format!(
                "each at its limit ({} s; an SMS provider call {} s, the most \
                 `SMS_TIMEOUT_SECONDS` allows",
                auth_shared::AWS_CALL_TIMEOUT.as_secs(),
                sms::SMS_TIMEOUT_SECONDS.end()
            ),
            format!(
                "plus {} s for CPU",
                number_after(
                    "tests/tests/least_privilege.rs",
                    "const CPU_MARGIN: Duration = Duration::from_secs("
                )
            ),
            format!(
                "against Lambda's {} s init phase",
                number_after(
                    "tests/tests/least_privilege.rs",
                    "const INIT_LIMIT: Duration = Duration::from_secs("
                )
            ),
            format!(
                "one batch delete per further {} sessions",
                number_after("shared/src/store/sessions.rs", "const BATCH_LIMIT: usize = ")
            ),
            format!(
                "up to {} times, so a request meeting both",
                word(slot_attempts)
            ),
            format!("the KMS client gives up after {kms_timeouts}"),
            format!("adds at most {kms_total} s to the requests that sign"),
            format!("`Retry-After: {retry_after}`, never a panic"),
        ],
    ));

    // docs/operations.md: what the stack creates, the waits of a key rotation, the template's
    // defaults it names.
    claims.extend(in_doc(
        "docs/operations.md",
        vec![
            format!("for each of the {functions} functions"),
            format!(
                "the {} signing functions can hold an",
                word(signing_functions())
            ),
            format!("The stack creates the HTTP API (output `ApiUrl`), {functions} functions"),
            format!(
                "about ${:.0} per million sign-ups and ${:.0} per million logins",
                benchmark_cell("## 7. Cost per", "| 1,000,000 sign-ups |", 1),
                benchmark_cell("## 7. Cost per", "| 1,000,000 logins |", 1)
            ),
            format!(
                "${:.2} to ${:.2} per million events on top",
                benchmark_cell("### Events: what they cost", "| 100 | ", 1),
                benchmark_cell("### Events: what they cost", "| 1 | ", 1)
            ),
            format!(
                "{} DynamoDB tables, {} Secrets Manager secrets generated by AWS",
                word(resources_of("AWS::DynamoDB::Table")),
                word(resources_of("AWS::SecretsManager::Secret"))
            ),
            format!(
                "stack, as are the {} secrets (so a redeploy gets new ones",
                word(resources_of("AWS::SecretsManager::Secret"))
            ),
            format!(
                "log groups for the {} functions that send codes and for the SMS breaker's",
                // Less the breaker's own.
                word(resources_of("AWS::Logs::LogGroup") - 1)
            ),
            format!(
                "the {} secrets ($0.40 each a month), the {} alarms ($0.10 each a month)",
                word(resources_of("AWS::SecretsManager::Secret")),
                word(resources_of("AWS::CloudWatch::Alarm"))
            ),
            format!(
                "access-token lifetime ({}) plus API Gateway's 2-hour cache",
                duration(access)
            ),
            format!(
                "less than `RefreshTokenTtlSeconds` ({} by default) ago",
                duration(template_default("RefreshTokenTtlSeconds"))
            ),
            format!(
                "After `RefreshTokenTtlSeconds` ({} by default)",
                duration(template_default("RefreshTokenTtlSeconds"))
            ),
            format!(
                "until its publication ends {} after it last signed",
                duration(refresh + margin)
            ),
            format!(
                "publication ({} after the last instance signed with",
                duration(refresh + margin)
            ),
            format!("(2 hours and {} after step 4;", duration(access)),
            format!("After 2 hours and {}, deploy with", duration(access)),
            format!(
                "(`ApiThrottlingRateLimit` requests per second, default {}, bursts of \
                 `ApiThrottlingBurstLimit`, default {})",
                template_default("ApiThrottlingRateLimit"),
                template_default("ApiThrottlingBurstLimit")
            ),
            format!(
                "{} (the default) sets no reservation",
                template_default("PasswordHashingReservedConcurrency")
                    .max(template_default("SmsSendingReservedConcurrency"))
            ),
            format!(
                "`OtpSentAlarmThreshold` codes go out in {}",
                duration(template_number(&[
                    "Resources",
                    "OtpSentAlarm",
                    "Properties",
                    "Period"
                ]))
            ),
            format!(
                "`PasswordHashingMemorySize` ({} MB), the others `FunctionMemorySize` ({} MB)",
                template_default("PasswordHashingMemorySize"),
                template_default("FunctionMemorySize")
            ),
            format!(
                "each `functions/*/src/main.rs` is at most {} lines of code",
                word(longest_main())
            ),
        ],
    ));

    // docs/storage.md: the TTLs of the table of tables, and the login's request count (the
    // table's, which `request_counts.rs` holds to the code).
    claims.extend(in_doc(
        "docs/storage.md",
        vec![
            format!("a code's lifetime ({} min)", otp_ttl / 60),
            format!("token lifetime ({} min)", registration / 60),
            format!("reached {} or {}% of its window", levels[0], levels[1]),
            format!(
                "an account's record {} after its last failure; the `known#` and `proved#` marks \
                 {} after the proof (`ACCOUNT_FAILURE_MEMORY_SECONDS`)",
                duration(memory),
                duration(memory)
            ),
            format!(
                "the end of the last token signed under the key + {} day (renewed while it signs)",
                whole_days(margin)
            ),
            format!(
                "| {} after `occurred_at`",
                duration(auth_shared::store::events::EVENT_RETENTION_SECONDS)
            ),
            format!(
                "at most 2 requests on a successful login; it takes {}.",
                number_after("docs/storage.md", "| login, right password | ")
            ),
        ],
    ));

    // docs/events.md: the publisher's batches, retries and time reserve, the mapping's and the
    // queue's settings in the template, the outbox's retention, the replay script's.
    let publisher_waits: Vec<String> = (0..publisher::MAX_RETRIES)
        .map(|retry| seconds(publisher::BACKOFF_BASE * (1 << retry)))
        .collect();
    let (last_wait, first_waits) = publisher_waits.split_last().expect("retries");
    let stream =
        |key: &str| template_number(&["Resources", "EventsPublisherStream", "Properties", key]);
    claims.extend(in_doc(
        "docs/events.md",
        vec![
            format!(
                "| `event_id` | {} hex digits",
                uuid::Uuid::new_v4().simple().to_string().len()
            ),
            {
                // `PhoneNumber::masked`: the last digits shown, and a head of the length less
                // this many characters, at most `most_head` of them.
                let phone = "shared/src/phone.rs";
                let tail = number_after(phone, "chars[chars.len().saturating_sub(");
                let hidden_and_tail = number_after(phone, "chars.len().saturating_sub(");
                let most_head = number_after(phone, ".clamp(1, ");
                let hidden = hidden_and_tail - tail;
                format!(
                    "the first digits and the last {}, and hides {}: for a number of up to {} \
                     digits {} candidates remain",
                    word(tail),
                    word(hidden),
                    most_head + hidden_and_tail - 1,
                    thousands(10_u64.pow(u32::try_from(hidden).expect("a few digits")))
                )
            },
            format!(
                "`source` = the stack's `EventSource` (default `{}`)",
                default_text("EVENT_SOURCE")
            ),
            format!("up to {} records at a time", stream("BatchSize")),
            format!(
                "at most {} entries and {} KB",
                publisher::MAX_ENTRIES_PER_CALL,
                publisher::MAX_CALL_BYTES / 1024
            ),
            format!(
                "up to {} times with jittered exponential back-off (waits of up to {} and {} s)",
                publisher::MAX_RETRIES,
                first_waits.join(", "),
                last_wait
            ),
            format!("(after the SDK's own {aws_attempts} attempts)"),
            format!(
                "unless the invocation has {} s left",
                publisher::CALL_RESERVE.as_secs()
            ),
            format!(
                "up to {} times (`MaximumRetryAttempts`)",
                stream("MaximumRetryAttempts")
            ),
            format!(
                "older than {} (`MaximumRecordAgeInSeconds`",
                duration(stream("MaximumRecordAgeInSeconds"))
            ),
            format!(
                "encrypted, {})",
                duration(template_number(&[
                    "Resources",
                    "EventsDeadLetterQueue",
                    "Properties",
                    "MessageRetentionPeriod"
                ]))
            ),
            format!(
                "`EventsTable` for {} after they occurred (`expires_at`)",
                duration(auth_shared::store::events::EVENT_RETENTION_SECONDS)
            ),
            format!(
                "**within those {}**",
                duration(auth_shared::store::events::EVENT_RETENTION_SECONDS)
            ),
            format!(
                "(widened by {} on each side",
                duration(number_after(
                    "scripts/replay-events",
                    "$(epoch \"$from\") - "
                ))
            ),
            format!(
                "in order of `occurred_at`, {} a call",
                number_after("scripts/replay-events", "start += ")
            ),
            format!(
                "above {} over {})",
                template_number(&[
                    "Resources",
                    "EventsDeadLetterAlarm",
                    "Properties",
                    "Threshold"
                ]),
                duration(template_number(&[
                    "Resources",
                    "EventsDeadLetterAlarm",
                    "Properties",
                    "Period"
                ]))
            ),
        ],
    ));

    // docs/development.md: pinned versions and the scripts' defaults.
    let sizes = text_after("tests/src/bin/bench/sizing.rs", "pub const SIZES_MB", '\n');
    let sizes: Vec<&str> = sizes
        .split_once("= [")
        .map(|(_, list)| list.trim_end_matches("];"))
        .expect("SIZES_MB's list")
        .split(", ")
        .collect();
    let jsonwebtoken = text_after("Cargo.toml", "jsonwebtoken = {", '\n');
    claims.extend(in_doc(
        "docs/development.md",
        vec![
            format!(
                "package `{}`, which bundles Amazon's jar; runs on Java {}",
                text_after("scripts/common.sh", "DYNAMODB_LOCAL_NPM=", '\n'),
                number_after("scripts/common.sh", "apt_install openjdk-")
            ),
            format!("the API's contract (OpenAPI {})", openapi_version()),
            format!(
                "need a Rust toolchain ({}+)",
                workspace_rust_version().expect("rust-version in Cargo.toml")
            ),
            format!(
                "starts DynamoDB Local on port {}",
                number_after("scripts/dev", "DYNAMODB_PORT:-")
            ),
            format!(
                "(default {} per target)",
                number_after("scripts/fuzz", "seconds=${1:-")
            ),
            format!(
                "`.ci/run` runs {} s per target",
                number_after(".ci/run", "FUZZ_SECONDS:-")
            ),
            format!(
                "default the {} longest in `shared/src`",
                word(number_after("scripts/longest-functions", "\"${1:-"))
            ),
            format!(
                "(`Bench::Raise` to {},",
                thousands(
                    auth_shared::settings::BENCH_RAISED
                        .parse()
                        .expect("a number")
                )
            ),
            format!(
                "from {} to {} MB",
                sizes.first().expect("sizes"),
                sizes.last().expect("sizes")
            ),
            format!(
                "`jsonwebtoken` {} needs exactly one crypto backend feature (`{}` here)",
                text_after("Cargo.toml", "jsonwebtoken = { version = \"", '.'),
                jsonwebtoken
                    .split("features = [\"")
                    .nth(1)
                    .and_then(|features| features.split('"').next())
                    .expect("jsonwebtoken's features")
            ),
        ],
    ));

    // The admin API, app claims and the token hook (docs/api.md, README, docs/operations.md).
    let claims_bytes = auth_shared::app_claims::MAX_APP_CLAIMS_BYTES;
    let hook_bytes = auth_shared::token_hook::MAX_HOOK_CLAIMS_BYTES;
    let hook_seconds = auth_shared::token_hook::TOKEN_HOOK_TIMEOUT.as_secs();
    let access = duration(default_of("ACCESS_TOKEN_TTL_SECONDS"));
    let admin = "shared/src/handlers/admin.rs";
    claims.extend(in_doc(
        "docs/api.md",
        vec![
            format!(
                "a page of its live sessions (1 to {}, {} by default)",
                number_after(admin, "const MAX_PAGE: usize = "),
                number_after(admin, "const DEFAULT_PAGE: usize = ")
            ),
            format!("a JSON object of at most {claims_bytes} bytes as compact JSON"),
            format!("(roles, a tenant, a plan: at most {claims_bytes} bytes,"),
            format!("(within `ACCESS_TOKEN_TTL_SECONDS`, {access} by default)"),
            format!("it takes longer than {hook_seconds} s"),
            format!("exceed {hook_bytes} bytes as compact JSON"),
            format!(
                "Only the {} functions that sign tokens may invoke it",
                word(signing_functions())
            ),
        ],
    ));
    claims.extend(in_doc(
        "README.md",
        vec![format!(
            "at most {} KB, that every access token",
            claims_bytes / 1024
        )],
    ));
    claims.extend(in_doc(
        "docs/operations.md",
        vec![format!(
            "accept them until they expire, {access} by default"
        )],
    ));

    // docs/security.md: the SMS breaker's defaults and what a pumping run gets out under them.
    let min_sent = default_of("SMS_BREAKER_MIN_SENT");
    let block_min_sent = default_of("SMS_BREAKER_BLOCK_MIN_SENT");
    let window = default_of("SMS_BREAKER_WINDOW_SECONDS");
    let buckets = default_of("SMS_BREAKER_BUCKETS");
    claims.extend(in_doc(
        "docs/security.md",
        vec![
            format!(
                "(`SMS_BREAKER_WINDOW_SECONDS`, {}, in `SMS_BREAKER_BUCKETS` buckets of a {} of it)",
                duration(window),
                ["", "whole", "half", "third", "quarter"][usize::try_from(buckets).unwrap_or(0)]
            ),
            format!("no decision under `SMS_BREAKER_MIN_SENT` ({min_sent}) codes"),
            format!(
                "`SMS_BREAKER_CHALLENGE_BELOW_PERCENT` ({}%)",
                default_of("SMS_BREAKER_CHALLENGE_BELOW_PERCENT")
            ),
            format!(
                "`SMS_BREAKER_BLOCK_BELOW_PERCENT` ({}%)",
                default_of("SMS_BREAKER_BLOCK_BELOW_PERCENT")
            ),
            format!("`SMS_BREAKER_BLOCK_MIN_SENT` ({block_min_sent}) were sent"),
            format!(
                "`SMS_BREAKER_RECOVER_PERCENT` ({}%)",
                default_of("SMS_BREAKER_RECOVER_PERCENT")
            ),
            format!(
                "gets {min_sent} SMS out before its range is challenged, and {} more",
                block_min_sent - min_sent
            ),
            format!(
                "(`OTP_SENDS_PER_RANGE_PER_HOUR`, {}) is reached at the same point",
                default_of("OTP_SENDS_PER_RANGE_PER_HOUR")
            ),
            format!("challenges the country instead, once {min_sent} codes without entries"),
            format!(
                "(`RECEIVED`), {} at a time",
                word(number_after(
                    "shared/src/breaker.rs",
                    "const FEEDBACK_CONCURRENCY: usize = "
                ))
            ),
            format!(
                "the stream's {}-second batching",
                template_number(&[
                    "Resources",
                    "SmsBreakerStream",
                    "Properties",
                    "MaximumBatchingWindowInSeconds"
                ])
            ),
        ],
    ));

    claims.extend(in_doc(
        "README.md",
        vec![
            format!(
                "after {min_sent} codes with fewer than {}% of them entered",
                default_of("SMS_BREAKER_CHALLENGE_BELOW_PERCENT")
            ),
            format!(
                "after {block_min_sent} codes to new numbers with fewer than {}%",
                default_of("SMS_BREAKER_BLOCK_BELOW_PERCENT")
            ),
            format!(
                "over the last {}",
                duration(window)
                    .trim_start_matches("an ")
                    .trim_start_matches("a ")
            ),
        ],
    ));

    claims.extend(in_doc(
        "docs/security.md",
        vec![format!(
            "up to the ceiling's {} MiB",
            auth_shared::imported_hash::MAX_ARGON2_MEMORY_KIB / 1024
        )],
    ));

    claims.extend(in_doc(
        "docs/development.md",
        vec![format!(
            "generated users ({} by default)",
            thousands(number_after(
                "tests/src/bin/bench/setup.rs",
                "const DEFAULT_IMPORT_ROWS: u64 = "
            ))
        )],
    ));

    // Moving users in: the importer and the Cognito migration (README).
    claims.extend(in_doc(
        "README.md",
        vec![
            format!(
                "`--concurrency` puts in flight, {} by default",
                number_after(
                    "tools/import-users/src/options.rs",
                    "#[arg(long, default_value_t = "
                )
            ),
            format!(
                "may take {} s, its retry included",
                auth_shared::cognito::COGNITO_CALL_TIMEOUT.as_secs()
            ),
        ],
    ));
    claims
}

/// How many functions the template lets sign with KMS (`kms:Sign` in their policies).
fn signing_functions() -> u64 {
    let count = file("template.yaml").matches("Action: [kms:Sign,").count();
    u64::try_from(count).expect("a count")
}

/// The OpenAPI version `openapi.yaml` declares, to the minor version ("3.1").
fn openapi_version() -> String {
    let version = text_after("openapi.yaml", "openapi: ", '\n');
    version
        .rsplit_once('.')
        .map_or(version.clone(), |(minor, _)| minor.to_owned())
}

/// Whole days of `seconds`, as "+ 1 day" writes them.
fn whole_days(seconds: u64) -> u64 {
    assert_eq!(
        seconds % 86_400,
        0,
        "{seconds} s is not a whole number of days"
    );
    seconds / 86_400
}

/// The most lines of code (neither blank nor comments) of any function's `main.rs`.
fn longest_main() -> u64 {
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut longest = 0;
    for entry in std::fs::read_dir(&functions).expect("functions/") {
        let main = entry.expect("an entry").path().join("src/main.rs");
        let text = std::fs::read_to_string(&main).unwrap_or_else(|e| panic!("{main:?}: {e}"));
        let code = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("//"))
            .count();
        longest = longest.max(u64::try_from(code).expect("a count"));
    }
    longest
}

/// The workspace's `rust-version`.
fn workspace_rust_version() -> Option<String> {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .ok()?;
    manifest.lines().find_map(|line| {
        let value = line.strip_prefix("rust-version")?.split('=').nth(1)?;
        Some(value.trim().trim_matches('"').to_owned())
    })
}

#[test]
fn every_figure_the_docs_state_in_prose_is_the_codes() {
    let mut wrong = Vec::new();
    for (file, phrase) in claims() {
        let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
        if !doc(file).contains(&phrase) {
            wrong.push(format!("{file} should say: {phrase}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn durations_read_as_the_docs_write_them() {
    assert_eq!(duration(900), "15 minutes");
    assert_eq!(duration(3_600), "an hour");
    assert_eq!(duration(604_800), "7 days");
    assert_eq!(duration(86_400), "a day");
    assert_eq!(duration(90), "90 seconds");
    assert_eq!(word(3), "three");
}
