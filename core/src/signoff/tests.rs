use super::*;
use crate::lifecycle::action_for;
use crate::time::MINUTE_MS;

const BASIN_COUNTY: &str = "653125";

fn t0() -> EventTime {
    EventTime::parse_rfc3339("2024-07-01T08:00:00+08:00").expect("valid timestamp")
}

fn minutes(n: i64) -> EventTime {
    t0().plus_ms(n * MINUTE_MS)
}

/// One version of the flash-flood warning `FF-B0042-…` (or of another hazard on the same target).
fn version_of(hazard: Hazard, version: u32, level: Level, status: Status) -> WarningEvent {
    WarningEvent {
        id: WarningId::new(format!("{}-B0042-20240701T0000Z", hazard.id_prefix())),
        version,
        hazard,
        level,
        action: action_for(hazard, level),
        status,
        target: "B0042".to_owned(),
        area_codes: vec![AreaCode::new(BASIN_COUNTY)],
        onset: t0(),
        issued: t0(),
        expires: t0().plus_ms(180 * MINUTE_MS),
        evidence: Vec::new(),
        caused_by: None,
    }
}

fn flash_flood(version: u32, level: Level, status: Status) -> WarningEvent {
    version_of(Hazard::FlashFlood, version, level, status)
}

fn from_model(event: WarningEvent) -> Submission {
    Submission {
        event,
        origin: DraftOrigin::Model,
        message: None,
    }
}

fn officer(name: &str, department: Department) -> DutyOfficer {
    DutyOfficer {
        id: OfficerId::new(name),
        department,
    }
}

fn water_officer() -> DutyOfficer {
    officer("wang", Department::WaterResources)
}

fn ff_id() -> WarningId {
    flash_flood(1, Level::Blue, Status::Issued).id
}

/// Submits model versions at successive minutes, panicking on refusal.
fn book_with(versions: &[WarningEvent]) -> SignOffBook {
    let mut book = SignOffBook::new();
    for (minute, event) in (0..).zip(versions) {
        book.submit(
            from_model(event.clone()),
            minutes(minute),
            &SignOffPolicy::default(),
        )
        .expect("accepted");
    }
    book
}

fn releases(outcome: &SignOffOutcome) -> Vec<(Audience, u32, Level)> {
    outcome
        .dispatches
        .iter()
        .filter_map(|dispatch| match dispatch {
            Dispatch::Release { audience, warning } => {
                Some((*audience, warning.event.version, warning.event.level))
            }
            Dispatch::Withdraw { .. } => None,
        })
        .collect()
}

fn actions(outcome: &SignOffOutcome) -> Vec<(u32, AuditAction)> {
    outcome
        .audit
        .iter()
        .map(|entry| (entry.version, entry.action.clone()))
        .collect()
}

#[test]
fn default_policy_names_the_departments_of_the_issue() {
    let policy = SignOffPolicy::default();
    assert_eq!(policy.validate(), Ok(()));
    let expected = [
        (Hazard::FlashFlood, Department::WaterResources),
        (Hazard::SnowmeltFlood, Department::WaterResources),
        (Hazard::Landslide, Department::NaturalResources),
        (Hazard::DebrisFlow, Department::NaturalResources),
        (Hazard::LightningFire, Department::ForestryAndGrassland),
    ];
    for (hazard, department) in expected {
        assert_eq!(*policy.responsible.get(hazard), department, "{hazard:?}");
        assert_eq!(
            policy.early_release.get(hazard),
            &BTreeSet::from([Level::Orange, Level::Red])
        );
    }
    assert!(Level::ALL
        .into_iter()
        .all(|level| policy.auto_approve_after.for_level(level).is_none()));
}

