//! `import-users` (issue 25): brings the users of another system into the users table. The rows
//! are read twice, one at a time: first for the numbers that appear more than once (a set of
//! numbers, not of rows), then to write, with a bounded number of rows between the reader and
//! the writes in flight, so a file of any length runs in the same memory. Each row is checked by
//! the service's own rules (`auth_shared::import`) and written by a conditional put that never
//! overwrites an account, which makes a second run import nothing.

mod options;
mod report;
mod source;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_shared::import::{self, Rejection};
use auth_shared::phone::{PhoneNumber, PhoneParser};
use auth_shared::profile::User;
use auth_shared::store::users::{Imported, UsersTable};
use aws_sdk_dynamodb::types::KeyType;
use phonenumber::country;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use options::{Format, Options};
pub use report::Summary;
use report::{Outcome, Reports, RowRef};

/// Why a run could not be made or went no further (rows are reported, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Usage(String),
    #[error("reading the source: {0}")]
    Source(String),
    #[error("writing the reports: {0}")]
    Output(String),
    #[error("the users table: {0}")]
    Table(String),
    /// The writing side ended first (it failed, and says why).
    #[error("stopped")]
    Stopped,
}

/// Writes that fail one after the other stop the run: the table or the credentials are wrong,
/// and another million failures would only fill the rejects file. Running again resumes.
const MAX_FAILURES_IN_A_ROW: u32 = 50;

/// Rows read ahead of the writes.
const ROWS_AHEAD: usize = 1024;

pub async fn run(options: Options) -> Result<Summary, ImportError> {
    let region: country::Id = options.default_region.trim().parse().map_err(|_| {
        ImportError::Usage(format!(
            "--default-region {:?} is no ISO 3166 region code",
            options.default_region
        ))
    })?;
    if options.format == Format::Django && options.model.is_none() {
        return Err(ImportError::Usage(
            "--format django needs --model (the user model, e.g. accounts.user): a dump holds \
             other models too"
                .to_owned(),
        ));
    }
    let phones = PhoneParser::new(region, []);
    let before = SourceFile::of(&options.file)?;
    let users = users_table(&options).await?;
    let (total_rows, duplicates) = numbers_seen_twice(&options, phones.clone()).await?;

    let rejects = options.rejects.clone().unwrap_or_else(|| {
        let mut name = options.file.clone().into_os_string();
        name.push(".rejects.jsonl");
        PathBuf::from(name)
    });
    let mut reports = Reports::create(
        &rejects,
        options.ids.as_deref(),
        options.dry_run,
        total_rows,
    )?;

    let (checked_rows, mut to_write) = mpsc::channel(ROWS_AHEAD);
    let reader = {
        let (file, format, model) = (options.file.clone(), options.format, options.model.clone());
        let fields = options.fields();
        let verified_only = options.verified_field.is_some();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        tokio::task::spawn_blocking(move || {
            source::read(&file, format, &fields, model.as_deref(), |record| {
                let checked = check(record, &phones, &duplicates, verified_only, now);
                checked_rows
                    .blocking_send(checked)
                    .map_err(|_| ImportError::Stopped)
            })
        })
    };

    let mut in_flight = JoinSet::new();
    let mut failures_in_a_row = 0;
    let concurrency = usize::from(options.concurrency);
    while let Some((row, verdict)) = to_write.recv().await {
        match verdict {
            Verdict::Write(user, phone) => {
                while in_flight.len() >= concurrency {
                    let done = in_flight.join_next().await;
                    settle(done, &mut reports, &mut failures_in_a_row)?;
                }
                let (users, dry_run) = (users.clone(), options.dry_run);
                in_flight.spawn(async move {
                    let outcome = write(&users, &user, &phone, dry_run).await;
                    (row, outcome)
                });
            }
            Verdict::Report(outcome) => reports.record(&row, outcome)?,
        }
        reports.progress();
    }
    while let Some(done) = in_flight.join_next().await {
        settle(Some(done), &mut reports, &mut failures_in_a_row)?;
    }
    reader
        .await
        .map_err(|error| ImportError::Source(error.to_string()))??;
    // Both readings saw the same file, or the duplicates found in the first mean nothing.
    if SourceFile::of(&options.file)? != before {
        return Err(ImportError::Source(format!(
            "{} changed during the import: run again on a file nothing writes to",
            options.file.display()
        )));
    }
    reports.finish()
}

/// What tells a file's versions apart: its size and last change.
#[derive(Debug, PartialEq)]
struct SourceFile {
    length: u64,
    modified: Option<SystemTime>,
}

