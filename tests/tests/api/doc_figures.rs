//! The figures the docs state in prose, held to the code: each claim below is a phrase of a doc
//! rendered from the value the code has (a setting's default, a constant, a count of the
//! things the code or the template holds), and the doc must contain it as rendered. Change a
//! default and the phrase no longer matches: the test names the doc to fix. Figures that are
//! not the code's (AWS quotas and prices) cite their source where they stand instead; the
//! tables of limits and settings have their own tests (`settings.rs`), and the README's
//! walk-through is run (`walk_through.rs`).

use std::path::Path;

use auth_shared::settings::{IfUnset, setting};

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

fn doc(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    // Prose is wrapped at any space: compare with every run of white space as one space.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every claim: the doc, and the phrase as the code's values render it.
fn claims() -> Vec<(&'static str, String)> {
    let minutes = |name: &str| default_of(name) / 60;
    vec![
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
    ]
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
