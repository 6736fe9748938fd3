//! Events: the publisher's binary behind the local Runtime API, handed the events table's stream
//! records as Lambda's event source mapping hands them (in batches of 1, 10 and the template's
//! `BatchSize`), putting them on a local `PutEvents` stub: its CPU and billed duration per
//! invocation. The records are the ones the passes over the API wrote, cycled when a batch
//! needs more than there are.

use auth_tests::PutEventsStub;
use auth_tests::publisher::PUBLISHER;
use auth_tests::tables::{read_template, template_path};
use serde_json::{Value, json};

use crate::emulator::Function;
use crate::setup::{Bench, Options};
use crate::sizing::millis;

/// The largest batch the event source mapping hands the publisher (`template.yaml`).
fn template_batch_size() -> usize {
    let (_, resources) = read_template(&template_path()).expect("template.yaml");
    resources
        .get("EventsPublisherStream")
        .and_then(|mapping| mapping.get("Properties")?.get("BatchSize")?.as_u64())
        .and_then(|size| usize::try_from(size).ok())
        .expect("EventsPublisherStream's BatchSize in template.yaml")
}

/// The warm invocations of one batch size.
pub struct EventBatches {
    pub records_per_invocation: usize,
    /// `PutEvents` calls per invocation (the stub's count over all of them).
    pub put_calls_per_invocation: f64,
    /// Per invocation, in ms: the CPU the process used, and the rest of its billed duration.
    pub cpu_ms: Vec<f64>,
    pub wait_ms: Vec<f64>,
}

/// Each batch size, `invocations` warm invocations (after one to warm the process up), every
/// record of every one checked to have reached the stub.
pub async fn measure(bench: &Bench, options: &Options) -> Vec<EventBatches> {
    let records = bench.t.stream_records().await;
    assert!(
        !records.is_empty(),
        "the passes over the API wrote no events"
    );
    let stub = PutEventsStub::accepting().await;
    let mut env = bench.binary_env();
    env.insert(
        "AWS_ENDPOINT_URL_EVENTBRIDGE".to_owned(),
        stub.endpoint.clone(),
    );
    let publisher = Function::start(&options.binaries.join(PUBLISHER), &env).await;
    publisher.ready().await;
    let invocations = if options.smoke { 2 } else { 50 };
    let batch = |size: usize| -> String {
        let cycled: Vec<&Value> = records.iter().cycle().take(size).collect();
        json!({ "Records": cycled }).to_string()
    };
    let mut published = 0;
    let invoke = async |event: String, size: usize, published: &mut usize| {
        let invocation = publisher.invoke(event).await;
        let failures = &invocation.response["batchItemFailures"];
        assert_eq!(failures, &json!([]), "{}", invocation.response);
        *published += size;
        assert_eq!(
            stub.published().len(),
            *published,
            "every event reached PutEvents"
        );
        invocation
    };
    invoke(batch(1), 1, &mut published).await;
    let mut measured = Vec::new();
    for size in [1, 10, template_batch_size()] {
        let event = batch(size);
        let calls_before = stub.requests().len();
        let (mut cpu_ms, mut wait_ms) = (Vec::new(), Vec::new());
        for _ in 0..invocations {
            let invocation = invoke(event.clone(), size, &mut published).await;
            let cpu = invocation.cpu.map_or(0.0, |cpu| millis(cpu.time));
            cpu_ms.push(cpu);
            wait_ms.push((millis(invocation.billed) - cpu).max(0.0));
        }
        measured.push(EventBatches {
            records_per_invocation: size,
            put_calls_per_invocation: (stub.requests().len() - calls_before) as f64
                / invocations as f64,
            cpu_ms,
            wait_ms,
        });
    }
    measured
}
