//! The integration tests: one binary (linking the AWS SDK once, not once per file), one module
//! per area. Every test but `routes` needs DynamoDB Local (`scripts/test` starts one); each
//! creates its own tables under a random prefix, so they run in parallel.
//!
//! All tests share this process, so none may change process-wide state: no `std::env::set_var`
//! (configuration goes through `TestApp::with_env`, a map), no global `tracing` subscriber (the
//! log tests install theirs for their own thread with `CapturedLogs::capture_json` or
//! `capture_text`, through `auth_tests::set_thread_default`, which
//! also keeps tracing's process-wide interest cache from hiding their events, and run on a
//! current-thread runtime), no fixed port (stubs bind port 0) and no shared file (outboxes and
//! temporary directories are named after the test's table prefix).

mod admin;
mod admin_api;
mod admin_script;
mod audit;
mod authorizer;
mod bad_input;
mod check_phone;
mod cognito_migration;
mod concurrency;
mod contract;
mod deployed;
mod discovery;
mod doc_figures;
mod e2e;
mod events;
mod held_keys;
mod import_users;
mod imported_hashes;
mod jwks;
mod kms;
mod lockouts;
mod login;
mod login_otp;
mod outage;
mod owner_lockout;
mod password;
mod phone_change;
mod profile;
mod proxy;
mod published_keys;
mod publisher;
mod refresh_tokens;
mod register;
mod request_counts;
mod requests;
mod routes;
mod secrets;
mod secrets_manager;
mod session_list;
mod sessions;
mod settings;
mod sms;
mod sms_breaker;
mod sms_budgets;
mod sms_providers;
mod sms_pumping;
mod token_hook;
mod verify;
mod walk_through;
