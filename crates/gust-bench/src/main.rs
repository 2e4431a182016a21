//! `gust-bench`: starts a real `gust serve` (release build) and measures, for a no-op handler
//! in each runtime, warm invoke latency (p50/p99, concurrency 1), throughput at concurrency
//! 1/8/32 and cold start to first response (p50/p99). Every figure is printed beside a floor
//! measured in the same run on the same machine: a bare HTTP request/response on loopback
//! with the same HTTP stack (hyper) for the warm figures, and the start of the bare
//! interpreter for cold starts. Requests are SigV4-signed as real clients sign them.
//!
//! A second server runs beside the first with the sandbox off (`--no-isolation
//! --no-cgroups`), and the sandboxed and unsandboxed warm invoke and cold start of each
//! runtime are measured in alternation, so the sandbox's own cost is a difference taken in
//! the same conditions.
//!
//! Run: `./scripts/bench` (builds the release binaries first).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use gust_api::{sigv4, Credentials};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Debug, Parser)]
struct Args {
    /// The gust binary (a release build).
    #[arg(long, default_value = "target/release/gust")]
    gust: PathBuf,
    /// A native bootstrap for `provided.al2023` (built on the lambda_runtime crate).
    #[arg(long, default_value = "target/release/rust-echo")]
    native_bootstrap: PathBuf,
    /// Warm invokes per latency measurement.
    #[arg(long, default_value_t = 2000)]
    warm: usize,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Cold starts per runtime.
    #[arg(long, default_value_t = 20)]
    cold: usize,
    /// Only the runtimes whose label starts with this (`Python`, `Node.js`, `native`).
    #[arg(long)]
    only: Option<String>,
    /// Extra `gust serve` options for the measured server (e.g. `--no-cpu-quota`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Skip the sandboxed-versus-unsandboxed comparison (and its second server).
    #[arg(long)]
    no_compare: bool,
    /// Concurrent first invokes in the cold-start storm (0: skip it).
    #[arg(long, default_value_t = 200)]
    storm: usize,
    /// Idle environments left behind by the `kill -9` before the restart figure (0: skip).
    #[arg(long, default_value_t = 300)]
    idle: usize,
    /// Only the messaging figures (SQS send, receive-delete, long-poll wake-up; async
    /// accepts and queue-to-start).
    #[arg(long)]
    queues_only: bool,
    /// Only the concurrency figures (admission on a warm invoke; a burst of first invokes
    /// on-demand and on provisioned environments).
    #[arg(long)]
    concurrency_only: bool,
    /// Only the event source mapping figures (queue to function to deletion; send to start).
    #[arg(long)]
    mappings_only: bool,
    /// Only the HTTP front figures (function URL and HTTP API route against a direct
    /// Invoke).
    #[arg(long)]
    http_only: bool,
    /// Only the S3 figures (4 KiB and 16 MiB PutObject/GetObject against the bare HTTP
    /// request and the disk; PutObject to notified function start).
    #[arg(long)]
    s3_only: bool,
    /// Only the per-runtime figures (warm latency, throughput at 1/8/32 clients, cold
    /// starts, sandboxed against unsandboxed).
    #[arg(long)]
    runtimes_only: bool,
    /// Only the primed-environment figures (cold start per runtime with `--prestart` on
    /// and off, a burst of first invokes on both, PSS per idle environment).
    #[arg(long)]
    prestart_only: bool,
    /// Only the observability figures (the warm path against `--baseline-gust`, a
    /// function printing 50 MB).
    #[arg(long)]
    observability_only: bool,
    /// A build without logs and metrics shipping, for the warm-path comparison.
    #[arg(long)]
    baseline_gust: Option<PathBuf>,
}

mod concurrency;
mod events;
mod http;
mod mappings;
mod observability;
mod prestart;
mod queues;
mod s3;

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

#[derive(Clone)]
struct Target {
    http: HttpClient,
    address: SocketAddr,
    credentials: Option<Credentials>,
}

impl Target {
    async fn send(&self, method: &str, path: &str, body: Vec<u8>) -> Result<(u16, Bytes)> {
        self.request(method, path, &[], body, "lambda").await
    }

