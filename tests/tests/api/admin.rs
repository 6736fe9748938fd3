//! What operators do to accounts (`service::admin`, the admin API's library): finding an
//! account, disabling it (no login of any kind, no refresh, no live access token, at once) and
//! enabling it again (logins work; the old sessions stay ended), with the stored state, the
//! events and a parallel burst of logins racing the disable.

use auth_shared::service::admin::{self, Operator};
use auth_tests::{Endpoint, PASSWORD, PHONE, PHONE_E164, TestApp, TestResponse};
use serde_json::json;

fn operator() -> Operator {
    Operator {
        arn: "arn:aws:sts::123456789012:assumed-role/Support/alice".to_owned(),
        request_id: "admin-request".to_owned(),
        ..Operator::default()
    }
}

const DISABLED: &str = "This account is disabled.";
/// A number without an account.
const UNREGISTERED: &str = "09129998877";

/// A code request's answer with its verification id (random) left out.
fn without_id(body: &serde_json::Value) -> serde_json::Value {
    let mut body = body.clone();
    body.as_object_mut().unwrap().remove("verification_id");
    body
}

fn is_disabled(response: &TestResponse) -> bool {
    response.status == 403 && response.body == json!({ "error": DISABLED, "disabled": true })
}

async fn password_login(t: &TestApp, password: &str) -> TestResponse {
    t.post(
        Endpoint::Login,
        json!({ "phone": PHONE, "password": password }),
    )
    .await
}

