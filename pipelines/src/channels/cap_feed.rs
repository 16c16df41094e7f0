//! The public CAP feed: a bounded store of the latest CAP 1.2 messages, newest first, and its
//! Atom 1.0 rendering (RFC 4287), served by the node's HTTP endpoints at `/cap/feed.atom`, with
//! each message at `/cap/<identifier>.xml`.
//!
//! Each entry carries its CAP alert inline (`<content type="application/cap+xml">`, the alert
//! element without its XML declaration), so a CAP aggregator needs no second request; the
//! `alternate` link names the standalone document. Entry ids are `<feed id>:<CAP identifier>`:
//! Atom ids must be absolute IRIs, which a bare CAP identifier is not, so the feed id is a
//! `urn:` or `tag:` IRI that the identifier extends.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tianshan_core::cap::identifier_for;
use tianshan_core::dissemination::recipients::ChannelKind;
use tianshan_core::time::EventTime;

use super::{Channel, ChannelError, ChannelFailure, OutboundMessage};
use crate::error::PipelineError;

/// Settings of the CAP feed (`[channels.cap-feed]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CapFeedConfig {
    /// Most messages the feed keeps; the oldest leave first.
    pub size: usize,
    /// The feed's Atom id, a `urn:` or `tag:` IRI; entry ids append `:<CAP identifier>`.
    pub feed_id: String,
    /// The feed's title.
    pub title: String,
    /// The feed's author: the issuing organisation.
    pub author: String,
    /// The public address of the HTTP port, e.g. `"https://warn.example.cn"`; links are
    /// `<base-url>/cap/…`.
    pub base_url: String,
}

impl Default for CapFeedConfig {
    fn default() -> Self {
        Self {
            size: 200,
            feed_id: "urn:tianshan:cap-feed".into(),
            title: "天山自然灾害预警 CAP 消息".into(),
            author: "天山自然灾害监测预警系统".into(),
            base_url: "http://127.0.0.1:8080".into(),
        }
    }
}

impl CapFeedConfig {
    /// Checks the settings; `section` names them in errors.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        if self.size == 0 {
            return Err(format!("{section}.size must be at least 1"));
        }
        let iri_scheme = self.feed_id.starts_with("urn:") || self.feed_id.starts_with("tag:");
        let iri_safe = !self
            .feed_id
            .contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '&' | '"'));
        if !iri_scheme || !iri_safe {
            return Err(format!(
                "{section}.feed-id must be a urn: or tag: IRI without spaces, <, >, & or \", got {:?}",
                self.feed_id
            ));
        }
        let http = self.base_url.starts_with("http://") || self.base_url.starts_with("https://");
        if !http || self.base_url.contains(char::is_whitespace) {
            return Err(format!(
                "{section}.base-url must be an http:// or https:// address, got {:?}",
                self.base_url
            ));
        }
        Ok(())
    }
}

/// One CAP message in the feed.
#[derive(Debug, Clone, PartialEq)]
struct CapEntry {
    /// The CAP identifier.
    identifier: String,
    /// The short zh-CN text, the entry's title.
    title: String,
    /// When the warning version was issued (the CAP `sent`).
    sent: EventTime,
    /// The CAP XML as rendered.
    xml: String,
}

/// The latest CAP messages, newest first. Shared (`Arc<CapFeed>`) by the courier, which
/// delivers into it, and the HTTP endpoints, which read it.
pub struct CapFeed {
    config: CapFeedConfig,
    entries: Mutex<VecDeque<CapEntry>>,
}

impl CapFeed {
    /// Returns an empty feed.
    ///
    /// # Errors
    /// Returns [`PipelineError::Setup`] for a bad setting.
    pub fn new(config: &CapFeedConfig) -> Result<Self, PipelineError> {
        config.validate("cap-feed").map_err(PipelineError::Setup)?;
        let mut config = config.clone();
        config.base_url = config.base_url.trim_end_matches('/').to_owned();
        Ok(Self {
            entries: Mutex::new(VecDeque::with_capacity(config.size)),
            config,
        })
    }

