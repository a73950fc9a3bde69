//! The layers around every route, outermost first:
//!
//! 1. [`request_log`]: a request id, a span for everything logged while handling the
//!    request, and one access-log line when it is answered;
//! 2. [`security_headers`] and CORS (when configured);
//! 3. the request timeout and [`problems`]: every error a problem detail;
//! 4. [`access`]: API key (when configured) and rate limit;
//! 5. panics caught, bodies bounded.

pub mod access;
pub mod problems;
pub mod request_log;
pub mod security_headers;

/// Largest request body accepted; the API's bodies are small JSON documents.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
