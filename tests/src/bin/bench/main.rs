//! The benchmark: per-endpoint latency in-process and through the real release binaries,
//! DynamoDB requests and request units per call, login throughput at full argon2 strength,
//! handler overhead, cold start, binary size, peak memory, CPU per invocation and the memory
//! size of each function by a stated rule. Prints markdown tables.
//!
//! Run it with `scripts/bench` (which builds the release binaries and starts DynamoDB Local);
//! `scripts/bench --sizing` runs only what the sizing needs; `scripts/bench --smoke` runs a few
//! iterations of everything, as CI does.

mod binaries;
mod capacity;
mod emulator;
mod events;
mod flow;
mod import;
mod logins;
mod report;
mod setup;
mod signing;
mod sizing;

use setup::{Bench, Options};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let options = Options::from_args();
    report::title(&options);
    let bench = Bench::start().await;

    // 12. The importer only.
    if options.import.is_some() {
        report::import(&import::measure(&bench, &options).await);
        bench.clean_up();
        return;
    }

    // 9. Events only: the publisher on the events of an in-process pass.
    if options.events {
        flow::in_process(&bench, options.calls).await;
        sizing::events(&events::measure(&bench, &options).await);
        bench.clean_up();
        return;
    }

    // 9. Token signing, by way of signing.
    let signing = signing::measure(&options).await;
    report::signing(&signing);
    if options.signing {
        bench.clean_up();
        return;
    }

    // CI's check that the benchmark raises every limit it reaches: more codes to one range, one
    // number and one network than any default budget the full run reaches.
    if options.smoke {
        report::probe(flow::probe_limits(&bench).await);
    }

    // 3. One argon2id verification, measured first, in this run.
    let hash = logins::one_hash(&options).await;

    // 1, 2, 4: in-process, with the DynamoDB requests and capacity of every call counted.
    let in_process = flow::in_process(&bench, options.calls).await;
    let largest = capacity::largest_items(&bench.t).await;
    report::in_process(&in_process, &hash, &largest);

    // 3. Login throughput at concurrency 1 and 8 (of the users just registered).
    if !options.sizing {
        let logins = logins::throughput(&bench, &options, &in_process.phones).await;
        report::throughput(&hash, &logins, options.cores);
    }

    // 1, 5, 7: through the binaries, one process per function, as Lambda runs them.
    let binaries = binaries::measure(&bench, &options).await;
    report::through_binaries(&binaries);
    report::cold_start(&binaries);
    if !options.sizing {
        report::arm64(&binaries::names());
    }

    // 8. The memory size of each function, and what sign-ups and logins cost.
    report::login_cpu(&hash, &binaries);
    sizing::report(&binaries, &in_process);
    sizing::signing(&binaries, &in_process, &signing);

    // 9. Events: the publisher's binary on the events the passes wrote.
    sizing::events(&events::measure(&bench, &options).await);

    // 12. The importer.
    report::import(&import::measure(&bench, &options).await);

    bench.clean_up();
}
