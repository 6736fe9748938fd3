//! Sizing (8), the way AWS Lambda Power Tuning sizes a function but from a model: the CPU time
//! and the billed duration of every invocation through the binaries give the billed duration
//! and the cost at each memory size, and a stated rule picks each function's size. Then the
//! cost of a million sign-ups and logins at those sizes.
//!
//! The model: Lambda gives a function CPU in proportion to its memory, one full vCPU at 1,769
//! MB, so the CPU part of a call stretches by 1769 / size below that; the waiting (here
//! DynamoDB Local on loopback) does not; the billed duration is rounded up to 1 ms. Above 1,769
//! MB a single-threaded call gets no faster.

use std::time::Duration;

use auth_tests::routes::template_functions;
use auth_tests::tables::{read_template, template_path};

use auth_tests::publisher::PUBLISHER;

use crate::binaries::Binaries;
use crate::events::EventBatches;
use crate::flow::{Sample, Scenario};
use crate::report::warm;
use crate::signing::SigningCost;

pub const SIZES_MB: [u32; 6] = [128, 256, 512, 1024, 1769, 3008];
const FULL_VCPU_MB: f64 = 1769.0;

// List prices, us-east-1, as BENCHMARKS.md states them with their sources and dates.
/// Lambda arm64 duration, first tier.
const PER_GB_SECOND: f64 = 0.000_013_333_4;
const PER_LAMBDA_REQUEST: f64 = 0.20e-6;
/// API Gateway HTTP API, first 300 million requests a month.
const PER_HTTP_API_REQUEST: f64 = 1.00e-6;
/// DynamoDB on-demand request units.
const PER_WRITE_UNIT: f64 = 0.625e-6;
const PER_READ_UNIT: f64 = 0.125e-6;

/// The second model: each DynamoDB request takes this long in a region, instead of the time
/// it took DynamoDB Local here (an assumption, not a measurement).
pub const REGION_MS_PER_REQUEST: f64 = 5.0;

/// The rule: the fastest size (modeled p50, region model) among those whose modeled cost per
/// call (duration and request charge) is at most 10% above the cheapest size's under both the
/// measured and the region model; p50s within 1 ms count as equally fast, and then the smaller
/// size wins.
pub const RULE: &str = "the fastest size (modeled p50 of the warm calls, region model) among the sizes whose modeled Lambda cost per call (duration and request charge) is at most 10% above the cheapest size's under both the measured and the region model; p50s within 1 ms are equally fast, and then the smaller size wins";
const COST_BUDGET: f64 = 1.10;
const SAME_SPEED_MS: f64 = 1.0;

/// The paths the cost tables add up.
const SIGN_UP: [&str; 3] = ["check-phone (new)", "verify", "register"];
const LOGIN: [&str; 1] = ["login (ok)"];
const FAILED_LOGIN: [&str; 1] = ["login (wrong)"];

/// Warm invocations of one path or function: CPU and waiting per call, in ms.
#[derive(Default, Clone)]
struct Calls {
    cpu: Vec<f64>,
    wait: Vec<f64>,
}

/// The round trip of a KMS `Sign` in the region, assumed (no published figure was found): twice
/// the region model's 5 ms per DynamoDB request, for an HTTPS request plus the key's operation.
const KMS_SIGN_MS: f64 = 10.0;

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

/// Modeled billed duration (ms, rounded up to Lambda's 1 ms) at `size` MB.
fn billed_ms(cpu: f64, wait: f64, size: u32) -> f64 {
    let share = (f64::from(size) / FULL_VCPU_MB).min(1.0);
    (cpu / share + wait).ceil().max(1.0)
}

/// The cost of a million calls of `mean_billed` ms at `size` MB: duration and request charge.
fn lambda_cost_per_million(mean_billed: f64, size: u32) -> f64 {
    let gb_seconds = mean_billed / 1000.0 * f64::from(size) / 1024.0;
    1e6 * (gb_seconds * PER_GB_SECOND + PER_LAMBDA_REQUEST)
}

