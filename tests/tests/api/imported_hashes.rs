//! Logins against password hashes imported from other systems (issue 25, first slice): each
//! scheme verifies its password and, at the first right login, is replaced by this service's
//! argon2id in the login's own transaction, without ending the account's other sessions. The
//! hashes are made by other tools (Django's own `make_password` with each of its hashers; Python's
//! `hashlib` in Django's format; argon2-cffi's documented example), written into the users table
//! as an import would.

use auth_tests::fixtures::python_fixture;
use auth_tests::{PASSWORD, PHONE, PHONE_E164, TestApp, text};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;

/// `PASSWORD` under Django's `pbkdf2_sha256` and `pbkdf2_sha1` (Python's `hashlib.pbkdf2_hmac`).
const DJANGO_PBKDF2_SHA256: &str =
    "pbkdf2_sha256$870000$seasalt0123456789abc$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No=";
const DJANGO_PBKDF2_SHA1: &str = "pbkdf2_sha1$260000$pepper$tVTmjnPElokEjxGr4QisjJGOHQ8=";
/// argon2-cffi's documented example, for `correct horse battery staple`, with Django's prefix.
const DJANGO_ARGON2: &str = "argon2$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg";

async fn store_hash(t: &TestApp, hash: &str) {
    t.dynamodb
        .update_item()
        .table_name(&t.tables().users)
        .key("phone", AttributeValue::S(PHONE_E164.to_owned()))
        .update_expression("SET password_hash = :hash")
        .expression_attribute_values(":hash", AttributeValue::S(hash.to_owned()))
        .send()
        .await
        .expect("write the imported hash");
}

async fn stored_hash(t: &TestApp) -> String {
    let user = t.user(PHONE_E164).await.expect("the account");
    text(&user, "password_hash").unwrap().to_owned()
}

#[tokio::test]
async fn an_imported_hash_verifies_once_and_is_replaced_by_argon2id() {
    for (imported, password) in [
        (DJANGO_PBKDF2_SHA256, PASSWORD),
        (DJANGO_PBKDF2_SHA1, PASSWORD),
        (DJANGO_ARGON2, "correct horse battery staple"),
    ] {
        let t = TestApp::new().await;
        let registered = t.registered_user(PHONE, PHONE_E164).await;
        let access = registered.body["tokens"]["access"]
            .as_str()
            .unwrap()
            .to_owned();
        store_hash(&t, imported).await;

        // A wrong password: refused, and the imported hash stays.
        let wrong = t.login_with(PHONE, "not the password at all").await;
        assert_eq!(wrong.status, 401, "{imported}: {wrong:?}");
        assert_eq!(stored_hash(&t).await, imported);

        let right = t.login_with(PHONE, password).await;
        assert_eq!(right.status, 200, "{imported}: {right:?}");
        let upgraded = stored_hash(&t).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{upgraded}"
        );
        // The upgrade is no change of password: the other session lives on.
        assert_eq!(t.profile_status(&access).await, 200);
        // From now on the new hash answers.
        assert_eq!(t.login_with(PHONE, password).await.status, 200);
        assert_eq!(
            t.login_with(PHONE, "not the password at all").await.status,
            401
        );
        assert_eq!(stored_hash(&t).await, upgraded);
    }
}

#[tokio::test]
async fn a_hash_of_a_scheme_this_service_does_not_verify_matches_nothing() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    for unusable in [
        "md5$salt$0123456789abcdef0123456789abcdef",
        "!unusable-django-password",
        "pbkdf2_sha256$99999999$salt$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No=",
    ] {
        store_hash(&t, unusable).await;
        let refused = t.login_with(PHONE, PASSWORD).await;
        assert_eq!(refused.status, 401, "{unusable}: {refused:?}");
        assert_eq!(stored_hash(&t).await, unusable);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parallel_burst_against_an_imported_hash_checks_no_more_than_the_limits_allow() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    store_hash(&t, DJANGO_PBKDF2_SHA256).await;

    let responses =
        futures::future::join_all((0..20).map(|_| t.login_with(PHONE, "wrong password"))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|&s| s == 401 || s == 403),
        "{statuses:?}"
    );
    // Only an attempt that got its slot reaches PBKDF2 (and is answered 401).
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert!((1..=3).contains(&checked), "{checked} hashes were checked");
    let failures: u64 = t
        .scan(&t.tables().attempts)
        .await
        .iter()
        .filter(|item| text(item, "pk").is_some_and(|pk| pk.starts_with("fail#login#")))
        .filter_map(|item| auth_tests::num(item, "failures"))
        .sum();
    assert_eq!(failures, checked as u64);
    assert_eq!(stored_hash(&t).await, DJANGO_PBKDF2_SHA256);
}

/// `password` hashed by Django itself with each of its hashers: algorithm -> encoded hash.
async fn django_hashes(password: &str) -> serde_json::Map<String, serde_json::Value> {
    let made = python_fixture("django_hashes.py", &[], &json!({ "password": password })).await;
    made.as_object().expect("an object").clone()
}

#[tokio::test]
async fn hashes_made_by_django_verify_with_their_password_and_are_upgraded() {
    let made = django_hashes(PASSWORD).await;
    let mut verified = Vec::new();
    for (algorithm, encoded) in &made {
        let encoded = encoded.as_str().unwrap();
        let t = TestApp::new().await;
        t.registered_user(PHONE, PHONE_E164).await;
        store_hash(&t, encoded).await;
        assert_eq!(
            t.login_with(PHONE, "not the password at all").await.status,
            401,
            "{algorithm}"
        );
        let right = t.login_with(PHONE, PASSWORD).await;
        match algorithm.as_str() {
            // Schemes this service does not verify match nothing (the importer refuses them).
            "scrypt" | "md5" => {
                assert_eq!(right.status, 401, "{algorithm}: {right:?}");
                assert_eq!(stored_hash(&t).await, encoded);
            }
            _ => {
                assert_eq!(right.status, 200, "{algorithm}: {encoded}: {right:?}");
                assert!(
                    stored_hash(&t).await.starts_with("$argon2id$"),
                    "{algorithm}"
                );
                verified.push(algorithm.clone());
            }
        }
    }
    verified.sort();
    assert_eq!(
        verified,
        [
            "argon2",
            "bcrypt",
            "bcrypt_sha256",
            "pbkdf2_sha1",
            "pbkdf2_sha256"
        ]
    );
}
