//! HTTP front figures: warm requests through a function URL and through an HTTP API route
//! (`$default` stage, payload format 2.0) to a no-op Python function, p50/p99 at c=1 and
//! requests per second at c=1/8, each beside a direct `Invoke` of the same function
//! measured in the same run (the floor the front adds its overhead to).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::{latency, ms, row, throughput, zip, Args, Runtime, Target};

/// Concurrency levels: each caller keeps one environment of the function (1,769 MB) busy,
/// and eight of them fit this machine's default memory budget; beyond it environments are
/// evicted and re-created and the figure measures cold starts, not the front.
const LEVELS: [usize; 2] = [1, 8];

impl Target {
    /// A request that must answer 2xx; returns its JSON body.
    async fn call_ok(&self, method: &str, path: &str, body: Value, service: &str) -> Result<Value> {
        let (status, answer) = self
            .request(method, path, &[], serde_json::to_vec(&body)?, service)
            .await?;
        if !(200..300).contains(&status) {
            bail!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&answer)
            );
        }
        Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
    }

    /// An unsigned GET that must answer 200 (a URL or API path on this server).
    async fn get_ok(&self, path: &str) -> Result<()> {
        let unsigned = Target {
            credentials: None,
            ..self.clone()
        };
        let (status, answer) = unsigned
            .request("GET", path, &[], Vec::new(), "lambda")
            .await?;
        if status != 200 {
            bail!("GET {path}: {status} {}", String::from_utf8_lossy(&answer));
        }
        Ok(())
    }
}

/// The path part of a URL this server returned (`http://host:port/lambda-url/id/`).
fn path_of(url: &str) -> Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    Ok(path.to_owned())
}

pub(crate) async fn run(target: &Target, args: &Args) -> Result<()> {
    let function = Runtime {
        label: "Python",
        function: "bench-http",
        runtime: "python3.12",
        handler: "app.handler",
        package: zip(&[(
            "app.py",
            b"def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n",
            0o644,
        )])?,
        floor: (String::new(), Vec::new()),
    };
    crate::create(target, &function, function.function).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    target.invoke(function.function).await?;
    let name = function.function;

    let url = target
        .call_ok(
            "POST",
            &format!("/2021-10-31/functions/{name}/url"),
            json!({"AuthType": "NONE"}),
            "lambda",
        )
        .await?;
    let url_path = path_of(url["FunctionUrl"].as_str().context("no FunctionUrl")?)?;
    for (sid, body) in [
        (
            "url",
            json!({"StatementId": "url", "Action": "lambda:InvokeFunctionUrl", "Principal": "*", "FunctionUrlAuthType": "NONE"}),
        ),
        (
            "invoke",
            json!({"StatementId": "invoke", "Action": "lambda:InvokeFunction", "Principal": "*", "InvokedViaFunctionUrl": true}),
        ),
        (
            "api",
            json!({"StatementId": "api", "Action": "lambda:InvokeFunction", "Principal": "apigateway.amazonaws.com"}),
        ),
    ] {
        target
            .call_ok(
                "POST",
                &format!("/2015-03-31/functions/{name}/policy"),
                body,
                "lambda",
            )
            .await
            .with_context(|| format!("permission {sid}"))?;
    }
    let api = target
        .call_ok(
            "POST",
            "/v2/apis",
            json!({"name": "bench", "protocolType": "HTTP",
                   "target": format!("arn:aws:lambda:us-east-1:000000000000:function:{name}")}),
            "apigateway",
        )
        .await?;
    let api_path = format!(
        "{}/items",
        path_of(api["apiEndpoint"].as_str().context("no apiEndpoint")?)?
    );
    target.get_ok(&url_path).await?;
    target.get_ok(&api_path).await?;

    let t = target.clone();
    let (i50, i99) = latency(args.warm, || {
        let t = t.clone();
        async move { t.invoke(name).await }
    })
    .await?;
    let mut invoke_rps = Vec::new();
    for concurrency in LEVELS {
        let t = target.clone();
        invoke_rps.push(
            throughput(concurrency, args.seconds, move || {
                let t = t.clone();
                async move { t.invoke(name).await }
            })
            .await?,
        );
    }
    row(
        "Python no-op direct Invoke p50 / p99 (c=1)",
        format!("{:.3} / {:.3} ms", ms(i50), ms(i99)),
        "—".into(),
        "—".into(),
    );
    for (label, path) in [("function URL", url_path), ("HTTP API route", api_path)] {
        let t = target.clone();
        let p = path.clone();
        let (p50, p99) = latency(args.warm, || {
            let t = t.clone();
            let p = p.clone();
            async move { t.get_ok(&p).await }
        })
        .await?;
        row(
            &format!("Python no-op through a {label} p50 / p99 (c=1)"),
            format!("{:.3} / {:.3} ms", ms(p50), ms(p99)),
            format!("{:.3} / {:.3} ms (direct Invoke)", ms(i50), ms(i99)),
            format!("+{:.3} ms p50 over Invoke", ms(p50) - ms(i50)),
        );
        for (i, concurrency) in LEVELS.into_iter().enumerate() {
            let t = target.clone();
            let p = path.clone();
            let rps = throughput(concurrency, args.seconds, move || {
                let t = t.clone();
                let p = p.clone();
                async move { t.get_ok(&p).await }
            })
            .await?;
            row(
                &format!("{label} throughput c={concurrency}"),
                format!("{rps:.0} req/s"),
                format!("{:.0} invokes/s (direct Invoke)", invoke_rps[i]),
                format!("{:.1}% of Invoke", 100.0 * rps / invoke_rps[i]),
            );
        }
    }
    Ok(())
}