impl Calls {
    /// Local model: the waiting is what it was here.
    fn local(samples: &[&Sample]) -> Self {
        Self::with_wait(samples, |wait| wait)
    }

    /// Region model: the time DynamoDB Local took (`dynamodb_ms` per call, measured in-process
    /// on the same path) is replaced by `requests` × `REGION_MS_PER_REQUEST`.
    fn region(samples: &[&Sample], requests: f64, dynamodb_ms: f64) -> Self {
        Self::with_wait(samples, |wait| {
            (wait - dynamodb_ms).max(0.0) + requests * REGION_MS_PER_REQUEST
        })
    }

    fn with_wait(samples: &[&Sample], wait: impl Fn(f64) -> f64) -> Self {
        let mut calls = Calls::default();
        for usage in samples.iter().filter_map(|s| s.usage.as_ref()) {
            let cpu = millis(usage.cpu.time);
            calls.cpu.push(cpu);
            calls.wait.push(wait((millis(usage.billed) - cpu).max(0.0)));
        }
        calls
    }

    fn extend(&mut self, other: &Calls) {
        self.cpu.extend_from_slice(&other.cpu);
        self.wait.extend_from_slice(&other.wait);
    }

    fn billed(&self, size: u32) -> Vec<f64> {
        self.cpu
            .iter()
            .zip(&self.wait)
            .map(|(cpu, wait)| billed_ms(*cpu, *wait, size))
            .collect()
    }

    fn p50(&self, size: u32) -> f64 {
        median(self.billed(size))
    }

    fn cost_per_million(&self, size: u32) -> f64 {
        let billed = self.billed(size);
        let mean = billed.iter().sum::<f64>() / billed.len().max(1) as f64;
        lambda_cost_per_million(mean, size)
    }

    fn cheapest(&self) -> f64 {
        SIZES_MB
            .iter()
            .map(|&size| self.cost_per_million(size))
            .fold(f64::INFINITY, f64::min)
    }

    /// How much more than the cheapest size `size` costs, in percent.
    fn over_cheapest(&self, size: u32) -> f64 {
        100.0 * (self.cost_per_million(size) / self.cheapest() - 1.0)
    }
}

/// The same calls under both models.
#[derive(Default, Clone)]
struct Model {
    local: Calls,
    region: Calls,
}

impl Model {
    fn extend(&mut self, other: &Model) {
        self.local.extend(&other.local);
        self.region.extend(&other.region);
    }

    /// The size the rule picks.
    fn choose(&self) -> u32 {
        let within = |calls: &Calls, size: u32| {
            calls.cost_per_million(size) <= calls.cheapest() * COST_BUDGET
        };
        let affordable: Vec<u32> = SIZES_MB
            .into_iter()
            .filter(|&size| within(&self.local, size) && within(&self.region, size))
            .collect();
        let fastest = affordable
            .iter()
            .map(|&size| self.region.p50(size))
            .fold(f64::INFINITY, f64::min);
        affordable
            .into_iter()
            .find(|&size| self.region.p50(size) <= fastest + SAME_SPEED_MS)
            .unwrap_or(SIZES_MB[0])
    }
}

/// One path (a step of the pass), measured through its function's binary and in-process.
struct Path {
    step: &'static str,
    function: &'static str,
    model: Model,
    /// In-process, per call (mean): DynamoDB requests, read and write request units.
    requests: f64,
    read_units: f64,
    write_units: f64,
}