#[test]
fn policy_reads_kebab_case_toml_and_round_trips() {
    let text = r#"
        auto-approve-after = { red = "15m" }

        [responsible]
        flash-flood = "water-resources"
        debris-flow = "natural-resources"
        landslide = "natural-resources"
        lightning-fire = "meteorology"
        snowmelt-flood = "water-resources"
    "#;
    let policy: SignOffPolicy = toml::from_str(text).expect("valid policy");
    assert_eq!(
        *policy.responsible.get(Hazard::LightningFire),
        Department::Meteorology
    );
    assert_eq!(policy.auto_approve_after.red, Some(15 * MINUTE_MS));
    assert_eq!(policy.auto_approve_after.orange, None);
    assert_eq!(policy.early_release, SignOffPolicy::default().early_release);
    let written = toml::to_string(&policy).expect("serialisable");
    assert!(written.contains("red = \"15m\""), "{written}");
    assert_eq!(toml::from_str::<SignOffPolicy>(&written), Ok(policy));
}

#[test]
fn policy_rejects_unknown_and_missing_keys() {
    let unknown = "[auto-approve-after]\npurple = \"5m\"\n";
    let error = toml::from_str::<SignOffPolicy>(unknown).expect_err("unknown level");
    assert!(error.to_string().contains("purple"), "{error}");

    let missing = "[responsible]\nflash-flood = \"water-resources\"\n";
    let error = toml::from_str::<SignOffPolicy>(missing).expect_err("hazards missing");
    assert!(error.to_string().contains("debris-flow"), "{error}");

    let bad_department = "[responsible]\nflash-flood = \"water\"\ndebris-flow = \"natural-resources\"\nlandslide = \"natural-resources\"\nlightning-fire = \"meteorology\"\nsnowmelt-flood = \"water-resources\"\n";
    assert!(toml::from_str::<SignOffPolicy>(bad_department).is_err());
}

#[test]
fn validation_refuses_holding_back_a_more_severe_level() {
    let mut policy = SignOffPolicy::default();
    policy.early_release.landslide = BTreeSet::from([Level::Yellow, Level::Orange]);
    assert_eq!(
        policy.validate(),
        Err(SignOffPolicyError::SevereLevelHeldBack {
            hazard: Hazard::Landslide,
            released: Level::Yellow,
            held: Level::Red,
        })
    );
    policy.early_release.landslide = BTreeSet::new();
    assert_eq!(policy.validate(), Ok(()));
}

#[test]
fn validation_refuses_a_non_positive_auto_approval() {
    let mut policy = SignOffPolicy::default();
    policy.auto_approve_after.yellow = Some(0);
    assert_eq!(
        policy.validate(),
        Err(SignOffPolicyError::NonPositiveAutoApproval {
            level: Level::Yellow,
            ms: 0,
        })
    );
}

#[test]
fn a_yellow_model_draft_waits_for_its_department() {
    let mut book = SignOffBook::new();
    let outcome = book
        .submit(
            from_model(flash_flood(1, Level::Yellow, Status::Issued)),
            t0(),
            &SignOffPolicy::default(),
        )
        .expect("accepted");
    assert!(outcome.dispatches.is_empty());
    assert_eq!(
        outcome.audit,
        vec![AuditEntry {
            at: t0(),
            by: AuditActor::Model,
            warning: ff_id(),
            version: 1,
            action: AuditAction::Drafted {
                level: Level::Yellow,
                status: Status::Issued,
                department: Department::WaterResources,
            },
        }]
    );
    let water: Vec<_> = book
        .pending_drafts(DraftScope::Department(Department::WaterResources))
        .collect();
    assert_eq!(water.len(), 1);
    assert!(!water[0].released_early);
    assert_eq!(
        book.pending_drafts(DraftScope::Department(Department::NaturalResources))
            .count(),
        0
    );
    assert_eq!(book.approved(&ff_id()), None);
}

#[test]
fn an_orange_draft_reaches_responsible_persons_before_sign_off() {
    let mut book = SignOffBook::new();
    let outcome = book
        .submit(
            from_model(flash_flood(1, Level::Orange, Status::Issued)),
            t0(),
            &SignOffPolicy::default(),
        )
        .expect("accepted");
    assert_eq!(
        releases(&outcome),
        vec![(Audience::ResponsiblePersons, 1, Level::Orange)]
    );
    let Dispatch::Release { warning, .. } = &outcome.dispatches[0] else {
        panic!("expected a release");
    };
    assert_eq!(warning.signature, None);
    assert_eq!(book.approved(&ff_id()), None, "the public still waits");
}

