//! Test support: a fresh set of tables on DynamoDB Local per test, the real handlers called
//! in-process with API Gateway events, and readers for the stored state and the SMS outbox.
//!
//! Needs `AWS_ENDPOINT_URL_DYNAMODB` pointing at DynamoDB Local; `scripts/test` starts one.

pub mod tables;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use auth_shared::config::Config;
use auth_shared::store::Item;
use auth_shared::{App, handlers};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::http::HeaderMap;
use lambda_http::{Body, Request};
use serde_json::{Value, json};

pub const PHONE: &str = "09101234567";
pub const PHONE_E164: &str = "+989101234567";
pub const CLIENT_IP: &str = "203.0.113.7";
pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    CheckPhone,
    Verify,
    Register,
    Login,
    Refresh,
    Logout,
    Profile,
    PasswordChange,
    PasswordResetRequest,
    PasswordResetConfirm,
    Jwks,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Self::CheckPhone => "/auth/check-phone/",
            Self::Verify => "/auth/verify/",
            Self::Register => "/auth/register/",
            Self::Login => "/auth/login/",
            Self::Refresh => "/auth/refresh/",
            Self::Logout => "/auth/logout/",
            Self::Profile => "/auth/profile/",
            Self::PasswordChange => "/auth/password/change/",
            Self::PasswordResetRequest => "/auth/password/reset/request/",
            Self::PasswordResetConfirm => "/auth/password/reset/confirm/",
            Self::Jwks => "/.well-known/jwks.json",
        }
    }

    /// The endpoints that take a JSON body by POST and parse it before anything else.
    pub const JSON_POSTS: [Endpoint; 8] = [
        Self::CheckPhone,
        Self::Verify,
        Self::Register,
        Self::Login,
        Self::Refresh,
        Self::PasswordChange,
        Self::PasswordResetRequest,
        Self::PasswordResetConfirm,
    ];
}

/// What a handler answered.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    /// A 403 lock-out with about an hour to wait, in both the header and the body.
    pub fn assert_blocked_for_an_hour(&self) {
        assert_eq!(self.status, 403, "{:?}", self.body);
        assert_eq!(self.error(), "Too many failed attempts. Try again later.");
        let wait = self.retry_after().expect("Retry-After header");
        assert!((3590..=3600).contains(&wait), "{wait}");
        assert_eq!(self.body["retry_after"], wait);
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }
}

/// A raw request, for the tests that send what clients should not.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    pub method: &'a str,
    pub content_type: Option<&'a str>,
    pub body: Option<&'a str>,
    /// Send `body` base64-encoded, as API Gateway does for binary media.
    pub base64: bool,
    /// Bytes that may not be UTF-8; always sent base64-encoded (overrides `body`).
    pub binary: Option<&'a [u8]>,
    /// An `X-Forwarded-For` header, which clients can set to anything.
    pub forwarded_for: Option<&'a str>,
    /// An access token, sent as `Authorization: Bearer <token>`.
    pub bearer: Option<&'a str>,
    pub source_ip: &'a str,
}

impl Default for RawRequest<'_> {
    fn default() -> Self {
        Self {
            method: "POST",
            content_type: Some("application/json"),
            body: None,
            base64: false,
            binary: None,
            forwarded_for: None,
            bearer: None,
            source_ip: CLIENT_IP,
        }
    }
}

/// An SDK interceptor that lets the first `allowed` DynamoDB operations through and fails every
/// later one, as if DynamoDB became unreachable mid-request. It also counts operations.
#[derive(Debug, Clone, Default)]
pub struct DynamoDbGate {
    seen: Arc<AtomicUsize>,
    allowed: usize,
    /// Time spent inside DynamoDB operations (from the SDK's start to its end), in nanoseconds.
    busy_nanos: Arc<AtomicU64>,
    /// Holds the operation of this index until released (to interleave two requests).
    pause: Option<(usize, Arc<Pause>)>,
}

/// A point where a request waits until the test releases it.
#[derive(Debug, Default)]
pub struct Pause {
    state: Mutex<PauseState>,
    changed: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct PauseState {
    reached: bool,
    released: bool,
}

impl Pause {
    /// Waits (on a blocking thread) until the paused request has reached the pause.
    pub async fn reached(self: &Arc<Self>) {
        let pause = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut state = pause.state.lock().expect("pause state");
            while !state.reached {
                state = pause.changed.wait(state).expect("pause state");
            }
        })
        .await
        .expect("waiting for the pause");
    }

    /// Lets the paused request go on.
    pub fn release(&self) {
        self.state.lock().expect("pause state").released = true;
        self.changed.notify_all();
    }

    fn wait_here(&self) {
        let mut state = self.state.lock().expect("pause state");
        state.reached = true;
        self.changed.notify_all();
        while !state.released {
            state = self.changed.wait(state).expect("pause state");
        }
    }
}

