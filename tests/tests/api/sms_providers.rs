//! The SMS providers that call AWS, against local stubs of their APIs: the operator's Lambda
//! function (Lambda `Invoke`, REST) and AWS End User Messaging SMS (`SendTextMessage`,
//! awsJson1_0). A failure is 503, leaves no usable code and counts the caller's budgets once; no
//! call is retried, and one that times out keeps its code, counted and usable.

use std::collections::BTreeSet;

use auth_tests::{
    CapturedLogs, Endpoint, HttpStub, PASSWORD, PHONE, PHONE_E164, RawRequest, StubAnswer,
    StubRequest, TestApp, code_of_length, num, persian_sign_up, register_body, text,
};
use serde_json::{Value, json};

const HOOK: &[(&str, &str)] = &[
    ("SMS_PROVIDER", "lambda"),
    ("SMS_HOOK_FUNCTION", "sms-hook"),
];

const AWS_JSON_1_0: &str = "application/x-amz-json-1.0";

/// What Lambda answers for a function that returned normally.
fn hook_returned() -> StubAnswer {
    StubAnswer::json(200, "application/json", &json!({ "sent": true }))
        .with_header("x-amz-executed-version", "$LATEST")
}

/// What Lambda answers for a function that raised an error: still HTTP 200.
fn hook_raised() -> StubAnswer {
    StubAnswer::json(
        200,
        "application/json",
        &json!({ "errorMessage": "gateway down", "errorType": "Error" }),
    )
    .with_header("x-amz-function-error", "Unhandled")
    .with_header("x-amz-executed-version", "$LATEST")
}

