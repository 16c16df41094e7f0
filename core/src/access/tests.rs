use super::*;

const WATER: &str = "tok-water-officer-0000000000000001";
const FOREST: &str = "tok-forest-officer-000000000000002";
const PERSON: &str = "tok-person-township-00000000000003";
const NEIGHBOUR: &str = "tok-person-neighbour-0000000000004";
const SUBSCRIBER: &str = "tok-subscriber-app-000000000000005";
const ADMIN: &str = "tok-admin-operator-000000000000006";
const PEER: &str = "tok-peer-node-0000000000000000007";
const SECOND_PEER: &str = "tok-peer-node-0000000000000000008";

fn table_text() -> String {
    format!(
        "token,principal,role,department,unit\n\
         {WATER},wang,duty-officer,water-resources,\n\
         {FOREST},li,duty-officer,forestry-and-grassland,\n\
         {PERSON},r-653125100-01,responsible-person,,653125100\n\
         {NEIGHBOUR}, r-653125101-01 ,responsible-person,,653125101\n\
         {SUBSCRIBER},one-key-call-app,subscriber,,\n\
         {ADMIN},ops,admin,,\n\
         {PEER},tianshan-nodes,peer,,\n\
         {SECOND_PEER},tianshan-nodes-next,peer,,\n"
    )
}

fn table() -> TokenTable {
    TokenTable::from_csv(&table_text(), Path::new("tokens.csv")).expect("valid table")
}

fn person() -> RecipientId {
    RecipientId::new("r-653125100-01")
}

fn denied(reason: DenialReason) -> Result<(), Denied> {
    Err(Denied::PermissionDenied { reason })
}

/// Runs `authorize` and keeps only the verdict.
fn verdict(token: &str, operation: Operation<'_>) -> Result<(), Denied> {
    table().authorize(Some(token), operation).map(|_| ())
}

#[test]
fn loads_every_role_with_its_fields() {
    let table = table();
    assert_eq!(
        table.authenticate(Some(WATER)),
        Ok(&Principal::DutyOfficer(DutyOfficer {
            id: OfficerId::new("wang"),
            department: Department::WaterResources,
        }))
    );
    assert_eq!(
        table.authenticate(Some(NEIGHBOUR)),
        Ok(&Principal::ResponsiblePerson {
            recipient: RecipientId::new("r-653125101-01"),
            unit: AreaCode::new("653125101"),
        })
    );
    assert_eq!(
        table.authenticate(Some(SUBSCRIBER)),
        Ok(&Principal::Subscriber(AccountId::new("one-key-call-app")))
    );
    assert_eq!(
        table.authenticate(Some(ADMIN)),
        Ok(&Principal::Admin(AccountId::new("ops")))
    );
}

#[test]
fn loads_a_token_file_from_disk() {
    let path = std::env::temp_dir().join(format!("tianshan-tokens-{}.csv", std::process::id()));
    std::fs::write(&path, table_text()).expect("temp file writable");
    let loaded = TokenTable::load(&path);
    std::fs::remove_file(&path).expect("temp file removable");
    let table = loaded.expect("valid table");
    assert!(table.authenticate(Some(ADMIN)).is_ok());

    let missing = TokenTable::load(&path).expect_err("file removed");
    assert!(matches!(missing, TokenTableError::Io { .. }), "{missing}");
}

#[test]
fn a_missing_token_is_unauthenticated_for_every_operation() {
    let recipient = person();
    let operations = [
        Operation::Subscribe,
        Operation::Acknowledge {
            recipient: &recipient,
        },
        Operation::ListActive,
        Operation::GetWarning,
        Operation::ListDrafts,
        Operation::Approve {
            draft_department: Some(Department::WaterResources),
        },
        Operation::Reject {
            draft_department: Some(Department::WaterResources),
        },
        Operation::IssueWarning,
        Operation::SqlQuery,
    ];
    let table = table();
    for operation in operations {
        assert_eq!(
            table.authorize(None, operation),
            Err(Denied::Unauthenticated {
                problem: TokenProblem::Missing
            }),
            "{}",
            operation.name()
        );
        assert_eq!(
            table.authorize(Some("tok-nobody-000000000000000000000000"), operation),
            Err(Denied::Unauthenticated {
                problem: TokenProblem::Unknown
            }),
            "{}",
            operation.name()
        );
    }
}

#[test]
fn near_misses_of_a_token_are_unknown() {
    let table = table();
    let unknown = Err(Denied::Unauthenticated {
        problem: TokenProblem::Unknown,
    });
    let last_char_changed = format!("{}2", &WATER[..WATER.len() - 1]);
    for near_miss in [
        &WATER[..WATER.len() - 1],
        &format!("{WATER}0"),
        last_char_changed.as_str(),
        "",
    ] {
        assert_eq!(table.authenticate(Some(near_miss)), unknown, "{near_miss}");
    }
}

