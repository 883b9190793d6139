//! What a failed write tells about the store: nothing was sent, the service
//! answered no, or the request left and its answer is lost (exit 8).
//!
//! - A failure to connect (refused, DNS, connect timeout, TLS handshake)
//!   happens before any byte of the request is sent: nothing was written.
//! - Any other transport failure (a reset, a connection closed before the
//!   answer, a timeout waiting for it) may come after the service has
//!   acted: the outcome is unknown.
//! - An answer of 5xx is unknown too: Azure documents 500 (InternalError,
//!   OperationTimedOut) and 503 (ServerBusy) as "retry", not as "nothing
//!   happened", and a gateway in front of it may answer 502 or 504 after
//!   passing the request on.
//! - Any other answer (4xx) is the service's refusal: nothing was written.

use object_store::client::{HttpError, HttpErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was sent.
    Unsent,
    /// The service answered that it did not do it.
    Refused,
    /// The write may or may not have happened.
    Unknown,
}

/// The outcome of a write that object_store reports as failed.
pub fn of_write(error: &object_store::Error) -> Outcome {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(inner) = cause {
        if let Some(http) = inner.downcast_ref::<HttpError>() {
            return of_transport(http);
        }
        cause = inner.source();
    }
    // No transport error: an answer. object_store keeps its status only
    // in the text ("… non-2xx status code: 503 Service Unavailable: …").
    match status_in(&error.to_string()) {
        Some(status) if status >= 500 => Outcome::Unknown,
        Some(_) => Outcome::Refused,
        // Nothing to go by (object_store's own errors before sending):
        // do not claim that nothing happened.
        None => Outcome::Unknown,
    }
}

/// The outcome of a request that failed in the HTTP client.
pub fn of_transport(error: &HttpError) -> Outcome {
    match error.kind() {
        HttpErrorKind::Connect => Outcome::Unsent,
        // reqwest calls its own connect timeout a timeout, and object_store
        // asks "timeout?" before "connect?": look at reqwest's error itself.
        HttpErrorKind::Timeout if failed_to_connect(error) => Outcome::Unsent,
        _ => Outcome::Unknown,
    }
}

/// True if reqwest, under `error`, says the connection was never made.
fn failed_to_connect(error: &HttpError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(inner) = cause {
        if let Some(reqwest) = inner.downcast_ref::<reqwest::Error>() {
            return reqwest.is_connect();
        }
        cause = inner.source();
    }
    false
}

/// The first HTTP status in object_store's text of an answer.
fn status_in(text: &str) -> Option<u16> {
    let marker = "status code: ";
    let at = text.find(marker)? + marker.len();
    text.get(at..at + 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_from_object_stores_text() {
        assert_eq!(
            status_in("Error performing PUT in 1ms - Server returned non-2xx status code: 503 Service Unavailable: busy"),
            Some(503)
        );
        assert_eq!(status_in("status code: 4"), None);
        assert_eq!(status_in("connection reset"), None);
    }

    #[test]
    fn only_a_failed_connect_means_nothing_was_sent() {
        let io = || std::io::Error::other("x");
        assert_eq!(
            of_transport(&HttpError::new(HttpErrorKind::Connect, io())),
            Outcome::Unsent
        );
        for kind in [
            HttpErrorKind::Request,
            HttpErrorKind::Timeout,
            HttpErrorKind::Interrupted,
            HttpErrorKind::Unknown,
        ] {
            assert_eq!(
                of_transport(&HttpError::new(kind, io())),
                Outcome::Unknown,
                "{kind:?}"
            );
        }
    }
}
