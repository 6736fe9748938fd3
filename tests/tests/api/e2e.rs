//! End to end: the real function binaries under `cargo lambda watch`, on API Gateway's paths,
//! over HTTP, against DynamoDB Local: check-phone -> SMS outbox -> verify -> register -> login
//! -> refresh -> login by code -> session list and delete -> profile -> password change ->
//! logout. The functions log at TRACE, and the test
//! checks that no password, code, token or Authorization header reached their output.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auth_tests::{PASSWORD, PHONE, PHONE_E164, base_env, code_in, register_body, tables, text};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a brand new passphrase";
const WRONG_PASSWORD: &str = "a wrong guess 42";

/// Stops `cargo lambda watch` and the functions it started (one process group) on drop.
struct Watch {
    child: Child,
    log: PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn start_watch(env_file: &Path, port: u16, log: PathBuf) -> Watch {
    let output = std::fs::File::create(&log).expect("watch log");
    let child = Command::new("cargo")
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--invoke-address",
            "127.0.0.1",
        ])
        .args(["--invoke-port", &port.to_string()])
        .arg("--env-file")
        .arg(env_file)
        // cargo lambda's own logs: at its default level it logs no request body or header.
        .env_remove("RUST_LOG")
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("log handle"))
        .stderr(output)
        .process_group(0)
        .spawn()
        .expect("cargo lambda is installed (scripts/test installs it)");
    let watch = Watch { child, log };
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch did not start: {}",
            std::fs::read_to_string(&watch.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    watch
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
#[ignore = "needs cargo-lambda on PATH and builds the binaries; scripts/test runs it"]
async fn sign_up_login_refresh_profile_logout_through_the_real_binaries() {
    let aws = auth_shared::load_aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let prefix = format!("e2e{}-", uuid::Uuid::new_v4().simple());
    let created = tables::create_all(&dynamodb, &prefix)
        .await
        .expect("tables");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let outbox = dir.join("sms-outbox.jsonl");
    let mut env = base_env(&created, &outbox);
    for name in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        env.insert(name.to_owned(), std::env::var(name).expect(name));
    }
    // The most verbose logging there is, for every crate: still no secret may reach the output.
    env.insert("RUST_LOG".to_owned(), "trace".to_owned());
    env.insert("AWS_LAMBDA_LOG_LEVEL".to_owned(), "TRACE".to_owned());
    let env_file = dir.join("functions.env");
    let lines: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    std::fs::write(&env_file, lines.join("\n")).expect("env file");

    let port = free_port();
    let watch = start_watch(&env_file, port, dir.join("watch.log"));
    let base = format!("http://127.0.0.1:{port}");
    // The first call to each function may compile it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("http client");

    let (status, body) = post(
        &client,
        format!("{base}/auth/check-phone/"),
        json!({ "phone": PHONE }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["exists"], false);
    let outbox_text = std::fs::read_to_string(&outbox).expect("an SMS in the outbox");
    let sms: Value = serde_json::from_str(outbox_text.lines().last().unwrap()).unwrap();
    assert_eq!(sms["to"], PHONE_E164);
    let code = code_in(sms["body"].as_str().unwrap()).unwrap();

    let (status, body) = post(
        &client,
        format!("{base}/auth/verify"),
        json!({ "phone": PHONE, "code": code }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["registration_token"].as_str().unwrap().to_owned();

    let (status, body) = post(
        &client,
        format!("{base}/auth/register/"),
        register_body(&token),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    let mut issued_tokens = vec![body["tokens"].clone()];

    let (status, body) = post(
        &client,
        format!("{base}/auth/login"),
        json!({ "phone": PHONE, "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Login successful.");
    let refresh = body["tokens"]["refresh"].as_str().unwrap().to_owned();
    issued_tokens.push(body["tokens"].clone());

    let (status, body) = post(
        &client,
        format!("{base}/auth/refresh/"),
        json!({ "refresh": refresh }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["tokens"]["access"].as_str().unwrap().to_owned();
    issued_tokens.push(body["tokens"].clone());

    // Passwordless: a login code by SMS, then the code alone.
    let (status, body) = post(
        &client,
        format!("{base}/auth/login/otp/request/"),
        json!({ "phone": PHONE }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let outbox_text = std::fs::read_to_string(&outbox).expect("the login SMS");
    let sms: Value = serde_json::from_str(outbox_text.lines().last().unwrap()).unwrap();
    let login_code = code_in(sms["body"].as_str().unwrap()).unwrap();
    let (status, body) = post(
        &client,
        format!("{base}/auth/login/otp"),
        json!({ "phone": PHONE, "code": login_code }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let code_access = body["tokens"]["access"].as_str().unwrap().to_owned();
    issued_tokens.push(body["tokens"].clone());

    // The session list shows the sign-up, password and code logins; one of them is ended.
    let sessions = client
        .get(format!("{base}/auth/sessions/"))
        .bearer_auth(&code_access)
        .header("user-agent", "e2e-client/1.0")
        .send()
        .await
        .expect("GET sessions");
    assert_eq!(sessions.status().as_u16(), 200);
    let sessions: Value = sessions.json().await.expect("JSON sessions");
    let sessions = sessions["sessions"].as_array().expect("a list").clone();
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    assert_eq!(sessions[0]["current"], true, "the code login is the newest");
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    let signed_up = sessions.last().unwrap()["id"].as_str().unwrap().to_owned();
    let ended = client
        .delete(format!("{base}/auth/sessions/{signed_up}"))
        .bearer_auth(&code_access)
        .send()
        .await
        .expect("DELETE session");
    assert_eq!(ended.status().as_u16(), 204);
    let gone = client
        .delete(format!("{base}/auth/sessions/{signed_up}/"))
        .bearer_auth(&code_access)
        .send()
        .await
        .expect("DELETE session again");
    assert_eq!(gone.status().as_u16(), 404);

    let profile = client
        .get(format!("{base}/auth/profile/"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("GET profile");
    assert_eq!(profile.status().as_u16(), 200);
    let profile: Value = profile.json().await.expect("JSON profile");
    assert_eq!(profile["id"], user_id.as_str());
    assert_eq!(profile["phone"], PHONE_E164);

    let change = client
        .post(format!("{base}/auth/password/change/"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(json!({ "old_password": PASSWORD, "new_password": NEW_PASSWORD }).to_string())
        .send()
        .await
        .expect("POST password change");
    assert_eq!(change.status().as_u16(), 204);
    let (status, body) = post(
        &client,
        format!("{base}/auth/login/"),
        json!({ "phone": PHONE, "password": WRONG_PASSWORD }),
    )
    .await;
    assert_eq!(status, 401, "{body}");

    let jwks: Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("GET jwks")
        .json()
        .await
        .expect("JSON key set");
    assert_eq!(jwks["keys"][0]["kty"], "OKP");

    let logout = client
        .post(format!("{base}/auth/logout/"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("POST logout");
    assert_eq!(logout.status().as_u16(), 204);
    let after = client
        .get(format!("{base}/auth/profile"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("GET profile");
    assert_eq!(after.status().as_u16(), 401, "logout takes effect at once");

    let (status, body) = post(
        &client,
        format!("{base}/auth/check-phone"),
        json!({ "phone": PHONE }),
    )
    .await;
    assert_eq!((status, body), (200, json!({ "exists": true })));

    let wrong_method = client
        .get(format!("{base}/auth/login/"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong_method.status().as_u16(), 405);

    let users_table = &created
        .iter()
        .find(|(var, _)| var == "USERS_TABLE")
        .unwrap()
        .1;
    let user = dynamodb
        .get_item()
        .table_name(users_table)
        .key(
            "phone",
            aws_sdk_dynamodb::types::AttributeValue::S(PHONE_E164.into()),
        )
        .send()
        .await
        .expect("get user")
        .item
        .expect("the user is stored");
    assert_eq!(text(&user, "user_id"), Some(user_id.as_str()));

    let mut secrets = vec![
        PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        token,
    ];
    for pair in &issued_tokens {
        for kind in ["access", "refresh"] {
            secrets.push(pair[kind].as_str().unwrap().to_owned());
        }
    }
    for name in [
        "LOCAL_JWT_SIGNING_KEY",
        "LOCAL_KEY_PUBLICATION_SECRET",
        "LOCAL_OTP_HMAC_SECRET",
    ] {
        secrets.push(env[name].clone());
    }
    assert_no_secret_logged(
        &std::fs::read_to_string(&watch.log).expect("watch log"),
        &[code, login_code],
        &secrets,
    );
}

/// The functions' output (captured with cargo lambda's) holds their TRACE-level logs, and none of
/// the secrets: `codes` as whole runs of digits, the others anywhere, nor any Authorization
/// header.
fn assert_no_secret_logged(log: &str, codes: &[String], secrets: &[String]) {
    assert!(
        log.contains("logging started") && log.contains("DEBUG"),
        "the functions' DEBUG output is captured: {log}"
    );
    assert!(
        log.contains("otp_verified") && log.contains("login_succeeded"),
        "the functions' output during requests is captured: {log}"
    );
    assert!(
        !log.split(|c: char| !c.is_ascii_digit())
            .any(|run| codes.iter().any(|code| run == code)),
        "an OTP code reached the logs"
    );
    for secret in secrets {
        let shown: String = secret.chars().take(12).collect();
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the logs: {shown}..."
        );
    }
    let lowercase = log.to_lowercase();
    assert!(
        !lowercase.contains("authorization") && !lowercase.contains("bearer "),
        "an Authorization header reached the logs"
    );
}
