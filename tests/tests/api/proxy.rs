//! `TRUSTED_PROXY`: which address the per-network limits count. Behind CloudFront every request
//! comes from an edge's address; only in `cloudfront` mode is the viewer address CloudFront adds
//! believed, and in the default mode nobody can move their requests to another network with it.

use std::collections::BTreeMap;

use auth_tests::{CLIENT_IP, Endpoint, PHONE, PHONE_E164, RawRequest, TestApp, num, text};
use serde_json::json;

/// A CloudFront edge's address, as API Gateway sees it.
const EDGE: &str = "130.176.88.1";

/// The origin secret the distribution adds (`X-Origin-Verify`), and its SHA-256 as configured.
const ORIGIN_SECRET: &str = "an origin secret only CloudFront sends";
const ORIGIN_SECRET_SHA256: &str =
    "231e7de7c31a82d5339e556080a606a86231e30af5348e2ac22021d3988363cf";

/// check-phone of the registered `PHONE` (a lookup, counted per network, and no SMS) from
/// `EDGE`, with `viewer` as its `CloudFront-Viewer-Address` and CloudFront's origin secret.
async fn lookup_through_edge(t: &TestApp, viewer: Option<&str>) {
    lookup_from(t, EDGE, viewer, Some(ORIGIN_SECRET)).await;
}

/// check-phone of `PHONE` from `source_ip` with the given headers.
async fn lookup_from(t: &TestApp, source_ip: &str, viewer: Option<&str>, secret: Option<&str>) {
    let body = json!({ "phone": PHONE }).to_string();
    let response = t
        .send(
            Endpoint::CheckPhone,
            RawRequest {
                body: Some(&body),
                source_ip,
                viewer_address: viewer,
                origin_secret: secret,
                ..RawRequest::default()
            },
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.body["exists"], true);
}

/// The check-phone lookups counted per network (but the set-up's own, from `CLIENT_IP`).
async fn lookups_per_network(t: &TestApp) -> BTreeMap<String, u64> {
    t.scan(&t.tables().attempts)
        .await
        .iter()
        .filter_map(|item| {
            let key = text(item, "pk")?.strip_prefix("send#lookup#")?;
            let (network, _window) = key.rsplit_once('#')?;
            Some((network.to_owned(), num(item, "hits")?))
        })
        .filter(|(network, _)| network != CLIENT_IP)
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn by_default_the_viewer_address_header_is_ignored_and_the_source_ip_counts() {
    let t = TestApp::new().await;
    t.registered_user(PHONE, PHONE_E164).await;
    for viewer in [Some("198.51.100.10:46532"), Some("203.0.113.77:443"), None] {
        lookup_through_edge(&t, viewer).await;
    }
    assert_eq!(
        lookups_per_network(&t).await,
        counts(&[(EDGE, 3)]),
        "whatever the header says, the requests count together"
    );
}

#[tokio::test]
async fn behind_cloudfront_each_viewer_counts_under_its_own_network() {
    let t = TestApp::with_env(&[
        ("TRUSTED_PROXY", "cloudfront"),
        ("TRUSTED_PROXY_ORIGIN_SECRET_SHA256", ORIGIN_SECRET_SHA256),
    ])
    .await;
    t.registered_user(PHONE, PHONE_E164).await;
    for viewer in [
        Some("198.51.100.10:46532"),
        Some("203.0.113.77:443"),
        Some("198.51.100.10:50000"),
        // IPv6 as CloudFront sends it (unbracketed) and bracketed: one /64.
        Some("2001:db8:1:2::7:443"),
        Some("[2001:db8:1:2::8]:443"),
        // Not from CloudFront, or garbled: the edge's (source) address, which cannot be forged.
        None,
        Some("not-an-address"),
    ] {
        lookup_through_edge(&t, viewer).await;
    }
    assert_eq!(
        lookups_per_network(&t).await,
        counts(&[
            ("198.51.100.10", 2),
            ("203.0.113.77", 1),
            ("2001:db8:1:2::/64", 2),
            (EDGE, 2),
        ])
    );
}

#[tokio::test]
async fn behind_cloudfront_a_request_without_the_origin_secret_counts_under_its_source_ip() {
    let t = TestApp::with_env(&[
        ("TRUSTED_PROXY", "cloudfront"),
        ("TRUSTED_PROXY_ORIGIN_SECRET_SHA256", ORIGIN_SECRET_SHA256),
    ])
    .await;
    t.registered_user(PHONE, PHONE_E164).await;
    // A client calling the execute-api URL directly, posing as another network (the owner's,
    // say): without the secret, or with a wrong one, its own address counts.
    let direct = "192.0.2.200";
    for secret in [None, Some("a guess"), Some("")] {
        lookup_from(&t, direct, Some(&format!("{CLIENT_IP}:443")), secret).await;
    }
    assert_eq!(lookups_per_network(&t).await, counts(&[(direct, 3)]));
}
