//! Region data: administrative units, stations, flash-flood basins and their thresholds, fire
//! zones and monitored slopes, loaded from a region folder such as `regions/xinjiang/` and
//! validated once at load.
//!
//! The folder holds six UTF-8 CSV files with header rows: `admin_units.csv`, `stations.csv`,
//! `basins.csv`, `basin_gauges.csv`, `basin_thresholds.csv` and `water_level_thresholds.csv`
//! (columns in `regions/xinjiang/README.md`), and optionally [`GULLIES_FILE`],
//! [`FIRE_ZONES_FILE`], [`SLOPES_FILE`] and [`SLOPE_POINTS_FILE`]. Every map is a `BTreeMap`, so
//! iteration order, and hence anything derived from it, is deterministic.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::boundaries::AreaShapes;
use crate::boundaries::Ring;
use crate::debris_flow::GullyProfile;
use crate::ids::{AreaCode, BasinId, SlopeId, StationId};
use crate::landslide::SensorKind;
use crate::lightning_fire::{FireZone, FireZoneId, FuelKind};
use crate::snowmelt::SnowmeltConfig;

mod snowpacks;
use snowpacks::load_basin_snowpacks;
pub use snowpacks::{nearest_station, SnowpackSite, BASIN_SNOWPACKS_FILE};

/// Tolerance on the sum of a basin's gauge weights.
const WEIGHT_SUM_TOLERANCE: f64 = 0.01;

/// What a station measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StationKind {
    /// A tipping-bucket rain gauge.
    Rain,
    /// A river or stream water-level (stage) gauge.
    WaterLevel,
    /// An automatic weather station.
    Weather,
}

impl StationKind {
    /// Returns the name used in region files (`rain`, `water_level`, `weather`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rain => "rain",
            Self::WaterLevel => "water_level",
            Self::Weather => "weather",
        }
    }

    /// Parses the name used in region files; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Rain, Self::WaterLevel, Self::Weather]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for StationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level of an administrative unit in the dissemination tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminLevel {
    /// The autonomous region (province level).
    Region,
    /// A prefecture-level unit.
    Prefecture,
    /// A county-level unit.
    County,
    /// A township-level unit (乡/镇/街道).
    Township,
}

impl fmt::Display for AdminLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Region => "region",
            Self::Prefecture => "prefecture",
            Self::County => "county",
            Self::Township => "township",
        })
    }
}

/// Antecedent soil moisture class that selects a set of critical-rainfall thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SoilState {
    /// Dry antecedent conditions: the highest thresholds.
    Dry,
    /// Normal antecedent conditions.
    Normal,
    /// Wet antecedent conditions: the lowest thresholds.
    Wet,
}

impl SoilState {
    /// All soil states, in order.
    pub const ALL: [SoilState; 3] = [Self::Dry, Self::Normal, Self::Wet];
}

impl fmt::Display for SoilState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dry => "dry",
            Self::Normal => "normal",
            Self::Wet => "wet",
        })
    }
}

/// An administrative unit (GB/T 2260 code, or 9-digit township code).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminUnit {
    /// The unit's code.
    pub code: AreaCode,
    /// The official Chinese name.
    pub name: String,
    /// The level in the hierarchy.
    pub level: AdminLevel,
    /// The parent unit; `None` for the region.
    pub parent: Option<AreaCode>,
    /// Centroid longitude in degrees, if known.
    pub lon: Option<f64>,
    /// Centroid latitude in degrees, if known.
    pub lat: Option<f64>,
}

/// A sensor station.
#[derive(Debug, Clone, PartialEq)]
pub struct Station {
    /// The station id.
    pub id: StationId,
    /// What it measures.
    pub kind: StationKind,
    /// Longitude in degrees.
    pub lon: f64,
    /// Latitude in degrees.
    pub lat: f64,
    /// The county the station lies in.
    pub county: AreaCode,
    /// Nominal reporting interval in seconds.
    pub report_interval_s: u32,
}

/// Critical rainfall of a basin for one duration (and one soil state, the map key).
#[derive(Debug, Clone, PartialEq)]
pub struct RainThreshold {
    /// Accumulation duration in hours.
    pub duration_h: u32,
    /// Rainfall in mm over the duration that triggers "prepare to evacuate".
    pub prepare_mm: f64,
    /// Rainfall in mm over the duration that triggers "evacuate immediately".
    pub immediate_mm: f64,
}

/// Stage thresholds of a water-level station attached to a basin.
#[derive(Debug, Clone, PartialEq)]
pub struct StageThreshold {
    /// The water-level station.
    pub station: StationId,
    /// Normal (base) stage in metres.
    pub base_stage_m: f64,
    /// Stage in metres that triggers "prepare to evacuate".
    pub prepare_stage_m: f64,
    /// Stage in metres that triggers "evacuate immediately".
    pub immediate_stage_m: f64,
}

/// A small flash-flood basin with its gauges and thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct Basin {
    /// The basin id.
    pub id: BasinId,
    /// The basin name.
    pub name: String,
    /// The county the basin lies in.
    pub county: AreaCode,
    /// Townships at risk in the basin.
    pub townships: Vec<AreaCode>,
    /// Longitude of the basin centre in degrees.
    pub lon: f64,
    /// Latitude of the basin centre in degrees.
    pub lat: f64,
    /// Area in km².
    pub area_km2: f64,
    /// Tension-water capacity in mm (caps the antecedent precipitation index).
    pub wm_mm: f64,
    /// Rain gauges with their areal weights (summing to 1).
    pub gauges: Vec<(StationId, f64)>,
    /// Critical rainfall per soil state, each list sorted by duration.
    pub rain_thresholds: BTreeMap<SoilState, Vec<RainThreshold>>,
    /// Stage thresholds of the basin's water-level stations.
    pub stage_thresholds: Vec<StageThreshold>,
}

impl Basin {
    /// Returns the areas a warning for this basin targets: the county first, then the townships.
    pub fn area_codes(&self) -> Vec<AreaCode> {
        std::iter::once(self.county.clone())
            .chain(self.townships.iter().cloned())
            .collect()
    }

    /// Returns the stations that feed this basin: rain gauges, then water-level stations.
    pub fn member_stations(&self) -> impl Iterator<Item = &StationId> {
        self.gauges
            .iter()
            .map(|(station, _)| station)
            .chain(self.stage_thresholds.iter().map(|stage| &stage.station))
    }
}

/// A forest or grassland fire zone of the region, with what the lightning-fire model does not
/// need but a warning does.
#[derive(Debug, Clone, PartialEq)]
pub struct FireZoneSite {
    /// The zone: id, fuel and polygon.
    pub zone: FireZone,
    /// The zone name.
    pub name: String,
    /// The county holding the zone centre.
    pub county: AreaCode,
}

