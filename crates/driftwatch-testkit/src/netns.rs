//! A network namespace outside every container, joined to one container by a veth pair: the
//! "outside" a test of network isolation connects from.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::docker::TestContainer;

/// Runs `cmd[0] cmd[1..]`, asserted to succeed.
pub fn run_ok(cmd: &[&str]) {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace the test made, joined to a container's by a veth pair with
/// link-local addresses only; deleted (with its end of the pair) when dropped.
pub struct TestNetns {
    name: String,
}

impl TestNetns {
    /// `169.254.<n>.1` here, `169.254.<n>.2` in the container. `n` also names the namespace
    /// and the veth pair, so tests that run at the same time choose different ones.
    pub fn link_to(c: &TestContainer, n: u8) -> TestNetns {
        let ns = format!("dwt{n}-{}", std::process::id());
        run_ok(&["ip", "netns", "add", &ns]);
        let guard = TestNetns { name: ns.clone() };
        let (here, there) = (format!("dwh{n}"), format!("dwc{n}"));
        run_ok(&[
            "ip", "link", "add", &here, "netns", &ns, "type", "veth", "peer", "name", &there,
        ]);
        let pid = c.pid().to_string();
        run_ok(&["ip", "link", "set", &there, "netns", &pid]);
        let net = format!("--net=/proc/{pid}/ns/net");
        let addr = format!("169.254.{n}.2/30");
        run_ok(&["nsenter", &net, "ip", "addr", "add", &addr, "dev", &there]);
        run_ok(&["nsenter", &net, "ip", "link", "set", &there, "up"]);
        let here_addr = format!("169.254.{n}.1/30");
        run_ok(&["ip", "-n", &ns, "addr", "add", &here_addr, "dev", &here]);
        run_ok(&["ip", "-n", &ns, "link", "set", &here, "up"]);
        run_ok(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        guard
    }

    /// An HTTP GET of `addr` (`ip:port`) from a thread moved into this namespace (setns
    /// affects only the calling thread); the body on success.
    pub fn fetch(&self, addr: &str) -> Result<String, String> {
        let ns = format!("/run/netns/{}", self.name);
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        std::thread::spawn(move || {
            let f = std::fs::File::open(&ns).map_err(|e| format!("{ns}: {e}"))?;
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) } != 0
            {
                return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
            }
            let t = Duration::from_secs(2);
            let mut s = std::net::TcpStream::connect_timeout(&addr, t)
                .map_err(|e| format!("connect {addr}: {e}"))?;
            s.set_read_timeout(Some(t)).unwrap();
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out)
                .map_err(|e| format!("read {addr}: {e}"))?;
            Ok(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
        })
        .join()
        .unwrap()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}
