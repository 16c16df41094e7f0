//! The dissemination tree Region → Prefecture → County → Township built from a region's admin
//! units, and the units a warning reaches: from its area codes (a basin's county and townships)
//! or from a polygon (the counties whose boundary it touches).
//!
//! GB/T 2260 groups county-level units administered directly by the province under a code
//! whose third and fourth digits are `90` (`659000` 自治区直辖县级行政区划 for the twelve XPCC
//! cities). Such a row is a grouping, not a prefecture with a duty office, so the tree leaves it
//! out and hangs its counties directly from the region.

use std::collections::{BTreeMap, BTreeSet};

use crate::boundaries::{bounding_box, polygon_contains, AreaShapes, Polygon, Ring};
use crate::ids::AreaCode;
use crate::region::{AdminLevel, AdminUnit};

/// One unit of the tree with its links.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeUnit {
    /// The unit's code.
    pub code: AreaCode,
    /// The official name.
    pub name: String,
    /// The level in the tree.
    pub level: AdminLevel,
    /// The parent in the tree; `None` for the region.
    pub parent: Option<AreaCode>,
    /// The children in the tree, by code.
    pub children: Vec<AreaCode>,
}

/// The admin units of one region as a tree, by code.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminTree {
    region: AreaCode,
    units: BTreeMap<AreaCode, TreeUnit>,
}

/// Why admin units do not form a tree.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TreeError {
    /// No unit has level `region`, or more than one has.
    #[error("expected exactly one unit of level region, found {found}")]
    RegionCount {
        /// How many region units there are.
        found: usize,
    },
    /// A unit other than the region has no parent, or a parent that is not a unit.
    #[error("unit `{unit}` has parent `{parent}`, which is not an admin unit")]
    UnknownParent {
        /// The unit.
        unit: AreaCode,
        /// Its parent code (empty when missing).
        parent: String,
    },
    /// A unit whose parent is not one level above it.
    #[error("unit `{unit}` ({level}) has parent `{parent}` of level {parent_level}")]
    ParentLevel {
        /// The unit.
        unit: AreaCode,
        /// Its level.
        level: AdminLevel,
        /// Its parent.
        parent: AreaCode,
        /// The parent's level.
        parent_level: AdminLevel,
    },
}

/// The units a warning reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// The townships reached: the smallest units, where village heads and loudspeakers are.
    pub townships: BTreeSet<AreaCode>,
    /// The counties reached: those holding a reached township, and counties reached as a whole.
    pub counties: BTreeSet<AreaCode>,
    /// The prefectures above the reached counties (the path the warning travels down).
    pub prefectures: BTreeSet<AreaCode>,
    /// Area codes of the warning that are not units of the tree (or are grouping codes); kept
    /// so the caller can report them instead of losing them.
    pub unknown: BTreeSet<AreaCode>,
}

/// Returns whether `code` is a GB/T 2260 grouping of province-administered county-level units
/// (`xx90xx`), such as `659000`.
fn is_grouping_code(code: &AreaCode) -> bool {
    code.as_str().get(2..4) == Some("90")
}

/// Returns the level directly above `level`; `None` for the region.
fn level_above(level: AdminLevel) -> Option<AdminLevel> {
    match level {
        AdminLevel::Region => None,
        AdminLevel::Prefecture => Some(AdminLevel::Region),
        AdminLevel::County => Some(AdminLevel::Prefecture),
        AdminLevel::Township => Some(AdminLevel::County),
    }
}