/// A deformation monitoring point of a slope.
#[derive(Debug, Clone, PartialEq)]
pub struct SlopePoint {
    /// The point id: the station id its observations carry.
    pub id: StationId,
    /// The instrument.
    pub sensor: SensorKind,
    /// Downslope (sliding) direction in degrees clockwise from north, in [0, 360): the
    /// horizontal east/north displacement is projected on it.
    pub azimuth_deg: f64,
}

/// A monitored landslide slope with its deformation points.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoredSlope {
    /// The slope id.
    pub id: SlopeId,
    /// The slope name.
    pub name: String,
    /// The county the slope lies in.
    pub county: AreaCode,
    /// The flash-flood basin whose areal rainfall stands for the rain on the slope.
    pub basin: BasinId,
    /// Townships at risk: the basin's townships when the basin lies in the slope's county,
    /// otherwise none (the slope file names no townships).
    pub townships: Vec<AreaCode>,
    /// Longitude in degrees.
    pub lon: f64,
    /// Latitude in degrees.
    pub lat: f64,
    /// Mean velocity of the constant-velocity (creep) stage, mm/d (hazards.md §5.3).
    pub v0_mm_per_day: f64,
    /// Monitoring points in file order.
    pub points: Vec<SlopePoint>,
}

impl MonitoredSlope {
    /// Returns the areas a warning for this slope targets: the county first, then the townships.
    pub fn area_codes(&self) -> Vec<AreaCode> {
        std::iter::once(self.county.clone())
            .chain(self.townships.iter().cloned())
            .collect()
    }
}

/// A loaded, validated region.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// The region name (the folder name, e.g. `xinjiang`).
    pub name: String,
    /// Administrative units by code.
    pub admin_units: BTreeMap<AreaCode, AdminUnit>,
    /// Stations by id.
    pub stations: BTreeMap<StationId, Station>,
    /// Basins by id.
    pub basins: BTreeMap<BasinId, Basin>,
    /// The basins each station feeds, in basin-id order.
    basins_by_station: BTreeMap<StationId, Vec<BasinId>>,
    /// Basins that are debris-flow gullies, with their model choices (optional file
    /// [`GULLIES_FILE`]).
    pub gullies: BTreeMap<BasinId, GullyProfile>,
    /// Forest and grassland fire zones in file order (optional file [`FIRE_ZONES_FILE`]; empty
    /// when absent).
    pub fire_zones: Vec<FireZoneSite>,
    /// Monitored landslide slopes in file order, with their points (optional files
    /// [`SLOPES_FILE`] and [`SLOPE_POINTS_FILE`]; empty when absent).
    pub slopes: Vec<MonitoredSlope>,
    /// County areas: official boundaries when a deployment brings them (see
    /// [`AreaShapes::load_geojson`]), otherwise coarse squares around the county centroids.
    pub areas: AreaShapes,
    /// Basins holding a seasonal snowpack (optional file [`BASIN_SNOWPACKS_FILE`]; empty when
    /// absent).
    pub basin_snowpacks: BTreeMap<BasinId, SnowpackSite>,
}

/// Why a region folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A row is malformed: wrong column count, unparsable number, unknown enum value.
    #[error("{}: {source}", file.display())]
    Csv {
        /// The file.
        file: PathBuf,
        /// The parse error, with record, line and field.
        source: csv::Error,
    },
    /// A station kind other than `rain`, `water_level` or `weather`.
    #[error("{} line {line}: unknown station kind `{value}` in field kind", file.display())]
    UnknownStationKind {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The offending value.
        value: String,
    },
    /// The same id (or key) appears twice.
    #[error("{} line {line}: duplicate {field} `{id}`", file.display())]
    DuplicateId {
        /// The file.
        file: PathBuf,
        /// The 1-based line of the second occurrence.
        line: u64,
        /// The field (or fields) forming the key.
        field: &'static str,
        /// The duplicated value.
        id: String,
    },
    /// An area code that is not an administrative unit of the expected level.
    #[error("{} line {line}: {field} `{code}` is not a {level} in admin_units.csv", file.display())]
    UnknownArea {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The field holding the code.
        field: &'static str,
        /// The offending code.
        code: String,
        /// The level the code must have.
        level: AdminLevel,
    },
    /// A station id that is not in `stations.csv`.
    #[error("{} line {line}: station_id `{station}` is not in stations.csv", file.display())]
    UnknownStation {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The offending station.
        station: StationId,
    },
    /// A station of the wrong kind (a basin gauge that is not a rain gauge, ...).
    #[error(
        "{} line {line}: station_id `{station}` is a {found} station, expected {expected}",
        file.display()
    )]
    WrongStationKind {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The offending station.
        station: StationId,
        /// The kind the field requires.
        expected: StationKind,
        /// The station's actual kind.
        found: StationKind,
    },
    /// A basin id that is not in `basins.csv`.
    #[error("{} line {line}: basin_id `{basin}` is not in basins.csv", file.display())]
    UnknownBasin {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The offending basin.
        basin: BasinId,
    },
    /// A basin snowpack row that cannot be used.
    #[error("{} line {line}: {reason}", file.display())]
    InvalidSnowpack {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A basin's gauge weights do not sum to 1.
    #[error("{}: weight of basin_id `{basin}` sums to {sum}, not 1", file.display())]
    WeightSum {
        /// The file.
        file: PathBuf,
        /// The basin.
        basin: BasinId,
        /// The actual sum.
        sum: f64,
    },
    /// A basin has no critical rainfall for a soil state.
    #[error("{}: basin_id `{basin}` has no rows with soil_state `{soil}`", file.display())]
    MissingSoilState {
        /// The file.
        file: PathBuf,
        /// The basin.
        basin: BasinId,
        /// The missing soil state.
        soil: SoilState,
    },
    /// A prepare threshold that is not below the immediate threshold.
    #[error(
        "{} line {line}: prepare_mm {prepare_mm} is not below immediate_mm {immediate_mm}",
        file.display()
    )]
    PrepareNotBelowImmediate {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The prepare threshold.
        prepare_mm: f64,
        /// The immediate threshold.
        immediate_mm: f64,
    },
    /// Stage thresholds that do not increase from base to prepare to immediate.
    #[error(
        "{} line {line}: base_stage_m {base}, prepare_stage_m {prepare}, immediate_stage_m {immediate} do not increase",
        file.display()
    )]
    StageNotIncreasing {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The base stage.
        base: f64,
        /// The prepare stage.
        prepare: f64,
        /// The immediate stage.
        immediate: f64,
    },
    /// A slope id that is not in [`SLOPES_FILE`].
    #[error("{} line {line}: slope_id `{slope}` is not in {SLOPES_FILE}", file.display())]
    UnknownSlope {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The offending slope.
        slope: SlopeId,
    },
    /// A field whose value is outside what it may hold (a sensor kind, an angle, a speed).
    #[error("{} line {line}: field {field}: `{value}` is not {expected}", file.display())]
    InvalidField {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The field.
        field: &'static str,
        /// The offending value, as written.
        value: String,
        /// What the field must hold.
        expected: &'static str,
    },
    /// A polygon that is not a closed ring of at least four numeric `lon lat` positions.
    #[error("{} line {line}: field {field}: {reason}", file.display())]
    InvalidPolygon {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The field holding the polygon.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Deserialize)]
