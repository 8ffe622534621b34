//! RFC 5424 syslog messages over a local datagram socket (`/dev/log`), UDP, or TCP with
//! RFC 6587 octet counting; the connection is remade after any error.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use driftwatch_config::{SyslogOutput, SyslogTransport};
use driftwatch_model::{Alert, Priority};

use crate::stdout::escape_terminal;
use crate::worker::{Deliver, Failure};

/// The SD-ID of driftwatch's structured data. 32473 is the example enterprise number of
/// RFC 5612, as RFC 5424 itself uses; the name part is what receivers key on.
pub const SD_ID: &str = "driftwatch@32473";

/// Facility codes by name (RFC 5424 table 1, with the names syslog.conf uses).
pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "ntp" => 12,
        "audit" => 13,
        "alert" => 14,
        "clock" => 15,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// Falco's priorities are syslog's severities, in the same order.
pub fn severity(p: Priority) -> u8 {
    match p {
        Priority::Emergency => 0,
        Priority::Alert => 1,
        Priority::Critical => 2,
        Priority::Error => 3,
        Priority::Warning => 4,
        Priority::Notice => 5,
        Priority::Informational => 6,
        Priority::Debug => 7,
    }
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, `-` if empty.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if v.is_empty() { "-".into() } else { v }
}

/// RFC 5424 allows at most 6 digits of fractional seconds; Falco's time has 9.
fn timestamp(time: &str) -> String {
    let Some(dot) = time.find('.') else {
        return header_field(time, 64);
    };
    let (head, frac) = time.split_at(dot + 1);
    let digits = frac.chars().take_while(char::is_ascii_digit).count();
    let rest = &frac[digits..];
    header_field(&format!("{head}{}{rest}", &frac[..digits.min(6)]), 64)
}

/// PARAM-VALUE escaping (RFC 5424 6.3.3): `"`, `\` and `]` get a backslash.
fn sd_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn field<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
    alert
        .output_fields
        .get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty() && *s != "<NA>")
}

/// The MSGID: the alert's kind of drift (`binary_drift`, ...), else `alert`.
fn msgid(alert: &Alert) -> String {
    let tag = alert
        .tags
        .iter()
        .find(|t| t.ends_with("_drift"))
        .map_or("alert", String::as_str);
    header_field(tag, 32)
}

/// One message without framing: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`.
/// The MSG is the alert's output with control characters escaped, so it is one line.
pub fn format_message(
    alert: &Alert,
    facility: u8,
    hostname: &str,
    app_name: &str,
    procid: u32,
) -> String {
    let pri = u32::from(facility) * 8 + u32::from(severity(alert.priority));
    let host = if alert.hostname.is_empty() {
        hostname
    } else {
        &alert.hostname
    };
    let mut sd = format!(
        "[{SD_ID} rule=\"{}\" priority=\"{}\"",
        sd_value(&alert.rule),
        alert.priority
    );
    let image = match (
        field(alert, "container.image.repository"),
        field(alert, "container.image.tag"),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.to_string()),
        _ => None,
    };
    let params = [
        (
            "container_id",
            field(alert, "container.id").map(str::to_string),
        ),
        (
            "container_name",
            field(alert, "container.name").map(str::to_string),
        ),
        ("image", image),
        ("k8s_ns", field(alert, "k8s.ns.name").map(str::to_string)),
        ("k8s_pod", field(alert, "k8s.pod.name").map(str::to_string)),
    ];
    for (name, value) in params {
        if let Some(v) = value {
            sd.push_str(&format!(" {name}=\"{}\"", sd_value(&v)));
        }
    }
    sd.push(']');
    format!(
        "<{pri}>1 {} {} {} {procid} {} {sd} {}",
        timestamp(&alert.time),
        header_field(host, 255),
        header_field(app_name, 48),
        msgid(alert),
        escape_terminal(&alert.output)
    )
}

/// Where messages go, and the connection if one is open.
enum Conn {
    Unix(PathBuf, Option<UnixDatagram>),
    Udp(String, Option<UdpSocket>),
    Tcp(String, Option<TcpStream>),
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn resolve(addr: &str) -> std::io::Result<std::net::SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("resolves to no address"))
}

