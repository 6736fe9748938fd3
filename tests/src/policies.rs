//! The functions' IAM policies as `template.yaml` writes them, resolved into (action,
//! resource-pattern) grants and evaluated like IAM evaluates an identity policy: a call is
//! allowed when an `Allow` grant matches it and no `Deny` grant does. Read by the
//! least-privilege test, which holds the calls the test suite recorded (`calls.rs`) against them.
//!
//! Resolution follows CloudFormation, with the names the call record uses: a table's `!Ref` is
//! its logical id and its `Arn` `arn:aws:dynamodb:<region>:<account>:table/<LogicalId>`, a
//! secret's `!Ref` its ARN with the logical id as its name, a KMS key's `Arn` the call's
//! parameter `<LogicalId>.Arn` (KMS picks key ids), the account `calls::TEST_ACCOUNT`
//! and the region the call was made in. Parameters take the value the call's configuration
//! corresponds to (`CallContext::parameters`), else their `Default`; so a statement under a
//! Condition (`!If [UseSnsSms, ...]`) allows a call only if the test configured that case.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use crate::calls::{RecordedCall, TEST_ACCOUNT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One action list on one resource of one statement, under the conditions the `!If`s around
/// it chose. A statement with several resources (or an `!If` between two) is several grants.
#[derive(Debug, Clone)]
pub struct Grant {
    pub effect: Effect,
    pub actions: Vec<String>,
    /// The resource as the template writes it (resolved per call).
    resource: Value,
    /// The Conditions that must hold (true) or fail (false) for the grant to exist.
    guards: Vec<(String, bool)>,
    /// Where it comes from: `Statement` or a SAM policy template's name.
    pub origin: String,
}

impl Grant {
    /// The resource as written, e.g. `UsersTable.Arn`, `*` or a `!Sub` string, followed by
    /// the conditions it is under: `* [if UseSnsSms]`.
    pub fn resource_text(&self) -> String {
        let mut text = describe(&self.resource);
        if !self.guards.is_empty() {
            let guards: Vec<String> = self
                .guards
                .iter()
                .map(|(name, holds)| {
                    if *holds {
                        name.clone()
                    } else {
                        format!("not {name}")
                    }
                })
                .collect();
            text.push_str(&format!(" [if {}]", guards.join(" and ")));
        }
        text
    }
}

/// A function of the template and its grants.
#[derive(Debug, Clone)]
pub struct FunctionPolicy {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the name calls are attributed to.
    pub function: String,
    pub grants: Vec<Grant>,
    /// Its `Timeout` in seconds (its own, else the `Globals` one; Lambda's default 3 s without).
    pub timeout_seconds: u64,
    /// Its own `Environment.Variables` (not the `Globals` ones), unresolved.
    environment: Mapping,
}

impl FunctionPolicy {
    /// Whether the function sets `variable` itself (whatever its value).
    pub fn sets_variable(&self, variable: &str) -> bool {
        self.environment.contains_key(variable)
    }
}

/// How IAM would answer a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by these grants (indexes into the function's `grants`), each with the action
    /// pattern that matched.
    Allowed(Vec<(usize, String)>),
    /// No grant allows it.
    NotAllowed,
    /// A `Deny` grant refuses it (its index).
    Denied(usize),
}

/// The template's policies.
pub struct Policies {
    template: Template,
    pub functions: Vec<FunctionPolicy>,
}

struct Template {
    parameters: Mapping,
    conditions: Mapping,
    resources: Mapping,
}

type Error = String;