    /// A request to any of the server's services, signed for `service`.
    async fn request(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
        service: &str,
    ) -> Result<(u16, Bytes)> {
        let authority = self.address.to_string();
        let mut headers = vec![("host".to_owned(), authority.clone())];
        headers.extend(
            extra
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        if let Some(credentials) = &self.credentials {
            let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
            let parts = sigv4::RequestParts {
                method,
                raw_path,
                raw_query,
                headers: &headers,
            };
            let (authorization, date) = sigv4::sign(
                &parts,
                &body,
                credentials,
                "us-east-1",
                service,
                time::OffsetDateTime::now_utc(),
            );
            headers.push(("x-amz-date".into(), date));
            headers.push(("authorization".into(), authorization));
        }
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{authority}{path}"));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = self
            .http
            .request(request.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// Sends a request that must answer `expected`, and gives its body; `what` names it in
    /// the error.
    async fn expect(
        &self,
        what: &str,
        expected: u16,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Bytes> {
        let (status, answer) = self.send(method, path, body).await?;
        if status != expected {
            bail!("{what}: {status} {}", String::from_utf8_lossy(&answer));
        }
        Ok(answer)
    }

    async fn invoke(&self, function: &str) -> Result<()> {
        self.expect(
            &format!("invoke {function}"),
            200,
            "POST",
            &format!("/2015-03-31/functions/{function}/invocations"),
            b"{}".to_vec(),
        )
        .await
        .map(drop)
    }
}

fn client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(128)
        .build_http()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50 and p99 of `n` sequential calls.
async fn latency<F, Fut>(n: usize, mut call: F) -> Result<(Duration, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    for _ in 0..n.min(50) {
        call().await?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        call().await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}

/// Requests per second over `seconds` with `concurrency` callers.
async fn throughput<F, Fut>(concurrency: usize, seconds: f64, call: F) -> Result<f64>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let call = Arc::new(call);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let call = Arc::clone(&call);
        tasks.push(tokio::spawn(async move {
            let mut count = 0u64;
            while Instant::now() < deadline {
                call().await?;
                count += 1;
            }
            Ok::<u64, anyhow::Error>(count)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// The floor for warm figures: a bare hyper server answering `{}` on loopback.
async fn start_floor_server() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        let _ = request.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"{}"),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

/// p50/p99 of starting `program args` and waiting for it (the cold-start floor).
fn process_start(program: &str, args: &[&str], n: usize) -> Result<(Duration, Duration)> {
    let mut samples = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("{program} failed");
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}

fn zip(files: &[(&str, &[u8], u32)]) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, mode) in files {
        writer.start_file(
            *name,
            zip::write::SimpleFileOptions::default().unix_permissions(*mode),
        )?;
        writer.write_all(data)?;
    }
    Ok(writer.finish()?.into_inner())
}

struct Server {
    child: Child,
    _dir: Option<tempfile::TempDir>,
    address: SocketAddr,
    credentials: Credentials,
}

impl Drop for Server {
    /// A graceful stop, so the server removes its environments' cgroups (a killed server
    /// leaves them, frozen, to the next start on the same data directory, which a
    /// temporary one never gets).
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for _ in 0..300 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(gust: &Path, extra: &[&str]) -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    start_server_at(gust, &data, extra, Some(dir))
}

/// A server on `data` (kept by `dir`, when given, until the server is dropped).
fn start_server_at(
    gust: &Path,
    data: &Path,
    extra: &[&str],
    dir: Option<tempfile::TempDir>,
) -> Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let child = Command::new(gust)
        .args(["serve", "--listen", &address.to_string(), "--data-dir"])
        .arg(data)
        .args(extra)
        .env("GUST_ACCESS_KEY_ID", "AKIABENCHMARK0000000")
        .env("GUST_SECRET_ACCESS_KEY", "bench-secret")
        .env("GUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", gust.display()))?;
    for _ in 0..30_000 {
        if std::net::TcpStream::connect(address).is_ok() {
            return Ok(Server {
                child,
                _dir: dir,
                address,
                credentials: Credentials {
                    access_key_id: "AKIABENCHMARK0000000".into(),
                    secret_access_key: "bench-secret".into(),
                },
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    bail!("gust did not start")
}

#[derive(Clone)]
struct Runtime {
    label: &'static str,
    function: &'static str,
    runtime: &'static str,
    handler: &'static str,
    package: Vec<u8>,
    floor: (String, Vec<String>),
}

/// The interpreter behind `python3` (PATH may hold a slow wrapper such as a pyenv shim;
/// Gust starts the real one, so the floor must too).
fn real_python() -> String {
    Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

async fn create(target: &Target, runtime: &Runtime, name: &str) -> Result<()> {
    create_with(target, runtime, name, serde_json::json!({})).await
}

/// [`create`] with `extra` fields of `CreateFunction` (`SnapStart`, ...).
async fn create_with(
    target: &Target,
    runtime: &Runtime,
    name: &str,
    extra: serde_json::Value,
) -> Result<()> {
    let mut body = serde_json::json!({
        "FunctionName": name, "Runtime": runtime.runtime, "Handler": runtime.handler,
        "Role": "arn:aws:iam::000000000000:role/bench", "MemorySize": 1769,
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(&runtime.package)},
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    target
        .expect(
            &format!("create {name}"),
            201,
            "POST",
            "/2015-03-31/functions",
            serde_json::to_vec(&body)?,
        )
        .await
        .map(drop)
}

/// Forces the next invoke to cold-start: a configuration change retires warm environments.
async fn retire(target: &Target, function: &str, n: usize) -> Result<()> {
    let body =
        serde_json::json!({ "Environment": { "Variables": { "BENCH_ROUND": n.to_string() } } });
    target
        .expect(
            &format!("update {function}"),
            200,
            "PUT",
            &format!("/2015-03-31/functions/{function}/configuration"),
            serde_json::to_vec(&body)?,
        )
        .await
        .map(drop)
}

/// The same runtime on the sandboxed server and on the unsandboxed one, measured in
/// alternation (warm latency in blocks, cold starts one by one, each after the previous
/// environment is gone).
async fn sandbox_cost(
    sandboxed: &Target,
    plain: &Target,
    runtime: &Runtime,
    args: &Args,
) -> Result<()> {
    // A function of its own on each server, so both have the same single environment (the
    // figures above leave many warm ones behind on the sandboxed server).
    let name = format!("{}-cmp", runtime.function);
    let name = name.as_str();
    create(plain, runtime, name).await?;
    create(sandboxed, runtime, name).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    plain.invoke(name).await?;
    sandboxed.invoke(name).await?;
    let (mut warm_on, mut warm_off) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        for (target, samples) in [(sandboxed, &mut warm_on), (plain, &mut warm_off)] {
            let t = target.clone();
            let (p50, _) = latency(args.warm / 4, || {
                let t = t.clone();
                async move { t.invoke(name).await }
            })
            .await?;
            samples.push(p50);
        }
    }
    warm_on.sort();
    warm_off.sort();
    let (on, off) = (percentile(&warm_on, 0.5), percentile(&warm_off, 0.5));
    row(
        &format!("{} warm invoke p50, sandboxed vs not", runtime.label),
        format!("{:.3} ms", ms(on)),
        format!("{:.3} ms unsandboxed", ms(off)),
        format!("{:+.3} ms", ms(on) - ms(off)),
    );
    let (mut cold_on, mut cold_off) = (Vec::new(), Vec::new());
    for round in 0..args.cold {
        for (target, samples) in [(sandboxed, &mut cold_on), (plain, &mut cold_off)] {
            retire(target, name, 1000 + round).await?;
            // Let the retired environment finish shutting down (namespace and cgroup
            // teardown), so what is measured is the cold start alone.
            tokio::time::sleep(Duration::from_millis(250)).await;
            let start = Instant::now();
            target.invoke(name).await?;
            samples.push(start.elapsed());
        }
    }
    cold_on.sort();
    cold_off.sort();
    let (on50, on99) = (percentile(&cold_on, 0.5), percentile(&cold_on, 0.99));
    let (off50, off99) = (percentile(&cold_off, 0.5), percentile(&cold_off, 0.99));
    row(
        &format!("{} cold start p50 / p99, sandboxed vs not", runtime.label),
        format!("{:.1} / {:.1} ms", ms(on50), ms(on99)),
        format!("{:.1} / {:.1} ms unsandboxed", ms(off50), ms(off99)),
        format!("{:+.1} ms p50", ms(on50) - ms(off50)),
    );
    Ok(())
}

/// Warm invoke through an alias (published version 1, alias `live`) against the same
/// function unqualified, measured in alternating blocks on one server.
async fn alias_cost(target: &Target, runtime: &Runtime, args: &Args) -> Result<()> {
    let name = format!("{}-alias", runtime.function);
    create(target, runtime, &name).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let functions = format!("/2015-03-31/functions/{name}");
    target
        .expect(
            "publish",
            201,
            "POST",
            &format!("{functions}/versions"),
            b"{}".to_vec(),
        )
        .await?;
    let alias = br#"{"Name":"live","FunctionVersion":"1"}"#.to_vec();
    target
        .expect(
            "create alias",
            201,
            "POST",
            &format!("{functions}/aliases"),
            alias,
        )
        .await?;
    let aliased = format!("{name}:live");
    target.invoke(&name).await?;
    target.invoke(&aliased).await?;
    let (mut via_alias, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        for (function, samples) in [(&aliased, &mut via_alias), (&name, &mut plain)] {
            let t = target.clone();
            let (p50, _) = latency(args.warm / 4, || {
                let t = t.clone();
                let function = function.clone();
                async move { t.invoke(&function).await }
            })
            .await?;
            samples.push(p50);
        }
    }
    via_alias.sort();
    plain.sort();
    let (a, p) = (percentile(&via_alias, 0.5), percentile(&plain, 0.5));
    row(
        &format!("{} warm invoke p50 through an alias", runtime.label),
        format!("{:.3} ms", ms(a)),
        format!("{:.3} ms unqualified", ms(p)),
        format!("{:+.3} ms", ms(a) - ms(p)),
    );
    Ok(())
}

/// Cold start of a function with five layers (each a small Python package on `sys.path`)
/// against the same function with none, one after the other.
async fn layers_cost(target: &Target, runtime: &Runtime, args: &Args) -> Result<()> {
    let mut arns = Vec::new();
    for i in 0..5 {
        let module = format!("python/bench_layer_{i}.py");
        let content = zip(&[(module.as_str(), b"VALUE = 1\n".as_slice(), 0o644)])?;
        let body = serde_json::json!({
            "Content": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(&content)},
        });
        let answer = target
            .expect(
                "publish layer",
                201,
                "POST",
                &format!("/2018-10-31/layers/bench-layer-{i}/versions"),
                serde_json::to_vec(&body)?,
            )
            .await?;
        let published: serde_json::Value = serde_json::from_slice(&answer)?;
        arns.push(published["LayerVersionArn"].clone());
    }
    let bare = format!("{}-no-layers", runtime.function);
    let layered = format!("{}-5-layers", runtime.function);
    create(target, runtime, &bare).await?;
    create(target, runtime, &layered).await?;
    let layers = serde_json::json!({ "Layers": arns });
    target
        .expect(
            "attach layers",
            200,
            "PUT",
            &format!("/2015-03-31/functions/{layered}/configuration"),
            serde_json::to_vec(&layers)?,
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..args.cold {
        for (function, samples) in [(&layered, &mut with), (&bare, &mut without)] {
            retire(target, function, 2000 + round).await?;
            tokio::time::sleep(Duration::from_millis(250)).await;
            let start = Instant::now();
            target.invoke(function).await?;
            samples.push(start.elapsed());
        }
    }
    with.sort();
    without.sort();
    row(
        &format!("{} cold start p50 / p99 with 5 layers", runtime.label),
        format!(
            "{:.1} / {:.1} ms",
            ms(percentile(&with, 0.5)),
            ms(percentile(&with, 0.99))
        ),
        format!(
            "{:.1} / {:.1} ms without layers",
            ms(percentile(&without, 0.5)),
            ms(percentile(&without, 0.99))
        ),
        format!(
            "{:+.1} ms p50",
            ms(percentile(&with, 0.5)) - ms(percentile(&without, 0.5))
        ),
    );
    Ok(())
}

/// `n` invokes of `function` at once; returns the time to the last answer and the failures.
async fn burst(target: &Target, function: &str, n: usize) -> (Duration, usize) {
    let started = Instant::now();
    let calls = (0..n).map(|_| {
        let t = target.clone();
        let name = function.to_owned();
        tokio::spawn(async move { t.invoke(&name).await })
    });
    let mut failed = 0;
    for call in calls.collect::<Vec<_>>() {
        if !matches!(call.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    (started.elapsed(), failed)
}

/// The cold-start storm (`storm` first invokes at once on a new function, against the same
/// burst once its environments exist), and the restart after `kill -9` with `idle` frozen
/// environments left behind (against a restart with nothing left behind).
async fn storm_and_restart(args: &Args, python: &Runtime) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    // Room for every environment (each declares 1,769 MB of the memory budget).
    let budget = ["--memory-budget", "600G"];
    let mut server = start_server_at(&args.gust, &data, &budget, None)?;
    let target = Target {
        http: client(),
        address: server.address,
        credentials: Some(server.credentials.clone()),
    };
    if args.storm > 0 {
        create(&target, python, "storm").await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (cold, cold_failed) = burst(&target, "storm", args.storm).await;
        let (warm, warm_failed) = burst(&target, "storm", args.storm).await;
        row(
            &format!(
                "cold-start storm: {} first invokes at once, time to the last answer (failed)",
                args.storm
            ),
            format!("{:.2} s ({cold_failed} failed)", cold.as_secs_f64()),
            format!(
                "{:.2} s ({warm_failed} failed), the same burst warm",
                warm.as_secs_f64()
            ),
            format!("{:.1}x", cold.as_secs_f64() / warm.as_secs_f64().max(0.001)),
        );
    }
    if args.idle > 0 {
        // One function each, so every invoke needs an environment of its own.
        for i in 0..args.idle {
            create(&target, python, &format!("idle-{i}")).await?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // In bursts small enough that none waits long for its turn to start (429).
        let mut failed = 0;
        for chunk in (0..args.idle).collect::<Vec<_>>().chunks(50) {
            let calls: Vec<_> = chunk
                .iter()
                .map(|i| {
                    let t = target.clone();
                    let name = format!("idle-{i}");
                    tokio::spawn(async move { t.invoke(&name).await })
                })
                .collect();
            for call in calls {
                if !matches!(call.await, Ok(Ok(()))) {
                    failed += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        server.child.kill()?;
        server.child.wait()?;
        let started = Instant::now();
        let again = start_server_at(&args.gust, &data, &budget, None)?;
        let crashed = started.elapsed();
        drop(again);
        let started = Instant::now();
        let clean = start_server_at(&args.gust, &data, &budget, None)?;
        let floor = started.elapsed();
        drop(clean);
        row(
            &format!(
                "restart after kill -9 with {} idle environments, to listening",
                args.idle - failed
            ),
            format!("{:.0} ms", ms(crashed)),
            format!("{:.0} ms, a restart with nothing left behind", ms(floor)),
            format!("{:.1}x", ms(crashed) / ms(floor).max(0.001)),
        );
    }
    Ok(())
}

fn row(figure: &str, value: String, floor: String, ratio: String) {
    println!("| {figure} | {value} | {floor} | {ratio} |");
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let extra: Vec<&str> = args.server_args.iter().map(String::as_str).collect();
    let server = start_server(&args.gust, &extra)?;
    let plain_server = start_server(&args.gust, &["--no-isolation", "--no-cgroups"])?;
    let plain = Target {
        http: client(),
        address: plain_server.address,
        credentials: Some(plain_server.credentials.clone()),
    };
    let target = Target {
        http: client(),
        address: server.address,
        credentials: Some(server.credentials.clone()),
    };
    let floor_target = Target {
        http: client(),
        address: start_floor_server().await?,
        credentials: None,
    };

    let mut runtimes = vec![Runtime {
        label: "Python",
        function: "bench-python",
        runtime: "python3.11",
        handler: "app.handler",
        package: zip(&[(
            "app.py",
            b"def handler(event, context):\n    return None\n",
            0o644,
        )])?,
        floor: (real_python(), vec!["-c".into(), "pass".into()]),
    }];
    if which("node").is_some() {
        runtimes.push(Runtime {
            label: "Node.js",
            function: "bench-node",
            runtime: "nodejs20.x",
            handler: "index.handler",
            package: zip(&[("index.js", b"exports.handler = async () => null;\n", 0o644)])?,
            floor: ("node".into(), vec!["-e".into(), "0".into()]),
        });
    }
    match std::fs::read(&args.native_bootstrap) {
        Ok(binary) => runtimes.push(Runtime {
            label: "native (provided, lambda_runtime)",
            function: "bench-native",
            runtime: "provided.al2023",
            handler: "bootstrap",
            package: zip(&[("bootstrap", &binary, 0o755)])?,
            // The smallest native process start this machine has.
            floor: ("/bin/true".into(), Vec::new()),
        }),
        Err(_) => eprintln!(
            "note: {} not found; skipping the native runtime",
            args.native_bootstrap.display()
        ),
    }

    println!("| figure | Gust | floor (same run) | ratio / overhead |");
    println!("|---|---|---|---|");
    if args.concurrency_only {
        return concurrency::run(&args, &runtimes[0]).await;
    }
    if args.mappings_only {
        return mappings::run(&args, &runtimes[0]).await;
    }
    if args.http_only {
        return http::run(&target, &args).await;
    }
    if args.s3_only {
        return s3::run(&target, &floor_target, &args).await;
    }
    if args.observability_only {
        return observability::run(&args, &runtimes[0]).await;
    }
    if args.prestart_only {
        runtimes.retain(|r| {
            args.only
                .as_ref()
                .is_none_or(|only| r.label.starts_with(only.as_str()))
        });
        return prestart::run(&args, &runtimes).await;
    }
    if !args.runtimes_only {
        queues::run(&target, &floor_target, &args).await?;
        events::run(&target, &floor_target, &args).await?;
        if args.queues_only {
            return Ok(());
        }
        storm_and_restart(&args, &runtimes[0]).await?;
        concurrency::run(&args, &runtimes[0]).await?;
        mappings::run(&args, &runtimes[0]).await?;
        http::run(&target, &args).await?;
        s3::run(&target, &floor_target, &args).await?;
    }
    let bare = floor_target.clone();
    let (floor_p50, floor_p99) = latency(args.warm, || {
        let t = bare.clone();
        async move { t.send("POST", "/", b"{}".to_vec()).await.map(|_| ()) }
    })
    .await?;
    row(
        "bare HTTP request/response (hyper, loopback) p50 / p99",
        format!("{:.3} / {:.3} ms", ms(floor_p50), ms(floor_p99)),
        "—".into(),
        "—".into(),
    );
    let mut floor_rps = Vec::new();
    for concurrency in [1usize, 8, 32] {
        let t = floor_target.clone();
        let rps = throughput(concurrency, args.seconds, move || {
            let t = t.clone();
            async move { t.send("POST", "/", b"{}".to_vec()).await.map(|_| ()) }
        })
        .await?;
        floor_rps.push(rps);
    }

    runtimes.retain(|r| {
        args.only
            .as_ref()
            .is_none_or(|only| r.label.starts_with(only.as_str()))
    });
    for runtime in &runtimes {
        create(&target, runtime, runtime.function).await?;
        // Give the create's transition a moment and warm one environment.
        tokio::time::sleep(Duration::from_millis(100)).await;
        target.invoke(runtime.function).await?;
        let t = target.clone();
        let name = runtime.function;
        let (p50, p99) = latency(args.warm, || {
            let t = t.clone();
            async move { t.invoke(name).await }
        })
        .await?;
        row(
            &format!("{} warm invoke p50 / p99 (c=1)", runtime.label),
            format!("{:.3} / {:.3} ms", ms(p50), ms(p99)),
            format!("{:.3} / {:.3} ms", ms(floor_p50), ms(floor_p99)),
            format!("+{:.3} ms p50 over the floor", ms(p50) - ms(floor_p50)),
        );
        for (i, concurrency) in [1usize, 8, 32].into_iter().enumerate() {
            let t = target.clone();
            let rps = throughput(concurrency, args.seconds, move || {
                let t = t.clone();
                async move { t.invoke(name).await }
            })
            .await?;
            row(
                &format!("{} throughput c={concurrency}", runtime.label),
                format!("{rps:.0} invokes/s"),
                format!("{:.0} req/s", floor_rps[i]),
                format!("{:.1}% of the floor", 100.0 * rps / floor_rps[i]),
            );
        }
        let mut colds = Vec::new();
        for round in 0..args.cold {
            retire(&target, name, round).await?;
            let start = Instant::now();
            target.invoke(name).await?;
            colds.push(start.elapsed());
        }
        colds.sort();
        let (program, floor_args) = &runtime.floor;
        let floor_args: Vec<&str> = floor_args.iter().map(String::as_str).collect();
        let floor = process_start(program, &floor_args, args.cold)?;
        let (c50, c99) = (percentile(&colds, 0.5), percentile(&colds, 0.99));
        row(
            &format!("{} cold start to first response p50 / p99", runtime.label),
            format!("{:.1} / {:.1} ms", ms(c50), ms(c99)),
            format!(
                "{:.1} / {:.1} ms (`{}` start)",
                ms(floor.0),
                ms(floor.1),
                Path::new(program)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            format!("{:.1}x the bare start", ms(c50) / ms(floor.0).max(0.001)),
        );
        alias_cost(&target, runtime, &args).await?;
        if runtime.runtime.starts_with("python") {
            layers_cost(&target, runtime, &args).await?;
        }
        if !args.no_compare {
            sandbox_cost(&target, &plain, runtime, &args).await?;
        }
    }
    Ok(())
}
