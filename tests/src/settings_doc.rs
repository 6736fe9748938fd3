//! The settings table (`auth_shared::settings::SETTINGS`) against `template.yaml` and the docs:
//! which template parameter sets each variable and with what default, and the tables of
//! `docs/configuration.md` generated from it (`scripts/settings-doc`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use auth_shared::settings::{IfUnset, Owner, SETTINGS, Setting};
use serde_yaml_ng::Value;

use crate::tables::read_template;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where the template deliberately deploys another value than the code's default, and why.
pub const TEMPLATE_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "JWT_ALGORITHM",
    "RS256",
    "new stacks sign in KMS; unset means EdDSA, what every deployment signed with before the choice",
)];

/// A variable the template sets from a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSetting {
    pub parameter: String,
    /// The parameter's `Default`, as text (`None`: it has none, so a deploy must give it).
    pub default: Option<String>,
}

/// The variables the template's functions get (`Globals` and every function), each with the
/// parameter it comes from (`!Ref P`, also inside an `!If`); `None` when no parameter sets it
/// (a table's or a secret's `!Ref`).
pub fn template_variables(
    template: &Path,
) -> Result<BTreeMap<String, Option<TemplateSetting>>, Error> {
    let (template, resources) = read_template(template)?;
    let parameters = template
        .get("Parameters")
        .and_then(Value::as_mapping)
        .ok_or("template has no Parameters")?;
    let defaults: BTreeMap<String, Option<String>> = parameters
        .iter()
        .filter_map(|(name, definition)| {
            let default = definition.get("Default").map(|value| match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                other => format!("{other:?}"),
            });
            Some((name.as_str()?.to_owned(), default))
        })
        .collect();
    let environment = |holder: &Value| {
        holder
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default()
    };
    let mut holders = vec![
        template
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .cloned()
            .unwrap_or(Value::Null),
    ];
    for (_, resource) in &resources {
        if resource.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function") {
            holders.push(resource.get("Properties").cloned().unwrap_or(Value::Null));
        }
    }
    let mut variables = BTreeMap::new();
    for holder in &holders {
        for (name, value) in environment(holder) {
            let name = name.as_str().ok_or("a variable name is not a string")?;
            let mut refs = Vec::new();
            parameter_refs(&value, &defaults, &mut refs);
            let setting = refs.first().map(|parameter| TemplateSetting {
                parameter: parameter.clone(),
                default: defaults.get(parameter).cloned().flatten(),
            });
            let previous = variables.insert(name.to_owned(), setting.clone());
            if previous.is_some_and(|previous| previous != setting) {
                return Err(format!("{name} is set from different parameters").into());
            }
        }
    }
    Ok(variables)
}

/// The parameters `value` refers to with `!Ref`, in order.
fn parameter_refs(
    value: &Value,
    parameters: &BTreeMap<String, Option<String>>,
    found: &mut Vec<String>,
) {
    match value {
        Value::Tagged(tagged) => {
            if tagged.tag == "Ref"
                && let Some(name) = tagged.value.as_str()
                && parameters.contains_key(name)
            {
                found.push(name.to_owned());
            }
            parameter_refs(&tagged.value, parameters, found);
        }
        Value::Sequence(items) => {
            for item in items {
                parameter_refs(item, parameters, found);
            }
        }
        Value::Mapping(entries) => {
            for (_, item) in entries {
                parameter_refs(item, parameters, found);
            }
        }
        _ => {}
    }
}

/// What the template's parameter default must be for `setting`: its default value, or empty
/// (which the functions read as unset) when the code works one out.
pub fn expected_template_default(setting: &Setting) -> Option<&'static str> {
    match setting.default {
        IfUnset::Value(value) => Some(
            TEMPLATE_EXCEPTIONS
                .iter()
                .find(|(name, _, _)| *name == setting.name)
                .map_or(value, |(_, deployed, _)| deployed),
        ),
        IfUnset::Nothing | IfUnset::Computed(_) => Some(""),
        IfUnset::Required | IfUnset::Refused => None,
    }
}

/// Whether two defaults are the same value (`0.5` and `0.50`, `300` and `300`).
pub fn same_default(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if (x - y).abs() < 1e-9)
}

pub fn configuration_page() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md")
}

pub const BEGIN: &str = "<!-- BEGIN settings tables: generated from shared/src/settings.rs by scripts/settings-doc; do not edit -->";
pub const END: &str = "<!-- END settings tables -->";

/// The generated part of the page between `BEGIN` and `END` (exclusive), as it is.
pub fn generated_part(page: &str) -> Option<&str> {
    let start = page.find(BEGIN)? + BEGIN.len();
    let end = page[start..].find(END)? + start;
    Some(&page[start..end])
}

/// The page with its generated part replaced by `part`.
pub fn with_generated_part(page: &str, part: &str) -> Option<String> {
    let old = generated_part(page)?;
    let start = page.find(BEGIN)? + BEGIN.len();
    Some(format!(
        "{}{}{}",
        &page[..start],
        part,
        &page[start + old.len()..]
    ))
}

/// "3600 (1 hour)" for a number of seconds.
fn with_duration(name: &str, value: &str) -> String {
    let Some(seconds) = value
        .parse::<u64>()
        .ok()
        .filter(|_| name.ends_with("_SECONDS"))
    else {
        return value.to_owned();
    };
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let human = match seconds {
        0 => return value.to_owned(),
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3600 == 0 => plural(s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => plural(s / 60, "minute"),
        _ => return value.to_owned(),
    };
    format!("{value} ({human})")
}

fn default_cell(setting: &Setting, template: Option<&TemplateSetting>) -> String {
    let mut cell = match setting.default {
        IfUnset::Required => "required".to_owned(),
        IfUnset::Nothing => "unset".to_owned(),
        IfUnset::Refused => "refused".to_owned(),
        IfUnset::Computed(how) => format!("unset: {how}"),
        IfUnset::Value(value) if value.parse::<f64>().is_ok() => with_duration(setting.name, value),
        IfUnset::Value(value) => format!("`{value}`"),
    };
    if let (IfUnset::Value(value), Some(deployed)) =
        (setting.default, template.and_then(|t| t.default.as_deref()))
        && !same_default(value, deployed)
    {
        cell.push_str(&format!(" (template: `{deployed}`)"));
    }
    cell
}

/// The tables of every setting, one per module that reads them.
pub fn render(template: &Path) -> Result<String, Error> {
    let variables = template_variables(template)?;
    let mut out = String::from("\n");
    for owner in Owner::ALL {
        let rows: Vec<&Setting> = SETTINGS.iter().filter(|s| s.owner == owner).collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n### {}\n\nRead by `{}`.\n\n| variable | default | template parameter | meaning |\n|---|---|---|---|\n",
            owner.title(),
            owner.module()
        ));
        for setting in rows {
            let template = variables.get(setting.name).cloned().flatten();
            let parameter = template
                .as_ref()
                .map(|t| format!("`{}`", t.parameter))
                .unwrap_or_default();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                setting.name,
                default_cell(setting, template.as_ref()),
                parameter,
                setting.meaning
            ));
        }
    }
    out.push('\n');
    Ok(out)
}