fn paths(binaries: &Binaries, in_process: &Scenario) -> Vec<Path> {
    let mut paths = Vec::new();
    for (step, endpoint, series) in &binaries.scenario.series {
        let samples: Vec<&Sample> = warm(series).collect();
        let measured = in_process
            .series
            .iter()
            .find(|(name, _, _)| name == step)
            .map(|(_, _, series)| series.0.as_slice())
            .unwrap_or_default();
        let n = measured.len().max(1) as f64;
        let mean = |f: &dyn Fn(&Sample) -> f64| measured.iter().map(f).sum::<f64>() / n;
        let requests = mean(&|s| s.dynamodb_calls as f64);
        let dynamodb_ms = mean(&|s| millis(s.dynamodb_time));
        paths.push(Path {
            step,
            function: endpoint.function(),
            model: Model {
                local: Calls::local(&samples),
                region: Calls::region(&samples, requests, dynamodb_ms),
            },
            requests,
            read_units: mean(&|s| s.units.read),
            write_units: mean(&|s| s.units.write),
        });
    }
    paths
}

/// The functions in the order their first path appears, each with its paths' calls pooled.
fn functions(paths: &[Path]) -> Vec<(&'static str, Vec<&'static str>, Model)> {
    let mut functions: Vec<(&'static str, Vec<&'static str>, Model)> = Vec::new();
    for path in paths {
        match functions.iter_mut().find(|(f, _, _)| *f == path.function) {
            Some((_, steps, pooled)) => {
                steps.push(path.step);
                pooled.extend(&path.model);
            }
            None => functions.push((path.function, vec![path.step], path.model.clone())),
        }
    }
    functions
}

/// A template parameter that sets the `MemorySize` of some functions, with its default.
struct Family {
    parameter: String,
    default: Option<u32>,
    functions: Vec<String>,
}

/// The memory families of `template.yaml`: each function's `MemorySize` (its own, else the
/// `Globals` one) as a `!Ref` to a parameter.
fn families() -> Result<Vec<Family>, Box<dyn std::error::Error + Send + Sync>> {
    use serde_yaml_ng::Value;
    let (template, resources) = read_template(&template_path())?;
    let parameter_of = |value: Option<&Value>| match value {
        Some(Value::Tagged(tagged)) if tagged.tag == "Ref" => {
            tagged.value.as_str().map(str::to_owned)
        }
        _ => None,
    };
    let global = parameter_of(
        template
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("MemorySize")),
    );
    let mut families: Vec<Family> = Vec::new();
    for function in template_functions(&template_path())? {
        let properties = resources
            .get(function.logical_id.as_str())
            .and_then(|r| r.get("Properties"));
        let own = properties.and_then(|p| p.get("MemorySize"));
        let Some(parameter) = (if own.is_some() {
            parameter_of(own)
        } else {
            global.clone()
        }) else {
            return Err(format!("{}'s MemorySize is not a parameter", function.binary).into());
        };
        match families.iter_mut().find(|f| f.parameter == parameter) {
            Some(family) => family.functions.push(function.binary),
            None => {
                let default = template
                    .get("Parameters")
                    .and_then(|p| p.get(parameter.as_str()))
                    .and_then(|p| p.get("Default"))
                    .and_then(Value::as_u64)
                    .and_then(|d| u32::try_from(d).ok());
                families.push(Family {
                    parameter,
                    default,
                    functions: vec![function.binary],
                });
            }
        }
    }
    Ok(families)
}

fn size_columns() -> (String, String) {
    let names: Vec<String> = SIZES_MB.iter().map(|s| format!("{s} MB")).collect();
    (names.join(" | "), vec!["---"; SIZES_MB.len()].join("|"))
}