#[test]
fn approval_releases_to_everyone_and_is_audited() {
    let mut book = book_with(&[flash_flood(1, Level::Orange, Status::Issued)]);
    let outcome = book
        .approve(&ff_id(), 1, &water_officer(), None, minutes(5))
        .expect("approved");
    assert_eq!(
        releases(&outcome),
        vec![(Audience::Everyone, 1, Level::Orange)]
    );
    let signed = book.approved(&ff_id()).expect("in force");
    assert_eq!(
        signed.signature,
        Some(Signature {
            by: AuditActor::Officer(OfficerId::new("wang")),
            at: minutes(5),
        })
    );
    assert_eq!(book.pending_drafts(DraftScope::AllDepartments).count(), 0);
    let trail: Vec<_> = book.trail(&ff_id()).iter().map(|e| &e.action).collect();
    assert!(matches!(
        trail.as_slice(),
        [
            AuditAction::Drafted { .. },
            AuditAction::ReleasedToResponsiblePersons,
            AuditAction::Approved
        ]
    ));
}

#[test]
fn an_edit_changes_message_and_area_and_records_who_when_what() {
    let mut book = book_with(&[flash_flood(1, Level::Yellow, Status::Issued)]);
    let edit = Edit {
        message: Some("请沿河群众注意防范".to_owned()),
        area_codes: Some(vec![
            AreaCode::new("653125101"),
            AreaCode::new("653125100"),
            AreaCode::new("653125101"),
        ]),
    };
    let outcome = book
        .approve(&ff_id(), 1, &water_officer(), Some(edit), minutes(3))
        .expect("approved");
    let normalised = vec![AreaCode::new("653125100"), AreaCode::new("653125101")];
    assert_eq!(
        outcome.audit[0],
        AuditEntry {
            at: minutes(3),
            by: AuditActor::Officer(OfficerId::new("wang")),
            warning: ff_id(),
            version: 1,
            action: AuditAction::Edited(Edit {
                message: Some("请沿河群众注意防范".to_owned()),
                area_codes: Some(normalised.clone()),
            }),
        }
    );
    let signed = book.approved(&ff_id()).expect("in force");
    assert_eq!(signed.event.area_codes, normalised);
    assert_eq!(signed.message.as_deref(), Some("请沿河群众注意防范"));
}

#[test]
fn bad_edits_are_refused_and_change_nothing() {
    let book = book_with(&[flash_flood(1, Level::Yellow, Status::Issued)]);
    let cases = [
        (
            Edit::default(),
            SignOffError::EmptyEdit { warning: ff_id() },
        ),
        (
            Edit {
                area_codes: Some(Vec::new()),
                ..Edit::default()
            },
            SignOffError::EmptyArea { warning: ff_id() },
        ),
        (
            Edit {
                message: Some("  ".to_owned()),
                ..Edit::default()
            },
            SignOffError::BlankMessage { warning: ff_id() },
        ),
    ];
    for (edit, expected) in cases {
        let mut attempt = book.clone();
        let result = attempt.approve(&ff_id(), 1, &water_officer(), Some(edit), minutes(1));
        assert_eq!(result, Err(expected));
        assert_eq!(attempt, book);
    }
}

#[test]
fn an_unknown_warning_or_version_is_an_unknown_draft() {
    let mut book = book_with(&[flash_flood(1, Level::Yellow, Status::Issued)]);
    let other = WarningId::new("FF-B0001-20240701T0000Z");
    assert_eq!(
        book.approve(&other, 1, &water_officer(), None, minutes(1)),
        Err(SignOffError::UnknownDraft {
            warning: other.clone(),
            version: 1,
        })
    );
    assert_eq!(
        book.reject(&ff_id(), 2, &water_officer(), "false alarm", minutes(1)),
        Err(SignOffError::UnknownDraft {
            warning: ff_id(),
            version: 2,
        })
    );
}

