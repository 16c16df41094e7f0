//! Who may call what: bearer tokens mapped to principals (a department's duty officer, the
//! responsible person of a unit, a subscriber, an administrator), and the authorization of each
//! `WarningService` operation and of SQL queries. Pure decisions: the gRPC layer in `cluster`
//! turns [`Denied::Unauthenticated`] into `UNAUTHENTICATED` and [`Denied::PermissionDenied`] into
//! `PERMISSION_DENIED`.
//!
//! # Who may do what
//! | operation | allowed |
//! |---|---|
//! | Subscribe, ListActive, GetWarning | every principal |
//! | Acknowledge | the responsible person the delivery was addressed to, nobody else (an acknowledgement is that person's answer to the forced call; no one answers for them) |
//! | ListDrafts | duty officers (their department's drafts) and administrators (all drafts) |
//! | Approve, Reject | a duty officer of the draft's department (谁发布、谁负责: administrators do not sign) |
//! | IssueWarning | duty officers, in their own department's name |
//! | SQL | duty officers and administrators: the tables show unsigned drafts and raw observations |
//! | the peer API (`tianshan.peer.v1`: cluster view, table snapshots for scatter-gather SQL) | peers only; a peer token opens nothing else |
//!
//! # Token file
//! A UTF-8 CSV file with the header `token,principal,role,department,unit`, one token per row:
//! - `token`: the bearer token, at least [`MIN_TOKEN_CHARS`] visible ASCII characters, unique.
//! - `principal`: the officer id, recipient id or account name the token stands for.
//! - `role`: `duty-officer`, `responsible-person`, `subscriber`, `admin` or `peer`. A `peer` row
//!   is the token the nodes of one cluster present to each other: every node reads the same
//!   file, calls its peers with the first `peer` row's token and accepts any `peer` row's.
//! - `department`: for `duty-officer` only: `water-resources`, `natural-resources`,
//!   `forestry-and-grassland` or `meteorology`.
//! - `unit`: for `responsible-person` only: the GB/T 2260 code of the person's unit
//!   (6 digits for a county, 9 for a township, 12 for a village).
//!
//! The file holds the tokens in clear, so it is kept like any secret (a Kubernetes Secret, mode
//! 0600). Tokens are compared in constant time; their length is not hidden.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ids::{AccountId, AreaCode, OfficerId, RecipientId};
use crate::signoff::{Department, DraftScope, DutyOfficer};

/// The shortest token the table accepts: 128 bits of hex, so tokens cannot be guessed.
pub const MIN_TOKEN_CHARS: usize = 32;

/// Who a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A duty officer, who signs and issues the warnings of one department.
    DutyOfficer(DutyOfficer),
    /// A responsible person, who receives and acknowledges the warnings of one unit.
    ResponsiblePerson {
        /// The person, as deliveries address them.
        recipient: RecipientId,
        /// The county, township or village the person answers for.
        unit: AreaCode,
    },
    /// An application that reads published warnings.
    Subscriber(AccountId),
    /// An operator of the system.
    Admin(AccountId),
    /// Another node of the cluster.
    Peer(AccountId),
}

/// A call to be authorized, with what the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// `WarningService.Subscribe`.
    Subscribe,
    /// `WarningService.Acknowledge` of a delivery addressed to `recipient`.
    Acknowledge {
        /// The person the delivery was addressed to.
        recipient: &'a RecipientId,
    },
    /// `WarningService.ListActive`.
    ListActive,
    /// `WarningService.GetWarning`.
    GetWarning,
    /// `WarningService.ListDrafts`; list what [`Principal::draft_scope`] allows.
    ListDrafts,
    /// `WarningService.Approve` of a draft of `draft_department`; `None` when no such draft
    /// exists, which the caller reports as not found once this check passes.
    Approve {
        /// The department of the draft (`SignOffBook::department_of`).
        draft_department: Option<Department>,
    },
    /// `WarningService.Reject`, as for [`Operation::Approve`].
    Reject {
        /// The department of the draft (`SignOffBook::department_of`).
        draft_department: Option<Department>,
    },
    /// `WarningService.IssueWarning`, in the caller's own department's name.
    IssueWarning,
    /// A SQL query (DataFusion or Flight SQL).
    SqlQuery,
    /// A call of the peer API between nodes.
    PeerApi,
}