/// Prints the sizing tables, the sizes the rule picks, and the cost tables.
pub fn report(binaries: &Binaries, in_process: &Scenario) {
    let paths = paths(binaries, in_process);
    let (sizes, rule) = size_columns();
    println!(
        "\n## Sizing (warm invocations through the binaries; model in tests/src/bin/bench/sizing.rs)\n"
    );
    println!(
        "Per path: measured CPU and waiting per call (p50), then the modeled billed duration p50 (ms) at each size: CPU × max(1, 1769 / size) + waiting, rounded up to 1 ms. Measured model: the waiting as measured (DynamoDB Local on loopback on the same two cores, not a region). Region model: DynamoDB Local's time (measured in-process on the same path) replaced by {REGION_MS_PER_REQUEST} ms per DynamoDB request.\n"
    );
    println!(
        "| function | path | calls | CPU p50 ms | waiting p50 ms (measured / region) | model | {sizes} |"
    );
    println!("|---|---|---|---|---|---|{rule}|");
    for path in &paths {
        for (model, calls) in [
            ("measured", &path.model.local),
            ("region", &path.model.region),
        ] {
            let modeled: Vec<String> = SIZES_MB
                .iter()
                .map(|&size| format!("{:.0}", calls.p50(size)))
                .collect();
            println!(
                "| {} | {} | {} | {:.2} | {:.2} / {:.2} | {model} | {} |",
                path.function,
                path.step,
                calls.cpu.len(),
                median(calls.cpu.clone()),
                median(path.model.local.wait.clone()),
                median(path.model.region.wait.clone()),
                modeled.join(" | ")
            );
        }
    }
    println!(
        "\nModeled Lambda cost per million calls, $ (duration at the mean modeled billed duration, arm64, plus $0.20 of requests), measured / region model:\n"
    );
    println!("| path | {sizes} |");
    println!("|---|{rule}|");
    for path in &paths {
        let costs: Vec<String> = SIZES_MB
            .iter()
            .map(|&size| {
                format!(
                    "{:.3} / {:.3}",
                    path.model.local.cost_per_million(size),
                    path.model.region.cost_per_million(size)
                )
            })
            .collect();
        println!("| {} | {} |", path.step, costs.join(" | "));
    }
    decisions(&paths);
    let chosen = family_sizes(&paths);
    cold_starts(binaries);
    costs(&paths, &chosen);
}

/// Applies the rule to every function (its paths pooled) and prints the result.
fn decisions(paths: &[Path]) {
    println!("\n### The rule, per function\n");
    println!("Rule: {RULE}.\n");
    println!(
        "| function | paths | rule's size | p50 ms there (measured / region) | $ per 1M there (measured / region) | vs the cheapest size (measured / region) | p50 ms at 128 MB (region) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (function, steps, model) in functions(paths) {
        let size = model.choose();
        println!(
            "| {function} | {} | **{size}** | {:.0} / {:.0} | {:.3} / {:.3} | {:+.1}% / {:+.1}% | {:.0} |",
            steps.join(", "),
            model.local.p50(size),
            model.region.p50(size),
            model.local.cost_per_million(size),
            model.region.cost_per_million(size),
            model.local.over_cheapest(size),
            model.region.over_cheapest(size),
            model.region.p50(128),
        );
    }
}

/// Applies the rule to each memory family of the template (its functions' calls pooled),
/// prints it beside the template's default, and returns each function's size as deployed by
/// default (the template's, or the rule's where the template has none).
fn family_sizes(paths: &[Path]) -> Vec<(String, u32)> {
    let families = match families() {
        Ok(families) => families,
        Err(error) => {
            println!("\n(template.yaml's memory parameters could not be read: {error})");
            return Vec::new();
        }
    };
    println!(
        "\n### The rule, per memory parameter of template.yaml (its functions' calls pooled)\n"
    );
    println!("| parameter | functions | rule's size | template default | follows the rule |");
    println!("|---|---|---|---|---|");
    let functions = functions(paths);
    let mut sizes = Vec::new();
    for family in &families {
        let mut pooled = Model::default();
        for (_, _, model) in functions
            .iter()
            .filter(|(f, _, _)| family.functions.iter().any(|name| name == f))
        {
            pooled.extend(model);
        }
        let size = pooled.choose();
        let default = family.default.unwrap_or(size);
        println!(
            "| `{}` | {} | **{size}** | {} | {} |",
            family.parameter,
            family.functions.join(", "),
            family.default.map_or("none".to_owned(), |d| d.to_string()),
            if family.default == Some(size) {
                "yes"
            } else {
                "**no**"
            }
        );
        sizes.extend(family.functions.iter().map(|f| (f.clone(), default)));
    }
    sizes
}