struct AdminRow {
    code: String,
    name: String,
    level: AdminLevel,
    parent_code: Option<String>,
    lon: Option<f64>,
    lat: Option<f64>,
}

#[derive(Deserialize)]
struct StationRow {
    station_id: String,
    kind: String,
    lon: f64,
    lat: f64,
    county_code: String,
    report_interval_s: u32,
}

/// Optional file of the basins that are debris-flow gullies.
pub const GULLIES_FILE: &str = "debris_flow_gullies.csv";

#[derive(Deserialize)]
struct GullyRow {
    basin_id: String,
    #[serde(default)]
    curve: Option<String>,
}

/// Optional file of the forest and grassland fire zones.
pub const FIRE_ZONES_FILE: &str = "fire_zones.csv";

#[derive(Deserialize)]
struct FireZoneRow {
    zone_id: String,
    name: String,
    fuel: FuelKind,
    county_code: String,
    polygon: String,
}

/// Optional file of the monitored landslide slopes.
pub const SLOPES_FILE: &str = "slopes.csv";

#[derive(Deserialize)]
struct SlopeRow {
    slope_id: String,
    name: String,
    county_code: String,
    basin_id: String,
    lon: f64,
    lat: f64,
    v0_mm_per_day: f64,
}

/// Optional file of the slopes' deformation points; read only with [`SLOPES_FILE`].
pub const SLOPE_POINTS_FILE: &str = "slope_points.csv";

#[derive(Deserialize)]
struct SlopePointRow {
    point_id: String,
    slope_id: String,
    sensor: String,
    azimuth_deg: f64,
}

#[derive(Deserialize)]
struct BasinRow {
    basin_id: String,
    name: String,
    county_code: String,
    lon: f64,
    lat: f64,
    area_km2: f64,
    wm_mm: f64,
    townships: String,
}

#[derive(Deserialize)]
struct GaugeRow {
    basin_id: String,
    station_id: String,
    weight: f64,
}

#[derive(Deserialize)]
struct RainThresholdRow {
    basin_id: String,
    duration_h: u32,
    soil_state: SoilState,
    prepare_mm: f64,
    immediate_mm: f64,
}

#[derive(Deserialize)]
struct StageRow {
    station_id: String,
    basin_id: String,
    base_stage_m: f64,
    prepare_stage_m: f64,
    immediate_stage_m: f64,
}

/// Reads `dir/name` into rows paired with their 1-based line numbers.
fn read_rows<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, Vec<(u64, T)>), RegionError> {
    let file = dir.join(name);
    let reader = std::fs::File::open(&file).map_err(|source| RegionError::Io {
        file: file.clone(),
        source,
    })?;
    let csv_error = |source| RegionError::Csv {
        file: file.clone(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = reader.headers().map_err(csv_error)?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        rows.push((line, record.deserialize(Some(&headers)).map_err(csv_error)?));
    }
    Ok((file, rows))
}

/// Loads an admin-units file (`code,name,level,parent_code,lon,lat`, the format of
/// `admin_units.csv` and of `shared/data/xinjiang-admin-divisions.csv`) into units by code.
///
/// # Errors
/// Returns a [`RegionError`] naming the file and line for an unreadable or malformed file or a
/// duplicate code.
pub fn load_admin_units(file: &Path) -> Result<BTreeMap<AreaCode, AdminUnit>, RegionError> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let name = file
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let (file, rows) = read_rows::<AdminRow>(dir, &name)?;
    let mut admin_units = BTreeMap::new();
    for (line, row) in rows {
        let code = AreaCode::new(&row.code);
        let unit = AdminUnit {
            code: code.clone(),
            name: row.name,
            level: row.level,
            parent: row.parent_code.map(AreaCode::new),
            lon: row.lon,
            lat: row.lat,
        };
        if admin_units.insert(code, unit).is_some() {
            return Err(duplicate(&file, line, "code", row.code));
        }
    }
    Ok(admin_units)
}

/// Checks that `code` names an admin unit of `level`.
fn area_of_level(
    admin_units: &BTreeMap<AreaCode, AdminUnit>,
    code: &str,
    level: AdminLevel,
    (file, line, field): (&Path, u64, &'static str),
) -> Result<AreaCode, RegionError> {
    let code = AreaCode::new(code);
    match admin_units.get(&code) {
        Some(unit) if unit.level == level => Ok(code),
        _ => Err(RegionError::UnknownArea {
            file: file.to_path_buf(),
            line,
            field,
            code: code.as_str().to_owned(),
            level,
        }),
    }
}

/// Looks up a station and checks its kind.
fn station_of_kind(
    stations: &BTreeMap<StationId, Station>,
    id: &str,
    expected: StationKind,
    (file, line): (&Path, u64),
) -> Result<StationId, RegionError> {
    let station = StationId::new(id);
    match stations.get(&station).map(|s| s.kind) {
        Some(found) if found == expected => Ok(station),
        Some(found) => Err(RegionError::WrongStationKind {
            file: file.to_path_buf(),
            line,
            station,
            expected,
            found,
        }),
        None => Err(RegionError::UnknownStation {
            file: file.to_path_buf(),
            line,
            station,
        }),
    }
}

/// Looks up a basin for update.
fn basin_mut<'a>(
    basins: &'a mut BTreeMap<BasinId, Basin>,
    id: &str,
    (file, line): (&Path, u64),
) -> Result<&'a mut Basin, RegionError> {
    let basin = BasinId::new(id);
    match basins.get_mut(&basin) {
        Some(found) => Ok(found),
        None => Err(RegionError::UnknownBasin {
            file: file.to_path_buf(),
            line,
            basin,
        }),
    }
}

