//! The courier actor: takes the deliveries the dissemination tree asks for, renders each warning
//! version once (its CAP 1.2 alert, checked against the rules the schema cannot check, and the
//! short zh-CN text people read), sends through the channel of the delivery's kind at most once
//! per delivery key (`channels::Courier`), and reports every outcome to the unit that asked.
//! With a CAP folder configured it also writes every CAP message it rendered there, one `.xml`
//! file per message.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tianshan_actors::admin_unit::{AdminUnitMsg, DeliveryRequest};
use tianshan_actors::wall_clock::WallClock;
use tianshan_core::cap::{AreaOutline, CapAlert, CapReference, CapSettings};
use tianshan_core::dissemination::acknowledgement::{DeliveryKey, DeliveryOutcome};
use tianshan_core::dissemination::ledger::LedgerEntry;
use tianshan_core::ids::{AreaCode, WarningId};
use tianshan_core::region::Region;
use tianshan_core::signoff::ReleasedWarning;
use tianshan_core::warning::WarningEvent;
use tracing::{error, warn};

use crate::channels::courier::{Courier, CourierTotals};
use crate::channels::OutboundMessage;
use crate::telemetry::Metrics;

/// Messages of [`DeliveryCourier`].
pub enum DeliveryCourierMsg {
    /// One delivery asked for by a unit of the tree.
    Deliver(DeliveryRequest),
    /// Replies with what the courier did so far.
    Totals(RpcReplyPort<CourierTotals>),
    /// Deliveries another node made (read from the journal), not to be made again; replies
    /// once they are in the ledger.
    LearnDelivered(Vec<(DeliveryKey, LedgerEntry)>, RpcReplyPort<()>),
    /// From now on deliver only to recipients of the shards of the tree this node owns (a
    /// sharded node): the owner of a recipient's shard delivers to them, so no one gets a
    /// message from two nodes.
    OnlyOwned(OwnsUnit),
}

/// Whether this node owns a warning now: its thread (the publisher, the desk's journal).
pub type OwnsWarning = Arc<dyn Fn(&WarningEvent) -> bool + Send + Sync>;

/// Whether this node owns an admin unit's shard of the dissemination tree now, and so is the
/// one to deliver to the recipients filed under it and to journal its books.
pub type OwnsUnit = Arc<dyn Fn(&AreaCode) -> bool + Send + Sync>;

impl From<DeliveryRequest> for DeliveryCourierMsg {
    fn from(request: DeliveryRequest) -> Self {
        DeliveryCourierMsg::Deliver(request)
    }
}

impl TryFrom<DeliveryCourierMsg> for DeliveryRequest {
    type Error = ();

    fn try_from(msg: DeliveryCourierMsg) -> Result<Self, ()> {
        match msg {
            DeliveryCourierMsg::Deliver(request) => Ok(request),
            DeliveryCourierMsg::Totals(_)
            | DeliveryCourierMsg::LearnDelivered(..)
            | DeliveryCourierMsg::OnlyOwned(_) => Err(()),
        }
    }
}

/// Start-up arguments of [`DeliveryCourier`].
pub struct DeliveryCourierArgs {
    /// Channels, ledger and journal.
    pub courier: Courier,
    /// The CAP sender and names.
    pub cap: CapSettings,
    /// Admin names and county shapes for CAP areas.
    pub region: Arc<Region>,
    /// Where to also write every rendered CAP message.
    pub cap_dir: Option<PathBuf>,
    /// The clock delivery times are taken on.
    pub clock: WallClock,
    /// Where deliveries are counted.
    pub metrics: Arc<Metrics>,
    /// Sharded: the units whose recipients this node delivers to from the start (until
    /// [`DeliveryCourierMsg::OnlyOwned`] says otherwise); `None` delivers to all.
    pub owns: Option<OwnsUnit>,
}

/// One warning version as people and machines read it.
struct Rendered {
    text: String,
    cap_xml: Option<String>,
}

/// State of [`DeliveryCourier`].
pub struct DeliveryCourierState {
    args: DeliveryCourierArgs,
    /// Each version rendered once, by (warning, version, signed).
    rendered: BTreeMap<(WarningId, u32, bool), Rendered>,
    /// The CAP references of the versions of each warning rendered so far, for `references`.
    earlier: BTreeMap<WarningId, Vec<(u32, CapReference)>>,
}

/// The actor sending deliveries through the channels.
pub struct DeliveryCourier;