impl Operation<'_> {
    /// Returns the operation's name as the API spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Subscribe => "Subscribe",
            Operation::Acknowledge { .. } => "Acknowledge",
            Operation::ListActive => "ListActive",
            Operation::GetWarning => "GetWarning",
            Operation::ListDrafts => "ListDrafts",
            Operation::Approve { .. } => "Approve",
            Operation::Reject { .. } => "Reject",
            Operation::IssueWarning => "IssueWarning",
            Operation::SqlQuery => "SQL",
            Operation::PeerApi => "PeerApi",
        }
    }
}

/// What was wrong with the credentials of an unauthenticated call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// The call carried no bearer token.
    Missing,
    /// The token is not in the table.
    Unknown,
}

impl fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenProblem::Missing => "no bearer token",
            TokenProblem::Unknown => "unknown bearer token",
        })
    }
}

/// Why an authenticated principal may not make a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenialReason {
    /// Only duty officers sign and issue warnings.
    #[error("{operation} is for duty officers")]
    DutyOfficersOnly {
        /// The operation refused.
        operation: &'static str,
    },
    /// A duty officer tried to decide another department's draft.
    #[error("the draft belongs to {responsible}; a duty officer of {acting} cannot decide it")]
    OtherDepartment {
        /// The department of the draft.
        responsible: Department,
        /// The officer's department.
        acting: Department,
    },
    /// Someone other than the addressed person tried to acknowledge a delivery.
    #[error("only the addressed responsible person may acknowledge a delivery")]
    NotTheAddressee,
    /// The peer API is for the cluster's nodes.
    #[error("{operation} is for the nodes of the cluster only")]
    PeersOnly {
        /// The operation refused.
        operation: &'static str,
    },
    /// A node's token opens the peer API and nothing else.
    #[error("a peer token cannot call {operation}")]
    NotForPeers {
        /// The operation refused.
        operation: &'static str,
    },
    /// Drafts and SQL are for duty officers and administrators.
    #[error("{operation} is for duty officers and administrators")]
    OfficersAndAdminsOnly {
        /// The operation refused.
        operation: &'static str,
    },
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No token, or a token nobody holds.
    #[error("unauthenticated: {problem}")]
    Unauthenticated {
        /// What was wrong.
        problem: TokenProblem,
    },
    /// The principal is known but may not make this call.
    #[error("permission denied: {reason}")]
    PermissionDenied {
        /// Why not.
        reason: DenialReason,
    },
}

impl Principal {
    /// Returns which drafts the principal may list, or `None` when it may list none.
    pub fn draft_scope(&self) -> Option<DraftScope> {
        match self {
            Principal::DutyOfficer(officer) => Some(DraftScope::Department(officer.department)),
            Principal::Admin(_) => Some(DraftScope::AllDepartments),
            Principal::ResponsiblePerson { .. } | Principal::Subscriber(_) | Principal::Peer(_) => {
                None
            }
        }
    }

    /// Decides whether the principal may make `operation`.
    ///
    /// # Errors
    /// Returns the reason of a refusal.
    pub fn permits(&self, operation: Operation<'_>) -> Result<(), DenialReason> {
        // A peer token travels between nodes; it opens the peer API and nothing else.
        if matches!(self, Principal::Peer(_)) && operation != Operation::PeerApi {
            return Err(DenialReason::NotForPeers {
                operation: operation.name(),
            });
        }
        match operation {
            Operation::PeerApi => match self {
                Principal::Peer(_) => Ok(()),
                _ => Err(DenialReason::PeersOnly {
                    operation: operation.name(),
                }),
            },
            Operation::Subscribe | Operation::ListActive | Operation::GetWarning => Ok(()),
            Operation::Acknowledge { recipient } => match self {
                Principal::ResponsiblePerson { recipient: own, .. } if own == recipient => Ok(()),
                _ => Err(DenialReason::NotTheAddressee),
            },
            Operation::ListDrafts | Operation::SqlQuery => match self {
                Principal::DutyOfficer(_) | Principal::Admin(_) => Ok(()),
                _ => Err(DenialReason::OfficersAndAdminsOnly {
                    operation: operation.name(),
                }),
            },
            Operation::Approve { draft_department } | Operation::Reject { draft_department } => {
                let Principal::DutyOfficer(officer) = self else {
                    return Err(DenialReason::DutyOfficersOnly {
                        operation: operation.name(),
                    });
                };
                match draft_department {
                    Some(responsible) if responsible != officer.department => {
                        Err(DenialReason::OtherDepartment {
                            responsible,
                            acting: officer.department,
                        })
                    }
                    _ => Ok(()),
                }
            }
            Operation::IssueWarning => match self {
                Principal::DutyOfficer(_) => Ok(()),
                _ => Err(DenialReason::DutyOfficersOnly {
                    operation: operation.name(),
                }),
            },
        }
    }
}

