//! `scripts/admin` against a stand-in for API Gateway's IAM authorization (`IamGateway`): every
//! command, signed by the script's botocore and checked by the AWS SDK's own signer, changes
//! what it says in DynamoDB Local; a wrong key is refused as API Gateway refuses it.

use std::process::Output;

use auth_tests::iam_gateway::{IamGateway, OPERATOR_KEY_ID, OPERATOR_SECRET, REGION};
use auth_tests::routes::workspace_root;
use auth_tests::{Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp};
use serde_json::{Value, json};

/// Runs `scripts/admin ARGS` against `gateway` with `secret` as the operator's secret key (the
/// AWS chain reads only the environment: no profile, no instance role).
async fn admin_with(gateway: &IamGateway, secret: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(workspace_root().join("scripts/admin"))
        .args(["--region", REGION])
        .args(args)
        .env("PHONE_AUTH_API_URL", &gateway.base_url)
        .env("AWS_ACCESS_KEY_ID", OPERATOR_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .expect("scripts/admin runs")
}

/// The JSON `scripts/admin ARGS` prints, after checking it succeeded.
async fn admin(gateway: &IamGateway, args: &[&str]) -> Value {
    let output = admin_with(gateway, OPERATOR_SECRET, args).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scripts/admin {args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    if stdout.trim() == "done" {
        return Value::Null;
    }
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

async fn login_status(t: &TestApp) -> u16 {
    t.post(
        Endpoint::Login,
        json!({ "phone": PHONE, "password": PASSWORD }),
    )
    .await
    .status
}

#[tokio::test]
async fn every_command_signs_its_request_and_does_what_it_says() {
    let gateway = IamGateway::start().await;
    let t = &gateway.app;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let id = user_id.as_str();

    let found = admin(&gateway, &["find", PHONE]).await;
    assert_eq!(found["users"][0]["id"], id);
    // A space is signed as API Gateway checks it (%20).
    let spaced = admin(&gateway, &["find", "0910 123 4567"]).await;
    assert_eq!(spaced["users"][0]["id"], id);
    let by_id = admin(&gateway, &["find", id]).await;
    assert_eq!(by_id["users"][0]["phone"], PHONE_E164);
    let shown = admin(&gateway, &["show", id]).await;
    assert_eq!(shown["live_sessions"], 1);

    let claims = admin(&gateway, &["claims", id, r#"{"roles": ["support"]}"#]).await;
    assert_eq!(claims, json!({ "app_claims": { "roles": ["support"] } }));
    assert_eq!(admin(&gateway, &["claims", id]).await, claims);

    let disabled = admin(&gateway, &["disable", id]).await;
    assert_eq!(disabled["disabled"], true);
    assert_eq!(login_status(t).await, 403);
    let enabled = admin(&gateway, &["enable", id]).await;
    assert_eq!(enabled["disabled"], false);
    assert_eq!(login_status(t).await, 200);

    let sessions = admin(&gateway, &["sessions", id]).await;
    let listed = sessions["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{sessions}");
    let session_id = listed[0]["id"].as_str().unwrap();
    assert_eq!(
        admin(&gateway, &["end-session", id, session_id]).await,
        Value::Null
    );
    assert_eq!(
        admin(&gateway, &["sessions", id]).await,
        json!({ "sessions": [] })
    );
    assert_eq!(login_status(t).await, 200);
    assert_eq!(admin(&gateway, &["sign-out", id]).await, Value::Null);
    assert_eq!(admin(&gateway, &["show", id]).await["live_sessions"], 0);

    // Ids are UUIDs, never a path.
    let path = admin_with(&gateway, OPERATOR_SECRET, &["end-session", id, "../../x"]).await;
    assert!(!path.status.success());
    assert!(String::from_utf8_lossy(&path.stderr).contains("is no session id"));
    // A delete needs --yes.
    let unconfirmed = admin_with(&gateway, OPERATOR_SECRET, &["delete", id]).await;
    assert!(!unconfirmed.status.success());
    assert!(t.user(PHONE_E164).await.is_some());
    assert_eq!(admin(&gateway, &["delete", id, "--yes"]).await, Value::Null);
    assert!(t.user(PHONE_E164).await.is_none());
    let gone = admin(&gateway, &["find", PHONE]).await;
    assert_eq!(gone, json!({ "users": [] }));
}

#[tokio::test]
async fn a_request_signed_with_another_key_is_refused_before_any_function() {
    let gateway = IamGateway::start().await;
    let t = &gateway.app;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let wrong = "not/the/operator/secret/key/at/all/000000";
    let refused = admin_with(&gateway, wrong, &["disable", &id]).await;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(r#"answered 403: {"message":"Forbidden"}"#),
        "{stderr}"
    );
    assert!(!t.user(PHONE_E164).await.unwrap().contains_key("disabled"));
    // A refusal of the API itself is passed on with its body, and exits 1.
    let unknown = admin_with(
        &gateway,
        OPERATOR_SECRET,
        &["show", "00000000-0000-4000-8000-000000000000"],
    )
    .await;
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("answered 404"), "{stderr}");
}
