//! Unit tests for [`super::TimedIo`]'s read deadlines: the timer is not moved for every
//! keep-alive request, and the idle and header deadlines still hold exactly.

use std::future::poll_fn;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

/// Room for a loaded machine's scheduling around a deadline.
const LATE: Duration = Duration::from_millis(400);

fn timed(idle: Duration, header: Duration) -> (TimedIo<DuplexStream>, DuplexStream, Arc<Activity>) {
    let (server, client) = tokio::io::duplex(4096);
    let activity = Arc::new(Activity::default());
    let limits = Arc::new(ListenerConfig {
        idle_timeout: idle,
        header_read_timeout: header,
        ..ListenerConfig::default()
    });
    (
        TimedIo::new(server, activity.clone(), limits),
        client,
        activity,
    )
}

/// Polls one read without waiting; `true` when it is pending.
async fn read_pends(io: &mut TimedIo<DuplexStream>) -> bool {
    let mut space = [0u8; 64];
    let mut buf = ReadBuf::new(&mut space);
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *io).poll_read(cx, &mut buf).is_pending())).await
}

/// One keep-alive request as hyper drives it: the head arrives and is read, the request is
/// answered, and hyper reads again (which blocks until the next request).
async fn one_request(
    io: &mut TimedIo<DuplexStream>,
    client: &mut DuplexStream,
    activity: &Arc<Activity>,
) {
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut head = [0u8; 64];
    let n = io.read(&mut head).await.unwrap();
    assert!(n > 0);
    drop(activity.begin());
    assert!(read_pends(io).await);
}

fn armed(io: &TimedIo<DuplexStream>) -> Instant {
    io.read_armed.as_ref().expect("the read timer is armed").0
}

#[tokio::test]
async fn keep_alive_requests_leave_the_read_timer_where_it_is() {
    let (mut io, mut client, activity) = timed(Duration::from_secs(60), Duration::from_secs(10));
    assert!(read_pends(&mut io).await);
    let first = armed(&io);
    for _ in 0..200 {
        one_request(&mut io, &mut client, &activity).await;
    }
    // Each request moved the idle deadline a little; the timer stayed at the first one.
    assert_eq!(armed(&io), first);
    // Once the deadline has moved by more than the slack, the timer follows it.
    tokio::time::sleep(READ_TIMER_SLACK + Duration::from_millis(50)).await;
    one_request(&mut io, &mut client, &activity).await;
    assert!(armed(&io) > first + READ_TIMER_SLACK);
}

#[tokio::test]
async fn an_idle_connection_closes_at_its_deadline_not_at_an_early_timer() {
    let idle = Duration::from_millis(300);
    let (mut io, mut client, activity) = timed(idle, Duration::from_secs(10));
    assert!(read_pends(&mut io).await);
    let first = armed(&io);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Before the request ends, so no later than the idle deadline's start.
    let idle_from = Instant::now();
    one_request(&mut io, &mut client, &activity).await;
    // The timer is left at the earlier deadline: it fires ~150 ms before the real one.
    assert_eq!(armed(&io), first);
    let mut rest = [0u8; 8];
    let n = tokio::time::timeout(idle + LATE, io.read(&mut rest))
        .await
        .expect("the idle connection was not closed")
        .unwrap();
    let waited = idle_from.elapsed();
    assert_eq!(n, 0, "an idle connection reads as closed");
    assert_eq!(activity.closed_by(), Some(Closed::Idle));
    assert!(
        waited >= idle,
        "closed after {waited:?}, before idle_timeout"
    );
    assert!(waited < idle + LATE, "closed only after {waited:?}");
}

#[tokio::test]
async fn a_partial_head_moves_the_timer_earlier_and_gets_408() {
    let header = Duration::from_millis(300);
    let (mut io, mut client, _activity) = timed(Duration::from_secs(60), header);
    assert!(read_pends(&mut io).await);
    let idle_deadline = armed(&io);
    client.write_all(b"GET / HT").await.unwrap();
    let started = Instant::now();
    let mut head = [0u8; 64];
    assert!(io.read(&mut head).await.unwrap() > 0);
    let error = tokio::time::timeout(header + LATE, io.read(&mut head))
        .await
        .expect("no 408 for the partial head")
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(
        armed(&io) < idle_deadline,
        "the timer was not moved earlier"
    );
    assert!(
        waited >= header,
        "408 after {waited:?}, before header_read_timeout"
    );
    assert!(waited < header + LATE, "408 only after {waited:?}");
    let mut answer = vec![0u8; REQUEST_TIMEOUT.len()];
    client.read_exact(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 408"));
}
