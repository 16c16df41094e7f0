//! OASIS CAP 1.2 (Common Alerting Protocol) for warnings: renders each published warning version
//! as a CAP alert, checks what the XML schema cannot, and parses CAP alerts of other agencies.
//!
//! # Out
//! [`CapAlert::from_warning`] maps a [`WarningEvent`] to a [`CapAlert`]: version 1 is an `Alert`,
//! later versions `Update`s and a cancellation a `Cancel`, each listing the earlier messages of
//! its thread in `references`. [`CapAlert::to_xml`] writes the XML by hand, [`render`] does both
//! after [`CapAlert::check`]. The zh-CN `<info>` always comes first; an en-US one follows when
//! [`CapSettings::english`] is set.
//!
//! # Times
//! Every time is written in Beijing time with a numeric offset (`2024-07-01T08:30:00+08:00`),
//! the clock Xinjiang's warnings are read by (hazards.md, Conventions); the schema pattern
//! forbids `Z` and fractional seconds, so both are refused on input too.
//!
//! # In
//! [`CapAlert::parse`] reads an alert from another agency into the same [`CapAlert`]: it checks
//! the namespace, the mandatory elements, the schema order, the enumerations and the time
//! pattern, then runs [`CapAlert::check`]. Elements we do not keep (`source`, `restriction`,
//! `addresses`, `code`, `note`, `incidents`, `audience`, `resource`, `altitude`, `ceiling`) are
//! checked for order and dropped. [`CapAlert::level`] maps an alert to one of our four levels.
//!
//! # Mappings (hazards.md §9.1, §9.3)
//! - Category: flash floods and snowmelt floods are `Met`, CAP 1.2 §3.2.2 defining `Met` as
//!   "Meteorological (inc. flood)" whatever feeds the flood; debris flows and landslides are
//!   `Geo`, "Geophysical (inc. landslide)": a debris flow is a mass movement even when rain
//!   triggers it; lightning fires are `Fire`.
//! - Severity: blue → Minor, yellow → Moderate, orange → Severe, red → Extreme. This is the
//!   order-preserving mapping of hazards.md §9.1, ours and **[UNCONFIRMED]** as an official
//!   profile rule, so the colour also travels as the `warningLevel` parameter.
//! - Urgency and certainty: ours, **[UNCONFIRMED]**, after the hazards.md §9.3 wording: red →
//!   Immediate/Likely, orange → Expected/Likely, yellow → Expected/Possible, blue →
//!   Future/Possible; a cancellation or an all-clear is urgency Past.
//! - responseType: monitor → Monitor, prepare to evacuate → Prepare, evacuate immediately →
//!   Evacuate, all clear (and every cancellation) → AllClear.

use std::collections::BTreeSet;
use std::fmt;

use roxmltree::Node;
use serde::{Deserialize, Serialize};

use crate::ids::{AreaCode, WarningId};
use crate::region::{AdminLevel, Region};
use crate::time::EventTime;
use crate::warning::{Action, Evidence, Hazard, Level, Status, WarningEvent};

/// The XML namespace of CAP 1.2.
pub const CAP_NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";
/// The namespace of XML signatures, the only foreign elements an alert may end with.
const XMLDSIG_NAMESPACE: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The `geocode` valueName of the Chinese administrative division codes.
pub const GEOCODE_GB2260: &str = "GB/T 2260";
/// The parameter carrying the warning colour, read back by [`CapInfo::level`].
pub const LEVEL_PARAMETER: &str = "warningLevel";
/// Separator of the names in an `areaDesc`.
const NAME_SEPARATOR: &str = "、";
/// The headline names at most this many areas, then counts the rest.
const HEADLINE_AREAS: usize = 3;

macro_rules! cap_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in schema order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Returns the CAP spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses the CAP spelling, case-sensitive as in the schema; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|value| value.as_str() == text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

cap_enum!(
    /// `alert/status`: who the message is for.
    CapStatus {
        /// Actionable by all targeted recipients.
        Actual = "Actual",
        /// Only for exercise participants.
        Exercise = "Exercise",
        /// For network functions.
        System = "System",
        /// Technical testing only; all recipients disregard it.
        Test = "Test",
        /// A preliminary template or draft, not actionable.
        Draft = "Draft",
    }
);

cap_enum!(
    /// `alert/msgType`: what the message does to its thread.
    MsgType {
        /// Initial information.
        Alert = "Alert",
        /// Updates and supersedes the referenced messages.
        Update = "Update",
        /// Cancels the referenced messages.
        Cancel = "Cancel",
        /// Acknowledges receipt.
        Ack = "Ack",
        /// Rejects the referenced messages.
        Error = "Error",
    }
);

cap_enum!(
    /// `alert/scope`: who may receive the message.
    Scope {
        /// Unrestricted.
        Public = "Public",
        /// Users with a known operational need.
        Restricted = "Restricted",
        /// The listed addresses only.
        Private = "Private",
    }
);

cap_enum!(
    /// `info/category`.
    Category {
        /// Geophysical (including landslide).
        Geo = "Geo",
        /// Meteorological (including flood).
        Met = "Met",
        /// General emergency and public safety.
        Safety = "Safety",
        /// Law enforcement, military, homeland and local/private security.
        Security = "Security",
        /// Rescue and recovery.
        Rescue = "Rescue",
        /// Fire suppression and rescue.
        Fire = "Fire",
        /// Medical and public health.
        Health = "Health",
        /// Pollution and other environmental.
        Env = "Env",
        /// Public and private transportation.
        Transport = "Transport",
        /// Utility, telecommunication, other non-transport infrastructure.
        Infra = "Infra",
        /// Chemical, biological, radiological, nuclear or high-yield explosive.
        Cbrne = "CBRNE",
        /// Other events.
        Other = "Other",
    }
);

cap_enum!(
    /// `info/responseType`: the action recommended to the audience.
    ResponseType {
        /// Take shelter in place.
        Shelter = "Shelter",
        /// Relocate.
        Evacuate = "Evacuate",
        /// Make preparations.
        Prepare = "Prepare",
        /// Execute a pre-planned activity.
        Execute = "Execute",
        /// Avoid the subject event.
        Avoid = "Avoid",
        /// Attend to information sources.
        Monitor = "Monitor",
        /// Evaluate the information.
        Assess = "Assess",
        /// The event no longer poses a threat.
        AllClear = "AllClear",
        /// No action recommended.
        None = "None",
    }
);

cap_enum!(
    /// `info/urgency`: how soon to act.
    Urgency {
        /// Act now.
        Immediate = "Immediate",
        /// Act soon (within the next hour).
        Expected = "Expected",
        /// Act in the near future.
        Future = "Future",
        /// Action is no longer required.
        Past = "Past",
        /// Not known.
        Unknown = "Unknown",
    }
);

cap_enum!(
    /// `info/severity`: how bad the event is.
    Severity {
        /// Extraordinary threat to life or property.
        Extreme = "Extreme",
        /// Significant threat to life or property.
        Severe = "Severe",
        /// Possible threat to life or property.
        Moderate = "Moderate",
        /// Minimal to no known threat to life or property.
        Minor = "Minor",
        /// Not known.
        Unknown = "Unknown",
    }
);

