//! Basin snowpacks of a region (optional file [`BASIN_SNOWPACKS_FILE`]): the mountain range, the
//! starting snow water equivalent and the weather station whose temperature drives each pack,
//! given in the file or chosen at load as the weather station nearest to the basin centre.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{
    duplicate, read_rows, station_of_kind, Basin, Region, RegionError, Station, StationKind,
};
use crate::ids::{BasinId, StationId};
use crate::lightning_fire::distance_km;
use crate::snowmelt::{MountainRange, SnowmeltConfig};

/// Optional file of the basins that hold a seasonal snowpack.
pub const BASIN_SNOWPACKS_FILE: &str = "basin_snowpacks.csv";

/// The snowpack of one basin as the region file gives it, with its snow station resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SnowpackSite {
    /// The basin.
    pub basin: BasinId,
    /// The mountain range, which picks the degree-day factor.
    pub range: MountainRange,
    /// Basin-average snow water equivalent at start, mm.
    pub swe_mm: f64,
    /// The weather station whose temperature drives the pack.
    pub station: StationId,
    /// Distance from the basin centre to that station, km.
    pub station_km: f64,
}

#[derive(Deserialize)]
struct SnowpackRow {
    basin_id: String,
    mountain_range: MountainRange,
    swe_mm: f64,
    #[serde(default)]
    weather_station_id: Option<String>,
}

/// Returns the station of `kind` nearest to `(lon, lat)` within `max_km`, with its distance;
/// ties go to the lower station id.
pub fn nearest_station(
    stations: &BTreeMap<StationId, Station>,
    kind: StationKind,
    (lon, lat): (f64, f64),
    max_km: f64,
) -> Option<(StationId, f64)> {
    stations
        .values()
        .filter(|station| station.kind == kind)
        .map(|station| (station, distance_km((lon, lat), (station.lon, station.lat))))
        .filter(|&(_, km)| km <= max_km)
        .fold(
            None,
            |best: Option<(&Station, f64)>, (station, km)| match best {
                Some((_, best_km)) if best_km <= km => best,
                _ => Some((station, km)),
            },
        )
        .map(|(station, km)| (station.id.clone(), km))
}

/// Reads the optional snowpack file; empty when `dir` has none. A row without
/// `weather_station_id` takes the weather station nearest to the basin centre within `max_km`.
pub(super) fn load_basin_snowpacks(
    dir: &Path,
    basins: &BTreeMap<BasinId, Basin>,
    stations: &BTreeMap<StationId, Station>,
    max_km: f64,
) -> Result<BTreeMap<BasinId, SnowpackSite>, RegionError> {
    let mut sites = BTreeMap::new();
    if !dir.join(BASIN_SNOWPACKS_FILE).exists() {
        return Ok(sites);
    }
    let (file, rows) = read_rows::<SnowpackRow>(dir, BASIN_SNOWPACKS_FILE)?;
    for (line, row) in rows {
        let id = BasinId::new(&row.basin_id);
        let Some(basin) = basins.get(&id) else {
            return Err(RegionError::UnknownBasin {
                file,
                line,
                basin: id,
            });
        };
        if !(row.swe_mm.is_finite() && row.swe_mm >= 0.0) {
            let reason = format!("swe_mm {} is not a non-negative number", row.swe_mm);
            return Err(RegionError::InvalidSnowpack { file, line, reason });
        }
        let centre = (basin.lon, basin.lat);
        let given = row
            .weather_station_id
            .as_deref()
            .filter(|text| !text.is_empty());
        let (station, station_km) = match given {
            Some(text) => {
                let at = (file.as_path(), line);
                let station = station_of_kind(stations, text, StationKind::Weather, at)?;
                let place = &stations[&station];
                let km = distance_km(centre, (place.lon, place.lat));
                (station, km)
            }
            None => nearest_station(stations, StationKind::Weather, centre, max_km).ok_or_else(
                || RegionError::InvalidSnowpack {
                    file: file.clone(),
                    line,
                    reason: format!(
                        "no weather station within {max_km} km of basin {id}; give weather_station_id"
                    ),
                },
            )?,
        };
        let site = SnowpackSite {
            basin: id.clone(),
            range: row.mountain_range,
            swe_mm: row.swe_mm,
            station,
            station_km,
        };
        if sites.insert(id, site).is_some() {
            return Err(duplicate(&file, line, "basin_id", row.basin_id));
        }
    }
    Ok(sites)
}