/// Parses one closed ring written `lon lat;lon lat;...`.
fn parse_ring(
    text: &str,
    (file, line, field): (&Path, u64, &'static str),
) -> Result<Ring, RegionError> {
    let invalid = |reason: String| RegionError::InvalidPolygon {
        file: file.to_path_buf(),
        line,
        field,
        reason,
    };
    let ring = text
        .split(';')
        .map(str::trim)
        .filter(|position| !position.is_empty())
        .map(|position| {
            let mut numbers = position.split_whitespace().map(str::parse::<f64>);
            match (numbers.next(), numbers.next(), numbers.next()) {
                (Some(Ok(lon)), Some(Ok(lat)), None) if lon.is_finite() && lat.is_finite() => {
                    Ok((lon, lat))
                }
                _ => Err(invalid(format!("position `{position}` is not `lon lat`"))),
            }
        })
        .collect::<Result<Ring, _>>()?;
    if ring.len() < 4 {
        return Err(invalid(format!(
            "{} positions, a closed ring needs at least 4",
            ring.len()
        )));
    }
    if ring.first() != ring.last() {
        return Err(invalid(
            "ring is not closed (first position not repeated last)".into(),
        ));
    }
    Ok(ring)
}

/// Reads the optional gully file; empty when `dir` has none.
fn load_gullies(
    dir: &Path,
    basins: &BTreeMap<BasinId, Basin>,
) -> Result<BTreeMap<BasinId, GullyProfile>, RegionError> {
    let mut gullies = BTreeMap::new();
    if !dir.join(GULLIES_FILE).exists() {
        return Ok(gullies);
    }
    let (file, rows) = read_rows::<GullyRow>(dir, GULLIES_FILE)?;
    for (line, row) in rows {
        let basin = BasinId::new(&row.basin_id);
        if !basins.contains_key(&basin) {
            return Err(RegionError::UnknownBasin { file, line, basin });
        }
        let profile = GullyProfile {
            basin: basin.clone(),
            curve: row.curve.filter(|name| !name.trim().is_empty()),
            ir_curve: None,
            burn_scar: None,
        };
        if gullies.insert(basin, profile).is_some() {
            return Err(duplicate(&file, line, "basin_id", row.basin_id));
        }
    }
    Ok(gullies)
}

/// Reads the optional fire-zone file; empty when `dir` has none.
fn load_fire_zones(
    dir: &Path,
    admin_units: &BTreeMap<AreaCode, AdminUnit>,
) -> Result<Vec<FireZoneSite>, RegionError> {
    if !dir.join(FIRE_ZONES_FILE).exists() {
        return Ok(Vec::new());
    }
    let (file, rows) = read_rows::<FireZoneRow>(dir, FIRE_ZONES_FILE)?;
    let mut sites: Vec<FireZoneSite> = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        let at = (file.as_path(), line, "county_code");
        let county = area_of_level(admin_units, &row.county_code, AdminLevel::County, at)?;
        let ring = parse_ring(&row.polygon, (file.as_path(), line, "polygon"))?;
        let id = FireZoneId::new(&row.zone_id);
        if sites.iter().any(|site| site.zone.id == id) {
            return Err(duplicate(&file, line, "zone_id", row.zone_id));
        }
        sites.push(FireZoneSite {
            zone: FireZone::new(id, row.fuel, vec![vec![ring]]),
            name: row.name,
            county,
        });
    }
    Ok(sites)
}

/// Parses a sensor name of the region files (`gnss`, `crack_meter`, `insar`).
fn parse_sensor(name: &str) -> Option<SensorKind> {
    match name {
        "gnss" => Some(SensorKind::Gnss),
        "crack_meter" => Some(SensorKind::CrackMeter),
        "insar" => Some(SensorKind::Insar),
        _ => None,
    }
}

/// Reads the optional slope files; empty when `dir` has no [`SLOPES_FILE`]. A point id may not
/// repeat, nor be the id of a station, since observations name the point by its station id.
fn load_slopes(
    dir: &Path,
    admin_units: &BTreeMap<AreaCode, AdminUnit>,
    basins: &BTreeMap<BasinId, Basin>,
    stations: &BTreeMap<StationId, Station>,
) -> Result<Vec<MonitoredSlope>, RegionError> {
    if !dir.join(SLOPES_FILE).exists() {
        return Ok(Vec::new());
    }
    let invalid = |file: &Path, line, field, value: String, expected| RegionError::InvalidField {
        file: file.to_path_buf(),
        line,
        field,
        value,
        expected,
    };
    let (file, rows) = read_rows::<SlopeRow>(dir, SLOPES_FILE)?;
    let mut slopes: Vec<MonitoredSlope> = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        let at = (file.as_path(), line, "county_code");
        let county = area_of_level(admin_units, &row.county_code, AdminLevel::County, at)?;
        let basin_id = BasinId::new(&row.basin_id);
        let Some(basin) = basins.get(&basin_id) else {
            return Err(RegionError::UnknownBasin {
                file,
                line,
                basin: basin_id,
            });
        };
        if !(row.v0_mm_per_day > 0.0 && row.v0_mm_per_day.is_finite()) {
            let value = row.v0_mm_per_day.to_string();
            return Err(invalid(
                &file,
                line,
                "v0_mm_per_day",
                value,
                "a positive speed",
            ));
        }
        let id = SlopeId::new(&row.slope_id);
        if slopes.iter().any(|slope| slope.id == id) {
            return Err(duplicate(&file, line, "slope_id", row.slope_id));
        }
        let townships = if basin.county == county {
            basin.townships.clone()
        } else {
            Vec::new()
        };
        slopes.push(MonitoredSlope {
            id,
            name: row.name,
            county,
            basin: basin_id,
            townships,
            lon: row.lon,
            lat: row.lat,
            v0_mm_per_day: row.v0_mm_per_day,
            points: Vec::new(),
        });
    }
    if !dir.join(SLOPE_POINTS_FILE).exists() {
        return Ok(slopes);
    }
    let (file, rows) = read_rows::<SlopePointRow>(dir, SLOPE_POINTS_FILE)?;
    for (line, row) in rows {
        let sensor = parse_sensor(&row.sensor).ok_or_else(|| {
            invalid(
                &file,
                line,
                "sensor",
                row.sensor.clone(),
                "gnss, crack_meter or insar",
            )
        })?;
        if !(0.0..360.0).contains(&row.azimuth_deg) {
            let value = row.azimuth_deg.to_string();
            return Err(invalid(
                &file,
                line,
                "azimuth_deg",
                value,
                "an angle in [0, 360)",
            ));
        }
        let id = StationId::new(&row.point_id);
        let taken = stations.contains_key(&id)
            || slopes
                .iter()
                .any(|slope| slope.points.iter().any(|point| point.id == id));
        if taken {
            return Err(duplicate(&file, line, "point_id", row.point_id));
        }
        let slope_id = SlopeId::new(&row.slope_id);
        let Some(slope) = slopes.iter_mut().find(|slope| slope.id == slope_id) else {
            return Err(RegionError::UnknownSlope {
                file,
                line,
                slope: slope_id,
            });
        };
        slope.points.push(SlopePoint {
            id,
            sensor,
            azimuth_deg: row.azimuth_deg,
        });
    }
    Ok(slopes)
}

fn duplicate(file: &Path, line: u64, field: &'static str, id: impl fmt::Display) -> RegionError {
    RegionError::DuplicateId {
        file: file.to_path_buf(),
        line,
        field,
        id: id.to_string(),
    }
}

impl Region {
    /// Loads and validates the region folder `dir`; the region is named after the folder.
    /// Basin snowpacks take their snow stations within the default
    /// `station-max-distance-km` of [`SnowmeltConfig`] (see [`Region::load_with_snowmelt`]).
    ///
    /// # Errors
    ///
    /// Returns a [`RegionError`] naming the file, line and field for an unreadable or malformed
    /// file, an unknown station kind, a duplicate id, a reference to an unknown county, township,
    /// station or basin, a basin gauge that is not a rain gauge, gauge weights not summing to
    /// 1 ± 0.01, a basin without thresholds for some soil state, a prepare threshold not below
    /// the immediate one, stage thresholds that do not increase, a fire-zone polygon that is
    /// not a closed ring of at least four numeric positions, or a slope or slope point naming
    /// an unknown county, basin or slope, repeating an id, or holding a bad sensor, azimuth or
    /// v0.
    pub fn load(dir: &Path) -> Result<Region, RegionError> {
        Self::load_with_snowmelt(dir, &SnowmeltConfig::default())
    }

