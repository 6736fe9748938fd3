//! `openapi.yaml` as the oracle of every in-process test: `TestApp::send` hands each response to
//! `check_response`, which fails the test when the status is not one the operation declares, a
//! required header is missing or breaks its schema, or the body does not match the declared
//! schema (JSON Schema 2020-12, formats checked). So the whole integration suite, with its
//! outages, lock-outs and races, checks the spec's responses; schemathesis (`scripts/contract`)
//! checks the spec's requests against the running functions.

use std::collections::HashMap;
use std::sync::LazyLock;

use jsonschema::Validator;
use lambda_http::http::HeaderMap;
use serde_json::Value;

use crate::Endpoint;

type Error = Box<dyn std::error::Error + Send + Sync>;

pub fn spec_path() -> std::path::PathBuf {
    crate::routes::workspace_root().join("openapi.yaml")
}

/// The spec as JSON, with every local `$ref` replaced by what it points to.
pub fn read_spec() -> Result<Value, Error> {
    let text = std::fs::read_to_string(spec_path())?;
    let document: Value = serde_yaml_ng::from_str(&text)?;
    inline_refs(&document, &document, 0)
}

fn inline_refs(value: &Value, document: &Value, depth: usize) -> Result<Value, Error> {
    if depth > 32 {
        return Err("openapi.yaml: $ref nesting deeper than 32 (a cycle?)".into());
    }
    Ok(match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let pointer = reference
                    .strip_prefix('#')
                    .ok_or_else(|| format!("openapi.yaml: only local $refs, not {reference}"))?;
                let target = document
                    .pointer(pointer)
                    .ok_or_else(|| format!("openapi.yaml: {reference} points nowhere"))?;
                return inline_refs(target, document, depth + 1);
            }
            let mut inlined = serde_json::Map::new();
            for (key, item) in map {
                inlined.insert(key.clone(), inline_refs(item, document, depth)?);
            }
            Value::Object(inlined)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| inline_refs(item, document, depth))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

struct HeaderRule {
    required: bool,
    schema: Validator,
    integer: bool,
}

struct DeclaredResponse {
    /// None: the response has no body.
    body: Option<Validator>,
    headers: Vec<(String, HeaderRule)>,
}

/// (method, path) -> status -> what the spec declares.
type Operations = HashMap<(String, String), HashMap<u16, DeclaredResponse>>;

fn validator(schema: &Value) -> Result<Validator, Error> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|error| format!("openapi.yaml: a schema does not compile: {error}").into())
}

fn declared_response(response: &Value) -> Result<DeclaredResponse, Error> {
    let body = match response.pointer("/content/application~1json/schema") {
        Some(schema) => Some(validator(schema)?),
        None => None,
    };
    let mut headers = Vec::new();
    for (name, header) in response
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let schema = header.get("schema").cloned().unwrap_or(Value::Bool(true));
        headers.push((
            name.to_ascii_lowercase(),
            HeaderRule {
                required: header.get("required") == Some(&Value::Bool(true)),
                integer: schema.get("type") == Some(&Value::from("integer")),
                schema: validator(&schema)?,
            },
        ));
    }
    Ok(DeclaredResponse { body, headers })
}

fn operations() -> Result<Operations, Error> {
    let spec = read_spec()?;
    let paths = spec
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("openapi.yaml has no paths")?;
    let mut operations = Operations::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let Some(responses) = operation.get("responses").and_then(Value::as_object) else {
                continue;
            };
            let mut declared = HashMap::new();
            for (status, response) in responses {
                let status: u16 = status
                    .parse()
                    .map_err(|_| format!("openapi.yaml: {method} {path}: status {status}"))?;
                declared.insert(status, declared_response(response)?);
            }
            operations.insert((method.to_ascii_uppercase(), path.clone()), declared);
        }
    }
    Ok(operations)
}

static OPERATIONS: LazyLock<Operations> =
    LazyLock::new(|| operations().unwrap_or_else(|error| panic!("{error}")));

/// Panics, naming the operation, when a response breaks the spec. A method the path does not
/// declare must be answered as the path's operations declare their 405. A 500 is not checked:
/// the spec declares none, and the only tests that provoke one (a misconfigured app) assert it.
pub fn check_response(
    endpoint: Endpoint,
    method: &str,
    status: u16,
    headers: &HeaderMap,
    body: &Value,
) {
    if status == 500 {
        return;
    }
    let path = endpoint.path();
    let operation = OPERATIONS
        .get(&(method.to_owned(), path.to_owned()))
        .or_else(|| {
            assert_eq!(status, 405, "{method} {path} is not in openapi.yaml");
            OPERATIONS
                .iter()
                .find(|((_, declared), _)| declared == path)
                .map(|(_, operation)| operation)
        })
        .unwrap_or_else(|| panic!("{path} is not in openapi.yaml"));
    let label = format!("{method} {path} answered {status}");
    let declared = operation
        .get(&status)
        .unwrap_or_else(|| panic!("{label}, a status openapi.yaml does not declare: {body}"));
    for (name, rule) in &declared.headers {
        let Some(value) = headers.get(name.as_str()) else {
            assert!(!rule.required, "{label} without the required header {name}");
            continue;
        };
        let text = value.to_str().unwrap_or_default();
        let value = match (rule.integer, text.parse::<i64>()) {
            (true, Ok(number)) => Value::from(number),
            _ => Value::from(text),
        };
        if let Err(error) = rule.schema.validate(&value) {
            panic!("{label} with header {name}: {text:?} breaks openapi.yaml: {error}");
        }
    }
    match &declared.body {
        Some(schema) => {
            if let Err(error) = schema.validate(body) {
                panic!(
                    "{label} with a body that breaks openapi.yaml at {}: {error}\n{body}",
                    error.instance_path()
                );
            }
        }
        None => assert!(
            body.is_null(),
            "{label} with a body; openapi.yaml declares none: {body}"
        ),
    }
}