/// Lambda itself failing.
fn lambda_failed() -> StubAnswer {
    StubAnswer::json(
        500,
        "application/json",
        &json!({ "Type": "Service", "message": "internal failure" }),
    )
    .with_header("x-amzn-errortype", "ServiceException")
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// The send counters of `scope` (`phone`, `ip`, `global`, ...): the sum of their hits.
async fn hits(t: &TestApp, scope: &str) -> u64 {
    let prefix = format!("send#{scope}#");
    t.scan(&t.tables().attempts)
        .await
        .iter()
        .filter(|item| text(item, "pk").is_some_and(|pk| pk.starts_with(&prefix)))
        .filter_map(|item| num(item, "hits"))
        .sum()
}

fn assert_unavailable(response: &auth_tests::TestResponse) {
    assert_eq!(response.status, 503, "{:?}", response.body);
    assert_eq!(
        response.body,
        json!({ "error": "Service temporarily unavailable. Try again shortly.", "retry_after": 1 })
    );
    assert_eq!(response.retry_after(), Some(1));
}

#[tokio::test]
async fn the_lambda_provider_hands_the_message_and_the_code_to_the_hook_function() {
    let stub = HttpStub::start(hook_returned()).await;
    let t = TestApp::with_sms_endpoint(HOOK, &stub.endpoint).await;
    let response = t
        .post(
            Endpoint::CheckPhone,
            json!({ "phone": PHONE, "locale": "fa-IR" }),
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let invoke = &requests[0];
    assert_eq!(invoke.method, "POST");
    assert_eq!(invoke.path, "/2015-03-31/functions/sms-hook/invocations");
    assert_eq!(
        invoke.header("x-amz-invocation-type"),
        Some("RequestResponse")
    );
    let payload = invoke.json();
    assert_eq!(
        keys(&payload),
        BTreeSet::from(["to", "body", "code", "purpose", "locale"])
    );
    let code = payload["code"].as_str().unwrap();
    assert_eq!(payload["to"], PHONE_E164);
    assert_eq!(payload["purpose"], "signup");
    assert_eq!(payload["locale"], "fa");
    assert_eq!(payload["body"], persian_sign_up(code));
    assert!(t.sent_sms().is_empty(), "the outbox is not used");

    let verified = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
}

#[tokio::test]
async fn a_failing_hook_is_503_leaves_no_code_and_counts_the_callers_budgets_once() {
    let stub = HttpStub::start(hook_raised()).await;
    let t = TestApp::with_sms_endpoint(HOOK, &stub.endpoint).await;

    let raised = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_unavailable(&raised);
    assert_eq!(
        stub.requests().len(),
        1,
        "a failed invocation is not retried"
    );
    assert!(t.scan(&t.tables().otps).await.is_empty(), "no usable code");

    stub.answer_with(lambda_failed());
    let failed = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_unavailable(&failed);
    assert_eq!(
        stub.requests().len(),
        2,
        "a failed invocation is not retried"
    );
    assert!(t.scan(&t.tables().otps).await.is_empty(), "no usable code");
    for scope in ["phone", "phone-day"] {
        assert_eq!(hits(&t, scope).await, 0, "{scope}: refunded");
    }
    for scope in ["ip", "country", "global"] {
        assert_eq!(
            hits(&t, scope).await,
            2,
            "{scope}: the network and the spend caps keep them"
        );
    }

    // The hook works again: no cooldown, and the caller's budgets count this one send.
    stub.answer_with(hook_returned());
    let sent = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    for scope in ["phone", "phone-day"] {
        assert_eq!(hits(&t, scope).await, 1, "{scope}");
    }
    assert_eq!(
        hits(&t, "ip").await,
        3,
        "every request counts for the network"
    );
    let code = stub.requests()[2].json()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let verified = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
}

#[tokio::test]
async fn the_hook_gets_the_code_but_no_log_line_does_even_at_trace() {
    let (logs, _guard) = CapturedLogs::capture_text(tracing::Level::TRACE);

    let stub = HttpStub::start(hook_returned()).await;
    let t = TestApp::with_sms_endpoint(HOOK, &stub.endpoint).await;
    let sent = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_eq!(sent.status, 200);
    stub.answer_with(hook_raised());
    let failed = t
        .post(Endpoint::CheckPhone, json!({ "phone": "09121234567" }))
        .await;
    assert_eq!(failed.status, 503);

    let text = logs.text();
    assert!(text.contains("sms sent"), "the logs were captured");
    for request in stub.requests() {
        let code = request.json()["code"].as_str().unwrap().to_owned();
        let in_logs = text
            .split(|c: char| !c.is_ascii_digit())
            .any(|run| run == code);
        assert!(!in_logs, "the code {code} is in the logs");
    }
}

#[tokio::test]
async fn the_end_user_messaging_provider_sends_a_transactional_text() {
    let stub = HttpStub::start(StubAnswer::json(
        200,
        AWS_JSON_1_0,
        &json!({ "MessageId": "0123456789abcdef" }),
    ))
    .await;
    let t = TestApp::with_sms_endpoint(
        &[
            ("SMS_PROVIDER", "end-user-messaging"),
            ("SMS_ORIGINATION_IDENTITY", "pool-0123456789abcdef"),
            ("SMS_CONFIGURATION_SET", "otp-configuration"),
            ("WEBOTP_DOMAIN", "auth.example.com"),
            ("OTP_LENGTH", "8"),
        ],
        &stub.endpoint,
    )
    .await;
    let body = json!({ "phone": PHONE }).to_string();
    let response = t
        .send(
            Endpoint::CheckPhone,
            RawRequest {
                body: Some(&body),
                accept_language: Some("en-GB,en;q=0.9"),
                ..RawRequest::default()
            },
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let send = &requests[0];
    assert_eq!(send.method, "POST");
    assert_eq!(send.path, "/");
    assert_eq!(
        send.header("x-amz-target"),
        Some("PinpointSMSVoiceV2.SendTextMessage")
    );
    let input = send.json();
    assert_eq!(
        keys(&input),
        BTreeSet::from([
            "DestinationPhoneNumber",
            "MessageBody",
            "MessageType",
            "OriginationIdentity",
            "ConfigurationSetName",
            "MessageFeedbackEnabled",
        ])
    );
    assert_eq!(input["DestinationPhoneNumber"], PHONE_E164);
    assert_eq!(
        input["MessageFeedbackEnabled"], true,
        "the SMS breaker counts conversions (observe by default): the provider waits for word"
    );
    assert_eq!(input["MessageType"], "TRANSACTIONAL");
    assert_eq!(input["OriginationIdentity"], "pool-0123456789abcdef");
    assert_eq!(input["ConfigurationSetName"], "otp-configuration");
    let message = input["MessageBody"].as_str().unwrap();
    let code = code_of_length(message, 8).expect("an eight-digit code");
    assert_eq!(
        message,
        format!(
            "Phone Auth: your sign-up code is {code}. It expires in 5 minutes. Do not share \
             it.\n@auth.example.com #{code}"
        )
    );

    let codes = t.codes_for(PHONE_E164, "signup").await;
    assert_eq!(codes.len(), 1);
    assert_eq!(
        text(&codes[0], "message_id"),
        Some("0123456789abcdef"),
        "the code knows its SMS"
    );
    let before_verify = t.attempts_stream_records().await;
    t.run_sms_breaker(before_verify).await;
    assert_eq!(
        stub.requests().len(),
        1,
        "no feedback before the code is entered"
    );

    let verified = t
        .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    let notes: Vec<_> = t
        .scan(&t.tables().attempts)
        .await
        .into_iter()
        .filter(|item| text(item, "pk") == Some("feedback#0123456789abcdef"))
        .collect();
    assert_eq!(notes.len(), 1, "the spend notes the entry for the provider");

    // The breaker's function, on the stream, tells End User Messaging (not the verify path).
    stub.answer_with(StubAnswer::json(
        200,
        AWS_JSON_1_0,
        &json!({ "MessageId": "0123456789abcdef", "MessageFeedbackStatus": "RECEIVED" }),
    ));
    let after_verify = t.attempts_stream_records().await;
    t.run_sms_breaker(after_verify).await;
    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "one feedback, for the one entered code");
    assert_eq!(
        requests[1].header("x-amz-target"),
        Some("PinpointSMSVoiceV2.PutMessageFeedback")
    );
    assert_eq!(
        requests[1].json(),
        json!({ "MessageId": "0123456789abcdef", "MessageFeedbackStatus": "RECEIVED" })
    );
}

#[tokio::test]
async fn an_end_user_messaging_refusal_is_503_and_leaves_no_code() {
    let stub = HttpStub::start(StubAnswer::json(
        400,
        AWS_JSON_1_0,
        &json!({ "__type": "ValidationException", "Message": "Destination is opted out",
                 "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT" }),
    ))
    .await;
    let t =
        TestApp::with_sms_endpoint(&[("SMS_PROVIDER", "end-user-messaging")], &stub.endpoint).await;
    let refused = t
        .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
        .await;
    assert_unavailable(&refused);

    let requests = stub.requests();
    assert_eq!(requests.len(), 1, "a refusal is not retried");
    let input = requests[0].json();
    assert_eq!(
        keys(&input),
        BTreeSet::from([
            "DestinationPhoneNumber",
            "MessageBody",
            "MessageType",
            "MessageFeedbackEnabled",
        ]),
        "no origination identity or configuration set unless configured"
    );
    assert!(t.scan(&t.tables().otps).await.is_empty(), "no usable code");
    assert_eq!(hits(&t, "phone").await, 0, "refunded");
    assert_eq!(hits(&t, "global").await, 1);
}

/// What SNS answers a `Publish` (awsQuery: XML).
fn sns_published() -> StubAnswer {
    StubAnswer {
        status: 200,
        headers: vec![("content-type", "text/xml")],
        body: "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>\
               <MessageId>0123456789abcdef</MessageId></PublishResult><ResponseMetadata>\
               <RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>"
            .to_owned(),
    }
}

/// SNS refusing a `Publish` (a client error: not retried).
fn sns_refused() -> StubAnswer {
    StubAnswer {
        status: 400,
        headers: vec![("content-type", "text/xml")],
        body: "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error>\
               <Type>Sender</Type><Code>InvalidParameter</Code><Message>Invalid parameter: \
               PhoneNumber</Message></Error><RequestId>r-2</RequestId></ErrorResponse>"
            .to_owned(),
    }
}

fn end_user_messaging_sent() -> StubAnswer {
    StubAnswer::json(
        200,
        AWS_JSON_1_0,
        &json!({ "MessageId": "0123456789abcdef" }),
    )
}

fn end_user_messaging_refused() -> StubAnswer {
    StubAnswer::json(
        400,
        AWS_JSON_1_0,
        &json!({ "__type": "ValidationException", "Message": "Destination is opted out" }),
    )
}

/// A provider as a test configures it: its settings, how its API answers a send and a
/// refusal, and how to recognise its request.
struct Provider {
    settings: &'static [(&'static str, &'static str)],
    sent: fn() -> StubAnswer,
    refused: fn() -> StubAnswer,
    is_send: fn(&StubRequest) -> bool,
}

const NEW_PHONE: &str = "09351234567";

/// A request body with its `%XX` escapes (SNS's form encoding) decoded.
fn percent_decoded(body: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = tail
            .get(..2)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) if byte == b'%' => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn every_sending_function_sends_through_every_provider_and_a_refused_send_leaves_no_code() {
    let providers = [
        Provider {
            settings: &[("SMS_PROVIDER", "sns")],
            sent: sns_published,
            refused: sns_refused,
            is_send: |r| String::from_utf8_lossy(&r.body).contains("Action=Publish"),
        },
        Provider {
            settings: HOOK,
            sent: hook_returned,
            refused: hook_raised,
            is_send: |r| r.path == "/2015-03-31/functions/sms-hook/invocations",
        },
        Provider {
            settings: &[
                ("SMS_PROVIDER", "end-user-messaging"),
                ("SMS_ORIGINATION_IDENTITY", "pool-0123456789abcdef"),
                ("SMS_CONFIGURATION_SET", "otp-configuration"),
            ],
            sent: end_user_messaging_sent,
            refused: end_user_messaging_refused,
            is_send: |r| r.header("x-amz-target") == Some("PinpointSMSVoiceV2.SendTextMessage"),
        },
        Provider {
            settings: &[("SMS_PROVIDER", "end-user-messaging")],
            sent: end_user_messaging_sent,
            refused: end_user_messaging_refused,
            is_send: |r| r.header("x-amz-target") == Some("PinpointSMSVoiceV2.SendTextMessage"),
        },
    ];
    for provider in providers {
        let stub = HttpStub::start((provider.sent)()).await;
        let mut settings = provider.settings.to_vec();
        // One failed password starts the step-up; the sends of one test fit the caps.
        settings.extend([
            ("ACCOUNT_MAX_FAILURES", "1"),
            ("LOCKOUT_MAX_FAILURES", "10"),
            ("OTP_SENDS_PER_IP", "100"),
        ]);
        let t = TestApp::with_sms_endpoint(&settings, &stub.endpoint).await;
        let name = provider.settings[provider.settings.len() - 1].1;
        let sends = || stub.requests().into_iter().filter(provider.is_send).count();

        let signed_up = t
            .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
            .await;
        assert_eq!(signed_up.status, 200, "{name}: {:?}", signed_up.body);
        assert_eq!(sends(), 1, "{name}: check-phone sent");
        let request = stub.requests().pop().unwrap();
        let code = code_of_length(&percent_decoded(&request.body), 6).unwrap();
        let verified = t
            .post(Endpoint::Verify, json!({ "phone": PHONE, "code": code }))
            .await;
        assert_eq!(verified.status, 200, "{name}: {:?}", verified.body);
        let token = verified.body["registration_token"].as_str().unwrap();
        let registered = t.post(Endpoint::Register, register_body(token)).await;
        assert_eq!(registered.status, 201, "{name}: {:?}", registered.body);
        let access = registered.body["tokens"]["access"]
            .as_str()
            .unwrap()
            .to_owned();

        // Each sending function, once with the provider answering and once refusing.
        let kinds = [
            (PHONE_E164, "login"),
            (PHONE_E164, "password_reset"),
            ("+989351234567", "phone_change"),
        ];
        for (answer, expected_status) in [(provider.sent, 200), (provider.refused, 503)] {
            stub.answer_with(answer());
            let before = sends();
            let mut codes_before = Vec::new();
            for (e164, purpose) in kinds {
                codes_before.push(t.codes_for(e164, purpose).await.len());
            }
            t.end_resend_cooldown();
            let login_code = t
                .post(Endpoint::LoginOtpRequest, json!({ "phone": PHONE }))
                .await;
            t.end_resend_cooldown();
            let reset = t
                .post(Endpoint::PasswordResetRequest, json!({ "phone": PHONE }))
                .await;
            t.end_resend_cooldown();
            let wrong = t
                .post(
                    Endpoint::Login,
                    json!({ "phone": PHONE, "password": "not the password" }),
                )
                .await;
            assert_eq!(wrong.status, 401, "{name}: {:?}", wrong.body);
            let step_up = t
                .post(
                    Endpoint::Login,
                    json!({ "phone": PHONE, "password": PASSWORD }),
                )
                .await;
            let change = t
                .authed(
                    Endpoint::PhoneChangeRequest,
                    "POST",
                    &access,
                    Some(json!({ "new_phone": NEW_PHONE, "password": PASSWORD })),
                )
                .await;
            let step_up_status = if expected_status == 200 { 401 } else { 503 };
            for (what, response, status) in [
                ("login-otp-request", &login_code, expected_status),
                ("password-reset-request", &reset, expected_status),
                ("login step-up", &step_up, step_up_status),
                ("phone-change-request", &change, expected_status),
            ] {
                assert_eq!(
                    response.status, status,
                    "{name} {what}: {:?}",
                    response.body
                );
            }
            assert_eq!(sends(), before + 4, "{name}: one send per function");
            if expected_status == 503 {
                for ((e164, purpose), before) in kinds.into_iter().zip(codes_before) {
                    assert_eq!(
                        t.codes_for(e164, purpose).await.len(),
                        before,
                        "{name}: an unsent {purpose} code is deleted"
                    );
                }
            }
        }

        // A completed change of number tells the old number, through the same provider.
        stub.answer_with((provider.sent)());
        t.end_resend_cooldown();
        let change = json!({ "new_phone": NEW_PHONE, "password": PASSWORD });
        let requested = t
            .authed(Endpoint::PhoneChangeRequest, "POST", &access, Some(change))
            .await;
        assert_eq!(requested.status, 200, "{name}: {:?}", requested.body);
        let request = stub.requests().pop().unwrap();
        let code = code_of_length(&percent_decoded(&request.body), 6).unwrap();
        let before = sends();
        let confirm = json!({
            "new_phone": NEW_PHONE, "code": code,
            "verification_id": requested.body["verification_id"],
        });
        let moved = t
            .authed(Endpoint::PhoneChangeConfirm, "POST", &access, Some(confirm))
            .await;
        assert_eq!(moved.status, 200, "{name}: {:?}", moved.body);
        assert_eq!(sends(), before + 1, "{name}: the notice");
        let notice = percent_decoded(&stub.requests().pop().unwrap().body);
        assert!(notice.contains("was changed to"), "{name}: {notice}");
        assert!(
            notice.contains("9101234567"),
            "{name}: to the old number: {notice}"
        );
    }
}

/// SNS failing on its side (a server error, which the SDK's standard mode would retry).
fn sns_failed() -> StubAnswer {
    StubAnswer {
        status: 500,
        headers: vec![("content-type", "text/xml")],
        body: "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error>\
               <Type>Receiver</Type><Code>InternalError</Code><Message>Internal failure\
               </Message></Error><RequestId>r-3</RequestId></ErrorResponse>"
            .to_owned(),
    }
}

fn end_user_messaging_failed() -> StubAnswer {
    StubAnswer::json(
        500,
        AWS_JSON_1_0,
        &json!({ "__type": "InternalServerException", "Message": "internal failure" }),
    )
}

/// The three AWS providers, each with the answer of a send that worked.
fn aws_providers() -> [Provider; 3] {
    [
        Provider {
            settings: &[("SMS_PROVIDER", "sns")],
            sent: sns_published,
            refused: sns_failed,
            is_send: |r| String::from_utf8_lossy(&r.body).contains("Action=Publish"),
        },
        Provider {
            settings: HOOK,
            sent: hook_returned,
            refused: lambda_failed,
            is_send: |r| r.path == "/2015-03-31/functions/sms-hook/invocations",
        },
        Provider {
            settings: &[("SMS_PROVIDER", "end-user-messaging")],
            sent: end_user_messaging_sent,
            refused: end_user_messaging_failed,
            is_send: |r| r.header("x-amz-target") == Some("PinpointSMSVoiceV2.SendTextMessage"),
        },
    ]
}

/// The code in the one send `stub` received.
fn the_one_code_sent(stub: &HttpStub, provider: &Provider, name: &str) -> String {
    let sends: Vec<StubRequest> = stub
        .requests()
        .into_iter()
        .filter(provider.is_send)
        .collect();
    assert_eq!(sends.len(), 1, "{name}: exactly one call to the provider");
    code_of_length(&percent_decoded(&sends[0].body), 6).expect("a code in the send")
}

#[tokio::test]
async fn a_provider_answering_after_1_5_s_is_called_once_and_its_code_works() {
    for provider in aws_providers() {
        let name = provider.settings[provider.settings.len() - 1].1;
        let stub = HttpStub::start((provider.sent)()).await;
        stub.delay_answers(std::time::Duration::from_millis(1500));
        let t = TestApp::with_sms_endpoint(provider.settings, &stub.endpoint).await;

        let sent = t
            .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
            .await;
        assert_eq!(sent.status, 200, "{name}: {:?}", sent.body);
        let code = the_one_code_sent(&stub, &provider, name);
        let verification_id = sent.body["verification_id"].as_str().unwrap();
        let verified = t
            .post(
                Endpoint::Verify,
                json!({ "phone": PHONE, "code": code, "verification_id": verification_id }),
            )
            .await;
        assert_eq!(verified.status, 200, "{name}: {:?}", verified.body);
    }
}

#[tokio::test]
async fn a_send_that_times_out_is_not_retried_and_keeps_its_code_counted_and_usable() {
    let (logs, _guard) = CapturedLogs::capture_json(tracing::Level::INFO);
    for provider in aws_providers() {
        let name = provider.settings[provider.settings.len() - 1].1;
        let stub = HttpStub::start((provider.sent)()).await;
        // Longer than the 1 s the test configures: the outcome is unknown.
        stub.delay_answers(std::time::Duration::from_secs(3));
        let mut settings = provider.settings.to_vec();
        settings.push(("SMS_TIMEOUT_SECONDS", "1"));
        let t = TestApp::with_sms_endpoint(&settings, &stub.endpoint).await;

        let started = std::time::Instant::now();
        let sent = t
            .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
            .await;
        assert!(
            started.elapsed() < std::time::Duration::from_millis(2500),
            "{name}: the call gave up after its timeout"
        );
        assert_eq!(
            sent.status, 200,
            "{name}: answered as sent: {:?}",
            sent.body
        );
        let verification_id = sent.body["verification_id"].as_str().unwrap().to_owned();
        let code = the_one_code_sent(&stub, &provider, name);
        assert!(
            t.otp_for(PHONE_E164, "signup").await.is_some(),
            "{name}: the code stays stored"
        );
        for scope in ["phone", "phone-day", "ip", "global"] {
            assert_eq!(
                hits(&t, scope).await,
                1,
                "{name} {scope}: the send stays counted"
            );
        }
        let again = t
            .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
            .await;
        assert_eq!(
            again.status, 429,
            "{name}: the cooldown holds: {:?}",
            again.body
        );

        let verified = t
            .post(
                Endpoint::Verify,
                json!({ "phone": PHONE, "code": code, "verification_id": verification_id }),
            )
            .await;
        assert_eq!(verified.status, 200, "{name}: {:?}", verified.body);
    }
    let uncertain: Vec<_> = logs
        .audit_events()
        .into_iter()
        .filter(|event| event["event"] == "sms_send_uncertain")
        .collect();
    assert_eq!(uncertain.len(), 3, "one audit event per unconfirmed send");
    assert_eq!(uncertain[0]["detail"], "signup");
    assert_eq!(uncertain[0]["phone"], "+98910***4567");
}

#[tokio::test]
async fn a_provider_failing_with_500_is_called_once_and_the_send_taken_back() {
    for provider in aws_providers() {
        let name = provider.settings[provider.settings.len() - 1].1;
        let stub = HttpStub::start((provider.refused)()).await;
        let t = TestApp::with_sms_endpoint(provider.settings, &stub.endpoint).await;

        let failed = t
            .post(Endpoint::CheckPhone, json!({ "phone": PHONE }))
            .await;
        assert_unavailable(&failed);
        the_one_code_sent(&stub, &provider, name);
        assert!(
            t.scan(&t.tables().otps).await.is_empty(),
            "{name}: no usable code"
        );
        for scope in ["phone", "phone-day"] {
            assert_eq!(hits(&t, scope).await, 0, "{name} {scope}: refunded");
        }
        assert_eq!(hits(&t, "global").await, 1, "{name}: spend stays counted");
    }
}
