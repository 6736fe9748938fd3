//! The importer (`tools/import-users`, issue 25) against DynamoDB Local, run in-process from its
//! command line: a Django project's `dumpdata` made by Django itself (`create_user` under each
//! hasher), JSON lines and CSV with hashes made by the bcrypt and argon2-cffi libraries. Each
//! imported user then logs in with the original password and is moved to argon2id; a second run
//! imports nothing; bad rows are reported and not written; two runs at once write each account
//! once; an account already here is never overwritten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use auth_tests::fixtures::{python_fixture, scratch_dir};
use auth_tests::{PASSWORD, PHONE, PHONE_E164, TestApp, num, text};
use clap::Parser;
use import_users::{Options, Summary};
use serde_json::{Value, json};

/// Runs the importer on `file` into `t`'s users table, as `import-users <file> <args>` would.
async fn import(t: &TestApp, file: &Path, args: &[&str]) -> Summary {
    let mut command = vec![
        "import-users".to_owned(),
        file.display().to_string(),
        "--table".to_owned(),
        t.tables().users.clone(),
        "--default-region".to_owned(),
        "IR".to_owned(),
    ];
    command.extend(args.iter().map(|arg| (*arg).to_owned()));
    let options = Options::try_parse_from(command).expect("valid flags");
    import_users::run(options).await.expect("the import ran")
}

/// The rejects file: the phone as the source had it -> the reason.
fn rejects(summary: &Summary) -> HashMap<String, String> {
    std::fs::read_to_string(&summary.rejects)
        .expect("the rejects file")
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).expect("a JSON line");
            assert!(line["detail"].as_str().is_some_and(|d| !d.is_empty()));
            (
                line["phone"].as_str().unwrap_or("(none)").to_owned(),
                line["reason"].as_str().expect("a reason").to_owned(),
            )
        })
        .collect()
}

async fn stored_hash(t: &TestApp, e164: &str) -> Option<String> {
    let user = t.user(e164).await?;
    text(&user, "password_hash").map(str::to_owned)
}