    /// Adds a message as the newest; one with the same identifier is replaced, and beyond
    /// the size the oldest is dropped.
    fn insert(&self, entry: CapEntry) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|kept| kept.identifier != entry.identifier);
        entries.push_front(entry);
        entries.truncate(self.config.size);
    }

    /// Returns the CAP XML of the message `identifier`, while the feed keeps it.
    pub fn message(&self, identifier: &str) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|entry| entry.identifier == identifier)
            .map(|entry| entry.xml.clone())
    }

    /// Returns the identifiers in the feed, newest first.
    pub fn identifiers(&self) -> Vec<String> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .map(|entry| entry.identifier.clone())
            .collect()
    }

    /// Returns the Atom 1.0 document of the feed. Its `updated` is the latest `sent` of its
    /// messages, or the Unix epoch while it is empty (nothing was ever published).
    pub fn render_atom(&self) -> String {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let config = &self.config;
        let updated = entries
            .iter()
            .map(|entry| entry.sent)
            .max()
            .unwrap_or(EventTime(0));
        let mut out =
            String::with_capacity(1_024 + entries.iter().map(|e| e.xml.len()).sum::<usize>());
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
        let _ = writeln!(out, "  <id>{}</id>", escape(&config.feed_id));
        let _ = writeln!(out, "  <title>{}</title>", escape(&config.title));
        let _ = writeln!(out, "  <updated>{}</updated>", updated.to_beijing_rfc3339());
        let _ = writeln!(
            out,
            "  <author><name>{}</name></author>",
            escape(&config.author)
        );
        let _ = writeln!(
            out,
            "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}/cap/feed.atom\"/>",
            escape(&config.base_url)
        );
        for entry in entries.iter() {
            out.push_str("  <entry>\n");
            let _ = writeln!(
                out,
                "    <id>{}:{}</id>",
                escape(&config.feed_id),
                escape(&entry.identifier)
            );
            let _ = writeln!(out, "    <title>{}</title>", escape(&entry.title));
            let _ = writeln!(
                out,
                "    <updated>{}</updated>",
                entry.sent.to_beijing_rfc3339()
            );
            let _ = writeln!(
                out,
                "    <link rel=\"alternate\" type=\"application/cap+xml\" href=\"{}\"/>",
                escape(&self.message_url(&entry.identifier))
            );
            let _ = writeln!(
                out,
                "    <content type=\"application/cap+xml\">{}</content>",
                without_declaration(&entry.xml)
            );
            out.push_str("  </entry>\n");
        }
        out.push_str("</feed>\n");
        out
    }

    /// Returns the address of a message: `<base-url>/cap/<identifier>.xml`, with the `%` of
    /// escaped identifier characters written `%25` so the path decodes back to the identifier.
    fn message_url(&self, identifier: &str) -> String {
        format!(
            "{}/cap/{}.xml",
            self.config.base_url,
            identifier.replace('%', "%25")
        )
    }
}

/// Returns the XML with its `<?xml …?>` declaration removed, for embedding in the feed.
fn without_declaration(xml: &str) -> &str {
    let xml = xml.trim_start();
    match xml
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>"))
    {
        Some((_, rest)) => rest.trim_start(),
        None => xml,
    }
}

/// Returns `text` with the five XML special characters escaped (fit for text and attributes).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

#[async_trait::async_trait]
impl Channel for CapFeed {
    fn kind(&self) -> ChannelKind {
        ChannelKind::CapFeed
    }

