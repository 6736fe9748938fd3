//! The SMS itself: its language (the body's `locale`, else `Accept-Language`, else English), the
//! operator's templates, the autofill lines, the code length, and the budgets of a failed send.

use std::collections::BTreeMap;

use auth_shared::App;
use auth_shared::config::{Config, ConfigError, SmsProviderConfig};
use auth_tests::{
    Endpoint, PASSWORD, PHONE, PHONE_E164, RawRequest, TestApp, TestResponse, base_env,
    code_of_length, num, persian_sign_up, text,
};
use serde_json::{Value, json};

fn english_sign_up(code: &str) -> String {
    format!("Phone Auth: your sign-up code is {code}. It expires in 5 minutes. Do not share it.")
}

async fn post_with_languages(
    t: &TestApp,
    endpoint: Endpoint,
    body: Value,
    languages: &str,
) -> TestResponse {
    let body = body.to_string();
    t.send(
        endpoint,
        RawRequest {
            body: Some(&body),
            accept_language: Some(languages),
            ..RawRequest::default()
        },
    )
    .await
}

/// The last SMS to `e164` and the code in it.
fn last_sms(t: &TestApp, e164: &str) -> (String, String) {
    let body = t.last_sms_to(e164).expect("an SMS");
    let code = code_of_length(&body, t.app.config.otp_length).expect("a code in the SMS");
    (body, code)
}

/// The send counters' hits by scope (`phone`, `ip`, `global`, ...), shards summed.
async fn hits_by_scope(t: &TestApp) -> BTreeMap<String, u64> {
    let mut hits = BTreeMap::new();
    for item in t.scan(&t.tables().attempts).await {
        let Some(key) = text(&item, "pk") else {
            continue;
        };
        let scope = key
            .strip_prefix("send#")
            .and_then(|key| key.split('#').next());
        if let (Some(scope), Some(count)) = (scope, num(&item, "hits")) {
            *hits.entry(scope.to_owned()).or_insert(0) += count;
        }
    }
    hits
}

fn hits(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn the_locale_field_chooses_the_language_and_persian_keeps_the_code_in_ascii_digits() {
    let t = TestApp::new().await;
    let response = t
        .post(
            Endpoint::CheckPhone,
            json!({ "phone": PHONE, "locale": "fa-IR" }),
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);

    let (body, code) = last_sms(&t, PHONE_E164);
    assert_eq!(body, persian_sign_up(&code), "minutes in Persian digits");
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let verified = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
}

#[tokio::test]
async fn accept_language_chooses_the_language_when_the_body_names_none() {
    let t = TestApp::new().await;
    let cases = [
        // (phone, body, Accept-Language, Persian?)
        ("09121234561", json!({}), "de-DE, fa;q=0.8, en;q=0.5", true),
        ("09121234562", json!({}), "de-CH, en;q=0.9, fa;q=0.1", false),
        ("09121234563", json!({}), "fa;q=0, de", false),
        ("09121234564", json!({ "locale": "en" }), "fa-IR", false),
        ("09121234565", json!({ "locale": "fa" }), "en-US", true),
    ];
    for (phone, mut body, languages, persian) in cases {
        body["phone"] = json!(phone);
        let response = post_with_languages(&t, Endpoint::CheckPhone, body, languages).await;
        assert_eq!(response.status, 200, "{languages}: {:?}", response.body);
        let e164 = format!("+98{}", &phone[1..]);
        let (sms, code) = last_sms(&t, &e164);
        let expected = if persian {
            persian_sign_up(&code)
        } else {
            english_sign_up(&code)
        };
        assert_eq!(sms, expected, "{languages}");
    }
}

#[tokio::test]
async fn an_unknown_locale_is_english_and_a_malformed_one_is_refused_before_anything_is_sent() {
    let t = TestApp::new().await;
    let response = t
        .post(
            Endpoint::CheckPhone,
            json!({ "phone": PHONE, "locale": "de-AT" }),
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let (sms, code) = last_sms(&t, PHONE_E164);
    assert_eq!(sms, english_sign_up(&code));

    let other = TestApp::new().await;
    let long = format!("fa{}", "-abcdefgh".repeat(4));
    for locale in ["not a tag", "f", "fa--IR", "۱۲", long.as_str()] {
        for endpoint in [
            Endpoint::CheckPhone,
            Endpoint::PasswordResetRequest,
            Endpoint::LoginOtpRequest,
        ] {
            let response = other
                .post(endpoint, json!({ "phone": PHONE, "locale": locale }))
                .await;
            assert_eq!(response.status, 400, "{locale:?}: {:?}", response.body);
            assert_eq!(
                response.body,
                json!({ "error": "Invalid field 'locale': must be a language tag such as \"fa\" \
                                  or \"fa-IR\" (at most 35 characters)." })
            );
        }
    }
    let login = other
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": PASSWORD, "locale": "??" }),
        )
        .await;
    assert_eq!(login.status, 400, "{:?}", login.body);
    let typed = other
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE, "locale": 5 }))
        .await;
    assert_eq!(typed.status, 400);
    assert!(
        typed.error().starts_with("Invalid field 'locale'"),
        "{}",
        typed.error()
    );

    assert!(other.sent_sms().is_empty());
    assert!(other.scan(&other.tables().otps).await.is_empty());
    assert!(
        other.scan(&other.tables().attempts).await.is_empty(),
        "nothing counted"
    );
}

