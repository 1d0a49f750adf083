//! A small HTTP/1.1 server on 127.0.0.1, started by a test, serving fixed files with `Range`
//! support and injecting faults on request: dropped connections, error statuses, stalls.
//! It records what it was asked and what it sent, so tests can assert on the traffic.
//! With [`Server::start_tls`] it speaks HTTPS (rustls) with a certificate the test made.
//! Written on std's TcpListener so that tests control every byte it sends.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server does wrong for one path; faults combine.
#[derive(Debug, Clone, Default)]
pub struct Fault {
    /// For the first `drop_times` requests: send the headers and this many body bytes, then
    /// close the connection.
    pub drop_after: Option<usize>,
    pub drop_times: usize,
    /// For the first `status_times` requests: answer with this status and no body.
    pub status: Option<u16>,
    pub status_times: usize,
    /// Send the headers, then wait this long before the body.
    pub stall: Option<Duration>,
    /// Answer range requests with the whole file (200), as servers without range support do.
    pub ignore_range: bool,
    /// Send the body this many bytes at a time with this pause between, as a server that
    /// trickles would.
    pub trickle: Option<(usize, Duration)>,
}

impl Fault {
    pub fn drop_after(after: usize, times: usize) -> Fault {
        Fault { drop_after: Some(after), drop_times: times, ..Fault::default() }
    }
    pub fn status(code: u16, times: usize) -> Fault {
        Fault { status: Some(code), status_times: times, ..Fault::default() }
    }
    pub fn stall(d: Duration) -> Fault {
        Fault { stall: Some(d), ..Fault::default() }
    }
    pub fn trickle(bytes: usize, every: Duration) -> Fault {
        Fault { trickle: Some((bytes, every)), ..Fault::default() }
    }
}

/// What the server saw for one path.
#[derive(Debug, Clone, Default)]
pub struct PathStats {
    pub requests: usize,
    /// The `Range: bytes=N-` offsets asked for, in order.
    pub ranges: Vec<u64>,
    /// Body bytes sent, over all requests.
    pub bytes_sent: usize,
    /// The User-Agent header of each request.
    pub user_agents: Vec<String>,
    /// Requests answered 304 Not Modified (the client's copy was current).
    pub not_modified: usize,
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, Vec<u8>>,
    faults: BTreeMap<String, Fault>,
    /// A pause before every body, so that parallel downloads overlap in time.
    delay: Duration,
    requests: Mutex<Vec<String>>,
    stats: Mutex<BTreeMap<String, PathStats>>,
    open: AtomicUsize,
    max_open: AtomicUsize,
}

pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `files` at `/<name>`; anything else is 404.
    pub fn start(files: BTreeMap<String, Vec<u8>>) -> Server {
        Server::with_faults(files, BTreeMap::new(), Duration::ZERO)
    }

    /// Serves `files` over HTTPS with this certificate chain and key.
    pub fn start_tls(files: BTreeMap<String, Vec<u8>>, tls: Arc<rustls::ServerConfig>) -> Server {
        Server::listen(files, BTreeMap::new(), Duration::ZERO, Some(tls))
    }

    /// Serves `files` with `faults` for some paths, pausing `delay` before every body.
    pub fn with_faults(files: BTreeMap<String, Vec<u8>>, faults: BTreeMap<String, Fault>, delay: Duration) -> Server {
        Server::listen(files, faults, delay, None)
    }

    fn listen(
        files: BTreeMap<String, Vec<u8>>,
        faults: BTreeMap<String, Fault>,
        delay: Duration,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State { files, faults, delay, ..State::default() });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop, tls) = (state.clone(), stop.clone(), tls.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (state, tls) = (state.clone(), tls.clone());
                    std::thread::spawn(move || {
                        let now = state.open.fetch_add(1, Ordering::SeqCst) + 1;
                        state.max_open.fetch_max(now, Ordering::SeqCst);
                        match tls {
                            None => {
                                let mut stream = stream;
                                serve(&mut stream, &state);
                                let _ = stream.shutdown(Shutdown::Both);
                            }
                            Some(config) => {
                                if let Ok(conn) = rustls::ServerConnection::new(config) {
                                    let mut tls = rustls::StreamOwned::new(conn, stream);
                                    serve(&mut tls, &state);
                                    tls.conn.send_close_notify();
                                    let _ = tls.flush();
                                }
                            }
                        }
                        state.open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            })
        };
        Server { addr, scheme: if tls.is_some() { "https" } else { "http" }, state, stop, thread: Some(thread) }
    }

    /// The URL of `path` on this server (`path` without a leading slash).
    pub fn url(&self, path: &str) -> String {
        let host =
            if self.scheme == "https" { format!("localhost:{}", self.addr.port()) } else { self.addr.to_string() };
        format!("{}://{host}/{path}", self.scheme)
    }

    /// Every request path, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn stats(&self, path: &str) -> PathStats {
        self.state.stats.lock().unwrap().get(path).cloned().unwrap_or_default()
    }

    /// The most connections that were open at once.
    pub fn max_open_connections(&self) -> usize {
        self.state.max_open.load(Ordering::SeqCst)
    }
}