/// Init and the first invocation of each function, and the modeled billed duration of a cold
/// start's first call (init, billed for every runtime since 2025, plus the invocation).
fn cold_starts(binaries: &Binaries) {
    let (sizes, rule) = size_columns();
    println!(
        "\n### Cold start: init and the first invocation, modeled (ms billed for init + first invocation)\n"
    );
    println!(
        "| function | init CPU ms | init waiting ms | first invocation CPU ms | its waiting ms | {sizes} |"
    );
    println!("|---|---|---|---|---|{rule}|");
    for start in &binaries.cold {
        let Some((_, first)) = binaries.scenario.first_invocation(&start.name) else {
            continue;
        };
        let init_cpu = millis(start.init_cpu.time);
        let init_wait = (millis(start.init) - init_cpu).max(0.0);
        let cpu = millis(first.cpu.time);
        let wait = (millis(first.billed) - cpu).max(0.0);
        let modeled: Vec<String> = SIZES_MB
            .iter()
            .map(|&size| format!("{:.0}", billed_ms(init_cpu + cpu, init_wait + wait, size)))
            .collect();
        println!(
            "| {} | {init_cpu:.2} | {init_wait:.2} | {cpu:.2} | {wait:.2} | {} |",
            start.name,
            modeled.join(" | ")
        );
    }
}

/// The cost of a million sign-ups, logins and failed logins at the template's default sizes.
fn costs(paths: &[Path], sizes: &[(String, u32)]) {
    println!(
        "\n### Cost per million, at the template's default sizes (arm64 Lambda, HTTP API, DynamoDB on-demand; no SMS, no logs)\n"
    );
    println!(
        "| flow | paths | DynamoDB requests | read / write request units | DynamoDB $ | HTTP API $ | Lambda $ (measured / region model) | total $ (region model) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (flow, steps) in [
        ("1,000,000 sign-ups", &SIGN_UP[..]),
        ("1,000,000 logins", &LOGIN[..]),
        ("1,000,000 failed logins", &FAILED_LOGIN[..]),
    ] {
        let (mut requests, mut read, mut write, mut local, mut region) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for path in steps
            .iter()
            .filter_map(|step| paths.iter().find(|p| p.step == *step))
        {
            let size = sizes
                .iter()
                .find(|(f, _)| f == path.function)
                .map_or(SIZES_MB[0], |(_, s)| *s);
            requests += path.requests;
            read += path.read_units;
            write += path.write_units;
            local += path.model.local.cost_per_million(size);
            region += path.model.region.cost_per_million(size);
        }
        let dynamodb = 1e6 * (read * PER_READ_UNIT + write * PER_WRITE_UNIT);
        let http_api = 1e6 * steps.len() as f64 * PER_HTTP_API_REQUEST;
        println!(
            "| {flow} | {} | {requests:.2} | {read:.2} / {write:.2} | {dynamodb:.2} | {http_api:.2} | {local:.2} / {region:.2} | {:.2} |",
            steps.join(" + "),
            dynamodb + http_api + region,
        );
    }
}

