//! What the tests send and get back: API Gateway (HTTP API, payload 2.0) events built from a
//! `RawRequest`, and the handler's answer as a `TestResponse`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::Request;
use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

use crate::CLIENT_IP;

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
    /// A `CloudFront-Viewer-Address` header (`IP:port`): what CloudFront adds, or a forgery.
    pub viewer_address: Option<&'a str>,
    /// An `X-Origin-Verify` header: the origin secret CloudFront adds, or a guess.
    pub origin_secret: Option<&'a str>,
    /// An access token, sent as `Authorization: Bearer <token>`.
    pub bearer: Option<&'a str>,
    /// An `Accept-Language` header.
    pub accept_language: Option<&'a str>,
    pub source_ip: &'a str,
    pub user_agent: Option<&'a str>,
    /// The `{id}` of a path that has one (`/auth/sessions/{id}/`).
    pub path_id: Option<&'a str>,
    /// The `{session_id}` of a path that has one (`/admin/users/{id}/sessions/{session_id}`).
    pub session_id: Option<&'a str>,
    /// The query string's parameters, in order (sent encoded in `rawQueryString` and decoded in
    /// `queryStringParameters`, as API Gateway does).
    pub query: &'a [(&'a str, &'a str)],
    /// The ARN of the IAM identity API Gateway's `AWS_IAM` authorization checked the request's
    /// SigV4 signature against (`requestContext.authorizer.iam`): what an admin route gets.
    pub iam_arn: Option<&'a str>,
    /// What API Gateway's JWT authorizer puts into the request context of a route behind it
    /// (`requestContext.authorizer.jwt`: `claims`, every value a string, and `scopes`).
    pub authorizer_jwt: Option<&'a Value>,
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
            viewer_address: None,
            origin_secret: None,
            bearer: None,
            accept_language: None,
            source_ip: CLIENT_IP,
            user_agent: None,
            path_id: None,
            session_id: None,
            query: &[],
            iam_arn: None,
            authorizer_jwt: None,
        }
    }
}

/// The event API Gateway's HTTP API sends to Lambda (payload format 2.0). `route` is the
/// template's path; its `{id}`, if any, is `raw.path_id`.
pub fn api_gateway_event(route: &str, raw: &RawRequest<'_>) -> Value {
    let id = raw.path_id.unwrap_or("none");
    let session_id = raw.session_id.unwrap_or("none");
    let path = route
        .replace("{id}", id)
        .replace("{session_id}", session_id);
    let mut parameters = serde_json::Map::new();
    if route.contains("{id}") {
        parameters.insert("id".into(), json!(id));
    }
    if route.contains("{session_id}") {
        parameters.insert("session_id".into(), json!(session_id));
    }
    let path_parameters = (!parameters.is_empty()).then_some(parameters);
    let raw_query = raw
        .query
        .iter()
        .map(|(name, value)| {
            format!(
                "{name}={}",
                form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let query_parameters: serde_json::Map<String, Value> = raw
        .query
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    let mut headers = serde_json::Map::new();
    if let Some(agent) = raw.user_agent {
        headers.insert("user-agent".into(), json!(agent));
    }
    if let Some(content_type) = raw.content_type {
        headers.insert("content-type".into(), json!(content_type));
    }
    if let Some(token) = raw.bearer {
        headers.insert("authorization".into(), json!(format!("Bearer {token}")));
    }
    if let Some(languages) = raw.accept_language {
        headers.insert("accept-language".into(), json!(languages));
    }
    if let Some(forwarded_for) = raw.forwarded_for {
        headers.insert("x-forwarded-for".into(), json!(forwarded_for));
    }
    if let Some(viewer) = raw.viewer_address {
        headers.insert("cloudfront-viewer-address".into(), json!(viewer));
    }
    if let Some(secret) = raw.origin_secret {
        headers.insert("x-origin-verify".into(), json!(secret));
    }
    let base64 = raw.base64 || raw.binary.is_some();
    let body = match (raw.binary, raw.body) {
        (Some(bytes), _) => Some(STANDARD.encode(bytes)),
        (None, Some(body)) if raw.base64 => Some(STANDARD.encode(body)),
        (None, body) => body.map(str::to_owned),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("ANY {route}"),
        "rawPath": path,
        "rawQueryString": raw_query,
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
            "routeKey": format!("ANY {route}"),
            "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "pathParameters": path_parameters,
        "queryStringParameters": (!query_parameters.is_empty()).then_some(query_parameters),
        "body": body,
        "isBase64Encoded": base64
    });
    if let Some(jwt) = raw.authorizer_jwt {
        event["requestContext"]["authorizer"] = json!({ "jwt": jwt });
    }
    if let Some(arn) = raw.iam_arn {
        event["requestContext"]["authorizer"] = json!({
            "iam": {
                "accessKey": "ASIAEXAMPLEEXAMPLE00",
                "accountId": "123456789012",
                "callerId": "AROAEXAMPLEEXAMPLE000:operator",
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": arn,
                "userId": "AROAEXAMPLEEXAMPLE000:operator"
            }
        });
    }
    event
}

/// The event API Gateway sends, parsed by lambda_http exactly as in production.
pub fn api_gateway_request(path: &str, raw: &RawRequest<'_>) -> Request {
    let event = api_gateway_event(path, raw);
    lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event")
}