#[derive(Debug, Clone)]
struct OperationStarted(std::time::Instant);

impl Storable for OperationStarted {
    type Storer = StoreReplace<Self>;
}

impl DynamoDbGate {
    pub fn failing_after(allowed: usize) -> Self {
        Self {
            seen: Arc::default(),
            allowed,
            busy_nanos: Arc::default(),
            pause: None,
        }
    }

    /// A gate that holds operation `index` (0 is the first) until the returned pause is
    /// released. The request blocks its runtime thread meanwhile: use a multi-thread runtime.
    pub fn pausing_before(index: usize) -> (Self, Arc<Pause>) {
        let pause = Arc::new(Pause::default());
        let gate = Self {
            pause: Some((index, Arc::clone(&pause))),
            ..Self::counting()
        };
        (gate, pause)
    }

    /// Total time spent in DynamoDB operations through the gate.
    pub fn busy(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.busy_nanos.load(Ordering::SeqCst))
    }

    /// A gate that never fails: it only counts.
    pub fn counting() -> Self {
        Self::failing_after(usize::MAX)
    }

    /// How many operations were attempted through the gate.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Intercept for DynamoDbGate {
    fn name(&self) -> &'static str {
        "DynamoDbGate"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let index = self.seen.fetch_add(1, Ordering::SeqCst);
        if index >= self.allowed {
            return Err("DynamoDB is unreachable (injected by the test)".into());
        }
        if let Some((paused_index, pause)) = &self.pause
            && *paused_index == index
        {
            pause.wait_here();
        }
        cfg.interceptor_state()
            .store_put(OperationStarted(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(OperationStarted(start)) = cfg.load::<OperationStarted>() {
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.busy_nanos.fetch_add(nanos, Ordering::SeqCst);
        }
        Ok(())
    }
}

pub struct TestApp {
    pub app: App,
    pub dynamodb: Client,
    pub outbox: PathBuf,
}

pub fn dynamodb_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with scripts/test")
    })
}