impl Actor for DeliveryCourier {
    type Msg = DeliveryCourierMsg;
    type State = DeliveryCourierState;
    type Arguments = DeliveryCourierArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<DeliveryCourierMsg>,
        args: DeliveryCourierArgs,
    ) -> Result<DeliveryCourierState, ActorProcessingErr> {
        if let Some(dir) = &args.cap_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("creating the CAP folder {}: {e}", dir.display()))?;
        }
        Ok(DeliveryCourierState {
            args,
            rendered: BTreeMap::new(),
            earlier: BTreeMap::new(),
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<DeliveryCourierMsg>,
        msg: DeliveryCourierMsg,
        st: &mut DeliveryCourierState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DeliveryCourierMsg::Deliver(request) => {
                if st
                    .args
                    .owns
                    .as_ref()
                    .is_some_and(|owns| !owns(&request.recipient.unit))
                {
                    // The recipient's shard moved to another node (or the lease lapsed): the
                    // owner replays the shard's releases and delivers what was not delivered.
                    st.args
                        .metrics
                        .delivery(request.delivery.key.channel.as_str(), "not_owner");
                    request.report_to.cast(AdminUnitMsg::Delivered {
                        key: request.delivery.key,
                        outcome: DeliveryOutcome::Failed,
                    })?;
                    return Ok(());
                }
                let now = st.args.clock.now();
                let rendered = render(st, &request.warning);
                let message = OutboundMessage {
                    delivery: request.delivery,
                    recipient: request.recipient,
                    // The ledger keeps the key while people hold the version.
                    warning: WarningEvent {
                        expires: request.held_until,
                        ..request.warning.event.clone()
                    },
                    text: rendered.text.clone(),
                    cap_xml: rendered.cap_xml.clone(),
                };
                let suppressed_before = st.args.courier.totals().duplicates_suppressed;
                let outcome = st.args.courier.send(&message, now).await;
                let counted = if st.args.courier.totals().duplicates_suppressed > suppressed_before
                {
                    "duplicate_suppressed"
                } else if outcome == DeliveryOutcome::Delivered {
                    "delivered"
                } else {
                    "failed"
                };
                st.args
                    .metrics
                    .delivery(message.channel().as_str(), counted);
                request.report_to.cast(AdminUnitMsg::Delivered {
                    key: message.delivery.key,
                    outcome,
                })?;
            }
            DeliveryCourierMsg::Totals(reply) => {
                let _ = reply.send(st.args.courier.totals());
            }
            DeliveryCourierMsg::LearnDelivered(entries, reply) => {
                st.args.courier.learn_delivered(entries);
                let _ = reply.send(());
            }
            DeliveryCourierMsg::OnlyOwned(owns) => st.args.owns = Some(owns),
        }
        Ok(())
    }
}

/// Renders a released version once: its CAP alert (referencing the earlier versions rendered)
/// and the text people read.
fn render<'a>(st: &'a mut DeliveryCourierState, warning: &ReleasedWarning) -> &'a Rendered {
    let event = &warning.event;
    let key = (event.id.clone(), event.version, warning.signature.is_some());
    if !st.rendered.contains_key(&key) {
        let earlier: Vec<CapReference> = st
            .earlier
            .get(&event.id)
            .into_iter()
            .flatten()
            .filter(|(version, _)| *version < event.version)
            .map(|(_, reference)| reference.clone())
            .collect();
        let alert = AreaOutline::from_region(&st.args.region, &event.area_codes)
            .map(|area| CapAlert::from_warning(&st.args.cap, event, &earlier, &area));
        let checked = alert.and_then(|alert| alert.check().map(|()| alert));
        let rendered = match checked {
            Ok(alert) => {
                let xml = alert.to_xml();
                write_cap_file(st.args.cap_dir.as_ref(), &alert.identifier, &xml);
                let entry = st.earlier.entry(event.id.clone()).or_default();
                if entry.iter().all(|(version, _)| *version != event.version) {
                    entry.push((event.version, alert.reference()));
                }
                let info = alert.infos.first();
                let headline = info.and_then(|info| info.headline.clone());
                let instruction = info.and_then(|info| info.instruction.clone());
                Rendered {
                    text: people_text(warning, headline, instruction),
                    cap_xml: Some(xml),
                }
            }
            Err(e) => {
                // Nothing is lost: people still get the text; the CAP feed delivery fails and
                // is recorded as failed, with this reason in the log.
                error!(warning = %event.id, version = event.version, error = %e, "no valid CAP message for this version");
                Rendered {
                    text: people_text(warning, None, None),
                    cap_xml: None,
                }
            }
        };
        st.rendered.insert(key.clone(), rendered);
    }
    &st.rendered[&key]
}

/// The short message people read: the signed message if the officer wrote one, otherwise the
/// CAP headline and instruction; an unsigned early release says so.
fn people_text(
    warning: &ReleasedWarning,
    headline: Option<String>,
    instruction: Option<String>,
) -> String {
    let body = match (&warning.message, headline) {
        (Some(message), _) => message.clone(),
        (None, Some(headline)) => match instruction {
            Some(instruction) => format!("{headline}。{instruction}"),
            None => headline,
        },
        (None, None) => format!(
            "{} {} v{}",
            warning.event.id,
            warning.event.level.name(),
            warning.event.version
        ),
    };
    if warning.signature.is_some() {
        body
    } else {
        format!("【待签发，先行通知责任人】{body}")
    }
}

fn write_cap_file(dir: Option<&PathBuf>, identifier: &str, xml: &str) {
    let Some(dir) = dir else {
        return;
    };
    let file = dir.join(format!("{identifier}.xml"));
    if let Err(e) = std::fs::write(&file, xml) {
        warn!(file = %file.display(), error = %e, "could not write the CAP message file");
    }
}