#[test]
fn only_the_responsible_department_decides() {
    let mut book = book_with(&[flash_flood(1, Level::Yellow, Status::Issued)]);
    let before = book.clone();
    let forester = officer("li", Department::ForestryAndGrassland);
    let expected = Err(SignOffError::WrongDepartment {
        warning: ff_id(),
        responsible: Department::WaterResources,
        acting: Department::ForestryAndGrassland,
    });
    assert_eq!(
        book.approve(&ff_id(), 1, &forester, None, minutes(1)),
        expected
    );
    assert_eq!(
        book.reject(&ff_id(), 1, &forester, "not ours", minutes(1)),
        expected
    );
    assert_eq!(book, before);
}

#[test]
fn a_decided_version_cannot_be_decided_again() {
    let mut book = book_with(&[flash_flood(1, Level::Yellow, Status::Issued)]);
    book.approve(&ff_id(), 1, &water_officer(), None, minutes(1))
        .expect("approved");
    let twice = book.reject(&ff_id(), 1, &water_officer(), "changed my mind", minutes(2));
    assert_eq!(
        twice,
        Err(SignOffError::AlreadyDecided {
            warning: ff_id(),
            version: 1,
            decision: Decision::Approved,
        })
    );

    let mut book = book_with(&[flash_flood(1, Level::Yellow, Status::Issued)]);
    book.reject(&ff_id(), 1, &water_officer(), "gauge fault", minutes(1))
        .expect("rejected");
    assert_eq!(
        book.approve(&ff_id(), 1, &water_officer(), None, minutes(2)),
        Err(SignOffError::AlreadyDecided {
            warning: ff_id(),
            version: 1,
            decision: Decision::Rejected,
        })
    );
}

#[test]
fn a_later_version_supersedes_the_pending_draft() {
    let mut book = book_with(&[
        flash_flood(1, Level::Yellow, Status::Issued),
        flash_flood(2, Level::Orange, Status::Upgraded),
    ]);
    let pending: Vec<_> = book.pending_drafts(DraftScope::AllDepartments).collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event.version, 2);
    assert!(book.trail(&ff_id()).iter().any(
        |entry| entry.version == 1 && entry.action == AuditAction::Superseded { by_version: 2 }
    ));
    assert_eq!(
        book.approve(&ff_id(), 1, &water_officer(), None, minutes(5)),
        Err(SignOffError::StaleVersion {
            warning: ff_id(),
            version: 1,
            latest: 2,
        })
    );
}

#[test]
fn a_replayed_or_older_version_is_stale() {
    let mut book = book_with(&[flash_flood(2, Level::Yellow, Status::Upgraded)]);
    for version in [1, 2] {
        assert_eq!(
            book.submit(
                from_model(flash_flood(version, Level::Yellow, Status::Issued)),
                minutes(1),
                &SignOffPolicy::default(),
            ),
            Err(SignOffError::StaleVersion {
                warning: ff_id(),
                version,
                latest: 2,
            })
        );
    }
}

#[test]
fn rejecting_an_early_release_withdraws_it_and_reinstates_the_approved_version() {
    let mut book = book_with(&[flash_flood(1, Level::Orange, Status::Issued)]);
    book.approve(&ff_id(), 1, &water_officer(), None, minutes(1))
        .expect("approved");
    let upgrade = book
        .submit(
            from_model(flash_flood(2, Level::Red, Status::Upgraded)),
            minutes(2),
            &SignOffPolicy::default(),
        )
        .expect("accepted");
    assert_eq!(
        releases(&upgrade),
        vec![(Audience::ResponsiblePersons, 2, Level::Red)]
    );
    let outcome = book
        .reject(&ff_id(), 2, &water_officer(), " radar clutter ", minutes(3))
        .expect("rejected");
    assert_eq!(
        outcome.dispatches,
        vec![Dispatch::Withdraw {
            warning: ff_id(),
            version: 2,
            reason: "radar clutter".to_owned(),
            reinstated: Some(1),
        }]
    );
    assert_eq!(
        actions(&outcome),
        vec![
            (
                2,
                AuditAction::Rejected {
                    reason: "radar clutter".to_owned()
                }
            ),
            (2, AuditAction::WithdrawnFromResponsiblePersons),
        ]
    );
    assert_eq!(book.approved(&ff_id()).map(|w| w.event.version), Some(1));
}

