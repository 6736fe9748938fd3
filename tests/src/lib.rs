//! Test support: a fresh set of tables on DynamoDB Local per test, the real handlers called
//! in-process with API Gateway events, and readers for the stored state and the SMS outbox.
//!
//! Needs `AWS_ENDPOINT_URL_DYNAMODB` pointing at DynamoDB Local; `scripts/test` starts one.

mod app;
pub mod calls;
pub mod cognito;
pub mod contract;
mod endpoint;
mod events;
pub mod fixtures;
mod gate;
pub mod iam_gateway;
pub mod kms;
mod logs;
pub mod policies;
pub mod publisher;
pub mod routes;
mod served;
pub mod settings_doc;
mod stack;
mod stub;
pub mod tables;

pub use app::{TestApp, base_env, dynamodb_endpoint, now, num, template_parameters, text};
pub use endpoint::Endpoint;
pub use events::{RawRequest, TestResponse, api_gateway_event, api_gateway_request};
pub use gate::{DynamoDbGate, Pause};
pub use logs::{CapturedLogs, set_thread_default};
pub use publisher::{BREAKER, PublishedEvent, PutEventsReply, PutEventsStub};
pub use served::{Listener, Served, ServedDeployments, ServedStack, run_verifier, venv_python};
pub use stack::Stack;
pub use stub::{HttpStub, StubAnswer, StubRequest};

use serde_json::{Value, json};

pub const PHONE: &str = "09101234567";
pub const PHONE_E164: &str = "+989101234567";
pub const CLIENT_IP: &str = "203.0.113.7";
pub const PASSWORD: &str = "correct horse battery";

pub fn register_body(token: &str) -> Value {
    json!({
        "registration_token": token,
        "password": PASSWORD,
        "first_name": "Sara",
        "last_name": "Ahmadi",
        "email": "sara@example.com",
    })
}

/// The built-in Persian sign-up SMS for a 5-minute code.
pub fn persian_sign_up(code: &str) -> String {
    format!(
        "Phone Auth: کد ثبت‌نام شما {code} است. این کد تا ۵ دقیقه معتبر است؛ آن را به کسی ندهید."
    )
}

/// A six-digit code that is not `code`.
pub fn other_code(code: &str) -> String {
    let n: u32 = code.parse().expect("a six-digit code");
    format!("{:06}", (n + 1) % 1_000_000)
}

/// The six-digit code inside an SMS body.
pub fn code_in(body: &str) -> Option<String> {
    code_of_length(body, 6)
}

/// The code of `length` ASCII digits inside an SMS body (Persian digits, as of the minutes in a
/// Persian SMS, are not part of it).
pub fn code_of_length(body: &str, length: usize) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == length)
        .map(str::to_owned)
}
