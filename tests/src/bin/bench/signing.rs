//! Token signing: this process's CPU and time per `TokenIssuer::issue` (what a sign-up, login or
//! refresh does to make its token pair: one access token signed, the refresh token opaque) under
//! each way of signing, and per pair as issued before refresh tokens were opaque (two EdDSA
//! signatures). KMS is the tests' emulator (moto, when `KMS_TEST_ENDPOINT` is set: `scripts/bench`
//! starts it): its figures are this process's CPU for the `Sign` request (SigV4, HTTP, JSON),
//! not the signature, which KMS computes, and its time is the emulator's, not KMS's latency.

use std::path::Path;
use std::time::{Duration, Instant};

use auth_tests::TestApp;
use aws_sdk_kms::types::KeySpec;

use crate::emulator::process_cpu_time;
use crate::report::percentile;
use crate::setup::Options;

/// One way of signing, measured.
pub struct SigningCost {
    pub name: &'static str,
    /// KMS requests per token pair.
    pub kms_requests: usize,
    pub calls: usize,
    pub cpu_mean: Duration,
    pub wall_p50: Duration,
}

/// A way of signing: its settings (beside the benchmark's), whether it is the pair as issued
/// before refresh tokens were opaque, and its KMS requests per pair.
struct Mode {
    name: &'static str,
    settings: Vec<(&'static str, String)>,
    legacy_pair: bool,
    kms_requests: usize,
}

/// A fresh PKCS#8 PEM key (`openssl genpkey`, as docs/operations.md makes one) in `dir`.
fn pem_key(dir: &Path, name: &str, options: &[&str]) -> String {
    let path = dir.join(name);
    let made = std::process::Command::new("openssl")
        .arg("genpkey")
        .args(options)
        .arg("-out")
        .arg(&path)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "openssl genpkey: {made:?}");
    path.display().to_string()
}

async fn modes(dir: &Path) -> Vec<Mode> {
    let rsa = pem_key(
        dir,
        "rs256.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let ec = pem_key(
        dir,
        "es256.pem",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let held = |algorithm: &str, path: &str| {
        vec![
            ("JWT_ALGORITHM", algorithm.to_owned()),
            // The same in-process signing as a key from JwtSigningSecretArn.
            ("LOCAL_JWT_PRIVATE_KEY_FILE", path.to_owned()),
        ]
    };
    let mut modes = vec![
        Mode {
            name: "EdDSA, before opaque refresh tokens (access + refresh JWT)",
            settings: Vec::new(),
            legacy_pair: true,
            kms_requests: 0,
        },
        Mode {
            name: "EdDSA (key held, JwtSigningSecret)",
            settings: Vec::new(),
            legacy_pair: false,
            kms_requests: 0,
        },
        Mode {
            name: "RS256, key held (JwtSigningSecretArn)",
            settings: held("RS256", &rsa),
            legacy_pair: false,
            kms_requests: 0,
        },
        Mode {
            name: "ES256, key held (JwtSigningSecretArn)",
            settings: held("ES256", &ec),
            legacy_pair: false,
            kms_requests: 0,
        },
    ];
    if std::env::var(auth_tests::kms::ENDPOINT_VARIABLE).is_ok() {
        for (name, algorithm, spec) in [
            ("RS256 in KMS (emulator)", "RS256", KeySpec::Rsa2048),
            ("ES256 in KMS (emulator)", "ES256", KeySpec::EccNistP256),
        ] {
            let key = auth_tests::kms::create_key(spec).await;
            modes.push(Mode {
                name,
                settings: vec![
                    ("JWT_ALGORITHM", algorithm.to_owned()),
                    ("JWT_KMS_KEY_ID", key),
                ],
                legacy_pair: false,
                kms_requests: 1,
            });
        }
    }
    modes
}

/// Each way of signing, `calls` token pairs one after another, after one to warm up (an EdDSA
/// signer publishes its key with its first token).
pub async fn measure(options: &Options) -> Vec<SigningCost> {
    let calls = if options.smoke { 3 } else { 200 };
    let dir = std::env::temp_dir().join(format!("bench-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a key directory");
    let own_cpu = || process_cpu_time(std::process::id());
    let mut costs = Vec::new();
    for mode in modes(&dir).await {
        let settings: Vec<(&str, &str)> = mode
            .settings
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let t = TestApp::with_env(&settings).await;
        let tokens = &t.app.tokens;
        let pair = async || {
            let now = auth_tests::now();
            tokens
                .issue(("user", "session"), &Default::default(), now)
                .await
                .expect("a pair");
            if mode.legacy_pair {
                tokens
                    .legacy_refresh_jwt("user", "session", now)
                    .await
                    .expect("a refresh JWT");
            }
        };
        pair().await;
        let mut walls = Vec::new();
        let cpu_before = own_cpu();
        for _ in 0..calls {
            let start = Instant::now();
            pair().await;
            walls.push(start.elapsed());
        }
        let cpu = own_cpu()
            .zip(cpu_before)
            .map_or(Duration::ZERO, |(after, before)| {
                after.saturating_sub(before)
            });
        walls.sort();
        costs.push(SigningCost {
            name: mode.name,
            kms_requests: mode.kms_requests,
            calls,
            cpu_mean: cpu / u32::try_from(calls).unwrap_or(1),
            wall_p50: percentile(&walls, 50.0),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    costs
}