#[test]
fn rejecting_a_draft_nobody_received_dispatches_nothing() {
    let mut book = book_with(&[flash_flood(1, Level::Blue, Status::Issued)]);
    let outcome = book
        .reject(&ff_id(), 1, &water_officer(), "gauge fault", minutes(1))
        .expect("rejected");
    assert!(outcome.dispatches.is_empty());
}

#[test]
fn a_rejection_needs_a_reason() {
    let mut book = book_with(&[flash_flood(1, Level::Blue, Status::Issued)]);
    assert_eq!(
        book.reject(&ff_id(), 1, &water_officer(), " \t", minutes(1)),
        Err(SignOffError::BlankReason { warning: ff_id() })
    );
    assert_eq!(book.pending_drafts(DraftScope::AllDepartments).count(), 1);
}

#[test]
fn a_plain_renewal_carries_the_approved_sign_off() {
    let mut book = book_with(&[flash_flood(1, Level::Orange, Status::Issued)]);
    let edit = Edit {
        message: Some("沿河村组准备转移".to_owned()),
        area_codes: Some(vec![AreaCode::new("653125100")]),
    };
    book.approve(&ff_id(), 1, &water_officer(), Some(edit), minutes(1))
        .expect("approved");
    let outcome = book
        .submit(
            from_model(flash_flood(2, Level::Orange, Status::Renewed)),
            minutes(170),
            &SignOffPolicy::default(),
        )
        .expect("accepted");
    assert_eq!(
        releases(&outcome),
        vec![(Audience::Everyone, 2, Level::Orange)]
    );
    let renewed = book.approved(&ff_id()).expect("in force");
    assert_eq!(renewed.event.version, 2);
    assert_eq!(renewed.event.area_codes, vec![AreaCode::new("653125100")]);
    assert_eq!(renewed.message.as_deref(), Some("沿河村组准备转移"));
    assert_eq!(
        renewed.signature.as_ref().map(|s| &s.by),
        Some(&AuditActor::Officer(OfficerId::new("wang")))
    );
    assert_eq!(
        actions(&outcome).last(),
        Some(&(2, AuditAction::RenewalCarriedSignOff { signed_version: 1 }))
    );
    assert_eq!(book.pending_drafts(DraftScope::AllDepartments).count(), 0);
}

#[test]
fn a_renewal_after_an_unsigned_upgrade_waits_for_sign_off() {
    let mut book = book_with(&[flash_flood(1, Level::Orange, Status::Issued)]);
    book.approve(&ff_id(), 1, &water_officer(), None, minutes(1))
        .expect("approved");
    let policy = SignOffPolicy::default();
    book.submit(
        from_model(flash_flood(2, Level::Red, Status::Upgraded)),
        minutes(2),
        &policy,
    )
    .expect("accepted");
    book.submit(
        from_model(flash_flood(3, Level::Orange, Status::Downgraded)),
        minutes(60),
        &policy,
    )
    .expect("accepted");
    let outcome = book
        .submit(
            from_model(flash_flood(4, Level::Orange, Status::Renewed)),
            minutes(170),
            &policy,
        )
        .expect("accepted");
    assert!(
        releases(&outcome).is_empty(),
        "responsible persons hold red: an orange renewal must not lower it unsigned"
    );
    assert_eq!(book.approved(&ff_id()).map(|w| w.event.version), Some(1));
    assert_eq!(
        book.pending_drafts(DraftScope::AllDepartments)
            .map(|d| d.event.version)
            .collect::<Vec<_>>(),
        vec![4]
    );
}

