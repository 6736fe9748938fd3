//! The README's "Five minutes with curl", run as written: each `curl` of its block is parsed
//! (method, path, body, bearer) and sent to the app, its placeholders filled from the answers
//! before it, and each answer the README shows (`# 201 {...}`, `# 204`, the outbox line) is
//! compared with the one the API gives. In a shown answer `"..."` stands for any value, a text
//! ending in ` ...` for any text that starts so, `{...}` for any object and a closing `,...}`
//! for more fields; the code the SMS carries is shown as `123456`.

use std::collections::HashMap;
use std::path::Path;

use auth_tests::{Endpoint, RawRequest, TestApp, TestResponse};
use serde_json::{Map, Value};

/// The walk-through's code block, its continued lines joined.
fn walk_through() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let section = readme
        .split("## Five minutes with curl")
        .nth(1)
        .expect("the README's walk-through");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("its code block");
    let mut lines: Vec<String> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        match lines.last_mut() {
            Some(last) if continued => {
                last.push(' ');
                last.push_str(line.trim_start());
            }
            _ => lines.push(line.to_owned()),
        }
        let last = lines.last_mut().expect("a line");
        // A line goes on after a backslash, or inside a single-quoted body.
        continued = last.ends_with('\\') || last.matches('\'').count() % 2 == 1;
        if last.ends_with('\\') {
            last.pop();
        }
    }
    lines
}

/// One step of the block: a request (or the outbox read) and the answer shown after it.
#[derive(Debug, Default)]
struct Step {
    command: String,
    status: Option<u16>,
    answer: Option<Value>,
}

fn steps(lines: &[String]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in lines {
        if line.starts_with("curl ") || line.starts_with("tail ") {
            let (command, status) = match line.rsplit_once("# ") {
                Some((command, status)) => (command.trim().to_owned(), status.trim().parse().ok()),
                None => (line.clone(), None),
            };
            steps.push(Step {
                command,
                status,
                answer: None,
            });
        } else if let Some(shown) = line.strip_prefix("# ") {
            let (status, json) = match shown.split_once(' ') {
                Some((status, rest)) if status.len() == 3 && status.parse::<u16>().is_ok() => {
                    (status.parse().ok(), rest)
                }
                _ => (None, shown),
            };
            if !json.starts_with('{') {
                continue; // a step's title
            }
            let step = steps.last_mut().expect("an answer follows a command");
            step.status = status.or(step.status);
            step.answer = Some(pattern(json));
        }
    }
    steps
}

/// A shown answer (up to its closing brace) as a JSON pattern: `{...}` becomes an object with
/// the key `...` only, `,...}` the key `...` beside the shown ones.
fn pattern(shown: &str) -> Value {
    let mut depth = 0;
    let mut end = shown.len();
    for (i, c) in shown.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    let json = shown[..end]
        .replace("{...}", r#"{"...":"..."}"#)
        .replace(",...}", r#","...":"..."}"#);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("README answer {shown}: {e}"))
}

/// Whether `actual` is what `shown` shows; the first difference otherwise.
fn compare(shown: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (shown, actual) {
        (Value::String(s), actual) if s == "..." => match actual {
            Value::Null => Err(format!("{at}: missing")),
            _ => Ok(()),
        },
        (Value::String(s), Value::String(a)) if s.ends_with(" ...") => {
            if a.starts_with(s.trim_end_matches("...")) {
                Ok(())
            } else {
                Err(format!("{at}: {a:?} does not start as {s:?}"))
            }
        }
        (Value::Object(shown), Value::Object(actual)) => {
            let open = shown.contains_key("...");
            for (key, value) in shown.iter().filter(|(key, _)| *key != "...") {
                let field = actual.get(key).unwrap_or(&Value::Null);
                compare(value, field, &format!("{at}.{key}"))?;
            }
            let unshown: Vec<&String> = actual
                .keys()
                .filter(|key| !shown.contains_key(*key))
                .collect();
            if open || unshown.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{at}: fields the README does not show: {unshown:?}"
                ))
            }
        }
        (shown, actual) if shown == actual => Ok(()),
        (shown, actual) => Err(format!("{at}: {actual} where the README shows {shown}")),
    }
}

/// What the shell would send: the method, path, body and bearer token of a `curl` line, with
/// `$ACCESS`, `$REFRESH` and the `<...>` placeholders filled from `known`.
struct Request {
    method: String,
    path: String,
    body: Option<String>,
    bearer: Option<String>,
}

