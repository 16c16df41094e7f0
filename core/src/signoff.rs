//! Sign-off of warnings, "who issues is responsible" (谁发布、谁负责): every warning version is a
//! draft of the department responsible for it until a duty officer of that department approves
//! it (possibly after editing its message or area) or rejects it, and every step lands in an
//! audit trail (who, when, what).
//!
//! # Rules
//! - **Responsible department.** A model draft belongs to the department [`SignOffPolicy::responsible`]
//!   names for its hazard (defaults: water resources for flash and snowmelt floods, natural
//!   resources for landslides and debris flows, forestry and grassland for lightning fires). A
//!   warning issued by hand belongs to its officer's department; one received from another agency
//!   as CAP belongs to the department given for that agency. The department of a warning id is
//!   fixed by its first version: a policy reload applies to new warnings only.
//! - **Public always waits for sign-off.** Nothing reaches the public channels (SMS, loudspeakers,
//!   CAP feed) unsigned: an unreviewed model output must not make a whole valley evacuate.
//! - **Responsible persons may get it first.** [`SignOffPolicy::early_release`] lists per hazard
//!   the levels whose drafts go at once to responsible persons (default orange and red: 准备转移
//!   and 立即转移 leave no time to wait for a desk). Such an early release never lowers what
//!   responsible persons already hold, and a cancellation is never released early: relaxing an
//!   evacuation needs a signature.
//! - **Auto-approval** after a timeout per level is off by default (our choice: a warning nobody
//!   signed should not look signed; a deployment that prefers timeliness turns it on per level).
//! - **Later versions.** A new version of a warning supersedes its pending draft. Updates of an
//!   approved warning are drafts again: upgrades, downgrades and cancellations all need sign-off
//!   (the public keeps the approved version meanwhile, which errs on the safe side for relaxations).
//!   The exception is a renewal that changes nothing the officer signed: same level as the
//!   approved version, no other draft pending, and responsible persons hold the approved version.
//!   It carries the approved version's signature, message and area, so a signed warning does not
//!   lapse while its desk is busy. A cancellation of a warning of which nothing was ever released
//!   closes it without sign-off.
//! - **Rejection** drops the draft; if responsible persons had it early, it is withdrawn from them
//!   and the approved version (if any) is back in force.
//! - **Approval** releases to everyone; channels deduplicate on (warning id, version, recipient),
//!   so responsible persons who had the draft early are not called twice, and an area widened
//!   by an edit reaches the units it adds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{AgencyId, AreaCode, OfficerId, WarningId};
use crate::time::EventTime;
use crate::warning::{Hazard, Level, Status, WarningEvent};

/// A department that drafts, signs and answers for warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Department {
    /// Water resources (水利): flash floods, snowmelt floods.
    WaterResources,
    /// Natural resources (自然资源): landslides, debris flows.
    NaturalResources,
    /// Forestry and grassland (林草): forest and grassland fires.
    ForestryAndGrassland,
    /// Meteorology (气象): weather warnings, which reach Tianshan by hand or as CAP.
    Meteorology,
}

impl Department {
    /// All departments.
    pub const ALL: [Department; 4] = [
        Department::WaterResources,
        Department::NaturalResources,
        Department::ForestryAndGrassland,
        Department::Meteorology,
    ];

    /// Returns the kebab-case name used in configuration and token tables.
    pub fn name(self) -> &'static str {
        match self {
            Department::WaterResources => "water-resources",
            Department::NaturalResources => "natural-resources",
            Department::ForestryAndGrassland => "forestry-and-grassland",
            Department::Meteorology => "meteorology",
        }
    }

    /// Returns the department with the kebab-case `name`, if any.
    pub fn parse(name: &str) -> Option<Department> {
        Department::ALL
            .into_iter()
            .find(|department| department.name() == name)
    }
}

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One setting per hazard; a configuration section must name every hazard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PerHazard<T> {
    /// Flash floods.
    pub flash_flood: T,
    /// Debris flows.
    pub debris_flow: T,
    /// Landslides.
    pub landslide: T,
    /// Lightning-caused forest and grassland fires.
    pub lightning_fire: T,
    /// Snowmelt floods.
    pub snowmelt_flood: T,
}

