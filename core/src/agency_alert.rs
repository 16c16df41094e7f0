//! Warnings of other agencies received as CAP 1.2 (issue 4: "a warning issued by another agency
//! goes through the same tree"): each parsed alert becomes a version of a warning thread for the
//! sign-off desk, is recognised as one already taken, or is refused with a precise reason.
//!
//! # Rules
//! - **Status.** Only the statuses the deployment lists are taken (default `Actual`). A drill
//!   node lists `Exercise` (and `Test` for a test system) too; anything else is refused as
//!   `status_not_taken`, so an exercise alert never calls people on a production node.
//! - **Message type.** `Alert` opens a thread, `Update` is its next version, `Cancel` closes it.
//!   `Ack` and `Error` carry no warning (`not_a_warning`).
//! - **Agency.** The `sender` must be one of the configured agencies, which names the
//!   department that answers for its warnings here (`unknown_agency` otherwise).
//! - **Hazard.** The first `info` that maps through [`HAZARD_TABLE`] gives hazard, level, expiry
//!   and text: an `eventCode` `hazard` naming one of our hazards (e.g. `landslide`), else a
//!   keyword in `event`, each valid only with the row's category. A `Fire` event that does not
//!   say lightning (雷击) is refused: our one fire hazard is the lightning-caused fire, and its
//!   actions (patrol the strike area, stage crews) would misstate any other fire
//!   (`unmappable_hazard`).
//! - **Level.** [`CapInfo::level`]: the `warningLevel` colour, else the severity
//!   (`unknown_level` for severity `Unknown` without a colour).
//! - **Area.** The `GB/T 2260` geocodes of every `info`'s areas (the languages describe the same
//!   areas); each must be a unit of the region (`unknown_area` names the others). Polygons alone
//!   are not enough: the tree is addressed by codes.
//! - **Identity.** The thread id is [`agency_warning_id`] of the `Alert`'s sender and identifier,
//!   so a re-read gives the same id. A message whose sender and identifier were taken before is a
//!   duplicate. An `Update` or `Cancel` joins the thread of the messages it references; it must
//!   reference the thread's latest message (`stale_version` otherwise, also after a cancellation)
//!   and keep its hazard. One that references no message taken here is refused
//!   (`unknown_reference`): its version number would be a guess.
//! - **Times.** `issued` is `sent`; `onset` is the thread's first `onset`, else `effective`,
//!   else `sent`; `expires` is required (`malformed_cap`): a warning must lapse by itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::cap::{CapAlert, CapError, CapInfo, CapStatus, Category, MsgType, GEOCODE_GB2260};
use crate::ids::{AgencyId, AreaCode, WarningId};
use crate::lifecycle::action_for;
use crate::signoff::{Department, DraftOrigin, SignOffError, Submission};
use crate::time::EventTime;
use crate::warning::{Action, Hazard, Level, Status, WarningEvent};

/// One row of the hazard mapping: the CAP categories it accepts, the lower-case keywords of
/// `event` that name it, and the hazard.
pub struct HazardRow {
    /// Categories the `info` must list one of.
    pub categories: &'static [Category],
    /// Keywords, matched in the lower-cased `event`.
    pub keywords: &'static [&'static str],
    /// The hazard.
    pub hazard: Hazard,
}

/// The mapping of CAP `category` + `event` to our hazards, tried in order (debris flow before
/// landslide, as `滑坡泥石流` names a debris flow's source; snowmelt before flash flood). Floods
/// are `Met` and mass movements `Geo`, as CAP 1.2 §3.2.2 defines them and as we render them.
pub const HAZARD_TABLE: &[HazardRow] = &[
    HazardRow {
        categories: &[Category::Geo],
        keywords: &["泥石流", "debris"],
        hazard: Hazard::DebrisFlow,
    },
    HazardRow {
        categories: &[Category::Geo],
        keywords: &["滑坡", "landslide"],
        hazard: Hazard::Landslide,
    },
    HazardRow {
        categories: &[Category::Met],
        keywords: &["融雪", "snowmelt"],
        hazard: Hazard::SnowmeltFlood,
    },
    HazardRow {
        categories: &[Category::Met],
        keywords: &["山洪", "flash flood"],
        hazard: Hazard::FlashFlood,
    },
    HazardRow {
        categories: &[Category::Fire],
        keywords: &["雷击", "lightning"],
        hazard: Hazard::LightningFire,
    },
];

/// The `eventCode` valueName whose value may name one of our hazards (`Hazard::name`).
pub const HAZARD_EVENT_CODE: &str = "hazard";

