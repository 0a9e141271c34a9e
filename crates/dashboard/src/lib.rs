//! The operator's dashboard at `/ui`: one page that polls the node it was loaded from and
//! renders the cluster's health, its members, the cache, traffic rates, prefetch jobs, block
//! rules and recent fills and refusals.
//!
//! The page is three static files (`assets/`: HTML, CSS, vanilla JavaScript), embedded in the
//! binary: no build step, no network access beyond its own origin, which a strict
//! Content-Security-Policy enforces. Everything it shows comes from one JSON document that the
//! node crate builds and serves at [`DATA_PATH`]; data is only ever inserted as text, never
//! as markup, because it holds attacker-influenced strings (request paths, token names).
//!
//! # Layout
//! - [`data`]: the JSON document ([`Dashboard`] and its parts), the contract with the node.
//! - [`routes`](mod@routes): `GET /ui`, `/ui/app.js`, `/ui/app.css` and the `/ui/` redirect.
//! - [`sample`](mod@sample): example data (a healthy three-node cluster) for tests and docs.
//! - `assets/`: the page itself; `DESIGN.md`: the DOM ids and attributes tests rely on.
#![forbid(unsafe_code)]

pub mod data;
pub mod routes;
pub mod sample;

pub use data::{Block, Cache, Cluster, Counters, Dashboard, Job, Member, RecentEvent, TopModule};
pub use routes::{routes, DATA_PATH, UI_PATH};
pub use sample::sample;