impl<T> PerHazard<T> {
    /// Returns the setting of `hazard`.
    pub fn get(&self, hazard: Hazard) -> &T {
        match hazard {
            Hazard::FlashFlood => &self.flash_flood,
            Hazard::DebrisFlow => &self.debris_flow,
            Hazard::Landslide => &self.landslide,
            Hazard::LightningFire => &self.lightning_fire,
            Hazard::SnowmeltFlood => &self.snowmelt_flood,
        }
    }

    /// Returns every hazard with its setting.
    fn entries(&self) -> [(Hazard, &T); 5] {
        [
            (Hazard::FlashFlood, &self.flash_flood),
            (Hazard::DebrisFlow, &self.debris_flow),
            (Hazard::Landslide, &self.landslide),
            (Hazard::LightningFire, &self.lightning_fire),
            (Hazard::SnowmeltFlood, &self.snowmelt_flood),
        ]
    }
}

/// Auto-approval timeouts per level, in milliseconds after a draft arrives; written as
/// durations such as `"30m"`. Absent means off, the default for every level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AutoApproveAfter {
    /// Blue drafts.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::duration_text::optional"
    )]
    pub blue: Option<i64>,
    /// Yellow drafts.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::duration_text::optional"
    )]
    pub yellow: Option<i64>,
    /// Orange drafts.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::duration_text::optional"
    )]
    pub orange: Option<i64>,
    /// Red drafts.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::duration_text::optional"
    )]
    pub red: Option<i64>,
}

impl AutoApproveAfter {
    /// Returns the timeout of drafts at `level`, or `None` when they wait for an officer.
    pub fn for_level(&self, level: Level) -> Option<i64> {
        match level {
            Level::Blue => self.blue,
            Level::Yellow => self.yellow,
            Level::Orange => self.orange,
            Level::Red => self.red,
        }
    }
}

/// The sign-off policy (`[signoff]`): who answers for each hazard, what responsible persons get
/// before sign-off, and whether unsigned drafts approve themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SignOffPolicy {
    /// The department whose duty officers sign the model's drafts of each hazard.
    pub responsible: PerHazard<Department>,
    /// Per hazard, the levels at which a draft goes to responsible persons at once, before
    /// sign-off; the public always waits. Default `["orange", "red"]` for every hazard.
    pub early_release: PerHazard<BTreeSet<Level>>,
    /// Per level, the time after which a draft nobody decided approves itself. Off by default.
    pub auto_approve_after: AutoApproveAfter,
}

impl Default for SignOffPolicy {
    fn default() -> Self {
        let orange_and_red = || BTreeSet::from([Level::Orange, Level::Red]);
        Self {
            responsible: PerHazard {
                flash_flood: Department::WaterResources,
                debris_flow: Department::NaturalResources,
                landslide: Department::NaturalResources,
                lightning_fire: Department::ForestryAndGrassland,
                snowmelt_flood: Department::WaterResources,
            },
            early_release: PerHazard {
                flash_flood: orange_and_red(),
                debris_flow: orange_and_red(),
                landslide: orange_and_red(),
                lightning_fire: orange_and_red(),
                snowmelt_flood: orange_and_red(),
            },
            auto_approve_after: AutoApproveAfter::default(),
        }
    }
}

/// Why a sign-off policy is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignOffPolicyError {
    /// A level goes early while a more severe one waits, which would delay the worse warning.
    #[error(
        "early-release.{hazard}: {released} goes early but the more severe {held} waits for sign-off",
        hazard = hazard.name()
    )]
    SevereLevelHeldBack {
        /// The hazard.
        hazard: Hazard,
        /// The level that goes early.
        released: Level,
        /// The more severe level that does not.
        held: Level,
    },
    /// An auto-approval timeout that is zero or negative, which would skip sign-off entirely.
    #[error("auto-approve-after.{level} must be positive, got {ms} ms")]
    NonPositiveAutoApproval {
        /// The level.
        level: Level,
        /// The timeout given.
        ms: i64,
    },
}

impl SignOffPolicy {
    /// Checks that the policy never holds back a more severe level than one it releases early,
    /// and that auto-approval timeouts are positive.
    ///
    /// # Errors
    /// Returns the first offending setting.
    pub fn validate(&self) -> Result<(), SignOffPolicyError> {
        for (hazard, levels) in self.early_release.entries() {
            let Some(&lowest) = levels.first() else {
                continue;
            };
            if let Some(held) = Level::ALL
                .into_iter()
                .find(|level| *level > lowest && !levels.contains(level))
            {
                return Err(SignOffPolicyError::SevereLevelHeldBack {
                    hazard,
                    released: lowest,
                    held,
                });
            }
        }
        for level in Level::ALL {
            if let Some(ms) = self
                .auto_approve_after
                .for_level(level)
                .filter(|&ms| ms <= 0)
            {
                return Err(SignOffPolicyError::NonPositiveAutoApproval { level, ms });
            }
        }
        Ok(())
    }
}