impl AdminTree {
    /// Builds the tree from a region's admin units (`Region::admin_units`, or
    /// [`crate::region::load_admin_units`]). Grouping prefectures (`xx90xx`) are left out and
    /// their counties attached to the region.
    ///
    /// # Errors
    /// Returns a [`TreeError`] when there is not exactly one region, or a unit's parent is
    /// missing or not one level above it.
    pub fn try_from_units(units: &BTreeMap<AreaCode, AdminUnit>) -> Result<AdminTree, TreeError> {
        let regions: Vec<&AdminUnit> = units
            .values()
            .filter(|unit| unit.level == AdminLevel::Region)
            .collect();
        let [region] = regions[..] else {
            return Err(TreeError::RegionCount {
                found: regions.len(),
            });
        };
        let mut tree: BTreeMap<AreaCode, TreeUnit> = BTreeMap::new();
        for unit in units.values() {
            let grouping = unit.level == AdminLevel::Prefecture && is_grouping_code(&unit.code);
            if grouping {
                continue;
            }
            let parent = match (&unit.parent, level_above(unit.level)) {
                (_, None) => None,
                (None, Some(_)) => {
                    return Err(TreeError::UnknownParent {
                        unit: unit.code.clone(),
                        parent: String::new(),
                    })
                }
                (Some(parent), Some(expected)) => {
                    let Some(parent_unit) = units.get(parent) else {
                        return Err(TreeError::UnknownParent {
                            unit: unit.code.clone(),
                            parent: parent.to_string(),
                        });
                    };
                    let skips_grouping = parent_unit.level == AdminLevel::Prefecture
                        && is_grouping_code(parent)
                        && unit.level == AdminLevel::County;
                    if skips_grouping {
                        Some(region.code.clone())
                    } else if parent_unit.level == expected {
                        Some(parent.clone())
                    } else {
                        return Err(TreeError::ParentLevel {
                            unit: unit.code.clone(),
                            level: unit.level,
                            parent: parent.clone(),
                            parent_level: parent_unit.level,
                        });
                    }
                }
            };
            tree.insert(
                unit.code.clone(),
                TreeUnit {
                    code: unit.code.clone(),
                    name: unit.name.clone(),
                    level: unit.level,
                    parent,
                    children: Vec::new(),
                },
            );
        }
        let links: Vec<(AreaCode, AreaCode)> = tree
            .values()
            .filter_map(|unit| Some((unit.parent.clone()?, unit.code.clone())))
            .collect();
        for (parent, child) in links {
            // Units are visited in code order, so each child list comes out sorted.
            tree.get_mut(&parent)
                .expect("every parent was checked to be a unit of the tree")
                .children
                .push(child);
        }
        Ok(AdminTree {
            region: region.code.clone(),
            units: tree,
        })
    }

    /// Returns the region's code, the root of the tree.
    pub fn region(&self) -> &AreaCode {
        &self.region
    }

    /// Returns the unit `code`, if it is in the tree.
    pub fn unit(&self, code: &AreaCode) -> Option<&TreeUnit> {
        self.units.get(code)
    }

    /// Returns the parent of `code`; `None` for the region and for codes not in the tree.
    pub fn parent(&self, code: &AreaCode) -> Option<&AreaCode> {
        self.units.get(code)?.parent.as_ref()
    }

    /// Returns the children of `code`, by code; empty for townships and unknown codes.
    pub fn children(&self, code: &AreaCode) -> &[AreaCode] {
        self.units
            .get(code)
            .map_or(&[], |unit| unit.children.as_slice())
    }

    /// Returns the units above `code`, nearest first, ending with the region.
    pub fn ancestors(&self, code: &AreaCode) -> Vec<&AreaCode> {
        std::iter::successors(self.parent(code), |code| self.parent(code)).collect()
    }

    /// Returns the number of units of `level`.
    pub fn count(&self, level: AdminLevel) -> usize {
        self.units
            .values()
            .filter(|unit| unit.level == level)
            .count()
    }

    /// Returns the units a warning with these area codes reaches. A code none of whose
    /// descendants is also listed reaches all the townships below it (a township reaches
    /// itself); a code with a listed descendant only lies on the path. So a basin warning
    /// (`county; township…`) reaches exactly its townships, and a county-only warning all
    /// townships of the county. Counties and prefectures above the reached townships are
    /// filled in; codes not in the tree go to [`Reach::unknown`].
    pub fn reach_of_area_codes(&self, area_codes: &[AreaCode]) -> Reach {
        let mut reach = Reach::default();
        let listed: BTreeSet<&AreaCode> = area_codes
            .iter()
            .filter(|code| {
                let known = self.units.contains_key(*code);
                if !known {
                    reach.unknown.insert((*code).clone());
                }
                known
            })
            .collect();
        let on_path: BTreeSet<&AreaCode> = listed
            .iter()
            .flat_map(|code| self.ancestors(code))
            .collect();
        for code in listed.into_iter().filter(|code| !on_path.contains(code)) {
            self.reach_everything_below(code, &mut reach);
        }
        reach
    }