/// Why an agency's alert was not taken. [`AgencyAlertError::code`] is the dead-letter reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgencyAlertError {
    /// Not a CAP 1.2 alert, or one breaking the schema or the checks beyond it.
    #[error("malformed cap: {0}")]
    Malformed(#[from] CapError),
    /// Valid CAP that lacks what a warning needs.
    #[error("malformed cap: {field}: {reason}")]
    Incomplete {
        /// The element path.
        field: String,
        /// What is missing.
        reason: String,
    },
    /// A status the deployment does not take.
    #[error("alert.status: {status} is not taken here (taken: {taken})")]
    StatusNotTaken {
        /// The alert's status.
        status: CapStatus,
        /// The statuses taken, comma-separated.
        taken: String,
    },
    /// An `Ack` or `Error` message.
    #[error("alert.msgType: {msg_type} carries no warning")]
    NotAWarning {
        /// The message type.
        msg_type: MsgType,
    },
    /// A sender without a configured department.
    #[error("alert.sender: {sender} is not a configured agency")]
    UnknownAgency {
        /// The sender.
        sender: String,
    },
    /// No `info` maps to one of our hazards.
    #[error(
        "alert.info: no info maps to a hazard (first: category {categories}, event `{event}`)"
    )]
    UnmappableHazard {
        /// The first info's categories, comma-separated.
        categories: String,
        /// The first info's event.
        event: String,
    },
    /// An update that names another hazard than its thread.
    #[error("{field}: thread {warning} is a {} warning, this update says {}", thread.name(), update.name())]
    HazardChanged {
        /// The info that was mapped.
        field: String,
        /// The thread.
        warning: WarningId,
        /// The thread's hazard.
        thread: Hazard,
        /// The update's hazard.
        update: Hazard,
    },
    /// Severity `Unknown` and no colour.
    #[error("{field}: severity Unknown and no warningLevel colour")]
    UnknownLevel {
        /// The info.
        field: String,
    },
    /// Geocodes that are no unit of the region, or none at all.
    #[error("alert.info.area.geocode: {detail}")]
    UnknownArea {
        /// Which codes, or that there is none.
        detail: String,
    },
    /// An update or cancellation of no thread taken here.
    #[error("alert.references: none of {references} was taken here")]
    UnknownReference {
        /// The references, space-separated.
        references: String,
    },
    /// An update of a superseded version or of a closed thread (ours or the desk's verdict).
    #[error("alert.references: {detail}")]
    StaleVersion {
        /// Which thread and versions.
        detail: String,
    },
    /// The desk keeps the thread with another department (the agency map changed).
    #[error("{0}")]
    WrongDepartment(SignOffError),
}

impl AgencyAlertError {
    /// Returns the reason code of the dead-letter record.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::Incomplete { .. } => "malformed_cap",
            Self::StatusNotTaken { .. } => "status_not_taken",
            Self::NotAWarning { .. } => "not_a_warning",
            Self::UnknownAgency { .. } => "unknown_agency",
            Self::UnmappableHazard { .. } | Self::HazardChanged { .. } => "unmappable_hazard",
            Self::UnknownLevel { .. } => "unknown_level",
            Self::UnknownArea { .. } => "unknown_area",
            Self::UnknownReference { .. } => "unknown_reference",
            Self::StaleVersion { .. } => "stale_version",
            Self::WrongDepartment(_) => "wrong_department",
        }
    }
}

impl From<SignOffError> for AgencyAlertError {
    fn from(error: SignOffError) -> Self {
        match error {
            SignOffError::WrongDepartment { .. } => Self::WrongDepartment(error),
            other => Self::StaleVersion {
                detail: format!("the sign-off desk refused it: {other}"),
            },
        }
    }
}

/// What a deployment takes from other agencies.
#[derive(Debug, Clone, PartialEq)]
pub struct AgencyRules {
    /// The department answering for each agency (CAP `sender`).
    pub departments: BTreeMap<AgencyId, Department>,
    /// The CAP statuses taken.
    pub statuses: BTreeSet<CapStatus>,
    /// The codes of the region's administrative units.
    pub areas: BTreeSet<AreaCode>,
}

/// Returns the thread id of an agency's alert: `AG-<sender>,<identifier>`. CAP forbids commas
/// in both parts (CAP 1.2 §3.2.1), so two different pairs never share an id.
pub fn agency_warning_id(sender: &str, identifier: &str) -> WarningId {
    WarningId::new(format!("AG-{sender},{identifier}"))
}

/// A CAP message: sender and identifier.
type MessageKey = (String, String);

