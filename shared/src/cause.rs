//! [`Cause`]: what a library or a server said, kept as the source of a port's error.
//!
//! Port errors are cloned (one provider call or one failed write may answer many waiting
//! requests), so the cause is shared rather than boxed. Its text is part of the port error's
//! message, and the error itself stays reachable through `source()` for anyone who needs to
//! tell a refused statement from a lost connection.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The cause of a port error: a library's error, or a message of ours when there is none.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error` as the cause.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// A cause that is only a message (a condition we detected ourselves).
    pub fn msg(message: impl Into<String>) -> Self {
        Self(Arc::new(Message(message.into())))
    }

    /// The error itself, to downcast to the library's type.
    pub fn get(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    /// Causes compare by their text: two failures that read the same are the same to a caller.
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_error_stays_reachable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let cause = Cause::new(io);
        assert_eq!(cause.to_string(), "reset by peer");
        assert!(cause.get().downcast_ref::<std::io::Error>().is_some());
        assert_eq!(Cause::msg("x"), Cause::msg("x"));
    }
}