/// A duty officer: who signs, and for which department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyOfficer {
    /// The officer.
    pub id: OfficerId,
    /// The department the officer signs for.
    pub department: Department,
}

/// Where a draft came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DraftOrigin {
    /// A hazard model; the policy names the responsible department.
    Model,
    /// Issued by hand (IssueWarning); the officer's department answers for it.
    Manual(DutyOfficer),
    /// Received from another agency as CAP.
    Agency {
        /// The agency (CAP `sender`).
        sender: AgencyId,
        /// The department that answers for the agency's warnings here.
        department: Department,
    },
}

/// A warning version offered for sign-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The warning version.
    pub event: WarningEvent,
    /// Where it came from.
    pub origin: DraftOrigin,
    /// Message text written by a person or agency; `None` for the standard text rendered from
    /// the warning.
    pub message: Option<String>,
}

/// What a duty officer changes before approving; at least one part is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// New message text.
    pub message: Option<String>,
    /// New area: county and township codes, not empty.
    pub area_codes: Option<Vec<AreaCode>>,
}

/// Who did something recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditActor {
    /// A hazard model.
    Model,
    /// A duty officer.
    Officer(OfficerId),
    /// Another agency, through CAP.
    Agency(AgencyId),
    /// The auto-approval timeout of the policy.
    AutoApproval,
    /// A rule of this workflow (renewal carry-over, closing an unreleased warning).
    Workflow,
}

/// What happened, as recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A version arrived as a draft of `department`.
    Drafted {
        /// Level of the version.
        level: Level,
        /// Lifecycle status of the version.
        status: Status,
        /// The department that must sign it.
        department: Department,
    },
    /// The draft went to responsible persons before sign-off.
    ReleasedToResponsiblePersons,
    /// A later version replaced the pending draft.
    Superseded {
        /// The version that replaced it.
        by_version: u32,
    },
    /// The officer changed the draft; the fields hold the new values.
    Edited(Edit),
    /// The draft was approved and released to everyone.
    Approved,
    /// The draft was rejected.
    Rejected {
        /// The officer's reason.
        reason: String,
    },
    /// Responsible persons were told to disregard the early-released draft.
    WithdrawnFromResponsiblePersons,
    /// A renewal took the signature, message and area of the approved version.
    RenewalCarriedSignOff {
        /// The approved version whose sign-off it carries.
        signed_version: u32,
    },
    /// A cancellation closed a warning of which nothing had been released.
    ClosedUnreleased,
}

/// One line of the audit trail: who did what, when, to which warning version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Event time of the step.
    pub at: EventTime,
    /// Who took it.
    pub by: AuditActor,
    /// The warning.
    pub warning: WarningId,
    /// The version it concerns.
    pub version: u32,
    /// What happened.
    pub action: AuditAction,
}

/// Who signed a released version, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// An officer, or the auto-approval timeout.
    pub by: AuditActor,
    /// Event time of the approval.
    pub at: EventTime,
}

/// A warning version as it goes to dissemination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasedWarning {
    /// The version, with the area as signed.
    pub event: WarningEvent,
    /// Message text, or `None` for the standard text.
    pub message: Option<String>,
    /// The department that answers for it.
    pub department: Department,
    /// The approval; `None` for a draft released early to responsible persons.
    pub signature: Option<Signature>,
}

/// Who a release is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Responsible persons only: an unsigned draft released early.
    ResponsiblePersons,
    /// Responsible persons and the public channels: a signed version.
    Everyone,
}

/// What dissemination must do after a sign-off step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dispatch {
    /// Deliver a version to an audience.
    Release {
        /// Who gets it.
        audience: Audience,
        /// The version.
        warning: ReleasedWarning,
    },
    /// Tell responsible persons to disregard an early-released draft that was rejected.
    Withdraw {
        /// The warning.
        warning: WarningId,
        /// The rejected version.
        version: u32,
        /// The officer's reason.
        reason: String,
        /// The approved version in force again, if any.
        reinstated: Option<u32>,
    },
}

