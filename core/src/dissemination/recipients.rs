//! The recipient directory: responsible persons (village, township and county heads, prefecture
//! and region duty officers), each with channels in the order to try them, and public endpoints
//! (SMS broadcast lists, village loudspeakers, the CAP feed). Says who a warning targets and to
//! whom an unanswered person is escalated.
//!
//! There is no real contact list in this repository. [`Directory::synthetic`] generates a
//! deterministic one from the admin tree and marks it synthetic; a deployment loads its own with
//! [`Directory::load_csv`]. CSV columns (UTF-8, header row):
//!
//! | column | meaning |
//! |---|---|
//! | `recipient_id` | unique id, e.g. `650102-002-v1` |
//! | `role` | `village`, `township`, `county`, `prefecture-duty`, `region-duty` or `public` |
//! | `unit_code` | the admin unit: a township for `village`/`township`, a county for `county`, a prefecture for `prefecture-duty`, the region for `region-duty`, any unit for `public` |
//! | `name` | display name |
//! | `channels` | `;`-separated, in the order to try: persons use `app`, `sms`, `phone`; a public endpoint has exactly one of `sms-broadcast`, `loudspeaker`, `cap-feed` |

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dissemination::tree::{AdminTree, Reach};
use crate::ids::{AreaCode, RecipientId};
use crate::region::AdminLevel;

/// A way to reach a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    /// The one-key-call app, over a gRPC server-streaming subscription.
    App,
    /// A personal SMS through the SMS gateway.
    Sms,
    /// A voice call.
    Phone,
    /// An SMS broadcast list of the public in a unit.
    SmsBroadcast,
    /// A village loudspeaker (MQTT).
    Loudspeaker,
    /// The public CAP Atom feed.
    CapFeed,
}

impl ChannelKind {
    /// Every channel, persons' first.
    pub const ALL: [ChannelKind; 6] = [
        Self::App,
        Self::Sms,
        Self::Phone,
        Self::SmsBroadcast,
        Self::Loudspeaker,
        Self::CapFeed,
    ];

    /// Returns the kebab-case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Sms => "sms",
            Self::Phone => "phone",
            Self::SmsBroadcast => "sms-broadcast",
            Self::Loudspeaker => "loudspeaker",
            Self::CapFeed => "cap-feed",
        }
    }

    /// Returns whether the channel reaches one person (as opposed to the public).
    pub fn is_personal(self) -> bool {
        matches!(self, Self::App | Self::Sms | Self::Phone)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a recipient is responsible for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A village (村) head, filed under the village's township.
    Village,
    /// A township (乡/镇/街道) head.
    Township,
    /// A county head.
    County,
    /// The duty officer of a prefecture: receives escalations from county heads.
    PrefectureDuty,
    /// The duty officer of the region: the last escalation step.
    RegionDuty,
    /// A public endpoint, not a person: nobody acknowledges it.
    Public,
}

impl Role {
    const ALL: [Role; 6] = [
        Self::Village,
        Self::Township,
        Self::County,
        Self::PrefectureDuty,
        Self::RegionDuty,
        Self::Public,
    ];

    /// Returns the kebab-case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Village => "village",
            Self::Township => "township",
            Self::County => "county",
            Self::PrefectureDuty => "prefecture-duty",
            Self::RegionDuty => "region-duty",
            Self::Public => "public",
        }
    }

    /// Returns the level of unit the role is filed under; `None` for public endpoints (any).
    fn unit_level(self) -> Option<AdminLevel> {
        match self {
            Self::Village | Self::Township => Some(AdminLevel::Township),
            Self::County => Some(AdminLevel::County),
            Self::PrefectureDuty => Some(AdminLevel::Prefecture),
            Self::RegionDuty => Some(AdminLevel::Region),
            Self::Public => None,
        }
    }

    /// Returns the person responsible for a unit of `level` (the one escalations go to).
    fn head_of(level: AdminLevel) -> Role {
        match level {
            AdminLevel::Township => Self::Township,
            AdminLevel::County => Self::County,
            AdminLevel::Prefecture => Self::PrefectureDuty,
            AdminLevel::Region => Self::RegionDuty,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A responsible person or public endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The recipient's id.
    pub id: RecipientId,
    /// Display name.
    pub name: String,
    /// What the recipient is responsible for.
    pub role: Role,
    /// The admin unit it is filed under.
    pub unit: AreaCode,
    /// Channels in the order to try them (exactly one for public endpoints).
    pub channels: Vec<ChannelKind>,
}

impl Recipient {
    /// Returns whether this is a person, who can be asked to acknowledge.
    pub fn is_person(&self) -> bool {
        self.role != Role::Public
    }
}

/// Responsible persons and public endpoints of a region, with escalation targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Directory {
    synthetic: bool,
    recipients: BTreeMap<RecipientId, Recipient>,
    by_unit: BTreeMap<AreaCode, Vec<RecipientId>>,
    escalates_to: BTreeMap<RecipientId, RecipientId>,
}

