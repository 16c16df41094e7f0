//! Identifier newtypes: stations, basins, slopes, administrative areas, warnings, and the people
//! and agencies that sign, receive or read them.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an identifier string.
            pub fn new(id: impl AsRef<str>) -> Self {
                Self(Arc::from(id.as_ref()))
            }

            /// Returns the identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self::new(id)
            }
        }
    };
}

string_id!(
    /// A sensor station (rain gauge, water-level gauge, weather station, ...).
    StationId
);
string_id!(
    /// A small flash-flood basin (or, later, a slope or forest zone).
    BasinId
);
string_id!(
    /// A monitored landslide slope.
    SlopeId
);
string_id!(
    /// A GB/T 2260 county/prefecture code or a 9-digit township code.
    AreaCode
);
string_id!(
    /// A warning thread: the same id across all versions of one warning.
    WarningId
);
string_id!(
    /// A sensor gateway that relays readings to Kafka.
    GatewayId
);
string_id!(
    /// A duty officer of a department, who signs off warnings.
    OfficerId
);
string_id!(
    /// A recipient in the dissemination directory: a responsible person (county, township or
    /// village emergency contact) who receives and acknowledges warnings, or a public endpoint
    /// (SMS broadcast list, loudspeaker, CAP feed), such as `650102-002-v1`.
    RecipientId
);
string_id!(
    /// Another agency whose warnings enter Tianshan as CAP, by its CAP `sender`.
    AgencyId
);
string_id!(
    /// An API account that is neither a duty officer nor a responsible person: a subscriber
    /// application or an administrator.
    AccountId
);
