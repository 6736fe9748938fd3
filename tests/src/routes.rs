//! The routes as each place lists them: `template.yaml` (the source: what API Gateway serves),
//! the `cargo lambda watch` router in the root `Cargo.toml`, and the function directories under
//! `functions/`. Read by the route-table test and the benchmark.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A path and the Lambda function (binary) that serves it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub path: String,
    pub function: String,
}

impl Route {
    pub fn new(path: &str, function: &str) -> Self {
        Self {
            path: path.to_owned(),
            function: function.to_owned(),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.path, self.function)
    }
}

/// One `AWS::Serverless::Function` of the template.
#[derive(Debug, Clone)]
pub struct TemplateFunction {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the binary, and the directory under `functions/`.
    pub binary: String,
    /// The `Path` of each of its `HttpApi` events, in the template's order, then those of the
    /// `AWS::ApiGatewayV2::Route` resources whose integration calls it.
    pub paths: Vec<String>,
    /// Its `Condition`, if the function exists only under one.
    pub condition: Option<String>,
}

/// The other slash form of a path: `/a/b/` <-> `/a/b`.
pub fn twin(path: &str) -> String {
    match path.strip_suffix('/') {
        Some(without) => without.to_owned(),
        None => format!("{path}/"),
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `AWS::Serverless::Function` of the template, in the template's order.
pub fn template_functions(template: &Path) -> Result<Vec<TemplateFunction>, Error> {
    let (_, resources) = crate::tables::read_template(template)?;
    let mut functions = Vec::new();
    for (logical_id, resource) in &resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let logical_id = logical_id
            .as_str()
            .ok_or("a resource name is not a string")?;
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{logical_id} has no Metadata.BuildProperties.Binary"))?;
        let events = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten();
        let mut paths = Vec::new();
        for (event, definition) in events {
            if definition.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let path = definition
                .get("Properties")
                .and_then(|p| p.get("Path"))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{logical_id}'s event {event:?} has no Path"))?;
            paths.push(path.to_owned());
        }
        paths.extend(api_gateway_routes(&resources, logical_id)?);
        functions.push(TemplateFunction {
            logical_id: logical_id.to_owned(),
            binary: binary.to_owned(),
            paths,
            condition: resource
                .get("Condition")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    Ok(functions)
}

/// The argument of `value` if it is the short-form intrinsic `!{name}`.
fn tagged<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == name => Some(&tagged.value),
        _ => None,
    }
}

/// The paths of the `AWS::ApiGatewayV2::Route` resources (`RouteKey: GET /path`) whose
/// `Target` (`!Sub integrations/${Integration}`) is an `AWS::ApiGatewayV2::Integration` calling
/// `function` (`IntegrationUri: !GetAtt Function.Arn`): routes written beside SAM's events, as
/// the example route behind the JWT authorizer is.
fn api_gateway_routes(
    resources: &serde_yaml_ng::Mapping,
    function: &str,
) -> Result<Vec<String>, Error> {
    let mut paths = Vec::new();
    for (id, route) in resources {
        if route.get("Type").and_then(Value::as_str) != Some("AWS::ApiGatewayV2::Route") {
            continue;
        }
        let properties = route.get("Properties");
        let key = properties
            .and_then(|p| p.get("RouteKey"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("route {id:?} has no RouteKey"))?;
        let path = key
            .split_once(' ')
            .map(|(_, path)| path)
            .ok_or_else(|| format!("route {id:?}'s RouteKey {key:?} is not 'METHOD /path'"))?;
        let integration = properties
            .and_then(|p| p.get("Target"))
            .and_then(|target| tagged(target, "Sub"))
            .and_then(Value::as_str)
            .and_then(|target| target.strip_prefix("integrations/${"))
            .and_then(|target| target.strip_suffix('}'))
            .ok_or_else(|| format!("route {id:?}'s Target is not !Sub integrations/${{...}}"))?;
        let uri = resources
            .get(integration)
            .and_then(|i| i.get("Properties"))
            .and_then(|p| p.get("IntegrationUri"))
            .and_then(|uri| tagged(uri, "GetAtt"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("integration {integration} has no IntegrationUri !GetAtt"))?;
        if uri == format!("{function}.Arn") {
            paths.push(path.to_owned());
        }
    }
    Ok(paths)
}

/// Every route of the template: each `HttpApi` event's path and its function's binary.
pub fn template_routes(functions: &[TemplateFunction]) -> BTreeSet<Route> {
    functions
        .iter()
        .flat_map(|function| {
            function
                .paths
                .iter()
                .map(|path| Route::new(path, &function.binary))
        })
        .collect()
}

/// `[workspace.metadata.lambda.watch.router]` of the root `Cargo.toml`: a path to a function
/// name, or to a table with a `function` key (cargo-lambda accepts both).
pub fn cargo_router(cargo_toml: &Path) -> Result<BTreeSet<Route>, Error> {
    let manifest: toml::Table = std::fs::read_to_string(cargo_toml)?.parse()?;
    let router = ["workspace", "metadata", "lambda", "watch", "router"]
        .iter()
        .try_fold(&manifest, |table, key| {
            table.get(*key).and_then(toml::Value::as_table)
        })
        .ok_or("Cargo.toml has no [workspace.metadata.lambda.watch.router]")?;
    router
        .iter()
        .map(|(path, target)| {
            let function = match target {
                toml::Value::String(function) => Some(function.as_str()),
                toml::Value::Table(table) => table.get("function").and_then(toml::Value::as_str),
                _ => None,
            }
            .ok_or_else(|| format!("the router's {path:?} names no function"))?;
            Ok(Route::new(path, function))
        })
        .collect()
}

/// The names of the directories under `functions/`.
pub fn function_dirs(functions: &Path) -> Result<BTreeSet<String>, Error> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(functions)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let name = entry.file_name();
            names.insert(
                name.to_str()
                    .ok_or("a function directory name is not UTF-8")?
                    .to_owned(),
            );
        }
    }
    Ok(names)
}