/// Why a directory file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A row is not valid CSV or has the wrong columns.
    #[error("{}: {source}", file.display())]
    Csv {
        /// The file.
        file: PathBuf,
        /// The parse error, with line and field.
        source: csv::Error,
    },
    /// A field holds a value that is not allowed.
    #[error("{} line {line}: field {field}: {problem}", file.display())]
    Field {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The column name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

#[derive(Deserialize)]
struct DirectoryRow {
    recipient_id: String,
    role: String,
    unit_code: String,
    name: String,
    channels: String,
}

/// The channels of every synthetic person, in order.
const SYNTHETIC_PERSON_CHANNELS: [ChannelKind; 3] =
    [ChannelKind::App, ChannelKind::Sms, ChannelKind::Phone];

/// Returns the id stem of a unit: `650102` for a county, `650102-002` for a township.
fn id_stem(code: &AreaCode) -> String {
    let code = code.as_str();
    match code.split_at_checked(6) {
        Some((county, rest)) if !rest.is_empty() => format!("{county}-{rest}"),
        _ => code.to_owned(),
    }
}

impl Directory {
    /// Builds a **synthetic** directory from the admin tree: one region duty officer
    /// (`650000-duty`), one duty officer per prefecture (`650100-duty`), one head per county
    /// (`650102-head`) and per township (`650102-002-head`), `villages_per_township` village
    /// heads per township (`650102-002-v1`, …) all reached by app, SMS then phone; and public
    /// endpoints: an SMS broadcast list per township (`650102-002-sms`), a loudspeaker per
    /// village (`650102-002-v1-speaker`) and the region's CAP feed (`650000-cap`). Names say
    /// "synthetic". The same tree always gives the same directory.
    pub fn synthetic(tree: &AdminTree, villages_per_township: u32) -> Directory {
        let mut recipients = Vec::new();
        let mut person = |id: String, role: Role, unit: &AreaCode, name: String| {
            recipients.push(Recipient {
                id: RecipientId::new(id),
                name,
                role,
                unit: unit.clone(),
                channels: SYNTHETIC_PERSON_CHANNELS.to_vec(),
            });
        };
        let mut units = vec![tree.region()];
        while let Some(code) = units.pop() {
            let unit = tree
                .unit(code)
                .expect("children of tree units are tree units");
            let stem = id_stem(code);
            match unit.level {
                AdminLevel::Region | AdminLevel::Prefecture => {
                    let role = Role::head_of(unit.level);
                    person(
                        format!("{stem}-duty"),
                        role,
                        code,
                        format!("synthetic duty officer of {}", unit.name),
                    );
                }
                AdminLevel::County => {
                    person(
                        format!("{stem}-head"),
                        Role::County,
                        code,
                        format!("synthetic head of {}", unit.name),
                    );
                }
                AdminLevel::Township => {
                    person(
                        format!("{stem}-head"),
                        Role::Township,
                        code,
                        format!("synthetic head of {}", unit.name),
                    );
                    for village in 1..=villages_per_township {
                        let name = format!("synthetic head of village {village} of {}", unit.name);
                        person(format!("{stem}-v{village}"), Role::Village, code, name);
                    }
                }
            }
            units.extend(unit.children.iter());
        }
        let public = |id: String, unit: &AreaCode, channel: ChannelKind, name: String| Recipient {
            id: RecipientId::new(id),
            name,
            role: Role::Public,
            unit: unit.clone(),
            channels: vec![channel],
        };
        let region = tree.region();
        recipients.push(public(
            format!("{}-cap", id_stem(region)),
            region,
            ChannelKind::CapFeed,
            "CAP feed".to_owned(),
        ));
        let townships: Vec<&AreaCode> = recipients
            .iter()
            .filter(|recipient| recipient.role == Role::Township)
            .map(|recipient| &recipient.unit)
            .collect();
        let mut endpoints = Vec::new();
        for township in townships {
            let stem = id_stem(township);
            let name = |what: &str| format!("synthetic {what} of {township}");
            endpoints.push(public(
                format!("{stem}-sms"),
                township,
                ChannelKind::SmsBroadcast,
                name("SMS broadcast list"),
            ));
            for village in 1..=villages_per_township {
                let id = format!("{stem}-v{village}-speaker");
                endpoints.push(public(
                    id,
                    township,
                    ChannelKind::Loudspeaker,
                    name(&format!("loudspeaker of village {village}")),
                ));
            }
        }
        recipients.extend(endpoints);
        Self::index(true, recipients, tree)
    }

    /// Loads a directory CSV file (columns in the module docs) checked against `tree`.
    ///
    /// # Errors
    /// Returns a [`DirectoryError`] naming the file, line and field for an unreadable or
    /// malformed file, an unknown role or channel, a unit not in the tree or of the wrong level
    /// for the role, a person without channels or with a public channel, a public endpoint
    /// without exactly one public channel, or a duplicate id.
    pub fn load_csv(file: &Path, tree: &AdminTree) -> Result<Directory, DirectoryError> {
        let reader = std::fs::File::open(file).map_err(|source| DirectoryError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        Self::read_csv(reader, file, tree)
    }

    /// Reads a directory CSV from `reader`; `file` only names the source in errors.
    ///
    /// # Errors
    /// As [`Directory::load_csv`].
    pub fn read_csv(
        reader: impl Read,
        file: &Path,
        tree: &AdminTree,
    ) -> Result<Directory, DirectoryError> {
        let csv_error = |source| DirectoryError::Csv {
            file: file.to_path_buf(),
            source,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = reader.headers().map_err(csv_error)?.clone();
        let mut recipients: Vec<Recipient> = Vec::new();
        let mut seen: BTreeMap<RecipientId, u64> = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            let line = record.position().map_or(0, csv::Position::line);
            let row: DirectoryRow = record.deserialize(Some(&headers)).map_err(csv_error)?;
            let field_error = |field: &'static str, problem: String| DirectoryError::Field {
                file: file.to_path_buf(),
                line,
                field,
                problem,
            };
            let recipient =
                parse_row(row, tree).map_err(|(field, problem)| field_error(field, problem))?;
            if let Some(first) = seen.insert(recipient.id.clone(), line) {
                let problem = format!("duplicate `{}`, first on line {first}", recipient.id);
                return Err(field_error("recipient_id", problem));
            }
            recipients.push(recipient);
        }
        Ok(Self::index(false, recipients, tree))
    }

    /// Builds the lookups: recipients by unit, and each person's escalation target: the head
    /// of the nearest unit above (a village head's own township first) that has one.
    fn index(synthetic: bool, recipients: Vec<Recipient>, tree: &AdminTree) -> Directory {
        let recipients: BTreeMap<RecipientId, Recipient> = recipients
            .into_iter()
            .map(|recipient| (recipient.id.clone(), recipient))
            .collect();
        let mut by_unit: BTreeMap<AreaCode, Vec<RecipientId>> = BTreeMap::new();
        for recipient in recipients.values() {
            by_unit
                .entry(recipient.unit.clone())
                .or_default()
                .push(recipient.id.clone());
        }
        let head_of = |unit: &AreaCode| -> Option<RecipientId> {
            let role = Role::head_of(tree.unit(unit)?.level);
            by_unit
                .get(unit)?
                .iter()
                .find(|id| recipients[*id].role == role)
                .cloned()
        };
        let mut escalates_to = BTreeMap::new();
        for person in recipients.values().filter(|r| r.is_person()) {
            let own_unit = (person.role == Role::Village).then_some(&person.unit);
            let above = own_unit.into_iter().chain(tree.ancestors(&person.unit));
            if let Some(target) = above.filter_map(head_of).next() {
                escalates_to.insert(person.id.clone(), target);
            }
        }
        Directory {
            synthetic,
            recipients,
            by_unit,
            escalates_to,
        }
    }

    /// Returns whether the directory was generated rather than loaded from a contact list.
    pub fn is_synthetic(&self) -> bool {
        self.synthetic
    }

    /// Returns the number of recipients.
    pub fn len(&self) -> usize {
        self.recipients.len()
    }

    /// Returns whether there are no recipients.
    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty()
    }

    /// Returns the recipient `id`.
    pub fn get(&self, id: &RecipientId) -> Option<&Recipient> {
        self.recipients.get(id)
    }

    /// Returns the recipients filed under `unit`, by id.
    pub fn at_unit(&self, unit: &AreaCode) -> impl Iterator<Item = &Recipient> {
        self.by_unit
            .get(unit)
            .into_iter()
            .flatten()
            .map(|id| &self.recipients[id])
    }

    /// Returns whom a warning reaching `reach` targets, by id: everyone filed under a reached
    /// township (village and township heads, SMS lists, loudspeakers), the heads and public
    /// endpoints of reached counties, and the region's public endpoints (the CAP feed) when
    /// anything is reached. Prefecture and region duty officers are not targeted; they hear
    /// through escalation.
    pub fn targets(&self, reach: &Reach, tree: &AdminTree) -> Vec<&Recipient> {
        if reach.townships.is_empty() && reach.counties.is_empty() {
            return Vec::new();
        }
        let mut targets: Vec<&Recipient> = reach
            .townships
            .iter()
            .chain(&reach.counties)
            .flat_map(|unit| self.at_unit(unit))
            .chain(
                self.at_unit(tree.region())
                    .filter(|r| r.role == Role::Public),
            )
            .collect();
        targets.sort_by(|a, b| a.id.cmp(&b.id));
        targets.dedup_by(|a, b| a.id == b.id);
        targets
    }

    /// Returns the person `person` is escalated to when not reached; `None` at the top.
    pub fn escalation_target(&self, person: &RecipientId) -> Option<&Recipient> {
        self.escalates_to
            .get(person)
            .map(|target| &self.recipients[target])
    }
}