/// What an alert is to the desk.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// A new warning version to submit; [`AgencyThreads::record`] it once the desk took it.
    New(Box<NewVersion>),
    /// A message taken before (a re-read or a re-send): its warning version.
    Duplicate {
        /// The warning.
        warning: WarningId,
        /// Its version.
        version: u32,
    },
}

/// A warning version made from an agency's alert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    /// What goes to the sign-off desk.
    pub submission: Submission,
    message: MessageKey,
}

/// The latest version of one thread.
#[derive(Debug, Clone, PartialEq)]
struct Thread {
    latest: MessageKey,
    version: u32,
    hazard: Hazard,
    level: Level,
    onset: EventTime,
    closed: bool,
}

/// The threads of the agencies' alerts taken so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgencyThreads {
    messages: BTreeMap<MessageKey, (WarningId, u32)>,
    threads: BTreeMap<WarningId, Thread>,
}

impl AgencyThreads {
    /// Creates an empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides what `alert` is (module docs, Rules); changes nothing.
    ///
    /// # Errors
    /// The first rule the alert breaks, as an [`AgencyAlertError`].
    pub fn prepare(
        &self,
        alert: &CapAlert,
        rules: &AgencyRules,
    ) -> Result<Intake, AgencyAlertError> {
        let message = (alert.sender.clone(), alert.identifier.clone());
        if let Some((warning, version)) = self.messages.get(&message) {
            return Ok(Intake::Duplicate {
                warning: warning.clone(),
                version: *version,
            });
        }
        if !rules.statuses.contains(&alert.status) {
            let taken: Vec<&str> = rules.statuses.iter().map(|s| s.as_str()).collect();
            return Err(AgencyAlertError::StatusNotTaken {
                status: alert.status,
                taken: taken.join(","),
            });
        }
        if matches!(alert.msg_type, MsgType::Ack | MsgType::Error) {
            return Err(AgencyAlertError::NotAWarning {
                msg_type: alert.msg_type,
            });
        }
        let sender = AgencyId::new(&alert.sender);
        let department =
            *rules
                .departments
                .get(&sender)
                .ok_or_else(|| AgencyAlertError::UnknownAgency {
                    sender: alert.sender.clone(),
                })?;
        let (index, info, hazard) = mapped_info(alert)?;
        let field = format!("alert.info[{index}]");
        let level = info.level().ok_or_else(|| AgencyAlertError::UnknownLevel {
            field: field.clone(),
        })?;
        let expires = info.expires.ok_or_else(|| AgencyAlertError::Incomplete {
            field: format!("{field}.expires"),
            reason: "missing: a warning must lapse by itself".to_owned(),
        })?;
        let area_codes = area_codes(alert, &rules.areas)?;
        let (id, version, status, onset, level) = match alert.msg_type {
            MsgType::Alert => (
                agency_warning_id(&alert.sender, &alert.identifier),
                1,
                Status::Issued,
                info.onset.or(info.effective).unwrap_or(alert.sent),
                level,
            ),
            _ => {
                let (id, thread) = self.thread_of(alert)?;
                if thread.hazard != hazard {
                    return Err(AgencyAlertError::HazardChanged {
                        field,
                        warning: id.clone(),
                        thread: thread.hazard,
                        update: hazard,
                    });
                }
                let (status, level) = match (alert.msg_type, level.cmp(&thread.level)) {
                    (MsgType::Cancel, _) => (Status::Cancelled, thread.level),
                    (_, std::cmp::Ordering::Greater) => (Status::Upgraded, level),
                    (_, std::cmp::Ordering::Less) => (Status::Downgraded, level),
                    (_, std::cmp::Ordering::Equal) => (Status::Renewed, level),
                };
                (id.clone(), thread.version + 1, status, thread.onset, level)
            }
        };
        let action = if status == Status::Cancelled {
            Action::AllClear
        } else {
            action_for(hazard, level)
        };
        let target = info
            .areas
            .first()
            .map_or_else(|| alert.sender.clone(), |area| area.desc.clone());
        let event = WarningEvent {
            id,
            version,
            hazard,
            level,
            action,
            status,
            target,
            area_codes,
            onset,
            issued: alert.sent,
            expires,
            evidence: Vec::new(),
            caused_by: None,
        };
        Ok(Intake::New(Box::new(NewVersion {
            submission: Submission {
                event,
                origin: DraftOrigin::Agency { sender, department },
                message: message_text(info),
            },
            message,
        })))
    }