#[test]
fn downgrades_and_cancellations_of_an_approved_warning_need_sign_off() {
    let mut book = book_with(&[flash_flood(1, Level::Red, Status::Issued)]);
    book.approve(&ff_id(), 1, &water_officer(), None, minutes(1))
        .expect("approved");
    let policy = SignOffPolicy::default();
    let downgrade = book
        .submit(
            from_model(flash_flood(2, Level::Orange, Status::Downgraded)),
            minutes(90),
            &policy,
        )
        .expect("accepted");
    assert!(
        downgrade.dispatches.is_empty(),
        "orange is an early level, but it would lower what responsible persons hold"
    );
    book.approve(&ff_id(), 2, &water_officer(), None, minutes(91))
        .expect("approved");
    let cancel = book
        .submit(
            from_model(flash_flood(3, Level::Orange, Status::Cancelled)),
            minutes(150),
            &policy,
        )
        .expect("accepted");
    assert!(cancel.dispatches.is_empty());
    assert_eq!(book.approved(&ff_id()).map(|w| w.event.version), Some(2));

    book.approve(&ff_id(), 3, &water_officer(), None, minutes(151))
        .expect("approved");
    assert_eq!(
        book.submit(
            from_model(flash_flood(4, Level::Orange, Status::Issued)),
            minutes(152),
            &policy,
        ),
        Err(SignOffError::ClosedWarning {
            warning: ff_id(),
            version: 4,
        })
    );
    assert_eq!(
        book.forget_closed_before(minutes(151)),
        Vec::<WarningId>::new()
    );
    assert_eq!(book.forget_closed_before(minutes(152)), vec![ff_id()]);
    assert!(book.trail(&ff_id()).is_empty());
}

#[test]
fn cancelling_a_warning_nobody_received_closes_it_without_sign_off() {
    let mut book = book_with(&[flash_flood(1, Level::Yellow, Status::Issued)]);
    let outcome = book
        .submit(
            from_model(flash_flood(2, Level::Yellow, Status::Cancelled)),
            minutes(70),
            &SignOffPolicy::default(),
        )
        .expect("accepted");
    assert!(outcome.dispatches.is_empty());
    assert_eq!(
        actions(&outcome)
            .into_iter()
            .map(|(_, action)| action)
            .collect::<Vec<_>>(),
        vec![
            AuditAction::Drafted {
                level: Level::Yellow,
                status: Status::Cancelled,
                department: Department::WaterResources,
            },
            AuditAction::Superseded { by_version: 2 },
            AuditAction::ClosedUnreleased,
        ]
    );
    assert_eq!(book.pending_drafts(DraftScope::AllDepartments).count(), 0);
    assert_eq!(
        book.approve(&ff_id(), 2, &water_officer(), None, minutes(71)),
        Err(SignOffError::AlreadyDecided {
            warning: ff_id(),
            version: 2,
            decision: Decision::Closed,
        })
    );
}

#[test]
fn a_manual_warning_belongs_to_its_issuing_officer_department() {
    let mut book = SignOffBook::new();
    let forecaster = officer("zhao", Department::Meteorology);
    let outcome = book
        .submit(
            Submission {
                event: flash_flood(1, Level::Yellow, Status::Issued),
                origin: DraftOrigin::Manual(forecaster.clone()),
                message: Some("短时强降水，注意山洪".to_owned()),
            },
            t0(),
            &SignOffPolicy::default(),
        )
        .expect("accepted");
    assert_eq!(
        outcome.audit[0].by,
        AuditActor::Officer(OfficerId::new("zhao"))
    );
    assert_eq!(book.department_of(&ff_id()), Some(Department::Meteorology));
    assert!(matches!(
        book.approve(&ff_id(), 1, &water_officer(), None, minutes(1)),
        Err(SignOffError::WrongDepartment { .. })
    ));
    let outcome = book
        .approve(&ff_id(), 1, &forecaster, None, minutes(1))
        .expect("approved by its own department");
    let Dispatch::Release { warning, .. } = &outcome.dispatches[0] else {
        panic!("expected a release");
    };
    assert_eq!(warning.department, Department::Meteorology);
    assert_eq!(warning.message.as_deref(), Some("短时强降水，注意山洪"));
}

