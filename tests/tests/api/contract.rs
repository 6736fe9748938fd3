//! `openapi.yaml` against the template and the handlers: the spec names every route the
//! template serves and no other, and declares exactly the methods each function answers. (Every
//! response of the in-process tests is checked against the spec by `TestApp::send`; see
//! `auth_tests::contract`. schemathesis checks the running functions: `scripts/contract`.)

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;

use auth_tests::contract::{check_response, read_spec};
use auth_tests::routes::{template_functions, template_routes, twin};
use auth_tests::tables::template_path;
use auth_tests::{Endpoint, RawRequest, TestApp};
use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

fn spec_paths() -> serde_json::Map<String, Value> {
    read_spec().expect("read openapi.yaml")["paths"]
        .as_object()
        .expect("openapi.yaml has paths")
        .clone()
}

#[test]
fn the_spec_names_every_route_of_the_template_and_no_other() {
    let functions = template_functions(&template_path()).expect("read template.yaml");
    let template: BTreeSet<String> = template_routes(&functions)
        .into_iter()
        .map(|route| route.path)
        .collect();
    // The spec lists the form with the trailing slash and says the other is the same operation;
    // a path without a slash form (`/.well-known/jwks.json`) stands alone.
    let described: BTreeSet<String> = spec_paths()
        .keys()
        .flat_map(|path| {
            let mut forms = vec![path.clone()];
            if path.ends_with('/') {
                forms.push(twin(path));
            }
            forms
        })
        .collect();
    let missing: Vec<_> = template.difference(&described).collect();
    let extra: Vec<_> = described.difference(&template).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "template.yaml routes missing from openapi.yaml: {missing:?}\n\
         openapi.yaml paths template.yaml does not route: {extra:?}"
    );
}

#[tokio::test]
async fn the_spec_declares_exactly_the_methods_each_function_serves() {
    let app = TestApp::new().await;
    let paths = spec_paths();
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut problems = Vec::new();
    for &endpoint in Endpoint::ALL {
        let operations = paths[endpoint.path()].as_object().expect("a path item");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let response = app
                .send(
                    endpoint,
                    RawRequest {
                        method,
                        body: Some("{}"),
                        path_id: Some(&session_id),
                        ..RawRequest::default()
                    },
                )
                .await;
            let declared = operations.contains_key(&method.to_ascii_lowercase());
            if declared == (response.status == 405) {
                problems.push(format!(
                    "{method} {}: declared {declared}, answered {}",
                    endpoint.path(),
                    response.status
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_oracle_refuses_what_breaks_the_spec() {
    let mut no_store = HeaderMap::new();
    no_store.insert("cache-control", "no-store".parse().unwrap());
    let breaks = |headers: &HeaderMap, status: u16, body: Value| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            check_response(Endpoint::Verify, "POST", status, headers, &body)
        }))
        .is_err()
    };
    let valid = json!({"message": "Phone verified.", "registration_token": "t", "expires_in": 600});
    assert!(!breaks(&no_store, 200, valid.clone()));
    assert!(
        breaks(&HeaderMap::new(), 200, valid),
        "a required header missing"
    );
    for (status, body, what) in [
        (
            200,
            json!({"message": "Phone verified.", "expires_in": 600}),
            "a field missing",
        ),
        (
            200,
            json!({"message": "Phone verified.", "registration_token": "t", "expires_in": "600"}),
            "a mistyped field",
        ),
        (
            200,
            json!({"message": "Phone verified.", "registration_token": "t", "expires_in": 600,
                   "extra": 1}),
            "an undeclared field",
        ),
        (401, json!({"error": "x"}), "an undeclared status"),
        (
            400,
            json!({"error": "x", "retry_after": 3}),
            "a field the status does not have",
        ),
    ] {
        assert!(breaks(&no_store, status, body), "{what}");
    }
}
