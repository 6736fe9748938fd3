//! `POST /auth/phone/change/request/` and `POST /auth/phone/change/confirm/`

use std::sync::Arc;

use auth_shared::tokens::TokenType;
use auth_tests::{
    CapturedLogs, DynamoDbGate, Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse, num,
    other_code, register_body, text,
};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join;
use serde_json::{Value, json};

const NEW_PHONE: &str = "09121234567";
const NEW_E164: &str = "+989121234567";

fn access(tokens: &Value) -> &str {
    tokens["access"].as_str().unwrap()
}

async fn request_change(t: &TestApp, tokens: &Value, new_phone: &str) -> TestResponse {
    t.authed(
        Endpoint::PhoneChangeRequest,
        "POST",
        access(tokens),
        Some(json!({ "new_phone": new_phone, "password": PASSWORD })),
    )
    .await
}

async fn confirm_change(t: &TestApp, tokens: &Value, new_phone: &str, code: &str) -> TestResponse {
    t.authed(
        Endpoint::PhoneChangeConfirm,
        "POST",
        access(tokens),
        Some(json!({ "new_phone": new_phone, "code": code })),
    )
    .await
}

async fn user_at(t: &TestApp, e164: &str) -> Option<auth_shared::store::Item> {
    t.dynamodb
        .get_item()
        .table_name(&t.tables().users)
        .key("phone", AttributeValue::S(e164.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

async fn login_status(t: &TestApp, phone: &str) -> u16 {
    t.post(
        Endpoint::Login,
        json!({ "phone": phone, "password": PASSWORD }),
    )
    .await
    .status
}

#[tokio::test]
async fn a_confirmed_code_moves_the_account_and_its_sessions_to_the_new_number() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let tokens = registered.body["tokens"].clone();
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let before = user_at(&t, PHONE_E164).await.unwrap();

    let requested = request_change(&t, &tokens, NEW_PHONE).await;

    assert_eq!(requested.status, 200, "{:?}", requested.body);
    assert_eq!(requested.body["message"], "Code sent to the new number.");
    assert_eq!(requested.body["expires_in"], 300);
    assert_eq!(requested.body["resend_after"], 60);
    assert!(requested.body["verification_id"].is_string());
    let sms = t.sent_sms();
    assert_eq!(sms.last().unwrap()["to"], NEW_E164);
    assert!(
        sms.last().unwrap()["body"]
            .as_str()
            .unwrap()
            .contains("phone number change")
    );
    let otp = t.otp_for(NEW_E164, "phone_change").await.unwrap();
    assert_eq!(text(&otp, "owner"), Some(user_id.as_str()));
    let code = t.last_code_for(NEW_E164).unwrap();

    let confirmed = confirm_change(&t, &tokens, NEW_PHONE, &code).await;

    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["phone"], NEW_E164);
    assert_eq!(confirmed.body["id"], user_id.as_str());
    // The old number hears of it, with the new one masked.
    let notice = t.last_sms_to(PHONE_E164).unwrap();
    assert_eq!(
        notice,
        "Phone Auth: the phone number of your account was changed to +98912***4567. If this \
         was not you, contact support at once."
    );
    assert_eq!(t.sent_sms().last().unwrap()["to"], PHONE_E164);
    assert_eq!(
        confirmed.body["first_name"],
        registered.body["user"]["first_name"]
    );
    assert!(confirmed.body.get("password_hash").is_none());
    assert!(
        user_at(&t, PHONE_E164).await.is_none(),
        "the old number is free"
    );
    let moved = user_at(&t, NEW_E164).await.unwrap();
    for kept in [
        "user_id",
        "password_hash",
        "first_name",
        "last_name",
        "email",
    ] {
        assert_eq!(moved.get(kept), before.get(kept), "{kept}");
    }
    assert_eq!(num(&moved, "created_at"), num(&before, "created_at"));
    assert!(
        t.otp_for(NEW_E164, "phone_change").await.is_none(),
        "the code is spent"
    );

    // The session that asked, and its refresh token, keep working under the new number.
    let profile = t
        .authed(Endpoint::Profile, "GET", access(&tokens), None)
        .await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.body["phone"], NEW_E164);
    let refreshed = t
        .post(Endpoint::Refresh, json!({ "refresh": tokens["refresh"] }))
        .await;
    assert_eq!(refreshed.status, 200);
    assert_eq!(login_status(&t, NEW_PHONE).await, 200);
    assert_eq!(login_status(&t, PHONE).await, 401);
    // The sign-up's resend cooldown of this network outlives its code.
    t.end_resend_cooldown();
    let lookup = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(
        lookup.body["exists"], false,
        "the old number can sign up again"
    );
    t.end_resend_cooldown();
    let again = t.registered_user(PHONE, PHONE_E164).await;
    assert_ne!(again.body["user"]["id"], user_id.as_str());

    // A password check through the old session finds the account under its new number.
    let change = t
        .authed(
            Endpoint::PasswordChange,
            "POST",
            access(&refreshed.body["tokens"]),
            Some(json!({ "old_password": PASSWORD, "new_password": "a new long passphrase" })),
        )
        .await;
    assert_eq!(change.status, 204, "{:?}", change.body);
    let login = t
        .post(
            Endpoint::Login,
            json!({ "phone": NEW_PHONE, "password": "a new long passphrase" }),
        )
        .await;
    assert_eq!(login.status, 200);
}

