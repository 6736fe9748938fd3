//! The settings table (`shared/src/settings.rs`) is the one source of every default: the
//! template deploys the same defaults, the docs' tables are generated from it, and every limit
//! it marks is raised by the benchmark.

use std::collections::BTreeMap;

use auth_shared::config::Config;
use auth_shared::settings::{Bench, IfUnset, Owner, SETTINGS, setting};
use auth_tests::settings_doc::{
    TEMPLATE_EXCEPTIONS, configuration_page, expected_template_default, generated_part, render,
    same_default, template_variables,
};
use auth_tests::tables::template_path;

#[test]
fn the_template_deploys_the_defaults_of_the_code() {
    let variables = template_variables(&template_path()).expect("template");
    let mut wrong = Vec::new();
    for (name, from) in &variables {
        let Some(setting) = setting(name) else {
            wrong.push(format!(
                "{name}: set by the template, not in the settings table"
            ));
            continue;
        };
        let Some(from) = from else { continue };
        match (expected_template_default(setting), &from.default) {
            (None, _) => wrong.push(format!(
                "{name}: {:?} in the code, yet set from parameter {}",
                setting.default, from.parameter
            )),
            (Some(expected), Some(deployed)) if same_default(expected, deployed) => {}
            (Some(expected), deployed) => wrong.push(format!(
                "{name}: parameter {} defaults to {deployed:?}, the code to {expected:?}",
                from.parameter
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Each exception is real: the template does deploy something else than the code's default.
    for (name, deployed, why) in TEMPLATE_EXCEPTIONS {
        let setting = setting(name).expect("an exception names a setting");
        let IfUnset::Value(default) = setting.default else {
            panic!("{name}: an exception to a default needs a default");
        };
        assert_ne!(default, *deployed, "{name} is no exception ({why})");
        let from = variables[*name].as_ref().expect("set from a parameter");
        assert_eq!(from.default.as_deref(), Some(*deployed), "{name}");
    }
}

#[test]
fn the_configuration_page_is_generated_from_the_settings_table() {
    let page = std::fs::read_to_string(configuration_page()).expect("docs/configuration.md");
    let checked_in = generated_part(&page).expect("the page has the settings table markers");
    let generated = render(&template_path()).expect("render");
    assert!(
        checked_in == generated,
        "docs/configuration.md's settings tables differ from shared/src/settings.rs: run \
         scripts/settings-doc"
    );
    for setting in SETTINGS {
        assert!(
            page.contains(&format!("| `{}` |", setting.name)),
            "{}",
            setting.name
        );
    }
}

#[test]
fn the_defaults_of_the_table_are_what_an_empty_environment_gives() {
    let required: BTreeMap<&str, String> = SETTINGS
        .iter()
        .filter(|s| s.default == IfUnset::Required)
        .map(|s| (s.name, format!("t-{}", s.name)))
        .collect();
    let config = Config::from_lookup(|name| required.get(name).cloned()).expect("defaults");
    // A few, through the parsed config (the rest parse by construction: they come from the table).
    assert_eq!(config.otp_ttl_seconds, 300);
    assert_eq!(config.otp_length, 6);
    assert_eq!(config.limits.otp_sends_per_range_per_hour, 20);
    assert_eq!(config.limits.otp_send_budget_shards, 8);
    assert_eq!(config.sms_timeout.as_secs(), 6);
    // Every field of `Limits` is named after its variable, and every limit row has its field.
    let debug = format!("{:?}", config.limits);
    let fields: Vec<String> = debug
        .trim_start_matches("Limits {")
        .trim_end_matches('}')
        .split(',')
        .filter_map(|pair| pair.split(':').next())
        .map(|field| field.trim().to_ascii_uppercase())
        .filter(|field| !field.is_empty())
        .collect();
    let rows: Vec<String> = SETTINGS
        .iter()
        .filter(|s| s.owner == Owner::Limits)
        .map(|s| s.name.to_owned())
        .collect();
    let mut sorted_fields = fields.clone();
    sorted_fields.sort();
    let mut sorted_rows = rows.clone();
    sorted_rows.sort();
    assert_eq!(
        sorted_fields, sorted_rows,
        "Limits' fields and the limit rows"
    );
}

#[test]
fn the_benchmark_raises_every_budget_of_the_limits() {
    // Every count of `Limits` that refuses requests is raised (the waits and windows are not).
    for setting in SETTINGS.iter().filter(|s| s.owner == Owner::Limits) {
        let is_count =
            !setting.name.ends_with("_SECONDS") && setting.name != "OTP_SEND_BUDGET_SHARDS";
        assert_eq!(
            setting.bench == Bench::Raise,
            is_count,
            "{}: a budget or failure count is raised by the benchmark, nothing else",
            setting.name
        );
    }
}

/// The cells of a markdown table row (`| a | b |`), trimmed.
fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_matches('|')
        .split(" | ")
        .map(str::trim)
        .collect()
}

/// The names in backticks in `text`, in order.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// A default as the docs write it, as the template or the table does: `1 hour` is 3600, `30 s`
/// 30, bare `empty`, `none` and `built-in texts` are the empty string; a note in brackets is not
/// part of it.
fn doc_value(text: &str) -> String {
    let text = text.split(" (").next().unwrap_or_default().trim();
    // Bare words, not values in backticks (`none` is a value).
    if matches!(text, "empty" | "none" | "built-in texts") {
        return String::new();
    }
    let text = text.trim_matches('`');
    let mut words = text.split(' ');
    if let (Some(number), Some(unit), None) = (words.next(), words.next(), words.next())
        && let Ok(number) = number.parse::<u64>()
    {
        let scale = match unit.trim_end_matches('s') {
            "" | "second" => 1,
            "minute" => 60,
            "hour" => 3600,
            "day" => 86_400,
            _ => return text.to_owned(),
        };
        return (number * scale).to_string();
    }
    text.to_owned()
}

#[test]
fn the_docs_template_parameter_table_gives_the_template_defaults() {
    let page = std::fs::read_to_string(configuration_page()).expect("docs/configuration.md");
    let section = page
        .split("## Template parameters")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the section");
    let (template, _) = auth_tests::tables::read_template(&template_path()).expect("template");
    let parameters = template["Parameters"].as_mapping().expect("Parameters");
    let default_of = |name: &str| {
        let value = &parameters.get(name)?["Default"];
        Some(match value {
            serde_yaml_ng::Value::String(text) => text.clone(),
            serde_yaml_ng::Value::Number(number) => number.to_string(),
            other => format!("{other:?}"),
        })
    };
    let mut checked = 0;
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let row = cells(line);
        let names = backticked(row[0]);
        let defaults: Vec<String> = row[1].split(", ").map(doc_value).collect();
        assert!(
            defaults.len() == names.len() || defaults.len() == 1,
            "{line}: one default per parameter, or one for all"
        );
        for (i, name) in names.iter().enumerate() {
            let documented = &defaults[if defaults.len() == 1 { 0 } else { i }];
            let deployed = default_of(name).unwrap_or_else(|| panic!("{name}: no such parameter"));
            assert!(
                same_default(documented, &deployed),
                "{name}: the docs say {documented:?}, template.yaml {deployed:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} parameters checked");
}

#[test]
fn the_security_pages_limit_tables_give_the_code_defaults() {
    let page = std::fs::read_to_string(configuration_page().with_file_name("security.md"))
        .expect("docs/security.md");
    let mut checked = 0;
    for line in page.lines().filter(|l| l.starts_with("| ")) {
        let row = cells(line);
        let [.., default, variable] = row.as_slice() else {
            continue;
        };
        let names = backticked(variable);
        let [name] = names.as_slice() else { continue };
        let Some(setting) = setting(name) else {
            continue;
        };
        let IfUnset::Value(expected) = setting.default else {
            continue;
        };
        let documented = doc_value(default.split(';').next().unwrap_or_default());
        assert!(
            same_default(&documented, expected),
            "docs/security.md says {name} is {default}, the code {expected}"
        );
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} rows checked");
}