impl Policies {
    pub fn from_template(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_yaml(&text)
    }

    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let root: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let section = |name: &str| {
            root.get(name)
                .and_then(Value::as_mapping)
                .cloned()
                .unwrap_or_default()
        };
        let template = Template {
            parameters: section("Parameters"),
            conditions: section("Conditions"),
            resources: section("Resources"),
        };
        let timeout = |properties: Option<&Value>| {
            properties
                .and_then(|p| p.get("Timeout"))
                .and_then(Value::as_u64)
        };
        let global_timeout = timeout(root.get("Globals").and_then(|g| g.get("Function")));
        let mut functions = Vec::new();
        for (id, resource) in &template.resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let logical_id = id
                .as_str()
                .ok_or("a resource id is not a string")?
                .to_owned();
            let function = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{logical_id} has no Metadata.BuildProperties.Binary"))?
                .to_owned();
            let mut grants = Vec::new();
            let policies = resource.get("Properties").and_then(|p| p.get("Policies"));
            for policy in as_list(policies) {
                policy_grants(policy, &mut grants)
                    .map_err(|e| format!("{logical_id}'s Policies: {e}"))?;
            }
            let environment = resource
                .get("Properties")
                .and_then(|p| p.get("Environment"))
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
                .cloned()
                .unwrap_or_default();
            let timeout_seconds = timeout(resource.get("Properties"))
                .or(global_timeout)
                .unwrap_or(3);
            functions.push(FunctionPolicy {
                logical_id,
                function,
                grants,
                timeout_seconds,
                environment,
            });
        }
        Ok(Self {
            template,
            functions,
        })
    }

    pub fn function(&self, function: &str) -> Option<&FunctionPolicy> {
        self.functions.iter().find(|f| f.function == function)
    }

    /// The variables the template gives `function` of its own, resolved under `parameters`
    /// in `region` (a secret's `!Ref` is its ARN, as the policies name it).
    pub fn environment(
        &self,
        function: &str,
        parameters: &BTreeMap<String, String>,
        region: &str,
    ) -> Result<BTreeMap<String, String>, Error> {
        let policy = self
            .function(function)
            .ok_or_else(|| format!("no function {function:?} in the template"))?;
        let world = World {
            template: &self.template,
            parameters,
            region: region.to_owned(),
        };
        let mut variables = BTreeMap::new();
        for (name, value) in &policy.environment {
            let name = name.as_str().ok_or("a variable name is not a string")?;
            if let Some(value) = world
                .resolve(value)
                .map_err(|e| format!("{function}'s {name}: {e}"))?
            {
                variables.insert(name.to_owned(), value);
            }
        }
        Ok(variables)
    }

    /// How the policy of the call's function answers it, under the call's parameters.
    pub fn decide(&self, call: &RecordedCall) -> Result<Decision, Error> {
        let function = self
            .function(&call.function)
            .ok_or_else(|| format!("no function {:?} in the template", call.function))?;
        let world = World {
            template: &self.template,
            parameters: &call.parameters,
            region: region_of(call),
        };
        let mut allowed = Vec::new();
        for (index, grant) in function.grants.iter().enumerate() {
            if !world.guards_hold(&grant.guards)? {
                continue;
            }
            let Some(pattern) = world.resolve(&grant.resource)? else {
                continue;
            };
            let Some(action) = grant
                .actions
                .iter()
                .find(|action| action_matches(action, &call.action))
            else {
                continue;
            };
            if !resource_matches(&pattern, call.resource.as_deref()) {
                continue;
            }
            match grant.effect {
                Effect::Deny => return Ok(Decision::Denied(index)),
                Effect::Allow => allowed.push((index, action.clone())),
            }
        }
        Ok(if allowed.is_empty() {
            Decision::NotAllowed
        } else {
            Decision::Allowed(allowed)
        })
    }
}

/// The region a call was made in: the one in its resource's ARN, else the SDK's default here.
fn region_of(call: &RecordedCall) -> String {
    call.resource
        .as_deref()
        .and_then(|arn| arn.split(':').nth(3))
        .filter(|region| !region.is_empty())
        .unwrap_or("us-east-1")
        .to_owned()
}

fn as_list(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

/// An intrinsic function in either form (`!If x` or `Fn::If: x`; `!Ref x` or `Ref: x`): its
/// short name and argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        )),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, argument) = map.iter().next()?;
            let key = key.as_str()?;
            let name = key.strip_prefix("Fn::").or((key == "Ref").then_some(key))?;
            Some((name.to_owned(), argument))
        }
        _ => None,
    }
}