/// Login and refresh under each way of signing: their warm calls through the binaries (which
/// sign EdDSA) with the EdDSA pair's CPU and waiting swapped for the mode's, a KMS request's
/// waiting taken as `KMS_SIGN_MS` instead of the emulator's; modeled p50 (region model).
pub fn signing(binaries: &Binaries, in_process: &Scenario, costs: &[SigningCost]) {
    let Some(eddsa) = costs.iter().find(|cost| cost.name.starts_with("EdDSA (")) else {
        return;
    };
    let waiting = |cost: &SigningCost| {
        if cost.kms_requests > 0 {
            cost.kms_requests as f64 * KMS_SIGN_MS
        } else {
            (millis(cost.wall_p50) - millis(cost.cpu_mean)).max(0.0)
        }
    };
    let paths = paths(binaries, in_process);
    let (sizes, rule) = size_columns();
    println!(
        "\n### Login and refresh by way of signing (modeled from the binaries' EdDSA calls; a KMS `Sign` taken as {KMS_SIGN_MS} ms in the region)\n\nModeled billed p50 (ms, region model) at each size.\n"
    );
    println!("| path | signing | CPU p50 ms | {sizes} |");
    println!("|---|---|---|{rule}|");
    for step in ["login (ok)", "refresh"] {
        let Some(path) = paths.iter().find(|path| path.step == step) else {
            continue;
        };
        for cost in costs {
            let cpu_delta = millis(cost.cpu_mean) - millis(eddsa.cpu_mean);
            let wait_delta = waiting(cost) - waiting(eddsa);
            let calls = Calls {
                cpu: path
                    .model
                    .region
                    .cpu
                    .iter()
                    .map(|cpu| (cpu + cpu_delta).max(0.0))
                    .collect(),
                wait: path
                    .model
                    .region
                    .wait
                    .iter()
                    .map(|wait| (wait + wait_delta).max(0.0))
                    .collect(),
            };
            let p50s: String = SIZES_MB
                .iter()
                .map(|size| format!(" {:.0} |", calls.p50(*size)))
                .collect();
            let cpu = median(calls.cpu.clone());
            println!("| {step} | {} | {cpu:.2} |{p50s}", cost.name);
        }
    }
}

/// EventBridge custom events, per event (each under 64 KB).
const PER_EVENTBRIDGE_EVENT: f64 = 1.00e-6;
/// The outbox item of an event: 2 write units inside its change's transaction.
const OUTBOX_WRITE_UNITS: f64 = 2.0;

/// The publisher per invocation and per million events at its memory size in the template, the
/// region model adding `REGION_MS_PER_REQUEST` per `PutEvents` call to the stub's time.
pub fn events(batches: &[EventBatches]) {
    let size = families()
        .ok()
        .and_then(|families| {
            families
                .into_iter()
                .find(|family| family.functions.iter().any(|f| f == PUBLISHER))?
                .default
        })
        .unwrap_or(SIZES_MB[0]);
    let per_event_fixed = OUTBOX_WRITE_UNITS * PER_WRITE_UNIT + PER_EVENTBRIDGE_EVENT;
    println!(
        "\n### Events: the publisher's binary per invocation, and per 1,000,000 events at {size} MB\n"
    );
    println!(
        "Warm invocations on a local PutEvents stub; the region model adds {REGION_MS_PER_REQUEST} ms per PutEvents call. All-in adds the outbox item ({OUTBOX_WRITE_UNITS} write units) and EventBridge's charge: ${:.2} per million events.\n",
        1e6 * per_event_fixed
    );
    println!(
        "| records per invocation | invocations | PutEvents calls each | CPU ms p50 | CPU µs per event | billed ms p50 here | modeled billed ms p50 (region) | Lambda $ per 1,000,000 events (region) | all-in $ per 1,000,000 events |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for batch in batches {
        let records = batch.records_per_invocation as f64;
        let region = Calls {
            cpu: batch.cpu_ms.clone(),
            wait: batch
                .wait_ms
                .iter()
                .map(|wait| wait + batch.put_calls_per_invocation * REGION_MS_PER_REQUEST)
                .collect(),
        };
        let cpu = median(batch.cpu_ms.clone());
        let lambda = region.cost_per_million(size) / records;
        println!(
            "| {} | {} | {:.1} | {cpu:.2} | {:.0} | {:.2} | {:.0} | {lambda:.2} | {:.2} |",
            batch.records_per_invocation,
            batch.cpu_ms.len(),
            batch.put_calls_per_invocation,
            1000.0 * cpu / records,
            median(
                batch
                    .cpu_ms
                    .iter()
                    .zip(&batch.wait_ms)
                    .map(|(cpu, wait)| cpu + wait)
                    .collect()
            ),
            region.p50(size),
            lambda + 1e6 * per_event_fixed,
        );
    }
}
