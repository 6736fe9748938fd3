//! The command line.

use std::path::PathBuf;

use auth_shared::import::SourceRow;
use clap::{Parser, ValueEnum};

/// Brings users of another system into the users table: each row's phone normalised as the API
/// does it, its password hash kept as the source stored it (login verifies it and replaces it
/// with argon2id). An account already holding a number is never overwritten, so a second run
/// imports nothing. Rejected rows go to a file with their reasons.
#[derive(Debug, Parser)]
#[command(name = "import-users", version)]
pub struct Options {
    /// The file to import (read twice: first for numbers that appear more than once).
    pub file: PathBuf,

    /// `jsonl`: one JSON object a line; `csv`: a header line, then one row a line; `django`: the
    /// output of `manage.py dumpdata <app.User>` (a JSON array, or `--format jsonl`).
    #[arg(long, value_enum)]
    pub format: Format,

    /// The users table (the stack's `UsersTableName` output).
    #[arg(long, env = "USERS_TABLE")]
    pub table: String,

    /// The region national numbers belong to: the stack's `DEFAULT_REGION` (ISO 3166 code).
    #[arg(long, env = "DEFAULT_REGION")]
    pub default_region: String,

    /// Another DynamoDB endpoint (DynamoDB Local, for a rehearsal).
    #[arg(long)]
    pub endpoint_url: Option<String>,

    /// Check every row and look up which numbers are taken, but write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Required with `--format django`: the objects of this model are imported (e.g.
    /// `accounts.user`), the dump's others skipped.
    #[arg(long)]
    pub model: Option<String>,

    /// Where rejected rows are written with their reasons (JSON lines). [default: FILE.rejects.jsonl]
    #[arg(long)]
    pub rejects: Option<PathBuf>,

    /// Also write `source_id,user_id,status` (CSV) for every row imported or already present,
    /// to map the source's ids to this service's.
    #[arg(long)]
    pub ids: Option<PathBuf>,

    /// Print the summary as one JSON object (for scripts) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Writes in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,

    #[arg(long, default_value = "phone")]
    pub phone_field: String,
    /// [default: `password` with django, else `password_hash`]
    #[arg(long)]
    pub password_field: Option<String>,
    #[arg(long, default_value = "first_name")]
    pub first_name_field: String,
    #[arg(long, default_value = "last_name")]
    pub last_name_field: String,
    #[arg(long, default_value = "email")]
    pub email_field: String,
    /// RFC 3339 or epoch seconds; rows without it get the import's time. [default:
    /// `date_joined` with django, else `created_at`]
    #[arg(long)]
    pub created_at_field: Option<String>,
    /// A false value imports the account disabled (the admin API enables it).
    #[arg(long, default_value = "is_active")]
    pub active_field: String,
    /// Import only rows whose number the source verified (this field true); the others are
    /// rejected as `unverified_phone`. Without it, every number is taken as the source's users'
    /// own: import only numbers your old system verified.
    #[arg(long)]
    pub verified_field: Option<String>,
    /// The source's id of a row, for the rejects and ids files. [default: `pk` with django, else
    /// `id`]
    #[arg(long)]
    pub id_field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
    Django,
}

impl Options {
    /// The source's name for each field.
    pub fn fields(&self) -> Fields<String> {
        let django = self.format == Format::Django;
        let pick = |given: &Option<String>, for_django: &str, otherwise: &str| {
            given
                .clone()
                .unwrap_or_else(|| if django { for_django } else { otherwise }.to_owned())
        };
        Fields {
            phone: self.phone_field.clone(),
            password: pick(&self.password_field, "password", "password_hash"),
            first_name: self.first_name_field.clone(),
            last_name: self.last_name_field.clone(),
            email: self.email_field.clone(),
            created_at: pick(&self.created_at_field, "date_joined", "created_at"),
            active: self.active_field.clone(),
            // Unset: a name no source has, so nothing is read.
            verified: self.verified_field.clone().unwrap_or_default(),
            id: pick(&self.id_field, "pk", "id"),
        }
    }
}

/// Something per field of a row: its name in the source, or its column.
#[derive(Debug, Clone)]
pub struct Fields<T> {
    pub phone: T,
    pub password: T,
    pub first_name: T,
    pub last_name: T,
    pub email: T,
    pub created_at: T,
    pub active: T,
    pub verified: T,
    pub id: T,
}

impl<T> Fields<T> {
    pub fn map<U>(&self, each: impl Fn(&T) -> U) -> Fields<U> {
        Fields {
            phone: each(&self.phone),
            password: each(&self.password),
            first_name: each(&self.first_name),
            last_name: each(&self.last_name),
            email: each(&self.email),
            created_at: each(&self.created_at),
            active: each(&self.active),
            verified: each(&self.verified),
            id: each(&self.id),
        }
    }

    /// The row whose fields `get` reads.
    pub fn row(&self, get: impl Fn(&T) -> Option<String>) -> SourceRow {
        SourceRow {
            phone: get(&self.phone),
            password_hash: get(&self.password),
            first_name: get(&self.first_name),
            last_name: get(&self.last_name),
            email: get(&self.email),
            created_at: get(&self.created_at),
            active: get(&self.active),
            phone_verified: get(&self.verified),
        }
    }
}
