//! Worker supervision: each long-running part of the daemon is a named worker that is
//! restarted with exponential backoff when it fails, and stopped through one cancellation
//! token on shutdown.

use std::{future::Future, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Backoff bounds for restarting a failed worker.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(200);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A worker that ran this long before failing starts again from the first delay.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs workers until shutdown.
#[derive(Debug, Clone)]
pub(crate) struct Supervisor {
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Supervisor {
    /// A supervisor whose workers stop when `shutdown` is cancelled.
    pub(crate) fn new(shutdown: CancellationToken) -> Self {
        Self {
            shutdown,
            tracker: TaskTracker::new(),
        }
    }

    /// Spawns `make()` as worker `name`; when it returns an error (or panics) it is started
    /// again after a growing delay. A worker that returns `Ok` has finished for good.
    pub(crate) fn spawn<F, Fut>(&self, name: &'static str, make: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            let mut delay = FIRST_RESTART_DELAY;
            loop {
                let started = tokio::time::Instant::now();
                let run = tokio::spawn(make(shutdown.clone()));
                let outcome = run.await;
                if shutdown.is_cancelled() {
                    return;
                }
                match outcome {
                    Ok(Ok(())) => return,
                    Ok(Err(err)) => tracing::error!(worker = name, error = %format!("{err:#}"), "worker failed; restarting"),
                    Err(join) => tracing::error!(worker = name, error = %join, "worker panicked; restarting"),
                }
                metrics::counter!("hubsync_worker_restarts_total", "worker" => name).increment(1);
                if started.elapsed() >= HEALTHY_RUN {
                    delay = FIRST_RESTART_DELAY;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_RESTART_DELAY);
            }
        });
    }

    /// Cancels every worker and waits up to `grace` for them to finish.
    pub(crate) async fn stop(&self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failed_worker_is_restarted_until_it_succeeds() {
        let sup = Supervisor::new(CancellationToken::new());
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        sup.spawn("flaky", move |_| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    anyhow::bail!("attempt {n} fails")
                } else {
                    Ok(())
                }
            }
        });
        sup.tracker.close();
        sup.tracker.wait().await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_cancels_running_workers() {
        let sup = Supervisor::new(CancellationToken::new());
        sup.spawn("forever", |token| async move {
            token.cancelled().await;
            Ok(())
        });
        assert!(sup.stop(Duration::from_secs(1)).await);
    }
}
