//! One route table: `template.yaml` is the source (it is what API Gateway serves), and every
//! other list of routes or functions must agree with it: the `cargo lambda watch` router in the
//! root `Cargo.toml`, the function directories under `functions/`, and `Endpoint` (the tests'
//! list, which the benchmark also runs its flow and cold starts from). No DynamoDB needed.
//!
//! The handlers of `shared/src/handlers/mod.rs` are tied to an `Endpoint` by the match in
//! `TestApp::send`, so checking each `Endpoint` against the template covers them as well.

use std::collections::BTreeSet;

use auth_tests::Endpoint;
use auth_tests::routes::{
    Route, cargo_router, function_dirs, template_functions, template_routes, twin, workspace_root,
};
use auth_tests::tables::template_path;

fn lines<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    items.into_iter().map(|item| item.to_string()).collect()
}

#[test]
fn every_list_of_routes_and_functions_agrees_with_the_template() {
    let root = workspace_root();
    let functions = template_functions(&template_path()).expect("read template.yaml");
    let routes = template_routes(&functions);
    let binaries: BTreeSet<String> = functions.iter().map(|f| f.binary.clone()).collect();
    let mut problems = Vec::new();

    // Every path answers with and without the trailing slash (docs/api.md, "Requests and
    // responses"); a path that names a file (`/.well-known/jwks.json`) has no slash form.
    for route in &routes {
        let other = Route::new(&twin(&route.path), &route.function);
        if route.path.ends_with('/') && !routes.contains(&other) {
            problems.push(format!(
                "template.yaml: {route} has no twin {other} without the trailing slash"
            ));
        }
    }
    let mut seen_paths = BTreeSet::new();
    for route in &routes {
        if !seen_paths.insert(&route.path) {
            problems.push(format!(
                "template.yaml: {} is served by more than one function",
                route.path
            ));
        }
    }

    let router = cargo_router(&root.join("Cargo.toml")).expect("read Cargo.toml");
    for route in routes.difference(&router) {
        problems.push(format!(
            "Cargo.toml [workspace.metadata.lambda.watch.router] lacks the template route {route}"
        ));
    }
    for route in router.difference(&routes) {
        problems.push(format!(
            "Cargo.toml [workspace.metadata.lambda.watch.router] has {route}, which template.yaml does not"
        ));
    }

    let dirs = function_dirs(&root.join("functions")).expect("read functions/");
    for name in dirs.difference(&binaries) {
        problems.push(format!(
            "functions/{name} has no function in template.yaml (Metadata.BuildProperties.Binary)"
        ));
    }
    for name in binaries.difference(&dirs) {
        problems.push(format!(
            "template.yaml builds the binary {name}, but there is no functions/{name}"
        ));
    }

    // `Endpoint::function` is also the benchmark's function of each endpoint.
    for endpoint in Endpoint::ALL {
        let route = Route::new(endpoint.path(), endpoint.function());
        if !routes.contains(&route) {
            problems.push(format!(
                "Endpoint::{endpoint:?} is {route}, which is not a route of template.yaml"
            ));
        }
    }
    let covered: BTreeSet<&str> = Endpoint::ALL.iter().map(|e| e.function()).collect();
    for function in &functions {
        let name = &function.binary;
        // The functions no route serves: the events and attempts tables' streams invoke them.
        let streams = [auth_tests::publisher::PUBLISHER, auth_tests::BREAKER];
        if function.paths.is_empty() && streams.contains(&name.as_str()) {
            continue;
        }
        if !covered.contains(name.as_str()) {
            problems.push(format!(
                "template.yaml's function {name} has no Endpoint (tests/src/endpoint.rs)"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "the route lists disagree with template.yaml:\n  {}\n\ntemplate.yaml's routes:\n  {}",
        problems.join("\n  "),
        lines(&routes).join("\n  ")
    );
}

/// The API as SAM turns `template.yaml` into it (aws-sam-translator, the library `sam deploy`
/// runs, from the venv `scripts/test` installs): each path and the `security` of each of its
/// methods (`[]` for none).
fn translated_security() -> BTreeSet<(String, String)> {
    const TRANSLATE: &str = r#"
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
template = yaml_parse(open(sys.argv[1]).read())
# Only the API is read; the code's location does not matter to it.
template["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
class NoManagedPolicies:
    def load(self):
        return {}
resources = transform(template, {}, NoManagedPolicies())["Resources"]
paths = set()
for resource in resources.values():
    if resource["Type"] == "AWS::ApiGatewayV2::Api":
        for path, methods in resource["Properties"]["Body"]["paths"].items():
            for method in methods.values():
                paths.add((path, json.dumps(method.get("security", []))))
    if resource["Type"] == "AWS::ApiGatewayV2::Route":
        auth = resource["Properties"].get("AuthorizationType", "NONE")
        paths.add((resource["Properties"]["RouteKey"], json.dumps(auth)))
print(json.dumps(sorted(paths)))
"#;
    let python = workspace_root().join(".local/venv/bin/python3");
    let output = std::process::Command::new(&python)
        .args(["-c", TRANSLATE])
        .arg(template_path())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test installs it)", python.display()));
    assert!(
        output.status.success(),
        "SAM's translator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the translator's answer")
}

#[test]
fn every_admin_route_and_only_those_take_iam_authorization() {
    let routes = translated_security();
    let iam = r#"[{"AWS_IAM": []}]"#;
    let mut admin = BTreeSet::new();
    for (path, security) in &routes {
        if path.starts_with("/admin/") || path == "/admin" {
            assert_eq!(security, iam, "{path} must take AWS_IAM");
            admin.insert(path.as_str());
        } else if path.contains("/admin") {
            panic!("{path}: an admin path outside the API's body ({security})");
        } else if path == "GET /hello" {
            // The example route behind the JWT authorizer (its own ApiGatewayV2 resources).
            assert_eq!(security, r#""JWT""#);
        } else {
            assert_eq!(security, "[]", "{path} is public and must stay so");
        }
    }
    let endpoints: BTreeSet<&str> = Endpoint::ALL
        .iter()
        .map(|endpoint| endpoint.path())
        .filter(|path| path.starts_with("/admin/"))
        .collect();
    assert_eq!(admin, endpoints, "every admin endpoint is in the API");
    // Every public path is still there, in both slash forms.
    for endpoint in Endpoint::ALL {
        let path = endpoint.path();
        if path.starts_with("/admin/") || path == "/hello" {
            continue;
        }
        assert!(
            routes.iter().any(|(served, _)| served == path),
            "{path} is no longer served"
        );
    }
}