/// The result of one sign-off step: what to disseminate, and what it added to the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignOffOutcome {
    /// Releases and withdrawals, in order.
    pub dispatches: Vec<Dispatch>,
    /// The audit entries this step recorded, in order.
    pub audit: Vec<AuditEntry>,
}

impl SignOffOutcome {
    /// Returns the warnings this step changed: every change is audited.
    pub fn warnings_changed(&self) -> BTreeSet<WarningId> {
        self.audit
            .iter()
            .map(|entry| entry.warning.clone())
            .collect()
    }
}

/// A version waiting for sign-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The version as proposed.
    pub event: WarningEvent,
    /// Message text, or `None` for the standard text.
    pub message: Option<String>,
    /// Where it came from.
    pub origin: DraftOrigin,
    /// The department that must sign it.
    pub department: Department,
    /// Event time it arrived.
    pub submitted_at: EventTime,
    /// Whether it went to responsible persons before sign-off.
    pub released_early: bool,
    /// Event time at which it approves itself, if the policy says so for its level.
    pub auto_approve_at: Option<EventTime>,
}

/// How a version was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Signed by an officer, by auto-approval, or by renewal carry-over.
    Approved,
    /// Rejected by an officer.
    Rejected,
    /// Closed by a cancellation before anything was released.
    Closed,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
            Decision::Closed => "closed",
        })
    }
}

/// Which drafts a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftScope {
    /// Every department's drafts (administrators).
    AllDepartments,
    /// One department's drafts (its duty officers).
    Department(Department),
}

/// Why a sign-off step was refused. Nothing changes when a step fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignOffError {
    /// No pending draft has this id and version.
    #[error("no draft of warning {warning} version {version}")]
    UnknownDraft {
        /// The warning.
        warning: WarningId,
        /// The version asked for.
        version: u32,
    },
    /// The version was already approved, rejected or closed.
    #[error("warning {warning} version {version} is already {decision}")]
    AlreadyDecided {
        /// The warning.
        warning: WarningId,
        /// The version.
        version: u32,
        /// How it was decided.
        decision: Decision,
    },
    /// The acting department does not answer for this warning.
    #[error("warning {warning} belongs to {responsible}, not to {acting}")]
    WrongDepartment {
        /// The warning.
        warning: WarningId,
        /// The department that answers for it.
        responsible: Department,
        /// The department that tried to act.
        acting: Department,
    },
    /// A newer version exists (or arrived before this one).
    #[error("warning {warning} version {version} is stale: version {latest} is the latest")]
    StaleVersion {
        /// The warning.
        warning: WarningId,
        /// The version given.
        version: u32,
        /// The latest version known.
        latest: u32,
    },
    /// The warning was cancelled and closed; it takes no more versions.
    #[error("warning {warning} is closed and takes no version {version}")]
    ClosedWarning {
        /// The warning.
        warning: WarningId,
        /// The version offered.
        version: u32,
    },
    /// An edit that changes nothing.
    #[error("edit of warning {warning} changes neither message nor area")]
    EmptyEdit {
        /// The warning.
        warning: WarningId,
    },
    /// An edit that removes every area.
    #[error("edit of warning {warning} leaves no area code")]
    EmptyArea {
        /// The warning.
        warning: WarningId,
    },
    /// An edit whose message text is blank.
    #[error("edit of warning {warning} has a blank message")]
    BlankMessage {
        /// The warning.
        warning: WarningId,
    },
    /// A rejection without a reason.
    #[error("rejection of warning {warning} needs a reason")]
    BlankReason {
        /// The warning.
        warning: WarningId,
    },
}

/// The sign-off state of one warning id across its versions: what a node journals per warning,
/// so that nodes sharing one changelog each keep their own warnings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningSignOff {
    department: Department,
    latest_version: u32,
    pending: Option<Draft>,
    /// The version in force for the public.
    approved: Option<ReleasedWarning>,
    /// The version responsible persons hold (early-released or approved) and its level.
    responsible_hold: Option<(u32, Level)>,
    closed_at: Option<EventTime>,
    trail: Vec<AuditEntry>,
}

impl WarningSignOff {
    /// Returns the newest version this sign-off holds: the pending draft's, else the approved
    /// one's (`None` once a rejection left neither).
    pub fn latest_event(&self) -> Option<&WarningEvent> {
        self.pending
            .as_ref()
            .map(|draft| &draft.event)
            .or(self.approved.as_ref().map(|released| &released.event))
    }