/// Returns the token of an `authorization` header value `Bearer <token>` (scheme in any case),
/// or `None` for another scheme or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A token as stored: never printed.
struct StoredToken(Box<[u8]>);

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredToken(***)")
    }
}

/// Returns whether two tokens are equal, taking the same time wherever they differ.
fn tokens_match(stored: &[u8], presented: &[u8]) -> bool {
    if stored.len() != presented.len() {
        return false;
    }
    let difference = std::hint::black_box(stored)
        .iter()
        .zip(presented)
        .fold(0_u8, |acc, (a, b)| acc | (a ^ b));
    difference == 0
}

/// The token table: who each bearer token stands for.
#[derive(Debug)]
pub struct TokenTable {
    entries: Vec<(StoredToken, Principal)>,
}

/// Why a token file could not be loaded; each variant names the file and, for a bad row, its
/// line and field.
#[derive(Debug, thiserror::Error)]
pub enum TokenTableError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A malformed row or header: wrong column count, missing column.
    #[error("{}: {source}", file.display())]
    Csv {
        /// The file.
        file: PathBuf,
        /// The parse error, with line and field.
        source: csv::Error,
    },
    /// A field the role needs is empty.
    #[error("{} line {line}: field {field} is required for role {role}", file.display())]
    MissingField {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The empty field.
        field: &'static str,
        /// The row's role.
        role: String,
    },
    /// A field the role does not use is filled in, which suggests a mistaken role.
    #[error("{} line {line}: field {field} must be empty for role {role}", file.display())]
    UnexpectedField {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The filled field.
        field: &'static str,
        /// The row's role.
        role: String,
    },
    /// A field holds a value outside its set or format.
    #[error("{} line {line}: field {field} has invalid value `{value}` (expected {expected})", file.display())]
    InvalidValue {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The field.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What the field accepts.
        expected: &'static str,
    },
    /// A token too short to resist guessing, or with characters a bearer header cannot carry.
    #[error(
        "{} line {line}: field token must be at least {MIN_TOKEN_CHARS} visible ASCII characters",
        file.display()
    )]
    WeakToken {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
    },
    /// The same token on two rows.
    #[error("{} line {line}: field token repeats the token of line {first_line}", file.display())]
    DuplicateToken {
        /// The file.
        file: PathBuf,
        /// The 1-based line of the repeat.
        line: u64,
        /// The 1-based line of the first occurrence.
        first_line: u64,
    },
}

#[derive(Deserialize)]
struct TokenRow {
    token: String,
    principal: String,
    role: String,
    department: String,
    unit: String,
}

impl TokenTable {
    /// Loads the token file at `path` (format in the module docs).
    ///
    /// # Errors
    /// Returns the first problem, naming the file, line and field.
    pub fn load(path: &Path) -> Result<Self, TokenTableError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenTableError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::from_csv(&text, path)
    }

    /// Parses token-file text; `file` names it in errors.
    ///
    /// # Errors
    /// Returns the first problem, naming the file, line and field.
    pub fn from_csv(text: &str, file: &Path) -> Result<Self, TokenTableError> {
        let csv_error = |source| TokenTableError::Csv {
            file: file.to_path_buf(),
            source,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader.headers().map_err(csv_error)?.clone();
        let mut entries: Vec<(StoredToken, Principal)> = Vec::new();
        let mut lines: Vec<u64> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            let line = record.position().map_or(0, csv::Position::line);
            let row: TokenRow = record.deserialize(Some(&headers)).map_err(csv_error)?;
            let (token, principal) = parse_row(row, file, line)?;
            if let Some(first) = entries
                .iter()
                .position(|(stored, _)| tokens_match(&stored.0, &token.0))
            {
                return Err(TokenTableError::DuplicateToken {
                    file: file.to_path_buf(),
                    line,
                    first_line: lines[first],
                });
            }
            entries.push((token, principal));
            lines.push(line);
        }
        Ok(Self { entries })
    }

    /// Returns the principal of `token`.
    ///
    /// Every stored token is compared, in constant time, so the time taken does not tell which
    /// entry (or how much of one) matched.
    ///
    /// # Errors
    /// [`Denied::Unauthenticated`] when there is no token or nobody holds it.
    pub fn authenticate(&self, token: Option<&str>) -> Result<&Principal, Denied> {
        let token = token.ok_or(Denied::Unauthenticated {
            problem: TokenProblem::Missing,
        })?;
        let mut found = None;
        for (stored, principal) in &self.entries {
            if tokens_match(&stored.0, token.as_bytes()) {
                found = Some(principal);
            }
        }
        found.ok_or(Denied::Unauthenticated {
            problem: TokenProblem::Unknown,
        })
    }

    /// Returns the token this node presents to its peers: the first `peer` row's, or `None`
    /// when the table has none.
    pub fn peer_token(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, principal)| matches!(principal, Principal::Peer(_)))
            .and_then(|(stored, _)| std::str::from_utf8(&stored.0).ok())
    }

    /// Authenticates `token` and decides whether its principal may make `operation`; returns
    /// the principal, whose identity the call then acts and is audited under.
    ///
    /// # Errors
    /// [`Denied::Unauthenticated`] for a missing or unknown token, [`Denied::PermissionDenied`]
    /// when the principal may not make the call.
    pub fn authorize(
        &self,
        token: Option<&str>,
        operation: Operation<'_>,
    ) -> Result<Principal, Denied> {
        let principal = self.authenticate(token)?;
        principal
            .permits(operation)
            .map_err(|reason| Denied::PermissionDenied { reason })?;
        Ok(principal.clone())
    }
}

