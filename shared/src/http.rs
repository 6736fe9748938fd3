//! Request parsing and JSON responses, shared by every handler.

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ConfigError;
use crate::error::AuthError;
use crate::service::admin::Operator;
use crate::settings::Env;

/// Who made the request, as API Gateway saw it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: String,
    /// What per-IP limits count: the address, or its /64 for IPv6 (`limits::network_of`).
    pub network: String,
    pub request_id: String,
    /// The `User-Agent` header, cut to `MAX_USER_AGENT_CHARS` (shown in the session list).
    pub user_agent: Option<String>,
}

pub const MAX_USER_AGENT_CHARS: usize = 256;

pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Refuses any method but `method` (GET, DELETE, PUT or POST here) with a 405 naming the one allowed.
pub fn require_method(request: &Request, method: Method) -> Result<(), AuthError> {
    if request.method() == method {
        return Ok(());
    }
    let allow = match method {
        Method::GET => "GET",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "POST",
    };
    Err(AuthError::MethodNotAllowed { allow })
}

fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// Checks method (POST), Content-Type and size, then decodes the JSON body into `T`.
/// API Gateway base64 bodies arrive already decoded as `Body::Binary`.
pub fn parse_json_post<T: DeserializeOwned>(request: &Request) -> Result<T, AuthError> {
    require_method(request, Method::POST)?;
    parse_json_body(request)
}

/// As `parse_json_post`, but an empty body (with or without Content-Type) means `T::default()`.
pub fn parse_optional_json_post<T: DeserializeOwned + Default>(
    request: &Request,
) -> Result<T, AuthError> {
    require_method(request, Method::POST)?;
    // Only no body at all is "none": whitespace alone is no JSON document, and a 400 like any.
    if body_bytes(request).is_empty() {
        return Ok(T::default());
    }
    parse_json_body(request)
}

/// Checks Content-Type and size, then decodes the JSON body into `T`.
pub fn parse_json_body<T: DeserializeOwned>(request: &Request) -> Result<T, AuthError> {
    if !has_json_content_type(request) {
        return Err(AuthError::UnsupportedMediaType);
    }
    let bytes = body_bytes(request);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(AuthError::PayloadTooLarge);
    }
    parse_json_object(bytes)
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(request: &Request) -> Result<&str, AuthError> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?
        .to_str()
        .map_err(|_| AuthError::InvalidToken)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AuthError::MissingToken),
    }
}

/// Decodes a JSON object into `T`, with an error message that names the offending field.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Err(AuthError::InvalidRequest("Request body is empty.".into())),
        Some(b'{') => {}
        Some(_) => {
            return Err(AuthError::InvalidRequest(
                "Request body must be a JSON object.".into(),
            ));
        }
    }
    let not_json = || AuthError::InvalidRequest("Request body is not valid JSON.".into());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if !inner.is_data() {
            return not_json();
        }
        let message = without_position(&inner.to_string());
        if path == "." {
            AuthError::InvalidRequest(format!("Invalid request: {message}."))
        } else {
            AuthError::InvalidRequest(format!("Invalid field '{path}': {message}."))
        }
    })?;
    deserializer.end().map_err(|_| not_json())?;
    Ok(value)
}

fn without_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((head, _)) => head.replace('`', "'"),
        None => message.replace('`', "'"),
    }
}

fn has_json_content_type(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The request's `Accept-Language` header, if it is text.
pub fn accept_language(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
}

/// Which proxy in front of API Gateway may name the client (`TRUSTED_PROXY`). Whatever a proxy
/// adds, a client can send too: a header is believed only in the mode that names it, and only
/// on a request that proves it came through that proxy (docs/operations.md, "Behind CloudFront").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustedProxy {
    /// Clients reach API Gateway directly: the client is API Gateway's source IP.
    #[default]
    None,
    /// Clients reach the API through CloudFront, which names the viewer in
    /// `CloudFront-Viewer-Address` (the origin request policy must forward that header) and
    /// adds the origin secret as `X-Origin-Verify` (an origin custom header): only a request
    /// whose secret hashes to `origin_secret_sha256` is believed, since a client calling the
    /// `execute-api` URL directly can send any header.
    CloudFront { origin_secret_sha256: [u8; 32] },
}

/// The header CloudFront adds with the origin secret (an origin custom header).
const ORIGIN_SECRET: &str = "x-origin-verify";

