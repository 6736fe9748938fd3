//! Creates DynamoDB tables from the definitions in `template.yaml`, so that local runs and tests
//! use exactly the tables that get deployed (no second copy to drift).

use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use serde_yaml_ng::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One `AWS::DynamoDB::Table` of the template and the environment variable that names it.
#[derive(Debug, Clone)]
pub struct TableDefinition {
    pub logical_id: String,
    pub env_var: String,
    properties: Value,
}

/// The template, parsed, and its `Resources` (CloudFormation tags such as `!Ref` stay as
/// `Value::Tagged`).
pub fn read_template(template: &Path) -> Result<(Value, serde_yaml_ng::Mapping), Error> {
    let text = std::fs::read_to_string(template)?;
    let template: Value = serde_yaml_ng::from_str(&text)?;
    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or("template has no Resources")?
        .clone();
    Ok((template, resources))
}

pub fn template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")
}

/// Every table that `Globals.Function.Environment.Variables` passes to the functions by `!Ref`.
pub fn table_definitions(template: &Path) -> Result<Vec<TableDefinition>, Error> {
    let (template, resources) = read_template(template)?;
    let variables = template
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
        .ok_or("template has no Globals.Function.Environment.Variables")?;
    let mut tables = Vec::new();
    for (name, value) in variables {
        let Value::Tagged(tagged) = value else {
            continue;
        };
        if tagged.tag != "Ref" {
            continue;
        }
        let Some(logical_id) = tagged.value.as_str() else {
            continue;
        };
        let Some(resource) = resources.get(logical_id) else {
            continue;
        };
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        tables.push(TableDefinition {
            logical_id: logical_id.to_owned(),
            env_var: name
                .as_str()
                .ok_or("variable name is not a string")?
                .to_owned(),
            properties: resource.get("Properties").cloned().unwrap_or(Value::Null),
        });
    }
    Ok(tables)
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

fn text<'a>(value: &'a Value, key: &str) -> Result<&'a str, Error> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("table definition lacks {key}").into())
}

fn key_schema(value: &Value) -> Result<Vec<KeySchemaElement>, Error> {
    list(value, "KeySchema")
        .map(|key| {
            Ok(KeySchemaElement::builder()
                .attribute_name(text(key, "AttributeName")?)
                .key_type(KeyType::from(text(key, "KeyType")?))
                .build()?)
        })
        .collect()
}

impl TableDefinition {
    /// Creates the table under `name` with its keys, indexes and TTL. An existing table is kept.
    pub async fn create(&self, client: &Client, name: &str) -> Result<(), Error> {
        let properties = &self.properties;
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(key_schema(properties)?));
        for attribute in list(properties, "AttributeDefinitions") {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(text(attribute, "AttributeName")?)
                    .attribute_type(ScalarAttributeType::from(text(attribute, "AttributeType")?))
                    .build()?,
            );
        }
        for index in list(properties, "GlobalSecondaryIndexes") {
            let projection = index
                .get("Projection")
                .and_then(|p| p.get("ProjectionType"))
                .and_then(Value::as_str)
                .unwrap_or("ALL");
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(text(index, "IndexName")?)
                    .set_key_schema(Some(key_schema(index)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(projection))
                            .build(),
                    )
                    .build()?,
            );
        }
        if let Some(stream) = properties.get("StreamSpecification") {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(text(stream, "StreamViewType")?))
                    .build()?,
            );
        }
        match request.send().await {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        if let Some(ttl) = properties.get("TimeToLiveSpecification") {
            let enabled = client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(text(ttl, "AttributeName")?)
                        .enabled(ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(true))
                        .build()?,
                )
                .send()
                .await;
            // Under load the SDK may retry a call that took effect: the retry is then refused.
            if let Err(error) = enabled {
                let already = error
                    .as_service_error()
                    .and_then(|error| error.meta().message())
                    .is_some_and(|message| message.contains("already enabled"));
                if !already {
                    return Err(error.into());
                }
            }
        }
        Ok(())
    }
}

/// Creates every table of the template under `prefix` + logical id; returns (env var, name).
pub async fn create_all(client: &Client, prefix: &str) -> Result<Vec<(String, String)>, Error> {
    let mut created = Vec::new();
    for table in table_definitions(&template_path())? {
        let name = format!("{prefix}{}", table.logical_id);
        table.create(client, &name).await?;
        created.push((table.env_var, name));
    }
    Ok(created)
}
