//! What a run tells: the rejects file, the ids file, progress on long runs and the summary.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auth_shared::import::Rejection;
use serde::{Serialize, Serializer};
use serde_json::json;

use crate::ImportError;

/// The counts of a run (`--json` prints them as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    /// Rows read (objects of other Django models not counted).
    pub rows: u64,
    /// Written (with `--dry-run`: would be written).
    pub imported: u64,
    pub already_present: u64,
    pub invalid_phone: u64,
    /// With `--verified-field`: numbers the source had not verified.
    pub unverified_phone: u64,
    pub duplicates: u64,
    pub unsupported_hash: u64,
    pub invalid_profile: u64,
    /// Rows that could not be read as a row (a line that is no JSON object, a CSV line with
    /// another number of cells).
    pub unreadable: u64,
    /// Writes that failed after the SDK's retries: running again finishes them.
    pub failed: u64,
    /// Write units the table reported for the accounts written (table and index).
    pub write_units: f64,
    #[serde(rename = "seconds", serialize_with = "seconds")]
    pub elapsed: Duration,
    pub rejects: PathBuf,
}

fn seconds<S: Serializer>(elapsed: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(elapsed.as_secs_f64())
}

impl Summary {
    /// Rows not imported for a reason someone should look at (the rejects file has them all).
    pub fn rejected(&self) -> u64 {
        self.invalid_phone
            + self.unverified_phone
            + self.duplicates
            + self.unsupported_hash
            + self.invalid_profile
            + self.unreadable
            + self.failed
    }

    fn count(&mut self, rejection: &Rejection) {
        let counter = match rejection {
            Rejection::InvalidPhone => &mut self.invalid_phone,
            Rejection::UnverifiedPhone => &mut self.unverified_phone,
            Rejection::DuplicateInSource => &mut self.duplicates,
            Rejection::AlreadyPresent { .. } => &mut self.already_present,
            Rejection::UnsupportedHash(_) => &mut self.unsupported_hash,
            Rejection::InvalidProfile(_) => &mut self.invalid_profile,
        };
        *counter += 1;
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let imported = if self.dry_run {
            "would be imported"
        } else {
            "imported"
        };
        let seconds = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "{} rows in {seconds:.1} s{}",
            self.rows,
            if self.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        )?;
        for (label, count) in [
            (imported, self.imported),
            ("already present", self.already_present),
            ("invalid phone", self.invalid_phone),
            ("unverified phone", self.unverified_phone),
            ("duplicate after normalising", self.duplicates),
            ("unsupported hash", self.unsupported_hash),
            ("invalid profile", self.invalid_profile),
            ("unreadable row", self.unreadable),
            ("failed (run again)", self.failed),
        ] {
            writeln!(f, "  {label:<28}{count:>10}")?;
        }
        if !self.dry_run && self.imported > 0 {
            writeln!(
                f,
                "  {:<28}{:>10.0} ({:.1} per account; {:.0} accounts/s)",
                "write units",
                self.write_units,
                self.write_units / self.imported as f64,
                self.imported as f64 / seconds.max(f64::EPSILON)
            )?;
        }
        match self.rejected() {
            0 => write!(f, "nothing rejected"),
            n => write!(f, "{n} rows rejected: {}", self.rejects.display()),
        }
    }
}

/// How one row ended.
pub enum Outcome {
    Imported { user_id: String, write_units: f64 },
    Rejected(Rejection),
    Unreadable(String),
    Failed(String),
}

/// Where a row came from, for the files.
pub struct RowRef {
    pub number: u64,
    pub source_id: Option<String>,
    /// The phone as the source has it (the operator's own data, to find the row).
    pub phone: Option<String>,
}

/// The files of a run and its counts, updated row by row.
pub struct Reports {
    pub summary: Summary,
    rejects: BufWriter<File>,
    ids: Option<csv::Writer<File>>,
    total_rows: u64,
    started: Instant,
    last_progress: Instant,
}

const PROGRESS_EVERY: Duration = Duration::from_secs(2);

impl Reports {
    pub fn create(
        rejects: &Path,
        ids: Option<&Path>,
        dry_run: bool,
        total_rows: u64,
    ) -> Result<Self, ImportError> {
        // Readable by the operator alone: they name people's numbers.
        let create = |path: &Path| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options
                .open(path)
                .map_err(|error| ImportError::Output(format!("{}: {error}", path.display())))
        };
        let ids = match ids {
            Some(path) => {
                let mut writer = csv::Writer::from_writer(create(path)?);
                writer
                    .write_record(["source_id", "user_id", "status"])
                    .map_err(output)?;
                Some(writer)
            }
            None => None,
        };
        let started = Instant::now();
        Ok(Self {
            summary: Summary {
                dry_run,
                rejects: rejects.to_owned(),
                ..Summary::default()
            },
            rejects: BufWriter::new(create(rejects)?),
            ids,
            total_rows,
            started,
            last_progress: started,
        })
    }

    pub fn record(&mut self, row: &RowRef, outcome: Outcome) -> Result<(), ImportError> {
        self.summary.rows += 1;
        let (reason, detail) = match outcome {
            Outcome::Imported {
                user_id,
                write_units,
            } => {
                self.summary.imported += 1;
                self.summary.write_units += write_units;
                // A dry run's ids are made up: nothing maps to them.
                if self.summary.dry_run {
                    return Ok(());
                }
                return self.map_id(row, &user_id, "imported");
            }
            Outcome::Rejected(rejection) => {
                self.summary.count(&rejection);
                if let Rejection::AlreadyPresent { user_id } = &rejection {
                    self.map_id(row, user_id, "already_present")?;
                }
                (rejection.reason(), rejection.detail())
            }
            Outcome::Unreadable(why) => {
                self.summary.unreadable += 1;
                ("unreadable_row", why)
            }
            Outcome::Failed(why) => {
                self.summary.failed += 1;
                ("write_failed", why)
            }
        };
        let line = json!({
            "row": row.number,
            "id": row.source_id,
            "phone": row.phone,
            "reason": reason,
            "detail": detail,
        });
        writeln!(self.rejects, "{line}").map_err(output)
    }

    fn map_id(&mut self, row: &RowRef, user_id: &str, status: &str) -> Result<(), ImportError> {
        match (&mut self.ids, &row.source_id) {
            (Some(ids), Some(source_id)) => ids
                .write_record([source_id.as_str(), user_id, status])
                .map_err(output),
            _ => Ok(()),
        }
    }

    /// A line on standard error every few seconds of a long run.
    pub fn progress(&mut self) {
        if self.last_progress.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last_progress = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64();
        let done = self.summary.rows;
        let rate = done as f64 / seconds.max(f64::EPSILON);
        let left = self.total_rows.saturating_sub(done) as f64 / rate.max(f64::EPSILON);
        eprintln!(
            "import-users: {done}/{} rows ({:.0}%), {rate:.0} rows/s, about {left:.0} s left",
            self.total_rows,
            100.0 * done as f64 / self.total_rows.max(1) as f64,
        );
    }

    pub fn finish(mut self) -> Result<Summary, ImportError> {
        self.rejects.flush().map_err(output)?;
        if let Some(ids) = &mut self.ids {
            ids.flush().map_err(output)?;
        }
        self.summary.elapsed = self.started.elapsed();
        Ok(self.summary)
    }
}

fn output(error: impl std::fmt::Display) -> ImportError {
    ImportError::Output(error.to_string())
}
