//! Areal rainfall, water level and flash-flood thresholds of one basin. Receives the summaries of
//! its member stations; once every member has reported for a tick, emits that tick's
//! `Assessment` to `assessments` (the `WarningManager`, or a recorder in tests). Supervised by
//! `BasinSupervisor`.

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tianshan_core::flash_flood::{Assessment, BasinAssessor};
use tianshan_core::station_windows::StationSummary;
use tianshan_core::time::EventTime;

/// Messages of [`BasinActor`].
pub enum BasinMsg {
    /// A member station's summary for a tick.
    Summary(StationSummary),
    /// Replies once every earlier message has been handled.
    Flush(RpcReplyPort<()>),
    /// Replies with the latest assessment.
    Snapshot(RpcReplyPort<Option<Assessment>>),
}

/// Start-up arguments of [`BasinActor`].
pub struct BasinArgs {
    /// The basin's assessor, built from region data and policy.
    pub assessor: BasinAssessor,
    /// Where assessments go.
    pub assessments: DerivedActorRef<Assessment>,
}

/// State of [`BasinActor`].
pub struct BasinState {
    assessor: BasinAssessor,
    assessments: DerivedActorRef<Assessment>,
    evaluated: Option<EventTime>,
    last: Option<Assessment>,
}

/// The actor owning one basin's aggregation.
pub struct BasinActor;

impl Actor for BasinActor {
    type Msg = BasinMsg;
    type State = BasinState;
    type Arguments = BasinArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<BasinMsg>,
        args: BasinArgs,
    ) -> Result<BasinState, ActorProcessingErr> {
        Ok(BasinState {
            assessor: args.assessor,
            assessments: args.assessments,
            evaluated: None,
            last: None,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<BasinMsg>,
        msg: BasinMsg,
        st: &mut BasinState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BasinMsg::Summary(summary) => {
                let tick = summary.tick();
                st.assessor.update(&summary);
                if st.evaluated.is_none_or(|done| tick > done) && st.assessor.ready(tick) {
                    let assessment = st.assessor.assess(tick);
                    st.evaluated = Some(tick);
                    st.last = Some(assessment.clone());
                    st.assessments
                        .send_message(assessment)
                        .map_err(|_| "assessments downstream is gone")?;
                }
            }
            BasinMsg::Flush(reply) => {
                let _ = reply.send(());
            }
            BasinMsg::Snapshot(reply) => {
                let _ = reply.send(st.last.clone());
            }
        }
        Ok(())
    }
}