    /// Appends an audit entry to the trail and to the step's outcome.
    fn record(
        &mut self,
        outcome: &mut SignOffOutcome,
        at: EventTime,
        by: AuditActor,
        event: &WarningEvent,
        action: AuditAction,
    ) {
        let entry = AuditEntry {
            at,
            by,
            warning: event.id.clone(),
            version: event.version,
            action,
        };
        self.trail.push(entry.clone());
        outcome.audit.push(entry);
    }

    /// Checks that `version` is the pending draft, or says precisely why not.
    fn check_pending(&self, warning: &WarningId, version: u32) -> Result<(), SignOffError> {
        if self
            .pending
            .as_ref()
            .is_some_and(|d| d.event.version == version)
        {
            return Ok(());
        }
        if version > self.latest_version {
            return Err(SignOffError::UnknownDraft {
                warning: warning.clone(),
                version,
            });
        }
        if let Some(decision) = self.decision_of(version) {
            return Err(SignOffError::AlreadyDecided {
                warning: warning.clone(),
                version,
                decision,
            });
        }
        Err(SignOffError::StaleVersion {
            warning: warning.clone(),
            version,
            latest: self.latest_version,
        })
    }

    /// Returns how `version` was decided, from the audit trail.
    fn decision_of(&self, version: u32) -> Option<Decision> {
        self.trail
            .iter()
            .filter(|entry| entry.version == version)
            .find_map(|entry| match entry.action {
                AuditAction::Approved | AuditAction::RenewalCarriedSignOff { .. } => {
                    Some(Decision::Approved)
                }
                AuditAction::Rejected { .. } => Some(Decision::Rejected),
                AuditAction::ClosedUnreleased => Some(Decision::Closed),
                _ => None,
            })
    }

    /// Releases `draft` to everyone under `signature` and records it.
    fn approve(&mut self, draft: Draft, signature: Signature, outcome: &mut SignOffOutcome) {
        let at = signature.at;
        self.record(
            outcome,
            at,
            signature.by.clone(),
            &draft.event,
            AuditAction::Approved,
        );
        self.sign(draft.event, draft.message, signature, outcome);
    }

    /// Makes `event` the approved version, in force for everyone.
    fn sign(
        &mut self,
        event: WarningEvent,
        message: Option<String>,
        signature: Signature,
        outcome: &mut SignOffOutcome,
    ) {
        let at = signature.at;
        self.responsible_hold = Some((event.version, event.level));
        if event.status == Status::Cancelled {
            self.closed_at = Some(at);
        }
        let released = ReleasedWarning {
            event,
            message,
            department: self.department,
            signature: Some(signature),
        };
        self.approved = Some(released.clone());
        outcome.dispatches.push(Dispatch::Release {
            audience: Audience::Everyone,
            warning: released,
        });
    }
}

/// The sign-off desk of all warnings: pending drafts, approved versions and audit trails, keyed
/// by warning id. Serialisable, so an actor can snapshot and restore it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignOffBook {
    warnings: BTreeMap<WarningId, WarningSignOff>,
}

