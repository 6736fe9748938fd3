//! `DynamoDbGate`, an SDK interceptor that counts, times, fails or pauses DynamoDB operations,
//! and the `Pause` a request waits at.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// An SDK interceptor that lets the first `allowed` DynamoDB operations through and fails every
/// later one, as if DynamoDB became unreachable mid-request. It also counts operations.
#[derive(Debug, Clone, Default)]
pub struct DynamoDbGate {
    seen: Arc<AtomicUsize>,
    allowed: usize,
    /// Time spent inside DynamoDB operations (from the SDK's start to its end), in nanoseconds.
    busy_nanos: Arc<AtomicU64>,
    /// Holds the operation of this index until released (to interleave two requests).
    pause: Option<(usize, Arc<Pause>)>,
}

/// A point where a request waits until the test releases it.
#[derive(Debug, Default)]
pub struct Pause {
    state: Mutex<PauseState>,
    changed: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct PauseState {
    reached: bool,
    released: bool,
}

impl Pause {
    /// Waits (on a blocking thread) until the paused request has reached the pause.
    pub async fn reached(self: &Arc<Self>) {
        let pause = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut state = pause.state.lock().expect("pause state");
            while !state.reached {
                state = pause.changed.wait(state).expect("pause state");
            }
        })
        .await
        .expect("waiting for the pause");
    }

    /// Lets the paused request go on.
    pub fn release(&self) {
        self.state.lock().expect("pause state").released = true;
        self.changed.notify_all();
    }

    fn wait_here(&self) {
        let mut state = self.state.lock().expect("pause state");
        state.reached = true;
        self.changed.notify_all();
        while !state.released {
            state = self.changed.wait(state).expect("pause state");
        }
    }
}

#[derive(Debug, Clone)]
struct OperationStarted(std::time::Instant);

impl Storable for OperationStarted {
    type Storer = StoreReplace<Self>;
}

impl DynamoDbGate {
    pub fn failing_after(allowed: usize) -> Self {
        Self {
            seen: Arc::default(),
            allowed,
            busy_nanos: Arc::default(),
            pause: None,
        }
    }

    /// A gate that holds operation `index` (0 is the first) until the returned pause is
    /// released. The request blocks its runtime thread meanwhile: use a multi-thread runtime.
    pub fn pausing_before(index: usize) -> (Self, Arc<Pause>) {
        let pause = Arc::new(Pause::default());
        let gate = Self {
            pause: Some((index, Arc::clone(&pause))),
            ..Self::counting()
        };
        (gate, pause)
    }

    /// Total time spent in DynamoDB operations through the gate.
    pub fn busy(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.busy_nanos.load(Ordering::SeqCst))
    }

    /// A gate that never fails: it only counts.
    pub fn counting() -> Self {
        Self::failing_after(usize::MAX)
    }

    /// How many operations were attempted through the gate.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Intercept for DynamoDbGate {
    fn name(&self) -> &'static str {
        "DynamoDbGate"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let index = self.seen.fetch_add(1, Ordering::SeqCst);
        if index >= self.allowed {
            return Err("DynamoDB is unreachable (injected by the test)".into());
        }
        if let Some((paused_index, pause)) = &self.pause
            && *paused_index == index
        {
            pause.wait_here();
        }
        cfg.interceptor_state()
            .store_put(OperationStarted(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(OperationStarted(start)) = cfg.load::<OperationStarted>() {
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.busy_nanos.fetch_add(nanos, Ordering::SeqCst);
        }
        Ok(())
    }
}
