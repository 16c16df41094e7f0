//! County shapes for point-in-county lookups: official boundary polygons loaded from the GeoJSON
//! file a deployment configures, or, without one, coarse squares around the county centroids.
//!
//! Boundary polygons are not shipped with Tianshan (their licence forbids redistribution as a
//! map product), so each deployment points to its own file. Coordinates are WGS84 degrees,
//! `(lon, lat)`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::ids::AreaCode;
use crate::region::{AdminLevel, AdminUnit};

/// Half the side, in degrees, of the square a coarse shape draws around a county centroid.
pub const COARSE_HALF_SIDE_DEG: f64 = 0.25;

/// The smallest number of positions in a closed ring (a triangle plus the closing position).
const MIN_RING_POSITIONS: usize = 4;

/// A ring of `(lon, lat)` positions, closed (the first position repeated last) or not.
pub type Ring = Vec<(f64, f64)>;

/// A polygon: the outer ring first, then its holes.
pub type Polygon = Vec<Ring>;

/// The outline of one county.
#[derive(Debug, Clone, PartialEq)]
pub struct CountyShape {
    /// The county's GB/T 2260 code.
    pub code: AreaCode,
    /// The county's name.
    pub name: String,
    /// Polygons, each a list of rings (the outer ring first, then holes), each ring a list of
    /// `(lon, lat)` positions.
    pub polygons: Vec<Polygon>,
    /// The bounding box `(min_lon, min_lat, max_lon, max_lat)` of all polygons.
    pub bbox: (f64, f64, f64, f64),
}

/// Returns `(min_lon, min_lat, max_lon, max_lat)` over every position of `polygons`. Without
/// positions the box is empty (infinite minima, negative-infinite maxima), so it holds no point.
pub(crate) fn bounding_box(polygons: &[Polygon]) -> (f64, f64, f64, f64) {
    let empty = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    polygons
        .iter()
        .flatten()
        .flatten()
        .fold(empty, |(x0, y0, x1, y1), &(x, y)| {
            (x0.min(x), y0.min(y), x1.max(x), y1.max(y))
        })
}

impl CountyShape {
    /// Builds a shape and computes its bounding box. Without positions the box is empty
    /// (infinite minima, negative-infinite maxima), so the shape contains no point.
    pub fn new(code: AreaCode, name: String, polygons: Vec<Polygon>) -> Self {
        let bbox = bounding_box(&polygons);
        Self {
            code,
            name,
            polygons,
            bbox,
        }
    }

    /// Returns whether `(lon, lat)` lies inside one of the polygons (inside its outer ring and
    /// outside its holes). Points exactly on an edge may go either way.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let (min_lon, min_lat, max_lon, max_lat) = self.bbox;
        if lon < min_lon || lon > max_lon || lat < min_lat || lat > max_lat {
            return false;
        }
        self.polygons
            .iter()
            .any(|polygon| polygon_contains(polygon, lon, lat))
    }

    /// Returns the squared distance in degrees² from `(lon, lat)` to the centre of the bounding box.
    fn squared_distance_to_centre(&self, lon: f64, lat: f64) -> f64 {
        let (min_lon, min_lat, max_lon, max_lat) = self.bbox;
        let (d_lon, d_lat) = (
            lon - (min_lon + max_lon) / 2.0,
            lat - (min_lat + max_lat) / 2.0,
        );
        d_lon * d_lon + d_lat * d_lat
    }
}

/// Returns whether `(lon, lat)` lies inside the outer ring (the first) and outside every hole.
pub(crate) fn polygon_contains(rings: &[Ring], lon: f64, lat: f64) -> bool {
    let Some((outer, holes)) = rings.split_first() else {
        return false;
    };
    ring_contains(outer, lon, lat) && !holes.iter().any(|hole| ring_contains(hole, lon, lat))
}

/// Even-odd ray casting: counts the edges a ray from `(lon, lat)` towards +lon crosses. The ring
/// may be closed or not; the edge from the last position back to the first is always tested.
fn ring_contains(ring: &[(f64, f64)], lon: f64, lat: f64) -> bool {
    let Some(&last) = ring.last() else {
        return false;
    };
    let mut inside = false;
    let mut previous = last;
    for &(x, y) in ring {
        let (px, py) = previous;
        // The first test guarantees y != py, so the division is safe.
        if (y > lat) != (py > lat) && lon < px + (lat - py) * (x - px) / (y - py) {
            inside = !inside;
        }
        previous = (x, y);
    }
    inside
}