impl SignOffBook {
    /// Creates an empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in a warning version: it becomes the pending draft of its department (superseding
    /// an older pending draft), goes early to responsible persons if the policy says so, carries
    /// the approved signature if it is a plain renewal, or closes an unreleased warning if it is
    /// a cancellation.
    ///
    /// # Errors
    /// [`SignOffError::StaleVersion`] when the version is not newer than the latest known,
    /// [`SignOffError::ClosedWarning`] after a signed cancellation, and
    /// [`SignOffError::WrongDepartment`] when a manual or agency version names another
    /// department than the warning's first version.
    pub fn submit(
        &mut self,
        submission: Submission,
        at: EventTime,
        policy: &SignOffPolicy,
    ) -> Result<SignOffOutcome, SignOffError> {
        let Submission {
            event,
            origin,
            message,
        } = submission;
        let submitted_department = match &origin {
            DraftOrigin::Model => None,
            DraftOrigin::Manual(officer) => Some(officer.department),
            DraftOrigin::Agency { department, .. } => Some(*department),
        };
        let department = match self.warnings.get(&event.id) {
            Some(known) => {
                if event.version <= known.latest_version {
                    return Err(SignOffError::StaleVersion {
                        warning: event.id.clone(),
                        version: event.version,
                        latest: known.latest_version,
                    });
                }
                if known.closed_at.is_some() {
                    return Err(SignOffError::ClosedWarning {
                        warning: event.id.clone(),
                        version: event.version,
                    });
                }
                if let Some(acting) = submitted_department.filter(|&d| d != known.department) {
                    return Err(SignOffError::WrongDepartment {
                        warning: event.id.clone(),
                        responsible: known.department,
                        acting,
                    });
                }
                known.department
            }
            None => submitted_department.unwrap_or(*policy.responsible.get(event.hazard)),
        };
        let sign_off = self
            .warnings
            .entry(event.id.clone())
            .or_insert_with(|| WarningSignOff {
                department,
                latest_version: 0,
                pending: None,
                approved: None,
                responsible_hold: None,
                closed_at: None,
                trail: Vec::new(),
            });
        sign_off.latest_version = event.version;
        let mut outcome = SignOffOutcome::default();
        let drafted_by = match &origin {
            DraftOrigin::Model => AuditActor::Model,
            DraftOrigin::Manual(officer) => AuditActor::Officer(officer.id.clone()),
            DraftOrigin::Agency { sender, .. } => AuditActor::Agency(sender.clone()),
        };
        sign_off.record(
            &mut outcome,
            at,
            drafted_by,
            &event,
            AuditAction::Drafted {
                level: event.level,
                status: event.status,
                department,
            },
        );
        let superseded = sign_off.pending.take();
        if let Some(old) = &superseded {
            sign_off.record(
                &mut outcome,
                at,
                AuditActor::Workflow,
                &old.event,
                AuditAction::Superseded {
                    by_version: event.version,
                },
            );
        }

        let nothing_released = sign_off.approved.is_none() && sign_off.responsible_hold.is_none();
        if event.status == Status::Cancelled && nothing_released {
            sign_off.record(
                &mut outcome,
                at,
                AuditActor::Workflow,
                &event,
                AuditAction::ClosedUnreleased,
            );
            sign_off.closed_at = Some(at);
            return Ok(outcome);
        }

        if let Some(approved) = sign_off.approved.as_ref().filter(|approved| {
            event.status == Status::Renewed
                && superseded.is_none()
                && approved.event.level == event.level
                && sign_off.responsible_hold == Some((approved.event.version, approved.event.level))
        }) {
            let signed_version = approved.event.version;
            let message = approved.message.clone();
            let signature = approved
                .signature
                .clone()
                .expect("an approved version carries its signature");
            let renewal = WarningEvent {
                area_codes: approved.event.area_codes.clone(),
                ..event
            };
            sign_off.record(
                &mut outcome,
                at,
                AuditActor::Workflow,
                &renewal,
                AuditAction::RenewalCarriedSignOff { signed_version },
            );
            sign_off.sign(renewal, message, signature, &mut outcome);
            return Ok(outcome);
        }

        let not_lower_than_held = sign_off
            .responsible_hold
            .is_none_or(|(_, held)| event.level >= held);
        let released_early = event.status != Status::Cancelled
            && not_lower_than_held
            && policy
                .early_release
                .get(event.hazard)
                .contains(&event.level);
        let draft = Draft {
            auto_approve_at: policy
                .auto_approve_after
                .for_level(event.level)
                .map(|after_ms| at.plus_ms(after_ms)),
            event,
            message,
            origin,
            department,
            submitted_at: at,
            released_early,
        };
        if released_early {
            sign_off.record(
                &mut outcome,
                at,
                AuditActor::Workflow,
                &draft.event,
                AuditAction::ReleasedToResponsiblePersons,
            );
            sign_off.responsible_hold = Some((draft.event.version, draft.event.level));
            outcome.dispatches.push(Dispatch::Release {
                audience: Audience::ResponsiblePersons,
                warning: ReleasedWarning {
                    event: draft.event.clone(),
                    message: draft.message.clone(),
                    department,
                    signature: None,
                },
            });
        }
        sign_off.pending = Some(draft);
        Ok(outcome)
    }

