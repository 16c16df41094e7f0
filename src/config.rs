//! The node's configuration: `default.toml` (compiled in) < `--config FILE` < `TIANSHAN__SECTION__KEY`
//! environment variables, validated once at start with the offending field named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use tianshan_cluster::cluster_config::ClusterConfig;
use tianshan_cluster::server::{serve, BoundAddresses, GrpcSettings, TlsSettings};
use tianshan_cluster::warning_service::{WarningApiSettings, WarningsTopic};
use tianshan_core::access::TokenTable;
use tianshan_core::boundaries::{AreaShapes, COARSE_HALF_SIDE_DEG};
use tianshan_core::debris_flow::DebrisFlowConfig;
use tianshan_core::flash_flood::FlashFloodPolicy;
use tianshan_core::landslide::LandslidePolicy;
use tianshan_core::lifecycle::LifecyclePolicy;
use tianshan_core::lightning_fire::LightningFireConfig;
use tianshan_core::region::Region;
use tianshan_core::snowmelt::SnowmeltConfig;
use tianshan_core::station_windows::WindowsConfig;
use tianshan_pipelines::agency_alerts::AgencyAlertsConfig;
use tianshan_pipelines::config::{KafkaConfig, PipelineConfig};
use tianshan_pipelines::dissemination_stage::DisseminationConfig;
use tianshan_pipelines::node_pipeline::NodePipeline;
use tianshan_pipelines::node_pipeline::PipelineSettings;

/// The defaults, compiled into the binary.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

/// Node addresses and region (`[node]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeConfig {
    /// gRPC listen address.
    pub grpc_addr: String,
    /// HTTP listen address.
    pub http_addr: String,
    /// Region folder.
    pub region: PathBuf,
    /// County boundary polygons: a GeoJSON FeatureCollection with `code` and `name` properties
    /// (a deployment brings its official boundaries). Unset: coarse squares around the county
    /// centroids stand in for them.
    #[serde(default)]
    pub boundaries: Option<PathBuf>,
    /// Bearer tokens of the gRPC API (CSV `token,principal,role,department,unit`, see
    /// `core/src/access.rs`). Unset: every call is refused as unauthenticated.
    #[serde(default)]
    pub tokens: Option<PathBuf>,
    /// TLS certificate chain (PEM) of the gRPC port; with `tls-key`, the port serves TLS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the gRPC port.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM) the nodes' certificates chain to: with TLS, calls to
    /// `cluster.peers` go over TLS and verify the peer against it (needed when there are peers).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
}

/// The header of a token file, alone: no tokens.
pub const TOKEN_HEADER: &str = "token,principal,role,department,unit\n";

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Node addresses and region.
    pub node: NodeConfig,
    /// Kafka connection and topics.
    pub kafka: KafkaConfig,
    /// Ticks and batching.
    pub pipeline: PipelineConfig,
    /// Station windows and QC.
    #[serde(default)]
    pub windows: WindowsConfig,
    /// Flash-flood levels.
    #[serde(default)]
    pub flash_flood: FlashFloodPolicy,
    /// Warning lifecycle timing.
    #[serde(default)]
    pub lifecycle: LifecyclePolicy,
    /// Debris-flow models and the flash-flood chain step.
    #[serde(default)]
    pub debris_flow: DebrisFlowConfig,
    /// Lightning stroke windows, ignition-risk scoring and holdover.
    #[serde(default)]
    pub lightning_fire: LightningFireConfig,
    /// Deformation windows, failure-time forecast, tangent-angle levels and rain on slopes.
    #[serde(default)]
    pub landslide: LandslidePolicy,
    /// Snowpack melt and rain on snow in the basins that have a snowpack.
    #[serde(default)]
    pub snowmelt: SnowmeltConfig,
    /// Recipient directory, acknowledgement deadlines, sign-off, CAP and channels.
    #[serde(default)]
    pub dissemination: DisseminationConfig,
    /// Other agencies' CAP alerts: the department per sender, the statuses taken.
    #[serde(default)]
    pub agency_alerts: AgencyAlertsConfig,
    /// This node's id and the peers SQL queries gather from.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

