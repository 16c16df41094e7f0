//! A TCP proxy in front of a Kafka broker that can cut one node off: it reads the `client.id`
//! from the header of each connection's first request and, while that id is cut, forwards
//! nothing either way on its connections, or only none of its group-coordination requests
//! (bytes are read and dropped, as on a network that loses packets, so the client waits for
//! answers that never come rather than seeing a closed socket).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What a cut client loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Every byte either way.
    Everything,
    /// Its requests to the group coordinator (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
    /// LeaveGroup, OffsetFetch, OffsetCommit), as when the coordinator's broker is out of reach
    /// but the partition leaders are not; produce and fetch go on.
    GroupCoordination,
}

/// Cut clients by client id.
type CutClients = Arc<Mutex<BTreeMap<String, Cut>>>;

/// The proxy; it runs until the test process ends.
pub(crate) struct BrokerProxy {
    address: SocketAddr,
    cut: CutClients,
    dropped_bytes: Arc<AtomicU64>,
}

impl BrokerProxy {
    /// Listens on 127.0.0.1 and forwards every connection to `upstream`.
    pub(crate) fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let address = listener.local_addr().expect("proxy address");
        let cut = Arc::new(Mutex::new(BTreeMap::new()));
        let dropped_bytes = Arc::new(AtomicU64::new(0));
        {
            let (cut, dropped_bytes) = (cut.clone(), dropped_bytes.clone());
            thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let (cut, dropped_bytes) = (cut.clone(), dropped_bytes.clone());
                    thread::spawn(move || relay(client, upstream, &cut, &dropped_bytes));
                }
            });
        }
        Self {
            address,
            cut,
            dropped_bytes,
        }
    }

    /// Where clients connect.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Cuts every connection, present and future, of clients called `client_id`.
    pub(crate) fn cut(&self, client_id: &str, cut: Cut) {
        self.cut
            .lock()
            .expect("cut clients lock")
            .insert(client_id.to_string(), cut);
    }

    /// Bytes dropped on cut connections so far (the cut client kept trying).
    pub(crate) fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes.load(Ordering::Relaxed)
    }
}

/// Reads the first request, learns its client id, connects upstream and relays both ways.
fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    cut: &CutClients,
    dropped_bytes: &Arc<AtomicU64>,
) {
    let Some(first_request) = read_frame(&mut client) else {
        return;
    };
    let client_id = client_id_of(&first_request).unwrap_or_default();
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let cut_now: Arc<dyn Fn() -> Option<Cut> + Send + Sync> = {
        let cut = cut.clone();
        Arc::new(move || {
            cut.lock()
                .expect("cut clients lock")
                .get(&client_id)
                .copied()
        })
    };
    let (Ok(client_writer), Ok(server_writer)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    {
        let (cut_now, dropped_bytes) = (cut_now.clone(), dropped_bytes.clone());
        thread::spawn(move || {
            relay_requests(
                client,
                first_request,
                server_writer,
                &*cut_now,
                &dropped_bytes,
            );
        });
    }
    relay_responses(server, client_writer, &*cut_now, dropped_bytes);
}

/// Forwards the client's requests frame by frame, starting with `first`, dropping those its cut
/// covers.
fn relay_requests(
    mut client: TcpStream,
    first: Vec<u8>,
    mut server: TcpStream,
    cut_now: &dyn Fn() -> Option<Cut>,
    dropped: &AtomicU64,
) {
    let mut frame = Some(first);
    while let Some(request) = frame {
        let dropped_here = match cut_now() {
            Some(Cut::Everything) => true,
            Some(Cut::GroupCoordination) => is_group_coordination(&request),
            None => false,
        };
        if dropped_here {
            dropped.fetch_add(request.len() as u64, Ordering::Relaxed);
        } else if server.write_all(&request).is_err() {
            break;
        }
        frame = read_frame(&mut client);
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Copies the broker's answers to the client, dropping them all while it is cut off entirely.
fn relay_responses(
    mut server: TcpStream,
    mut client: TcpStream,
    cut_now: &dyn Fn() -> Option<Cut>,
    dropped: &AtomicU64,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match server.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if cut_now() == Some(Cut::Everything) {
            dropped.fetch_add(read as u64, Ordering::Relaxed);
            continue;
        }
        if client.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}

/// Whether a request frame goes to the group coordinator: API keys 8 (OffsetCommit) to 14
/// (SyncGroup) of the Kafka protocol, FindCoordinator, JoinGroup, Heartbeat and LeaveGroup
/// among them.
fn is_group_coordination(frame: &[u8]) -> bool {
    frame
        .get(4..6)
        .is_some_and(|key| (8..=14).contains(&i16::from_be_bytes([key[0], key[1]])))
}

/// One length-prefixed Kafka frame, prefix included.
fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let length = usize::try_from(i32::from_be_bytes(size)).ok()?;
    let mut frame = size.to_vec();
    frame.resize(4 + length, 0);
    stream.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

/// The client id of a request frame: after the size (4 bytes), API key (2), API version (2) and
/// correlation id (4) comes a nullable string (i16 length, then bytes) in every request header
/// version that has one.
fn client_id_of(frame: &[u8]) -> Option<String> {
    let length = i16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    let length = usize::try_from(length).ok()?;
    String::from_utf8(frame.get(14..14 + length)?.to_vec()).ok()
}

#[test]
fn the_client_id_is_read_from_a_request_header() {
    let mut frame = vec![0, 0, 0, 0, 0, 18, 0, 3, 0, 0, 0, 1, 0, 9];
    frame.extend_from_slice(b"tianshan1");
    frame.extend_from_slice(&[0, 0]);
    assert_eq!(client_id_of(&frame).as_deref(), Some("tianshan1"));
    assert_eq!(client_id_of(&[0, 0, 0, 4, 0, 18]), None);
}