    /// The body of [`Region::load`], with the snow-station distance of snowpacks in km.
    fn load_with_snow_station_distance(
        dir: &Path,
        snow_station_max_km: f64,
    ) -> Result<Region, RegionError> {
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );

        let admin_units = load_admin_units(&dir.join("admin_units.csv"))?;

        let (file, rows) = read_rows::<StationRow>(dir, "stations.csv")?;
        let mut stations = BTreeMap::new();
        for (line, row) in rows {
            let kind =
                StationKind::parse(&row.kind).ok_or_else(|| RegionError::UnknownStationKind {
                    file: file.clone(),
                    line,
                    value: row.kind.clone(),
                })?;
            let at = (file.as_path(), line, "county_code");
            let county = area_of_level(&admin_units, &row.county_code, AdminLevel::County, at)?;
            let id = StationId::new(&row.station_id);
            let station = Station {
                id: id.clone(),
                kind,
                lon: row.lon,
                lat: row.lat,
                county,
                report_interval_s: row.report_interval_s,
            };
            if stations.insert(id, station).is_some() {
                return Err(duplicate(&file, line, "station_id", row.station_id));
            }
        }

        let (file, rows) = read_rows::<BasinRow>(dir, "basins.csv")?;
        let mut basins = BTreeMap::new();
        for (line, row) in rows {
            let at = (file.as_path(), line, "county_code");
            let county = area_of_level(&admin_units, &row.county_code, AdminLevel::County, at)?;
            let townships = row
                .townships
                .split(';')
                .map(str::trim)
                .filter(|code| !code.is_empty())
                .map(|code| {
                    let at = (file.as_path(), line, "townships");
                    area_of_level(&admin_units, code, AdminLevel::Township, at)
                })
                .collect::<Result<_, _>>()?;
            let id = BasinId::new(&row.basin_id);
            let basin = Basin {
                id: id.clone(),
                name: row.name,
                county,
                townships,
                lon: row.lon,
                lat: row.lat,
                area_km2: row.area_km2,
                wm_mm: row.wm_mm,
                gauges: Vec::new(),
                rain_thresholds: BTreeMap::new(),
                stage_thresholds: Vec::new(),
            };
            if basins.insert(id, basin).is_some() {
                return Err(duplicate(&file, line, "basin_id", row.basin_id));
            }
        }