fn read_head(stream: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn serve(stream: &mut (impl Read + Write), state: &State) {
    let Some(head) = read_head(stream) else { return };
    // Origin-form ("/path") or, through a proxy, absolute-form ("http://host/path").
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.split_once('/').map_or("", |(_, p)| p),
        None => target.trim_start_matches('/'),
    }
    .to_string();
    let range: Option<u64> = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("range: bytes=").map(str::to_string))
        .and_then(|r| r.trim().trim_end_matches('-').parse().ok());
    let user_agent = head
        .lines()
        .find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("user-agent")).map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    state.requests.lock().unwrap().push(path.clone());
    let nth = {
        let mut stats = state.stats.lock().unwrap();
        let s = stats.entry(path.clone()).or_default();
        s.requests += 1;
        s.user_agents.push(user_agent);
        if let Some(r) = range {
            s.ranges.push(r);
        }
        s.requests
    };
    let Some(file) = state.files.get(&path) else {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    // An entity tag from the content, so that a client revalidating a copy (If-None-Match)
    // or resuming one (If-Range) is answered as a real server would.
    let etag = format!("\"{}\"", &crate::support::sha256_hex(file)[..16]);
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
        })
    };
    if header("if-none-match").is_some_and(|v| v == etag) {
        state.stats.lock().unwrap().get_mut(&path).unwrap().not_modified += 1;
        let _ = write!(stream, "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n");
        return;
    }
    let range = if header("if-range").is_some_and(|v| v != etag) { None } else { range };
    let fault = state.faults.get(&path).cloned().unwrap_or_default();
    if let Some(code) = fault.status
        && nth <= fault.status_times
    {
        let _ = write!(stream, "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let from = if fault.ignore_range { 0 } else { range.unwrap_or(0) as usize };
    if from > file.len() {
        let _ = write!(
            stream,
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nConnection: close\r\n\r\n",
            file.len()
        );
        return;
    }
    let body = &file[from..];
    let head = if from > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
            body.len(),
            file.len() - 1,
            file.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
            body.len()
        )
    };
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    std::thread::sleep(state.delay);
    if let Some(d) = fault.stall {
        std::thread::sleep(d);
    }
    let send = match fault.drop_after {
        Some(after) if nth <= fault.drop_times => after.min(body.len()),
        _ => body.len(),
    };
    if let Some((bytes, every)) = fault.trickle {
        let mut total = 0;
        while total < send {
            let end = (total + bytes).min(send);
            if stream.write_all(&body[total..end]).is_err() {
                break;
            }
            total = end;
            std::thread::sleep(every);
        }
        state.stats.lock().unwrap().get_mut(&path).unwrap().bytes_sent += total;
        return;
    }
    let sent = stream.write(&body[..send]).unwrap_or(0);
    let mut total = sent;
    while total < send {
        match stream.write(&body[total..send]) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    state.stats.lock().unwrap().get_mut(&path).unwrap().bytes_sent += total;
    let _ = stream.flush();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