    /// "Delivered" means the message is in the feed, readable at once by every feed reader.
    /// The message must carry its CAP rendering.
    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError> {
        let Some(xml) = &message.cap_xml else {
            return Err(ChannelError::new(
                message,
                ChannelFailure::Unsendable {
                    detail: "the warning version has no CAP rendering".into(),
                },
            ));
        };
        let key = &message.delivery.key;
        self.insert(CapEntry {
            identifier: identifier_for(&key.warning, key.version),
            title: message.text.clone(),
            sent: message.warning.issued,
            xml: xml.clone(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tianshan_core::cap::{
        render, AreaOutline, CapAlert, CapPolygon, CapSettings, CapStatus, PolygonSource,
    };
    use tianshan_core::ids::WarningId;

    use super::*;

    /// Returns the message of version 1 of `warning`, with its CAP rendering.
    fn cap_message(warning: &str) -> OutboundMessage {
        let mut message = OutboundMessage::for_test(ChannelKind::CapFeed, "650000-cap");
        message.warning.id = WarningId::new(warning);
        message.delivery.key.warning = message.warning.id.clone();
        let settings = CapSettings {
            sender: "tianshan@example.cn".into(),
            sender_name: "天山预警测试".into(),
            sender_name_en: "Tianshan test".into(),
            status: CapStatus::Test,
            web: None,
            contact: None,
            english: false,
        };
        let area = AreaOutline {
            names: vec!["天山区".into()],
            polygons: vec![CapPolygon::from_bbox((87.6, 43.7, 87.8, 43.9))],
            source: PolygonSource::CoarseCountySquares,
        };
        message.cap_xml =
            Some(render(&settings, &message.warning, &[], &area).expect("a valid alert"));
        message
    }

    fn feed(size: usize) -> CapFeed {
        CapFeed::new(&CapFeedConfig {
            size,
            base_url: "http://127.0.0.1:8080/".into(),
            ..CapFeedConfig::default()
        })
        .expect("valid settings")
    }

    #[tokio::test]
    async fn the_feed_keeps_the_newest_messages_first_and_renders_atom() {
        let feed = feed(2);
        for warning in ["FF-B1-20240701T0000Z", "FF-B2-20240701T0000Z", "FF-天山-1"] {
            feed.deliver(&cap_message(warning)).await.expect("has CAP");
        }
        assert_eq!(
            feed.identifiers(),
            vec!["FF-%E5%A4%A9%E5%B1%B1-1-v1", "FF-B2-20240701T0000Z-v1"],
            "newest first, the oldest dropped"
        );
        assert!(feed.message("FF-B1-20240701T0000Z-v1").is_none());

        let atom = feed.render_atom();
        let document = roxmltree::Document::parse(&atom).expect("well-formed XML");
        let root = document.root_element();
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2005/Atom")
        );
        let child_text = |node: roxmltree::Node<'_, '_>, name: &str| {
            node.children()
                .find(|child| child.has_tag_name(name))
                .and_then(|child| child.text())
                .map(str::to_owned)
        };
        assert_eq!(
            child_text(root, "id").as_deref(),
            Some("urn:tianshan:cap-feed")
        );
        assert_eq!(
            child_text(root, "updated").as_deref(),
            Some("2024-07-01T08:00:00+08:00")
        );
        let entries: Vec<_> = root
            .children()
            .filter(|child| child.has_tag_name("entry"))
            .collect();
        assert_eq!(entries.len(), 2);
        let first = entries[0];
        assert_eq!(
            child_text(first, "id").as_deref(),
            Some("urn:tianshan:cap-feed:FF-%E5%A4%A9%E5%B1%B1-1-v1")
        );
        assert_eq!(
            child_text(first, "title").as_deref(),
            Some("【红色山洪预警】天山区：请立即组织人员转移。")
        );
        let link = first
            .children()
            .find(|child| child.has_tag_name("link"))
            .expect("a link");
        assert_eq!(
            link.attribute("href"),
            Some("http://127.0.0.1:8080/cap/FF-%25E5%25A4%25A9%25E5%25B1%25B1-1-v1.xml")
        );
        let content = first
            .children()
            .find(|child| child.has_tag_name("content"))
            .expect("content");
        assert_eq!(content.attribute("type"), Some("application/cap+xml"));
        assert!(content.children().any(|child| child.has_tag_name("alert")));
        let inline = atom
            .split_once("<content type=\"application/cap+xml\">")
            .and_then(|(_, rest)| rest.split_once("</content>"))
            .map(|(alert, _)| alert)
            .expect("the first entry's content");
        let inline = CapAlert::parse(inline).expect("the inline alert is CAP");
        assert_eq!(inline.identifier, "FF-%E5%A4%A9%E5%B1%B1-1-v1");
    }

    #[tokio::test]
    async fn a_message_without_cap_is_refused_and_a_redelivery_replaces() {
        let feed = feed(5);
        let bare = OutboundMessage::for_test(ChannelKind::CapFeed, "650000-cap");
        let error = feed.deliver(&bare).await.expect_err("no CAP");
        assert!(matches!(error.failure, ChannelFailure::Unsendable { .. }));
        let message = cap_message("FF-B1-20240701T0000Z");
        feed.deliver(&message).await.expect("has CAP");
        feed.deliver(&message).await.expect("has CAP");
        assert_eq!(feed.identifiers(), vec!["FF-B1-20240701T0000Z-v1"]);
        assert_eq!(feed.message("FF-B1-20240701T0000Z-v1"), message.cap_xml);
        let empty = self::feed(1).render_atom();
        assert!(empty.contains("<updated>1970-01-01T08:00:00+08:00</updated>"));
        assert!(!empty.contains("<entry>"));
    }

    #[test]
    fn settings_and_escapes() {
        assert_eq!(CapFeedConfig::default().validate("c"), Ok(()));
        let http_id = CapFeedConfig {
            feed_id: "http://x/feed".into(),
            ..CapFeedConfig::default()
        };
        assert!(http_id.validate("c").is_err());
        let no_base = CapFeedConfig {
            base_url: "warn.example.cn".into(),
            ..CapFeedConfig::default()
        };
        assert!(no_base.validate("c").is_err());
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(
            without_declaration("<?xml version=\"1.0\"?>\n<alert/>"),
            "<alert/>"
        );
        assert_eq!(without_declaration("<alert/>"), "<alert/>");
    }
}