impl TrustedProxy {
    /// Whether `request` carries the origin secret of this proxy.
    fn vouches_for(self, request: &Request) -> bool {
        let Self::CloudFront {
            origin_secret_sha256,
        } = self
        else {
            return false;
        };
        request.headers().get(ORIGIN_SECRET).is_some_and(|secret| {
            let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
            bool::from(presented.ct_eq(&origin_secret_sha256))
        })
    }
}

impl TrustedProxy {
    /// `TRUSTED_PROXY`: `none` (the default) or `cloudfront`, which needs
    /// `TRUSTED_PROXY_ORIGIN_SECRET_SHA256`: the SHA-256 (hex) of the secret CloudFront adds as
    /// `X-Origin-Verify`. Only its hash is configured: it names the secret without holding it.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        const HASH: &str = "TRUSTED_PROXY_ORIGIN_SECRET_SHA256";
        let cloudfront = env.choice("TRUSTED_PROXY", &[("none", false), ("cloudfront", true)])?;
        if !cloudfront {
            return Ok(Self::None);
        }
        let hash = env.get(HASH)?.ok_or(ConfigError::Missing(HASH))?;
        let origin_secret_sha256 =
            parse_sha256_hex(hash.trim()).ok_or_else(|| ConfigError::Invalid {
                name: HASH,
                reason: "must be 64 hexadecimal digits, the SHA-256 of the (non-empty) origin \
                         secret"
                    .into(),
            })?;
        Ok(Self::CloudFront {
            origin_secret_sha256,
        })
    }
}

/// The SHA-256 of nothing: the hash of an origin secret left empty by mistake.
pub(crate) const SHA256_OF_EMPTY: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// 64 hexadecimal digits as 32 bytes; not the hash of an empty secret.
fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex == SHA256_OF_EMPTY {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(bytes)
}

/// CloudFront's header with the viewer's address and source port.
const VIEWER_ADDRESS: &str = "cloudfront-viewer-address";

/// The caller's IP as API Gateway saw it.
fn source_ip(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.clone(),
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.clone(),
        _ => None,
    }
}

/// The client's IP: API Gateway's source IP, or with `TrustedProxy::CloudFront` the viewer
/// address CloudFront sends. Headers such as X-Forwarded-For are client-controlled and always
/// ignored; so is `CloudFront-Viewer-Address` unless CloudFront is the trusted proxy and the
/// request carries its origin secret. A request without the secret (one that did not come
/// through CloudFront) or without a readable viewer address is counted under its source IP,
/// which nobody can forge.
pub fn client_ip(request: &Request, proxy: TrustedProxy) -> Option<String> {
    if proxy != TrustedProxy::None {
        if !proxy.vouches_for(request) {
            // Not through the proxy (or a forged header): the request's own address counts.
            tracing::debug!("no valid X-Origin-Verify: the source IP counts");
            return source_ip(request);
        }
        match request.headers().get(VIEWER_ADDRESS) {
            Some(value) => match value.to_str().ok().and_then(viewer_ip) {
                Some(ip) => return Some(ip.to_string()),
                None => tracing::warn!("unreadable CloudFront-Viewer-Address: source IP used"),
            },
            None => tracing::warn!(
                "TRUSTED_PROXY=cloudfront but no CloudFront-Viewer-Address: source IP used"
            ),
        }
    }
    source_ip(request)
}

/// The IP of a `CloudFront-Viewer-Address` value, `IP:port`: `198.51.100.10:46532`, IPv6
/// unbracketed as CloudFront sends it (`2001:db8::1:46532`, the port after the last colon) or
/// bracketed (`[2001:db8::1]:46532`). The port is required: without it an unbracketed IPv6
/// address would lose its last group.
fn viewer_ip(value: &str) -> Option<std::net::IpAddr> {
    let value = value.trim();
    let (ip, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let (ip, port) = rest.split_once("]:")?;
            (ip.parse::<std::net::Ipv6Addr>().ok()?.into(), port)
        }
        None => {
            let (ip, port) = value.rsplit_once(':')?;
            (ip.parse().ok()?, port)
        }
    };
    port.parse::<u16>().ok()?;
    Some(ip)
}

