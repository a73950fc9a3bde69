//! The local stand-in for the MSK event source, run for one test on its app's topic.

use market_data_local::event_source::{BatchSettings, EventSourceError, run_kafka};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::TestApp;

/// A running event source; [`stop`](Self::stop) it to see how it ended.
pub struct RunningSource {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), EventSourceError>>,
}

impl RunningSource {
    /// Consumes `app`'s topic into `app`'s consumer, batching as `settings` say.
    pub fn start(app: &TestApp, settings: BatchSettings) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let kafka = app.config.kafka.clone().expect("the app has Kafka");
        let consumer = app.services.consumer.clone();
        let task = tokio::spawn(async move {
            run_kafka(&kafka, &settings, consumer, async {
                let _ = stopped.await;
            })
            .await
        });
        Self { stop, task }
    }

    /// Ends it abruptly, as a killed process would: no commit, no goodbye to the broker.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Stops it and checks it ended without an error.
    pub async fn stop(self) {
        self.stop.send(()).expect("the event source is running");
        self.task
            .await
            .expect("the event source did not panic")
            .expect("the event source ended cleanly");
    }
}
