//! `import-users`: see `import_users::Options` (`--help`) and the README's "Moving users in".

use std::process::ExitCode;

use clap::Parser;
use import_users::Options;

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    let json = options.json;
    match import_users::run(options).await {
        Ok(summary) => {
            if json {
                println!("{}", serde_json::json!(summary));
            } else {
                println!("{summary}");
            }
            // Rows to look at (rejected or failed) make the run's status 1.
            ExitCode::from(u8::from(summary.rejected() > 0))
        }
        Err(error) => {
            eprintln!("import-users: {error}");
            ExitCode::from(2)
        }
    }
}