impl SourceFile {
    /// A regular file's (it is read twice: no pipe or device).
    fn of(path: &std::path::Path) -> Result<Self, ImportError> {
        let metadata = std::fs::metadata(path)
            .map_err(|error| ImportError::Source(format!("{}: {error}", path.display())))?;
        if !metadata.is_file() {
            return Err(ImportError::Usage(format!(
                "{} is not a regular file: it is read twice",
                path.display()
            )));
        }
        Ok(Self {
            length: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

/// The users table, once its key is checked: a wrong `--table` fails here, not on every row.
async fn users_table(options: &Options) -> Result<UsersTable, ImportError> {
    let shared = aws_config::load_from_env().await;
    let mut config = aws_sdk_dynamodb::config::Builder::from(&shared).retry_config(
        // Throttling on a fresh on-demand table is expected; the SDK backs off and retries.
        aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(10),
    );
    if let Some(endpoint) = &options.endpoint_url {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_dynamodb::Client::from_conf(config.build());
    let described = client
        .describe_table()
        .table_name(&options.table)
        .send()
        .await
        .map_err(|error| {
            ImportError::Table(format!(
                "{}: {}",
                options.table,
                aws_sdk_dynamodb::error::DisplayErrorContext(error)
            ))
        })?;
    let keyed_by_phone = described
        .table
        .and_then(|table| table.key_schema)
        .is_some_and(|keys| {
            keys.iter()
                .any(|key| key.attribute_name == "phone" && key.key_type == KeyType::Hash)
        });
    if !keyed_by_phone {
        return Err(ImportError::Table(format!(
            "{} is not keyed by `phone`: is it the stack's users table?",
            options.table
        )));
    }
    Ok(UsersTable::new(client, options.table.clone()))
}

/// The first reading: how many rows there are, and the numbers more than one row normalises to
/// (kept as numbers, 8 bytes each, so a million rows take a few megabytes).
async fn numbers_seen_twice(
    options: &Options,
    phones: PhoneParser,
) -> Result<(u64, HashSet<u64>), ImportError> {
    let (file, format, model) = (options.file.clone(), options.format, options.model.clone());
    let fields = options.fields();
    tokio::task::spawn_blocking(move || {
        let (mut rows, mut seen, mut twice) = (0, HashSet::new(), HashSet::new());
        source::read(&file, format, &fields, model.as_deref(), |record| {
            rows += 1;
            let phone = record
                .row
                .ok()
                .and_then(|row| import::phone_of(&row, &phones).ok());
            let number = phone.as_ref().and_then(number_key);
            if let Some(number) = number
                && !seen.insert(number)
            {
                twice.insert(number);
            }
            Ok(())
        })?;
        Ok((rows, twice))
    })
    .await
    .map_err(|error| ImportError::Source(error.to_string()))?
}

/// A normalised number as an integer: E.164 has at most 15 digits.
fn number_key(phone: &PhoneNumber) -> Option<u64> {
    phone.as_str().trim_start_matches('+').parse().ok()
}

/// What the writing side does with a row.
enum Verdict {
    Write(User, PhoneNumber),
    Report(Outcome),
}

fn check(
    record: source::Record,
    phones: &PhoneParser,
    duplicates: &HashSet<u64>,
    verified_only: bool,
    now: u64,
) -> (RowRef, Verdict) {
    let phone = record.row.as_ref().ok().and_then(|row| row.phone.clone());
    let row = RowRef {
        number: record.number,
        source_id: record.source_id,
        phone,
    };
    let source = match record.row {
        Ok(source) => source,
        Err(why) => return (row, Verdict::Report(Outcome::Unreadable(why))),
    };
    let verdict = match import::phone_of(&source, phones) {
        Err(rejection) => Verdict::Report(Outcome::Rejected(rejection)),
        Ok(phone) if number_key(&phone).is_some_and(|key| duplicates.contains(&key)) => {
            Verdict::Report(Outcome::Rejected(Rejection::DuplicateInSource))
        }
        Ok(_) if verified_only && import::phone_verified(&source).is_err() => {
            Verdict::Report(Outcome::Rejected(Rejection::UnverifiedPhone))
        }
        Ok(phone) => match import::account(&source, &phone, now) {
            Ok(user) => Verdict::Write(user, phone),
            Err(rejection) => Verdict::Report(Outcome::Rejected(rejection)),
        },
    };
    (row, verdict)
}

async fn write(users: &UsersTable, user: &User, phone: &PhoneNumber, dry_run: bool) -> Outcome {
    let taken = |user_id| Outcome::Rejected(Rejection::AlreadyPresent { user_id });
    if dry_run {
        return match users.get(phone).await {
            Ok(Some(holder)) => taken(holder.profile.id),
            Ok(None) => Outcome::Imported {
                user_id: user.profile.id.clone(),
                write_units: 0.0,
            },
            Err(error) => Outcome::Failed(cause(&error)),
        };
    }
    match users.import(user).await {
        Ok(Imported::Written { write_units }) => Outcome::Imported {
            user_id: user.profile.id.clone(),
            write_units,
        },
        Ok(Imported::Present { user_id }) => taken(user_id),
        Err(error) => Outcome::Failed(cause(&error)),
    }
}

/// The error behind a failed write (the service's own message only says "unavailable").
fn cause(error: &auth_shared::error::AuthError) -> String {
    std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string)
}

fn settle(
    done: Option<Result<(RowRef, Outcome), tokio::task::JoinError>>,
    reports: &mut Reports,
    failures_in_a_row: &mut u32,
) -> Result<(), ImportError> {
    let Some(done) = done else {
        return Ok(());
    };
    let (row, outcome) = done.map_err(|error| ImportError::Table(error.to_string()))?;
    let last_failure = match &outcome {
        Outcome::Failed(why) => Some(why.clone()),
        _ => None,
    };
    reports.record(&row, outcome)?;
    match last_failure {
        None => *failures_in_a_row = 0,
        Some(why) => {
            *failures_in_a_row += 1;
            if *failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
                return Err(ImportError::Table(format!(
                    "{MAX_FAILURES_IN_A_ROW} writes in a row failed, the last with: {why}. \
                     What was written is kept: run again once it is fixed."
                )));
            }
        }
    }
    Ok(())
}