/// Parses and checks one CSV row; the error names the field.
fn parse_row(row: DirectoryRow, tree: &AdminTree) -> Result<Recipient, (&'static str, String)> {
    if row.recipient_id.is_empty() {
        return Err(("recipient_id", "empty".to_owned()));
    }
    let role = Role::ALL
        .into_iter()
        .find(|role| role.as_str() == row.role)
        .ok_or_else(|| ("role", format!("unknown role `{}`", row.role)))?;
    let unit = AreaCode::new(&row.unit_code);
    let level = tree.unit(&unit).map(|unit| unit.level).ok_or_else(|| {
        (
            "unit_code",
            format!("`{unit}` is not a unit of the admin tree"),
        )
    })?;
    if let Some(expected) = role.unit_level().filter(|expected| *expected != level) {
        let problem = format!("`{unit}` is a {level}, a {role} is filed under a {expected}");
        return Err(("unit_code", problem));
    }
    let channels = row
        .channels
        .split(';')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            ChannelKind::ALL
                .into_iter()
                .find(|channel| channel.as_str() == name)
                .ok_or_else(|| ("channels", format!("unknown channel `{name}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let personal = channels
        .iter()
        .filter(|channel| channel.is_personal())
        .count();
    if role == Role::Public {
        if channels.len() != 1 || personal != 0 {
            let problem =
                "a public endpoint has exactly one of sms-broadcast, loudspeaker, cap-feed";
            return Err(("channels", problem.to_owned()));
        }
    } else if channels.is_empty() || personal != channels.len() {
        let problem = "a person needs one or more of app, sms, phone and no public channel";
        return Err(("channels", problem.to_owned()));
    }
    let mut distinct = channels.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != channels.len() {
        return Err(("channels", "a channel is listed twice".to_owned()));
    }
    Ok(Recipient {
        id: RecipientId::new(&row.recipient_id),
        name: row.name,
        role,
        unit,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> AdminTree {
        AdminTree::xinjiang_for_test()
    }

    fn id(text: &str) -> RecipientId {
        RecipientId::new(text)
    }

    #[test]
    fn the_synthetic_directory_has_a_head_per_unit_and_escalates_upwards() {
        let tree = tree();
        let directory = Directory::synthetic(&tree, 2);
        assert!(directory.is_synthetic());
        // persons: 1 + 14 + 108 + 1405 × (1 + 2); public: 1 CAP feed + 1405 × (1 + 2).
        assert_eq!(directory.len(), 1 + 14 + 108 + 1405 * 3 + 1 + 1405 * 3);
        let village = directory.get(&id("650102-002-v2")).expect("village head");
        assert_eq!(village.role, Role::Village);
        assert_eq!(village.unit.as_str(), "650102002");
        assert_eq!(village.channels, SYNTHETIC_PERSON_CHANNELS);
        assert!(village.name.starts_with("synthetic"));
        let chain: Vec<&str> = std::iter::successors(Some(village), |person| {
            directory.escalation_target(&person.id)
        })
        .map(|person| person.id.as_str())
        .collect();
        assert_eq!(
            chain,
            [
                "650102-002-v2",
                "650102-002-head",
                "650102-head",
                "650100-duty",
                "650000-duty"
            ]
        );
        // An XPCC city hangs from the region: its head escalates to the region duty officer.
        let shihezi = directory
            .escalation_target(&id("659001-head"))
            .expect("target");
        assert_eq!(shihezi.id.as_str(), "650000-duty");
        assert!(directory
            .escalation_target(&id("650102-002-v1-speaker"))
            .is_none());
    }

    #[test]
    fn a_reach_targets_its_townships_counties_and_the_cap_feed() {
        let tree = tree();
        let directory = Directory::synthetic(&tree, 1);
        let reach =
            tree.reach_of_area_codes(&[AreaCode::new("650102"), AreaCode::new("650102002")]);
        let targets: Vec<&str> = directory
            .targets(&reach, &tree)
            .into_iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(
            targets,
            [
                "650000-cap",
                "650102-002-head",
                "650102-002-sms",
                "650102-002-v1",
                "650102-002-v1-speaker",
                "650102-head"
            ]
        );
        assert!(directory.targets(&Reach::default(), &tree).is_empty());
    }

    const CSV: &str = "recipient_id,role,unit_code,name,channels\n\
        p1,county,650102,县长,app;phone\n\
        p2,township,650102002,镇长,sms\n\
        p3,village,650102002,村主任,phone;sms\n\
        s1,public,650102002,广播,loudspeaker\n";

    fn read(text: &str) -> Result<Directory, DirectoryError> {
        Directory::read_csv(text.as_bytes(), Path::new("people.csv"), &tree())
    }

    #[test]
    fn a_csv_directory_loads_with_its_channel_order() {
        let directory = read(CSV).expect("valid directory");
        assert!(!directory.is_synthetic());
        assert_eq!(directory.len(), 4);
        assert_eq!(
            directory.get(&id("p3")).map(|p| p.channels.clone()),
            Some(vec![ChannelKind::Phone, ChannelKind::Sms])
        );
        let up = |person: &str| {
            directory
                .escalation_target(&id(person))
                .map(|p| p.id.as_str())
        };
        assert_eq!(up("p3"), Some("p2"));
        assert_eq!(up("p2"), Some("p1"));
        assert_eq!(up("p1"), None, "no prefecture or region duty in this file");
    }

    #[test]
    fn a_broken_csv_names_line_and_field() {
        let cases = [
            (
                CSV.replace("p2,township", "p2,mayor"),
                "line 3: field role: unknown role `mayor`",
            ),
            (
                CSV.replace("p2,township,650102002", "p2,township,650102"),
                "line 3: field unit_code: `650102` is a county",
            ),
            (
                CSV.replace("650102002,村主任", "650102999,村主任"),
                "line 4: field unit_code: `650102999` is not a unit",
            ),
            (
                CSV.replace("phone;sms", "phone;fax"),
                "line 4: field channels: unknown channel `fax`",
            ),
            (
                CSV.replace("phone;sms", "phone;phone"),
                "line 4: field channels: a channel is listed twice",
            ),
            (
                CSV.replace("app;phone", "loudspeaker"),
                "line 2: field channels: a person needs",
            ),
            (
                CSV.replace("loudspeaker", "sms"),
                "line 5: field channels: a public endpoint",
            ),
            (
                CSV.replace("p3,village", "p1,village"),
                "line 4: field recipient_id: duplicate `p1`, first on line 2",
            ),
        ];
        for (text, expected) in cases {
            let message = read(&text).expect_err("must not load").to_string();
            assert!(message.starts_with("people.csv"), "{message}");
            assert!(message.contains(expected), "{expected}: {message}");
        }
        let message = read("recipient_id,role\np1,county\n")
            .expect_err("missing columns")
            .to_string();
        assert!(
            message.contains("people.csv") && message.contains("line: 2"),
            "{message}"
        );
    }
}
