//! Which partition a keyed Kafka record lands in, as the producing client computes it, so a node
//! knows which stations its assigned partitions carry (including stations that stay silent).
//!
//! Two partitioners cover the clients that gateways use:
//! - librdkafka's default `consistent_random`: CRC-32 (IEEE 802.3, as zlib) of the key, modulo
//!   the partition count (librdkafka `rdkafka_msg.c`, `rd_kafka_msg_partitioner_consistent`).
//! - the Java client's default for keyed records: murmur2 of the key (seed `0x9747b28c`), sign
//!   bit cleared, modulo the partition count (Kafka `Utils.murmur2`, `Utils.toPositive`).

use serde::{Deserialize, Serialize};

/// A producer's partitioner for keyed records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPartitioner {
    /// librdkafka's default (C, Python, Go and Rust clients built on it).
    #[default]
    ConsistentRandom,
    /// The Java client's default.
    Murmur2,
}

impl KeyPartitioner {
    /// Returns the partition of `key` among `partitions` (at least 1).
    pub fn partition_of(self, key: &[u8], partitions: i32) -> i32 {
        let partitions = partitions.max(1);
        match self {
            KeyPartitioner::ConsistentRandom => (crc32(key) % partitions as u32) as i32,
            KeyPartitioner::Murmur2 => ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32,
        }
    }
}

/// CRC-32 with the reflected polynomial `0xEDB88320`, initial value and final xor all ones.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// Murmur2 (32-bit) as the Kafka Java client computes it.
pub fn murmur2(bytes: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ bytes.len() as u32;
    let mut chunks = bytes.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32/ISO-HDLC check value of "123456789" (Greg Cook's CRC catalogue).
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn murmur2_matches_the_kafka_client_test_vectors() {
        // Kafka's UtilsTest.testMurmur2 (clients/src/test/java/org/apache/kafka/common/utils).
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key) as i32,
                expected,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn partitions_stay_in_range_and_are_stable() {
        for partitioner in [KeyPartitioner::ConsistentRandom, KeyPartitioner::Murmur2] {
            for n in 1..20 {
                for key in ["RG-650102-001", "B0001", "", "x"] {
                    let p = partitioner.partition_of(key.as_bytes(), n);
                    assert!((0..n).contains(&p));
                    assert_eq!(p, partitioner.partition_of(key.as_bytes(), n));
                }
            }
        }
    }
}