/// The environment every test app starts from; tests override single variables.
pub fn base_env(
    prefix_tables: &[(String, String)],
    outbox: &std::path::Path,
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = prefix_tables.iter().cloned().collect();
    for (name, value) in [
        // The local-only fallbacks: in AWS the functions read these from Secrets Manager.
        (
            "LOCAL_JWT_SIGNING_KEY",
            "test-jwt-signing-key-0123456789abcdef0123456789",
        ),
        (
            "LOCAL_OTP_HMAC_SECRET",
            "test-otp-secret-0123456789abcdef0123456789",
        ),
        ("SMS_PROVIDER", "outbox"),
    ] {
        env.insert(name.to_owned(), value.to_owned());
    }
    env.insert("SMS_OUTBOX_PATH".to_owned(), outbox.display().to_string());
    env
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// A fresh set of tables (random prefix) and an app configured like production but with the
    /// outbox SMS provider and `overrides` applied.
    pub async fn with_env(overrides: &[(&str, &str)]) -> Self {
        let aws = auth_shared::load_aws_config().await;
        let dynamodb = Client::new(&aws);
        let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
        let created = tables::create_all(&dynamodb, &prefix)
            .await
            .expect("create tables on DynamoDB Local");
        let outbox = std::env::temp_dir().join(format!("{prefix}sms-outbox.jsonl"));
        let mut env = base_env(&created, &outbox);
        for (name, value) in overrides {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid test config");
        Self {
            app: App::new(config, &aws).expect("valid keys"),
            dynamodb,
            outbox,
        }
    }

    pub async fn post(&self, endpoint: Endpoint, body: Value) -> TestResponse {
        self.post_from(endpoint, body, CLIENT_IP).await
    }

    pub async fn post_from(&self, endpoint: Endpoint, body: Value, ip: &str) -> TestResponse {
        let body = body.to_string();
        self.send(
            endpoint,
            RawRequest {
                body: Some(&body),
                source_ip: ip,
                ..RawRequest::default()
            },
        )
        .await
    }

    /// Sends an API Gateway (HTTP API, payload 2.0) event through the endpoint's handler.
    pub async fn send(&self, endpoint: Endpoint, raw: RawRequest<'_>) -> TestResponse {
        let request = api_gateway_request(endpoint.path(), &raw);
        let app = &self.app;
        let response = match endpoint {
            Endpoint::CheckPhone => handlers::check_phone(app, request).await,
            Endpoint::Verify => handlers::verify(app, request).await,
            Endpoint::Register => handlers::register(app, request).await,
            Endpoint::Login => handlers::login(app, request).await,
            Endpoint::Refresh => handlers::refresh(app, request).await,
            Endpoint::Logout => handlers::logout(app, request).await,
            Endpoint::Profile => handlers::profile(app, request).await,
            Endpoint::PasswordChange => handlers::password_change(app, request).await,
            Endpoint::PasswordResetRequest => handlers::password_reset_request(app, request).await,
            Endpoint::PasswordResetConfirm => handlers::password_reset_confirm(app, request).await,
            Endpoint::Jwks => handlers::jwks(app, request).await,
        };
        let Ok(response) = response;
        let (parts, body) = response.into_parts();
        let text = match body {
            Body::Text(text) => text,
            Body::Empty => String::new(),
            Body::Binary(bytes) => String::from_utf8(bytes).expect("utf-8 body"),
            _ => String::new(),
        };
        if parts.status.as_u16() == 204 {
            assert!(text.is_empty(), "204 has no body");
            return TestResponse {
                status: 204,
                headers: parts.headers,
                body: Value::Null,
            };
        }
        assert_eq!(
            parts
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "every response with a body is JSON"
        );
        TestResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: serde_json::from_str(&text).expect("response body is JSON"),
        }
    }

    /// `method` on `endpoint` as the holder of `access_token`, with an optional JSON body.
    pub async fn authed(
        &self,
        endpoint: Endpoint,
        method: &str,
        access_token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let body = body.map(|body| body.to_string());
        self.send(
            endpoint,
            RawRequest {
                method,
                body: body.as_deref(),
                bearer: Some(access_token),
                ..RawRequest::default()
            },
        )
        .await
    }

    /// Logs `phone` in with `PASSWORD`; returns the `tokens` object.
    pub async fn login(&self, phone: &str) -> Value {
        let response = self
            .post(
                Endpoint::Login,
                json!({ "phone": phone, "password": PASSWORD }),
            )
            .await;
        assert_eq!(response.status, 200, "{:?}", response.body);
        response.body["tokens"].clone()
    }

    /// The same tables and settings, served through `gate`.
    pub async fn through(&self, gate: &DynamoDbGate) -> TestApp {
        let aws = auth_shared::load_aws_config().await;
        let config = aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(gate.clone())
            .build();
        TestApp {
            app: App::with_dynamodb(self.app.config.clone(), &aws, Client::from_conf(config))
                .expect("valid keys"),
            dynamodb: self.dynamodb.clone(),
            outbox: self.outbox.clone(),
        }
    }

    /// Every SMS written to the outbox, in order.
    pub fn sent_sms(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.outbox)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("outbox line is JSON"))
            .collect()
    }

    /// The code in the last SMS sent to `e164`.
    pub fn last_code_for(&self, e164: &str) -> Option<String> {
        self.sent_sms()
            .iter()
            .rev()
            .find(|sms| sms["to"] == e164)
            .and_then(|sms| code_in(sms["body"].as_str()?))
    }

    pub async fn get_item(&self, table: &str, key: &str, value: &str) -> Option<Item> {
        self.dynamodb
            .get_item()
            .table_name(table)
            .key(key, AttributeValue::S(value.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("get_item")
            .item
    }

    /// The stored code item of `e164` (codes are stored per phone and purpose; this is the one
    /// of whichever purpose the phone has a code for).
    pub async fn otp(&self, e164: &str) -> Option<Item> {
        let prefix = format!("{e164}#");
        let mut codes: Vec<Item> = self
            .scan(&self.app.config.tables.otps)
            .await
            .into_iter()
            .filter(|item| text(item, "phone").is_some_and(|key| key.starts_with(&prefix)))
            .collect();
        assert!(codes.len() <= 1, "{e164} has codes of several purposes");
        codes.pop()
    }

    /// The stored code item of `e164` for `purpose` (`signup`, `password_reset`, `login`).
    pub async fn otp_for(&self, e164: &str, purpose: &str) -> Option<Item> {
        self.get_item(
            &self.app.config.tables.otps,
            "phone",
            &format!("{e164}#{purpose}"),
        )
        .await
    }

    /// The stored account item of `e164`.
    pub async fn user(&self, e164: &str) -> Option<Item> {
        self.get_item(&self.app.config.tables.users, "phone", e164)
            .await
    }

    /// Lets `e164` have a new sign-up code at once, as if the resend cooldown had passed.
    pub async fn end_resend_cooldown(&self, e164: &str) {
        let otps = &self.app.config.tables.otps;
        let key = format!("{e164}#signup");
        self.set_number(otps, "phone", &key, "resend_at", now() - 1)
            .await;
    }

    pub async fn scan(&self, table: &str) -> Vec<Item> {
        self.dynamodb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default()
    }

    pub async fn set_number(
        &self,
        table: &str,
        key: &str,
        value: &str,
        attribute: &str,
        number: u64,
    ) {
        self.dynamodb
            .update_item()
            .table_name(table)
            .key(key, AttributeValue::S(value.to_owned()))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":v", AttributeValue::N(number.to_string()))
            .send()
            .await
            .expect("update_item");
    }

    /// check-phone then verify with the code from the outbox; returns the registration token.
    pub async fn verified_token(&self, phone: &str, e164: &str) -> String {
        let sent = self
            .post(Endpoint::CheckPhone, json!({ "phone": phone }))
            .await;
        assert_eq!(sent.status, 200, "{:?}", sent.body);
        let code = self.last_code_for(e164).expect("an SMS with the code");
        let verified = self
            .post(Endpoint::Verify, json!({ "phone": phone, "code": code }))
            .await;
        assert_eq!(verified.status, 200, "{:?}", verified.body);
        verified.body["registration_token"]
            .as_str()
            .expect("registration token")
            .to_owned()
    }

    /// A full sign-up of `phone` with `PASSWORD`; returns the register response.
    pub async fn registered_user(&self, phone: &str, e164: &str) -> TestResponse {
        let token = self.verified_token(phone, e164).await;
        let response = self.post(Endpoint::Register, register_body(&token)).await;
        assert_eq!(response.status, 201, "{:?}", response.body);
        response
    }

    pub fn tables(&self) -> &auth_shared::config::Tables {
        &self.app.config.tables
    }
}

