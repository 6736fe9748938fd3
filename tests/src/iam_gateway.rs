//! `IamGateway`: what API Gateway's `AWS_IAM` authorization does in front of the admin routes,
//! for the tests of `scripts/admin`, on loopback. Each request's SigV4 signature is checked by
//! signing the request again with `aws-sigv4` (the AWS SDK's signer, not the script's botocore)
//! under the one operator's credentials it knows, for `execute-api` in its region. A missing,
//! malformed or wrong signature, or one older than 5 minutes, gets what API Gateway answers:
//! 403 `{"message": "Forbidden"}`. A signed request goes to its route's handler with the
//! identity API Gateway adds (`requestContext.authorizer.iam.userArn`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::{Endpoint, Listener, RawRequest, TestApp};

pub const OPERATOR_KEY_ID: &str = "AKIDOPERATOREXAMPLE1";
pub const OPERATOR_SECRET: &str = "operator/secret/key/for/the/tests/only00";
pub const OPERATOR_ARN: &str = "arn:aws:iam::123456789012:user/support-alice";
pub const REGION: &str = "eu-central-1";

/// How far a signature's time may be from now (API Gateway's window).
const CLOCK_SKEW: Duration = Duration::from_secs(300);

pub struct IamGateway {
    /// `http://127.0.0.1:PORT`: the API's URL.
    pub base_url: String,
    pub app: Arc<TestApp>,
}

impl IamGateway {
    pub async fn start() -> Self {
        let listener = Listener::bind().await;
        let base_url = listener.base_url.clone();
        let app = Arc::new(TestApp::new().await);
        let served = app.clone();
        let listener = listener.into_inner();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let app = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(app.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { base_url, app }
    }
}

async fn answer(
    app: Arc<TestApp>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let Some((endpoint, id, session_id)) = route(&path) else {
        return Ok(json(404, r#"{"message":"Not Found"}"#.to_owned()));
    };
    if !signed_by_the_operator(&parts, &body) {
        return Ok(json(403, r#"{"message":"Forbidden"}"#.to_owned()));
    }
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|query| {
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let query: Vec<(&str, &str)> = query
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let text = String::from_utf8_lossy(&body).into_owned();
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|value| value.to_str().ok());
    let response = app
        .send(
            endpoint,
            RawRequest {
                method: parts.method.as_str(),
                content_type,
                body: (!body.is_empty()).then_some(text.as_str()),
                path_id: id.as_deref(),
                session_id: session_id.as_deref(),
                query: &query,
                iam_arn: Some(OPERATOR_ARN),
                ..RawRequest::default()
            },
        )
        .await;
    let text = match response.status {
        204 => String::new(),
        _ => response.body.to_string(),
    };
    Ok(json(response.status, text))
}

/// The admin endpoint whose template matches `path`, with its `{id}` and `{session_id}`.
fn route(path: &str) -> Option<(Endpoint, Option<String>, Option<String>)> {
    let segments: Vec<&str> = path.split('/').collect();
    Endpoint::ALL.iter().find_map(|&endpoint| {
        let template: Vec<&str> = endpoint.path().split('/').collect();
        if !endpoint.path().starts_with("/admin/") || template.len() != segments.len() {
            return None;
        }
        let (mut id, mut session_id) = (None, None);
        for (want, got) in template.iter().zip(&segments) {
            match *want {
                "{id}" => id = Some((*got).to_owned()),
                "{session_id}" => session_id = Some((*got).to_owned()),
                literal if literal == *got => {}
                _ => return None,
            }
        }
        Some((endpoint, id, session_id))
    })
}

/// Whether the request carries a SigV4 signature of the operator's key for `execute-api` in
/// `REGION`, made within the clock skew, that signing it again gives.
fn signed_by_the_operator(parts: &hyper::http::request::Parts, body: &[u8]) -> bool {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let (Some(authorization), Some(date)) = (header("authorization"), header("x-amz-date")) else {
        return false;
    };
    let Some(presented) = Authorization::parse(authorization) else {
        return false;
    };
    let scope_ok = presented.key_id == OPERATOR_KEY_ID
        && presented.region == REGION
        && presented.service == "execute-api"
        && date.starts_with(presented.day);
    let Some(time) = amz_date(date).filter(|time| within_skew(*time)) else {
        return false;
    };
    if !scope_ok {
        return false;
    }
    // The headers the client signed, but those the signer adds itself.
    let signed: Vec<(&str, &str)> = presented
        .signed_headers
        .iter()
        .filter(|name| !matches!(**name, "host" | "x-amz-date"))
        .filter_map(|name| Some((*name, header(name)?)))
        .collect();
    let Some(host) = header("host") else {
        return false;
    };
    let uri = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let identity = Credentials::new(OPERATOR_KEY_ID, OPERATOR_SECRET, None, None, "tests").into();
    let Ok(params) = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
    else {
        return false;
    };
    let Ok(request) = SignableRequest::new(
        parts.method.as_str(),
        uri,
        signed.into_iter(),
        SignableBody::Bytes(body),
    ) else {
        return false;
    };
    sign(request, &params.into()).is_ok_and(|output| output.signature() == presented.signature)
}

/// `AWS4-HMAC-SHA256 Credential=KEY/DAY/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex`.
struct Authorization<'a> {
    key_id: &'a str,
    day: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(header: &'a str) -> Option<Self> {
        let rest = header.strip_prefix("AWS4-HMAC-SHA256 ")?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',').map(str::trim) {
            let (name, value) = part.split_once('=')?;
            match name {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value.split(';').collect()),
                "Signature" => signature = Some(value),
                _ => return None,
            }
        }
        let mut scope = credential?.split('/');
        let (key_id, day, region, service) =
            (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        (scope.next()? == "aws4_request").then_some(Self {
            key_id,
            day,
            region,
            service,
            signed_headers: signed_headers?,
            signature: signature?,
        })
    }
}

/// `20261203T135100Z` as a time.
fn amz_date(date: &str) -> Option<SystemTime> {
    if date.len() != 16 || !date.is_ascii() {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &date[0..4],
        &date[4..6],
        &date[6..8],
        &date[9..11],
        &date[11..13],
        &date[13..15]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

fn within_skew(time: SystemTime) -> bool {
    let now = SystemTime::now();
    let apart = now
        .duration_since(time)
        .or_else(|_| time.duration_since(now))
        .unwrap_or(Duration::MAX);
    apart <= CLOCK_SKEW
}

fn json(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("a header"),
    );
    response
}