cap_enum!(
    /// `info/certainty`: how likely the event is.
    Certainty {
        /// Determined to have occurred or to be ongoing.
        Observed = "Observed",
        /// Likely (p > ~50 %).
        Likely = "Likely",
        /// Possible but not likely (p <= ~50 %).
        Possible = "Possible",
        /// Not expected to occur (p ~ 0).
        Unlikely = "Unlikely",
        /// Not known.
        Unknown = "Unknown",
    }
);

/// How this node signs its CAP messages (`[cap]` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CapSettings {
    /// `alert/sender`: the issuing system, unique worldwide (an e-mail style address or a
    /// domain); no spaces, commas, `<` or `&`.
    pub sender: String,
    /// `info/senderName` in the zh-CN info: the issuing organisation as people read it.
    pub sender_name: String,
    /// `info/senderName` in the en-US info.
    pub sender_name_en: String,
    /// `alert/status`: `Actual` in production, `Exercise` or `Test` for drills and test
    /// systems.
    pub status: CapStatus,
    /// `info/web`: an absolute http(s) address with more about the warnings, if any.
    #[serde(default)]
    pub web: Option<String>,
    /// `info/contact`: whom to call about the warnings, if anyone.
    #[serde(default)]
    pub contact: Option<String>,
    /// Adds an en-US `<info>` after the zh-CN one.
    #[serde(default)]
    pub english: bool,
}

impl CapSettings {
    /// Checks the sender and the web address.
    ///
    /// # Errors
    /// [`CapError::Empty`], [`CapError::ForbiddenCharacter`] or [`CapError::BadValue`] naming
    /// the offending setting.
    pub fn validate(&self) -> Result<(), CapError> {
        check_token("sender", &self.sender)?;
        for (field, name) in [
            ("sender-name", &self.sender_name),
            ("sender-name-en", &self.sender_name_en),
        ] {
            if name.trim().is_empty() {
                return Err(CapError::Empty {
                    field: field.to_owned(),
                });
            }
        }
        if let Some(web) = &self.web {
            let absolute = web.starts_with("https://") || web.starts_with("http://");
            if !absolute || web.contains(char::is_whitespace) {
                return Err(CapError::BadValue {
                    field: "web".to_owned(),
                    value: web.clone(),
                    expected: "an absolute http(s) address without spaces".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Returns settings of a test sender with status `Test`.
    #[cfg(test)]
    pub(crate) fn for_test() -> Self {
        Self {
            sender: "tianshan@ews.example.invalid".to_owned(),
            sender_name: "天山灾害预警测试系统".to_owned(),
            sender_name_en: "Tianshan hazard warning test system".to_owned(),
            status: CapStatus::Test,
            web: Some("https://ews.example.invalid/warnings".to_owned()),
            contact: None,
            english: false,
        }
    }
}

/// Why a CAP message could not be rendered, checked or parsed. `field` is a path such as
/// `alert.info[0].area[0].polygon[1]`, or a setting name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CapError {
    /// The text is not well-formed XML (or has a DTD, which we refuse).
    #[error("not well-formed xml: {reason}")]
    Xml {
        /// The parser's message, with line and column.
        reason: String,
    },
    /// The root element is not `alert` in the CAP 1.2 namespace.
    #[error("root element is `{name}` in namespace `{namespace}`, not a CAP 1.2 alert")]
    NotCap {
        /// The root's namespace (empty when none).
        namespace: String,
        /// The root's local name.
        name: String,
    },
    /// A mandatory element is missing (or, for `alert.references`, an Update or Cancel has none).
    #[error("{field}: missing")]
    Missing {
        /// The missing element.
        field: String,
    },
    /// An element that may appear once appears again.
    #[error("{field}: appears more than once")]
    Duplicate {
        /// The repeated element.
        field: String,
    },
    /// An element comes after one the schema puts later.
    #[error("{field}: comes after {after}, against the schema order")]
    OutOfOrder {
        /// The misplaced element.
        field: String,
        /// The element it follows.
        after: String,
    },
    /// An element the schema does not have at this place.
    #[error("{field}: not an element of CAP 1.2 here")]
    UnknownElement {
        /// The element.
        field: String,
    },
    /// A value outside its enumeration, pattern or number syntax.
    #[error("{field}: `{value}` is not {expected}")]
    BadValue {
        /// The element or setting.
        field: String,
        /// The offending text.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// A value that must not be empty is empty.
    #[error("{field}: empty")]
    Empty {
        /// The element or setting.
        field: String,
    },
    /// An identifier or sender with a space, comma, `<` or `&` (CAP 1.2 §3.2.1).
    #[error("{field}: `{value}` contains whitespace, a comma, `<` or `&`")]
    ForbiddenCharacter {
        /// The element or setting.
        field: String,
        /// The offending text.
        value: String,
    },
    /// A polygon with fewer than four points (a triangle plus the closing point).
    #[error("{field}: {points} points, a polygon needs at least 4")]
    PolygonTooShort {
        /// The polygon.
        field: String,
        /// Its number of points.
        points: usize,
    },
    /// A polygon whose last point is not its first.
    #[error("{field}: not closed, the last point differs from the first")]
    PolygonNotClosed {
        /// The polygon.
        field: String,
    },
    /// A latitude outside [-90, 90], a longitude outside [-180, 180], or a non-finite one.
    #[error("{field}: coordinate {lat},{lon} is out of range")]
    CoordinateOutOfRange {
        /// The polygon or circle.
        field: String,
        /// The latitude.
        lat: f64,
        /// The longitude.
        lon: f64,
    },
    /// A time that must come after another does not.
    #[error("{field}: {value} is not after {other} ({other_value})")]
    TimeOrder {
        /// The later time (e.g. `alert.info[0].expires`).
        field: String,
        /// Its value.
        value: EventTime,
        /// The earlier time (e.g. `alert.sent`).
        other: String,
        /// Its value.
        other_value: EventTime,
    },
    /// A `references` entry that is malformed or cannot be an earlier message.
    #[error("{field}: {reason}")]
    BadReference {
        /// Always `alert.references`.
        field: String,
        /// What is wrong with which entry.
        reason: String,
    },
    /// A warning's area code that the region does not know.
    #[error("area_codes: {code} is not an administrative unit of the region")]
    UnknownArea {
        /// The code.
        code: AreaCode,
    },
}

impl CapError {
    /// Returns the element path or setting the error is about (`document` for malformed XML,
    /// `area_codes` for an unknown area code).
    pub fn field(&self) -> &str {
        match self {
            Self::Xml { .. } => "document",
            Self::NotCap { .. } => "alert",
            Self::UnknownArea { .. } => "area_codes",
            Self::Missing { field }
            | Self::Duplicate { field }
            | Self::OutOfOrder { field, .. }
            | Self::UnknownElement { field }
            | Self::BadValue { field, .. }
            | Self::Empty { field }
            | Self::ForbiddenCharacter { field, .. }
            | Self::PolygonTooShort { field, .. }
            | Self::PolygonNotClosed { field }
            | Self::CoordinateOutOfRange { field, .. }
            | Self::TimeOrder { field, .. }
            | Self::BadReference { field, .. } => field,
        }
    }
}

/// A WGS 84 point in CAP order: latitude first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

impl LatLon {
    /// Returns whether both coordinates are finite and in range.
    fn in_range(self) -> bool {
        (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lon)
    }
}

/// `area/polygon`: a closed ring of points (the first repeated last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapPolygon {
    /// The points, first = last.
    pub points: Vec<LatLon>,
}

impl CapPolygon {
    /// Returns the closed rectangle of a `(min_lon, min_lat, max_lon, max_lat)` box, the order
    /// of [`crate::boundaries::CountyShape::bbox`].
    pub fn from_bbox((min_lon, min_lat, max_lon, max_lat): (f64, f64, f64, f64)) -> Self {
        let corner = |lat, lon| LatLon { lat, lon };
        Self {
            points: vec![
                corner(min_lat, min_lon),
                corner(min_lat, max_lon),
                corner(max_lat, max_lon),
                corner(max_lat, min_lon),
                corner(min_lat, min_lon),
            ],
        }
    }
}

/// `area/circle`: a centre and a radius.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CapCircle {
    /// The centre.
    pub centre: LatLon,
    /// The radius in kilometres.
    pub radius_km: f64,
}

/// A `valueName`/`value` pair (`eventCode`, `parameter`, `geocode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    /// `valueName`.
    pub name: String,
    /// `value`.
    pub value: String,
}

impl NameValue {
    /// Returns the pair `name` = `value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// `info/area`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapArea {
    /// `areaDesc`: the area in words.
    pub desc: String,
    /// `polygon`s.
    pub polygons: Vec<CapPolygon>,
    /// `circle`s.
    pub circles: Vec<CapCircle>,
    /// `geocode`s.
    pub geocodes: Vec<NameValue>,
}

/// `info`: the event in one language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapInfo {
    /// `language` (RFC 3066); the schema default `en-US` when absent.
    pub language: String,
    /// `category`, at least one.
    pub categories: Vec<Category>,
    /// `event`: the type of event in words.
    pub event: String,
    /// `responseType`s.
    pub response_types: Vec<ResponseType>,
    /// `urgency`.
    pub urgency: Urgency,
    /// `severity`.
    pub severity: Severity,
    /// `certainty`.
    pub certainty: Certainty,
    /// `eventCode`s.
    pub event_codes: Vec<NameValue>,
    /// `effective`.
    pub effective: Option<EventTime>,
    /// `onset`.
    pub onset: Option<EventTime>,
    /// `expires`.
    pub expires: Option<EventTime>,
    /// `senderName`.
    pub sender_name: Option<String>,
    /// `headline`.
    pub headline: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `instruction`.
    pub instruction: Option<String>,
    /// `web`.
    pub web: Option<String>,
    /// `contact`.
    pub contact: Option<String>,
    /// `parameter`s.
    pub parameters: Vec<NameValue>,
    /// `area`s.
    pub areas: Vec<CapArea>,
}

impl CapInfo {
    /// Returns our level of this info: the `warningLevel` colour parameter when it names one,
    /// otherwise the severity read back through the mapping of the module docs; `None` for
    /// severity `Unknown` without a colour.
    pub fn level(&self) -> Option<Level> {
        let colour = self
            .parameters
            .iter()
            .filter(|parameter| parameter.name == LEVEL_PARAMETER)
            .find_map(|parameter| {
                Level::ALL
                    .into_iter()
                    .find(|level| level.name() == parameter.value.trim())
            });
        colour.or(match self.severity {
            Severity::Extreme => Some(Level::Red),
            Severity::Severe => Some(Level::Orange),
            Severity::Moderate => Some(Level::Yellow),
            Severity::Minor => Some(Level::Blue),
            Severity::Unknown => None,
        })
    }
}

/// One entry of `alert/references`: the `sender,identifier,sent` of an earlier message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapReference {
    /// The earlier message's sender.
    pub sender: String,
    /// The earlier message's identifier.
    pub identifier: String,
    /// The earlier message's sent time.
    pub sent: EventTime,
}