/// The grants of one entry of `Policies`: an inline policy (`Statement:`) or a SAM policy
/// template; a managed policy name cannot be checked (its actions are not in the template).
fn policy_grants(policy: &Value, grants: &mut Vec<Grant>) -> Result<(), Error> {
    if let Some(name) = policy.as_str() {
        return Err(format!(
            "managed policy {name:?}: its actions are not in the template; write them out as a Statement"
        ));
    }
    if let Some(statements) = policy.get("Statement") {
        for statement in as_list(Some(statements)) {
            statement_grants(statement, &[], "Statement", grants)?;
        }
        return Ok(());
    }
    let map = policy
        .as_mapping()
        .ok_or("a policy is neither a name nor a mapping")?;
    if map.len() != 1 {
        return Err(format!("unknown policy form: {policy:?}"));
    }
    let (name, arguments) = map.iter().next().ok_or("an empty policy")?;
    let name = name
        .as_str()
        .ok_or("a policy template name is not a string")?;
    for statement in sam_policy_template(name, arguments)? {
        statement_grants(&statement, &[], name, grants)?;
    }
    Ok(())
}

/// A statement, possibly inside `!If`s, as grants: one per resource, each under its guards.
fn statement_grants(
    statement: &Value,
    guards: &[(String, bool)],
    origin: &str,
    grants: &mut Vec<Grant>,
) -> Result<(), Error> {
    if let Some((name, argument)) = intrinsic(statement) {
        if name != "If" {
            return Err(format!(
                "a statement is a {name}, which the checker does not read"
            ));
        }
        let (condition, then, otherwise) = if_arguments(argument)?;
        for (branch, holds) in [(then, true), (otherwise, false)] {
            if is_no_value(branch) {
                continue;
            }
            let mut guarded = guards.to_vec();
            guarded.push((condition.clone(), holds));
            statement_grants(branch, &guarded, origin, grants)?;
        }
        return Ok(());
    }
    let effect = match statement.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => return Err(format!("a statement's Effect is {other:?}")),
    };
    if statement.get("Condition").is_some()
        || statement.get("NotAction").is_some()
        || statement.get("NotResource").is_some()
    {
        return Err(
            "a statement with Condition, NotAction or NotResource: teach the checker".into(),
        );
    }
    let actions = as_list(statement.get("Action"))
        .into_iter()
        .map(|action| {
            action
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("an action is not a string: {action:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if actions.is_empty() {
        return Err("a statement without Action".into());
    }
    let mut resources = Vec::new();
    for resource in as_list(statement.get("Resource")) {
        resource_alternatives(resource, guards, &mut resources)?;
    }
    if resources.is_empty() {
        return Err("a statement without Resource".into());
    }
    for (resource, guards) in resources {
        grants.push(Grant {
            effect,
            actions: actions.clone(),
            resource,
            guards,
            origin: origin.to_owned(),
        });
    }
    Ok(())
}

/// A `Resource` entry, split at its `!If`s (and lists inside them) into guarded alternatives.
fn resource_alternatives(
    resource: &Value,
    guards: &[(String, bool)],
    out: &mut Vec<(Value, Vec<(String, bool)>)>,
) -> Result<(), Error> {
    if let Some((name, argument)) = intrinsic(resource)
        && name == "If"
    {
        let (condition, then, otherwise) = if_arguments(argument)?;
        for (branch, holds) in [(then, true), (otherwise, false)] {
            if is_no_value(branch) {
                continue;
            }
            let mut guarded = guards.to_vec();
            guarded.push((condition.clone(), holds));
            for item in as_list(Some(branch)) {
                resource_alternatives(item, &guarded, out)?;
            }
        }
        return Ok(());
    }
    out.push((resource.clone(), guards.to_vec()));
    Ok(())
}

fn if_arguments(argument: &Value) -> Result<(String, &Value, &Value), Error> {
    match argument.as_sequence().map(Vec::as_slice) {
        Some([condition, then, otherwise]) => Ok((
            condition
                .as_str()
                .ok_or("an !If's condition is not a name")?
                .to_owned(),
            then,
            otherwise,
        )),
        _ => Err(format!(
            "an !If needs [condition, then, else]: {argument:?}"
        )),
    }
}

fn is_no_value(value: &Value) -> bool {
    matches!(intrinsic(value), Some((name, argument)) if name == "Ref" && argument.as_str() == Some("AWS::NoValue"))
}

/// The SAM policy templates the checker knows, written out from SAM's
/// `samtranslator/policy_templates_data/policy_templates.json` (aws-sam-translator 1.115,
/// <https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-policy-template-list.html>).
/// Another template is an error: add it here from that file.
fn sam_policy_template(name: &str, arguments: &Value) -> Result<Vec<Value>, Error> {
    let argument = |key: &str| {
        arguments
            .get(key)
            .cloned()
            .ok_or_else(|| format!("{name} needs {key}"))
    };
    let statement = |actions: &[&str], resources: Vec<Value>| -> Value {
        let mut map = Mapping::new();
        map.insert("Effect".into(), "Allow".into());
        map.insert(
            "Action".into(),
            Value::Sequence(actions.iter().map(|a| (*a).into()).collect()),
        );
        map.insert("Resource".into(), Value::Sequence(resources));
        Value::Mapping(map)
    };
    // `!Sub [pattern, {variable: value}]`, as SAM writes its resources.
    let sub = |pattern: &str, variable: &str, value: Value| -> Value {
        let mut variables = Mapping::new();
        variables.insert(variable.into(), value);
        let mut map = Mapping::new();
        map.insert(
            "Fn::Sub".into(),
            Value::Sequence(vec![pattern.into(), Value::Mapping(variables)]),
        );
        Value::Mapping(map)
    };
    let table_resources = |table: Value| {
        vec![
            sub(
                "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${tableName}",
                "tableName",
                table.clone(),
            ),
            sub(
                "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${tableName}/index/*",
                "tableName",
                table,
            ),
        ]
    };
    Ok(match name {
        "DynamoDBCrudPolicy" => vec![statement(
            &[
                "dynamodb:GetItem",
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:Scan",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:BatchGetItem",
                "dynamodb:DescribeTable",
                "dynamodb:ConditionCheckItem",
            ],
            table_resources(argument("TableName")?),
        )],
        "DynamoDBReadPolicy" => vec![statement(
            &[
                "dynamodb:GetItem",
                "dynamodb:Scan",
                "dynamodb:Query",
                "dynamodb:BatchGetItem",
                "dynamodb:DescribeTable",
            ],
            table_resources(argument("TableName")?),
        )],
        "DynamoDBWritePolicy" => vec![statement(
            &[
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
            ],
            table_resources(argument("TableName")?),
        )],
        "LambdaInvokePolicy" => vec![statement(
            &["lambda:InvokeFunction"],
            vec![sub(
                "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${functionName}*",
                "functionName",
                argument("FunctionName")?,
            )],
        )],
        "AWSSecretsManagerGetSecretValuePolicy" => vec![statement(
            &["secretsmanager:GetSecretValue"],
            vec![sub("${secretArn}", "secretArn", argument("SecretArn")?)],
        )],
        "SNSPublishMessagePolicy" => vec![statement(
            &["sns:Publish"],
            vec![sub(
                "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${topicName}",
                "topicName",
                argument("TopicName")?,
            )],
        )],
        other => {
            return Err(format!(
                "SAM policy template {other} is not known to the checker"
            ));
        }
    })
}

/// A resource expression as written, for messages and the allowed-but-untested list.
fn describe(value: &Value) -> String {
    match intrinsic(value) {
        Some((name, argument)) => match (name.as_str(), argument) {
            ("GetAtt", Value::String(text)) => text.clone(),
            ("GetAtt", Value::Sequence(parts)) => parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("."),
            ("Ref", Value::String(text)) => text.clone(),
            ("Sub", Value::String(text)) => text.clone(),
            ("Sub", Value::Sequence(parts)) => {
                let pattern = parts.first().and_then(Value::as_str).unwrap_or_default();
                let variables = parts.get(1).and_then(Value::as_mapping);
                let mut text = pattern.to_owned();
                for (key, value) in variables.into_iter().flatten() {
                    if let Some(key) = key.as_str() {
                        text = text.replace(&format!("${{{key}}}"), &describe(value));
                    }
                }
                text
            }
            _ => format!("{name} {argument:?}"),
        },
        None => value
            .as_str()
            .map_or_else(|| format!("{value:?}"), str::to_owned),
    }
}

/// The values of one call's configuration: parameters, pseudo parameters, resource names.
struct World<'a> {
    template: &'a Template,
    parameters: &'a BTreeMap<String, String>,
    region: String,
}