impl Region {
    /// Loads the region folder `dir` like [`Region::load`], choosing the snow station of a basin
    /// snowpack without one in the file within `snowmelt.station_max_distance_km`.
    ///
    /// # Errors
    /// As [`Region::load`], and for a snowpack row naming an unknown basin, giving a negative or
    /// non-numeric `swe_mm`, an unknown or non-weather `weather_station_id`, a basin already
    /// given, or no `weather_station_id` and no weather station in range.
    pub fn load_with_snowmelt(
        dir: &Path,
        snowmelt: &SnowmeltConfig,
    ) -> Result<Region, RegionError> {
        Self::load_with_snow_station_distance(dir, snowmelt.station_max_distance_km)
    }

    /// Returns the snowpack of `basin`, if the region gives it one.
    pub fn snowpack(&self, basin: &BasinId) -> Option<&SnowpackSite> {
        self.basin_snowpacks.get(basin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{storm_scenario, ObservationTopic, StormConfig};

    fn xinjiang() -> Region {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
        Region::load(Path::new(dir)).expect("the committed xinjiang region loads")
    }

    #[test]
    fn xinjiang_snowpacks_load_away_from_the_storm() {
        let region = xinjiang();
        assert_eq!(region.basin_snowpacks.len(), 8);
        for site in region.basin_snowpacks.values() {
            assert_eq!(region.stations[&site.station].kind, StationKind::Weather);
            assert!(
                site.station_km <= 25.0,
                "{}: {} km",
                site.basin,
                site.station_km
            );
            assert!(site.swe_mm > 0.0);
        }
        let given = &region.basin_snowpacks[&BasinId::new("B0191")];
        assert_eq!(
            (given.station.as_str(), given.range),
            ("W0171", MountainRange::Tianshan)
        );
        let nearest = region.snowpack(&BasinId::new("B0046")).expect("a pack");
        assert_eq!(nearest.range, MountainRange::Altai);
        // The storm scenario neither rains on a snowy basin nor reports its snow station, so
        // its flash-flood outcome is the same with or without packs.
        let scenario = storm_scenario(&region, &StormConfig::default());
        for site in region.basin_snowpacks.values() {
            let basin = &region.basins[&site.basin];
            let touched = scenario.messages.iter().any(|message| {
                let topic = message.topic;
                (topic == ObservationTopic::Weather && message.key == site.station.as_str())
                    || (topic == ObservationTopic::Rainfall
                        && basin.gauges.iter().any(|(g, _)| message.key == g.as_str()))
            });
            assert!(!touched, "the storm reaches {}", site.basin);
        }
    }

    const ADMIN: &str = "code,name,level,parent_code,lon,lat\n\
        650000,新疆维吾尔自治区,region,,85.19,41.12\n\
        654000,伊犁哈萨克自治州,prefecture,650000,82.13,43.45\n\
        654025,新源县,county,654000,83.56,43.36\n\
        654025100,新源镇,township,654025,,\n";
    // WA is 5.6 km north of B1's centre, WB 22 km east; R1 is a rain gauge.
    const STATIONS: &str = "station_id,kind,lon,lat,county_code,report_interval_s\n\
        R1,rain,83.55,43.35,654025,300\n\
        WB,weather,83.82,43.35,654025,600\n\
        WA,weather,83.55,43.40,654025,600\n";
    const BASINS: &str = "basin_id,name,county_code,lon,lat,area_km2,wm_mm,townships\n\
        B1,新源县山洪小流域1,654025,83.55,43.35,50.0,80.0,654025100\n\
        B2,新源县山洪小流域2,654025,84.40,43.35,50.0,80.0,654025100\n";
    const GAUGES: &str = "basin_id,station_id,weight\nB1,R1,1.0\nB2,R1,1.0\n";
    const THRESHOLDS: &str = "basin_id,duration_h,soil_state,prepare_mm,immediate_mm\n\
        B1,1,dry,20,28\nB1,1,normal,18,25\nB1,1,wet,15,21\n\
        B2,1,dry,20,28\nB2,1,normal,18,25\nB2,1,wet,15,21\n";

    /// Writes a small region with `snowpacks` as its snowpack file and loads it with snow
    /// stations within `max_km`.
    fn load(test: &str, snowpacks: &str, max_km: f64) -> Result<Region, RegionError> {
        let dir =
            std::env::temp_dir().join(format!("tianshan-snowpacks-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp region folder");
        for (name, text) in [
            ("admin_units.csv", ADMIN),
            ("stations.csv", STATIONS),
            ("basins.csv", BASINS),
            ("basin_gauges.csv", GAUGES),
            ("basin_thresholds.csv", THRESHOLDS),
            (
                "water_level_thresholds.csv",
                "station_id,basin_id,base_stage_m,prepare_stage_m,immediate_stage_m\n",
            ),
            (BASIN_SNOWPACKS_FILE, snowpacks),
        ] {
            std::fs::write(dir.join(name), text).expect("write temp region file");
        }
        let cfg = SnowmeltConfig {
            station_max_distance_km: max_km,
            ..SnowmeltConfig::default()
        };
        let result = Region::load_with_snowmelt(&dir, &cfg);
        std::fs::remove_dir_all(&dir).expect("remove temp region folder");
        result
    }

    const HEADER: &str = "basin_id,mountain_range,swe_mm,weather_station_id\n";

    #[test]
    fn the_nearest_weather_station_in_range_or_the_one_given_drives_a_pack() {
        let region =
            load("nearest", &format!("{HEADER}B1,tianshan,120,\n"), 25.0).expect("valid snowpacks");
        let site = &region.basin_snowpacks[&BasinId::new("B1")];
        assert_eq!(
            site.station.as_str(),
            "WA",
            "WA is nearer than WB; R1 is no weather station"
        );
        assert!((site.station_km - 5.56).abs() < 0.01, "{}", site.station_km);

        let region = load("given", &format!("{HEADER}B1,altai,80,WB\n"), 25.0).expect("valid");
        let site = &region.basin_snowpacks[&BasinId::new("B1")];
        assert_eq!(
            (site.station.as_str(), site.range, site.swe_mm),
            ("WB", MountainRange::Altai, 80.0)
        );

        // B2 lies 47 km east of WB: too far at 25 km, in range at 50 km.
        let far = format!("{HEADER}B2,tianshan,100,\n");
        let message = load("far", &far, 25.0)
            .expect_err("no station in range")
            .to_string();
        assert!(
            message.contains("line 2: no weather station within 25 km of basin B2"),
            "{message}"
        );
        let region = load("far-ok", &far, 50.0).expect("in range at 50 km");
        assert_eq!(
            region.basin_snowpacks[&BasinId::new("B2")].station.as_str(),
            "WB"
        );
    }

    #[test]
    fn broken_snowpacks_name_file_line_and_value() {
        let cases = [
            (
                "basin",
                "B9,tianshan,100,\n",
                "line 2: basin_id `B9` is not in basins.csv",
            ),
            (
                "swe",
                "B1,tianshan,-5,\n",
                "line 2: swe_mm -5 is not a non-negative number",
            ),
            (
                "kind",
                "B1,tianshan,100,R1\n",
                "line 2: station_id `R1` is a rain station, expected weather",
            ),
            (
                "dup",
                "B1,tianshan,100,\nB1,altai,50,\n",
                "line 3: duplicate basin_id `B1`",
            ),
            ("range", "B1,kunlun,100,\n", "line: 2"),
        ];
        for (test, rows, expected) in cases {
            let message = load(test, &format!("{HEADER}{rows}"), 25.0)
                .expect_err("broken snowpacks")
                .to_string();
            assert!(message.contains(BASIN_SNOWPACKS_FILE), "{test}: {message}");
            assert!(message.contains(expected), "{test}: {message}");
        }
    }
}