#[test]
fn an_agency_warning_keeps_its_department_across_updates() {
    let mut book = SignOffBook::new();
    let agency = |department| DraftOrigin::Agency {
        sender: AgencyId::new("xjqx@cma.gov.cn"),
        department,
    };
    let landslide = |version, status| version_of(Hazard::Landslide, version, Level::Blue, status);
    let policy = SignOffPolicy::default();
    let outcome = book
        .submit(
            Submission {
                event: landslide(1, Status::Issued),
                origin: agency(Department::Meteorology),
                message: None,
            },
            t0(),
            &policy,
        )
        .expect("accepted");
    assert_eq!(
        outcome.audit[0].by,
        AuditActor::Agency(AgencyId::new("xjqx@cma.gov.cn"))
    );
    let id = landslide(1, Status::Issued).id;
    assert_eq!(book.department_of(&id), Some(Department::Meteorology));
    assert_eq!(
        book.submit(
            Submission {
                event: landslide(2, Status::Renewed),
                origin: agency(Department::NaturalResources),
                message: None,
            },
            minutes(1),
            &policy,
        ),
        Err(SignOffError::WrongDepartment {
            warning: id,
            responsible: Department::Meteorology,
            acting: Department::NaturalResources,
        })
    );
}

#[test]
fn model_drafts_follow_the_configured_department() {
    let mut policy = SignOffPolicy::default();
    policy.responsible.lightning_fire = Department::Meteorology;
    let mut book = SignOffBook::new();
    let fire = version_of(Hazard::LightningFire, 1, Level::Blue, Status::Issued);
    book.submit(from_model(fire.clone()), t0(), &policy)
        .expect("accepted");
    assert_eq!(book.department_of(&fire.id), Some(Department::Meteorology));
    let debris = version_of(Hazard::DebrisFlow, 1, Level::Blue, Status::Issued);
    book.submit(from_model(debris.clone()), t0(), &policy)
        .expect("accepted");
    assert_eq!(
        book.department_of(&debris.id),
        Some(Department::NaturalResources)
    );
    let natural: Vec<_> = book
        .pending_drafts(DraftScope::Department(Department::NaturalResources))
        .map(|d| d.event.id.clone())
        .collect();
    assert_eq!(natural, vec![debris.id]);
    assert_eq!(book.pending_drafts(DraftScope::AllDepartments).count(), 2);
}

#[test]
fn auto_approval_signs_when_its_timeout_passes() {
    let mut policy = SignOffPolicy::default();
    policy.auto_approve_after.red = Some(10 * MINUTE_MS);
    let mut book = SignOffBook::new();
    book.submit(
        from_model(flash_flood(1, Level::Red, Status::Issued)),
        t0(),
        &policy,
    )
    .expect("accepted");
    book.submit(
        from_model(version_of(
            Hazard::Landslide,
            1,
            Level::Yellow,
            Status::Issued,
        )),
        t0(),
        &policy,
    )
    .expect("accepted");
    assert_eq!(book.next_auto_approval(), Some(minutes(10)));
    assert_eq!(book.auto_approve_due(minutes(9)), SignOffOutcome::default());
    let outcome = book.auto_approve_due(minutes(10));
    assert_eq!(
        releases(&outcome),
        vec![(Audience::Everyone, 1, Level::Red)]
    );
    assert_eq!(outcome.audit[0].by, AuditActor::AutoApproval);
    assert_eq!(
        book.approved(&ff_id()).and_then(|w| w.signature.clone()),
        Some(Signature {
            by: AuditActor::AutoApproval,
            at: minutes(10),
        })
    );
    assert_eq!(
        book.next_auto_approval(),
        None,
        "yellow waits for an officer"
    );
    assert_eq!(book.pending_drafts(DraftScope::AllDepartments).count(), 1);
}

