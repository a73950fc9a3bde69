//! A Kafka-compatible broker of one test's own (Tansu, in-memory), which the test can make
//! unresponsive and bring back: the stack's shared broker is never disturbed.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::endpoint;

/// A running private broker; killed when dropped.
pub struct PrivateBroker {
    child: Child,
    port: u16,
}

impl PrivateBroker {
    /// Starts Tansu (`MDB_TANSU_BIN`, default where `local/stack.sh` installs it) on a free
    /// port and waits until it answers.
    pub async fn start() -> Self {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let bin = endpoint(
            "MDB_TANSU_BIN",
            &format!("{home}/.cache/mdb/tools/bin/tansu"),
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (local/stack.sh installs it): {e}"));
        let broker = Self { child, port };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the private broker did not listen"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        broker
    }

    /// Its bootstrap address.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates a topic of `partitions` partitions; returns its name.
    pub async fn create_topic(&self, partitions: i32) -> String {
        crate::kafka::create_topic_at(&self.bootstrap(), partitions).await
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing answers, as in a
    /// network partition. Its data is kept.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen broker run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