#[test]
fn everyone_authenticated_may_subscribe_list_and_get() {
    for token in [WATER, FOREST, PERSON, NEIGHBOUR, SUBSCRIBER, ADMIN] {
        for operation in [
            Operation::Subscribe,
            Operation::ListActive,
            Operation::GetWarning,
        ] {
            assert_eq!(verdict(token, operation), Ok(()), "{token} {operation:?}");
        }
    }
}

#[test]
fn only_the_addressed_person_acknowledges() {
    let recipient = person();
    let acknowledge = Operation::Acknowledge {
        recipient: &recipient,
    };
    assert_eq!(
        table().authorize(Some(PERSON), acknowledge),
        Ok(Principal::ResponsiblePerson {
            recipient: person(),
            unit: AreaCode::new("653125100"),
        })
    );
    for token in [NEIGHBOUR, WATER, SUBSCRIBER, ADMIN] {
        assert_eq!(
            verdict(token, acknowledge),
            denied(DenialReason::NotTheAddressee),
            "{token}"
        );
    }
}

#[test]
fn drafts_are_listed_per_department_and_all_for_admins() {
    let table = table();
    let scope = |token| {
        table
            .authorize(Some(token), Operation::ListDrafts)
            .map(|principal| principal.draft_scope())
    };
    assert_eq!(
        scope(WATER),
        Ok(Some(DraftScope::Department(Department::WaterResources)))
    );
    assert_eq!(scope(ADMIN), Ok(Some(DraftScope::AllDepartments)));
    for token in [PERSON, SUBSCRIBER] {
        assert_eq!(
            verdict(token, Operation::ListDrafts),
            denied(DenialReason::OfficersAndAdminsOnly {
                operation: "ListDrafts"
            }),
            "{token}"
        );
    }
}

#[test]
fn only_an_officer_of_the_draft_department_approves_or_rejects() {
    let water_draft = Some(Department::WaterResources);
    for operation in [
        Operation::Approve {
            draft_department: water_draft,
        },
        Operation::Reject {
            draft_department: water_draft,
        },
    ] {
        assert_eq!(verdict(WATER, operation), Ok(()));
        assert_eq!(
            verdict(FOREST, operation),
            denied(DenialReason::OtherDepartment {
                responsible: Department::WaterResources,
                acting: Department::ForestryAndGrassland,
            })
        );
        for token in [PERSON, SUBSCRIBER, ADMIN] {
            assert_eq!(
                verdict(token, operation),
                denied(DenialReason::DutyOfficersOnly {
                    operation: operation.name()
                }),
                "{token}"
            );
        }
    }
}

#[test]
fn an_officer_may_ask_about_a_draft_that_does_not_exist() {
    let unknown_draft = Operation::Approve {
        draft_department: None,
    };
    assert_eq!(verdict(FOREST, unknown_draft), Ok(()));
    assert_eq!(
        verdict(SUBSCRIBER, unknown_draft),
        denied(DenialReason::DutyOfficersOnly {
            operation: "Approve"
        })
    );
}

#[test]
fn only_duty_officers_issue_warnings() {
    assert_eq!(verdict(FOREST, Operation::IssueWarning), Ok(()));
    for token in [PERSON, SUBSCRIBER, ADMIN] {
        assert_eq!(
            verdict(token, Operation::IssueWarning),
            denied(DenialReason::DutyOfficersOnly {
                operation: "IssueWarning"
            }),
            "{token}"
        );
    }
}

#[test]
fn sql_is_for_officers_and_admins() {
    assert_eq!(verdict(WATER, Operation::SqlQuery), Ok(()));
    assert_eq!(verdict(ADMIN, Operation::SqlQuery), Ok(()));
    for token in [PERSON, SUBSCRIBER] {
        assert_eq!(
            verdict(token, Operation::SqlQuery),
            denied(DenialReason::OfficersAndAdminsOnly { operation: "SQL" }),
            "{token}"
        );
    }
}

#[test]
fn denials_read_well() {
    let error = table()
        .authorize(
            Some(FOREST),
            Operation::Reject {
                draft_department: Some(Department::WaterResources),
            },
        )
        .expect_err("other department");
    assert_eq!(
        error.to_string(),
        "permission denied: the draft belongs to water-resources; a duty officer of \
         forestry-and-grassland cannot decide it"
    );
    let error = table()
        .authorize(None, Operation::Subscribe)
        .expect_err("no token");
    assert_eq!(error.to_string(), "unauthenticated: no bearer token");
}

#[test]
fn reads_bearer_headers() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("bearer  abc "), Some("abc"));
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("Bearer "), None);
    assert_eq!(bearer_token("abc"), None);
}