impl Conn {
    fn send(&mut self, msg: &str) -> std::io::Result<()> {
        match self {
            Conn::Unix(path, sock) => {
                if sock.is_none() {
                    *sock = Some(UnixDatagram::unbound()?);
                }
                let s = sock
                    .as_ref()
                    .ok_or_else(|| std::io::Error::other("no socket"))?;
                s.send_to(msg.as_bytes(), &*path).map(drop)
            }
            Conn::Udp(addr, sock) => {
                if sock.is_none() {
                    let to = resolve(addr)?;
                    let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    let s = UdpSocket::bind(any)?;
                    s.connect(to)?;
                    *sock = Some(s);
                }
                let s = sock
                    .as_ref()
                    .ok_or_else(|| std::io::Error::other("no socket"))?;
                s.send(msg.as_bytes()).map(drop)
            }
            Conn::Tcp(addr, stream) => {
                if stream.is_none() {
                    let s = TcpStream::connect_timeout(&resolve(addr)?, CONNECT_TIMEOUT)?;
                    s.set_write_timeout(Some(CONNECT_TIMEOUT))?;
                    s.set_nodelay(true)?;
                    *stream = Some(s);
                }
                let s = stream
                    .as_mut()
                    .ok_or_else(|| std::io::Error::other("no connection"))?;
                // RFC 6587 octet counting: `LEN SP MSG`, one write.
                s.write_all(format!("{} {msg}", msg.len()).as_bytes())
            }
        }
    }

    fn reset(&mut self) {
        match self {
            Conn::Unix(_, s) => *s = None,
            Conn::Udp(_, s) => *s = None,
            Conn::Tcp(_, s) => *s = None,
        }
    }
}

pub(crate) struct SyslogOut {
    conn: Conn,
    facility: u8,
    hostname: String,
    app_name: String,
    procid: u32,
    what: String,
}

impl SyslogOut {
    /// Checks the configuration; connects at the first alert.
    pub fn new(c: &SyslogOutput, hostname: &str) -> Result<SyslogOut, String> {
        let facility = facility_code(&c.facility).ok_or_else(|| {
            format!(
                "unknown facility {:?} (expected kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, audit, alert, clock, local0..local7)",
                c.facility
            )
        })?;
        if c.address.is_empty() {
            return Err("no address".into());
        }
        let conn = match c.transport {
            SyslogTransport::Unix => Conn::Unix(PathBuf::from(&c.address), None),
            SyslogTransport::Udp | SyslogTransport::Tcp => {
                let ok = c
                    .address
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !ok {
                    return Err(format!("address {:?} is not host:port", c.address));
                }
                if c.transport == SyslogTransport::Udp {
                    Conn::Udp(c.address.clone(), None)
                } else {
                    Conn::Tcp(c.address.clone(), None)
                }
            }
        };
        Ok(SyslogOut {
            conn,
            facility,
            hostname: hostname.to_string(),
            app_name: c.app_name.clone(),
            procid: std::process::id(),
            what: format!("{:?} {}", c.transport, c.address).to_lowercase(),
        })
    }
}

impl Deliver for SyslogOut {
    fn deliver(&mut self, alert: &Alert) -> Result<(), Failure> {
        let msg = format_message(
            alert,
            self.facility,
            &self.hostname,
            &self.app_name,
            self.procid,
        );
        self.conn.send(&msg).map_err(|e| {
            self.conn.reset();
            Failure::retry(format!("sending to syslog at {}: {e}", self.what))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_keeps_six_fraction_digits() {
        assert_eq!(
            timestamp("2026-11-28T12:00:00.123456789Z"),
            "2026-11-28T12:00:00.123456Z"
        );
        assert_eq!(timestamp("2026-11-28T12:00:00Z"), "2026-11-28T12:00:00Z");
        assert_eq!(timestamp(""), "-");
    }

    #[test]
    fn facilities_and_severities() {
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("LOCAL7"), Some(23));
        assert_eq!(facility_code("local8"), None);
        assert_eq!(severity(Priority::Emergency), 0);
        assert_eq!(severity(Priority::Warning), 4);
        assert_eq!(severity(Priority::Debug), 7);
    }

    #[test]
    fn unknown_facility_and_bad_address_are_refused() {
        let c = SyslogOutput {
            facility: "local9".into(),
            ..SyslogOutput::default()
        };
        assert!(SyslogOut::new(&c, "h").err().unwrap().contains("local9"));
        let c = SyslogOutput {
            transport: SyslogTransport::Udp,
            address: "localhost".into(),
            ..SyslogOutput::default()
        };
        assert!(SyslogOut::new(&c, "h").err().unwrap().contains("host:port"));
    }
}
