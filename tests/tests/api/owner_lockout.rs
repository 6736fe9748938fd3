//! Rules combined against an owner (issue 20): strangers' failures must not keep the owner of an
//! account out of it, whichever way the owner proved the number, and a live session's own
//! password checks are not held by the login back-off.

use auth_tests::{CLIENT_IP, Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse, num};
use futures::future::join_all;
use serde_json::{Value, json};

/// The back-off after three failures, so that a few strangers' guesses start it.
const QUICK_BACKOFF: &[(&str, &str)] = &[("ACCOUNT_BACKOFF_AFTER_FAILURES", "3")];

async fn login_from(t: &TestApp, password: &str, ip: &str) -> TestResponse {
    t.post_from(
        Endpoint::Login,
        json!({ "phone": PHONE, "password": password }),
        ip,
    )
    .await
}

/// `count` wrong passwords at once, each from a network of its own. All take the account's
/// record at once, so on a loaded machine one may find DynamoDB's conflicts unsettled (503):
/// a refusal too, which is all these tests need of a stranger's guess.
async fn strangers_guess(t: &TestApp, count: usize, first: usize) {
    let guesses = (first..first + count).map(|i| {
        let ip = format!("198.51.100.{i}");
        async move { login_from(t, "a stranger's guess", &ip).await }
    });
    for response in join_all(guesses).await {
        assert!(
            [401, 429, 503].contains(&response.status),
            "{:?}",
            response.body
        );
    }
}

fn tokens_of(response: &TestResponse) -> Value {
    assert_eq!(response.status, 200, "{:?}", response.body);
    response.body["tokens"].clone()
}

#[tokio::test]
async fn failures_before_the_sign_up_do_not_hold_the_owner_of_the_new_account() {
    let t = TestApp::with_env(QUICK_BACKOFF).await;
    // Wrong logins for the number before it had an account.
    strangers_guess(&t, 2, 0).await;
    t.registered_user(PHONE, PHONE_E164).await;
    assert!(
        t.get_item(&t.tables().attempts, "pk", &format!("acct#{PHONE_E164}"))
            .await
            .is_none(),
        "the sign-up forgot the failures recorded before the account existed"
    );
    strangers_guess(&t, 1, 10).await;

    tokens_of(&login_from(&t, PASSWORD, CLIENT_IP).await);
}

#[tokio::test]
async fn the_sign_up_network_is_the_owners_while_strangers_hold_the_account_in_back_off() {
    let t = TestApp::with_env(QUICK_BACKOFF).await;
    t.registered_user(PHONE, PHONE_E164).await;
    strangers_guess(&t, 6, 0).await;

    let stranger = login_from(&t, PASSWORD, "192.0.2.99").await;
    assert_eq!(
        stranger.status, 429,
        "a new network waits: {:?}",
        stranger.body
    );
    tokens_of(&login_from(&t, PASSWORD, CLIENT_IP).await);
}

#[tokio::test]
async fn a_login_by_code_and_a_reset_make_their_networks_the_owners() {
    let t = TestApp::with_env(QUICK_BACKOFF).await;
    t.registered_user(PHONE, PHONE_E164).await;
    let (code_network, reset_network) = ("192.0.2.10", "2001:db8:7:7::1");

    let id = request_code(&t, Endpoint::LoginOtpRequest, PHONE, code_network).await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let body = json!({ "phone": PHONE, "code": code, "verification_id": id });
    tokens_of(&t.post_from(Endpoint::LoginOtp, body, code_network).await);

    let id = request_code(&t, Endpoint::PasswordResetRequest, PHONE, reset_network).await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let body = json!({
        "phone": PHONE, "code": code, "new_password": PASSWORD, "verification_id": id,
    });
    let reset = t
        .post_from(Endpoint::PasswordResetConfirm, body, reset_network)
        .await;
    assert_eq!(reset.status, 204, "{:?}", reset.body);

    strangers_guess(&t, 6, 0).await;
    assert_eq!(login_from(&t, PASSWORD, "192.0.2.11").await.status, 429);
    tokens_of(&login_from(&t, PASSWORD, code_network).await);
    // Any address of the same /64.
    tokens_of(&login_from(&t, PASSWORD, "2001:db8:7:7::abcd").await);
}