/// A registered user, its id, and a session's access and refresh tokens.
async fn user_with_session(t: &TestApp) -> (String, String, String) {
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let tokens = t.login(PHONE).await;
    let access = tokens["access"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh"].as_str().unwrap().to_owned();
    (user_id, access, refresh)
}

#[tokio::test]
async fn an_account_is_found_by_number_or_id() {
    let t = TestApp::new().await;
    let (user_id, _, _) = user_with_session(&t).await;
    let by_id = admin::find_by_id(&t.app, &user_id).await.unwrap();
    assert_eq!(by_id.profile.phone, PHONE_E164);
    assert!(!by_id.disabled);
    let phone = auth_shared::phone::PhoneNumber::parse(PHONE, t.app.config.default_region).unwrap();
    let by_phone = admin::find_by_phone(&t.app, &phone).await.unwrap();
    assert_eq!(by_phone.profile.id, user_id);
    let unknown = admin::find_by_id(&t.app, "00000000-0000-4000-8000-000000000000").await;
    assert!(matches!(
        unknown,
        Err(auth_shared::error::AuthError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_disabled_account_is_refused_everywhere_at_once_and_told_so_only_with_its_credentials() {
    let t = TestApp::new().await;
    let (user_id, access, refresh) = user_with_session(&t).await;
    let sms_before = t.sent_sms().len();

    let disabled = admin::set_disabled(&t.app, &user_id, true, &operator())
        .await
        .unwrap();
    assert!(disabled.disabled);

    // The live access token, on every kind of Bearer endpoint, and the refresh token.
    let profile = t.authed(Endpoint::Profile, "GET", &access, None).await;
    assert!(is_disabled(&profile), "{profile:?}");
    let sessions = t.authed(Endpoint::Sessions, "GET", &access, None).await;
    assert!(is_disabled(&sessions), "{sessions:?}");
    let refreshed = t.refresh(&refresh).await;
    assert!(is_disabled(&refreshed), "{refreshed:?}");
    // The right password is told; a wrong one learns nothing new.
    let right = password_login(&t, PASSWORD).await;
    assert!(is_disabled(&right), "{right:?}");
    let wrong = password_login(&t, "not the password at all").await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_ne!(wrong.body["disabled"], true);
    // No login or reset code goes to it; the answers are those of a number without an account
    // (the same status and fields; only the verification id differs).
    for endpoint in [Endpoint::LoginOtpRequest, Endpoint::PasswordResetRequest] {
        let asked = t.post(endpoint, json!({ "phone": PHONE })).await;
        let unregistered = t.post(endpoint, json!({ "phone": UNREGISTERED })).await;
        assert_eq!(asked.status, 200, "{asked:?}");
        assert_eq!(asked.status, unregistered.status, "{unregistered:?}");
        assert_eq!(
            without_id(&asked.body),
            without_id(&unregistered.body),
            "{endpoint:?}"
        );
        assert!(asked.body["verification_id"].is_string(), "{asked:?}");
    }
    assert_eq!(
        t.sent_sms().len(),
        sms_before,
        "no SMS to a disabled account"
    );

    // Stored: the account and the credentials item say so, the version moved on (the sessions
    // are over), and the event was recorded with the change.
    let user = t.user(PHONE_E164).await.unwrap();
    assert_eq!(user["disabled"].as_bool(), Ok(&true));
    assert_eq!(user["credentials_version"].as_n().unwrap(), "1");
    let credentials = t.session_item(&user_id, "credentials").await.unwrap();
    assert_eq!(credentials["disabled"].as_bool(), Ok(&true));
    assert_eq!(credentials["version"].as_n().unwrap(), "1");
    assert_eq!(credentials["disabled_version"].as_n().unwrap(), "0");
    let events = t.recorded_events().await;
    let disabled_events: Vec<_> = events
        .iter()
        .filter(|(kind, _)| kind == "user.disabled.v1")
        .collect();
    assert_eq!(disabled_events.len(), 1, "{events:?}");
    assert_eq!(disabled_events[0].1["user_id"], user_id.as_str());

    // Disabling again changes nothing and records nothing.
    admin::set_disabled(&t.app, &user_id, true, &operator())
        .await
        .unwrap();
    let again = t.recorded_events().await;
    assert_eq!(again.len(), events.len());
}

#[tokio::test]
async fn enabling_restores_logins_but_not_the_old_sessions() {
    let t = TestApp::new().await;
    let (user_id, access, refresh) = user_with_session(&t).await;
    admin::set_disabled(&t.app, &user_id, true, &operator())
        .await
        .unwrap();
    let enabled = admin::set_disabled(&t.app, &user_id, false, &operator())
        .await
        .unwrap();
    assert!(!enabled.disabled);

    assert_eq!(t.profile_status(&access).await, 401);
    assert_eq!(t.refresh(&refresh).await.status, 401);
    let login = password_login(&t, PASSWORD).await;
    assert_eq!(login.status, 200, "{login:?}");
    let fresh = login.body["tokens"]["access"].as_str().unwrap();
    assert_eq!(t.profile_status(fresh).await, 200);

    let user = t.user(PHONE_E164).await.unwrap();
    assert!(!user.contains_key("disabled"), "{user:?}");
    assert_eq!(user["credentials_version"].as_n().unwrap(), "2");
    let kinds: Vec<String> = t
        .recorded_events()
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .filter(|kind| kind.starts_with("user.disabled") || kind.starts_with("user.enabled"))
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds.contains(&"user.enabled.v1".to_owned()));
}

#[tokio::test]
async fn a_login_code_sent_before_the_account_was_disabled_opens_nothing() {
    let t = TestApp::new().await;
    let (user_id, _, _) = user_with_session(&t).await;
    let requested = t
        .post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(requested.status, 200, "{requested:?}");
    let id = requested.body["verification_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = t.last_code_for(PHONE_E164).unwrap();
    admin::set_disabled(&t.app, &user_id, true, &operator())
        .await
        .unwrap();

    let login = t
        .post(
            Endpoint::LoginOtp,
            json!({ "phone": PHONE, "code": code, "verification_id": id }),
        )
        .await;
    assert!(is_disabled(&login), "{login:?}");
}

/// Logins racing the disable: whichever committed before it, none of their tokens works while
/// the account is disabled, and none works after it is enabled again (a login that read the
/// account before the disable cannot start a session after it). The racing logins are shown to
/// overlap the disable (started before it, finished after it); two logins that finished just
/// before it hold sessions it then holds.
#[tokio::test]
async fn no_login_racing_the_disable_keeps_a_working_session() {
    use std::time::Instant;
    let t = TestApp::new().await;
    let (user_id, _, _) = user_with_session(&t).await;
    // From ten networks, so that no pair's limit decides.
    let ips: Vec<String> = (0..10).map(|i| format!("198.51.100.{}", i + 10)).collect();
    let login = |ip: &str| {
        let ip = ip.to_owned();
        let t = &t;
        async move {
            let started = Instant::now();
            let answer = t
                .post_from(
                    Endpoint::Login,
                    json!({ "phone": PHONE, "password": PASSWORD }),
                    &ip,
                )
                .await;
            (started, answer, Instant::now())
        }
    };
    let before: Vec<_> = futures::future::join_all(ips[..2].iter().map(|ip| login(ip))).await;
    let operator = operator();
    let disable = async {
        let started = Instant::now();
        let disabled = admin::set_disabled(&t.app, &user_id, true, &operator).await;
        (started, disabled, Instant::now())
    };
    let racing = futures::future::join_all(ips[2..].iter().map(|ip| login(ip)));
    let (racing, (disable_started, disabled, disable_ended)) = tokio::join!(racing, disable);
    disabled.unwrap();
    // The overlap: every racing login started before the disable ended, and some started
    // before it began and ended after it committed (argon2 runs while the disable commits).
    assert!(
        racing
            .iter()
            .all(|(started, _, _)| *started < disable_ended)
    );
    let spanning = racing
        .iter()
        .filter(|(started, _, ended)| *started <= disable_started && *ended >= disable_ended)
        .count();
    assert!(spanning > 0, "no login spans the disable");
    assert!(
        before
            .iter()
            .all(|(_, answer, ended)| answer.status == 200 && *ended <= disable_started)
    );
    let answers: Vec<TestResponse> = before
        .into_iter()
        .chain(racing)
        .map(|(_, answer, _)| answer)
        .collect();
    let tokens: Vec<String> = answers
        .iter()
        .filter(|answer| answer.status == 200)
        .map(|answer| answer.body["tokens"]["access"].as_str().unwrap().to_owned())
        .collect();
    assert!(tokens.len() >= 2);
    for answer in answers.iter().filter(|answer| answer.status != 200) {
        assert!(is_disabled(answer) || answer.status == 401, "{answer:?}");
    }
    for token in &tokens {
        let profile = t.authed(Endpoint::Profile, "GET", token, None).await;
        assert!(is_disabled(&profile), "{profile:?}");
    }
    admin::set_disabled(&t.app, &user_id, false, &operator)
        .await
        .unwrap();
    for token in &tokens {
        assert_eq!(t.profile_status(token).await, 401);
    }
}

fn token(tokens: &serde_json::Value, kind: &str) -> String {
    tokens[kind].as_str().unwrap().to_owned()
}

/// Only a session live at the disable is told so: a session revoked before answers 401 as on
/// any account, a spent refresh token presented again is reuse (its session ends), and the
/// held session's items stay until the enable, which ends it for good.
#[tokio::test]
async fn only_the_sessions_live_at_the_disable_are_told_it_is_disabled() {
    let t = TestApp::new().await;
    let (user_id, access, refresh) = user_with_session(&t).await;
    let revoked = t.login(PHONE).await;
    let logout = t
        .authed(Endpoint::Logout, "POST", &token(&revoked, "access"), None)
        .await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let rotated = t.login(PHONE).await;
    let spent = token(&rotated, "refresh");
    let next = t.refresh(&spent).await;
    assert_eq!(next.status, 200, "{next:?}");
    let rotated_sid = t
        .access_claims(&token(&next.body["tokens"], "access"))
        .await
        .sid;

    admin::set_disabled(&t.app, &user_id, true, &operator())
        .await
        .unwrap();
    let held_sid = t.access_claims(&access).await.sid;

    // After the disable returned (nothing tidies them away): the live session is told.
    let held = format!("session#{held_sid}");
    assert!(t.session_item(&user_id, &held).await.is_some());
    for _ in 0..2 {
        let profile = t.authed(Endpoint::Profile, "GET", &access, None).await;
        assert!(is_disabled(&profile), "{profile:?}");
        let refreshed = t.refresh(&refresh).await;
        assert!(is_disabled(&refreshed), "{refreshed:?}");
    }
    // The session revoked before: as on any account.
    let profile = t
        .authed(Endpoint::Profile, "GET", &token(&revoked, "access"), None)
        .await;
    assert_eq!(profile.status, 401, "{profile:?}");
    assert_ne!(profile.body["disabled"], true);
    let refreshed = t.refresh(&token(&revoked, "refresh")).await;
    assert_eq!(refreshed.status, 401, "{refreshed:?}");
    assert_ne!(refreshed.body["disabled"], true);

    // A spent refresh token past the grace window: reuse, as on any account.
    t.app
        .clock
        .advance(t.app.config.refresh_reuse_grace_seconds + 1);
    let replay = t.refresh(&spent).await;
    assert_eq!(replay.status, 401, "{replay:?}");
    assert_ne!(replay.body["disabled"], true);
    let rotated_sk = format!("session#{rotated_sid}");
    assert!(
        t.session_item(&user_id, &rotated_sk).await.is_none(),
        "reuse ends the session"
    );
    let reused: Vec<_> = t
        .recorded_events()
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "session.reuse_detected.v1")
        .collect();
    assert_eq!(reused.len(), 1, "{reused:?}");
    assert_eq!(reused[0].1["session_id"], rotated_sid.as_str());
    let successor = t.refresh(&token(&next.body["tokens"], "refresh")).await;
    assert_eq!(successor.status, 401, "{successor:?}");
    // The held session is untouched by it.
    assert!(is_disabled(
        &t.authed(Endpoint::Profile, "GET", &access, None).await
    ));

    // The enable ends the held session for good, and removes its item.
    admin::set_disabled(&t.app, &user_id, false, &operator())
        .await
        .unwrap();
    assert_eq!(t.profile_status(&access).await, 401);
    let refreshed = t.refresh(&refresh).await;
    assert_eq!(refreshed.status, 401, "{refreshed:?}");
    assert!(t.session_item(&user_id, &held).await.is_none());
    let credentials = t.session_item(&user_id, "credentials").await.unwrap();
    assert!(!credentials.contains_key("disabled"), "{credentials:?}");
    assert!(
        !credentials.contains_key("disabled_version"),
        "{credentials:?}"
    );
}

/// A login code and a reset code asked for before the disable die with it: after the enable
/// neither opens the account (the enable deleted them), and their items are gone.
#[tokio::test]
async fn codes_sent_before_the_disable_do_not_work_after_the_enable() {
    let t = TestApp::new().await;
    let (user_id, _, _) = user_with_session(&t).await;
    let login_asked = t
        .post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(login_asked.status, 200, "{login_asked:?}");
    let login_code = t.last_code_for(PHONE_E164).unwrap();
    let reset_asked = t
        .post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    assert_eq!(reset_asked.status, 200, "{reset_asked:?}");
    let reset_code = t.last_code_for(PHONE_E164).unwrap();
    assert_ne!(login_code, reset_code);

    admin::set_disabled(&t.app, &user_id, true, &operator())
        .await
        .unwrap();
    admin::set_disabled(&t.app, &user_id, false, &operator())
        .await
        .unwrap();

    assert!(t.codes_for(PHONE_E164, "login").await.is_empty());
    assert!(t.codes_for(PHONE_E164, "password_reset").await.is_empty());
    let login = t
        .post(
            Endpoint::LoginOtp,
            json!({ "phone": PHONE, "code": login_code,
                    "verification_id": login_asked.body["verification_id"] }),
        )
        .await;
    assert!(matches!(login.status, 400 | 401), "{login:?}");
    assert!(login.body.get("tokens").is_none(), "{login:?}");
    let reset = t
        .post(
            Endpoint::PasswordResetConfirm,
            json!({ "phone": PHONE, "code": reset_code, "new_password": "a brand new passphrase",
                    "verification_id": reset_asked.body["verification_id"] }),
        )
        .await;
    assert!(matches!(reset.status, 400 | 401), "{reset:?}");
    // The password is still the old one.
    assert_eq!(password_login(&t, PASSWORD).await.status, 200);
}

/// The right password of a disabled account is no guess: its back-off slot is given back, so
/// after the enable the owner logs in with no step-up and no wait (the pair's count stays).
#[tokio::test]
async fn refused_logins_while_disabled_leave_no_back_off_or_step_up() {
    let t = TestApp::with_env(&[
        ("ACCOUNT_MAX_FAILURES", "1"),
        ("ACCOUNT_BACKOFF_AFTER_FAILURES", "1"),
    ])
    .await;
    let (user_id, _, _) = user_with_session(&t).await;
    admin::set_disabled(&t.app, &user_id, true, &operator())
        .await
        .unwrap();
    // From a network the owner never logged in from (no exemption from the wait).
    let ip = "198.51.100.77";
    for _ in 0..2 {
        let refused = t
            .post_from(
                Endpoint::Login,
                json!({ "phone": PHONE, "password": PASSWORD }),
                ip,
            )
            .await;
        assert!(is_disabled(&refused), "{refused:?}");
    }
    let account = t
        .get_item(&t.tables().attempts, "pk", &format!("acct#{PHONE_E164}"))
        .await;
    assert!(
        account
            .as_ref()
            .is_none_or(|item| auth_tests::num(item, "failures") == Some(0)),
        "{account:?}"
    );
    let pair = t
        .get_item(
            &t.tables().attempts,
            "pk",
            &format!("fail#login#{PHONE_E164}#{ip}"),
        )
        .await
        .expect("the pair's failures are counted");
    assert_eq!(auth_tests::num(&pair, "failures"), Some(2));

    admin::set_disabled(&t.app, &user_id, false, &operator())
        .await
        .unwrap();
    let login = t
        .post_from(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
            ip,
        )
        .await;
    assert_eq!(login.status, 200, "{login:?}");
}

/// The audit lines: a refused disabled login is `login_failed` with detail `disabled`; the
/// disable and the enable name the operator's IAM identity.
#[tokio::test]
async fn a_disabled_login_and_the_operators_actions_are_audited() {
    let (logs, _guard) = auth_tests::CapturedLogs::capture_json(tracing::Level::INFO);
    let t = TestApp::new().await;
    let (user_id, _, _) = user_with_session(&t).await;
    admin::set_disabled(&t.app, &user_id, true, &operator())
        .await
        .unwrap();
    assert!(is_disabled(&password_login(&t, PASSWORD).await));
    admin::set_disabled(&t.app, &user_id, false, &operator())
        .await
        .unwrap();

    let events = logs.audit_events();
    let named = |name: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|event| event["event"] == name)
            .cloned()
            .collect()
    };
    let failed = named("login_failed");
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0]["detail"], "disabled");
    assert_eq!(failed[0]["user_id"], user_id.as_str());
    assert_eq!(failed[0]["phone"], "+98910***4567");
    for name in ["account_disabled", "account_enabled"] {
        let actions = named(name);
        assert_eq!(actions.len(), 1, "{name}: {events:?}");
        assert_eq!(actions[0]["operator"], operator().arn.as_str());
        assert_eq!(actions[0]["request_id"], "admin-request");
        assert_eq!(actions[0]["user_id"], user_id.as_str());
        assert_eq!(actions[0]["phone"], "+98910***4567");
    }
    let order: Vec<&str> = events
        .iter()
        .filter_map(|event| event["event"].as_str())
        .filter(|name| ["account_disabled", "login_failed", "account_enabled"].contains(name))
        .collect();
    assert_eq!(
        order,
        ["account_disabled", "login_failed", "account_enabled"]
    );
}