/// The county shapes a deployment uses to place points in counties.
#[derive(Debug, Clone, PartialEq)]
pub enum AreaShapes {
    /// Official county boundaries, loaded from a GeoJSON file with [`AreaShapes::load_geojson`].
    /// They partition the region, so a point lies in at most one county (up to shared edges).
    Official(Vec<CountyShape>),
    /// A coarse stand-in, not a boundary: a square of ±[`COARSE_HALF_SIDE_DEG`] around each
    /// county centroid, built with [`AreaShapes::coarse_from_centroids`]. Squares overlap and leave
    /// gaps; where they overlap, [`AreaShapes::county_at`] picks the nearest centroid.
    Coarse(Vec<CountyShape>),
}

impl AreaShapes {
    /// Loads county boundaries from a GeoJSON FeatureCollection of Polygon and MultiPolygon
    /// features with string properties `code` (6 digits) and `name`. Other members are ignored.
    ///
    /// # Errors
    /// Returns [`BoundaryError`] naming the file when it cannot be read or is not JSON, and also
    /// the feature index and field when a feature is malformed or repeats a code.
    pub fn load_geojson(path: &Path) -> Result<AreaShapes, BoundaryError> {
        let text = std::fs::read_to_string(path).map_err(|source| BoundaryError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        parse_collection(path, &text).map(AreaShapes::Official)
    }

    /// Builds coarse squares around the centroids of the county-level units in `units`; units of
    /// other levels, and counties without a centroid, are skipped.
    pub fn coarse_from_centroids(units: &BTreeMap<AreaCode, AdminUnit>) -> AreaShapes {
        let shapes = units
            .values()
            .filter(|unit| unit.level == AdminLevel::County)
            .filter_map(|unit| Some((unit, unit.lon?, unit.lat?)))
            .map(|(unit, lon, lat)| {
                let square = centred_square(lon, lat, COARSE_HALF_SIDE_DEG);
                CountyShape::new(unit.code.clone(), unit.name.clone(), vec![vec![square]])
            })
            .collect();
        AreaShapes::Coarse(shapes)
    }

    /// Returns the county containing `(lon, lat)`, or `None` outside every shape. Official shapes
    /// are searched in file order; among overlapping coarse squares the nearest centroid wins.
    pub fn county_at(&self, lon: f64, lat: f64) -> Option<&AreaCode> {
        let shape = match self {
            Self::Official(shapes) => shapes.iter().find(|shape| shape.contains(lon, lat)),
            Self::Coarse(shapes) => shapes
                .iter()
                .filter(|shape| shape.contains(lon, lat))
                .min_by(|a, b| {
                    let distance_a = a.squared_distance_to_centre(lon, lat);
                    distance_a.total_cmp(&b.squared_distance_to_centre(lon, lat))
                }),
        };
        shape.map(|shape| &shape.code)
    }

    /// Returns the shape of county `code`, if present.
    pub fn shape(&self, code: &AreaCode) -> Option<&CountyShape> {
        self.shapes().iter().find(|shape| shape.code == *code)
    }

    /// Returns all shapes, in file order (official) or code order (coarse).
    pub fn shapes(&self) -> &[CountyShape] {
        match self {
            Self::Official(shapes) | Self::Coarse(shapes) => shapes,
        }
    }

    /// Returns whether these are official boundaries rather than the coarse stand-in.
    pub fn is_official(&self) -> bool {
        matches!(self, Self::Official(_))
    }

    /// Returns the number of counties.
    pub fn len(&self) -> usize {
        self.shapes().len()
    }

    /// Returns whether there are no counties.
    pub fn is_empty(&self) -> bool {
        self.shapes().is_empty()
    }
}

/// Returns the closed ring of the square of half side `half` centred on `(lon, lat)`.
fn centred_square(lon: f64, lat: f64, half: f64) -> Ring {
    let (west, east, south, north) = (lon - half, lon + half, lat - half, lat + half);
    vec![
        (west, south),
        (east, south),
        (east, north),
        (west, north),
        (west, south),
    ]
}

/// Why a boundary file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BoundaryError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{}: invalid json: {source}", file.display())]
    Json {
        /// The file.
        file: PathBuf,
        /// The parse error, with line and column.
        source: serde_json::Error,
    },
    /// The top-level object has no `features` array, or it is empty.
    #[error("{}: field features is missing, not an array or empty", file.display())]
    NoFeatures {
        /// The file.
        file: PathBuf,
    },
    /// A feature field is missing or malformed.
    #[error("{} feature {index}: field {field}: {problem}", file.display())]
    Field {
        /// The file.
        file: PathBuf,
        /// The 0-based index of the feature in `features`.
        index: usize,
        /// The field, as a dotted path such as `properties.code`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// Two features carry the same code.
    #[error("{} feature {index}: duplicate properties.code `{code}`", file.display())]
    DuplicateCode {
        /// The file.
        file: PathBuf,
        /// The 0-based index of the second feature with the code.
        index: usize,
        /// The repeated code.
        code: AreaCode,
    },
}

/// The feature being parsed, for error messages.
struct FeatureAt<'a> {
    file: &'a Path,
    index: usize,
}