impl World<'_> {
    fn guards_hold(&self, guards: &[(String, bool)]) -> Result<bool, Error> {
        for (condition, holds) in guards {
            if self.condition(condition)? != *holds {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn condition(&self, name: &str) -> Result<bool, Error> {
        let definition = self
            .template
            .conditions
            .get(name)
            .ok_or_else(|| format!("no Condition {name}"))?;
        self.truth(definition)
    }

    fn truth(&self, value: &Value) -> Result<bool, Error> {
        let (name, argument) = intrinsic(value)
            .ok_or_else(|| format!("a condition that is no function: {value:?}"))?;
        let items = argument.as_sequence();
        match (name.as_str(), items.map(Vec::as_slice)) {
            ("Equals", Some([a, b])) => Ok(self.resolve(a)? == self.resolve(b)?),
            ("Not", Some([inner])) => Ok(!self.truth(inner)?),
            ("And", Some(all)) => all
                .iter()
                .try_fold(true, |acc, c| Ok(acc && self.truth(c)?)),
            ("Or", Some(any)) => any
                .iter()
                .try_fold(false, |acc, c| Ok(acc || self.truth(c)?)),
            ("Condition", _) => self.condition(argument.as_str().ok_or("!Condition of no name")?),
            _ => Err(format!("a condition the checker does not read: {value:?}")),
        }
    }

    /// The value of an expression; `None` for `AWS::NoValue`.
    fn resolve(&self, value: &Value) -> Result<Option<String>, Error> {
        let Some((name, argument)) = intrinsic(value) else {
            return match value {
                Value::String(text) => Ok(Some(text.clone())),
                Value::Number(number) => Ok(Some(number.to_string())),
                Value::Bool(flag) => Ok(Some(flag.to_string())),
                other => Err(format!("a value the checker does not read: {other:?}")),
            };
        };
        match name.as_str() {
            "Ref" => self.reference(argument.as_str().ok_or("!Ref of no name")?),
            "GetAtt" => {
                let (resource, attribute) = match argument {
                    Value::String(text) => text
                        .split_once('.')
                        .ok_or_else(|| format!("!GetAtt {text} names no attribute"))?,
                    Value::Sequence(parts) => match parts.as_slice() {
                        [Value::String(r), Value::String(a)] => (r.as_str(), a.as_str()),
                        _ => return Err(format!("!GetAtt {parts:?}")),
                    },
                    other => return Err(format!("!GetAtt {other:?}")),
                };
                self.attribute(resource, attribute).map(Some)
            }
            "Sub" => {
                let (pattern, variables) = match argument {
                    Value::String(text) => (text.as_str(), None),
                    Value::Sequence(parts) => match parts.as_slice() {
                        [Value::String(text), Value::Mapping(variables)] => {
                            (text.as_str(), Some(variables))
                        }
                        _ => return Err(format!("!Sub {parts:?}")),
                    },
                    other => return Err(format!("!Sub {other:?}")),
                };
                self.substitute(pattern, variables).map(Some)
            }
            "If" => {
                let (condition, then, otherwise) = if_arguments(argument)?;
                let branch = if self.condition(&condition)? {
                    then
                } else {
                    otherwise
                };
                self.resolve(branch)
            }
            other => Err(format!("!{other} is not read by the checker")),
        }
    }

    fn reference(&self, name: &str) -> Result<Option<String>, Error> {
        let pseudo = match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => Some(self.region.clone()),
            "AWS::AccountId" => Some(TEST_ACCOUNT.to_owned()),
            "AWS::Partition" => Some("aws".to_owned()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_owned()),
            "AWS::StackName" => Some("phone-auth".to_owned()),
            _ => None,
        };
        if pseudo.is_some() {
            return Ok(pseudo);
        }
        if let Some(parameter) = self.template.parameters.get(name) {
            if let Some(value) = self.parameters.get(name) {
                return Ok(Some(value.clone()));
            }
            return match parameter.get("Default") {
                Some(default) => self.resolve(default),
                None => Err(format!("parameter {name} has no value and no Default")),
            };
        }
        let kind = self.resource_type(name)?;
        Ok(Some(match kind {
            "AWS::DynamoDB::Table" => name.to_owned(),
            "AWS::SecretsManager::Secret" => {
                format!(
                    "arn:aws:secretsmanager:{}:{TEST_ACCOUNT}:secret:{name}",
                    self.region
                )
            }
            "AWS::SNS::Topic" => format!("arn:aws:sns:{}:{TEST_ACCOUNT}:{name}", self.region),
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => name.to_owned(),
            // A key's !Ref is its id; its ARN (below) is what the functions get and IAM reads.
            "AWS::KMS::Key" => name.to_owned(),
            other => {
                return Err(format!(
                    "!Ref of a {other} ({name}) is not read by the checker"
                ));
            }
        }))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<String, Error> {
        let kind = self.resource_type(resource)?;
        let region = &self.region;
        match (kind, attribute) {
            ("AWS::DynamoDB::Table", "Arn") => Ok(format!(
                "arn:aws:dynamodb:{region}:{TEST_ACCOUNT}:table/{resource}"
            )),
            // DynamoDB picks a stream's label (its creation time): any label of the table's.
            ("AWS::DynamoDB::Table", "StreamArn") => Ok(format!(
                "arn:aws:dynamodb:{region}:{TEST_ACCOUNT}:table/{resource}/stream/*"
            )),
            ("AWS::Events::EventBus", "Arn") => {
                let name = self
                    .template
                    .resources
                    .get(resource)
                    .and_then(|r| r.get("Properties"))
                    .and_then(|p| p.get("Name"))
                    .ok_or_else(|| format!("the bus {resource} has no Name"))?;
                let name = self
                    .resolve(name)?
                    .ok_or_else(|| format!("the bus {resource}'s Name has no value"))?;
                Ok(format!(
                    "arn:aws:events:{region}:{TEST_ACCOUNT}:event-bus/{name}"
                ))
            }
            ("AWS::SQS::Queue", "Arn") => {
                Ok(format!("arn:aws:sqs:{region}:{TEST_ACCOUNT}:{resource}"))
            }
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => Ok(format!(
                "arn:aws:lambda:{region}:{TEST_ACCOUNT}:function:{resource}"
            )),
            ("AWS::SNS::Topic", "TopicArn") => {
                Ok(format!("arn:aws:sns:{region}:{TEST_ACCOUNT}:{resource}"))
            }
            // KMS picks a key's id: the tests pass the ARN their emulator gave the key as the
            // parameter `<LogicalId>.Arn` (e.g. `JwtSigningKey.Arn`).
            ("AWS::KMS::Key", "Arn") => Ok(self
                .parameters
                .get(&format!("{resource}.Arn"))
                .cloned()
                .unwrap_or_else(|| format!("arn:aws:kms:{region}:{TEST_ACCOUNT}:key/{resource}"))),
            _ => Err(format!(
                "!GetAtt {resource}.{attribute} ({kind}) is not read by the checker"
            )),
        }
    }

    fn resource_type(&self, name: &str) -> Result<&str, Error> {
        self.template
            .resources
            .get(name)
            .and_then(|r| r.get("Type"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name} is neither a parameter nor a resource"))
    }

    fn substitute(&self, pattern: &str, variables: Option<&Mapping>) -> Result<String, Error> {
        let mut out = String::new();
        let mut rest = pattern;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("an unclosed ${{ in {pattern}"))?;
            let name = &after[..end];
            rest = &after[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
                continue;
            }
            let value = if let Some(value) = variables.and_then(|v| v.get(name)) {
                self.resolve(value)?
            } else if let Some((resource, attribute)) = name.split_once('.') {
                Some(self.attribute(resource, attribute)?)
            } else {
                self.reference(name)?
            };
            out.push_str(&value.ok_or_else(|| format!("${{{name}}} has no value"))?);
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// IAM's action match: case-insensitive, with `*` and `?` wildcards.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// IAM's resource match: `*` alone matches any request, even one naming no resource; else
/// the ARNs are compared segment by segment (wildcards do not cross the first five colons) with
/// `*` and `?` wildcards.
pub fn resource_matches(pattern: &str, resource: Option<&str>) -> bool {
    if pattern == "*" {
        return true;
    }
    let Some(resource) = resource else {
        return false;
    };
    let patterns: Vec<&str> = pattern.splitn(6, ':').collect();
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    patterns.len() == parts.len()
        && patterns
            .iter()
            .zip(&parts)
            .all(|(pattern, part)| wildcard(pattern, part))
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl fmt::Display for RecordedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {}",
            self.action,
            self.resource.as_deref().unwrap_or("(no resource)")
        )?;
        if !self.parameters.is_empty() {
            let parameters: Vec<String> = self
                .parameters
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            write!(f, " with {}", parameters.join(", "))?;
        }
        Ok(())
    }
}
