//! HTTP benchmark target: one process, a tokio multi-thread runtime with 2
//! workers, a hyper 0.14 HTTP/1.1 server on 127.0.0.1 (port chosen by the
//! kernel) and a hyper client that sends `--requests N` GET requests
//! (default 10000) over `--connections C` keep-alive connections (default 4),
//! one request at a time per connection: connection `c` sends `/req/<i>` for
//! every `i` with `i % C == c`. The server answers `ok <i>`; the client
//! checks every status and body. Then the client closes its connections, the
//! server shuts down gracefully, and the program prints one fixed line.
//!
//! Why the one count in the ground truth is exact: the request handler
//! `handle` never awaits, so hyper polls its future once per request: N polls,
//! all Ready. The handler's future is boxed and polled through its vtable, so
//! release builds keep `http_load::handle::{{closure}}` out of line. Everything
//! else (socket readiness, which worker polls what) depends on timing and is
//! left out.

use hyper::body::Body;
use hyper::client::conn::SendRequest;
use hyper::service::{make_service_fn, service_fn};
use hyper::{Request, Response, Server, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

const PROGRAM: &str = "http_load";
const HANDLE_POLL: &str = "http_load::handle::{{closure}}";

type Handled = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Answers `GET /req/<i>` with `ok <i>`, anything else with 404.
#[inline(never)]
async fn handle(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let response = match req.uri().path().strip_prefix("/req/") {
        Some(id) => Response::new(Body::from(format!("ok {id}"))),
        None => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    };
    Ok(response)
}

/// One keep-alive connection: requests `first, first + step, ...` below `total`,
/// each checked; returns how many were sent.
async fn drive(addr: SocketAddr, first: u64, step: u64, total: u64) -> Result<u64, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::handshake(stream)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let connection = tokio::spawn(connection);
    let mut sent = 0;
    for i in (first..total).step_by(step as usize) {
        fetch(&mut sender, i).await?;
        sent += 1;
    }
    drop(sender); // the connection closes once idle
    connection
        .await
        .map_err(|e| format!("connection task: {e}"))?
        .map_err(|e| format!("connection: {e}"))?;
    Ok(sent)
}

/// Sends `GET /req/<i>` and checks the answer.
async fn fetch(sender: &mut SendRequest<Body>, i: u64) -> Result<(), String> {
    std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .map_err(|e| format!("request {i}: connection not ready: {e}"))?;
    let req = Request::get(format!("/req/{i}"))
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Body::empty())
        .map_err(|e| format!("request {i}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request {i}: {e}"))?;
    if resp.status() != StatusCode::OK {
        return Err(format!("request {i}: status {}", resp.status()));
    }
    let body = hyper::body::to_bytes(resp.into_body())
        .await
        .map_err(|e| format!("request {i}: body: {e}"))?;
    if body != format!("ok {i}").as_bytes() {
        return Err(format!("request {i}: body {body:?}, want 'ok {i}'"));
    }
    Ok(())
}

/// Serves on 127.0.0.1 until the clients are done; returns the requests answered.
async fn run(requests: u64, connections: u64) -> Result<u64, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("listener: {e}"))?;
    let make_service = make_service_fn(|_conn| async {
        Ok::<_, Infallible>(service_fn(|req| Box::pin(handle(req)) as Handled))
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::from_tcp(listener)
        .map_err(|e| format!("server: {e}"))?
        .serve(make_service)
        .with_graceful_shutdown(async {
            stopped.await.ok();
        });
    let server = tokio::spawn(server);
    let clients: Vec<_> = (0..connections)
        .map(|c| tokio::spawn(drive(addr, c, connections, requests)))
        .collect();
    let mut answered = 0;
    let mut failure = None;
    for client in clients {
        match client.await {
            Ok(Ok(n)) => answered += n,
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(format!("client task: {e}"))),
        }
    }
    stop.send(()).ok();
    let served = server.await.map_err(|e| format!("server task: {e}"));
    if let Some(e) = failure {
        return Err(e);
    }
    served?.map_err(|e| format!("server: {e}"))?;
    Ok(answered)
}

struct Args {
    requests: u64,
    connections: u64,
    ground_truth: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("{PROGRAM}: {msg}");
    eprintln!("usage: {PROGRAM} [--requests N] [--connections C] [--ground-truth]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        requests: 10000,
        connections: 4,
        ground_truth: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let slot = match flag.as_str() {
            "--ground-truth" => {
                args.ground_truth = true;
                continue;
            }
            "--requests" => &mut args.requests,
            "--connections" => &mut args.connections,
            _ => usage(&format!("unknown argument '{flag}'")),
        };
        *slot = match it.next().map(|v| v.parse::<u64>()) {
            Some(Ok(v)) => v,
            _ => usage(&format!("{flag} needs a non-negative integer")),
        };
    }
    if args.connections == 0 {
        usage("--connections must be at least 1");
    }
    args
}

fn summary(args: &Args) -> String {
    format!(
        "{PROGRAM}: {} requests over {} connections, all answers ok\n",
        args.requests, args.connections
    )
}

/// The same JSON shape as the other targets' `--ground-truth` (no string
/// here needs escaping but the stdout's newline).
fn ground_truth(args: &Args) -> String {
    let n = args.requests;
    format!(
        "{{\"program\":\"{PROGRAM}\",\"requests\":{n},\"connections\":{},\"functions\":{{\"{HANDLE_POLL}\":\
         {{\"polls\":{n},\"ready\":{n},\"pending\":0,\"unwound\":0}}}},\"exit_status\":0,\"stdout\":\"{}\\n\"}}",
        args.connections,
        summary(args).trim_end()
    )
}

fn main() {
    let args = parse_args();
    if args.ground_truth {
        println!("{}", ground_truth(&args));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args.requests, args.connections)) {
        Ok(n) if n == args.requests => print!("{}", summary(&args)),
        Ok(n) => {
            eprintln!("{PROGRAM}: {n} requests answered, want {}", args.requests);
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{PROGRAM}: {e}");
            std::process::exit(1);
        }
    }
}