impl fmt::Display for CapReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{}",
            self.sender,
            self.identifier,
            self.sent.to_beijing_rfc3339()
        )
    }
}

/// A CAP 1.2 alert: what we render, and what we keep of an alert we parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapAlert {
    /// `identifier`: unique per sender.
    pub identifier: String,
    /// `sender`.
    pub sender: String,
    /// `sent`.
    pub sent: EventTime,
    /// `status`.
    pub status: CapStatus,
    /// `msgType`.
    pub msg_type: MsgType,
    /// `scope`.
    pub scope: Scope,
    /// `references`: earlier messages of the thread, oldest first.
    pub references: Vec<CapReference>,
    /// `info` blocks.
    pub infos: Vec<CapInfo>,
}

/// Where the polygons of an [`AreaOutline`] come from; receivers read it in the `polygonSource`
/// parameter, so nobody mistakes a box for a boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolygonSource {
    /// The caller's own outline of the warned area (a basin, slope or zone).
    Outline,
    /// Bounding boxes of official county boundaries: each covers its county, and more.
    CountyBoundingBoxes,
    /// No boundaries are loaded: squares around the county centroids
    /// (±[`crate::boundaries::COARSE_HALF_SIDE_DEG`]), which only approximate the counties.
    CoarseCountySquares,
}

impl PolygonSource {
    /// Returns the value of the `polygonSource` parameter.
    fn as_str(self) -> &'static str {
        match self {
            Self::Outline => "outline",
            Self::CountyBoundingBoxes => "county-bounding-boxes",
            Self::CoarseCountySquares => "coarse-county-squares",
        }
    }
}

/// The area of a warning beyond its codes: names for `areaDesc` and polygons.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaOutline {
    /// Chinese names of the warned units, in the order of the warning's area codes.
    pub names: Vec<String>,
    /// Polygons covering the units; empty when no shape is known.
    pub polygons: Vec<CapPolygon>,
    /// Where `polygons` come from.
    pub source: PolygonSource,
}

impl AreaOutline {
    /// Returns the names of `codes` and one box per county they lie in (a township's county is
    /// its parent), in code order: the bounding box of the official boundary when the region has
    /// boundaries loaded, otherwise the coarse square around the county centroid. A prefecture
    /// or region code adds its name but no polygon.
    ///
    /// # Errors
    /// [`CapError::UnknownArea`] for a code that is not an admin unit of `region`.
    pub fn from_region(region: &Region, codes: &[AreaCode]) -> Result<Self, CapError> {
        let mut names = Vec::with_capacity(codes.len());
        let mut counties = BTreeSet::new();
        for code in codes {
            let unit = region
                .admin_units
                .get(code)
                .ok_or_else(|| CapError::UnknownArea { code: code.clone() })?;
            names.push(unit.name.clone());
            match unit.level {
                AdminLevel::County => {
                    counties.insert(code.clone());
                }
                AdminLevel::Township => counties.extend(unit.parent.clone()),
                AdminLevel::Region | AdminLevel::Prefecture => {}
            }
        }
        let polygons = counties
            .iter()
            .filter_map(|county| region.areas.shape(county))
            .map(|shape| CapPolygon::from_bbox(shape.bbox))
            .collect();
        let source = if region.areas.is_official() {
            PolygonSource::CountyBoundingBoxes
        } else {
            PolygonSource::CoarseCountySquares
        };
        Ok(Self {
            names,
            polygons,
            source,
        })
    }
}