/// The Django project's users (`tests/fixtures/django_users.py`) dumped into `dir` in `form`:
/// the dump, and each user's username and password.
async fn django_dump(dir: &Path, form: &str) -> (PathBuf, Vec<(String, String)>) {
    let dump = dir.join(format!("users.{form}"));
    let made = python_fixture(
        "django_users.py",
        &[&dump.display().to_string(), form],
        &json!({}),
    )
    .await;
    let users = made
        .as_array()
        .expect("a list")
        .iter()
        .map(|user| {
            (
                user["username"].as_str().unwrap().to_owned(),
                user["password"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (dump, users)
}

/// Django's hash of each username in `dump`.
fn dumped_hashes(dump: &Path) -> HashMap<String, String> {
    let objects: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dump).unwrap())
        .expect("dumpdata's JSON array");
    objects
        .iter()
        .map(|object| {
            let fields = &object["fields"];
            (
                fields["username"].as_str().unwrap().to_owned(),
                fields["password"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_django_dump_is_imported_and_each_user_logs_in_with_their_own_password() {
    let t = TestApp::new().await;
    let dir = scratch_dir();
    let (dump, made) = django_dump(&dir, "json").await;
    let django_hashes = dumped_hashes(&dump);
    let ids = dir.join("ids.csv");
    let django = [
        "--format",
        "django",
        "--model",
        "auth.user",
        "--phone-field",
        "username",
    ];
    let args = [&django[..], &["--ids", ids.to_str().unwrap()]].concat();

    let summary = import(&t, &dump, &args).await;
    assert_eq!(
        (summary.rows, summary.imported, summary.already_present),
        (11, 5, 0),
        "{summary}"
    );
    assert_eq!(
        (
            summary.duplicates,
            summary.invalid_phone,
            summary.unsupported_hash,
            summary.invalid_profile,
            summary.failed
        ),
        (2, 1, 2, 1, 0),
        "{summary}"
    );
    // Two items per account (the table's and its index's), each under 1 KB.
    assert_eq!(summary.write_units, 10.0, "{summary}");
    let rejected = rejects(&summary);
    let expected_rejections = [
        ("+989120000006", "duplicate_after_normalising"),
        ("09120000006", "duplicate_after_normalising"),
        ("12345", "invalid_phone"),
        ("09120000009", "unsupported_hash"),
        ("09120000010", "unsupported_hash"),
        ("09120000011", "invalid_profile"),
    ];
    assert_eq!(
        rejected,
        expected_rejections
            .iter()
            .map(|(phone, reason)| ((*phone).to_owned(), (*reason).to_owned()))
            .collect()
    );
    // Nothing of a rejected row was written.
    for e164 in [
        "+989120000006",
        "+989120000009",
        "+989120000010",
        "+989120000011",
    ] {
        assert!(t.user(e164).await.is_none(), "{e164}");
    }
    assert_eq!(t.scan(&t.tables().users).await.len(), 5);

    // The first user as Django had it: its hash as stored, its profile, the time it joined.
    let sara = t.user("+989120000001").await.expect("imported");
    assert_eq!(
        text(&sara, "password_hash"),
        django_hashes.get("0912 000 0001").map(String::as_str)
    );
    assert_eq!(text(&sara, "first_name"), Some("Sara"));
    assert_eq!(text(&sara, "email"), Some("Sara@example.com"));
    assert_eq!(num(&sara, "created_at"), Some(1_614_834_367));
    // The inactive one is imported disabled.
    let inactive = t.user("+989120000005").await.expect("imported");
    assert_eq!(
        inactive.get("disabled").and_then(|d| d.as_bool().ok()),
        Some(&true)
    );

    // Each imported user logs in with the password it had, and its hash becomes argon2id.
    for (username, password) in &made {
        let e164 = match username.as_str() {
            "0912 000 0001" => "+989120000001",
            "+98 912 000 0002" => "+989120000002",
            "0098 912 000 0003" => "+989120000003",
            "09120000004" => "+989120000004",
            "09120000005" => "+989120000005",
            _ => continue,
        };
        assert_eq!(
            t.login_with(username, "the wrong password").await.status,
            401
        );
        if e164 == "+989120000005" {
            assert_eq!(
                t.login_with(username, password).await.status,
                403,
                "disabled"
            );
            assert_eq!(
                stored_hash(&t, e164).await.as_ref(),
                django_hashes.get(username)
            );
            continue;
        }
        assert_eq!(
            t.login_with(username, password).await.status,
            200,
            "{username}"
        );
        let upgraded = stored_hash(&t, e164).await.unwrap();
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{upgraded}"
        );
    }

    // A second run imports nothing and says so; the ids file maps the same accounts.
    let first_ids = std::fs::read_to_string(&ids).unwrap();
    let again = import(&t, &dump, &args).await;
    assert_eq!((again.imported, again.already_present), (0, 5), "{again}");
    assert_eq!(again.rejected(), 6);
    assert!(again.to_string().contains("already present"));
    let second_ids = std::fs::read_to_string(&ids).unwrap();
    assert_eq!(
        first_ids.replace(",imported", ",already_present"),
        sorted_like(&second_ids, &first_ids)
    );
    assert_eq!(t.scan(&t.tables().users).await.len(), 5);

    // Django's `jsonl` format reads the same.
    let t = TestApp::new().await;
    let (lines, _) = django_dump(&dir, "jsonl").await;
    let summary = import(&t, &lines, &django).await;
    assert_eq!(
        (summary.rows, summary.imported, summary.rejected()),
        (11, 5, 6)
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `lines` (a CSV with a header) in the order of `like`'s lines, by their first cell.
fn sorted_like(lines: &str, like: &str) -> String {
    let by_id: HashMap<&str, &str> = lines
        .lines()
        .map(|line| (line.split(',').next().unwrap(), line))
        .collect();
    like.lines()
        .map(|line| format!("{}\n", by_id[line.split(',').next().unwrap()]))
        .collect()
}

#[tokio::test]
async fn json_lines_and_csv_with_library_hashes_import_and_log_in() {
    let hashes = python_fixture("library_hashes.py", &[], &json!({ "password": PASSWORD })).await;
    let bcrypt = hashes["bcrypt"].as_str().unwrap();
    let argon2 = hashes["argon2-cffi"].as_str().unwrap();
    assert!(bcrypt.starts_with("$2b$10$") && argon2.starts_with("$argon2id$v=19$m=65536"));
    let dir = scratch_dir();

    let t = TestApp::new().await;
    let jsonl = dir.join("users.jsonl");
    let rows = [
        json!({ "id": 1, "phone": "09120000001", "password_hash": bcrypt, "first_name": "Ali",
                "phone_verified": true }),
        json!({ "id": 2, "phone": "+98 912 000 0002", "password_hash": argon2,
                "created_at": 1_600_000_000, "active": true, "phone_verified": "True" }),
        json!({ "id": 3, "phone": "09120000003", "password_hash": "sha1$salt$abc",
                "phone_verified": true }),
        json!({ "id": 4, "phone": "09120000004", "password_hash": bcrypt,
                "phone_verified": false }),
        json!({ "id": 5, "phone": "09120000005", "password_hash": bcrypt }),
    ];
    let mut text_lines: Vec<String> = rows.iter().map(Value::to_string).collect();
    text_lines.insert(1, "not json at all".to_owned());
    std::fs::write(&jsonl, text_lines.join("\n") + "\n").unwrap();
    let verified_only = ["--format", "jsonl", "--verified-field", "phone_verified"];
    let summary = import(&t, &jsonl, &verified_only).await;
    assert_eq!(
        (
            summary.rows,
            summary.imported,
            summary.unreadable,
            summary.unsupported_hash,
            summary.unverified_phone
        ),
        (6, 2, 1, 1, 2),
        "{summary}"
    );
    for e164 in ["+989120000004", "+989120000005"] {
        assert!(t.user(e164).await.is_none(), "{e164}: unverified");
    }
    assert_eq!(
        num(&t.user("+989120000002").await.unwrap(), "created_at"),
        Some(1_600_000_000)
    );
    for e164 in ["+989120000001", "+989120000002"] {
        assert_eq!(t.login_with(e164, PASSWORD).await.status, 200, "{e164}");
        let upgraded = stored_hash(&t, e164).await.unwrap();
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{upgraded}"
        );
    }

    let t = TestApp::new().await;
    let csv = dir.join("users.csv");
    std::fs::write(
        &csv,
        format!(
            "user_id,mobile,hash,first_name,email\n\
             10,0912 000 0010,{bcrypt},Reza,reza@example.com\n\
             11,0912 000 0011\n\
             12,09120000012,\"{argon2}\",\"Mina, Jr\",\n"
        ),
    )
    .unwrap();
    let summary = import(
        &t,
        &csv,
        &[
            "--format",
            "csv",
            "--phone-field",
            "mobile",
            "--password-field",
            "hash",
            "--id-field",
            "user_id",
        ],
    )
    .await;
    assert_eq!(
        (summary.rows, summary.imported, summary.unreadable),
        (3, 2, 1),
        "{summary}\n{}",
        std::fs::read_to_string(&summary.rejects).unwrap_or_default()
    );
    let reza = t.user("+989120000010").await.unwrap();
    assert_eq!(text(&reza, "email"), Some("reza@example.com"));
    assert_eq!(
        text(&t.user("+989120000012").await.unwrap(), "first_name"),
        Some("Mina, Jr")
    );
    assert_eq!(t.login_with("09120000010", PASSWORD).await.status, 200);
    assert_eq!(
        t.login_with("09120000012", "not the password").await.status,
        401
    );
    let unreadable = std::fs::read_to_string(&summary.rejects).unwrap();
    assert!(
        unreadable.contains("\"row\":3") && unreadable.contains("\"id\":null"),
        "{unreadable}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `count` rows of made-up users (a well-formed PBKDF2 hash each: the import checks its form,
/// login would check the password).
fn made_up_users(path: &Path, count: u32) {
    let lines: Vec<String> = (0..count)
        .map(|n| {
            json!({
                "id": n,
                "phone": format!("0912{:07}", 1_000_000 + n),
                "password_hash": "pbkdf2_sha256$1000$salt$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No=",
            })
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runs_of_one_file_at_once_write_each_account_once() {
    let t = TestApp::new().await;
    let dir = scratch_dir();
    let file = dir.join("users.jsonl");
    made_up_users(&file, 60);
    let (first_rejects, second_rejects) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    let first_args = [
        "--format",
        "jsonl",
        "--rejects",
        first_rejects.to_str().unwrap(),
    ];
    let second_args = [
        "--format",
        "jsonl",
        "--rejects",
        second_rejects.to_str().unwrap(),
    ];
    let (first, second) = tokio::join!(
        import(&t, &file, &first_args),
        import(&t, &file, &second_args),
    );
    assert_eq!(first.imported + second.imported, 60, "{first}\n{second}");
    assert_eq!(first.already_present + second.already_present, 60);
    let items = t.scan(&t.tables().users).await;
    assert_eq!(items.len(), 60);
    // Each account is one run's: the other found it there and wrote nothing.
    let mut ids: Vec<&str> = items
        .iter()
        .filter_map(|item| text(item, "user_id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 60);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_an_account_here_is_never_overwritten() {
    let t = TestApp::new().await;
    let registered = t.registered_user(PHONE, PHONE_E164).await;
    let user_id = registered.body["user"]["id"].as_str().unwrap().to_owned();
    let own_hash = stored_hash(&t, PHONE_E164).await.unwrap();
    let dir = scratch_dir();
    let file = dir.join("users.jsonl");
    made_up_users(&file, 3);
    // The number registered here, in another form, with the made-up hash.
    let mut rows = std::fs::read_to_string(&file).unwrap();
    rows.push_str(
        &json!({ "id": "x", "phone": "+98 910 123 4567",
                 "password_hash": "pbkdf2_sha256$1000$salt$5zF9IsNQDpP/iTgRXoPHDpEmj7hd6ORDYHrjjCbs5No=" })
        .to_string(),
    );
    std::fs::write(&file, format!("{rows}\n")).unwrap();
    let ids = dir.join("ids.csv");
    let args = ["--format", "jsonl", "--ids", ids.to_str().unwrap()];

    // Refused before anything is read: a Django dump without its model, a file that is not
    // one (it is read twice).
    let refused = |file: &Path, args: &[&str]| {
        let mut command = vec!["import-users", file.to_str().unwrap()];
        command.extend(["--table", "t", "--default-region", "IR"]);
        command.extend(args);
        let options = Options::try_parse_from(command).expect("valid flags");
        async move { import_users::run(options).await.expect_err("refused") }
    };
    let no_model = refused(&file, &["--format", "django"]).await;
    assert!(no_model.to_string().contains("--model"), "{no_model}");
    let not_a_file = refused(&dir, &["--format", "jsonl"]).await;
    assert!(
        not_a_file.to_string().contains("regular file"),
        "{not_a_file}"
    );

    let dry = import(&t, &file, &[&args[..], &["--dry-run"]].concat()).await;
    assert_eq!((dry.imported, dry.already_present), (3, 1), "{dry}");
    assert!(dry.to_string().contains("would be imported"), "{dry}");
    assert_eq!(t.scan(&t.tables().users).await.len(), 1, "nothing written");

    let real = import(&t, &file, &args).await;
    assert_eq!((real.imported, real.already_present), (3, 1), "{real}");
    assert_eq!(real.rejected(), 0, "already present is no rejection");
    assert_eq!(stored_hash(&t, PHONE_E164).await.unwrap(), own_hash);
    assert_eq!(t.login_with(PHONE, PASSWORD).await.status, 200);
    let mapped = std::fs::read_to_string(&ids).unwrap();
    assert!(
        mapped.contains(&format!("x,{user_id},already_present")),
        "{mapped}"
    );
    std::fs::remove_dir_all(dir).ok();
}