impl FeatureAt<'_> {
    fn error(&self, field: &'static str, problem: impl Into<String>) -> BoundaryError {
        BoundaryError::Field {
            file: self.file.to_path_buf(),
            index: self.index,
            field,
            problem: problem.into(),
        }
    }
}

/// Parses the features of a GeoJSON FeatureCollection read from `file`.
fn parse_collection(file: &Path, text: &str) -> Result<Vec<CountyShape>, BoundaryError> {
    let root: Value = serde_json::from_str(text).map_err(|source| BoundaryError::Json {
        file: file.to_path_buf(),
        source,
    })?;
    let features = match root.get("features").and_then(Value::as_array) {
        Some(features) if !features.is_empty() => features,
        _ => {
            return Err(BoundaryError::NoFeatures {
                file: file.to_path_buf(),
            })
        }
    };
    let mut shapes: Vec<CountyShape> = Vec::with_capacity(features.len());
    for (index, feature) in features.iter().enumerate() {
        let shape = parse_feature(feature, &FeatureAt { file, index })?;
        if shapes.iter().any(|known| known.code == shape.code) {
            return Err(BoundaryError::DuplicateCode {
                file: file.to_path_buf(),
                index,
                code: shape.code,
            });
        }
        shapes.push(shape);
    }
    Ok(shapes)
}

/// Parses one feature: `properties.code`, `properties.name` and the geometry.
fn parse_feature(feature: &Value, at: &FeatureAt<'_>) -> Result<CountyShape, BoundaryError> {
    let code = string_field(feature, "properties.code", at)?;
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(at.error("properties.code", format!("`{code}` is not a 6-digit code")));
    }
    let name = string_field(feature, "properties.name", at)?;
    let polygons = parse_geometry(feature, at)?;
    Ok(CountyShape::new(
        AreaCode::new(code),
        name.to_owned(),
        polygons,
    ))
}

/// Returns the value at the dotted path `field` of `feature`.
fn field<'v>(
    feature: &'v Value,
    field: &'static str,
    at: &FeatureAt<'_>,
) -> Result<&'v Value, BoundaryError> {
    let pointer = format!("/{}", field.replace('.', "/"));
    feature
        .pointer(&pointer)
        .ok_or_else(|| at.error(field, "missing"))
}

/// Returns the string at the dotted path `name` of `feature`.
fn string_field<'v>(
    feature: &'v Value,
    name: &'static str,
    at: &FeatureAt<'_>,
) -> Result<&'v str, BoundaryError> {
    let value = field(feature, name, at)?;
    value
        .as_str()
        .ok_or_else(|| at.error(name, format!("expected a string, found {value}")))
}

/// Parses a Polygon or MultiPolygon geometry into polygons of `(lon, lat)` rings.
fn parse_geometry(feature: &Value, at: &FeatureAt<'_>) -> Result<Vec<Polygon>, BoundaryError> {
    const COORDINATES: &str = "geometry.coordinates";
    let kind = string_field(feature, "geometry.type", at)?;
    let coordinates = field(feature, COORDINATES, at)?;
    let raw = match kind {
        "Polygon" => Vec::<Vec<Vec<f64>>>::deserialize(coordinates).map(|polygon| vec![polygon]),
        "MultiPolygon" => Vec::<Vec<Vec<Vec<f64>>>>::deserialize(coordinates),
        other => {
            let problem = format!("`{other}` is not Polygon or MultiPolygon");
            return Err(at.error("geometry.type", problem));
        }
    }
    .map_err(|error| at.error(COORDINATES, error.to_string()))?;
    if raw.is_empty() {
        return Err(at.error(COORDINATES, "no polygons"));
    }
    raw.into_iter()
        .map(|polygon| parse_polygon(polygon, at))
        .collect()
}