/// Returns the CAP identifier of version `version` of warning `id`: `<id>-v<version>`, with
/// every character other than ASCII letters, digits, `-`, `_`, `.` and `:` written as `%XX` per
/// UTF-8 byte (so also `%`), which keeps identifiers free of spaces, commas, `<` and `&` and
/// two different warnings from sharing one.
pub fn identifier_for(id: &WarningId, version: u32) -> String {
    let mut identifier = String::with_capacity(id.as_str().len() + 4);
    for byte in id.as_str().bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':') {
            identifier.push(char::from(byte));
        } else {
            identifier.push_str(&format!("%{byte:02X}"));
        }
    }
    identifier.push_str(&format!("-v{version}"));
    identifier
}

/// Checks, builds and writes the CAP rendering of one warning version.
///
/// `earlier` lists the messages of the thread before this one (oldest first, each from
/// [`CapAlert::reference`]); CAP wants all of them in an Update or Cancel (hazards.md §9.3).
///
/// # Errors
/// The first failing check of [`CapAlert::check`], e.g. an Update without `earlier`.
pub fn render(
    settings: &CapSettings,
    event: &WarningEvent,
    earlier: &[CapReference],
    area: &AreaOutline,
) -> Result<String, CapError> {
    let alert = CapAlert::from_warning(settings, event, earlier, area);
    alert.check()?;
    Ok(alert.to_xml())
}

impl CapAlert {
    /// Maps one warning version to an alert (see the module docs for every mapping). Does not
    /// check it: [`render`] does.
    pub fn from_warning(
        settings: &CapSettings,
        event: &WarningEvent,
        earlier: &[CapReference],
        area: &AreaOutline,
    ) -> Self {
        // The first CAP message of a thread is an Alert whatever the version: earlier versions
        // may never have gone out as CAP (a draft replaced before sign-off, an early release to
        // responsible persons only), and an Update or Cancel must reference what it updates.
        let msg_type = match (event.status, earlier.is_empty()) {
            (_, true) => MsgType::Alert,
            (Status::Cancelled, false) => MsgType::Cancel,
            (_, false) => MsgType::Update,
        };
        let ending = event.status == Status::Cancelled || event.action == Action::AllClear;
        let response = if ending {
            ResponseType::AllClear
        } else {
            response_type_of(event.action)
        };
        let urgency = if ending {
            Urgency::Past
        } else {
            urgency_of(event.level)
        };
        let cap_area = CapArea {
            desc: area.names.join(NAME_SEPARATOR),
            polygons: area.polygons.clone(),
            circles: Vec::new(),
            geocodes: event
                .area_codes
                .iter()
                .map(|code| NameValue::new(GEOCODE_GB2260, code.as_str()))
                .collect(),
        };
        let parameters = parameters_of(event, area);
        let info = |language: &str, text: Texts, sender_name: &str| CapInfo {
            language: language.to_owned(),
            categories: vec![category_of(event.hazard)],
            event: text.event,
            response_types: vec![response],
            urgency,
            severity: severity_of(event.level),
            certainty: certainty_of(event.level),
            event_codes: vec![NameValue::new("hazard", event.hazard.name())],
            effective: Some(event.issued),
            onset: Some(event.onset),
            expires: Some(event.expires),
            sender_name: Some(sender_name.to_owned()),
            headline: Some(text.headline),
            description: Some(text.description),
            instruction: Some(text.instruction),
            web: settings.web.clone(),
            contact: settings.contact.clone(),
            parameters: parameters.clone(),
            areas: vec![cap_area.clone()],
        };
        let mut infos = vec![info(
            "zh-CN",
            chinese_texts(event, &area.names, &settings.sender_name),
            &settings.sender_name,
        )];
        if settings.english {
            infos.push(info(
                "en-US",
                english_texts(event, area.names.len()),
                &settings.sender_name_en,
            ));
        }
        Self {
            identifier: identifier_for(&event.id, event.version),
            sender: settings.sender.clone(),
            sent: event.issued,
            status: settings.status,
            msg_type,
            scope: Scope::Public,
            references: earlier.to_vec(),
            infos,
        }
    }

    /// Returns the reference a later message of the thread lists for this one.
    pub fn reference(&self) -> CapReference {
        CapReference {
            sender: self.sender.clone(),
            identifier: self.identifier.clone(),
            sent: self.sent,
        }
    }

    /// Returns our level of the alert: the highest of its infos' levels ([`CapInfo::level`]).
    pub fn level(&self) -> Option<Level> {
        self.infos.iter().filter_map(CapInfo::level).max()
    }

    /// Runs the checks the schema cannot do (cap/README.md): identifier and sender characters,
    /// references (present in an Update or Cancel, well formed, earlier, not this message),
    /// `expires` after `sent` and after `effective`, non-empty `areaDesc`, polygons closed with
    /// at least four points, coordinates and circle radii in range.
    ///
    /// # Errors
    /// The first failing check, naming its field.
    pub fn check(&self) -> Result<(), CapError> {
        check_token("alert.identifier", &self.identifier)?;
        check_token("alert.sender", &self.sender)?;
        self.check_references()?;
        for (i, info) in self.infos.iter().enumerate() {
            let path = format!("alert.info[{i}]");
            if let Some(expires) = info.expires {
                let mut earlier = vec![("alert.sent".to_owned(), self.sent)];
                earlier.extend(info.effective.map(|t| (format!("{path}.effective"), t)));
                for (other, other_value) in earlier {
                    if expires <= other_value {
                        return Err(CapError::TimeOrder {
                            field: format!("{path}.expires"),
                            value: expires,
                            other,
                            other_value,
                        });
                    }
                }
            }
            for (j, area) in info.areas.iter().enumerate() {
                check_area(&format!("{path}.area[{j}]"), area)?;
            }
        }
        Ok(())
    }

