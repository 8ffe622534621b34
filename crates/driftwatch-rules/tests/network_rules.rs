//! The default network rules on listen/connect events with addresses, ports and the agent's
//! network findings: what fires, and what the alert says.

mod synthetic;

use driftwatch_model::{DriftFinding, DriftKind, DriftSubject, EventKind, NetRef, Verdict};
use synthetic::*;

fn net(
    kind: EventKind,
    exe: &str,
    local: (&str, u16),
    remote: (&str, u16),
) -> driftwatch_model::Event {
    let mut e = exec(exe, &[exe], "sh");
    e.kind = kind;
    e.net = Some(NetRef {
        l4proto: "tcp".into(),
        local_ip: local.0.into(),
        local_port: local.1,
        remote_ip: remote.0.into(),
        remote_port: remote.1,
    });
    e
}

fn finding(subject: DriftSubject, verdict: Verdict, path: &str) -> DriftFinding {
    DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Network,
        subject,
        verdict,
        path: path.into(),
        hash: None,
        image_hash: None,
        detail: Some("why".into()),
    }
}

#[test]
fn undeclared_listener_alerts_with_address_and_port() {
    let rs = defaults();
    let mut l = net(EventKind::Listen, "/bin/nc", ("127.0.0.1", 8081), ("", 0));
    assert!(
        fired(&rs, &l).is_empty(),
        "a listener without a finding is quiet"
    );
    l.drift = Some(finding(
        DriftSubject::Listener,
        Verdict::UndeclaredPort,
        "8081/tcp",
    ));
    assert_eq!(fired(&rs, &l), ["Network drift detected in container"]);
    let mut out = Vec::new();
    rs.matches(&l, &mut out);
    let alert = rs.alert(out[0], &l, "host1");
    let text = serde_json::to_value(&alert).unwrap();
    let o = text["output"].as_str().unwrap();
    for needle in [
        "verdict=undeclared_port",
        "connection=127.0.0.1:8081",
        "lport=8081",
        "l4proto=tcp",
        "proc_exepath=/bin/nc",
    ] {
        assert!(o.contains(needle), "{needle} not in {o}");
    }
    for tag in ["container", "drift", "network_drift"] {
        assert!(
            text["tags"].as_array().unwrap().iter().any(|t| t == tag),
            "{tag}"
        );
    }
}

#[test]
fn new_destination_alerts_and_shell_connects_name_the_peer() {
    let rs = defaults();
    let mut c = net(
        EventKind::Connect,
        "/usr/bin/python3",
        ("127.0.0.1", 40000),
        ("127.0.0.1", 9001),
    );
    assert!(fired(&rs, &c).is_empty());
    c.drift = Some(finding(
        DriftSubject::Outbound,
        Verdict::NewDestination,
        "127.0.0.1:9001/tcp",
    ));
    assert_eq!(fired(&rs, &c), ["Network drift detected in container"]);
    let custom = load(
        "- rule: Connect to 4444\n  desc: d\n  condition: evt.type=connect and fd.sport=4444 and fd.typechar='4'\n  output: x %fd.name\n  priority: ERROR\n",
    );
    let mut sh = net(
        EventKind::Connect,
        "/bin/sh",
        ("10.0.0.2", 5),
        ("10.0.0.9", 4444),
    );
    sh.process.name = "sh".into();
    let names = fired(&custom, &sh);
    assert!(names.contains(&"Connect to 4444".to_string()), "{names:?}");
    assert!(
        names.contains(&"Network connection from shell in container".to_string()),
        "{names:?}"
    );
}