#[tokio::test]
async fn every_code_sending_endpoint_writes_in_the_requested_language() {
    let t = TestApp::with_env(&[
        ("ACCOUNT_MAX_FAILURES", "1"),
        ("ACCOUNT_BACKOFF_AFTER_FAILURES", "50"),
    ])
    .await;
    t.registered_user(PHONE, PHONE_E164).await;

    let reset = t
        .post(
            Endpoint::PasswordResetRequest,
            json!({ "phone": PHONE, "locale": "fa" }),
        )
        .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    let (sms, code) = last_sms(&t, PHONE_E164);
    assert!(
        sms.starts_with(&format!("Phone Auth: کد بازیابی رمز عبور شما {code} است.")),
        "{sms}"
    );

    let login_code = post_with_languages(
        &t,
        Endpoint::LoginOtpRequest,
        json!({ "phone": PHONE }),
        "fa",
    )
    .await;
    assert_eq!(login_code.status, 200, "{:?}", login_code.body);
    let (sms, code) = last_sms(&t, PHONE_E164);
    assert!(
        sms.starts_with(&format!("Phone Auth: کد ورود شما {code} است.")),
        "{sms}"
    );

    // Step-up: one failed password, then the right one asks for a code by SMS (a login code
    // too, so past the cooldown of the one just sent).
    t.end_resend_cooldown();
    let wrong = t
        .post(
            Endpoint::Login,
            json!({ "phone": PHONE, "password": "not the password" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let sms_before = t.sent_sms().len();
    let stepped_up = post_with_languages(
        &t,
        Endpoint::Login,
        json!({ "phone": PHONE, "password": PASSWORD, "locale": "fa" }),
        "en-GB",
    )
    .await;
    assert_eq!(stepped_up.status, 401, "{:?}", stepped_up.body);
    assert_eq!(stepped_up.body["code_required"], true);
    assert_eq!(t.sent_sms().len(), sms_before + 1);
    let (sms, code) = last_sms(&t, PHONE_E164);
    assert!(
        sms.starts_with(&format!("Phone Auth: کد ورود شما {code} است.")),
        "the body's locale wins over the header: {sms}"
    );
}

#[tokio::test]
async fn operator_templates_override_the_built_in_ones_and_add_languages() {
    let templates = json!({
        "en": { "message": "{service} {purpose}: {code} ({minutes} min)",
                "purposes": { "signup": "welcome" } },
        "de": "{service}: Ihr Code lautet {code}."
    })
    .to_string();
    let t = TestApp::with_env(&[("SMS_TEMPLATES", &templates)]).await;
    let cases = [
        ("09121234561", None, "en"),
        ("09121234562", Some("de-AT"), "de"),
        ("09121234563", Some("fa"), "fa"),
    ];
    for (phone, locale, language) in cases {
        let response = t
            .post(
                Endpoint::CheckPhone,
                json!({ "phone": phone, "locale": locale }),
            )
            .await;
        assert_eq!(response.status, 200, "{:?}", response.body);
        let (sms, code) = last_sms(&t, &format!("+98{}", &phone[1..]));
        let expected = match language {
            "en" => format!("Phone Auth welcome: {code} (5 min)"),
            "de" => format!("Phone Auth: Ihr Code lautet {code}."),
            _ => persian_sign_up(&code),
        };
        assert_eq!(sms, expected);
    }

    // The same from a file, for templates beyond Lambda's 4 KB of environment.
    let path = std::env::temp_dir().join(format!("{}-templates.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        r#"{"fa": {"message": "کد {code} ({minutes} دقیقه)"}}"#,
    )
    .unwrap();
    let from_file = TestApp::with_env(&[("SMS_TEMPLATES_FILE", path.to_str().unwrap())]).await;
    from_file
        .post(
            Endpoint::CheckPhone,
            json!({ "phone": PHONE, "locale": "fa" }),
        )
        .await;
    let (sms, code) = last_sms(&from_file, PHONE_E164);
    assert_eq!(sms, format!("کد {code} (۵ دقیقه)"));
    std::fs::remove_file(path).ok();
}

#[tokio::test]
async fn the_android_hash_and_then_the_webotp_line_end_every_code_sms() {
    let t = TestApp::with_env(&[
        ("WEBOTP_DOMAIN", "Auth.Example.com"),
        ("ANDROID_APP_HASH", "FA+9qCX9VSu"),
    ])
    .await;
    t.post(
        Endpoint::CheckPhone,
        json!({ "phone": PHONE, "locale": "fa" }),
    )
    .await;
    let sms = t.last_sms_to(PHONE_E164).unwrap();
    let lines: Vec<&str> = sms.lines().collect();
    assert_eq!(lines.len(), 3, "{sms}");
    let code = lines[2]
        .strip_prefix("@auth.example.com #")
        .expect("the WebOTP line is last");
    assert_eq!(lines[0], persian_sign_up(code));
    assert_eq!(lines[1], "FA+9qCX9VSu");

    let verified = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
}

#[tokio::test]
async fn four_digit_codes_are_sent_and_only_four_digits_are_taken() {
    let t = TestApp::with_env(&[
        ("OTP_LENGTH", "4"),
        ("TEST_OTP_NUMBERS", "+15555550100=0420"),
    ])
    .await;
    let response = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(response.status, 200);
    let (sms, code) = last_sms(&t, PHONE_E164);
    assert_eq!(code.len(), 4);
    assert_eq!(sms, english_sign_up(&code));

    for wrong_length in [
        format!("{code}00"),
        code[..3].to_owned(),
        "12345".to_owned(),
    ] {
        let refused = t
            .post(
                Endpoint::Verify,
                json!({ "phone": PHONE, "code": wrong_length }),
            )
            .await;
        assert_eq!(refused.status, 400);
        assert_eq!(
            refused.body,
            json!({ "error": "Invalid field 'code': must be 4 digits." })
        );
    }
    assert!(
        t.anonymous_guesses(PHONE_E164, "signup").await.is_none(),
        "not a guess"
    );

    let verified = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);

    // A configured test number has a code of the same length.
    let test_number = t
        .post(Endpoint::CheckPhone, json!({ "phone": "+15555550100" }))
        .await;
    assert_eq!(test_number.status, 200, "{:?}", test_number.body);
    let verified = t
        .post(
            Endpoint::Verify,
            json!({ "phone": "+15555550100", "code": "0420" }),
        )
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
}

#[tokio::test]
async fn ten_digit_codes_work_for_reset_and_login_by_code() {
    let t = TestApp::with_env(&[("OTP_LENGTH", "10")]).await;
    t.registered_user(PHONE, PHONE_E164).await;

    t.post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
        .await;
    let (_, code) = last_sms(&t, PHONE_E164);
    assert_eq!(code.len(), 10);
    let short = t
        .post(
            Endpoint::PasswordResetConfirm,
            json!({ "phone": PHONE, "code": &code[..6], "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(short.status, 400);
    assert_eq!(short.error(), "Invalid field 'code': must be 10 digits.");
    let reset = t
        .post(
            Endpoint::PasswordResetConfirm,
            json!({ "phone": PHONE, "code": code, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(reset.status, 204, "{:?}", reset.body);

    t.post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
        .await;
    let (_, code) = last_sms(&t, PHONE_E164);
    assert_eq!(code.len(), 10);
    let long = t
        .post(
            Endpoint::LoginOtp,
            json!({ "phone": PHONE, "code": format!("{code}1") }),
        )
        .await;
    assert_eq!(long.status, 400);
    assert_eq!(long.error(), "Invalid field 'code': must be 10 digits.");
    let logged_in = t
        .post(Endpoint::LoginOtp, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(logged_in.status, 200, "{:?}", logged_in.body);
}

#[tokio::test]
async fn bad_sms_settings_stop_the_start_naming_the_variable() {
    let outbox = std::env::temp_dir().join("unused-outbox.jsonl");
    let tables: Vec<(String, String)> = auth_shared::settings::table_variables()
        .map(|name| (name.to_owned(), "t".to_owned()))
        .collect();
    let start = |settings: &[(&str, &str)]| {
        let mut env = base_env(&tables, &outbox);
        for (name, value) in settings {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        Config::from_lookup(|name| env.get(name).cloned())
    };
    for (settings, variable) in [
        (&[("OTP_LENGTH", "3")][..], "OTP_LENGTH"),
        (&[("OTP_LENGTH", "11")], "OTP_LENGTH"),
        (
            &[
                ("OTP_LENGTH", "8"),
                ("TEST_OTP_NUMBERS", "+15555550100=123456"),
            ],
            "TEST_OTP_NUMBERS",
        ),
        (
            &[("SMS_TEMPLATES", r#"{"en": "Your code"}"#)],
            "SMS_TEMPLATES",
        ),
        (
            &[("SMS_TEMPLATES", r#"{"en": "{code} {expiry}"}"#)],
            "SMS_TEMPLATES",
        ),
        (
            &[("SMS_TEMPLATES_FILE", "/no/such/file.json")],
            "SMS_TEMPLATES_FILE",
        ),
        (
            &[("WEBOTP_DOMAIN", "https://auth.example.com/")],
            "WEBOTP_DOMAIN",
        ),
        (&[("ANDROID_APP_HASH", "FA+9qCX9VS")], "ANDROID_APP_HASH"),
        (&[("SMS_PROVIDER", "carrier-pigeon")], "SMS_PROVIDER"),
    ] {
        match start(settings) {
            Err(ConfigError::Invalid { name, .. }) => assert_eq!(name, variable, "{settings:?}"),
            other => panic!("{settings:?}: expected {variable} refused, got {other:?}"),
        }
    }
    assert!(matches!(
        start(&[("SMS_PROVIDER", "lambda")]),
        Err(ConfigError::Missing("SMS_HOOK_FUNCTION"))
    ));
}

#[tokio::test]
async fn a_failed_send_gives_back_the_phones_budgets_but_not_the_networks_or_the_spend_caps() {
    let t = TestApp::with_env(&[("SMS_OUTBOX_PATH", "/proc/no-such-dir/outbox.jsonl")]).await;
    let failed = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(failed.status, 503);
    assert!(t.scan(&t.tables().otps).await.is_empty());
    assert_eq!(
        hits_by_scope(&t).await,
        hits(&[
            ("country", 1),
            ("global", 1),
            ("ip", 1),
            ("lookup", 1),
            ("phone", 0),
            ("phone-day", 0),
            ("phone-net", 0),
            ("range", 1),
        ])
    );

    // The provider is back (same tables and clock): the retry counts once for the caller.
    let mut config = t.app.config.clone();
    config.sms = SmsProviderConfig::Outbox {
        path: t.outbox.clone(),
    };
    let aws = auth_shared::load_aws_config().await;
    let working = TestApp::from_app(
        App::with_dynamodb(config, &aws, t.dynamodb.clone())
            .unwrap()
            .with_clock(t.app.clock.clone()),
        t.dynamodb.clone(),
        t.outbox.clone(),
    );
    let sent = working
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(sent.status, 200, "no cooldown from the failed send");
    assert_eq!(
        hits_by_scope(&t).await,
        hits(&[
            ("country", 2),
            ("global", 2),
            ("ip", 2),
            ("lookup", 2),
            ("phone", 1),
            ("phone-day", 1),
            ("phone-net", 1),
            ("range", 2),
        ])
    );
}
