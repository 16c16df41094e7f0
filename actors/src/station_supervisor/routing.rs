//! How the envelopes of a batch, or of a span of batches and ticks, reach the stations and the
//! chains: each destination gets its part in one message, all parts are in flight at once, and
//! the outcomes come back in the caller's order.

use std::collections::HashMap;

use ractor::concurrency::OneshotReceiver;
use ractor::ActorProcessingErr;
use tianshan_core::observation::{Outcome, Reading, RejectReason};
use tianshan_core::time::EventTime;
use tracing::error;

use super::{ChainFeeds, StationRoutes};
use crate::ask::{await_each, reply_port};
use crate::landslide_chain::LandslideChainMsg;
use crate::lightning_fire_chain::LightningFireChainMsg;
use crate::station::{Envelope, StationMsg};

/// Where an envelope goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Destination {
    /// The station actor in this slot.
    Station(usize),
    /// The fire chain (a lightning stroke).
    Strokes,
    /// The landslide chain (a deformation reading).
    Deformation,
}

/// Returns where `envelope` goes, or `None` for a station that is not in the region.
pub(super) fn destination(
    stations: &StationRoutes,
    chains: &ChainFeeds,
    envelope: &Envelope,
) -> Option<Destination> {
    match envelope.observation.reading {
        Reading::Lightning { .. } if chains.fire.is_some() => Some(Destination::Strokes),
        Reading::Deformation { .. } if chains.landslide.is_some() => Some(Destination::Deformation),
        _ => stations
            .index
            .get(&envelope.observation.station)
            .map(|&slot| Destination::Station(slot)),
    }
}

/// The envelopes one destination receives, with their positions in the caller's order.
#[derive(Default)]
struct Part {
    positions: Vec<usize>,
    envelopes: Vec<Envelope>,
}

impl Part {
    fn push(&mut self, position: usize, envelope: Envelope) {
        self.positions.push(position);
        self.envelopes.push(envelope);
    }
}

/// Envelopes sorted by destination, each kept in the order it was pushed.
#[derive(Default)]
pub(super) struct Parts {
    stations: HashMap<usize, Part>,
    strokes: Part,
    deformation: Part,
}

impl Parts {
    /// Adds the envelope at `position` of the caller's order to `destination`'s part.
    pub(super) fn push(&mut self, destination: Destination, position: usize, envelope: Envelope) {
        match destination {
            Destination::Station(slot) => self.stations.entry(slot).or_default(),
            Destination::Strokes => &mut self.strokes,
            Destination::Deformation => &mut self.deformation,
        }
        .push(position, envelope);
    }
}

/// The outcomes of a batch or span by position, and the replies still to come.
pub(super) struct Outcomes {
    by_position: Vec<Option<Outcome>>,
    pending: Vec<(Vec<usize>, OneshotReceiver<Vec<Outcome>>)>,
}

impl Outcomes {
    /// Starts the outcomes of `count` envelopes.
    pub(super) fn for_envelopes(count: usize) -> Self {
        Self {
            by_position: vec![None; count],
            pending: Vec::new(),
        }
    }

    /// Rejects the envelope at `position`, whose station is not in the region.
    pub(super) fn reject_unknown_station(&mut self, position: usize, envelope: &Envelope) {
        let detail = format!(
            "station {} is not in the region's station list",
            envelope.observation.station
        );
        self.by_position[position] = Some(Outcome::rejected(RejectReason::UnknownStation, detail));
    }

    /// Sends every part to its destination without waiting, each station first advanced to the
    /// tick due for it ([`super::StationSupervisorMsg::AdvanceLater`]). A station that is gone
    /// (failed, its restart still to come) rejects its part as `station_failed`.
    ///
    /// # Errors
    /// Returns an error when a chain is gone.
    pub(super) fn send(
        &mut self,
        parts: Parts,
        stations: &StationRoutes,
        advance_due: &mut [Option<EventTime>],
        chains: &ChainFeeds,
    ) -> Result<(), ActorProcessingErr> {
        for (slot, part) in parts.stations {
            let station = &stations.actors[slot];
            let advanced = match advance_due[slot].take() {
                Some(tick) => station.cast(StationMsg::Advance(tick)),
                None => Ok(()),
            };
            let (port, receiver) = reply_port();
            match advanced.and_then(|()| station.cast(StationMsg::Apply(part.envelopes, port))) {
                Ok(()) => self.pending.push((part.positions, receiver)),
                Err(e) => self.reject_failed(part.positions, &e.to_string()),
            }
        }
        if let (Some(feed), false) = (&chains.fire, parts.strokes.positions.is_empty()) {
            let (port, receiver) = reply_port();
            feed.actor.cast(LightningFireChainMsg::Strokes(
                parts.strokes.envelopes,
                port,
            ))?;
            self.pending.push((parts.strokes.positions, receiver));
        }
        if let (Some(feed), false) = (&chains.landslide, parts.deformation.positions.is_empty()) {
            let (port, receiver) = reply_port();
            feed.actor.cast(LandslideChainMsg::Readings(
                parts.deformation.envelopes,
                port,
            ))?;
            self.pending.push((parts.deformation.positions, receiver));
        }
        Ok(())
    }

    /// Awaits every reply and returns one outcome per envelope, in the caller's order. A part
    /// whose station failed while applying it is rejected as `station_failed`, so it reaches the
    /// dead letters with the reason; the supervisor restarts the station and the rest stands.
    ///
    /// # Errors
    /// Returns an error when a destination answered for fewer envelopes than it was sent.
    pub(super) async fn gather(mut self) -> Result<Vec<Outcome>, ActorProcessingErr> {
        let (parts, receivers): (Vec<Vec<usize>>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().unzip();
        let replies = await_each(receivers, "station apply").await;
        for (positions, reply) in parts.into_iter().zip(replies) {
            match reply {
                Ok(replies) => {
                    for (position, outcome) in positions.into_iter().zip(replies) {
                        self.by_position[position] = Some(outcome);
                    }
                }
                Err(e) => {
                    error!(error = %e, "a station failed while applying its part of a batch");
                    self.reject_failed(positions, &e.to_string());
                }
            }
        }
        self.by_position
            .into_iter()
            .map(|outcome| {
                outcome.ok_or_else(|| {
                    ActorProcessingErr::from("a station returned fewer outcomes than it was sent")
                })
            })
            .collect()
    }

    fn reject_failed(&mut self, positions: Vec<usize>, reason: &str) {
        for position in positions {
            self.by_position[position] =
                Some(Outcome::rejected(RejectReason::StationFailed, reason));
        }
    }
}