/// Just after a change of number the users index may still name the old number (no account
/// there any more, or another's): the account is found through the credentials item's phone.
#[tokio::test]
async fn an_account_is_found_by_id_right_after_a_change_of_number() {
    const NEW_PHONE: &str = "09121234567";
    const NEW_E164: &str = "+989121234567";
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let access = token(&registered.body["tokens"], "access");
    let requested = t
        .authed(
            Endpoint::PhoneChangeRequest,
            "POST",
            &access,
            Some(json!({ "new_phone": NEW_PHONE, "password": PASSWORD })),
        )
        .await;
    assert_eq!(requested.status, 200, "{requested:?}");
    let code = t.last_code_for(NEW_E164).unwrap();
    let confirmed = t
        .authed(
            Endpoint::PhoneChangeConfirm,
            "POST",
            &access,
            Some(json!({ "new_phone": NEW_PHONE, "code": code })),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");

    // As DynamoDB Local keeps the index: found.
    let found = admin::find_by_id(&t.app, &user_id).await.unwrap();
    assert_eq!(found.profile.phone, NEW_E164);
    // A stale index naming the old number, which holds no account.
    let old = auth_shared::phone::PhoneNumber::parse(PHONE, t.app.config.default_region).unwrap();
    let found = admin::find_by_id_from(&t.app, &user_id, Some(old.clone()))
        .await
        .unwrap();
    assert_eq!(found.profile.id, user_id);
    assert_eq!(found.profile.phone, NEW_E164);
    // The old number registered again by someone else: still this account, not theirs.
    let other = t.registered_user(PHONE, PHONE_E164).await;
    let other_id = other.body["user"]["id"].as_str().unwrap();
    assert_ne!(other_id, user_id);
    let found = admin::find_by_id_from(&t.app, &user_id, Some(old))
        .await
        .unwrap();
    assert_eq!(found.profile.id, user_id);
    assert_eq!(found.profile.phone, NEW_E164);
    // An index that named nothing yet: the same.
    let found = admin::find_by_id_from(&t.app, &user_id, None)
        .await
        .unwrap();
    assert_eq!(found.profile.phone, NEW_E164);
    // An id with no account is still not found.
    let unknown =
        admin::find_by_id_from(&t.app, "00000000-0000-4000-8000-000000000000", None).await;
    assert!(matches!(
        unknown,
        Err(auth_shared::error::AuthError::NotFound(_))
    ));
}
