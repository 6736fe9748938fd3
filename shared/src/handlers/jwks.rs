//! The public face of the token keys: the key set and the discovery document that points to it.

use std::convert::Infallible;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};

use crate::App;
use crate::discovery::Discovery;
use crate::http::{error_response, json_response, require_method};

/// Verifiers may cache the key set (and the discovery document) this long; rotation keeps the
/// previous key published longer.
const CACHE_CONTROL: &str = "public, max-age=300";

/// `GET /.well-known/jwks.json`: the public keys that verify this service's tokens.
pub async fn jwks(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    if let Err(error) = require_method(&request, Method::GET) {
        return Ok(error_response(error));
    }
    let keys = match app.tokens.jwks().await {
        Ok(keys) => keys,
        Err(error) => return Ok(error_response(error)),
    };
    let mut response = json_response(StatusCode::OK, &keys);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(response)
}

/// `GET /.well-known/openid-configuration`: the issuer and where its keys are.
pub async fn openid_configuration(
    app: &App,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    if let Err(error) = require_method(&request, Method::GET) {
        return Ok(error_response(error));
    }
    let document = match Discovery::of(&app.tokens).await {
        Ok(document) => document,
        Err(error) => return Ok(error_response(error)),
    };
    let mut response = json_response(StatusCode::OK, &document);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(response)
}
