//! `TestApp`: the real handlers on a fresh set of tables, and readers for the stored state and
//! the SMS outbox.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use auth_shared::cognito::CognitoMigration;
use auth_shared::config::{AsymmetricKeySource, Config, SmsProviderConfig};
use auth_shared::jwt_keys::AsymmetricKeys;
use auth_shared::secrets::AppSecrets;
use auth_shared::sms::SmsSender;
use auth_shared::store::Item;
use auth_shared::token_hook::TokenHook;
use auth_shared::{App, handlers};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::Body;
use serde_json::{Value, json};

use crate::calls::{self, CallContext, CallRecorder, Phase};
use crate::{
    CLIENT_IP, DynamoDbGate, Endpoint, PASSWORD, RawRequest, TestResponse, api_gateway_request,
    code_of_length, register_body, tables,
};

pub struct TestApp {
    pub app: App,
    pub dynamodb: Client,
    pub outbox: PathBuf,
    /// The template parameters this app's configuration corresponds to (for the call record).
    pub parameters: BTreeMap<String, String>,
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
            "LOCAL_KEY_PUBLICATION_SECRET",
            "test-key-publication-secret-0123456789abcdef",
        ),
        (
            "LOCAL_OTP_HMAC_SECRET",
            "test-otp-secret-0123456789abcdef0123456789",
        ),
        ("SMS_PROVIDER", "outbox"),
        // A fixed issuer; the template's default (this API's URL) is the Stack's.
        ("JWT_ISSUER", "phone-auth"),
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
        Self::build(overrides, None).await
    }

    /// As `with_env`, with the SMS provider's AWS client (Lambda, End User Messaging) sent to
    /// `endpoint`, a local stub; DynamoDB stays DynamoDB Local.
    pub async fn with_sms_endpoint(overrides: &[(&str, &str)], endpoint: &str) -> Self {
        Self::build(overrides, Some(endpoint)).await
    }

    async fn build(overrides: &[(&str, &str)], sms_endpoint: Option<&str>) -> Self {
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
        let clients = match sms_endpoint {
            Some(endpoint) => aws.to_builder().endpoint_url(endpoint).build(),
            None => aws.clone(),
        };
        let recorded = aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(CallRecorder)
            .build();
        // The KMS keys' public keys, read as at a cold start (none without KMS keys).
        let keys = AsymmetricKeys::fetch(&config, &crate::kms::client(&aws))
            .await
            .expect("the token keys");
        let secrets = AppSecrets::local(&config).expect("local secrets");
        let app = App::with_keys(config, secrets, keys, &clients, Client::from_conf(recorded))
            .expect("valid keys");
        Self::from_app(with_recorded_providers(app, &clients), dynamodb, outbox)
    }

    /// A test app around `app`, whose calls are recorded under the parameters its SMS settings
    /// correspond to.
    pub fn from_app(app: App, dynamodb: Client, outbox: PathBuf) -> Self {
        let parameters = template_parameters(&app.config);
        Self {
            app,
            dynamodb,
            outbox,
            parameters,
        }
    }

    /// Who `endpoint`'s calls are made by, for the call record: its function, under the
    /// template parameters this app's SMS settings correspond to.
    pub fn call_context(&self, endpoint: Endpoint) -> CallContext {
        CallContext {
            function: endpoint.function().to_owned(),
            parameters: self.parameters.clone(),
            phase: Phase::Request,
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

    /// Sends an API Gateway (HTTP API, payload 2.0) event through the endpoint's handler: the
    /// one `functions/<endpoint.function()>` runs. This match is where each handler of
    /// `shared/src/handlers/mod.rs` is tied to an `Endpoint`, so the route-table test, which
    /// checks every `Endpoint` against `template.yaml`, covers the handlers too.
    pub async fn send(&self, endpoint: Endpoint, raw: RawRequest<'_>) -> TestResponse {
        let request = api_gateway_request(endpoint.path(), &raw);
        let app = &self.app;
        // As each function's main does before its handler.
        app.observe(&request);
        // Boxed: a test awaits many requests, and every handler's future inline would
        // overflow a test thread's stack in debug builds.
        let response = Box::pin(calls::attributed(self.call_context(endpoint), async {
            match endpoint {
                Endpoint::CheckPhone => handlers::check_phone(app, request).await,
                Endpoint::Verify => handlers::verify(app, request).await,
                Endpoint::Register => handlers::register(app, request).await,
                Endpoint::Login => handlers::login(app, request).await,
                Endpoint::Refresh => handlers::refresh(app, request).await,
                Endpoint::Logout => handlers::logout(app, request).await,
                Endpoint::Profile => handlers::profile(app, request).await,
                Endpoint::Sessions => handlers::sessions(app, request).await,
                Endpoint::PhoneChangeRequest => handlers::phone_change_request(app, request).await,
                Endpoint::PhoneChangeConfirm => handlers::phone_change_confirm(app, request).await,
                Endpoint::SessionRevoke => handlers::session_revoke(app, request).await,
                Endpoint::PasswordChange => handlers::password_change(app, request).await,
                Endpoint::PasswordResetRequest => {
                    handlers::password_reset_request(app, request).await
                }
                Endpoint::LoginOtpRequest => handlers::login_otp_request(app, request).await,
                Endpoint::LoginOtp => handlers::login_otp(app, request).await,
                Endpoint::PasswordResetConfirm => {
                    handlers::password_reset_confirm(app, request).await
                }
                Endpoint::Jwks => handlers::jwks(app, request).await,
                Endpoint::OpenIdConfiguration => handlers::openid_configuration(app, request).await,
                Endpoint::Hello => handlers::hello(request).await,
                Endpoint::AdminFindUsers => handlers::admin_find_users(app, request).await,
                Endpoint::AdminUser => handlers::admin_user(app, request).await,
                Endpoint::AdminUserStatus => handlers::admin_user_status(app, request).await,
                Endpoint::AdminUserClaims => handlers::admin_user_claims(app, request).await,
                Endpoint::AdminSessions => handlers::admin_sessions(app, request).await,
                Endpoint::AdminSessionRevoke => handlers::admin_session_revoke(app, request).await,
            }
        }))
        .await;
        let Ok(response) = response;
        let (parts, body) = response.into_parts();
        let text = match body {
            Body::Text(text) => text,
            Body::Empty => String::new(),
            Body::Binary(bytes) => String::from_utf8(bytes).expect("utf-8 body"),
            _ => String::new(),
        };
        let status = parts.status.as_u16();
        let body = if status == 204 {
            assert!(text.is_empty(), "204 has no body");
            Value::Null
        } else {
            assert_eq!(
                parts
                    .headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap()),
                Some("application/json"),
                "every response with a body is JSON"
            );
            serde_json::from_str(&text).expect("response body is JSON")
        };
        crate::contract::check_response(endpoint, raw.method, status, &parts.headers, &body);
        TestResponse {
            status,
            headers: parts.headers,
            body,
        }
    }

    /// A GET of `endpoint` with no token (the JWKS, discovery).
    pub async fn get(&self, endpoint: Endpoint) -> TestResponse {
        self.send(
            endpoint,
            RawRequest {
                method: "GET",
                ..RawRequest::default()
            },
        )
        .await
    }

    /// The claims of `access`, an access token this app signed, as its own verifier reads them.
    pub async fn access_claims(&self, access: &str) -> auth_shared::tokens::Claims {
        self.app
            .tokens
            .verify(access, auth_shared::tokens::TokenType::Access)
            .await
            .expect("a valid access token")
    }

    /// An access token this app signs for a made-up session, straight from its issuer (no
    /// request): a token of a key another deployment does not know, say.
    pub async fn access_token(&self) -> String {
        self.app
            .tokens
            .issue(("user", "session"), &Default::default(), crate::now())
            .await
            .expect("issue a token")
            .pair
            .access
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

    /// `POST /auth/refresh/` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> TestResponse {
        self.post(Endpoint::Refresh, json!({ "refresh": refresh_token }))
            .await
    }

    /// The status `GET /auth/profile/` answers the holder of `access_token`.
    pub async fn profile_status(&self, access_token: &str) -> u16 {
        self.authed(Endpoint::Profile, "GET", access_token, None)
            .await
            .status
    }

    /// The sessions table's item (`user_id`, `sk`), read strongly consistent.
    pub async fn session_item(&self, user_id: &str, sk: &str) -> Option<Item> {
        self.dynamodb
            .get_item()
            .table_name(&self.tables().sessions)
            .key("user_id", AttributeValue::S(user_id.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("get_item")
            .item
    }

    /// The answer to a login of `phone` with `password`.
    pub async fn login_with(&self, phone: &str, password: &str) -> TestResponse {
        self.post(
            Endpoint::Login,
            json!({ "phone": phone, "password": password }),
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
        self.with_dynamodb(|config| config.interceptor(gate.clone()))
            .await
    }

    /// The same tables and settings, with DynamoDB given 10 s an attempt instead of 1 s: for
    /// bursts of parallel requests on one item (from twenty on, with the rest of the suite
    /// running beside them), which DynamoDB Local on two cores can take longer than a second to
    /// answer. At 1 s the SDK then retries a count that was in
    /// fact written, and counts it twice (strict, never lenient, and rare at DynamoDB's own
    /// latency), which is not what such a test is about.
    pub async fn patient(&self) -> TestApp {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(1))
            .operation_attempt_timeout(std::time::Duration::from_secs(10))
            .operation_timeout(std::time::Duration::from_secs(30))
            .build();
        self.with_dynamodb(|config| config.timeout_config(timeouts))
            .await
    }

    /// The same tables, settings and clock, with a DynamoDB client `adjust`ed (its calls still
    /// recorded).
    async fn with_dynamodb(
        &self,
        adjust: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
    ) -> TestApp {
        let aws = auth_shared::load_aws_config().await;
        let config = adjust(aws_sdk_dynamodb::config::Builder::from(&aws))
            .interceptor(CallRecorder)
            .build();
        TestApp {
            app: recorded_app(self.app.config.clone(), &aws, Client::from_conf(config))
                .with_clock(self.app.clock.clone()),
            dynamodb: self.dynamodb.clone(),
            outbox: self.outbox.clone(),
            parameters: self.parameters.clone(),
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
        code_of_length(&self.last_sms_to(e164)?, self.app.config.otp_length)
    }

    /// The body of the last SMS sent to `e164`.
    pub fn last_sms_to(&self, e164: &str) -> Option<String> {
        self.sent_sms()
            .iter()
            .rev()
            .find(|sms| sms["to"] == e164)
            .and_then(|sms| Some(sms["body"].as_str()?.to_owned()))
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

    /// The stored code items of `e164` for `purpose` (`signup`, `password_reset`, `login`,
    /// `phone_change`), oldest first: each code request is its own item, beside the partition's
    /// resend cooldowns and shared guess budget, which are left out.
    pub async fn codes_for(&self, e164: &str, purpose: &str) -> Vec<Item> {
        let partition = format!("{e164}#{purpose}");
        let mut codes: Vec<Item> = self
            .scan(&self.app.config.tables.otps)
            .await
            .into_iter()
            .filter(|item| text(item, "phone") == Some(partition.as_str()))
            .filter(|item| item.contains_key("code_hash"))
            .collect();
        codes.sort_by_key(|item| num(item, "sent_at"));
        codes
    }

    /// The newest stored code item of `e164`, of whichever purpose the phone has codes for.
    pub async fn otp(&self, e164: &str) -> Option<Item> {
        let prefix = format!("{e164}#");
        let mut codes: Vec<Item> = self
            .scan(&self.app.config.tables.otps)
            .await
            .into_iter()
            .filter(|item| text(item, "phone").is_some_and(|key| key.starts_with(&prefix)))
            .filter(|item| item.contains_key("code_hash"))
            .collect();
        let purposes: std::collections::BTreeSet<_> = codes
            .iter()
            .filter_map(|item| text(item, "purpose"))
            .collect();
        assert!(purposes.len() <= 1, "{e164} has codes of several purposes");
        codes.sort_by_key(|item| num(item, "sent_at"));
        codes.pop()
    }

    /// The newest stored code item of `e164` for `purpose`.
    pub async fn otp_for(&self, e164: &str, purpose: &str) -> Option<Item> {
        self.codes_for(e164, purpose).await.pop()
    }

    /// The shared budget of guesses without a verification id of `e164`'s `purpose` codes.
    pub async fn anonymous_guesses(&self, e164: &str, purpose: &str) -> Option<Item> {
        self.dynamodb
            .get_item()
            .table_name(&self.app.config.tables.otps)
            .key("phone", AttributeValue::S(format!("{e164}#{purpose}")))
            .key("verification", AttributeValue::S("anonymous".to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("get_item")
            .item
    }

    /// The stored account item of `e164`.
    pub async fn user(&self, e164: &str) -> Option<Item> {
        self.get_item(&self.app.config.tables.users, "phone", e164)
            .await
    }

    /// Lets a phone have a new code at once: the app's clock moves past the resend cooldown
    /// (the code itself stays live).
    pub fn end_resend_cooldown(&self) {
        self.app
            .clock
            .advance(self.app.config.otp_resend_seconds + 1);
    }

    /// Overwrites the attribute `name` of the attempts item whose key starts with `key_prefix`
    /// (for the tests of corrupt stored values).
    pub async fn overwrite_attempts_item(&self, key_prefix: &str, name: &str, value: &str) {
        let table = &self.tables().attempts;
        let mut item = self
            .scan(table)
            .await
            .into_iter()
            .find(|item| text(item, "pk").is_some_and(|pk| pk.starts_with(key_prefix)))
            .unwrap_or_else(|| panic!("no attempts item {key_prefix}..."));
        item.insert(name.to_owned(), AttributeValue::S(value.to_owned()));
        self.dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put_item");
    }

    /// Every domain event the app recorded in its events table (the outbox), oldest first (by
    /// `occurred_at`, then as scanned): (`detail-type`, `detail`).
    pub async fn recorded_events(&self) -> Vec<(String, Value)> {
        let mut events: Vec<(u64, String, Value)> = self
            .scan(&self.tables().events)
            .await
            .into_iter()
            .map(|item| {
                let detail = text(&item, "detail").expect("an event's detail");
                (
                    num(&item, "occurred_at").expect("an event's time"),
                    text(&item, "detail_type")
                        .expect("a detail-type")
                        .to_owned(),
                    serde_json::from_str(detail).expect("detail is JSON"),
                )
            })
            .collect();
        events.sort_by_key(|(at, _, _)| *at);
        events
            .into_iter()
            .map(|(_, detail_type, detail)| (detail_type, detail))
            .collect()
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

    /// Another app over the same tables, outbox and clock, configured from the base settings
    /// with `overrides` (as a function deployed with other settings would be).
    pub async fn reconfigured(&self, overrides: &[(&str, &str)]) -> TestApp {
        let names = self
            .tables()
            .variables()
            .map(|(variable, name)| (variable.to_owned(), name.to_owned()));
        let mut env = base_env(&names, &self.outbox);
        for (name, value) in overrides {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid test config");
        let aws = auth_shared::load_aws_config().await;
        let recorded = aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(CallRecorder)
            .build();
        let app = recorded_app(config, &aws, Client::from_conf(recorded))
            .with_clock(self.app.clock.clone());
        TestApp::from_app(app, self.dynamodb.clone(), self.outbox.clone())
    }
}

/// The app of `config` with its SMS provider's client recording its calls too (`dynamodb`
/// comes with the recorder already).
pub(crate) fn recorded_app(config: Config, aws: &SdkConfig, dynamodb: Client) -> App {
    with_recorded_providers(
        App::with_dynamodb(config, aws, dynamodb).expect("valid keys"),
        aws,
    )
}

/// `app` with its SMS provider's and token hook's clients built anew from `aws`, with the call
/// recorder on.
pub(crate) fn with_recorded_providers(mut app: App, aws: &SdkConfig) -> App {
    app.sms = SmsSender::with_interceptors(
        &app.config.sms,
        app.config.sms_timeout,
        aws,
        &[CallRecorder::shared()],
    );
    app.token_hook = app
        .config
        .token_hook_function
        .as_deref()
        .map(|function| TokenHook::new(function, aws, &[CallRecorder::shared()]));
    app.cognito_migration = app.config.cognito_migration.as_ref().map(|pool| {
        let aws = crate::cognito::emulated(aws);
        CognitoMigration::new(pool, &aws, &[CallRecorder::shared()])
    });
    app
}

/// The values of the template parameters that `config`'s SMS and token key settings are what
/// the functions get from (the parameters the policies' Conditions and `!Sub`s read).
pub fn template_parameters(config: &Config) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::new();
    let mut set = |name: &str, value: &str| {
        parameters.insert(name.to_owned(), value.to_owned());
    };
    set("JwtAlgorithm", config.jwt_algorithm.name());
    if let Some(function) = &config.token_hook_function {
        set("TokenHookFunction", function);
    }
    if let Some(pool) = &config.cognito_migration {
        set("CognitoMigrationUserPoolId", &pool.user_pool_id);
        set("CognitoMigrationClientId", &pool.client_id);
    }
    if let Some(AsymmetricKeySource::Kms { key_id }) = &config.jwt_asymmetric_key {
        set("JwtKmsKeyId", key_id);
    }
    if let Some(key_id) = &config.jwt_previous_kms_key_id {
        set("JwtPreviousKmsKeyId", key_id);
    }
    match &config.sms {
        SmsProviderConfig::Sns => set("SmsProvider", "sns"),
        SmsProviderConfig::Outbox { .. } => set("SmsProvider", "outbox"),
        SmsProviderConfig::Lambda { function } => {
            set("SmsProvider", "lambda");
            set("SmsHookFunction", function);
        }
        SmsProviderConfig::EndUserMessaging {
            origination_identity,
            configuration_set,
        } => {
            set("SmsProvider", "end-user-messaging");
            set(
                "SmsOriginationIdentity",
                origination_identity.as_deref().unwrap_or_default(),
            );
            set(
                "SmsConfigurationSet",
                configuration_set.as_deref().unwrap_or_default(),
            );
        }
    }
    parameters
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