fn request(command: &str, known: &HashMap<String, String>) -> Request {
    let mut rest = command.strip_prefix("curl ").expect("a curl command");
    let (mut method, mut path, mut body, mut bearer) = (None, None, None, None);
    // Arguments: plain words, 'single-quoted' or "double-quoted" (with \" inside).
    let mut words = Vec::new();
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[start..];
        let (word, after) = match rest.chars().next() {
            Some('\'') => {
                let end = rest[1..].find('\'').expect("a closing quote") + 1;
                (rest[1..end].to_owned(), &rest[end + 1..])
            }
            Some('"') => {
                let mut end = 1;
                while let Some(offset) = rest[end..].find('"') {
                    end += offset;
                    if !rest[..end].ends_with('\\') {
                        break;
                    }
                    end += 1;
                }
                (rest[1..end].replace("\\\"", "\""), &rest[end + 1..])
            }
            _ => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (rest[..end].to_owned(), &rest[end..])
            }
        };
        words.push(word);
        rest = after;
    }
    let fill = |text: &str| {
        let mut text = text.to_owned();
        for (name, value) in known {
            text = text.replace(&format!("${name}"), value);
        }
        text
    };
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-s" => {}
            "-X" => method = words.next(),
            "-d" => body = words.next().map(|body| fill(&body)),
            "-H" => {
                let header = fill(&words.next().expect("a header"));
                if let Some(token) = header.strip_prefix("authorization: Bearer ") {
                    bearer = Some(token.to_owned());
                }
            }
            other => {
                path = Some(
                    other
                        .strip_prefix("$api")
                        .unwrap_or_else(|| panic!("an unknown curl argument {other}"))
                        .to_owned(),
                )
            }
        }
    }
    let body = body.map(|body| {
        let mut json: Value = serde_json::from_str(&body).expect("a JSON body");
        if let Value::Object(fields) = &mut json {
            for (key, value) in fields.iter_mut() {
                if value.as_str().is_some_and(|v| v.starts_with('<')) {
                    let filled = known
                        .get(key)
                        .unwrap_or_else(|| panic!("nothing before this step gives {key}"));
                    *value = Value::String(filled.clone());
                }
            }
        }
        json.to_string()
    });
    Request {
        method: method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_owned()),
        path: path.expect("a path"),
        body,
        bearer,
    }
}

/// The values later steps take from an answer: its ids and tokens.
fn remember(answer: &Map<String, Value>, known: &mut HashMap<String, String>) {
    for (key, value) in answer {
        match (key.as_str(), value) {
            ("tokens", Value::Object(tokens)) => {
                for (name, token) in [("ACCESS", "access"), ("REFRESH", "refresh")] {
                    if let Some(token) = tokens.get(token).and_then(Value::as_str) {
                        known.insert(name.to_owned(), token.to_owned());
                    }
                }
            }
            (_, Value::String(text)) => {
                known.insert(key.clone(), text.clone());
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_readmes_walk_through_answers_as_it_shows() {
    let t = TestApp::new().await;
    let steps = steps(&walk_through());
    assert!(steps.len() >= 9, "{steps:#?}");
    let mut known: HashMap<String, String> = HashMap::new();
    let mut answered = 0;
    for step in &steps {
        let (status, body) = if step.command.starts_with("tail ") {
            // The last line of the SMS outbox; its code is shown as 123456.
            let mut sms = t.sent_sms().pop().expect("an SMS in the outbox");
            let to = sms["to"].as_str().expect("a number").to_owned();
            let code = t.last_code_for(&to).expect("a code in the SMS");
            let text = sms["body"]
                .as_str()
                .expect("a text")
                .replace(&code, "123456");
            sms["body"] = Value::String(text);
            known.insert("code".to_owned(), code);
            (None, sms)
        } else {
            let request = request(&step.command, &known);
            let endpoint = *Endpoint::ALL
                .iter()
                .find(|endpoint| endpoint.path() == request.path)
                .unwrap_or_else(|| panic!("no endpoint at {}", request.path));
            let TestResponse { status, body, .. } = t
                .send(
                    endpoint,
                    RawRequest {
                        method: &request.method,
                        body: request.body.as_deref(),
                        bearer: request.bearer.as_deref(),
                        ..RawRequest::default()
                    },
                )
                .await;
            assert!(status < 500, "{}: {status} {body}", step.command);
            (Some(status), body)
        };
        match (step.status, status) {
            (Some(shown), Some(status)) => assert_eq!(status, shown, "{}: {body}", step.command),
            (None, Some(status)) => assert!(
                (200..300).contains(&status),
                "{}: {status} {body}",
                step.command
            ),
            _ => {}
        }
        if let Some(shown) = &step.answer {
            compare(shown, &body, "answer").unwrap_or_else(|e| panic!("{}: {e}", step.command));
            answered += 1;
        }
        if let Value::Object(fields) = &body {
            remember(fields, &mut known);
        }
    }
    assert!(answered >= 6, "{answered} answers compared");
}
