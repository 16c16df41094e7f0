//! Loudspeaker delivery through a real Mosquitto broker started by the test (Debian package
//! `mosquitto`; `.ci/run` installs it). A missing broker fails the tests: it is never a skip.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use super::*;
use crate::error::RetryHint;

/// A Mosquitto broker on a free port of 127.0.0.1, killed when dropped.
struct Mosquitto {
    child: Child,
    port: u16,
}

/// Returns the broker binary: `$MOSQUITTO`, else `mosquitto` on the `PATH`, else Debian's
/// `/usr/sbin/mosquitto` (not on a normal user's `PATH`).
fn mosquitto_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOSQUITTO") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("mosquitto"));
    on_path
        .chain([PathBuf::from("/usr/sbin/mosquitto")])
        .find(|path| path.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

impl Mosquitto {
    fn start() -> Self {
        let binary = mosquitto_binary().expect(
            "the mosquitto broker is not installed: run `apt-get install -y mosquitto` \
             (or set MOSQUITTO to the binary); the loudspeaker tests need a real broker",
        );
        let port = free_port();
        let mut child = Command::new(&binary)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // Wait for the listener; the broker is up when it accepts a connection.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().expect("the child can be polled") {
                panic!("mosquitto exited at start with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port,
        client_id: "tianshan-test-node".into(),
        keep_alive: "30s".into(),
        publish_timeout: "5s".into(),
        reconnect_after: "100ms".into(),
    }
}

/// Subscribes to every loudspeaker topic and returns the (topic, payload, QoS) of each
/// publish the broker forwards, once the broker confirmed the subscription.
async fn listen(port: u16) -> mpsc::UnboundedReceiver<(String, String, QoS)> {
    let options = MqttOptions::new("loudspeaker-under-test", "127.0.0.1", port);
    let (client, mut event_loop) = AsyncClient::new(options, 16);
    client
        .subscribe("tianshan/loudspeaker/#", QoS::AtLeastOnce)
        .await
        .expect("queue the subscription");
    let subscribed = async {
        loop {
            match event_loop.poll().await.expect("the broker is up") {
                Event::Incoming(Packet::SubAck(_)) => return,
                _ => continue,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .expect("the broker confirms the subscription");
    let (heard, hearing) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // The client lives as long as its event loop is polled.
        let _client = client;
        while let Ok(event) = event_loop.poll().await {
            if let Event::Incoming(Packet::Publish(publish)) = event {
                let payload = String::from_utf8_lossy(&publish.payload).into_owned();
                if heard.send((publish.topic, payload, publish.qos)).is_err() {
                    return;
                }
            }
        }
    });
    hearing
}

#[tokio::test]
async fn a_loudspeaker_hears_the_warning_through_mosquitto() {
    let broker = Mosquitto::start();
    let mut hearing = listen(broker.port).await;
    let channel = MqttChannel::connect(&config(broker.port)).expect("valid settings");
    assert_eq!(channel.kind(), ChannelKind::Loudspeaker);
    let mut message = OutboundMessage::for_test(ChannelKind::Loudspeaker, "650102-002-v1-speaker");
    channel
        .deliver(&message)
        .await
        .expect("the broker acknowledges the publish");
    message.text = "第二条：解除预警".into();
    channel
        .deliver(&message)
        .await
        .expect("the broker acknowledges the second publish");
    for text in [
        "【红色山洪预警】天山区：请立即组织人员转移。",
        "第二条：解除预警",
    ] {
        let heard = tokio::time::timeout(Duration::from_secs(10), hearing.recv())
            .await
            .expect("the loudspeaker hears it within 10 s")
            .expect("the listener runs");
        assert_eq!(
            heard,
            (
                "tianshan/loudspeaker/650102002/650102-002-v1-speaker".to_owned(),
                text.to_owned(),
                QoS::AtLeastOnce
            )
        );
    }
}

#[tokio::test]
async fn without_a_broker_a_delivery_fails_and_may_be_retried() {
    let channel = MqttChannel::connect(&config(free_port())).expect("valid settings");
    let message = OutboundMessage::for_test(ChannelKind::Loudspeaker, "650102-002-v1-speaker");
    let error = channel.deliver(&message).await.expect_err("nobody listens");
    let ChannelFailure::Mqtt { detail } = &error.failure else {
        panic!("expected a connection failure, got {error}");
    };
    assert!(
        detail.contains("connection to the broker failed"),
        "{detail}"
    );
    assert_eq!(error.retry_hint(), RetryHint::Retry);
}

#[tokio::test]
async fn ids_that_cannot_be_topic_levels_are_refused_before_sending() {
    assert_eq!(
        loudspeaker_topic("650102002", "650102-002-v1-speaker"),
        Ok("tianshan/loudspeaker/650102002/650102-002-v1-speaker".to_owned())
    );
    for (unit, recipient) in [("650102002", "a/b"), ("6501+", "x"), ("", "x"), ("u", "#")] {
        assert!(
            loudspeaker_topic(unit, recipient).is_err(),
            "{unit} {recipient}"
        );
    }
    let channel = MqttChannel::connect(&config(free_port())).expect("valid settings");
    let message = OutboundMessage::for_test(ChannelKind::Loudspeaker, "village/1");
    let error = channel.deliver(&message).await.expect_err("bad topic");
    assert!(matches!(error.failure, ChannelFailure::Unsendable { .. }));
    assert_eq!(error.retry_hint(), RetryHint::DoNotRetry);
}

#[test]
fn settings_are_checked() {
    assert_eq!(config(1883).validate("l"), Ok(()));
    let bad = MqttConfig {
        publish_timeout: "soon".into(),
        ..config(1883)
    };
    assert!(bad
        .validate("l")
        .expect_err("not a duration")
        .starts_with("l.publish-timeout: "));
    let anonymous = MqttConfig {
        client_id: " ".into(),
        ..config(1883)
    };
    assert_eq!(
        anonymous.validate("l"),
        Err("l.client-id must not be empty".into())
    );
}
