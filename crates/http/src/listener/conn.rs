//! One client connection's clock: whether a request is in flight, when the current request
//! head started, when the connection went idle, and the I/O wrapper that enforces
//! `header_read_timeout` and `idle_timeout` on it.
//!
//! hyper reads from the connection whenever it waits for a request head (including between
//! keep-alive requests), so the checks live in [`TimedIo::poll_read`]: with no request in
//! flight, a read that would block past the deadline ends the connection instead. Writes that
//! make no progress for `idle_timeout` (a client that stopped reading a response) end it too.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::ListenerConfig;

/// The answer to a request head that did not arrive in time.
const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\
Cache-Control: no-store\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 48\r\n\r\n\
the request head did not arrive in time; retry\n";

/// How much earlier than a blocked read's deadline its timer may stay armed. The idle
/// deadline moves with every keep-alive request; re-arming the timer for each would cost a
/// timer update per request, so the timer stays where it is unless the deadline moved
/// further than this. A timer that fires early only wakes the reader, which re-arms it for
/// the real deadline: the deadline itself is always checked exactly.
const READ_TIMER_SLACK: Duration = Duration::from_secs(1);

/// Why the connection was ended by its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No complete request head within `header_read_timeout` (answered 408).
    HeaderTimeout,
    /// Nothing to do, or no progress, for `idle_timeout`.
    Idle,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// When the first byte of a request head arrived with no request in flight.
    head_started: Option<Instant>,
    /// When the last request in flight finished (or the connection opened).
    idle_since: Instant,
    closed_by: Option<Closed>,
    /// The reader that found a request in flight and set no deadline: woken when the last
    /// request ends, so the idle deadline starts even if the client sends nothing more.
    parked_reader: Option<Waker>,
}

/// What one connection is doing. Shared by its I/O and its service.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                in_flight: 0,
                head_started: None,
                idle_since: Instant::now(),
                closed_by: None,
                parked_reader: None,
            }),
        }
    }
}

/// A request in flight; dropping it (response written or abandoned) ends it.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            if let Some(reader) = state.parked_reader.take() {
                reader.wake();
            }
        }
    }
}

impl Activity {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request head was parsed: the request is in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        let mut state = self.lock();
        state.in_flight += 1;
        state.head_started = None;
        InFlight(self.clone())
    }

    fn received(&self, at: Instant) {
        let mut state = self.lock();
        if state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(at);
        }
    }

    /// The deadline a blocked read must not pass, and what passing it means; `None` while a
    /// request is in flight (the reader is then woken when the last one ends).
    fn read_deadline(&self, limits: &ListenerConfig, reader: &Waker) -> Option<(Instant, Closed)> {
        let mut state = self.lock();
        if state.in_flight > 0 {
            state.parked_reader = Some(reader.clone());
            return None;
        }
        Some(match state.head_started {
            Some(started) => (started + limits.header_read_timeout, Closed::HeaderTimeout),
            None => (state.idle_since + limits.idle_timeout, Closed::Idle),
        })
    }

    fn close(&self, why: Closed) {
        self.lock().closed_by.get_or_insert(why);
    }

    /// Why the clock ended the connection, if it did.
    pub fn closed_by(&self) -> Option<Closed> {
        self.lock().closed_by
    }
}

/// A client stream that enforces the connection's deadlines: the TCP stream, or the TLS
/// stream over it (then the deadlines see the decrypted bytes, i.e. the HTTP request heads).
pub struct TimedIo<S> {
    inner: S,
    activity: Arc<Activity>,
    limits: Arc<ListenerConfig>,
    read_timer: Pin<Box<Sleep>>,
    /// When `read_timer` fires, and the waker it wakes; `None` until it is first armed.
    read_armed: Option<(Instant, Waker)>,
    write_timer: Pin<Box<Sleep>>,
    /// When a write last could not proceed, while it still cannot.
    write_blocked_since: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> TimedIo<S> {
    pub fn new(inner: S, activity: Arc<Activity>, limits: Arc<ListenerConfig>) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            inner,
            activity,
            limits,
            read_timer: Box::pin(tokio::time::sleep_until(now)),
            read_armed: None,
            write_timer: Box::pin(tokio::time::sleep_until(now)),
            write_blocked_since: None,
        }
    }

    /// Makes sure the read timer wakes this reader by `deadline` (in the future), moving it
    /// only when it would fire later than `deadline`, has fired, or would fire more than
    /// [`READ_TIMER_SLACK`] early.
    fn arm_read_timer(&mut self, deadline: Instant, now: Instant, cx: &mut Context<'_>) {
        if let Some((armed, waker)) = &self.read_armed {
            let keep = *armed <= deadline && *armed > now && deadline - *armed <= READ_TIMER_SLACK;
            if keep && waker.will_wake(cx.waker()) {
                return;
            }
        }
        self.read_armed = Some((deadline, cx.waker().clone()));
        self.read_timer.as_mut().reset(deadline.into());
        if self.read_timer.as_mut().poll(cx).is_ready() {
            // Passed meanwhile: be polled again to check the deadline.
            cx.waker().wake_by_ref();
        }
    }

    /// A write could not proceed: fail it once it has been blocked for `idle_timeout`.
    fn blocked_write<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let now = Instant::now();
        let since = *self.write_blocked_since.get_or_insert(now);
        let deadline = since + self.limits.idle_timeout;
        if now >= deadline {
            self.activity.close(Closed::Idle);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for idle_timeout",
            )));
        }
        self.write_timer.as_mut().reset(deadline.into());
        if self.write_timer.as_mut().poll(cx).is_ready() {
            // Passed meanwhile: be polled again to fail the write.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.received(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((deadline, why)) = this.activity.read_deadline(&this.limits, cx.waker())
                else {
                    return Poll::Pending;
                };
                let now = Instant::now();
                if now < deadline {
                    this.arm_read_timer(deadline, now, cx);
                    return Poll::Pending;
                }
                this.activity.close(why);
                if why == Closed::HeaderTimeout {
                    // Best effort: the socket buffer takes these few bytes at once, or never.
                    let _ = Pin::new(&mut this.inner).poll_write(cx, REQUEST_TIMEOUT);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request head not received within header_read_timeout",
                    )));
                }
                // Idle: end of stream, which hyper treats as the client closing.
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Pending => this.blocked_write(cx),
            ready => {
                this.write_blocked_since = None;
                ready
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.blocked_write(cx),
            ready => {
                this.write_blocked_since = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.blocked_write(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
