//! Reading the source file one row at a time (a million rows are never held at once): JSON
//! lines, CSV with a header line, or Django's `dumpdata` (a JSON array, or its `jsonl` format).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use auth_shared::import::SourceRow;
use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::ImportError;
use crate::options::{Fields, Format};

/// One row of the source and where it is.
#[derive(Debug)]
pub struct Record {
    /// The line (JSON lines, CSV, Django's `jsonl`) or the object's position (a JSON array).
    pub number: u64,
    /// The row's id in the source (`--id-field`), to find it again.
    pub source_id: Option<String>,
    /// The row, or why it could not be read (reported, and the reading goes on).
    pub row: Result<SourceRow, String>,
}

/// What the callback of `read` answers: go on, or stop reading (the run is over).
pub type Next = Result<(), ImportError>;

/// Calls `each` with every row of `path`, in order.
pub fn read(
    path: &Path,
    format: Format,
    fields: &Fields<String>,
    model: Option<&str>,
    mut each: impl FnMut(Record) -> Next,
) -> Result<(), ImportError> {
    let open = |path: &Path| {
        File::open(path)
            .map(|file| BufReader::with_capacity(1 << 16, file))
            .map_err(|error| ImportError::Source(format!("{}: {error}", path.display())))
    };
    let mut reader = open(path)?;
    match format {
        Format::Jsonl => json_lines(reader, |object| plain_row(object, fields), &mut each),
        Format::Csv => csv_rows(reader, fields, &mut each),
        Format::Django => {
            let object_row = |object: &Map<String, Value>| django_row(object, fields, model);
            if starts_with_array(&mut reader)? {
                json_array(reader, object_row, &mut each)
            } else {
                json_lines(reader, object_row, &mut each)
            }
        }
    }
}

/// A JSON line's row: its fields by name.
fn plain_row(
    object: &Map<String, Value>,
    fields: &Fields<String>,
) -> Option<(Option<String>, SourceRow)> {
    let get = |name: &String| object.get(name).and_then(scalar);
    Some((get(&fields.id), fields.row(get)))
}

/// An object of `manage.py dumpdata`: `{"model": "app.user", "pk": 1, "fields": {...}}`.
fn django_row(
    object: &Map<String, Value>,
    fields: &Fields<String>,
    model: Option<&str>,
) -> Option<(Option<String>, SourceRow)> {
    let this_model = object
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if model.is_some_and(|wanted| !wanted.eq_ignore_ascii_case(this_model)) {
        return None;
    }
    let own = object.get("fields").and_then(Value::as_object);
    let get = |name: &String| match name.as_str() {
        "pk" => object.get("pk").and_then(scalar),
        _ => own.and_then(|own| own.get(name)).and_then(scalar),
    };
    Some((get(&fields.id), fields.row(get)))
}

/// A field's value as text: strings as they are, numbers and booleans written out; absent for
/// null and for an empty string.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) if text.is_empty() => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

fn starts_with_array(reader: &mut BufReader<File>) -> Result<bool, ImportError> {
    loop {
        let buffer = reader
            .fill_buf()
            .map_err(|error| ImportError::Source(error.to_string()))?;
        let Some(&first) = buffer.first() else {
            return Ok(false);
        };
        if first.is_ascii_whitespace() {
            reader.consume(1);
        } else {
            return Ok(first == b'[');
        }
    }
}

fn json_lines(
    reader: BufReader<File>,
    object_row: impl Fn(&Map<String, Value>) -> Option<(Option<String>, SourceRow)>,
    each: &mut impl FnMut(Record) -> Next,
) -> Result<(), ImportError> {
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|error| ImportError::Source(error.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let number = index as u64 + 1;
        let record = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(object)) => match object_row(&object) {
                Some((source_id, row)) => Record {
                    number,
                    source_id,
                    row: Ok(row),
                },
                None => continue,
            },
            Ok(_) => unreadable(number, "not a JSON object".to_owned()),
            Err(error) => unreadable(number, format!("not JSON: {error}")),
        };
        each(record)?;
    }
    Ok(())
}

fn unreadable(number: u64, why: String) -> Record {
    Record {
        number,
        source_id: None,
        row: Err(why),
    }
}

/// A JSON array read one element at a time (serde_json's streaming `SeqAccess`). A syntax error
/// ends the run: nothing after it can be trusted to be a row.
fn json_array(
    reader: BufReader<File>,
    object_row: impl Fn(&Map<String, Value>) -> Option<(Option<String>, SourceRow)>,
    each: &mut impl FnMut(Record) -> Next,
) -> Result<(), ImportError> {
    struct Elements<'a, R, E> {
        object_row: R,
        each: &'a mut E,
        stopped: &'a mut Option<ImportError>,
    }
    impl<'de, R, E> Visitor<'de> for Elements<'_, R, E>
    where
        R: Fn(&Map<String, Value>) -> Option<(Option<String>, SourceRow)>,
        E: FnMut(Record) -> Next,
    {
        type Value = ();

        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("a JSON array of objects (manage.py dumpdata)")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut elements: A) -> Result<(), A::Error> {
            let mut number = 0;
            while let Some(element) = elements.next_element::<Value>()? {
                number += 1;
                let record = match element {
                    Value::Object(object) => match (self.object_row)(&object) {
                        Some((source_id, row)) => Record {
                            number,
                            source_id,
                            row: Ok(row),
                        },
                        None => continue,
                    },
                    _ => unreadable(number, "not a JSON object".to_owned()),
                };
                if let Err(stop) = (self.each)(record) {
                    *self.stopped = Some(stop);
                    return Err(A::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }

    let mut stopped = None;
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let read = deserializer.deserialize_seq(Elements {
        object_row,
        each,
        stopped: &mut stopped,
    });
    if let Some(stop) = stopped {
        return Err(stop);
    }
    read.and_then(|()| deserializer.end())
        .map_err(|error| ImportError::Source(format!("the JSON array is malformed: {error}")))
}

fn csv_rows(
    reader: BufReader<File>,
    fields: &Fields<String>,
    each: &mut impl FnMut(Record) -> Next,
) -> Result<(), ImportError> {
    let mut csv = csv::ReaderBuilder::new().from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|error| ImportError::Source(format!("the CSV header line: {error}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|header| header.trim() == name);
    let columns = fields.map(|name| column(name));
    let mut record = csv::StringRecord::new();
    loop {
        let number = csv.position().line();
        let row = match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let get = |index: &Option<usize>| {
                    index
                        .and_then(|index| record.get(index))
                        .filter(|value| !value.is_empty())
                        .map(str::to_owned)
                };
                Record {
                    number,
                    source_id: get(&columns.id),
                    row: Ok(columns.row(get)),
                }
            }
            // A line with another number of cells: reported, and the next line is read.
            Err(error) if !error.is_io_error() => unreadable(number, error.to_string()),
            Err(error) => return Err(ImportError::Source(error.to_string())),
        };
        each(row)?;
    }
}
