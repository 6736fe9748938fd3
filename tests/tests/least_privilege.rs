//! Least privilege, proven by the test suite: every AWS call a function made during the
//! integration tests (recorded by `auth_tests::calls::CallRecorder` into the file
//! `AWS_CALL_RECORD` names) is allowed by that function's `Policies` in `template.yaml`, and
//! every action a policy allows was made by some test, or is listed below with the reason it
//! is not.
//!
//! The tests under `after_the_suite` read the record of a whole run, so `scripts/test` runs
//! them after every other test (`--skip after_the_suite::`, then this binary alone); the other
//! tests here check the policy reader itself on small templates.

use std::collections::BTreeSet;
use std::path::PathBuf;

use std::time::Duration;

use auth_shared::sms::SMS_TIMEOUT_SECONDS;
use auth_tests::calls::{
    Phase, RECORD_VARIABLE, RecordedCall, RecordedChain, chain_record_path, read_record,
};
use auth_tests::policies::{Decision, Effect, Policies};
use auth_tests::tables::template_path;

/// Actions a policy allows that no test makes, each with the reason it is allowed anyway:
/// (function, action, resource as `Grant::resource_text` writes it, reason).
const ALLOWED_BUT_UNTESTED: &[(&str, &str, &str, &str)] = &[
    (
        "events-publisher",
        "dynamodb:ListStreams",
        "${EventsTable.Arn}/stream/*",
        "Lambda's event source mapping may list the table's streams (AWS lists it among the \
         stream permissions it needs); the tests' reader is given the stream's ARN",
    ),
    (
        "sms-breaker",
        "dynamodb:ListStreams",
        "${AttemptsTable.Arn}/stream/*",
        "Lambda's event source mapping may list the table's streams (AWS lists it among the \
         stream permissions it needs); the tests' reader is given the stream's ARN",
    ),
    (
        "phone-change-request",
        "dynamodb:ConditionCheckItem",
        "AttemptsTable.Arn",
        "the SMS breaker's check of a code to a new number (SmsBreakerMode enforce) is the one \
         check-phone's tests make (guard::commit_send); no phone change test enforces the breaker",
    ),
    (
        "events-publisher",
        "sqs:SendMessage",
        "EventsDeadLetterQueue.Arn",
        "Lambda's event source mapping describes a batch it gave up on in the dead-letter queue; \
         no test runs Lambda's poller",
    ),
];

mod after_the_suite {
    use super::*;

    fn record_path() -> PathBuf {
        std::env::var_os(RECORD_VARIABLE).map(PathBuf::from).unwrap_or_else(|| {
            panic!("{RECORD_VARIABLE} names no call record: run scripts/test, which records the suite's AWS calls and then runs this test")
        })
    }

    fn read_nonempty<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Vec<T> {
        let entries = read_record(path).unwrap_or_else(|e| panic!("the call record: {e}"));
        assert!(
            !entries.is_empty(),
            "the record {} is empty",
            path.display()
        );
        entries
    }

    fn recorded_calls() -> Vec<RecordedCall> {
        read_nonempty(&record_path())
    }

    /// Time a request needs besides its AWS calls: CPU (at most two argon2id hashes, each well
    /// under 0.2 s at the smallest memory size; BENCHMARKS.md) and the runtime's own work.
    const CPU_MARGIN: Duration = Duration::from_secs(2);

    /// Lambda's limit on the init phase, where the cold start's calls run ("The Init phase is
    /// limited to 10 seconds": <https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html>).
    const INIT_LIMIT: Duration = Duration::from_secs(10);