    /// Returns the units reached by a warning polygon (outer ring first, then holes): every
    /// county whose shape the polygon touches, each reached as a whole (all its townships).
    ///
    /// Rule: after a bounding-box prefilter, a county is touched when a vertex of the polygon
    /// lies in the county, a vertex of the county (any ring) lies in the polygon, or an edge of
    /// one crosses an edge of the other. For simple polygons this is exactly "the interiors or
    /// boundaries meet", so a polygon inside a county, a county inside a polygon and a thin
    /// strip crossing a county without a vertex in it are all caught, while a polygon inside a
    /// county's hole is not. Shapes that only share a boundary point may go either way. With the
    /// coarse stand-in shapes ([`AreaShapes::Coarse`]) squares overlap, so more counties may be
    /// reached than with official boundaries.
    pub fn reach_of_polygon(&self, shapes: &AreaShapes, polygon: &Polygon) -> Reach {
        let mut reach = Reach::default();
        let (min_lon, min_lat, max_lon, max_lat) = bounding_box(std::slice::from_ref(polygon));
        for shape in shapes.shapes() {
            let (west, south, east, north) = shape.bbox;
            let boxes_meet =
                west <= max_lon && east >= min_lon && south <= max_lat && north >= min_lat;
            if !boxes_meet || !polygons_meet(polygon, &shape.polygons) {
                continue;
            }
            if self.units.contains_key(&shape.code) {
                self.reach_everything_below(&shape.code, &mut reach);
            } else {
                reach.unknown.insert(shape.code.clone());
            }
        }
        reach
    }

    /// Adds `code`, every township below it and the counties and prefectures on their paths.
    fn reach_everything_below(&self, code: &AreaCode, reach: &mut Reach) {
        let mut pending = vec![code];
        while let Some(code) = pending.pop() {
            let unit = &self.units[code];
            match unit.level {
                AdminLevel::Township => {
                    reach.townships.insert(code.clone());
                }
                AdminLevel::County => {
                    reach.counties.insert(code.clone());
                }
                AdminLevel::Prefecture => {
                    reach.prefectures.insert(code.clone());
                }
                AdminLevel::Region => {}
            }
            pending.extend(unit.children.iter());
        }
        for ancestor in self.ancestors(code) {
            match self.units[ancestor].level {
                AdminLevel::County => reach.counties.insert(ancestor.clone()),
                AdminLevel::Prefecture => reach.prefectures.insert(ancestor.clone()),
                AdminLevel::Region | AdminLevel::Township => false,
            };
        }
    }

    /// Returns the tree of the real Xinjiang admin data in `shared/data`.
    #[cfg(test)]
    pub(crate) fn xinjiang_for_test() -> AdminTree {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/xinjiang-admin-divisions.csv"
        );
        let units = crate::region::load_admin_units(std::path::Path::new(file))
            .expect("the shared admin data loads");
        AdminTree::try_from_units(&units).expect("the shared admin data forms a tree")
    }
}

/// Returns whether the polygon `warning` and the county `polygons` meet (see
/// [`AdminTree::reach_of_polygon`] for the rule).
fn polygons_meet(warning: &Polygon, county: &[Polygon]) -> bool {
    let warning_vertex_in_county = warning.iter().flatten().any(|&(lon, lat)| {
        county
            .iter()
            .any(|polygon| polygon_contains(polygon, lon, lat))
    });
    if warning_vertex_in_county {
        return true;
    }
    let county_vertex_in_warning = county
        .iter()
        .flatten()
        .flatten()
        .any(|&(lon, lat)| polygon_contains(warning, lon, lat));
    if county_vertex_in_warning {
        return true;
    }
    warning.iter().any(|warning_ring| {
        county
            .iter()
            .flatten()
            .any(|county_ring| rings_cross(warning_ring, county_ring))
    })
}