#[test]
fn debug_output_hides_tokens() {
    let printed = format!("{:?}", table());
    assert!(!printed.contains(WATER), "{printed}");
    assert!(printed.contains("***"), "{printed}");
}

/// Parses a one-row table after the header and returns the error message.
fn row_error(row: &str) -> String {
    let text = format!("token,principal,role,department,unit\n{row}\n");
    TokenTable::from_csv(&text, Path::new("tokens.csv"))
        .expect_err("bad row")
        .to_string()
}

#[test]
fn bad_rows_are_named_by_line_and_field() {
    let cases = [
        (
            "short,wang,duty-officer,water-resources,".to_owned(),
            "tokens.csv line 2: field token must be at least 32 visible ASCII characters",
        ),
        (
            "tok with spaces 0000000000000000000,wang,admin,,".to_owned(),
            "tokens.csv line 2: field token must be at least 32 visible ASCII characters",
        ),
        (
            format!("{WATER},,admin,,"),
            "tokens.csv line 2: field principal is required for role admin",
        ),
        (
            format!("{WATER},wang,officer,,"),
            "tokens.csv line 2: field role has invalid value `officer` (expected duty-officer, \
             responsible-person, subscriber, admin or peer)",
        ),
        (
            format!("{WATER},wang,duty-officer,,"),
            "tokens.csv line 2: field department is required for role duty-officer",
        ),
        (
            format!("{WATER},wang,duty-officer,water,"),
            "tokens.csv line 2: field department has invalid value `water` (expected \
             water-resources, natural-resources, forestry-and-grassland or meteorology)",
        ),
        (
            format!("{WATER},wang,duty-officer,water-resources,653125"),
            "tokens.csv line 2: field unit must be empty for role duty-officer",
        ),
        (
            format!("{PERSON},r1,responsible-person,,"),
            "tokens.csv line 2: field unit is required for role responsible-person",
        ),
        (
            format!("{PERSON},r1,responsible-person,,65312"),
            "tokens.csv line 2: field unit has invalid value `65312` (expected a GB/T 2260 code \
             of 6, 9 or 12 digits)",
        ),
        (
            format!("{SUBSCRIBER},app,subscriber,meteorology,"),
            "tokens.csv line 2: field department must be empty for role subscriber",
        ),
    ];
    for (row, expected) in cases {
        assert_eq!(row_error(&row), expected, "{row}");
    }
}

#[test]
fn a_repeated_token_names_both_lines() {
    let text = format!(
        "token,principal,role,department,unit\n{ADMIN},ops,admin,,\n{WATER},wang,duty-officer,water-resources,\n{ADMIN},ops2,admin,,\n"
    );
    let error = TokenTable::from_csv(&text, Path::new("tokens.csv")).expect_err("duplicate");
    assert_eq!(
        error.to_string(),
        "tokens.csv line 4: field token repeats the token of line 2"
    );
}

#[test]
fn a_malformed_file_is_a_csv_error_with_its_line() {
    let missing_column = "token,principal,role,department\nabc,ops,admin,\n";
    let error =
        TokenTable::from_csv(missing_column, Path::new("tokens.csv")).expect_err("missing column");
    assert!(matches!(error, TokenTableError::Csv { .. }), "{error}");
    assert!(error.to_string().contains("unit"), "{error}");

    let extra_field = format!("token,principal,role,department,unit\n{ADMIN},ops,admin,,,x\n");
    let error =
        TokenTable::from_csv(&extra_field, Path::new("tokens.csv")).expect_err("extra field");
    assert!(error.to_string().contains("line: 2"), "{error}");
}

#[test]
fn a_peer_token_opens_the_peer_api_and_nothing_else() {
    assert_eq!(verdict(PEER, Operation::PeerApi), Ok(()));
    assert_eq!(verdict(SECOND_PEER, Operation::PeerApi), Ok(()));
    for token in [WATER, PERSON, SUBSCRIBER, ADMIN] {
        assert_eq!(
            verdict(token, Operation::PeerApi),
            denied(DenialReason::PeersOnly {
                operation: "PeerApi"
            }),
            "{token}"
        );
    }
    for operation in [
        Operation::Subscribe,
        Operation::SqlQuery,
        Operation::ListDrafts,
    ] {
        assert_eq!(
            verdict(PEER, operation),
            denied(DenialReason::NotForPeers {
                operation: operation.name()
            })
        );
    }
    // Nodes call each other with the first peer row's token.
    assert_eq!(table().peer_token(), Some(PEER));
    let no_peer = TokenTable::from_csv(
        &format!("token,principal,role,department,unit\n{ADMIN},ops,admin,,\n"),
        Path::new("tokens.csv"),
    )
    .expect("valid table");
    assert_eq!(no_peer.peer_token(), None);
}