        let (file, rows) = read_rows::<GaugeRow>(dir, "basin_gauges.csv")?;
        for (line, row) in rows {
            let at = (file.as_path(), line);
            let station = station_of_kind(&stations, &row.station_id, StationKind::Rain, at)?;
            let basin = basin_mut(&mut basins, &row.basin_id, at)?;
            if basin.gauges.iter().any(|(known, _)| *known == station) {
                let key = format!("{}/{}", row.basin_id, row.station_id);
                return Err(duplicate(&file, line, "basin_id/station_id", key));
            }
            basin.gauges.push((station, row.weight));
        }
        for basin in basins.values() {
            let sum: f64 = basin.gauges.iter().map(|(_, weight)| weight).sum();
            if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
                return Err(RegionError::WeightSum {
                    file,
                    basin: basin.id.clone(),
                    sum,
                });
            }
        }

        let (file, rows) = read_rows::<RainThresholdRow>(dir, "basin_thresholds.csv")?;
        for (line, row) in rows {
            if row.prepare_mm >= row.immediate_mm {
                return Err(RegionError::PrepareNotBelowImmediate {
                    file,
                    line,
                    prepare_mm: row.prepare_mm,
                    immediate_mm: row.immediate_mm,
                });
            }
            let basin = basin_mut(&mut basins, &row.basin_id, (&file, line))?;
            let thresholds = basin.rain_thresholds.entry(row.soil_state).or_default();
            if thresholds.iter().any(|t| t.duration_h == row.duration_h) {
                let key = format!("{}/{}/{}", row.basin_id, row.duration_h, row.soil_state);
                return Err(duplicate(
                    &file,
                    line,
                    "basin_id/duration_h/soil_state",
                    key,
                ));
            }
            thresholds.push(RainThreshold {
                duration_h: row.duration_h,
                prepare_mm: row.prepare_mm,
                immediate_mm: row.immediate_mm,
            });
        }
        for basin in basins.values_mut() {
            for soil in SoilState::ALL {
                let Some(thresholds) = basin.rain_thresholds.get_mut(&soil) else {
                    return Err(RegionError::MissingSoilState {
                        file,
                        basin: basin.id.clone(),
                        soil,
                    });
                };
                thresholds.sort_by_key(|t| t.duration_h);
            }
        }

        let (file, rows) = read_rows::<StageRow>(dir, "water_level_thresholds.csv")?;
        for (line, row) in rows {
            let (base, prepare, immediate) =
                (row.base_stage_m, row.prepare_stage_m, row.immediate_stage_m);
            if !(base < prepare && prepare < immediate) {
                return Err(RegionError::StageNotIncreasing {
                    file,
                    line,
                    base,
                    prepare,
                    immediate,
                });
            }
            let at = (file.as_path(), line);
            let station = station_of_kind(&stations, &row.station_id, StationKind::WaterLevel, at)?;
            let basin = basin_mut(&mut basins, &row.basin_id, at)?;
            if basin.stage_thresholds.iter().any(|s| s.station == station) {
                let key = format!("{}/{}", row.station_id, row.basin_id);
                return Err(duplicate(&file, line, "station_id/basin_id", key));
            }
            basin.stage_thresholds.push(StageThreshold {
                station,
                base_stage_m: base,
                prepare_stage_m: prepare,
                immediate_stage_m: immediate,
            });
        }

        let basin_snowpacks = load_basin_snowpacks(dir, &basins, &stations, snow_station_max_km)?;

        let mut basins_by_station: BTreeMap<StationId, Vec<BasinId>> = BTreeMap::new();
        for basin in basins.values() {
            for station in basin.member_stations() {
                basins_by_station
                    .entry(station.clone())
                    .or_default()
                    .push(basin.id.clone());
            }
        }
        // A basin with a snowpack is also fed by its snow station's temperature.
        for site in basin_snowpacks.values() {
            let fed = basins_by_station.entry(site.station.clone()).or_default();
            if !fed.contains(&site.basin) {
                fed.push(site.basin.clone());
                fed.sort();
            }
        }

        let gullies = load_gullies(dir, &basins)?;
        let fire_zones = load_fire_zones(dir, &admin_units)?;
        let slopes = load_slopes(dir, &admin_units, &basins, &stations)?;
        let areas = AreaShapes::coarse_from_centroids(&admin_units);
        Ok(Region {
            gullies,
            fire_zones,
            slopes,
            name,
            admin_units,
            stations,
            basins,
            basins_by_station,
            areas,
            basin_snowpacks,
        })
    }

    /// Returns a region of rain gauges only (no admin units, no basins, no coordinates), for
    /// replaying a benchmark file through the station actors. The county code is `000000`.
    pub fn rain_gauges_only(
        name: &str,
        ids: impl IntoIterator<Item = StationId>,
        report_interval_s: u32,
    ) -> Region {
        let stations = ids
            .into_iter()
            .map(|id| {
                let station = Station {
                    id: id.clone(),
                    kind: StationKind::Rain,
                    lon: 0.0,
                    lat: 0.0,
                    county: AreaCode::new("000000"),
                    report_interval_s,
                };
                (id, station)
            })
            .collect();
        Region {
            name: name.to_owned(),
            admin_units: BTreeMap::new(),
            stations,
            basins: BTreeMap::new(),
            basins_by_station: BTreeMap::new(),
            gullies: BTreeMap::new(),
            fire_zones: Vec::new(),
            slopes: Vec::new(),
            areas: AreaShapes::Coarse(Vec::new()),
            basin_snowpacks: BTreeMap::new(),
        }
    }

    /// Returns the basins `station` feeds (as a gauge, a stage station or the snow station of the
    /// basin's snowpack), in basin-id order; empty if none.
    pub fn basins_of_station(&self, station: &StationId) -> &[BasinId] {
        self.basins_by_station
            .get(station)
            .map_or(&[], Vec::as_slice)
    }

    /// Returns the name of the administrative unit `code`, if known.
    pub fn area_name(&self, code: &AreaCode) -> Option<&str> {
        self.admin_units.get(code).map(|unit| unit.name.as_str())
    }

    /// Returns the prefecture-level unit holding `code` (itself if it is one), walking up the
    /// parents; `None` for the region itself and for codes not in the admin units.
    pub fn prefecture_of(&self, code: &AreaCode) -> Option<AreaCode> {
        let mut unit = self.admin_units.get(code)?;
        // The tree is a few levels deep; the bound only guards against a cycle in the file.
        for _ in 0..self.admin_units.len() {
            match unit.level {
                AdminLevel::Prefecture => return Some(unit.code.clone()),
                AdminLevel::Region => return None,
                AdminLevel::County | AdminLevel::Township => {
                    unit = self.admin_units.get(unit.parent.as_ref()?)?;
                }
            }
        }
        None
    }

    /// Returns the areas a warning for `target` (a basin, a monitored slope or a fire zone)
    /// reaches: the county first, then the townships; `None` for an unknown target.
    pub fn target_area_codes(&self, target: &str) -> Option<Vec<AreaCode>> {
        if let Some(basin) = self.basins.get(&BasinId::new(target)) {
            return Some(basin.area_codes());
        }
        if let Some(slope) = self.slopes.iter().find(|slope| slope.id.as_str() == target) {
            return Some(slope.area_codes());
        }
        self.fire_zones
            .iter()
            .find(|site| site.zone.id.as_str() == target)
            .map(|site| vec![site.county.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xinjiang() -> Region {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
        Region::load(Path::new(dir)).expect("the committed xinjiang region loads")
    }

    #[test]
    fn prefectures_of_townships_counties_and_targets() {
        let region = xinjiang();
        let code = AreaCode::new;
        // 燕儿窝街道 → 天山区 (650102) → 乌鲁木齐市 (650100).
        assert_eq!(
            region.prefecture_of(&code("650102002")),
            Some(code("650100"))
        );
        assert_eq!(region.prefecture_of(&code("650102")), Some(code("650100")));
        assert_eq!(region.prefecture_of(&code("650100")), Some(code("650100")));
        // 石河子市 sits under the 自治区直辖 prefecture-level entry.
        assert_eq!(region.prefecture_of(&code("659001")), Some(code("659000")));
        assert_eq!(region.prefecture_of(&code("650000")), None);
        assert_eq!(region.prefecture_of(&code("999999")), None);
        let basin = region.basins.values().next().expect("a basin");
        assert_eq!(
            region.target_area_codes(basin.id.as_str()),
            Some(basin.area_codes())
        );
        assert_eq!(region.target_area_codes("NO-SUCH-TARGET"), None);
    }

    #[test]
    fn xinjiang_counts_and_names() {
        let region = xinjiang();
        assert_eq!(region.name, "xinjiang");
        assert_eq!(region.admin_units.len(), 1529);
        assert_eq!(region.basins.len(), 326);
        let count = |kind| region.stations.values().filter(|s| s.kind == kind).count();
        assert_eq!(count(StationKind::Rain), 2600);
        assert_eq!(count(StationKind::WaterLevel), 90);
        assert_eq!(count(StationKind::Weather), 500);
        assert_eq!(region.area_name(&AreaCode::new("654025")), Some("新源县"));
        assert_eq!(region.area_name(&AreaCode::new("000000")), None);
    }

    #[test]
    fn xinjiang_basins_are_consistent() {
        let region = xinjiang();
        for basin in region.basins.values() {
            let sum: f64 = basin.gauges.iter().map(|(_, w)| w).sum();
            assert!((sum - 1.0).abs() < 1e-9, "{} sums to {sum}", basin.id);
            assert!(basin.gauges.len() >= 2, "{}", basin.id);
            assert_eq!(basin.area_codes()[0], basin.county);
            for thresholds in basin.rain_thresholds.values() {
                let durations: Vec<u32> = thresholds.iter().map(|t| t.duration_h).collect();
                assert_eq!(durations, [1, 3, 6], "{}", basin.id);
            }
            for station in basin.member_stations() {
                assert!(region.basins_of_station(station).contains(&basin.id));
            }
        }
        // Every water-level station is attached to exactly one basin.
        let attached = region
            .stations
            .values()
            .filter(|s| s.kind == StationKind::WaterLevel)
            .filter(|s| region.basins_of_station(&s.id).len() == 1)
            .count();
        assert_eq!(attached, 90);
        assert!(region
            .basins_of_station(&StationId::new("W0001"))
            .is_empty());
    }

    const ADMIN: &str = "code,name,level,parent_code,lon,lat\n\
        650000,新疆维吾尔自治区,region,,85.19,41.12\n\
        654000,伊犁哈萨克自治州,prefecture,650000,82.13,43.45\n\
        654025,新源县,county,654000,83.56,43.36\n\
        654025100,新源镇,township,654025,,\n";
    const STATIONS: &str = "station_id,kind,lon,lat,county_code,report_interval_s\n\
        R1,rain,83.5,43.3,654025,300\n\
        R2,rain,83.6,43.4,654025,300\n\
        H1,water_level,83.55,43.35,654025,300\n";
    const BASINS: &str = "basin_id,name,county_code,lon,lat,area_km2,wm_mm,townships\n\
        B1,新源县山洪小流域1,654025,83.55,43.35,50.0,80.0,654025100\n";
    const GAUGES: &str = "basin_id,station_id,weight\nB1,R1,0.6\nB1,R2,0.4\n";
    const THRESHOLDS: &str = "basin_id,duration_h,soil_state,prepare_mm,immediate_mm\n\
        B1,3,dry,30,40\nB1,1,dry,20,28\nB1,1,normal,18,25\nB1,1,wet,15,21\n";
    const STAGES: &str = "station_id,basin_id,base_stage_m,prepare_stage_m,immediate_stage_m\n\
        H1,B1,1.0,2.5,3.5\n";

    /// Writes the small valid region with `file` replaced by `contents` into a unique folder.
    fn region_with(test: &str, file: &str, contents: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tianshan-region-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp region folder");
        for (name, default) in [
            ("admin_units.csv", ADMIN),
            ("stations.csv", STATIONS),
            ("basins.csv", BASINS),
            ("basin_gauges.csv", GAUGES),
            ("basin_thresholds.csv", THRESHOLDS),
            ("water_level_thresholds.csv", STAGES),
        ] {
            let text = if name == file { contents } else { default };
            std::fs::write(dir.join(name), text).expect("write temp region file");
        }
        if file == FIRE_ZONES_FILE {
            std::fs::write(dir.join(file), contents).expect("write temp fire-zone file");
        }
        if file == SLOPES_FILE || file == SLOPE_POINTS_FILE {
            for (name, default) in [(SLOPES_FILE, SLOPES), (SLOPE_POINTS_FILE, SLOPE_POINTS)] {
                let text = if name == file { contents } else { default };
                std::fs::write(dir.join(name), text).expect("write temp slope file");
            }
        }
        dir
    }

    fn load_error(test: &str, file: &str, contents: &str) -> RegionError {
        let dir = region_with(test, file, contents);
        let result = Region::load(&dir);
        std::fs::remove_dir_all(&dir).expect("remove temp region folder");
        result.expect_err("the broken region must not load")
    }

    #[test]
    fn small_region_loads_with_index_and_sorted_thresholds() {
        let dir = region_with("valid", "", "");
        let region = Region::load(&dir).expect("valid region");
        std::fs::remove_dir_all(&dir).expect("remove temp region folder");
        let basin = &region.basins[&BasinId::new("B1")];
        assert_eq!(
            basin.area_codes(),
            [AreaCode::new("654025"), AreaCode::new("654025100")]
        );
        let members: Vec<&str> = basin.member_stations().map(StationId::as_str).collect();
        assert_eq!(members, ["R1", "R2", "H1"]);
        assert_eq!(
            region.basins_of_station(&StationId::new("H1")),
            [BasinId::new("B1")]
        );
        let dry: Vec<u32> = basin.rain_thresholds[&SoilState::Dry]
            .iter()
            .map(|t| t.duration_h)
            .collect();
        assert_eq!(dry, [1, 3]);
    }

    #[test]
    fn broken_regions_name_file_line_and_value() {
        let cases: [(&str, &str, String, &str); 9] = [
            ("kind", "stations.csv", STATIONS.replace("R2,rain", "R2,snow"), "line 3: unknown station kind `snow`"),
            ("dup", "stations.csv", STATIONS.replace("R2,rain", "R1,rain"), "line 3: duplicate station_id `R1`"),
            ("county", "stations.csv", STATIONS.replace("R2,rain,83.6,43.4,654025", "R2,rain,83.6,43.4,654099"), "line 3: county_code `654099` is not a county"),
            ("gauge-kind", "basin_gauges.csv", GAUGES.replace("B1,R2", "B1,H1"), "line 3: station_id `H1` is a water_level station, expected rain"),
            ("gauge-unknown", "basin_gauges.csv", GAUGES.replace("B1,R2", "B1,R9"), "line 3: station_id `R9` is not in stations.csv"),
            ("weights", "basin_gauges.csv", GAUGES.replace("0.4", "0.2"), "weight of basin_id `B1` sums to 0.8,"),
            ("soil", "basin_thresholds.csv", THRESHOLDS.replace("B1,1,wet,15,21\n", ""), "basin_id `B1` has no rows with soil_state `wet`"),
            ("prepare", "basin_thresholds.csv", THRESHOLDS.replace("18,25", "25,25"), "line 4: prepare_mm 25 is not below immediate_mm 25"),
            ("stage", "water_level_thresholds.csv", STAGES.replace("2.5,3.5", "2.5,2.4"), "line 2: base_stage_m 1, prepare_stage_m 2.5, immediate_stage_m 2.4 do not increase"),
        ];
        for (test, file, contents, expected) in cases {
            let message = load_error(test, file, &contents).to_string();
            assert!(message.contains(file), "{test}: {message}");
            assert!(message.contains(expected), "{test}: {message}");
        }
    }

    #[test]
    fn xinjiang_fire_zones_load() {
        let region = xinjiang();
        assert_eq!(region.fire_zones.len(), 16);
        let gongliu = region
            .fire_zones
            .iter()
            .find(|site| site.zone.id.as_str() == "FZ-GONGLIU-01")
            .expect("the scenario's lightning zone");
        assert_eq!(gongliu.county, AreaCode::new("654024"));
        assert_eq!(gongliu.zone.fuel, FuelKind::Forest);
        for site in &region.fire_zones {
            let ring = &site.zone.polygons[0][0];
            assert!(ring.len() >= 4, "{}", site.zone.id);
            assert_eq!(ring.first(), ring.last(), "{} is closed", site.zone.id);
            assert_eq!(
                region.admin_units[&site.county].level,
                AdminLevel::County,
                "{}",
                site.zone.id
            );
        }
        let grassland = region
            .fire_zones
            .iter()
            .filter(|site| site.zone.fuel == FuelKind::Grassland)
            .count();
        assert!((1..16).contains(&grassland), "{grassland} grassland zones");
    }

    const FIRE_ZONES: &str = "zone_id,name,fuel,county_code,polygon\n\
        FZ-1,新源林区,forest,654025,83.5 43.3;83.6 43.3;83.6 43.4;83.5 43.3\n";

    #[test]
    fn small_region_loads_fire_zones_and_goes_without() {
        let dir = region_with("zones", FIRE_ZONES_FILE, FIRE_ZONES);
        let region = Region::load(&dir).expect("valid region with fire zones");
        std::fs::remove_dir_all(&dir).expect("remove temp region folder");
        assert_eq!(region.fire_zones.len(), 1);
        let site = &region.fire_zones[0];
        assert_eq!(site.zone.id.as_str(), "FZ-1");
        assert_eq!(site.name, "新源林区");
        assert_eq!(site.county, AreaCode::new("654025"));
        assert!(site.zone.covers(83.58, 43.32, 0.0));
        assert!(!site.zone.covers(83.52, 43.38, 0.0));

        let dir = region_with("no-zones", "", "");
        let region = Region::load(&dir).expect("valid region without fire zones");
        std::fs::remove_dir_all(&dir).expect("remove temp region folder");
        assert!(region.fire_zones.is_empty());
    }

    #[test]
    fn broken_fire_zones_name_file_line_and_field() {
        let second = FIRE_ZONES.lines().nth(1).expect("one zone row");
        let cases: [(&str, String, &str); 6] = [
            (
                "zone-open",
                FIRE_ZONES.replace(";83.5 43.3\n", ";83.5 43.35\n"),
                "line 2: field polygon: ring is not closed",
            ),
            (
                "zone-short",
                FIRE_ZONES.replace("83.6 43.3;83.6 43.4;", ""),
                "line 2: field polygon: 2 positions, a closed ring needs at least 4",
            ),
            (
                "zone-text",
                FIRE_ZONES.replace("83.6 43.4", "83.6 north"),
                "line 2: field polygon: position `83.6 north` is not `lon lat`",
            ),
            (
                "zone-three",
                FIRE_ZONES.replace("83.6 43.4", "83.6 43.4 1200"),
                "line 2: field polygon: position `83.6 43.4 1200` is not `lon lat`",
            ),
            (
                "zone-county",
                FIRE_ZONES.replace("forest,654025", "forest,654099"),
                "line 2: county_code `654099` is not a county",
            ),
            (
                "zone-dup",
                format!("{FIRE_ZONES}{second}\n"),
                "line 3: duplicate zone_id `FZ-1`",
            ),
        ];
        for (test, contents, expected) in cases {
            let message = load_error(test, FIRE_ZONES_FILE, &contents).to_string();
            assert!(message.contains(FIRE_ZONES_FILE), "{test}: {message}");
            assert!(message.contains(expected), "{test}: {message}");
        }
        let message = load_error(
            "zone-fuel",
            FIRE_ZONES_FILE,
            &FIRE_ZONES.replace("forest", "tundra"),
        )
        .to_string();
        assert!(
            message.contains(FIRE_ZONES_FILE) && message.contains("line: 2"),
            "{message}"
        );
    }

    #[test]
    fn xinjiang_slopes_load() {
        let region = xinjiang();
        assert_eq!(region.slopes.len(), 6);
        let nilka = region
            .slopes
            .iter()
            .find(|slope| slope.id.as_str() == "SL-NILKA-01")
            .expect("the scenario's accelerating slope");
        assert_eq!(nilka.basin, BasinId::new("B0009"));
        assert_eq!(nilka.area_codes()[0], AreaCode::new("654028"));
        assert_eq!(
            nilka.area_codes()[1..],
            region.basins[&nilka.basin].townships
        );
        for slope in &region.slopes {
            assert!((2..=3).contains(&slope.points.len()), "{}", slope.id);
            assert!(slope.points.iter().any(|p| p.sensor == SensorKind::Gnss));
            assert_eq!(region.admin_units[&slope.county].level, AdminLevel::County);
        }
    }

    const SLOPES: &str = "slope_id,name,county_code,basin_id,lon,lat,v0_mm_per_day\n\
        SL-1,新源县监测滑坡1,654025,B1,83.55,43.36,1.5\n";
    const SLOPE_POINTS: &str = "point_id,slope_id,sensor,azimuth_deg\n\
        SL-1-G1,SL-1,gnss,200\nSL-1-C1,SL-1,crack_meter,205.5\n";

    #[test]
    fn small_region_loads_slopes_with_their_points() {
        let dir = region_with("slopes", SLOPES_FILE, SLOPES);
        let region = Region::load(&dir).expect("valid region with slopes");
        std::fs::remove_dir_all(&dir).expect("remove temp region folder");
        assert_eq!(region.slopes.len(), 1);
        let slope = &region.slopes[0];
        assert_eq!(slope.id.as_str(), "SL-1");
        assert_eq!(slope.v0_mm_per_day, 1.5);
        assert_eq!(
            slope.area_codes(),
            [AreaCode::new("654025"), AreaCode::new("654025100")]
        );
        let points: Vec<(&str, SensorKind, f64)> = slope
            .points
            .iter()
            .map(|p| (p.id.as_str(), p.sensor, p.azimuth_deg))
            .collect();
        assert_eq!(
            points,
            [
                ("SL-1-G1", SensorKind::Gnss, 200.0),
                ("SL-1-C1", SensorKind::CrackMeter, 205.5)
            ]
        );
    }

    #[test]
    fn broken_slopes_name_file_line_and_field() {
        let cases: [(&str, &str, String, &str); 9] = [
            (
                "slope-county",
                SLOPES_FILE,
                SLOPES.replace("654025,B1", "654099,B1"),
                "line 2: county_code `654099` is not a county",
            ),
            (
                "slope-basin",
                SLOPES_FILE,
                SLOPES.replace(",B1,", ",B9,"),
                "line 2: basin_id `B9` is not in basins.csv",
            ),
            (
                "slope-v0",
                SLOPES_FILE,
                SLOPES.replace(",1.5", ",0"),
                "line 2: field v0_mm_per_day: `0` is not a positive speed",
            ),
            (
                "slope-dup",
                SLOPES_FILE,
                format!("{SLOPES}{}\n", SLOPES.lines().nth(1).expect("a row")),
                "line 3: duplicate slope_id `SL-1`",
            ),
            (
                "point-slope",
                SLOPE_POINTS_FILE,
                SLOPE_POINTS.replace("SL-1-C1,SL-1", "SL-1-C1,SL-2"),
                "line 3: slope_id `SL-2` is not in slopes.csv",
            ),
            (
                "point-sensor",
                SLOPE_POINTS_FILE,
                SLOPE_POINTS.replace("crack_meter", "tiltmeter"),
                "line 3: field sensor: `tiltmeter` is not gnss, crack_meter or insar",
            ),
            (
                "point-azimuth",
                SLOPE_POINTS_FILE,
                SLOPE_POINTS.replace(",200", ",360"),
                "line 2: field azimuth_deg: `360` is not an angle in [0, 360)",
            ),
            (
                "point-dup",
                SLOPE_POINTS_FILE,
                SLOPE_POINTS.replace("SL-1-C1", "SL-1-G1"),
                "line 3: duplicate point_id `SL-1-G1`",
            ),
            (
                "point-station",
                SLOPE_POINTS_FILE,
                SLOPE_POINTS.replace("SL-1-C1", "R1"),
                "line 3: duplicate point_id `R1`",
            ),
        ];
        for (test, file, contents, expected) in cases {
            let message = load_error(test, file, &contents).to_string();
            assert!(message.contains(file), "{test}: {message}");
            assert!(message.contains(expected), "{test}: {message}");
        }
    }

    #[test]
    fn malformed_number_names_file_and_line() {
        let message =
            load_error("number", "basins.csv", &BASINS.replace("50.0", "fifty")).to_string();
        assert!(
            message.contains("basins.csv") && message.contains("line: 2"),
            "{message}"
        );
    }
}
