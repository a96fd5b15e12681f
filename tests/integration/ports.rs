//! The port rules, through the library function the CLI uses.

use std::net::{IpAddr, Ipv4Addr};

use liveserve::__private::StartupError;
use liveserve::__private::listen::{Addresses, PortChoice, bind};

fn loopback() -> Addresses {
    Addresses {
        required: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        optional: vec![],
    }
}

#[test]
fn a_busy_default_port_moves_on_to_a_free_one() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let bound = bind(&loopback(), PortChoice::FirstFreeFrom(port)).unwrap();
    assert!(bound.port > port, "{} after busy {port}", bound.port);
    assert_eq!(bound.listeners[0].local_addr().unwrap().port(), bound.port);
}

#[test]
fn a_busy_explicit_port_is_an_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    match bind(&loopback(), PortChoice::Exactly(port)) {
        Err(StartupError::PortBusy(reported)) => assert_eq!(reported, port),
        other => panic!("expected PortBusy, got {other:?}"),
    }
}

#[test]
fn localhost_binds_both_loopbacks_on_one_port_where_it_can() {
    let addresses = Addresses::from_host("localhost").unwrap();
    let bound = bind(&addresses, PortChoice::Exactly(0)).unwrap();
    assert_ne!(bound.port, 0);
    for listener in &bound.listeners {
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        assert_eq!(addr.port(), bound.port);
    }
    assert_eq!(
        bound.listeners[0].local_addr().unwrap().ip(),
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    );
    // ::1 is optional: present or not, nothing else listens.
    assert!(bound.listeners.len() <= 2);
}