    /// Approves the pending draft `version` of `warning` for `officer`, after applying `edit`
    /// if given, and releases it to everyone.
    ///
    /// # Errors
    /// [`SignOffError::UnknownDraft`], [`SignOffError::WrongDepartment`],
    /// [`SignOffError::StaleVersion`], [`SignOffError::AlreadyDecided`], and for a bad edit
    /// [`SignOffError::EmptyEdit`], [`SignOffError::EmptyArea`] or [`SignOffError::BlankMessage`].
    pub fn approve(
        &mut self,
        warning: &WarningId,
        version: u32,
        officer: &DutyOfficer,
        edit: Option<Edit>,
        at: EventTime,
    ) -> Result<SignOffOutcome, SignOffError> {
        let sign_off = self.decidable(warning, version, officer)?;
        let edit = edit.map(|edit| checked_edit(warning, edit)).transpose()?;
        let mut draft = sign_off
            .pending
            .take()
            .expect("decidable checked the draft");
        let mut outcome = SignOffOutcome::default();
        let by = AuditActor::Officer(officer.id.clone());
        if let Some(edit) = edit {
            if let Some(message) = &edit.message {
                draft.message = Some(message.clone());
            }
            if let Some(area_codes) = &edit.area_codes {
                draft.event.area_codes = area_codes.clone();
            }
            sign_off.record(
                &mut outcome,
                at,
                by.clone(),
                &draft.event,
                AuditAction::Edited(edit),
            );
        }
        sign_off.approve(draft, Signature { by, at }, &mut outcome);
        Ok(outcome)
    }

