//! The actors that turn observations into warning versions, shared by the Kafka node and the
//! replay: the station supervisor, the lightning → fire and deformation → landslide chains, the
//! basin supervisor, the warning manager and the debris-flow chain. They start downstream first (nothing is sent to an actor
//! that does not exist yet) and flush in pipeline order; where the warnings go is the caller's.

use std::collections::BTreeSet;
use std::sync::Arc;

use ractor::{Actor, ActorRef, DerivedActorRef};
use tianshan_actors::basin_supervisor::{BasinSupervisor, BasinSupervisorArgs, BasinSupervisorMsg};
use tianshan_actors::debris_flow_chain::{
    DebrisFlowChainActor, DebrisFlowChainArgs, DebrisFlowChainMsg,
};
use tianshan_actors::landslide_chain::{
    LandslideChainActor, LandslideChainArgs, LandslideChainMsg,
};
use tianshan_actors::lightning_fire_chain::{
    LightningFireChainActor, LightningFireChainArgs, LightningFireChainMsg,
};
use tianshan_actors::station_supervisor::{
    ChainFeed, ChainFeeds, StationSupervisor, StationSupervisorArgs, StationSupervisorMsg,
};
use tianshan_actors::warning_manager::{WarningManager, WarningManagerArgs, WarningManagerMsg};
use tianshan_core::ids::{BasinId, StationId};
use tianshan_core::landslide_chain::LandslideChain;
use tianshan_core::lightning_fire_chain::LightningFireChain;
use tianshan_core::region::Region;
use tianshan_core::slope_rain::SlopeRain;
use tianshan_core::warning::WarningEvent;

use crate::basin_updates::ChainKey;
use crate::error::PipelineError;
use crate::node_pipeline::PipelineSettings;

/// The running model actors (handles: a clone refers to the same actors).
#[derive(Clone)]
pub struct ModelActors {
    /// The station supervisor: observations in, ticks in, summaries out.
    pub stations: ActorRef<StationSupervisorMsg>,
    /// The lightning → fire chain, fed strokes, summaries and ticks by the stations.
    pub lightning_fire: ActorRef<LightningFireChainMsg>,
    /// The deformation → landslide chain, fed readings, summaries and ticks by the stations.
    pub landslide: ActorRef<LandslideChainMsg>,
    /// The basin supervisor.
    pub basins: ActorRef<BasinSupervisorMsg>,
    /// The flash-flood warning manager.
    pub manager: ActorRef<WarningManagerMsg>,
    /// The debris-flow chain, fed by the warning manager.
    pub debris_flow: ActorRef<DebrisFlowChainMsg>,
    /// The stations whose summaries each station-fed chain reads at every tick.
    pub chain_watched: Vec<(ChainKey, BTreeSet<StationId>)>,
}

impl ModelActors {
    /// Starts the actors of `region`; every warning version goes to `warnings`.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] naming the actor that did not start.
    pub async fn start(
        settings: &PipelineSettings,
        region: Arc<Region>,
        warnings: DerivedActorRef<WarningEvent>,
    ) -> Result<Self, PipelineError> {
        let (debris_flow, _) = Actor::spawn(
            None,
            DebrisFlowChainActor,
            DebrisFlowChainArgs {
                region: region.clone(),
                config: settings.debris_flow.clone(),
                policy: settings.lifecycle.clone(),
                warnings: warnings.clone(),
            },
        )
        .await
        .map_err(|e| actor_error("start the debris-flow chain", e))?;
        let (manager, _) = Actor::spawn(
            None,
            WarningManager,
            WarningManagerArgs {
                region: region.clone(),
                policy: settings.lifecycle.clone(),
                warnings: warnings.clone(),
                chains: Some(debris_flow.get_derived()),
            },
        )
        .await
        .map_err(|e| actor_error("start the warning manager", e))?;
        let (basins, _) = Actor::spawn(
            None,
            BasinSupervisor,
            BasinSupervisorArgs {
                region: region.clone(),
                policy: settings.flash_flood.clone(),
                snowmelt: settings.snowmelt.clone(),
                assessments: manager.get_derived(),
            },
        )
        .await
        .map_err(|e| actor_error("start the basin supervisor", e))?;
        // A fire zone's warnings reach its county.
        let zones = region
            .fire_zones
            .iter()
            .map(|site| (site.zone.clone(), vec![site.county.clone()]))
            .collect();
        let fire_chain = LightningFireChain::try_new(settings.lightning_fire.clone(), zones)
            .and_then(|chain| chain.with_fuel_weather(&region.stations))
            .map_err(|e| PipelineError::Setup(format!("lightning-fire: {e}")))?;
        let fire_watched = fire_chain.watched_stations();
        let mut chain_watched = vec![(ChainKey::Fire, fire_watched.clone())];
        let (lightning_fire, _) = Actor::spawn(
            None,
            LightningFireChainActor,
            LightningFireChainArgs {
                chain: fire_chain,
                policy: settings.lifecycle.clone(),
                warnings: warnings.clone(),
            },
        )
        .await
        .map_err(|e| actor_error("start the lightning-fire chain", e))?;
        let slope_chain = LandslideChain::try_new(settings.landslide.clone(), &region.slopes)
            .map_err(|e| PipelineError::Setup(format!("landslide: {e}")))?;
        let slope_rain = SlopeRain::try_new(
            &settings.landslide.rain.window,
            &settings.windows.rain_durations_min,
            settings.flash_flood.min_completeness,
            &region.slopes,
            &region.basins,
        )
        .map_err(PipelineError::Setup)?;
        let slope_watched = slope_rain.watched_stations();
        chain_watched.push((ChainKey::Landslide, slope_watched.clone()));
        let (landslide, _) = Actor::spawn(
            None,
            LandslideChainActor,
            LandslideChainArgs {
                chain: slope_chain,
                rain: slope_rain,
                policy: settings.lifecycle.clone(),
                warnings,
            },
        )
        .await
        .map_err(|e| actor_error("start the landslide chain", e))?;
        let (stations, _) = Actor::spawn(
            None,
            StationSupervisor,
            StationSupervisorArgs {
                region,
                windows: settings.windows.clone(),
                summaries: basins.get_derived(),
                chains: ChainFeeds {
                    fire: Some(ChainFeed {
                        actor: lightning_fire.clone(),
                        watched: fire_watched,
                    }),
                    landslide: Some(ChainFeed {
                        actor: landslide.clone(),
                        watched: slope_watched,
                    }),
                },
            },
        )
        .await
        .map_err(|e| actor_error("start the station supervisor", e))?;
        Ok(Self {
            stations,
            lightning_fire,
            landslide,
            basins,
            manager,
            debris_flow,
            chain_watched,
        })
    }