/// The caller (client IP and request id), or a refusal: without the IP the per-IP limits cannot
/// hold.
pub fn caller(request: &Request, proxy: TrustedProxy) -> Result<Caller, AuthError> {
    let ip = client_ip(request, proxy)
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| AuthError::internal("request context has no source IP"))?;
    let request_id = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
        _ => None,
    }
    .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
    .unwrap_or_default();
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .map(|value| shown_text(&String::from_utf8_lossy(value.as_bytes())))
        .filter(|agent| !agent.trim().is_empty());
    Ok(Caller {
        network: crate::limits::network_of(&ip),
        ip,
        request_id,
        user_agent,
    })
}

/// The IAM identity API Gateway authenticated an admin request with (`AWS_IAM` authorization:
/// `requestContext.authorizer.iam.userArn`), or a refusal: a request without it did not pass
/// the authorizer, so nobody vouches for it.
pub fn operator(request: &Request) -> Result<Operator, AuthError> {
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        return Err(AuthError::IamRequired);
    };
    let iam = context
        .authorizer
        .as_ref()
        .and_then(|authorizer| authorizer.iam.as_ref())
        .ok_or(AuthError::IamRequired)?;
    let arn = iam
        .user_arn
        .as_deref()
        .filter(|arn| arn.starts_with("arn:"))
        .ok_or(AuthError::IamRequired)?;
    Ok(Operator {
        arn: arn.to_owned(),
        principal_id: iam.user_id.clone(),
        access_key: iam.access_key.clone(),
        request_id: context.request_id.clone().unwrap_or_default(),
    })
}

/// Client-supplied text as the session list shows it: without control characters and the
/// invisible formatting ones (bidi overrides, zero-width), which could disguise it, and cut to
/// `MAX_USER_AGENT_CHARS`.
fn shown_text(raw: &str) -> String {
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
    };
    raw.chars()
        .filter(|&c| !invisible(c))
        .take(MAX_USER_AGENT_CHARS)
        .collect()
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    // Serialising our own response types cannot fail; fall back to an empty object regardless.
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The response of a refusal or failure: the error's status, JSON body and headers.
pub fn error_response(error: AuthError) -> Response<Body> {
    error.log();
    let mut response = json_response(error.status(), &error.body());
    response.headers_mut().extend(error.headers());
    response
}

/// 204 for a success without a body; errors go through their one mapping.
pub fn respond_no_content(
    outcome: Result<(), AuthError>,
) -> Result<Response<Body>, std::convert::Infallible> {
    Ok(match outcome {
        Ok(()) => {
            let mut response = Response::new(Body::Empty);
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error_response(error),
    })
}

/// Turns a handler outcome into the response; errors go through their one mapping.
pub fn respond<T: Serialize>(
    status: StatusCode,
    outcome: Result<T, AuthError>,
) -> Result<Response<Body>, std::convert::Infallible> {
    Ok(match outcome {
        Ok(body) => json_response(status, &body),
        Err(error) => error_response(error),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn viewer_addresses_are_ip_and_port_in_cloudfronts_forms() {
        for (value, ip) in [
            ("198.51.100.10:46532", "198.51.100.10"),
            (" 198.51.100.10:0 ", "198.51.100.10"),
            (
                "2001:db8:85a3::8a2e:370:7334:46532",
                "2001:db8:85a3::8a2e:370:7334",
            ),
            ("2001:db8::1:443", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("::ffff:198.51.100.10:80", "::ffff:198.51.100.10"),
        ] {
            assert_eq!(
                super::viewer_ip(value).map(|ip| ip.to_string()).as_deref(),
                Some(ip),
                "{value}"
            );
        }
        for value in [
            "",
            "198.51.100.10",
            "198.51.100.10:",
            "198.51.100.10:65536",
            "198.51.100.10:x",
            "[198.51.100.10]:80",
            "[2001:db8::1]",
            "2001:db8::1",
            "example.com:443",
            "198.51.100.10:80, 203.0.113.9:80",
        ] {
            assert_eq!(super::viewer_ip(value), None, "{value}");
        }
    }

    #[test]
    fn shown_text_drops_control_and_invisible_characters_and_is_cut() {
        assert_eq!(
            super::shown_text("Mozilla\u{202E}gpj.exe\n\u{200B}x"),
            "Mozillagpj.exex"
        );
        assert_eq!(super::shown_text(&"ä".repeat(300)).chars().count(), 256);
    }
}
