//! `driftwatch health`: one GET of the agent's health endpoint over plain TCP, for probes
//! where no HTTP client exists (the `FROM scratch` image, the DaemonSet's exec probes).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args)]
pub struct HealthArgs {
    /// The agent's API address (`api.listen` in the configuration).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7878")]
    address: SocketAddr,
    /// The path to ask.
    #[arg(long, default_value = "/healthz")]
    path: String,
    /// A file whose first line is the API's bearer token (needed off loopback).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Seconds to wait for the connection and the answer.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    timeout: u64,
}

pub fn run(args: HealthArgs) -> anyhow::Result<i32> {
    let token = match &args.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the token file {}", p.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        None => None,
    };
    match check(&args, token.as_deref()) {
        Ok((200, _)) => {
            println!("healthy: {} answered 200", args.address);
            Ok(0)
        }
        Ok((code, body)) => {
            println!(
                "unhealthy: GET http://{}{} answered {code}: {}",
                args.address,
                args.path,
                body.trim()
            );
            Ok(1)
        }
        Err(e) => {
            println!("unhealthy: GET http://{}{}: {e:#}", args.address, args.path);
            Ok(1)
        }
    }
}

/// The status code and body of one HTTP/1.1 GET.
fn check(args: &HealthArgs, token: Option<&str>) -> anyhow::Result<(u16, String)> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut s = TcpStream::connect_timeout(&args.address, timeout).context("connecting")?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: driftwatch-health\r\n{auth}Connection: close\r\n\r\n",
        args.path, args.address
    )
    .context("sending the request")?;
    let mut buf = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut buf)
        .context("reading the answer")?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .with_context(|| {
            format!(
                "not an HTTP answer: {:?}",
                text.lines().next().unwrap_or("")
            )
        })?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.chars().take(200).collect()))
}