#[tokio::test]
async fn a_registered_number_is_refused_with_409_and_gets_no_sms() {
    let t = TestApp::new().await;
    let mine = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    t.registered_user(NEW_PHONE, NEW_E164).await;
    let sms_before = t.sent_sms().len();

    for number in [NEW_PHONE, PHONE] {
        let response = request_change(&t, &mine, number).await;
        assert_eq!(response.status, 409, "{number}: {:?}", response.body);
        assert_eq!(response.error(), "This phone number is already registered.");
    }
    assert_eq!(t.sent_sms().len(), sms_before);
    assert!(t.otp_for(NEW_E164, "phone_change").await.is_none());
    let invalid = request_change(&t, &mine, "0912").await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.error(), "Invalid phone number.");
    let unauthenticated = t
        .post(
            Endpoint::PhoneChangeRequest,
            json!({ "new_phone": "09351234567", "password": PASSWORD }),
        )
        .await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(t.sent_sms().len(), sms_before);
}

#[tokio::test]
async fn wrong_codes_follow_the_verify_rules_and_move_nothing() {
    let t = TestApp::new().await;
    let tokens = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    request_change(&t, &tokens, NEW_PHONE).await;
    let code = t.last_code_for(NEW_E164).unwrap();

    let wrong = confirm_change(&t, &tokens, NEW_PHONE, &other_code(&code)).await;

    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.body,
        json!({ "error": "Incorrect OTP.", "attempts_left": 2 })
    );
    assert!(user_at(&t, PHONE_E164).await.is_some());
    assert!(user_at(&t, NEW_E164).await.is_none());
    let short = confirm_change(&t, &tokens, NEW_PHONE, "123").await;
    assert_eq!(short.status, 400);
    // Another number than the one the code went to has no code.
    let elsewhere = confirm_change(&t, &tokens, "09351234567", &code).await;
    assert_eq!(elsewhere.status, 400);
    assert_eq!(
        elsewhere.error(),
        "No active OTP for this phone number. Request a new code."
    );

    let right = confirm_change(&t, &tokens, NEW_PHONE, &code).await;
    assert_eq!(right.status, 200, "{:?}", right.body);
    let replay = confirm_change(&t, &tokens, NEW_PHONE, &code).await;
    assert_eq!(replay.status, 400, "single use");
}