/// The `role` column of a token row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowRole {
    DutyOfficer,
    ResponsiblePerson,
    Subscriber,
    Admin,
    Peer,
}

/// Turns one row into a stored token and its principal.
fn parse_row(
    row: TokenRow,
    file: &Path,
    line: u64,
) -> Result<(StoredToken, Principal), TokenTableError> {
    let usable =
        row.token.len() >= MIN_TOKEN_CHARS && row.token.bytes().all(|b| b.is_ascii_graphic());
    if !usable {
        return Err(TokenTableError::WeakToken {
            file: file.to_path_buf(),
            line,
        });
    }
    let missing = |field| TokenTableError::MissingField {
        file: file.to_path_buf(),
        line,
        field,
        role: row.role.clone(),
    };
    let unexpected = |field| TokenTableError::UnexpectedField {
        file: file.to_path_buf(),
        line,
        field,
        role: row.role.clone(),
    };
    let invalid = |field, value: &str, expected| TokenTableError::InvalidValue {
        file: file.to_path_buf(),
        line,
        field,
        value: value.to_owned(),
        expected,
    };
    if row.principal.is_empty() {
        return Err(missing("principal"));
    }
    let role = match row.role.as_str() {
        "duty-officer" => RowRole::DutyOfficer,
        "responsible-person" => RowRole::ResponsiblePerson,
        "subscriber" => RowRole::Subscriber,
        "admin" => RowRole::Admin,
        "peer" => RowRole::Peer,
        other => {
            return Err(invalid(
                "role",
                other,
                "duty-officer, responsible-person, subscriber, admin or peer",
            ))
        }
    };
    let needs_department = role == RowRole::DutyOfficer;
    let needs_unit = role == RowRole::ResponsiblePerson;
    match (needs_department, row.department.is_empty()) {
        (true, true) => return Err(missing("department")),
        (false, false) => return Err(unexpected("department")),
        _ => {}
    }
    match (needs_unit, row.unit.is_empty()) {
        (true, true) => return Err(missing("unit")),
        (false, false) => return Err(unexpected("unit")),
        _ => {}
    }
    let principal = match role {
        RowRole::DutyOfficer => {
            let department = Department::parse(&row.department).ok_or_else(|| {
                invalid(
                    "department",
                    &row.department,
                    "water-resources, natural-resources, forestry-and-grassland or meteorology",
                )
            })?;
            Principal::DutyOfficer(DutyOfficer {
                id: OfficerId::new(&row.principal),
                department,
            })
        }
        RowRole::ResponsiblePerson => {
            let is_admin_code = matches!(row.unit.len(), 6 | 9 | 12)
                && row.unit.bytes().all(|b| b.is_ascii_digit());
            if !is_admin_code {
                return Err(invalid(
                    "unit",
                    &row.unit,
                    "a GB/T 2260 code of 6, 9 or 12 digits",
                ));
            }
            Principal::ResponsiblePerson {
                recipient: RecipientId::new(&row.principal),
                unit: AreaCode::new(&row.unit),
            }
        }
        RowRole::Subscriber => Principal::Subscriber(AccountId::new(&row.principal)),
        RowRole::Admin => Principal::Admin(AccountId::new(&row.principal)),
        RowRole::Peer => Principal::Peer(AccountId::new(&row.principal)),
    };
    Ok((
        StoredToken(row.token.into_bytes().into_boxed_slice()),
        principal,
    ))
}

#[cfg(test)]
mod tests;