impl Config {
    /// Loads and validates the layered configuration.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::new().merge(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(
            Env::prefixed("TIANSHAN__")
                .split("__")
                .map(|key| key.as_str().replace('_', "-").into()),
        );
        let config: Config = figment.extract().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every section; the error names the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.kafka
            .validate()
            .map_err(anyhow::Error::msg)
            .context("invalid configuration")?;
        self.pipeline
            .validate()
            .map_err(anyhow::Error::msg)
            .context("invalid configuration")?;
        self.windows
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: windows: {e}"))?;
        self.flash_flood
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: flash-flood: {e}"))?;
        self.lifecycle
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: lifecycle: {e}"))?;
        self.debris_flow
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: debris-flow: {e}"))?;
        self.lightning_fire
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: lightning-fire: {e}"))?;
        self.landslide
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: landslide: {e}"))?;
        self.snowmelt
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: snowmelt: {e}"))?;
        self.dissemination
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.agency_alerts
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.cluster
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        if self.node.tls_cert.is_some() != self.node.tls_key.is_some() {
            bail!("invalid configuration: node.tls-cert and node.tls-key go together");
        }
        if self.node.tls_cert.is_some()
            && !self.cluster.other_peers().is_empty()
            && self.node.tls_ca.is_none()
        {
            bail!(
                "invalid configuration: node.tls-ca: the gRPC port serves TLS and cluster.peers is \
                 set, so peers are called over TLS and need the CA their certificates chain to"
            );
        }
        Ok(())
    }

    /// Returns the region folder, falling back to the one shipped with the source tree when the
    /// configured relative path does not exist from the working directory.
    pub fn region_dir(&self) -> PathBuf {
        let configured = &self.node.region;
        if configured.is_relative() && !configured.exists() {
            let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(configured);
            if shipped.exists() {
                return shipped;
            }
        }
        configured.clone()
    }

    /// Loads the region folder and the county areas (official boundaries when configured).
    ///
    /// # Errors
    /// Names the folder or `node.boundaries` when they cannot be loaded.
    pub fn load_region(&self) -> anyhow::Result<Region> {
        let dir = self.region_dir();
        let mut region = Region::load_with_snowmelt(&dir, &self.snowmelt)
            .with_context(|| format!("loading region {}", dir.display()))?;
        if let Some(path) = &self.node.boundaries {
            region.areas = AreaShapes::load_geojson(path)
                .with_context(|| format!("node.boundaries: loading {}", path.display()))?;
        }
        Ok(region)
    }

    /// Says which county areas the node uses, for the start-up banner.
    pub fn areas_note(&self, region: &Region) -> String {
        match (&region.areas, &self.node.boundaries) {
            (AreaShapes::Official(shapes), Some(path)) => format!(
                "{} official county boundaries from {}",
                shapes.len(),
                path.display()
            ),
            (shapes, _) => format!(
                "no boundary file configured (node.boundaries): county areas are coarse squares of \
                 ±{COARSE_HALF_SIDE_DEG}° around {} county centroids, not boundaries",
                shapes.len()
            ),
        }
    }

    /// Loads the bearer tokens of the gRPC API; without `node.tokens`, an empty table (every call
    /// is refused as unauthenticated).
    ///
    /// # Errors
    /// Names `node.tokens` and the file, line and field of a bad token row.
    pub fn load_tokens(&self) -> anyhow::Result<TokenTable> {
        match &self.node.tokens {
            Some(path) => TokenTable::load(path).with_context(|| "node.tokens"),
            None => Ok(TokenTable::from_csv(
                TOKEN_HEADER,
                Path::new("(no node.tokens configured)"),
            )?),
        }
    }

    /// Serves the gRPC API (with `tokens`), the HTTP endpoints and the CAP feed of `pipeline`.
    ///
    /// # Errors
    /// Names the address that cannot be bound or the TLS file that cannot be read.
    pub async fn serve_node(
        &self,
        pipeline: &NodePipeline,
        region: Arc<Region>,
        tokens: TokenTable,
    ) -> anyhow::Result<BoundAddresses> {
        let tls = match (&self.node.tls_cert, &self.node.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert: cert.clone(),
                key: key.clone(),
                ca: self.node.tls_ca.clone(),
            }),
            (None, None) => None,
            _ => bail!("invalid configuration: node.tls-cert and node.tls-key go together"),
        };
        let grpc = GrpcSettings {
            api: WarningApiSettings {
                sign_off_desk: pipeline.dissemination.desk.clone(),
                region_unit: pipeline.dissemination.region_unit.clone(),
                tokens: Arc::new(tokens),
                warnings_topic: WarningsTopic::from_kafka(&self.kafka),
            },
            cluster: self.cluster.clone(),
            tls,
        };
        Ok(serve(
            &self.node.grpc_addr,
            &self.node.http_addr,
            pipeline,
            region,
            grpc,
            Some(pipeline.dissemination.cap_feed.clone()),
        )
        .await?)
    }

    /// Returns the settings of the pipeline.
    pub fn pipeline_settings(&self) -> PipelineSettings {
        PipelineSettings {
            kafka: self.kafka.clone(),
            pipeline: self.pipeline.clone(),
            windows: self.windows.clone(),
            flash_flood: self.flash_flood.clone(),
            lifecycle: self.lifecycle.clone(),
            debris_flow: self.debris_flow.clone(),
            lightning_fire: self.lightning_fire.clone(),
            landslide: self.landslide.clone(),
            snowmelt: self.snowmelt.clone(),
            dissemination: self.dissemination.clone(),
            agency_alerts: self.agency_alerts.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment's large error type
mod tests {
    use figment::Jail;

    use super::*;

    #[test]
    fn layers_defaults_file_and_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "node.toml",
                "[kafka]\ngroup-id = \"from-file\"\n[pipeline]\nmax-batch = 10\n",
            )?;
            jail.set_env("TIANSHAN__PIPELINE__MAX_BATCH", "20");
            let config = Config::load(Some(Path::new("node.toml"))).expect("config loads");
            assert_eq!(config.kafka.group_id, "from-file");
            assert_eq!(config.pipeline.max_batch, 20);
            assert_eq!(config.node.grpc_addr, "127.0.0.1:50051");
            Ok(())
        });
    }

    /// The county boundaries of ../shared/data (not committed: their terms forbid republishing).
    const SHARED_COUNTIES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/xinjiang-boundaries/xinjiang-counties.geojson"
    );

    #[test]
    fn county_areas_are_official_when_configured_and_coarse_otherwise() {
        Jail::expect_with(|jail| {
            let coarse = Config::load(None).expect("defaults load");
            let region = coarse.load_region().expect("region loads");
            assert!(!region.areas.is_official());
            assert!(coarse.areas_note(&region).contains("not boundaries"));

            jail.set_env("TIANSHAN__NODE__BOUNDARIES", SHARED_COUNTIES);
            let official = Config::load(None).expect("config loads");
            let region = official.load_region().expect("region and boundaries load");
            assert!(region.areas.is_official());
            assert_eq!(region.areas.len(), 108);
            assert_eq!(
                region.areas.county_at(87.6168, 43.7928).map(|c| c.as_str()),
                Some("650102"),
                "Urumqi People's Square lies in Tianshan district"
            );

            jail.set_env("TIANSHAN__NODE__BOUNDARIES", "/nowhere/counties.geojson");
            let missing = Config::load(None).expect("config loads");
            let error = format!("{:#}", missing.load_region().unwrap_err());
            assert!(error.contains("node.boundaries"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_field() {
        Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[pipeline]\ntick = \"5 parsecs\"\n")?;
            let error = format!(
                "{:#}",
                Config::load(Some(Path::new("bad.toml"))).unwrap_err()
            );
            assert!(error.contains("pipeline.tick"), "{error}");
            jail.create_file(
                "peers.toml",
                "[cluster]\npeers = [\"node-1:50051\", \"node-2\"]\n",
            )?;
            let error = format!(
                "{:#}",
                Config::load(Some(Path::new("peers.toml"))).unwrap_err()
            );
            assert!(error.contains("cluster.peers[1]"), "{error}");
            jail.create_file(
                "tls-peers.toml",
                "[node]\ntls-cert = \"tls.crt\"\ntls-key = \"tls.key\"\n\
                 [cluster]\npeers = [\"node-1:50051\"]\n",
            )?;
            let error = format!(
                "{:#}",
                Config::load(Some(Path::new("tls-peers.toml"))).unwrap_err()
            );
            assert!(error.contains("node.tls-ca"), "{error}");
            jail.set_env("TIANSHAN__NODE__TLS_CA", "ca.crt");
            Config::load(Some(Path::new("tls-peers.toml"))).expect("with a CA, peers over TLS");
            jail.create_file("half-tls.toml", "[node]\ntls-cert = \"tls.crt\"\n")?;
            let error = format!(
                "{:#}",
                Config::load(Some(Path::new("half-tls.toml"))).unwrap_err()
            );
            assert!(error.contains("node.tls-key"), "{error}");
            jail.create_file("unknown.toml", "[kafka]\nbootstrap = \"x\"\n")?;
            let error = format!(
                "{:#}",
                Config::load(Some(Path::new("unknown.toml"))).unwrap_err()
            );
            assert!(error.contains("bootstrap"), "{error}");
            Ok(())
        });
    }
}