    /// Records a version the desk took (or, when rebuilding, took in an earlier run).
    pub fn record(&mut self, taken: &NewVersion) {
        let event = &taken.submission.event;
        self.messages
            .insert(taken.message.clone(), (event.id.clone(), event.version));
        let onset = self
            .threads
            .get(&event.id)
            .map_or(event.onset, |thread| thread.onset);
        self.threads.insert(
            event.id.clone(),
            Thread {
                latest: taken.message.clone(),
                version: event.version,
                hazard: event.hazard,
                level: event.level,
                onset,
                closed: event.status == Status::Cancelled,
            },
        );
    }

    /// Returns the open thread an update or cancellation continues.
    fn thread_of(&self, alert: &CapAlert) -> Result<(&WarningId, &Thread), AgencyAlertError> {
        let referenced: Vec<MessageKey> = alert
            .references
            .iter()
            .map(|r| (r.sender.clone(), r.identifier.clone()))
            .collect();
        let Some((id, _)) = referenced.iter().find_map(|key| self.messages.get(key)) else {
            let listed: Vec<String> = alert.references.iter().map(ToString::to_string).collect();
            return Err(AgencyAlertError::UnknownReference {
                references: listed.join(" "),
            });
        };
        let thread = self
            .threads
            .get(id)
            .expect("every recorded message has its thread");
        if thread.closed {
            return Err(AgencyAlertError::StaleVersion {
                detail: format!("warning {id} was cancelled at version {}", thread.version),
            });
        }
        if !referenced.contains(&thread.latest) {
            return Err(AgencyAlertError::StaleVersion {
                detail: format!(
                    "warning {id} is at version {} ({}), which this message does not reference",
                    thread.version, thread.latest.1
                ),
            });
        }
        Ok((id, thread))
    }
}

/// Returns the first info that maps to a hazard, with its index.
fn mapped_info(alert: &CapAlert) -> Result<(usize, &CapInfo, Hazard), AgencyAlertError> {
    alert
        .infos
        .iter()
        .enumerate()
        .find_map(|(index, info)| hazard_of(info).map(|hazard| (index, info, hazard)))
        .ok_or_else(|| {
            let first = alert.infos.first();
            let categories: Vec<&str> = first
                .map(|info| info.categories.iter().map(|c| c.as_str()).collect())
                .unwrap_or_default();
            AgencyAlertError::UnmappableHazard {
                categories: categories.join(","),
                event: first.map(|info| info.event.clone()).unwrap_or_default(),
            }
        })
}

/// Returns the hazard of one info by [`HAZARD_TABLE`]: its `hazard` event code first, then the
/// keywords of its event, each only with the row's category.
pub fn hazard_of(info: &CapInfo) -> Option<Hazard> {
    let allowed = |row: &HazardRow| row.categories.iter().any(|c| info.categories.contains(c));
    let coded = info
        .event_codes
        .iter()
        .filter(|code| code.name == HAZARD_EVENT_CODE)
        .find_map(|code| {
            HAZARD_TABLE
                .iter()
                .find(|row| row.hazard.name() == code.value.trim() && allowed(row))
        });
    let event = info.event.to_lowercase();
    coded
        .or_else(|| {
            HAZARD_TABLE.iter().find(|row| {
                allowed(row) && row.keywords.iter().any(|keyword| event.contains(keyword))
            })
        })
        .map(|row| row.hazard)
}

/// Returns the GB/T 2260 codes of every area of the alert, each a unit of the region.
fn area_codes(
    alert: &CapAlert,
    known: &BTreeSet<AreaCode>,
) -> Result<Vec<AreaCode>, AgencyAlertError> {
    let codes: BTreeSet<AreaCode> = alert
        .infos
        .iter()
        .flat_map(|info| &info.areas)
        .flat_map(|area| &area.geocodes)
        .filter(|geocode| geocode.name == GEOCODE_GB2260)
        .map(|geocode| AreaCode::new(geocode.value.trim()))
        .collect();
    if codes.is_empty() {
        return Err(AgencyAlertError::UnknownArea {
            detail: format!("no `{GEOCODE_GB2260}` geocode in any area"),
        });
    }
    let unknown: Vec<&str> = codes
        .iter()
        .filter(|code| !known.contains(*code))
        .map(AreaCode::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(AgencyAlertError::UnknownArea {
            detail: format!("{} not units of the region", unknown.join(",")),
        });
    }
    Ok(codes.into_iter().collect())
}

/// Returns the agency's own text: headline, description and instruction, one per line.
fn message_text(info: &CapInfo) -> Option<String> {
    let parts: Vec<&str> = [&info.headline, &info.description, &info.instruction]
        .into_iter()
        .flatten()
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

#[cfg(test)]
mod tests;