    /// Checks the `references` entries.
    fn check_references(&self) -> Result<(), CapError> {
        const FIELD: &str = "alert.references";
        let needs_references = matches!(self.msg_type, MsgType::Update | MsgType::Cancel);
        if needs_references && self.references.is_empty() {
            return Err(CapError::Missing {
                field: FIELD.to_owned(),
            });
        }
        let bad = |i: usize, reason: String| CapError::BadReference {
            field: FIELD.to_owned(),
            reason: format!("entry {i}: {reason}"),
        };
        for (i, reference) in self.references.iter().enumerate() {
            for part in [&reference.sender, &reference.identifier] {
                if check_token(FIELD, part).is_err() {
                    return Err(bad(
                        i,
                        format!("`{part}` is empty or has whitespace, a comma, `<` or `&`"),
                    ));
                }
            }
            if reference.sender == self.sender && reference.identifier == self.identifier {
                return Err(bad(i, "refers to this message itself".to_owned()));
            }
            if reference.sent > self.sent {
                return Err(bad(
                    i,
                    format!(
                        "sent {} is after this message's sent {}",
                        reference.sent.to_beijing_rfc3339(),
                        self.sent.to_beijing_rfc3339()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Writes the alert as a CAP 1.2 XML document, elements in schema order, times in Beijing
    /// time.
    pub fn to_xml(&self) -> String {
        let mut xml = XmlWriter::new();
        xml.open_root("alert", CAP_NAMESPACE);
        xml.leaf("identifier", &self.identifier);
        xml.leaf("sender", &self.sender);
        xml.leaf("sent", &self.sent.to_beijing_rfc3339());
        xml.leaf("status", self.status.as_str());
        xml.leaf("msgType", self.msg_type.as_str());
        xml.leaf("scope", self.scope.as_str());
        if !self.references.is_empty() {
            let list: Vec<String> = self.references.iter().map(ToString::to_string).collect();
            xml.leaf("references", &list.join(" "));
        }
        for info in &self.infos {
            write_info(&mut xml, info);
        }
        xml.close("alert");
        xml.finish()
    }

    /// Parses a CAP 1.2 alert and runs [`CapAlert::check`] on it.
    ///
    /// # Errors
    /// [`CapError::Xml`] for malformed XML, [`CapError::NotCap`] for another root or namespace,
    /// then the first missing, repeated, misplaced, unknown or bad element, or failed check.
    pub fn parse(xml: &str) -> Result<Self, CapError> {
        let document = roxmltree::Document::parse(xml).map_err(|error| CapError::Xml {
            reason: error.to_string(),
        })?;
        let root = document.root_element();
        let name = root.tag_name();
        if name.name() != "alert" || name.namespace() != Some(CAP_NAMESPACE) {
            return Err(CapError::NotCap {
                namespace: name.namespace().unwrap_or_default().to_owned(),
                name: name.name().to_owned(),
            });
        }
        let alert = parse_alert(root)?;
        alert.check()?;
        Ok(alert)
    }
}

/// The free texts of one info block.
struct Texts {
    event: String,
    headline: String,
    description: String,
    instruction: String,
}

/// Returns the CAP category of a hazard (module docs: why floods are `Met`).
fn category_of(hazard: Hazard) -> Category {
    match hazard {
        Hazard::FlashFlood | Hazard::SnowmeltFlood => Category::Met,
        Hazard::DebrisFlow | Hazard::Landslide => Category::Geo,
        Hazard::LightningFire => Category::Fire,
    }
}

/// Returns the CAP severity of a level (hazards.md §9.1, [UNCONFIRMED]).
fn severity_of(level: Level) -> Severity {
    match level {
        Level::Blue => Severity::Minor,
        Level::Yellow => Severity::Moderate,
        Level::Orange => Severity::Severe,
        Level::Red => Severity::Extreme,
    }
}

/// Returns the CAP urgency of an active warning's level (ours, [UNCONFIRMED]).
fn urgency_of(level: Level) -> Urgency {
    match level {
        Level::Blue => Urgency::Future,
        Level::Yellow | Level::Orange => Urgency::Expected,
        Level::Red => Urgency::Immediate,
    }
}

/// Returns the CAP certainty of a level (ours, [UNCONFIRMED]).
fn certainty_of(level: Level) -> Certainty {
    match level {
        Level::Blue | Level::Yellow => Certainty::Possible,
        Level::Orange | Level::Red => Certainty::Likely,
    }
}

/// Returns the CAP response type of an action.
fn response_type_of(action: Action) -> ResponseType {
    match action {
        Action::Monitor => ResponseType::Monitor,
        Action::PrepareToEvacuate => ResponseType::Prepare,
        Action::EvacuateImmediately => ResponseType::Evacuate,
        // CAP "Execute: a pre-planned activity identified in instruction": the patrol plan.
        Action::PatrolStrikeArea => ResponseType::Execute,
        Action::StageFirefighters => ResponseType::Prepare,
        Action::AllClear => ResponseType::AllClear,
    }
}

/// Returns the parameters of a warning version: level, thread, cause, polygon source, evidence.
fn parameters_of(event: &WarningEvent, area: &AreaOutline) -> Vec<NameValue> {
    let mut parameters = vec![
        NameValue::new(LEVEL_PARAMETER, event.level.name()),
        NameValue::new("warningId", event.id.as_str()),
        NameValue::new("warningVersion", event.version.to_string()),
        NameValue::new("warningStatus", event.status.name()),
        NameValue::new("target", event.target.as_str()),
    ];
    if let Some(cause) = &event.caused_by {
        parameters.push(NameValue::new("causedBy", cause.as_str()));
    }
    if !area.polygons.is_empty() {
        parameters.push(NameValue::new("polygonSource", area.source.as_str()));
    }
    for evidence in &event.evidence {
        let name = |part: &str| format!("evidence.{}.{part}", evidence.quantity);
        parameters.push(NameValue::new(name("value"), evidence.value.to_string()));
        parameters.push(NameValue::new(
            name("threshold"),
            evidence.threshold.to_string(),
        ));
        parameters.push(NameValue::new(
            name("completeness"),
            evidence.completeness.to_string(),
        ));
        parameters.push(NameValue::new(
            name("stations"),
            evidence.stations.join(" "),
        ));
    }
    parameters
}

/// Returns the Chinese event name.
fn chinese_event(hazard: Hazard) -> &'static str {
    match hazard {
        Hazard::FlashFlood => "山洪",
        Hazard::DebrisFlow => "泥石流",
        Hazard::Landslide => "滑坡",
        Hazard::LightningFire => "雷击火险",
        Hazard::SnowmeltFlood => "融雪性洪水",
    }
}

/// Returns the colour, the level numeral and the level word of the Chinese scale (CMA Order 16).
fn chinese_level(level: Level) -> (&'static str, &'static str, &'static str) {
    match level {
        Level::Blue => ("蓝色", "Ⅳ", "一般"),
        Level::Yellow => ("黄色", "Ⅲ", "较重"),
        Level::Orange => ("橙色", "Ⅱ", "严重"),
        Level::Red => ("红色", "Ⅰ", "特别严重"),
    }
}

/// Formats an instant as Beijing time for readers: `2024年7月1日08时30分`.
fn chinese_time(at: EventTime) -> String {
    let text = at.to_beijing_rfc3339();
    let number = |range: std::ops::Range<usize>| text[range].trim_start_matches('0').to_owned();
    format!(
        "{}年{}月{}日{}时{}分",
        &text[0..4],
        number(5..7),
        number(8..10),
        &text[11..13],
        &text[14..16]
    )
}

/// Returns the area names for a headline: up to three, then `等N地`.
fn headline_area(names: &[String]) -> String {
    let shown = names[..names.len().min(HEADLINE_AREAS)].join(NAME_SEPARATOR);
    if names.len() > HEADLINE_AREAS {
        format!("{shown}等{}地", names.len())
    } else {
        shown
    }
}

/// Returns the zh-CN texts of a warning version.
fn chinese_texts(event: &WarningEvent, names: &[String], sender_name: &str) -> Texts {
    let hazard = chinese_event(event.hazard);
    let (colour, numeral, word) = chinese_level(event.level);
    let area = headline_area(names);
    let grade = format!("{colour}预警[{numeral}级/{word}]");
    let headline = match event.status {
        Status::Issued => format!("{area}{hazard}{grade}"),
        Status::Upgraded => format!("{area}{hazard}预警升级为{grade}"),
        Status::Downgraded => format!("{area}{hazard}预警降级为{grade}"),
        Status::Renewed => format!("{area}{hazard}{grade}继续生效"),
        Status::Cancelled => format!("解除{area}{hazard}{colour}预警"),
    };
    let when = chinese_time(event.issued);
    let until = chinese_time(event.expires);
    let all_names = names.join(NAME_SEPARATOR);
    let mut lines = vec![match event.status {
        Status::Cancelled => format!("{sender_name}于{when}解除{all_names}{hazard}{colour}预警。"),
        _ => format!("{sender_name}于{when}发布：{all_names}{hazard}{grade}，有效期至{until}。"),
    }];
    lines.push(format!("预警对象：{}。", event.target));
    if let Some(cause) = &event.caused_by {
        lines.push(format!("本预警由预警 {cause} 引发（灾害链）。"));
    }
    lines.extend(event.evidence.iter().map(chinese_evidence));
    let instruction = match (event.status, event.action) {
        (Status::Cancelled, _) | (_, Action::AllClear) => {
            "危险已解除。已转移人员须经当地政府确认安全后方可返回。"
        }
        (_, Action::EvacuateImmediately) => {
            "请危险区内人员立即转移到安全地带，听从当地政府和村组责任人指挥。"
        }
        (_, Action::PrepareToEvacuate) => {
            "请危险区内人员做好转移准备，密切关注预警信息，接到转移指令后立即撤离。"
        }
        (_, Action::Monitor) => "请密切关注预警信息和周边变化，远离河道、沟谷和陡坡等危险地带。",
        (_, Action::PatrolStrikeArea) => {
            "请护林员和草原管护员对雷击区加强巡护，发现烟点立即报告，严禁野外用火。"
        }
        (_, Action::StageFirefighters) => {
            "请扑火队伍靠前驻防、随时待命，护林员对雷击区加密巡护，发现火情立即报告并处置。"
        }
    };
    Texts {
        event: hazard.to_owned(),
        headline,
        description: lines.join("\n"),
        instruction: instruction.to_owned(),
    }
}

/// Returns one evidence line in Chinese.
fn chinese_evidence(evidence: &Evidence) -> String {
    format!(
        "监测依据：{} 实测 {}，阈值 {}，数据完整率 {}%，站点 {}。",
        evidence.quantity,
        evidence.value,
        evidence.threshold,
        (evidence.completeness * 100.0).round(),
        evidence.stations.join("、")
    )
}

/// Returns the en-US texts of a warning version.
fn english_texts(event: &WarningEvent, area_count: usize) -> Texts {
    let hazard = match event.hazard {
        Hazard::FlashFlood => "Flash flood",
        Hazard::DebrisFlow => "Debris flow",
        Hazard::Landslide => "Landslide",
        Hazard::LightningFire => "Lightning fire",
        Hazard::SnowmeltFlood => "Snowmelt flood",
    };
    let grade = format!("{} (level {})", event.level.name(), event.level.roman());
    let headline = match event.status {
        Status::Issued => format!("{hazard} warning {grade} issued for {area_count} area(s)"),
        Status::Upgraded => format!("{hazard} warning raised to {grade}"),
        Status::Downgraded => format!("{hazard} warning lowered to {grade}"),
        Status::Renewed => format!("{hazard} warning {grade} renewed"),
        Status::Cancelled => format!("{hazard} warning {grade} cancelled"),
    };
    let mut lines = vec![match event.status {
        Status::Cancelled => format!("{headline}."),
        _ => format!(
            "{headline}. Valid until {}.",
            event.expires.to_beijing_rfc3339()
        ),
    }];
    lines.push(format!("Target: {}.", event.target));
    if let Some(cause) = &event.caused_by {
        lines.push(format!("Raised by warning {cause} (hazard chain)."));
    }
    lines.extend(event.evidence.iter().map(|evidence| {
        format!(
            "Evidence: {} = {} against threshold {}, data completeness {}%, stations {}.",
            evidence.quantity,
            evidence.value,
            evidence.threshold,
            (evidence.completeness * 100.0).round(),
            evidence.stations.join(", ")
        )
    }));
    let instruction = match (event.status, event.action) {
        (Status::Cancelled, _) | (_, Action::AllClear) => {
            "The danger has passed. Return only when the local government says it is safe."
        }
        (_, Action::EvacuateImmediately) => {
            "Leave the danger zone for safe ground now and follow the local officials."
        }
        (_, Action::PrepareToEvacuate) => {
            "Prepare to evacuate, follow the warnings and leave when told to."
        }
        (_, Action::Monitor) => {
            "Follow the warnings and stay away from river channels, gullies and steep slopes."
        }
        (_, Action::PatrolStrikeArea) => {
            "Rangers: patrol the struck area and report any smoke at once. No open fires."
        }
        (_, Action::StageFirefighters) => {
            "Firefighting crews: stand by near the zone. Rangers: patrol the struck area closely."
        }
    };
    Texts {
        event: hazard.to_owned(),
        headline,
        description: lines.join("\n"),
        instruction: instruction.to_owned(),
    }
}

/// Fails with [`CapError::Empty`] or [`CapError::ForbiddenCharacter`] unless `value` is a
/// non-empty token without whitespace, commas, `<` or `&` (CAP 1.2 §3.2.1, identifier and sender).
fn check_token(field: &str, value: &str) -> Result<(), CapError> {
    if value.is_empty() {
        return Err(CapError::Empty {
            field: field.to_owned(),
        });
    }
    if value.contains(|c: char| c.is_whitespace() || matches!(c, ',' | '<' | '&')) {
        return Err(CapError::ForbiddenCharacter {
            field: field.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Checks one area: description, polygons, circles.
fn check_area(path: &str, area: &CapArea) -> Result<(), CapError> {
    if area.desc.trim().is_empty() {
        return Err(CapError::Empty {
            field: format!("{path}.areaDesc"),
        });
    }
    for (k, polygon) in area.polygons.iter().enumerate() {
        let field = format!("{path}.polygon[{k}]");
        let points = &polygon.points;
        if points.len() < 4 {
            return Err(CapError::PolygonTooShort {
                field,
                points: points.len(),
            });
        }
        if let Some(point) = points.iter().find(|point| !point.in_range()) {
            return Err(CapError::CoordinateOutOfRange {
                field,
                lat: point.lat,
                lon: point.lon,
            });
        }
        if points.first() != points.last() {
            return Err(CapError::PolygonNotClosed { field });
        }
    }
    for (k, circle) in area.circles.iter().enumerate() {
        let field = format!("{path}.circle[{k}]");
        if !circle.centre.in_range() {
            return Err(CapError::CoordinateOutOfRange {
                field,
                lat: circle.centre.lat,
                lon: circle.centre.lon,
            });
        }
        if !(circle.radius_km.is_finite() && circle.radius_km >= 0.0) {
            return Err(CapError::BadValue {
                field,
                value: circle.radius_km.to_string(),
                expected: "a finite, non-negative radius in km".to_owned(),
            });
        }
    }
    Ok(())
}

/// Writes one info block.
fn write_info(xml: &mut XmlWriter, info: &CapInfo) {
    xml.open("info");
    xml.leaf("language", &info.language);
    for category in &info.categories {
        xml.leaf("category", category.as_str());
    }
    xml.leaf("event", &info.event);
    for response in &info.response_types {
        xml.leaf("responseType", response.as_str());
    }
    xml.leaf("urgency", info.urgency.as_str());
    xml.leaf("severity", info.severity.as_str());
    xml.leaf("certainty", info.certainty.as_str());
    for code in &info.event_codes {
        xml.pair("eventCode", code);
    }
    for (name, time) in [
        ("effective", info.effective),
        ("onset", info.onset),
        ("expires", info.expires),
    ] {
        if let Some(time) = time {
            xml.leaf(name, &time.to_beijing_rfc3339());
        }
    }
    for (name, text) in [
        ("senderName", &info.sender_name),
        ("headline", &info.headline),
        ("description", &info.description),
        ("instruction", &info.instruction),
        ("web", &info.web),
        ("contact", &info.contact),
    ] {
        if let Some(text) = text {
            xml.leaf(name, text);
        }
    }
    for parameter in &info.parameters {
        xml.pair("parameter", parameter);
    }
    for area in &info.areas {
        xml.open("area");
        xml.leaf("areaDesc", &area.desc);
        for polygon in &area.polygons {
            let points: Vec<String> = polygon
                .points
                .iter()
                .map(|point| format!("{},{}", point.lat, point.lon))
                .collect();
            xml.leaf("polygon", &points.join(" "));
        }
        for circle in &area.circles {
            let centre = circle.centre;
            let text = format!("{},{} {}", centre.lat, centre.lon, circle.radius_km);
            xml.leaf("circle", &text);
        }
        for geocode in &area.geocodes {
            xml.pair("geocode", geocode);
        }
        xml.close("area");
    }
    xml.close("info");
}

/// A minimal pretty-printing XML writer: elements and escaped text, two-space indent.
struct XmlWriter {
    out: String,
    depth: usize,
}

impl XmlWriter {
    fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            depth: 0,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open_root(&mut self, name: &str, namespace: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        escape_into(&mut self.out, namespace);
        self.out.push_str("\">\n");
        self.depth += 1;
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        debug_assert!(self.depth > 0, "close without open");
        self.depth -= 1;
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn pair(&mut self, name: &str, pair: &NameValue) {
        self.open(name);
        self.leaf("valueName", &pair.name);
        self.leaf("value", &pair.value);
        self.close(name);
    }

    fn finish(self) -> String {
        debug_assert_eq!(self.depth, 0, "unclosed elements");
        self.out
    }
}

/// Appends `text` escaped for element content and attribute values. Characters XML 1.0 cannot
/// carry at all (C0 controls other than tab, newline and carriage return, U+FFFE, U+FFFF)
/// become U+FFFD, so a stray byte in a station name cannot make the document unreadable.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// `(element, may repeat)` in schema order, for each complex type we read.
type Sequence = &'static [(&'static str, bool)];

const ALERT_SEQUENCE: Sequence = &[
    ("identifier", false),
    ("sender", false),
    ("sent", false),
    ("status", false),
    ("msgType", false),
    ("source", false),
    ("scope", false),
    ("restriction", false),
    ("addresses", false),
    ("code", true),
    ("note", false),
    ("references", false),
    ("incidents", false),
    ("info", true),
];

const INFO_SEQUENCE: Sequence = &[
    ("language", false),
    ("category", true),
    ("event", false),
    ("responseType", true),
    ("urgency", false),
    ("severity", false),
    ("certainty", false),
    ("audience", false),
    ("eventCode", true),
    ("effective", false),
    ("onset", false),
    ("expires", false),
    ("senderName", false),
    ("headline", false),
    ("description", false),
    ("instruction", false),
    ("web", false),
    ("contact", false),
    ("parameter", true),
    ("resource", true),
    ("area", true),
];

const AREA_SEQUENCE: Sequence = &[
    ("areaDesc", false),
    ("polygon", true),
    ("circle", true),
    ("geocode", true),
    ("altitude", false),
    ("ceiling", false),
];

const PAIR_SEQUENCE: Sequence = &[("valueName", false), ("value", false)];

/// The CAP children of one element, checked against its sequence.
struct Children<'a, 'input> {
    path: String,
    nodes: Vec<(&'static str, Node<'a, 'input>)>,
}

impl<'a, 'input> Children<'a, 'input> {
    /// Collects the element children of `node`, failing on unknown, misplaced or repeated ones.
    /// XML signatures may close an alert and are skipped.
    fn of(node: Node<'a, 'input>, path: String, sequence: Sequence) -> Result<Self, CapError> {
        let mut nodes = Vec::new();
        let mut last: Option<usize> = None;
        for child in node.children().filter(Node::is_element) {
            let tag = child.tag_name();
            let field = format!("{path}.{}", tag.name());
            if tag.namespace() == Some(XMLDSIG_NAMESPACE) && sequence == ALERT_SEQUENCE {
                continue;
            }
            let position = sequence
                .iter()
                .position(|(name, _)| *name == tag.name())
                .filter(|_| tag.namespace() == Some(CAP_NAMESPACE))
                .ok_or_else(|| CapError::UnknownElement {
                    field: field.clone(),
                })?;
            if let Some(previous) = last {
                let (previous_name, repeats) = sequence[previous];
                if position < previous {
                    return Err(CapError::OutOfOrder {
                        field,
                        after: format!("{path}.{previous_name}"),
                    });
                }
                if position == previous && !repeats {
                    return Err(CapError::Duplicate { field });
                }
            }
            last = Some(position);
            nodes.push((sequence[position].0, child));
        }
        Ok(Self { path, nodes })
    }

    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Node<'a, 'input>> + 's {
        self.nodes
            .iter()
            .filter(move |(element, _)| *element == name)
            .map(|(_, node)| *node)
    }

    fn optional_text(&self, name: &str) -> Option<&'a str> {
        self.all(name).next().map(|node| node.text().unwrap_or(""))
    }

    fn required_text(&self, name: &str) -> Result<&'a str, CapError> {
        self.optional_text(name).ok_or_else(|| CapError::Missing {
            field: self.field(name),
        })
    }

    /// Returns the trimmed text of `name` parsed by `parse`, or a [`CapError::BadValue`].
    fn required_enum<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        all: &[T],
    ) -> Result<T, CapError>
    where
        T: fmt::Display,
    {
        let text = self.required_text(name)?.trim();
        parse(text).ok_or_else(|| bad_enum(self.field(name), text, all))
    }

    fn optional_time(&self, name: &str) -> Result<Option<EventTime>, CapError> {
        self.optional_text(name)
            .map(|text| parse_time(&self.field(name), text))
            .transpose()
    }
}

/// Returns the error for a value outside an enumeration.
fn bad_enum<T: fmt::Display>(field: String, value: &str, all: &[T]) -> CapError {
    let names: Vec<String> = all.iter().map(ToString::to_string).collect();
    CapError::BadValue {
        field,
        value: value.to_owned(),
        expected: format!("one of {}", names.join(", ")),
    }
}

/// Parses a CAP time: exactly `YYYY-MM-DDThh:mm:ss±hh:mm` (the schema pattern; no `Z`, no
/// fractional seconds).
fn parse_time(field: &str, text: &str) -> Result<EventTime, CapError> {
    let text = text.trim();
    let bad = || CapError::BadValue {
        field: field.to_owned(),
        value: text.to_owned(),
        expected: "a time YYYY-MM-DDThh:mm:ss+hh:mm (numeric offset, no fractions)".to_owned(),
    };
    let shape = b"dddd-dd-ddTdd:dd:dd+dd:dd";
    let matches_shape = text.len() == shape.len()
        && text.bytes().zip(shape).all(|(byte, &want)| match want {
            b'd' => byte.is_ascii_digit(),
            b'+' => byte == b'+' || byte == b'-',
            _ => byte == want,
        });
    if !matches_shape {
        return Err(bad());
    }
    EventTime::parse_rfc3339(text).map_err(|_| bad())
}

/// Reads the `alert` element.
fn parse_alert(root: Node<'_, '_>) -> Result<CapAlert, CapError> {
    let children = Children::of(root, "alert".to_owned(), ALERT_SEQUENCE)?;
    let identifier = children.required_text("identifier")?.trim().to_owned();
    let sender = children.required_text("sender")?.trim().to_owned();
    let sent = parse_time(&children.field("sent"), children.required_text("sent")?)?;
    let status = children.required_enum("status", CapStatus::parse, CapStatus::ALL)?;
    let msg_type = children.required_enum("msgType", MsgType::parse, MsgType::ALL)?;
    let scope = children.required_enum("scope", Scope::parse, Scope::ALL)?;
    let references = children
        .optional_text("references")
        .map(|text| parse_references(&children.field("references"), text))
        .transpose()?
        .unwrap_or_default();
    let infos = children
        .all("info")
        .enumerate()
        .map(|(i, node)| parse_info(node, format!("alert.info[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(CapAlert {
        identifier,
        sender,
        sent,
        status,
        msg_type,
        scope,
        references,
        infos,
    })
}

/// Parses `references`: space-separated `sender,identifier,sent` triples.
fn parse_references(field: &str, text: &str) -> Result<Vec<CapReference>, CapError> {
    let bad = |reason: String| CapError::BadReference {
        field: field.to_owned(),
        reason,
    };
    let entries: Vec<&str> = text.split_whitespace().collect();
    if entries.is_empty() {
        return Err(bad("empty".to_owned()));
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let parts: Vec<&str> = entry.split(',').collect();
            let [sender, identifier, sent] = parts[..] else {
                return Err(bad(format!(
                    "entry {i} `{entry}` is not sender,identifier,sent"
                )));
            };
            if sender.is_empty() || identifier.is_empty() {
                return Err(bad(format!(
                    "entry {i} `{entry}` has an empty sender or identifier"
                )));
            }
            let sent = parse_time(field, sent)
                .map_err(|_| bad(format!("entry {i} `{entry}` has a malformed sent time")))?;
            Ok(CapReference {
                sender: sender.to_owned(),
                identifier: identifier.to_owned(),
                sent,
            })
        })
        .collect()
}

/// Reads one `info` element.
fn parse_info(node: Node<'_, '_>, path: String) -> Result<CapInfo, CapError> {
    let children = Children::of(node, path, INFO_SEQUENCE)?;
    let categories = children
        .all("category")
        .map(|node| {
            let text = node.text().unwrap_or("").trim();
            Category::parse(text)
                .ok_or_else(|| bad_enum(children.field("category"), text, Category::ALL))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if categories.is_empty() {
        return Err(CapError::Missing {
            field: children.field("category"),
        });
    }
    let response_types = children
        .all("responseType")
        .map(|node| {
            let text = node.text().unwrap_or("").trim();
            ResponseType::parse(text)
                .ok_or_else(|| bad_enum(children.field("responseType"), text, ResponseType::ALL))
        })
        .collect::<Result<_, _>>()?;
    let pairs = |name: &str| -> Result<Vec<NameValue>, CapError> {
        children
            .all(name)
            .enumerate()
            .map(|(k, node)| parse_pair(node, format!("{}[{k}]", children.field(name))))
            .collect()
    };
    let text = |name: &str| children.optional_text(name).map(str::to_owned);
    Ok(CapInfo {
        language: children
            .optional_text("language")
            .map_or("en-US", str::trim)
            .to_owned(),
        categories,
        event: children.required_text("event")?.to_owned(),
        response_types,
        urgency: children.required_enum("urgency", Urgency::parse, Urgency::ALL)?,
        severity: children.required_enum("severity", Severity::parse, Severity::ALL)?,
        certainty: children.required_enum("certainty", Certainty::parse, Certainty::ALL)?,
        event_codes: pairs("eventCode")?,
        effective: children.optional_time("effective")?,
        onset: children.optional_time("onset")?,
        expires: children.optional_time("expires")?,
        sender_name: text("senderName"),
        headline: text("headline"),
        description: text("description"),
        instruction: text("instruction"),
        web: children
            .optional_text("web")
            .map(|web| web.trim().to_owned()),
        contact: text("contact"),
        parameters: pairs("parameter")?,
        areas: children
            .all("area")
            .enumerate()
            .map(|(k, node)| parse_area(node, format!("{}[{k}]", children.field("area"))))
            .collect::<Result<_, _>>()?,
    })
}

/// Reads one `area` element.
fn parse_area(node: Node<'_, '_>, path: String) -> Result<CapArea, CapError> {
    let children = Children::of(node, path, AREA_SEQUENCE)?;
    let polygons = children
        .all("polygon")
        .enumerate()
        .map(|(k, node)| {
            let field = format!("{}[{k}]", children.field("polygon"));
            let text = node.text().unwrap_or("");
            let points = text
                .split_whitespace()
                .map(|pair| parse_point(&field, pair))
                .collect::<Result<_, _>>()?;
            Ok(CapPolygon { points })
        })
        .collect::<Result<_, CapError>>()?;
    let circles = children
        .all("circle")
        .enumerate()
        .map(|(k, node)| parse_circle(&format!("{}[{k}]", children.field("circle")), node))
        .collect::<Result<_, _>>()?;
    let geocodes = children
        .all("geocode")
        .enumerate()
        .map(|(k, node)| parse_pair(node, format!("{}[{k}]", children.field("geocode"))))
        .collect::<Result<_, _>>()?;
    Ok(CapArea {
        desc: children.required_text("areaDesc")?.to_owned(),
        polygons,
        circles,
        geocodes,
    })
}

/// Parses one `lat,lon` pair.
fn parse_point(field: &str, pair: &str) -> Result<LatLon, CapError> {
    let parsed = pair.split_once(',').and_then(|(lat, lon)| {
        Some(LatLon {
            lat: lat.parse().ok()?,
            lon: lon.parse().ok()?,
        })
    });
    parsed.ok_or_else(|| CapError::BadValue {
        field: field.to_owned(),
        value: pair.to_owned(),
        expected: "a lat,lon pair of decimal degrees".to_owned(),
    })
}

/// Parses a `circle`: `lat,lon radius`.
fn parse_circle(field: &str, node: Node<'_, '_>) -> Result<CapCircle, CapError> {
    let text = node.text().unwrap_or("").trim();
    let bad = || CapError::BadValue {
        field: field.to_owned(),
        value: text.to_owned(),
        expected: "a circle `lat,lon radius_km`".to_owned(),
    };
    let (centre, radius) = text.split_once(' ').ok_or_else(bad)?;
    Ok(CapCircle {
        centre: parse_point(field, centre)?,
        radius_km: radius.trim().parse().map_err(|_| bad())?,
    })
}

/// Reads a `valueName`/`value` pair.
fn parse_pair(node: Node<'_, '_>, path: String) -> Result<NameValue, CapError> {
    let children = Children::of(node, path, PAIR_SEQUENCE)?;
    Ok(NameValue::new(
        children.required_text("valueName")?,
        children.required_text("value")?,
    ))
}

#[cfg(test)]
mod tests;