    /// Every function's worst case, with each AWS call at its time limit: the longest chain of
    /// sequential calls any test's request made, plus the SMS call for a function that sends
    /// codes (the tests' SMS providers are not all AWS calls; at most one SMS a request), plus
    /// the CPU margin, fits its `Timeout`; its cold start's chain fits the init phase. Writes
    /// the table to `time-budget.md` beside the record (`.local/` under scripts/test).
    #[test]
    #[ignore = "reads the AWS calls of the whole suite; scripts/test runs it after the suite"]
    fn every_function_fits_its_time_budget() {
        let policies = Policies::from_template(&template_path()).expect("template.yaml");
        let chains: Vec<RecordedChain> = read_nonempty(&chain_record_path(&record_path()));
        let sms_limit = Duration::from_secs(*SMS_TIMEOUT_SECONDS.end());
        let longest = |function: &str, phase: Phase| {
            chains
                .iter()
                .filter(|chain| chain.function == function && chain.phase == phase)
                .max_by_key(|chain| (chain.time_limit(), chain.chain.len()))
        };
        let mut over = Vec::new();
        let mut table = String::from(
            "| function | longest chain of AWS calls in a request | worst case | timeout |\n|---|---|---|---|\n",
        );
        for function in &policies.functions {
            let name = function.function.as_str();
            let Some(request) = longest(name, Phase::Request) else {
                over.push(format!("{name}: no request of the suite reached it"));
                continue;
            };
            let sends_sms = function.sets_variable("SMS_TIMEOUT_SECONDS");
            let sms_in_chain = request
                .chain
                .iter()
                .any(|call| auth_tests::calls::call_time_limit(call) == sms_limit);
            let sms = if sends_sms && !sms_in_chain {
                sms_limit
            } else {
                Duration::ZERO
            };
            let worst = request.time_limit() + sms + CPU_MARGIN;
            let timeout = Duration::from_secs(function.timeout_seconds);
            let calls = if request.chain.is_empty() {
                "none".to_owned()
            } else {
                request.chain.join(" → ")
            };
            let sms_text = if sms.is_zero() { "" } else { " + SMS" };
            table.push_str(&format!(
                "| {name} | {} ({calls}){sms_text} | {} s | {} s |\n",
                request.chain.len(),
                worst.as_secs(),
                timeout.as_secs()
            ));
            if worst > timeout {
                over.push(format!(
                    "{name}: {} s worst case > {} s timeout ({calls}{sms_text})",
                    worst.as_secs(),
                    timeout.as_secs()
                ));
            }
            if let Some(cold) = longest(name, Phase::ColdStart)
                && cold.time_limit() > INIT_LIMIT
            {
                over.push(format!(
                    "{name}'s cold start: {} s > the {} s init phase ({})",
                    cold.time_limit().as_secs(),
                    INIT_LIMIT.as_secs(),
                    cold.chain.join(" → ")
                ));
            }
        }
        let table_path = record_path().with_file_name("time-budget.md");
        std::fs::write(&table_path, &table)
            .unwrap_or_else(|e| panic!("{}: {e}", table_path.display()));
        println!("{table}");
        assert!(over.is_empty(), "over budget:\n{}", over.join("\n"));
    }

    #[test]
    #[ignore = "reads the AWS calls of the whole suite; scripts/test runs it after the suite"]
    fn every_call_a_function_made_is_allowed_by_its_policy() {
        let policies = Policies::from_template(&template_path()).expect("the template's policies");
        let mut refused = BTreeSet::new();
        for call in recorded_calls() {
            match policies.decide(&call).expect("a decidable call") {
                Decision::Allowed(_) => {}
                Decision::NotAllowed => {
                    refused.insert(format!(
                        "{}: {call} is allowed by no statement",
                        call.function
                    ));
                }
                Decision::Denied(index) => {
                    let grant = &policies.function(&call.function).expect("function").grants[index];
                    refused.insert(format!(
                        "{}: {call} is denied by the Deny on {}",
                        call.function,
                        grant.resource_text()
                    ));
                }
            }
        }
        assert!(
            refused.is_empty(),
            "calls the deployed functions would be refused:\n  {}",
            refused.into_iter().collect::<Vec<_>>().join("\n  ")
        );
    }