    /// Rejects the pending draft `version` of `warning` for `officer`; withdraws it from
    /// responsible persons if it went to them early.
    ///
    /// # Errors
    /// [`SignOffError::BlankReason`], [`SignOffError::UnknownDraft`],
    /// [`SignOffError::WrongDepartment`], [`SignOffError::StaleVersion`] and
    /// [`SignOffError::AlreadyDecided`].
    pub fn reject(
        &mut self,
        warning: &WarningId,
        version: u32,
        officer: &DutyOfficer,
        reason: &str,
        at: EventTime,
    ) -> Result<SignOffOutcome, SignOffError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(SignOffError::BlankReason {
                warning: warning.clone(),
            });
        }
        let sign_off = self.decidable(warning, version, officer)?;
        let draft = sign_off
            .pending
            .take()
            .expect("decidable checked the draft");
        let mut outcome = SignOffOutcome::default();
        sign_off.record(
            &mut outcome,
            at,
            AuditActor::Officer(officer.id.clone()),
            &draft.event,
            AuditAction::Rejected {
                reason: reason.to_owned(),
            },
        );
        if sign_off.responsible_hold.map(|(held, _)| held) == Some(version) {
            sign_off.responsible_hold = sign_off
                .approved
                .as_ref()
                .map(|approved| (approved.event.version, approved.event.level));
            sign_off.record(
                &mut outcome,
                at,
                AuditActor::Workflow,
                &draft.event,
                AuditAction::WithdrawnFromResponsiblePersons,
            );
            outcome.dispatches.push(Dispatch::Withdraw {
                warning: warning.clone(),
                version,
                reason: reason.to_owned(),
                reinstated: sign_off.responsible_hold.map(|(held, _)| held),
            });
        }
        Ok(outcome)
    }

    /// Approves every pending draft whose auto-approval time has come by `now`, in warning-id
    /// order.
    pub fn auto_approve_due(&mut self, now: EventTime) -> SignOffOutcome {
        let mut outcome = SignOffOutcome::default();
        for sign_off in self.warnings.values_mut() {
            let due = sign_off
                .pending
                .as_ref()
                .and_then(|draft| draft.auto_approve_at)
                .is_some_and(|due_at| due_at <= now);
            if due {
                let draft = sign_off.pending.take().expect("due drafts are pending");
                let signature = Signature {
                    by: AuditActor::AutoApproval,
                    at: now,
                };
                sign_off.approve(draft, signature, &mut outcome);
            }
        }
        outcome
    }

    /// Returns the earliest pending auto-approval time, for the caller's timer.
    pub fn next_auto_approval(&self) -> Option<EventTime> {
        self.warnings
            .values()
            .filter_map(|sign_off| sign_off.pending.as_ref()?.auto_approve_at)
            .min()
    }

    /// Returns the pending drafts in `scope`, in warning-id order.
    pub fn pending_drafts(&self, scope: DraftScope) -> impl Iterator<Item = &Draft> {
        self.warnings
            .values()
            .filter(move |sign_off| match scope {
                DraftScope::AllDepartments => true,
                DraftScope::Department(department) => sign_off.department == department,
            })
            .filter_map(|sign_off| sign_off.pending.as_ref())
    }

    /// Returns the department that answers for `warning`, if the book knows it.
    pub fn department_of(&self, warning: &WarningId) -> Option<Department> {
        self.warnings
            .get(warning)
            .map(|sign_off| sign_off.department)
    }

    /// Returns the version of `warning` in force for the public, if one was approved.
    pub fn approved(&self, warning: &WarningId) -> Option<&ReleasedWarning> {
        self.warnings.get(warning)?.approved.as_ref()
    }

    /// Returns the audit trail of `warning`, oldest first.
    pub fn trail(&self, warning: &WarningId) -> &[AuditEntry] {
        self.warnings
            .get(warning)
            .map_or(&[], |sign_off| &sign_off.trail)
    }

    /// Returns the ids of the warnings in the book, in order.
    pub fn warning_ids(&self) -> impl Iterator<Item = &WarningId> {
        self.warnings.keys()
    }

    /// Returns the sign-off state of `warning`, as [`SignOffBook::from_sign_offs`] takes it back.
    pub fn sign_off_of(&self, warning: &WarningId) -> Option<&WarningSignOff> {
        self.warnings.get(warning)
    }

    /// Builds a book from the sign-off states of its warnings (a changelog read back).
    pub fn from_sign_offs(
        sign_offs: impl IntoIterator<Item = (WarningId, WarningSignOff)>,
    ) -> Self {
        Self {
            warnings: sign_offs.into_iter().collect(),
        }
    }

    /// Takes over the sign-off state journaled for `warning` when this node becomes its owner:
    /// the journaled state replaces this book's unless this book already knows a newer version
    /// (which the other node never saw), or is the same version further along (the journal
    /// holds an earlier state of it: its trail is the start of this one's). Returns whether
    /// it took it.
    pub fn take_over(&mut self, warning: WarningId, journaled: WarningSignOff) -> bool {
        let further_here = self.warnings.get(&warning).is_some_and(|known| {
            known.latest_version > journaled.latest_version
                || (known.latest_version == journaled.latest_version
                    && known.trail.starts_with(&journaled.trail))
        });
        if !further_here {
            self.warnings.insert(warning, journaled);
        }
        !further_here
    }

    /// Takes the book apart into the sign-off states of its warnings.
    pub fn into_sign_offs(self) -> impl Iterator<Item = (WarningId, WarningSignOff)> {
        self.warnings.into_iter()
    }

    /// Forgets the warnings closed before `cutoff` (their audit trails were handed out in each
    /// step's outcome) and returns their ids; keeps memory bounded.
    pub fn forget_closed_before(&mut self, cutoff: EventTime) -> Vec<WarningId> {
        let closed: Vec<WarningId> = self
            .warnings
            .iter()
            .filter(|(_, sign_off)| sign_off.closed_at.is_some_and(|at| at < cutoff))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &closed {
            self.warnings.remove(id);
        }
        closed
    }

    /// Returns the sign-off of `warning` if `officer` may decide its pending draft `version`.
    fn decidable(
        &mut self,
        warning: &WarningId,
        version: u32,
        officer: &DutyOfficer,
    ) -> Result<&mut WarningSignOff, SignOffError> {
        let Some(sign_off) = self.warnings.get_mut(warning) else {
            return Err(SignOffError::UnknownDraft {
                warning: warning.clone(),
                version,
            });
        };
        if sign_off.department != officer.department {
            return Err(SignOffError::WrongDepartment {
                warning: warning.clone(),
                responsible: sign_off.department,
                acting: officer.department,
            });
        }
        sign_off.check_pending(warning, version)?;
        Ok(sign_off)
    }
}

/// Checks an edit and normalises its area (sorted, without duplicates).
fn checked_edit(warning: &WarningId, mut edit: Edit) -> Result<Edit, SignOffError> {
    if edit.message.is_none() && edit.area_codes.is_none() {
        return Err(SignOffError::EmptyEdit {
            warning: warning.clone(),
        });
    }
    if edit
        .message
        .as_ref()
        .is_some_and(|message| message.trim().is_empty())
    {
        return Err(SignOffError::BlankMessage {
            warning: warning.clone(),
        });
    }
    if let Some(area_codes) = &mut edit.area_codes {
        area_codes.sort();
        area_codes.dedup();
        if area_codes.is_empty() {
            return Err(SignOffError::EmptyArea {
                warning: warning.clone(),
            });
        }
    }
    Ok(edit)
}

#[cfg(test)]
mod tests;
