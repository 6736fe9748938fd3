//! Users of a Cognito user pool moved on their first login (issue 25), against moto's
//! `cognito-idp` emulator: the right password creates the account here under the Cognito `sub`
//! with the password hashed by this service; a wrong password, an unknown user and a number the
//! pool has not verified get the ordinary wrong-password answer and write no account; after the
//! move the pool is no longer asked; a parallel burst asks it no more often than the login
//! limits allow.

use auth_tests::cognito::{PoolUser, pool_with};
use auth_tests::{Endpoint, TestApp, text};
use serde_json::json;

const SARA: &str = "+989120000001";
const SARA_PASSWORD: &str = "Cognito pass 1!";
const UNVERIFIED: &str = "+989120000002";

async fn app_moving_from_a_pool() -> (TestApp, Vec<String>) {
    app_moving_from_a_pool_with(&[]).await
}

async fn app_moving_from_a_pool_with(settings: &[(&str, &str)]) -> (TestApp, Vec<String>) {
    let (pool, subs) = pool_with(&[
        PoolUser {
            phone: SARA,
            password: SARA_PASSWORD,
            verified: true,
            given_name: Some("Sara"),
            email: Some("sara@example.com"),
        },
        PoolUser {
            phone: UNVERIFIED,
            password: SARA_PASSWORD,
            verified: false,
            given_name: None,
            email: None,
        },
    ])
    .await;
    let mut env = vec![
        ("COGNITO_MIGRATION_USER_POOL_ID", pool.user_pool_id.as_str()),
        ("COGNITO_MIGRATION_CLIENT_ID", pool.client_id.as_str()),
    ];
    env.extend_from_slice(settings);
    let t = TestApp::with_env(&env).await;
    (t, subs)
}

#[tokio::test]
async fn a_pool_user_is_moved_at_the_first_right_login_and_keeps_their_id() {
    let (t, subs) = app_moving_from_a_pool().await;

    // Refusals: the ordinary answer, no account written, the failure counted.
    for (phone, password) in [
        (SARA, "not the password"),
        ("+989120000003", SARA_PASSWORD),
        (UNVERIFIED, SARA_PASSWORD),
    ] {
        let refused = t.login_with(phone, password).await;
        assert_eq!(refused.status, 401, "{phone}: {refused:?}");
        assert_eq!(refused.body["error"], "Invalid phone number or password.");
        assert!(t.user(phone).await.is_none(), "{phone}");
    }
    let counted = t
        .scan(&t.tables().attempts)
        .await
        .iter()
        .filter(|item| text(item, "pk").is_some_and(|pk| pk.starts_with("fail#login#")))
        .count();
    assert_eq!(counted, 3, "each refusal counted for its number");

    // The right password, typed in the national form: the account is created with the pool's
    // sub as its id, its profile, and this service's hash.
    let moved = t.login_with("0912 000 0001", SARA_PASSWORD).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let access = moved.body["tokens"]["access"].as_str().unwrap();
    assert_eq!(t.access_claims(access).await.sub, subs[0]);
    let item = t.user(SARA).await.expect("the account");
    assert_eq!(text(&item, "user_id"), Some(subs[0].as_str()));
    assert_eq!(text(&item, "first_name"), Some("Sara"));
    assert_eq!(text(&item, "email"), Some("sara@example.com"));
    let hash = text(&item, "password_hash").unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    let profile = t.authed(Endpoint::Profile, "GET", access, None).await;
    assert_eq!(profile.body["id"], subs[0].as_str(), "{profile:?}");

    // From now on this service answers: a wrong password is refused, the right one works even
    // once the pool would refuse it.
    assert_eq!(t.login_with(SARA, "not the password").await.status, 401);
    auth_tests::cognito::set_password(&t, SARA, "Another pass 2!").await;
    assert_eq!(t.login_with(SARA, SARA_PASSWORD).await.status, 200);
    assert_eq!(t.login_with(SARA, "Another pass 2!").await.status, 401);
    assert_eq!(t.scan(&t.tables().users).await.len(), 1);
}

#[tokio::test]
async fn an_account_moved_then_deleted_here_is_not_brought_back_by_the_pool() {
    let (t, subs) = app_moving_from_a_pool().await;
    let moved = t.login_with(SARA, SARA_PASSWORD).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let access = moved.body["tokens"]["access"].as_str().unwrap().to_owned();
    let deleted = t
        .authed(
            Endpoint::Profile,
            "DELETE",
            &access,
            Some(json!({ "password": SARA_PASSWORD })),
        )
        .await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert!(t.user(SARA).await.is_none());

    // The pool still takes the password, but the deletion stands; the number is free for a
    // new sign-up.
    let again = t.login_with(SARA, SARA_PASSWORD).await;
    assert_eq!(again.status, 401, "{again:?}");
    assert!(t.user(SARA).await.is_none());
    assert!(t.scan(&t.tables().users).await.is_empty());
    let registered = t.registered_user("09120000001", SARA).await;
    assert_ne!(registered.body["user"]["id"], subs[0].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parallel_burst_of_wrong_passwords_asks_the_pool_no_more_than_the_limits_allow() {
    let (t, _) = app_moving_from_a_pool().await;
    let responses =
        futures::future::join_all((0..20).map(|_| t.login_with(SARA, "wrong password"))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|&s| s == 401 || s == 403),
        "{statuses:?}"
    );
    // Only an attempt that got its slot reaches the pool (and is answered 401).
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert!(
        (1..=3).contains(&checked),
        "{checked} passwords were checked"
    );
    // The right password after the burst: the pair is blocked, as for any account.
    assert_eq!(t.login_with(SARA, SARA_PASSWORD).await.status, 403);
    assert!(t.user(SARA).await.is_none());
}

#[tokio::test]
async fn a_number_in_step_up_is_moved_with_the_code_sent_to_it() {
    let (t, subs) = app_moving_from_a_pool_with(&[
        ("ACCOUNT_MAX_FAILURES", "1"),
        ("ACCOUNT_BACKOFF_AFTER_FAILURES", "50"),
    ])
    .await;
    assert_eq!(t.login_with(SARA, "not the password").await.status, 401);

    // The right password alone now earns a code by SMS, not the account.
    let stepped_up = t.login_with(SARA, SARA_PASSWORD).await;
    assert_eq!(stepped_up.status, 401, "{stepped_up:?}");
    assert_eq!(stepped_up.body["code_required"], true);
    assert!(t.user(SARA).await.is_none());
    let code = t.last_code_for(SARA).expect("a login code to the number");
    let with_code = t
        .post(
            Endpoint::Login,
            json!({
                "phone": SARA,
                "password": SARA_PASSWORD,
                "code": code,
                "verification_id": stepped_up.body["verification_id"],
            }),
        )
        .await;
    assert_eq!(with_code.status, 200, "{with_code:?}");
    let item = t.user(SARA).await.expect("moved");
    assert_eq!(text(&item, "user_id"), Some(subs[0].as_str()));
}