    #[test]
    #[ignore = "reads the AWS calls of the whole suite; scripts/test runs it after the suite"]
    fn every_action_a_policy_allows_was_made_by_a_test_or_is_listed_as_untested() {
        let policies = Policies::from_template(&template_path()).expect("the template's policies");
        let mut made = BTreeSet::new();
        for call in recorded_calls() {
            if let Decision::Allowed(grants) = policies.decide(&call).expect("a decidable call") {
                for (index, action) in grants {
                    made.insert((call.function.clone(), index, action));
                }
            }
        }
        let mut unmade = Vec::new();
        let mut listed_but_made = Vec::new();
        let mut listed_seen = BTreeSet::new();
        for function in &policies.functions {
            for (index, grant) in function.grants.iter().enumerate() {
                if grant.effect != Effect::Allow {
                    continue;
                }
                let resource = grant.resource_text();
                for action in &grant.actions {
                    let listed = ALLOWED_BUT_UNTESTED.iter().position(|(f, a, r, _)| {
                        *f == function.function && a == action && *r == resource
                    });
                    let was_made =
                        made.contains(&(function.function.clone(), index, action.clone()));
                    let line = format!("{}: {action} on {resource}", function.function);
                    if let Some(position) = listed {
                        listed_seen.insert(position);
                    }
                    match (was_made, listed) {
                        (false, None) => unmade.push(line),
                        (true, Some(_)) => listed_but_made.push(line),
                        _ => {}
                    }
                }
            }
        }
        let stale: Vec<String> = ALLOWED_BUT_UNTESTED
            .iter()
            .enumerate()
            .filter(|(position, _)| !listed_seen.contains(position))
            .map(|(_, (f, a, r, _))| format!("{f}: {a} on {r}"))
            .collect();
        let mut problems = Vec::new();
        for (heading, lines) in [
            (
                "allowed but made by no test (test it, drop it from the policy, or list it with a reason)",
                unmade,
            ),
            (
                "listed as untested but made by a test (drop it from the list)",
                listed_but_made,
            ),
            ("listed as untested but in no policy", stale),
        ] {
            if !lines.is_empty() {
                problems.push(format!("{heading}:\n  {}", lines.join("\n  ")));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Every domain event any test recorded (the events table of every test app on this
    /// DynamoDB Local) is valid under its JSON Schema in `schemas/events/`, as the `jsonschema`
    /// package reads it, and carries no field the schema does not list.
    #[tokio::test]
    #[ignore = "reads the events of the whole suite; scripts/test runs it after the suite"]
    async fn every_event_the_suite_recorded_matches_its_schema() {
        let aws = auth_shared::load_aws_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let mut events = Vec::new();
        let mut tables = dynamodb.list_tables().into_paginator().items().send();
        while let Some(table) = tables.next().await {
            let table = table.expect("list the tables of DynamoDB Local");
            if !table.ends_with("EventsTable") {
                continue;
            }
            let mut pages = dynamodb.scan().table_name(&table).into_paginator().send();
            while let Some(page) = pages.next().await {
                for item in page.expect("scan an events table").items() {
                    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                    let detail = text("detail").expect("a detail");
                    events.push(serde_json::json!({
                        "detail_type": text("detail_type").expect("a detail-type"),
                        "detail": serde_json::from_str::<serde_json::Value>(&detail)
                            .expect("detail is JSON"),
                    }));
                }
            }
        }
        assert!(!events.is_empty(), "the suite recorded no events");
        let checked = auth_tests::run_verifier("event_schemas.py", &events.into()).await;
        assert_eq!(checked["errors"], serde_json::json!([]));
        println!(
            "{} events checked against their schemas",
            checked["checked"]
        );
    }
}

/// The private key in KMS signs for the four signing functions only: no other function's policy
/// names `kms:Sign` (or a wildcard that matches it), under any parameters.
#[test]
fn only_the_signing_functions_may_sign_with_kms() {
    let policies = Policies::from_template(&template_path()).expect("the template's policies");
    let signers: BTreeSet<&str> = policies
        .functions
        .iter()
        .filter(|function| {
            function.grants.iter().any(|grant| {
                grant.effect == Effect::Allow
                    && grant
                        .actions
                        .iter()
                        .any(|action| auth_tests::policies::action_matches(action, "kms:Sign"))
            })
        })
        .map(|function| function.function.as_str())
        .collect();
    assert_eq!(
        signers,
        BTreeSet::from(["login", "login-otp", "refresh", "register"])
    );
}

/// Users are moved from a Cognito pool by the login function alone, on that pool alone: no
/// other function's policy names a `cognito-idp:` action (or a wildcard that matches one), under
/// any parameters, and the login's names the pool of `CognitoMigrationUserPoolId`.
#[test]
fn only_the_login_function_may_ask_the_cognito_pool() {
    let policies = Policies::from_template(&template_path()).expect("the template's policies");
    let mut askers = BTreeSet::new();
    for function in &policies.functions {
        for grant in &function.grants {
            let cognito = grant.actions.iter().any(|action| {
                ["cognito-idp:AdminInitiateAuth", "cognito-idp:AdminGetUser"]
                    .iter()
                    .any(|asked| auth_tests::policies::action_matches(action, asked))
            });
            if grant.effect == Effect::Allow && cognito {
                askers.insert(function.function.as_str());
                assert_eq!(
                    grant.resource_text(),
                    "arn:${AWS::Partition}:cognito-idp:${AWS::Region}:${AWS::AccountId}:userpool/${CognitoMigrationUserPoolId} [if HasCognitoMigration]"
                );
            }
        }
    }
    assert_eq!(askers, BTreeSet::from(["login"]));
}

/// The events reach the bus through the publisher alone: no other function's policy names
/// `events:PutEvents` (or a wildcard that matches it), under any parameters.
#[test]
fn only_the_publisher_may_put_events() {
    let policies = Policies::from_template(&template_path()).expect("the template's policies");
    let putters: BTreeSet<&str> = policies
        .functions
        .iter()
        .filter(|function| {
            function.grants.iter().any(|grant| {
                grant.effect == Effect::Allow
                    && grant.actions.iter().any(|action| {
                        auth_tests::policies::action_matches(action, "events:PutEvents")
                    })
            })
        })
        .map(|function| function.function.as_str())
        .collect();
    assert_eq!(putters, BTreeSet::from(["events-publisher"]));
}

#[test]
fn the_example_route_may_only_write_its_logs() {
    // GET /hello answers from what API Gateway's JWT authorizer hands it: no table, secret or
    // key. Without Policies or a Role, SAM gives it AWSLambdaBasicExecutionRole alone (its logs).
    let policies = Policies::from_template(&template_path()).expect("the template's policies");
    let hello = policies.function("hello").expect("the hello function");
    assert!(hello.grants.is_empty(), "{:?}", hello.grants);
    let (_, resources) = auth_tests::tables::read_template(&template_path()).expect("template");
    let properties = resources
        .get(hello.logical_id.as_str())
        .and_then(|resource| resource.get("Properties"))
        .expect("the function's properties");
    for key in ["Policies", "Role", "Environment", "VpcConfig"] {
        assert!(properties.get(key).is_none(), "HelloFunction has {key}");
    }
}

// The reader and evaluator themselves, on small templates (no call record needed).

const TEMPLATE: &str = r#"
Parameters:
  SmsProvider: { Type: String, Default: sns }
  Hook: { Type: String, Default: "" }
Conditions:
  UseSns: !Equals [!Ref SmsProvider, sns]
  UseHook: !Equals [!Ref SmsProvider, lambda]
Resources:
  UsersTable: { Type: AWS::DynamoDB::Table }
  KeySecret: { Type: AWS::SecretsManager::Secret }
  Fn:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: fn } }
    Properties:
      Environment:
        Variables:
          KEY_ID: !Ref KeySecret
          HOOK: !Ref Hook
      Policies:
        - DynamoDBReadPolicy: { TableName: !Ref UsersTable }
        - Statement:
            - Effect: Allow
              Action: dynamodb:PutItem
              Resource: !GetAtt UsersTable.Arn
            - !If [UseSns, { Effect: Allow, Action: sns:Publish, Resource: "*" }, !Ref AWS::NoValue]
            - Effect: Deny
              Action: sns:Publish
              Resource: !Sub "arn:${AWS::Partition}:sns:*:*:*"
            - !If
              - UseHook
              - Effect: Allow
                Action: lambda:InvokeFunction
                Resource: !Sub "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${Hook}"
              - !Ref AWS::NoValue
            - Effect: Allow
              Action: secretsmanager:GetSecretValue
              Resource: !Ref KeySecret
"#;

fn call(action: &str, resource: Option<&str>, parameters: &[(&str, &str)]) -> RecordedCall {
    RecordedCall {
        function: "fn".to_owned(),
        parameters: parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        action: action.to_owned(),
        resource: resource.map(str::to_owned),
    }
}

fn decide(call: &RecordedCall) -> Decision {
    Policies::from_yaml(TEMPLATE)
        .expect("the small template")
        .decide(call)
        .expect("decidable")
}

const USERS: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/UsersTable";

#[test]
fn a_table_arn_allows_its_table_and_not_another_nor_an_index() {
    assert!(matches!(
        decide(&call("dynamodb:PutItem", Some(USERS), &[])),
        Decision::Allowed(_)
    ));
    let other = "arn:aws:dynamodb:us-east-1:123456789012:table/OtpsTable";
    assert_eq!(
        decide(&call("dynamodb:PutItem", Some(other), &[])),
        Decision::NotAllowed
    );
    let index = format!("{USERS}/index/by-email");
    assert_eq!(
        decide(&call("dynamodb:PutItem", Some(&index), &[])),
        Decision::NotAllowed
    );
    assert_eq!(
        decide(&call("dynamodb:DeleteItem", Some(USERS), &[])),
        Decision::NotAllowed
    );
}

#[test]
fn a_sam_policy_template_allows_its_documented_actions_on_the_table_and_its_indexes() {
    for action in [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:BatchGetItem",
    ] {
        assert!(
            matches!(
                decide(&call(action, Some(USERS), &[])),
                Decision::Allowed(_)
            ),
            "{action}"
        );
    }
    let index = format!("{USERS}/index/by-email");
    assert!(matches!(
        decide(&call("dynamodb:Query", Some(&index), &[])),
        Decision::Allowed(_)
    ));
    assert_eq!(
        decide(&call("dynamodb:UpdateItem", Some(USERS), &[])),
        Decision::NotAllowed
    );
}

#[test]
fn a_statement_under_a_condition_allows_only_when_the_parameters_meet_it() {
    let sns = [("SmsProvider", "sns")];
    let hook = [("SmsProvider", "lambda"), ("Hook", "sms-hook")];
    assert!(matches!(
        decide(&call("sns:Publish", None, &sns)),
        Decision::Allowed(_)
    ));
    assert_eq!(
        decide(&call("sns:Publish", None, &hook)),
        Decision::NotAllowed
    );
    let function = "arn:aws:lambda:us-east-1:123456789012:function:sms-hook";
    assert!(matches!(
        decide(&call("lambda:InvokeFunction", Some(function), &hook)),
        Decision::Allowed(_)
    ));
    assert_eq!(
        decide(&call("lambda:InvokeFunction", Some(function), &sns)),
        Decision::NotAllowed
    );
    let another = "arn:aws:lambda:us-east-1:123456789012:function:other";
    assert_eq!(
        decide(&call("lambda:InvokeFunction", Some(another), &hook)),
        Decision::NotAllowed
    );
    let foreign = "arn:aws:lambda:us-east-1:999999999999:function:sms-hook";
    assert_eq!(
        decide(&call("lambda:InvokeFunction", Some(foreign), &hook)),
        Decision::NotAllowed
    );
}

#[test]
fn a_deny_refuses_what_an_allow_allows_and_a_resourceless_call_needs_a_star() {
    let topic = "arn:aws:sns:us-east-1:123456789012:alerts";
    assert!(matches!(
        decide(&call("sns:Publish", Some(topic), &[])),
        Decision::Denied(_)
    ));
    assert!(matches!(
        decide(&call("sns:Publish", None, &[])),
        Decision::Allowed(_)
    ));
    assert_eq!(
        decide(&call("dynamodb:PutItem", None, &[])),
        Decision::NotAllowed
    );
}

#[test]
fn a_secrets_ref_is_its_arn_in_the_policy_and_in_the_environment() {
    let policies = Policies::from_yaml(TEMPLATE).expect("the small template");
    let env = policies
        .environment("fn", &Default::default(), "us-east-1")
        .expect("the environment");
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:KeySecret";
    assert_eq!(env["KEY_ID"], arn);
    assert_eq!(env["HOOK"], "", "a parameter's Default");
    assert!(matches!(
        decide(&call("secretsmanager:GetSecretValue", Some(arn), &[])),
        Decision::Allowed(_)
    ));
    let other = "arn:aws:secretsmanager:us-east-1:123456789012:secret:Other";
    assert_eq!(
        decide(&call("secretsmanager:GetSecretValue", Some(other), &[])),
        Decision::NotAllowed
    );
}

#[test]
fn a_policy_the_checker_cannot_read_is_an_error_not_a_pass() {
    let managed = TEMPLATE.replace(
        "        - DynamoDBReadPolicy: { TableName: !Ref UsersTable }",
        "        - AmazonDynamoDBFullAccess",
    );
    assert!(Policies::from_yaml(&managed).is_err());
    let unknown = TEMPLATE.replace("DynamoDBReadPolicy", "DynamoDBStreamReadPolicy");
    assert!(Policies::from_yaml(&unknown).is_err());
}

/// Allow grants whose resource holds a wildcard, each with the reason it cannot be narrower:
/// (action, resource as `Grant::resource_text` writes it, reason). Without this list, one call
/// that "uses" a wildcard would hide every other resource the wildcard opens.
const WIDE_GRANTS: &[(&str, &str, &str)] = &[
    (
        "dynamodb:ListStreams",
        "${EventsTable.Arn}/stream/*",
        "the events table's streams, whatever label DynamoDB gave them (SAM's \
         DynamoDBStreamReadPolicy grants it so); lists ARNs, reads no record",
    ),
    (
        "dynamodb:ListStreams",
        "${AttemptsTable.Arn}/stream/*",
        "the attempts table's streams, whatever label DynamoDB gave them, for the SMS breaker; \
         lists ARNs, reads no record",
    ),
    (
        "sms-voice:PutMessageFeedback",
        "* [if UseEndUserMessagingSms]",
        "feedback names a message by its id, which has no resource type in IAM",
    ),
    (
        "sns:Publish",
        "* [if UseSnsSms]",
        "an SMS to a phone number has no resource in IAM; topics and platform endpoints are \
         denied beside it (sns_topics_are_denied_to_every_sender)",
    ),
    (
        "sms-voice:SendTextMessage",
        "arn:${AWS::Partition}:sms-voice:${AWS::Region}:${AWS::AccountId}:* [if UseEndUserMessagingSms and HasSmsOriginationIdentity]",
        "the identity parameter may be a phone number, sender id or pool, by id or ARN: the \
         account's End User Messaging resources in this region (narrowing it per kind is open)",
    ),
    (
        "sms-voice:SendTextMessage",
        "* [if UseEndUserMessagingSms and not HasSmsOriginationIdentity]",
        "without an identity AWS picks one of the account's; IAM asks for `*`",
    ),
];

#[test]
fn no_grant_is_wider_than_a_listed_reason_allows() {
    let policies = Policies::from_template(&template_path()).expect("read template.yaml");
    let mut problems = Vec::new();
    for function in &policies.functions {
        for grant in &function.grants {
            if grant.effect != Effect::Allow {
                continue;
            }
            let resource = grant.resource_text();
            for action in &grant.actions {
                let listed = WIDE_GRANTS
                    .iter()
                    .any(|(a, r, _)| a == action && *r == resource);
                if action.contains('*') || (resource.contains('*') && !listed) {
                    problems.push(format!("{}: {action} on {resource}", function.function));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "wildcards without a reason in WIDE_GRANTS:\n{}",
        problems.join("\n")
    );
}

#[test]
fn sns_topics_are_denied_to_every_sender() {
    let policies = Policies::from_template(&template_path()).expect("read template.yaml");
    let senders: Vec<&str> = policies
        .functions
        .iter()
        .filter(|f| {
            f.grants
                .iter()
                .any(|g| g.actions.iter().any(|a| a == "sns:Publish"))
        })
        .map(|f| f.function.as_str())
        .collect();
    assert_eq!(
        senders.len(),
        6,
        "the five functions that send codes and phone-change-confirm (its notice): {senders:?}"
    );
    for sender in senders {
        let mut publish = call(
            "sns:Publish",
            Some("arn:aws:sns:us-east-1:123456789012:alerts"),
            &[("SmsProvider", "sns")],
        );
        publish.function = sender.to_owned();
        assert!(
            matches!(policies.decide(&publish), Ok(Decision::Denied(_))),
            "{sender} may publish to a topic"
        );
    }
}

#[test]
fn no_permission_comes_from_outside_the_functions_policies() {
    let text = std::fs::read_to_string(template_path()).expect("read template.yaml");
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    let resources = template["Resources"].as_mapping().expect("Resources");
    for (name, resource) in resources {
        let kind = resource["Type"].as_str().unwrap_or_default();
        assert!(
            !kind.starts_with("AWS::IAM::") && kind != "AWS::Lambda::Function",
            "{name:?} is a {kind}: the least-privilege tests read only the functions' Policies"
        );
        if kind == "AWS::Serverless::Function" {
            assert!(
                resource["Properties"].get("Role").is_none(),
                "{name:?} has a Role: SAM would ignore its Policies"
            );
        }
    }
    assert!(
        template["Globals"]["Function"].get("Role").is_none(),
        "a global Role would replace every function's Policies"
    );
}
