//! Timeouts that stop a silent server without cutting a big document.
//!
//! Every request through the store's HTTP client must get its answer's
//! head within `timeout` plus one second per MiB of the body it sends (an
//! upload is allowed at least 1 MiB/s), and each piece of an answer's body
//! within `timeout` of asking for it. A 256 MiB `get` on a slow link thus
//! goes on as long as bytes keep coming, and a server that accepts the
//! connection and never answers ends the request after `timeout`.
//! `timeout` is `ETAGSTORE_TIMEOUT` seconds, 30 by default.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use object_store::client::{
    HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
};
use tokio::time::{Instant, Sleep};

use crate::error::{escape_controls, Error};

/// Without `ETAGSTORE_TIMEOUT`.
pub const DEFAULT: Duration = Duration::from_secs(30);
/// The slowest upload allowed, in bytes per second.
const MIN_UPLOAD_RATE: u64 = 1024 * 1024;

/// `ETAGSTORE_TIMEOUT` as a duration: seconds above 0, at most a day.
pub fn from_env() -> Result<Duration, Error> {
    let Ok(value) = std::env::var("ETAGSTORE_TIMEOUT") else {
        return Ok(DEFAULT);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| *seconds > 0.0 && *seconds <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::Usage(format!(
                "invalid ETAGSTORE_TIMEOUT {:?}: a number of seconds above 0 (default 30)",
                escape_controls(&value)
            ))
        })
}

/// The store's HTTP client with the timeouts above.
#[derive(Debug)]
pub struct Timed {
    pub inner: HttpClient,
    pub timeout: Duration,
}

impl HttpService for Timed {
    fn call<'life0, 'async_trait>(
        &'life0 self,
        request: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let upload = request.body().content_length() as u64;
            let allowed = self.timeout + Duration::from_secs(upload / MIN_UPLOAD_RATE);
            let response = tokio::time::timeout(allowed, self.inner.execute(request))
                .await
                .map_err(|_| timed_out(allowed))??;
            let (parts, body) = response.into_parts();
            let body = HttpResponseBody::new(IdleBody {
                inner: body,
                timeout: self.timeout,
                sleep: Box::pin(tokio::time::sleep(self.timeout)),
                waiting: false,
            });
            Ok(HttpResponse::from_parts(parts, body))
        })
    }
}

fn timed_out(after: Duration) -> HttpError {
    HttpError::new(
        HttpErrorKind::Timeout,
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer within {} s (set ETAGSTORE_TIMEOUT to wait longer)",
                after.as_secs_f64()
            ),
        ),
    )
}

/// An answer's body that fails when the next piece takes longer than
/// `timeout` from when it was asked for (time the reader spends elsewhere
/// does not count).
struct IdleBody {
    inner: HttpResponseBody,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    waiting: bool,
}

impl Body for IdleBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if !this.waiting {
            this.sleep.as_mut().reset(Instant::now() + this.timeout);
            this.waiting = true;
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame);
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(timed_out(this.timeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