/// Converts one polygon's rings, checking it has an outer ring and each ring enough positions.
fn parse_polygon(rings: Vec<Vec<Vec<f64>>>, at: &FeatureAt<'_>) -> Result<Polygon, BoundaryError> {
    const COORDINATES: &str = "geometry.coordinates";
    if rings.is_empty() {
        return Err(at.error(COORDINATES, "polygon without an outer ring"));
    }
    rings
        .into_iter()
        .map(|ring| {
            if ring.len() < MIN_RING_POSITIONS {
                let problem = format!("ring with {} positions, fewer than 4", ring.len());
                return Err(at.error(COORDINATES, problem));
            }
            ring.into_iter()
                .map(|position| match position[..] {
                    [lon, lat, ..] => Ok((lon, lat)),
                    _ => Err(at.error(COORDINATES, "position with fewer than 2 numbers")),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Region;

    const COUNTIES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/xinjiang-boundaries/xinjiang-counties.geojson"
    );

    fn official() -> AreaShapes {
        AreaShapes::load_geojson(Path::new(COUNTIES)).expect("the shared county file loads")
    }

    fn code_at(shapes: &AreaShapes, lon: f64, lat: f64) -> Option<&str> {
        shapes.county_at(lon, lat).map(AreaCode::as_str)
    }

    #[test]
    fn official_file_has_108_counties() {
        let shapes = official();
        assert!(shapes.is_official());
        assert_eq!(shapes.len(), 108);
        let tianshan = shapes.shape(&AreaCode::new("650102")).expect("天山区");
        assert_eq!(tianshan.name, "天山区");
        assert!(shapes.shape(&AreaCode::new("650000")).is_none());
    }

    /// Sanity points from `shared/data/README.md` (checked there against the same file).
    #[test]
    fn landmarks_fall_in_their_counties() {
        let shapes = official();
        let landmarks = [
            ("乌鲁木齐人民广场", 87.6168, 43.7928, "650102"),
            ("喀什艾提尕尔清真寺", 75.9836, 39.4718, "653101"),
            ("伊宁市 centre", 81.3245, 43.9097, "654002"),
            ("和田市 centre", 79.9219, 37.1141, "653201"),
        ];
        for (name, lon, lat, code) in landmarks {
            assert_eq!(code_at(&shapes, lon, lat), Some(code), "{name}");
        }
        assert_eq!(code_at(&shapes, -150.0, 0.0), None, "Pacific");
    }

    /// `inner_lon/inner_lat` is a representative point computed by shapely, always inside.
    #[test]
    fn every_inner_point_lies_in_its_own_county() {
        let shapes = official();
        let text = std::fs::read_to_string(COUNTIES).expect("read the shared county file");
        let root: Value = serde_json::from_str(&text).expect("valid json");
        let features = root["features"].as_array().expect("features");
        assert_eq!(features.len(), 108);
        for feature in features {
            let properties = &feature["properties"];
            let code = properties["code"].as_str().expect("code");
            let lon = properties["inner_lon"].as_f64().expect("inner_lon");
            let lat = properties["inner_lat"].as_f64().expect("inner_lat");
            assert_eq!(
                code_at(&shapes, lon, lat),
                Some(code),
                "inner point of {code}"
            );
        }
    }

    #[test]
    fn a_hole_is_excluded() {
        let outer = vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)];
        let hole = vec![(1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0), (1.0, 1.0)];
        let island = vec![(10.0, 10.0), (11.0, 10.0), (10.5, 11.0)];
        let shape = CountyShape::new(
            AreaCode::new("000001"),
            "ring".to_owned(),
            vec![vec![outer, hole], vec![island]],
        );
        assert_eq!(shape.bbox, (0.0, 0.0, 11.0, 11.0));
        let shapes = AreaShapes::Official(vec![shape]);
        assert_eq!(code_at(&shapes, 0.5, 2.0), Some("000001"));
        assert_eq!(code_at(&shapes, 2.0, 2.0), None, "inside the hole");
        assert_eq!(
            code_at(&shapes, 10.5, 10.3),
            Some("000001"),
            "unclosed island"
        );
        assert_eq!(
            code_at(&shapes, 7.0, 7.0),
            None,
            "in the bbox, outside both"
        );
    }

    fn unit(code: &str, level: AdminLevel, lon: Option<f64>, lat: Option<f64>) -> AdminUnit {
        AdminUnit {
            code: AreaCode::new(code),
            name: code.to_owned(),
            level,
            parent: None,
            lon,
            lat,
        }
    }

    #[test]
    fn coarse_squares_pick_the_nearest_centroid() {
        let units: BTreeMap<AreaCode, AdminUnit> = [
            unit("650000", AdminLevel::Region, Some(85.0), Some(41.0)),
            unit("650102", AdminLevel::County, Some(87.6), Some(43.7)),
            unit("650103", AdminLevel::County, Some(87.5), Some(43.8)),
            unit("659001", AdminLevel::County, None, None),
        ]
        .into_iter()
        .map(|unit| (unit.code.clone(), unit))
        .collect();
        let shapes = AreaShapes::coarse_from_centroids(&units);
        assert!(!shapes.is_official());
        assert_eq!(shapes.len(), 2);
        assert_eq!(code_at(&shapes, 87.6, 43.7), Some("650102"));
        assert_eq!(code_at(&shapes, 87.5, 43.8), Some("650103"));
        assert_eq!(code_at(&shapes, 87.58, 43.72), Some("650102"), "overlap");
        assert_eq!(code_at(&shapes, 87.84, 43.7), Some("650102"), "only 650102");
        assert_eq!(
            code_at(&shapes, 85.0, 41.0),
            None,
            "the region is not a county"
        );
    }

    #[test]
    fn coarse_xinjiang_centroids_map_back() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
        let region = Region::load(Path::new(dir)).expect("the committed xinjiang region loads");
        let shapes = AreaShapes::coarse_from_centroids(&region.admin_units);
        assert_eq!(shapes.len(), 108);
        for unit in region.admin_units.values() {
            let (Some(lon), Some(lat)) = (unit.lon, unit.lat) else {
                continue;
            };
            if unit.level == AdminLevel::County {
                assert_eq!(
                    shapes.county_at(lon, lat),
                    Some(&unit.code),
                    "{}",
                    unit.name
                );
            }
        }
    }

    fn parse_error(text: &str) -> String {
        parse_collection(Path::new("bad.geojson"), text)
            .expect_err("the malformed file must not load")
            .to_string()
    }

    const SQUARE: &str = "[[[0,0],[1,0],[1,1],[0,1],[0,0]]]";

    /// Returns one GeoJSON feature object.
    fn feature_object(properties: &str, kind: &str, coordinates: &str) -> String {
        format!(
            r#"{{"type":"Feature","properties":{properties},
            "geometry":{{"type":"{kind}","coordinates":{coordinates}}}}}"#
        )
    }

    /// Returns a FeatureCollection holding the one feature.
    fn feature(properties: &str, kind: &str, coordinates: &str) -> String {
        let object = feature_object(properties, kind, coordinates);
        format!(r#"{{"type":"FeatureCollection","features":[{object}]}}"#)
    }

    #[test]
    fn malformed_geojson_names_the_file_feature_and_field() {
        let good = r#"{"code":"650102","name":"天山区"}"#;
        let cases = [
            (
                feature(r#"{"name":"x"}"#, "Polygon", SQUARE),
                "feature 0: field properties.code: missing",
            ),
            (
                feature(r#"{"code":650102,"name":"x"}"#, "Polygon", SQUARE),
                "field properties.code: expected a string, found 650102",
            ),
            (
                feature(r#"{"code":"6501","name":"x"}"#, "Polygon", SQUARE),
                "field properties.code: `6501` is not a 6-digit code",
            ),
            (
                feature(good, "Point", "[0,0]"),
                "field geometry.type: `Point` is not Polygon or MultiPolygon",
            ),
            (
                feature(good, "Polygon", "[[[0,0],[1,0],[0,0]]]"),
                "field geometry.coordinates: ring with 3 positions",
            ),
            (
                feature(good, "MultiPolygon", SQUARE),
                "field geometry.coordinates: invalid type",
            ),
            (
                feature(good, "Polygon", "[[[0,0],[1],[1,1],[0,0]]]"),
                "field geometry.coordinates: position with fewer",
            ),
            (
                r#"{"type":"FeatureCollection"}"#.to_owned(),
                "field features is missing",
            ),
            ("{".to_owned(), "invalid json"),
        ];
        for (text, expected) in cases {
            let message = parse_error(&text);
            assert!(message.starts_with("bad.geojson"), "{message}");
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn duplicate_codes_and_missing_files_are_errors() {
        let object = feature_object(r#"{"code":"650102","name":"x"}"#, "Polygon", SQUARE);
        let two = format!(r#"{{"features":[{object},{object}]}}"#);
        let message = parse_error(&two);
        assert!(
            message.contains("feature 1: duplicate properties.code `650102`"),
            "{message}"
        );

        let missing = AreaShapes::load_geojson(Path::new("/nonexistent/counties.geojson"));
        let message = missing.expect_err("no such file").to_string();
        assert!(
            message.contains("cannot read /nonexistent/counties.geojson"),
            "{message}"
        );
    }
}
