//! Creates the tables of template.yaml on DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`) and prints
//! `ENV_VAR=table-name` lines for the functions' environment. Used by `scripts/dev`.

use auth_tests::tables;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let prefix = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "local-".to_owned());
    let client = aws_sdk_dynamodb::Client::new(&auth_shared::load_aws_config().await);
    for (env_var, name) in tables::create_all(&client, &prefix).await? {
        println!("{env_var}={name}");
    }
    Ok(())
}