#[test]
fn the_book_round_trips_through_json() {
    let mut book = book_with(&[
        flash_flood(1, Level::Orange, Status::Issued),
        flash_flood(2, Level::Red, Status::Upgraded),
    ]);
    book.approve(&ff_id(), 2, &water_officer(), None, minutes(5))
        .expect("approved");
    book.submit(
        from_model(version_of(
            Hazard::Landslide,
            1,
            Level::Blue,
            Status::Issued,
        )),
        minutes(6),
        &SignOffPolicy::default(),
    )
    .expect("accepted");
    let json = serde_json::to_string(&book).expect("serialisable");
    let restored: SignOffBook = serde_json::from_str(&json).expect("deserialisable");
    assert_eq!(restored, book);
}

#[test]
fn a_book_journaled_per_changed_warning_comes_back_whole() {
    let mut book = SignOffBook::new();
    // The journal: the latest sign-off of each warning a step changed.
    let mut journal: BTreeMap<WarningId, WarningSignOff> = BTreeMap::new();
    let mut keep = |book: &SignOffBook, outcome: &SignOffOutcome| {
        for id in outcome.warnings_changed() {
            let sign_off = book
                .sign_off_of(&id)
                .expect("a changed warning is in the book");
            journal.insert(id, sign_off.clone());
        }
    };
    let debris = version_of(Hazard::DebrisFlow, 1, Level::Yellow, Status::Issued);
    for event in [
        flash_flood(1, Level::Orange, Status::Issued),
        debris.clone(),
    ] {
        let outcome = book
            .submit(from_model(event), minutes(0), &SignOffPolicy::default())
            .expect("taken");
        keep(&book, &outcome);
    }
    let approved = book
        .approve(&ff_id(), 1, &water_officer(), None, minutes(5))
        .expect("approved");
    assert_eq!(
        approved.warnings_changed(),
        BTreeSet::from([ff_id()]),
        "approving one warning changes only it"
    );
    keep(&book, &approved);

    assert_eq!(SignOffBook::from_sign_offs(journal), book);
    assert!(book.sign_off_of(&debris.id).is_some());
}

#[test]
fn a_new_owner_takes_over_the_journaled_sign_off_unless_it_is_further_along() {
    // The old owner's desk: version 1 approved by the officer.
    let mut owner = book_with(&[flash_flood(1, Level::Orange, Status::Issued)]);
    owner
        .approve(&ff_id(), 1, &water_officer(), None, minutes(5))
        .expect("approved");
    let journaled = owner.sign_off_of(&ff_id()).expect("journaled").clone();

    // The new owner re-derived version 1 on its own: a pending draft nobody decided here.
    let mut taking_over = book_with(&[flash_flood(1, Level::Orange, Status::Issued)]);
    assert!(taking_over.approved(&ff_id()).is_none());
    assert!(taking_over.take_over(ff_id(), journaled.clone()));
    assert_eq!(
        taking_over.approved(&ff_id()).map(|r| r.event.version),
        Some(1),
        "the officer's approval carries over"
    );
    assert_eq!(
        taking_over.approve(&ff_id(), 1, &water_officer(), None, minutes(7)),
        owner.approve(&ff_id(), 1, &water_officer(), None, minutes(7)),
        "version 1 is decided here as it was there"
    );

    // A node that already holds version 2 keeps it: the old owner never saw it.
    let mut ahead = book_with(&[
        flash_flood(1, Level::Orange, Status::Issued),
        flash_flood(2, Level::Red, Status::Issued),
    ]);
    let before = ahead.clone();
    assert!(!ahead.take_over(ff_id(), journaled));
    assert_eq!(ahead, before);

    // A desk that decided more since it journaled the same version keeps its state: the
    // journal holds an earlier state of it.
    let mut decided_since = book_with(&[flash_flood(1, Level::Orange, Status::Issued)]);
    let earlier = decided_since
        .sign_off_of(&ff_id())
        .expect("journaled")
        .clone();
    decided_since
        .approve(&ff_id(), 1, &water_officer(), None, minutes(5))
        .expect("approved");
    let before = decided_since.clone();
    assert!(!decided_since.take_over(ff_id(), earlier));
    assert_eq!(decided_since, before);
}