/// Collects everything logged while it is the writer of a `tracing` subscriber.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

pub fn register_body(token: &str) -> Value {
    json!({
        "registration_token": token,
        "password": PASSWORD,
        "first_name": "Sara",
        "last_name": "Ahmadi",
        "email": "sara@example.com",
    })
}

/// A six-digit code that is not `code`.
pub fn other_code(code: &str) -> String {
    let n: u32 = code.parse().expect("a six-digit code");
    format!("{:06}", (n + 1) % 1_000_000)
}

/// The six-digit code inside an SMS body.
pub fn code_in(body: &str) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_owned)
}

pub fn num(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

pub fn now() -> u64 {
    auth_shared::clock::Clock::default().now()
}

/// The event API Gateway's HTTP API sends to Lambda (payload format 2.0).
pub fn api_gateway_event(path: &str, raw: &RawRequest<'_>) -> Value {
    let mut headers = serde_json::Map::new();
    if let Some(content_type) = raw.content_type {
        headers.insert("content-type".into(), json!(content_type));
    }
    if let Some(token) = raw.bearer {
        headers.insert("authorization".into(), json!(format!("Bearer {token}")));
    }
    if let Some(forwarded_for) = raw.forwarded_for {
        headers.insert("x-forwarded-for".into(), json!(forwarded_for));
    }
    let base64 = raw.base64 || raw.binary.is_some();
    let body = match (raw.binary, raw.body) {
        (Some(bytes), _) => Some(STANDARD.encode(bytes)),
        (None, Some(body)) if raw.base64 => Some(STANDARD.encode(body)),
        (None, body) => body.map(str::to_owned),
    };
    json!({
        "version": "2.0",
        "routeKey": format!("ANY {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": raw.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": raw.source_ip,
                "userAgent": "tests"
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": format!("ANY {path}"),
            "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// The event API Gateway sends, parsed by lambda_http exactly as in production.
pub fn api_gateway_request(path: &str, raw: &RawRequest<'_>) -> Request {
    let event = api_gateway_event(path, raw);
    lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event")
}