#[tokio::test]
async fn a_live_session_changes_the_password_and_deletes_the_account_while_strangers_guess() {
    let t = TestApp::with_env(QUICK_BACKOFF).await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();
    // Strangers guess while the owner changes the password: neither holds the other.
    let change = json!({ "old_password": PASSWORD, "new_password": "a brand new passphrase" });
    let (changed, ()) = tokio::join!(
        t.authed(Endpoint::PasswordChange, "POST", access, Some(change)),
        strangers_guess(&t, 6, 0),
    );
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    strangers_guess(&t, 5, 20).await;
    let account = t
        .get_item(&t.tables().attempts, "pk", &format!("acct#{PHONE_E164}"))
        .await
        .unwrap();
    assert!(num(&account, "failures").unwrap() >= 3, "in back-off");

    let deleted = t
        .authed(
            Endpoint::Profile,
            "DELETE",
            access,
            Some(json!({ "password": "a brand new passphrase" })),
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert!(t.user(PHONE_E164).await.is_none());
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_from_a_session_gets_five_checks_and_ends_the_session() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let access = registered.body["tokens"]["access"].as_str().unwrap();
    let change = json!({ "old_password": "not it", "new_password": "a brand new passphrase" });

    let answers = join_all((0..12).map(|_| {
        t.authed(
            Endpoint::PasswordChange,
            "POST",
            access,
            Some(change.clone()),
        )
    }))
    .await;

    let wrong = answers
        .iter()
        .filter(|answer| answer.error() == "Wrong password.")
        .count();
    let ended = "Too many wrong passwords: this session has ended. Log in again.";
    // Checks beyond the five slots are refused before argon2 runs: 429 while the others
    // still run, the session's end once they have spent the budget.
    assert!(
        answers
            .iter()
            .all(|answer| answer.status == 429 || answer.status == 401),
        "{answers:?}"
    );
    assert_eq!(wrong, 4, "five checks, the fifth ends the session");
    assert!(answers.iter().any(|answer| answer.error() == ended));
    let failures: Vec<u64> = t
        .scan(&t.tables().attempts)
        .await
        .iter()
        .filter(|item| auth_tests::text(item, "pk").is_some_and(|pk| pk.starts_with("sessfail#")))
        .filter_map(|item| num(item, "wrong"))
        .collect();
    assert_eq!(failures, [5], "exactly five passwords were checked");
    let after = t.authed(Endpoint::Profile, "GET", access, None).await;
    assert_eq!(after.status, 401, "the session ended: {:?}", after.body);
    // The account itself is untouched: the password still logs in.
    tokens_of(&login_from(&t, PASSWORD, CLIENT_IP).await);
}

#[tokio::test]
async fn a_session_from_one_intercepted_sms_cannot_move_the_account() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    // Whoever reads one login SMS logs in by code...
    let requested = t
        .post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
        .await;
    let code = t.last_code_for(PHONE_E164).unwrap();
    let body = json!({
        "phone": PHONE, "code": code, "verification_id": requested.body["verification_id"],
    });
    let tokens = tokens_of(&t.post(Endpoint::LoginOtp, body).await);
    let access = tokens["access"].as_str().unwrap();
    let sent_before = t.sent_sms().len();

    // ...but a change of number needs the password.
    let new_phone = "09351234567";
    let without = t
        .authed(
            Endpoint::PhoneChangeRequest,
            "POST",
            access,
            Some(json!({ "new_phone": new_phone })),
        )
        .await;
    assert_eq!(without.status, 400, "{:?}", without.body);
    let wrong = t
        .authed(
            Endpoint::PhoneChangeRequest,
            "POST",
            access,
            Some(json!({ "new_phone": new_phone, "password": "a guess" })),
        )
        .await;
    assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    assert_eq!(wrong.error(), "Wrong password.");
    assert_eq!(t.sent_sms().len(), sent_before, "no code went anywhere");

    let right = t
        .authed(
            Endpoint::PhoneChangeRequest,
            "POST",
            access,
            Some(json!({ "new_phone": new_phone, "password": PASSWORD })),
        )
        .await;
    assert_eq!(right.status, 200, "{:?}", right.body);
}