#[tokio::test]
async fn a_code_sent_for_one_account_is_no_code_for_another() {
    let t = TestApp::new().await;
    let owner = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    let other = t.registered_user("09351234567", "+989351234567").await.body["tokens"].clone();
    request_change(&t, &owner, NEW_PHONE).await;
    let code = t.last_code_for(NEW_E164).unwrap();

    let stolen = confirm_change(&t, &other, NEW_PHONE, &code).await;

    assert_eq!(stolen.status, 400, "{:?}", stolen.body);
    assert_eq!(
        stolen.error(),
        "No active OTP for this phone number. Request a new code."
    );
    let otp = t.otp_for(NEW_E164, "phone_change").await.unwrap();
    assert_eq!(
        num(&otp, "failed_attempts"),
        Some(0),
        "and costs its owner no guess"
    );
    assert!(user_at(&t, NEW_E164).await.is_none());
    assert_eq!(
        confirm_change(&t, &owner, NEW_PHONE, &code).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_racing_a_sign_up_of_the_same_number_leaves_exactly_one_account_there() {
    // Three codes per round from one client: lift the network's send cap.
    let t = TestApp::with_env(&[("OTP_SENDS_PER_IP", "100")]).await;
    for round in 0..4 {
        let (new_phone, new_e164) = (format!("0935123456{round}"), format!("+98935123456{round}"));
        let mover = t
            .registered_user(
                &format!("0912000000{round}"),
                &format!("+98912000000{round}"),
            )
            .await;
        let mover_tokens = mover.body["tokens"].clone();
        request_change(&t, &mover_tokens, &new_phone).await;
        let code = t.last_code_for(&new_e164).unwrap();
        t.end_resend_cooldown();
        let registration = t.verified_token(&new_phone, &new_e164).await;

        let (moved, signed_up) = join(
            confirm_change(&t, &mover_tokens, &new_phone, &code),
            t.post(Endpoint::Register, register_body(&registration)),
        )
        .await;

        let outcome = (moved.status, signed_up.status);
        assert!(
            outcome == (200, 409) || outcome == (409, 201),
            "round {round}: {outcome:?} {:?} {:?}",
            moved.body,
            signed_up.body
        );
        let holder = user_at(&t, &new_e164).await.unwrap();
        let expected = if moved.status == 200 {
            mover.body["user"]["id"].clone()
        } else {
            signed_up.body["user"]["id"].clone()
        };
        assert_eq!(Some(expected.as_str().unwrap()), text(&holder, "user_id"));
        let mover_old = user_at(&t, &format!("+98912000000{round}")).await;
        assert_eq!(
            mover_old.is_none(),
            moved.status == 200,
            "moved or left whole"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_profile_edit_landing_during_the_move_refuses_the_move_instead_of_being_lost() {
    let t = TestApp::new().await;
    let tokens = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    request_change(&t, &tokens, NEW_PHONE).await;
    let code = t.last_code_for(NEW_E164).unwrap();
    // The confirmation authenticates (0), reads the pair and the codes side by side (1, 2),
    // takes its slot (3) and reads the account (4), then waits before its transaction (5) while
    // the profile is edited.
    let (gate, pause) = DynamoDbGate::pausing_before(5);
    let racing = Arc::new(t.through(&gate).await);
    let confirm = tokio::spawn({
        let racing = Arc::clone(&racing);
        let tokens = tokens.clone();
        async move { confirm_change(&racing, &tokens, NEW_PHONE, &code).await }
    });
    pause.reached().await;
    let edit = t
        .authed(
            Endpoint::Profile,
            "PATCH",
            access(&tokens),
            Some(json!({ "last_name": "Edited" })),
        )
        .await;
    assert_eq!(edit.status, 200);
    pause.release();
    let confirm = confirm.await.unwrap();

    assert_eq!(confirm.status, 409, "{:?}", confirm.body);
    assert_eq!(confirm.error(), "The account changed meanwhile; try again.");
    let kept = user_at(&t, PHONE_E164).await.unwrap();
    assert_eq!(text(&kept, "last_name"), Some("Edited"));
    assert!(user_at(&t, NEW_E164).await.is_none());
}

#[tokio::test]
async fn the_change_is_an_audit_event_with_both_numbers_masked() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::new().await;
    let tokens = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    request_change(&t, &tokens, NEW_PHONE).await;
    let code = t.last_code_for(NEW_E164).unwrap();
    assert_eq!(
        confirm_change(&t, &tokens, NEW_PHONE, &code).await.status,
        200
    );

    let event = logs
        .audit_events()
        .into_iter()
        .find(|event| event["event"] == "phone_changed")
        .expect("a phone_changed audit event");
    assert_eq!(event["phone"], "+98910***4567");
    assert_eq!(event["detail"], "+98912***4567");
    let text = logs.text();
    assert!(
        !text.contains(PHONE_E164) && !text.contains(NEW_E164),
        "numbers only masked"
    );
    assert!(!text.contains(&code), "nor the code");
}

#[tokio::test]
async fn only_a_recent_login_may_change_the_number() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let old_session = registered.body["tokens"].clone();
    request_change(&t, &old_session, NEW_PHONE).await;
    let code = t.last_code_for(NEW_E164).unwrap();
    t.app.clock.advance(t.app.config.recent_login_seconds + 1);
    // A refresh keeps the session's login time: it is still the old session.
    let refreshed = t
        .post(
            Endpoint::Refresh,
            json!({ "refresh": old_session["refresh"] }),
        )
        .await;
    let old_session = refreshed.body["tokens"].clone();

    let confirm = confirm_change(&t, &old_session, NEW_PHONE, &code).await;
    assert_eq!(confirm.status, 403, "{:?}", confirm.body);
    assert_eq!(
        confirm.body,
        json!({ "error": "Log in again to make this change.", "login_required": true })
    );
    let request = request_change(&t, &old_session, "09351234567").await;
    assert_eq!(request.status, 403);
    assert!(user_at(&t, NEW_E164).await.is_none());
    let otp = t.otp_for(NEW_E164, "phone_change").await.unwrap();
    assert_eq!(num(&otp, "failed_attempts"), Some(0), "no guess was taken");

    // A fresh login may, with the code already sent (it is bound to the account).
    let fresh = t.login(PHONE).await;
    assert_eq!(
        confirm_change(&t, &fresh, NEW_PHONE, &code).await.status,
        400,
        "the code expired"
    );
    t.end_resend_cooldown();
    assert_eq!(request_change(&t, &fresh, NEW_PHONE).await.status, 200);
    let code = t.last_code_for(NEW_E164).unwrap();
    assert_eq!(
        confirm_change(&t, &fresh, NEW_PHONE, &code).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_for_registered_numbers_count_against_the_lookup_cap_in_parallel() {
    let t = TestApp::with_env(&[("CHECK_PHONE_LOOKUPS_PER_IP", "5")]).await;
    let mine = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    t.registered_user(NEW_PHONE, NEW_E164).await;

    let responses =
        futures::future::join_all((0..12).map(|_| request_change(&t, &mine, NEW_PHONE))).await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    // Sign-up's check-phone calls took two of the five lookups.
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        9,
        "{statuses:?}"
    );
    let lookups: Vec<_> = t
        .scan(&t.tables().attempts)
        .await
        .into_iter()
        .filter(|item| text(item, "pk").unwrap().starts_with("send#lookup#"))
        .collect();
    assert_eq!(lookups.len(), 1);
    assert_eq!(num(&lookups[0], "hits"), Some(5), "never past the cap");
}

#[tokio::test]
async fn another_accounts_request_leaves_a_live_code_sent_for_someone_else_alone() {
    let t = TestApp::new().await;
    let first = t.registered_user(PHONE, PHONE_E164).await.body["tokens"].clone();
    let second = t.registered_user("09351234567", "+989351234567").await.body["tokens"].clone();
    request_change(&t, &first, NEW_PHONE).await;
    let code = t.last_code_for(NEW_E164).unwrap();
    t.end_resend_cooldown();

    // Each request is its own code, bound to its account: the later one voids nothing.
    let other = request_change(&t, &second, NEW_PHONE).await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    let other_code = t.last_code_for(NEW_E164).unwrap();
    let codes = t.codes_for(NEW_E164, "phone_change").await;
    let owners: Vec<&str> = codes
        .iter()
        .filter_map(|code| text(code, "owner"))
        .collect();
    let first_id = t
        .app
        .tokens
        .verify(access(&first), TokenType::Access)
        .await
        .unwrap()
        .sub;
    assert_eq!(owners.len(), 2);
    assert_eq!(
        owners[0], first_id,
        "the first account's code is still there"
    );

    if other_code != code {
        // A code sent for another account is no code for this one.
        let crossed = confirm_change(&t, &second, NEW_PHONE, &code).await;
        assert_eq!(crossed.status, 400, "{:?}", crossed.body);
    }
    let moved = confirm_change(&t, &first, NEW_PHONE, &code).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let late = confirm_change(&t, &second, NEW_PHONE, &other_code).await;
    assert_eq!(late.status, 409, "the number is taken now: {:?}", late.body);
}
