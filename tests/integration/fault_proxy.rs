//! A fault proxy on 127.0.0.1 in front of Azurite: one request per
//! connection (it asks both sides for `Connection: close`), forwarded
//! whole, and the chosen requests broken in one of the ways a network
//! breaks them. Point etagstore at it with `AZURITE_BLOB_STORAGE_URL`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// What happens to a request the proxy breaks.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward it, read the whole answer, then close without sending it:
    /// the write landed, its answer is lost.
    Drop,
    /// Forward it, read the whole answer, then reset the connection (RST).
    Reset,
    /// Read it whole, then close without forwarding: nothing landed, but
    /// the client cannot tell this from `Drop`.
    Close,
    /// Forward it and hold the answer this long before sending it.
    Delay(Duration),
    /// Answer with these bytes instead of forwarding.
    Answer(Vec<u8>),
    /// Forward it, taking in the request and giving out the answer at
    /// this many bytes per second: slow, but never silent.
    Slow(u64),
    /// Read it whole and close without an answer, then forward it just
    /// before the next write: a write that lands late, after the client
    /// has looked and seen it had not.
    Late,
}

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug)]
pub enum Only {
    /// PUT and DELETE.
    Writes,
    /// Every request.
    All,
}

pub struct Proxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    broken: Arc<AtomicUsize>,
}

struct Rule {
    fault: Fault,
    only: Only,
    /// How many more requests to break.
    left: AtomicUsize,
    /// A `Late` request not yet forwarded.
    held: std::sync::Mutex<Option<(String, Vec<u8>)>>,
}

impl Proxy {
    /// A proxy in front of Azurite on 127.0.0.1:`upstream` that breaks the
    /// first `count` requests `only` selects with `fault`, and forwards
    /// everything else.
    pub fn start(upstream: u16, fault: Fault, only: Only, count: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let broken = Arc::new(AtomicUsize::new(0));
        let rule = Arc::new(Rule {
            fault,
            only,
            left: AtomicUsize::new(count),
            held: std::sync::Mutex::new(None),
        });
        let (stop2, broken2) = (Arc::clone(&stop), Arc::clone(&broken));
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (rule, broken) = (Arc::clone(&rule), Arc::clone(&broken2));
                thread::spawn(move || {
                    let _ = serve(client, upstream, &rule, &broken);
                });
            }
        });
        Proxy { port, stop, broken }
    }

    /// The URL to give etagstore as `AZURITE_BLOB_STORAGE_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many requests it has broken so far.
    pub fn broken(&self) -> usize {
        self.broken.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    mut client: TcpStream,
    upstream: u16,
    rule: &Rule,
    broken: &AtomicUsize,
) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let rate = match rule.fault {
        Fault::Slow(rate) => Some(rate),
        _ => None,
    };
    let (head, body) = read_request(&mut client, rate)?;
    let method = head.split(' ').next().unwrap_or("");
    let selected = match rule.only {
        Only::Writes => matches!(method, "PUT" | "DELETE"),
        Only::All => true,
    };
    let fault = (selected
        && rule
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok())
    .then(|| rule.fault.clone());
    if fault.is_some() {
        broken.fetch_add(1, Ordering::SeqCst);
    }
    if fault.is_none() && matches!(method, "PUT" | "DELETE") {
        let held = rule.held.lock().unwrap().take();
        if let Some((head, body)) = held {
            // The late write lands first; its answer goes nowhere.
            let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
            server.write_all(connection_close(&head).as_bytes())?;
            server.write_all(&body)?;
            server.read_to_end(&mut Vec::new())?;
        }
    }
    match &fault {
        Some(Fault::Late) => {
            *rule.held.lock().unwrap() = Some((head, body));
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::Close) => return client.shutdown(Shutdown::Both),
        Some(Fault::Answer(bytes)) => {
            client.write_all(bytes)?;
            return client.shutdown(Shutdown::Both);
        }
        _ => {}
    }
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    server.write_all(connection_close(&head).as_bytes())?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let answer = match answer.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => {
            let head = String::from_utf8_lossy(&answer[..end + 4]).into_owned();
            [connection_close(&head).as_bytes(), &answer[end + 4..]].concat()
        }
        None => answer,
    };
    match fault {
        None => client.write_all(&answer)?,
        Some(Fault::Drop) => {}
        Some(Fault::Reset) => {
            // No shutdown: that would send a FIN before the reset.
            reset(&client);
            return Ok(());
        }
        Some(Fault::Delay(delay)) => {
            thread::sleep(delay);
            client.write_all(&answer)?;
        }
        Some(Fault::Slow(rate)) => {
            for piece in answer.chunks(PIECE) {
                client.write_all(piece)?;
                pause(piece.len(), rate);
            }
        }
        Some(Fault::Close | Fault::Answer(_) | Fault::Late) => unreachable!("answered above"),
    }
    client.shutdown(Shutdown::Both)
}

/// How much a `Slow` proxy moves at a time.
const PIECE: usize = 16 * 1024;

/// The pause after moving `bytes` at `rate` bytes per second.
fn pause(bytes: usize, rate: u64) {
    thread::sleep(Duration::from_secs_f64(bytes as f64 / rate as f64));
}

/// Reads one request: its head (up to the blank line) and its body, by
/// `Content-Length` (object_store always sends one); at `rate` bytes per
/// second if given.
pub fn read_request(client: &mut TcpStream, rate: Option<u64>) -> io::Result<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = vec![0u8; if rate.is_some() { PIECE } else { 64 * 1024 }];
    let read = |client: &mut TcpStream, buf: &mut [u8]| {
        let n = client.read(buf)?;
        if let Some(rate) = rate {
            pause(n, rate);
        }
        Ok::<_, io::Error>(n)
    };
    let end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = read(client, &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no request"));
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "the proxy reads bodies by Content-Length only: {head}"
    );
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.trim().parse().unwrap());
    let mut body = data[end..].to_vec();
    while body.len() < length {
        let n = read(client, &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body"));
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok((head, body))
}

/// The head with its `Connection` header replaced by `Connection: close`.
pub fn connection_close(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| {
            !line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("connection")
        })
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

/// Closes with a reset instead of a FIN: SO_LINGER with a zero timeout.
fn reset(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a linger struct of the size given.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
}

/// A port on 127.0.0.1 where nothing listens: connecting is refused.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