/// A login or reset code request from `ip`; the verification id it returned.
async fn request_code(t: &TestApp, endpoint: Endpoint, phone: &str, ip: &str) -> Value {
    let answer = t.post_from(endpoint, json!({ "phone": phone }), ip).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["verification_id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_strangers_request_and_guesses_leave_the_owners_code_good() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let owners_id = request_code(&t, Endpoint::LoginOtpRequest, PHONE, CLIENT_IP).await;
    let owners_code = t.last_code_for(PHONE_E164).unwrap();
    // A stranger asks for a code to the same number a moment later...
    let strangers_id = request_code(&t, Endpoint::LoginOtpRequest, PHONE, "192.0.2.50").await;
    let guess = auth_tests::other_code(&owners_code);
    // ...and guesses, in parallel, from ten networks: five with its own id, five without.
    let guesses = (0..10).map(|i| {
        let mut body = json!({ "phone": PHONE, "code": guess });
        if i % 2 == 0 {
            body["verification_id"] = strangers_id.clone();
        }
        let ip = format!("192.0.2.{}", 60 + i);
        let t = &t;
        async move { t.post_from(Endpoint::LoginOtp, body, &ip).await }
    });
    for answer in join_all(guesses).await {
        assert_eq!(answer.status, 400, "{:?}", answer.body);
    }

    let owner = t
        .post(
            Endpoint::LoginOtp,
            json!({ "phone": PHONE, "code": owners_code, "verification_id": owners_id }),
        )
        .await;
    tokens_of(&owner);
    let codes = t.codes_for(PHONE_E164, "login").await;
    assert_eq!(
        codes.len(),
        1,
        "the stranger's code is left, the owner's spent"
    );
}

#[tokio::test]
async fn wrong_codes_are_answered_alike_with_or_without_an_account() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let unknown = "09129998877";
    for (endpoint, network) in [
        (Endpoint::PasswordResetRequest, "198.51.100.77"),
        (Endpoint::LoginOtpRequest, "198.51.100.78"),
    ] {
        t.end_resend_cooldown();
        let confirm = if endpoint == Endpoint::PasswordResetRequest {
            Endpoint::PasswordResetConfirm
        } else {
            Endpoint::LoginOtp
        };
        let mut answers = Vec::new();
        for phone in [PHONE, unknown] {
            let requested = t.post(endpoint, json!({ "phone": phone })).await;
            assert_eq!(requested.status, 200);
            let mut guesses = Vec::new();
            for with_id in [true, true, false] {
                let mut body = json!({ "phone": phone, "code": "000000" });
                if confirm == Endpoint::PasswordResetConfirm {
                    body["new_password"] = json!("a brand new passphrase");
                }
                if with_id {
                    body["verification_id"] = requested.body["verification_id"].clone();
                }
                let answer = t.post_from(confirm, body, network).await;
                guesses.push((answer.status, answer.body));
            }
            answers.push(guesses);
        }
        if t.last_code_for(PHONE_E164).as_deref() != Some("000000") {
            assert_eq!(answers[0], answers[1], "{endpoint:?}");
        }
        assert_eq!(answers[0][0].1["error"], "Incorrect OTP.");
    }
}

#[tokio::test]
async fn the_fifth_wrong_password_from_a_session_ends_it_on_every_route_that_asks() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    let routes: [(Endpoint, &str, &str); 3] = [
        (Endpoint::PasswordChange, "POST", "old_password"),
        (Endpoint::Profile, "DELETE", "password"),
        (Endpoint::PhoneChangeRequest, "POST", "password"),
    ];
    for (endpoint, method, field) in routes {
        let tokens = t.login(PHONE).await;
        let access = tokens["access"].as_str().unwrap();
        let mut body =
            json!({ "new_password": "a brand new passphrase", "new_phone": "09351234567" });
        body[field] = json!("not the password");
        if endpoint != Endpoint::PasswordChange {
            body.as_object_mut().unwrap().remove("new_password");
        }
        if endpoint != Endpoint::PhoneChangeRequest {
            body.as_object_mut().unwrap().remove("new_phone");
        }
        for attempt in 1..=5 {
            let answer = t.authed(endpoint, method, access, Some(body.clone())).await;
            assert_eq!(
                answer.status, 401,
                "{endpoint:?} {attempt}: {:?}",
                answer.body
            );
            let expected = if attempt < 5 {
                "Wrong password."
            } else {
                "Too many wrong passwords: this session has ended. Log in again."
            };
            assert_eq!(answer.error(), expected, "{endpoint:?} {attempt}");
        }
        let after = t.authed(Endpoint::Profile, "GET", access, None).await;
        assert_eq!(after.status, 401, "{endpoint:?}: the session ended");
    }
    assert!(t.user(PHONE_E164).await.is_some(), "the account stays");
}
