//! Redis for tests: the shared server with a per-test key prefix, or a private server the
//! test may stop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{endpoint, unique_name};

/// The shared Redis of the stack.
pub fn url() -> String {
    endpoint("MDB_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("{}:", unique_name("mdb_t"))
}

/// A Redis server of this test's own, on a free port, so the test can stop it.
pub struct PrivateRedis {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl PrivateRedis {
    /// Starts `redis-server` (the binary the stack's Redis came with) on a free port.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts `redis-server` on `port` and waits until it accepts connections.
    pub async fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (local/test.sh installs it)");
        let server = Self { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start on port {port}");
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it and waits until it is gone.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