    /// Flushes the actors in pipeline order: each flush reply proves the actor has forwarded
    /// everything it received before, so the next actor's flush comes after it. After it, every
    /// warning version derived so far has been sent to the caller's sink.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn flush(&self) -> Result<(), PipelineError> {
        ask(
            &self.stations,
            StationSupervisorMsg::Flush,
            "flush stations",
        )
        .await?;
        ask(
            &self.lightning_fire,
            LightningFireChainMsg::Flush,
            "flush the lightning-fire chain",
        )
        .await?;
        ask(
            &self.landslide,
            LandslideChainMsg::Flush,
            "flush the landslide chain",
        )
        .await?;
        ask(&self.basins, BasinSupervisorMsg::Flush, "flush basins").await?;
        ask(&self.manager, WarningManagerMsg::Flush, "flush warnings").await?;
        ask(
            &self.debris_flow,
            DebrisFlowChainMsg::Flush,
            "flush the debris-flow chain",
        )
        .await
    }

    /// Forgets the state of everything downstream of the stations — basins, warning threads and
    /// chains — once what is in flight has gone through: a sharded node that gained or lost
    /// basin-updates partitions rebuilds them from the log.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn reset_downstream(&self) -> Result<(), PipelineError> {
        self.flush().await?;
        ask(&self.basins, BasinSupervisorMsg::Reset, "reset basins").await?;
        ask(&self.manager, WarningManagerMsg::Reset, "reset warnings").await?;
        ask(
            &self.debris_flow,
            DebrisFlowChainMsg::Reset,
            "reset the debris-flow chain",
        )
        .await?;
        self.reset_chain(ChainKey::Fire).await?;
        self.reset_chain(ChainKey::Landslide).await
    }

    /// Forgets the state of `basins` (their basin actors, flash-flood threads and debris-flow
    /// chains) and of `chains`, once what is in flight has gone through; everything else goes
    /// on: a sharded node that kept some basin-updates partitions through a rebalance rebuilds
    /// only those it gained from the log.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn reset_some(
        &self,
        basins: &BTreeSet<BasinId>,
        chains: &BTreeSet<ChainKey>,
    ) -> Result<(), PipelineError> {
        self.flush().await?;
        ask(
            &self.basins,
            |port| BasinSupervisorMsg::ResetSome(basins.clone(), port),
            "reset basins",
        )
        .await?;
        ask(
            &self.manager,
            |port| WarningManagerMsg::ResetSome(basins.clone(), port),
            "reset warnings",
        )
        .await?;
        ask(
            &self.debris_flow,
            |port| DebrisFlowChainMsg::ResetSome(basins.clone(), port),
            "reset debris-flow chains",
        )
        .await?;
        for chain in chains {
            self.reset_chain(*chain).await?;
        }
        Ok(())
    }

    /// Puts `chain` back as at start.
    async fn reset_chain(&self, chain: ChainKey) -> Result<(), PipelineError> {
        match chain {
            ChainKey::Fire => {
                ask(
                    &self.lightning_fire,
                    LightningFireChainMsg::Reset,
                    "reset the lightning-fire chain",
                )
                .await
            }
            ChainKey::Landslide => {
                ask(
                    &self.landslide,
                    LandslideChainMsg::Reset,
                    "reset the landslide chain",
                )
                .await
            }
        }
    }

    /// Stops every actor.
    pub fn stop(&self) {
        self.stations.stop(None);
        self.lightning_fire.stop(None);
        self.landslide.stop(None);
        self.basins.stop(None);
        self.manager.stop(None);
        self.debris_flow.stop(None);
    }
}

pub(crate) fn actor_error(what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Actor(format!("{what}: {e}"))
}

/// [`tianshan_actors::ask::ask`] with the error as a [`PipelineError`].
pub(crate) async fn ask<M: ractor::Message, T>(
    actor: &ActorRef<M>,
    make: impl FnOnce(ractor::RpcReplyPort<T>) -> M,
    what: &str,
) -> Result<T, PipelineError> {
    tianshan_actors::ask::ask(actor, make, what)
        .await
        .map_err(|e| actor_error(what, e))
}