/// Returns the edges of a ring, including the one from the last position back to the first.
fn edges(ring: &Ring) -> impl Iterator<Item = ((f64, f64), (f64, f64))> + '_ {
    let closing = ring.last().copied().zip(ring.first().copied());
    ring.windows(2)
        .map(|pair| (pair[0], pair[1]))
        .chain(closing)
}

/// Returns whether an edge of `a` intersects an edge of `b`.
fn rings_cross(a: &Ring, b: &Ring) -> bool {
    edges(a).any(|(p, q)| edges(b).any(|(r, s)| segments_intersect(p, q, r, s)))
}

/// Returns the sign of the turn `a → b → c`: 1 left, -1 right, 0 collinear.
fn turn(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> i8 {
    let cross = (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0);
    if cross > 0.0 {
        1
    } else if cross < 0.0 {
        -1
    } else {
        0
    }
}

/// Returns whether the collinear point `c` lies within the box of segment `a`–`b`.
fn within_box(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> bool {
    c.0 >= a.0.min(b.0) && c.0 <= a.0.max(b.0) && c.1 >= a.1.min(b.1) && c.1 <= a.1.max(b.1)
}

/// Returns whether segments `p`–`q` and `r`–`s` share a point (touching counts).
fn segments_intersect(p: (f64, f64), q: (f64, f64), r: (f64, f64), s: (f64, f64)) -> bool {
    let (d1, d2) = (turn(p, q, r), turn(p, q, s));
    let (d3, d4) = (turn(r, s, p), turn(r, s, q));
    if d1 * d2 < 0 && d3 * d4 < 0 {
        return true;
    }
    (d1 == 0 && within_box(p, q, r))
        || (d2 == 0 && within_box(p, q, s))
        || (d3 == 0 && within_box(r, s, p))
        || (d4 == 0 && within_box(r, s, q))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::boundaries::CountyShape;
    use crate::region::Region;

    const COUNTIES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/xinjiang-boundaries/xinjiang-counties.geojson"
    );

    fn xinjiang_tree() -> AdminTree {
        AdminTree::xinjiang_for_test()
    }

    fn codes(list: &[&str]) -> BTreeSet<AreaCode> {
        list.iter().map(AreaCode::new).collect()
    }

    #[test]
    fn xinjiang_has_14_prefectures_108_counties_and_1405_townships() {
        let tree = xinjiang_tree();
        assert_eq!(tree.region().as_str(), "650000");
        assert_eq!(tree.count(AdminLevel::Region), 1);
        assert_eq!(tree.count(AdminLevel::Prefecture), 14);
        assert_eq!(tree.count(AdminLevel::County), 108);
        assert_eq!(tree.count(AdminLevel::Township), 1405);
        assert!(
            tree.unit(&AreaCode::new("659000")).is_none(),
            "grouping code"
        );
        let shihezi = AreaCode::new("659001");
        assert_eq!(tree.parent(&shihezi), Some(&AreaCode::new("650000")));
        let region_children = tree.children(tree.region());
        assert_eq!(region_children.len(), 14 + 12);
        let tianshan = AreaCode::new("650102");
        assert_eq!(tree.parent(&tianshan), Some(&AreaCode::new("650100")));
        assert!(tree
            .children(&tianshan)
            .iter()
            .all(|code| code.as_str().starts_with("650102") && code.as_str().len() == 9));
        let township = &tree.children(&tianshan)[0];
        let path: Vec<&str> = tree
            .ancestors(township)
            .into_iter()
            .map(AreaCode::as_str)
            .collect();
        assert_eq!(path, ["650102", "650100", "650000"]);
    }

    #[test]
    fn a_basin_reaches_exactly_its_townships() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
        let region = Region::load(Path::new(dir)).expect("the committed region loads");
        let tree = AdminTree::try_from_units(&region.admin_units).expect("tree");
        // B0001 巩留县山洪小流域1 lies in 654024 and lists three of its townships.
        let basin = &region.basins[&crate::ids::BasinId::new("B0001")];
        let reach = tree.reach_of_area_codes(&basin.area_codes());
        assert_eq!(
            reach.townships,
            codes(&["654024101", "654024201", "654024510"])
        );
        assert_eq!(reach.counties, codes(&["654024"]));
        assert_eq!(reach.prefectures, codes(&["654000"]));
        assert!(reach.unknown.is_empty());
        assert!(tree.children(&AreaCode::new("654024")).len() > 3);
    }

    #[test]
    fn a_county_alone_reaches_all_its_townships_and_unknown_codes_are_kept() {
        let tree = xinjiang_tree();
        let shihezi = AreaCode::new("659001");
        let reach = tree.reach_of_area_codes(&[shihezi.clone(), AreaCode::new("999999")]);
        let all: BTreeSet<AreaCode> = tree.children(&shihezi).iter().cloned().collect();
        assert_eq!(reach.townships, all);
        assert_eq!(reach.counties, codes(&["659001"]));
        assert!(
            reach.prefectures.is_empty(),
            "XPCC cities hang from the region"
        );
        assert_eq!(reach.unknown, codes(&["999999"]));
    }

    fn square(lon: f64, lat: f64, half: f64) -> Polygon {
        vec![vec![
            (lon - half, lat - half),
            (lon + half, lat - half),
            (lon + half, lat + half),
            (lon - half, lat + half),
            (lon - half, lat - half),
        ]]
    }

    #[test]
    fn a_polygon_around_a_landmark_reaches_its_county() {
        let tree = xinjiang_tree();
        let shapes = AreaShapes::load_geojson(Path::new(COUNTIES)).expect("county shapes");
        // Landmarks of shared/data/README.md, checked there against the same boundary file.
        for (lon, lat, county, prefecture) in [
            (87.6168, 43.7928, "650102", "650100"), // 乌鲁木齐人民广场 → 天山区
            (75.9836, 39.4718, "653101", "653100"), // 喀什艾提尕尔 → 喀什市
        ] {
            let reach = tree.reach_of_polygon(&shapes, &square(lon, lat, 0.002));
            assert_eq!(reach.counties, codes(&[county]), "{county}");
            assert_eq!(reach.prefectures, codes(&[prefecture]), "{county}");
            let all: BTreeSet<AreaCode> = tree
                .children(&AreaCode::new(county))
                .iter()
                .cloned()
                .collect();
            assert_eq!(reach.townships, all, "{county}");
        }
        let far_away = tree.reach_of_polygon(&shapes, &square(-150.0, 0.0, 1.0));
        assert_eq!(far_away, Reach::default());
    }

    fn county_with_hole(code: &str) -> CountyShape {
        let outer = vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)];
        let hole = vec![(1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0), (1.0, 1.0)];
        CountyShape::new(
            AreaCode::new(code),
            code.to_owned(),
            vec![vec![outer, hole]],
        )
    }

    #[test]
    fn touching_is_decided_by_vertices_and_crossing_edges() {
        let county = county_with_hole("000001");
        let meets = |polygon: Polygon| polygons_meet(&polygon, &county.polygons);
        assert!(meets(square(0.5, 0.5, 0.1)), "inside the county");
        assert!(
            meets(square(2.0, 2.0, 5.0)),
            "the county inside the polygon"
        );
        let strip = vec![vec![(-1.0, 0.4), (5.0, 0.4), (5.0, 0.6), (-1.0, 0.6)]];
        assert!(
            meets(strip),
            "a strip across the county with no vertex in it"
        );
        assert!(!meets(square(2.0, 2.0, 0.5)), "inside the hole");
        assert!(!meets(square(6.0, 6.0, 0.5)), "outside");
    }
}
