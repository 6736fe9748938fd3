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
    }
}

const DISABLED: &str = "This account is disabled.";

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
    // No login or reset code goes to it; the answers are those of a number without an account.
    for endpoint in [Endpoint::LoginOtpRequest, Endpoint::PasswordResetRequest] {
        let asked = t.post(endpoint, json!({ "phone": PHONE })).await;
        assert_eq!(asked.status, 200, "{asked:?}");
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
/// account before the disable cannot start a session after it).
#[tokio::test]
async fn no_login_racing_the_disable_keeps_a_working_session() {
    let t = TestApp::new().await;
    let (user_id, _, _) = user_with_session(&t).await;
    // From eight networks, so that no pair's limit decides.
    let ips: Vec<String> = (0..8).map(|i| format!("198.51.100.{}", i + 10)).collect();
    let logins = ips.iter().map(|ip| {
        t.post_from(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD }),
            ip,
        )
    });
    let operator = operator();
    let disable = admin::set_disabled(&t.app, &user_id, true, &operator);
    let (answers, disabled) = tokio::join!(futures::future::join_all(logins), disable);
    disabled.unwrap();
    let tokens: Vec<String> = answers
        .iter()
        .filter(|answer| answer.status == 200)
        .map(|answer| answer.body["tokens"]["access"].as_str().unwrap().to_owned())
        .collect();
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
