//! The web pieces every feature shares, and nothing feature-specific: the one error type
//! ([`error`]), who is calling ([`auth`]), request extractors ([`extract`]), request ids
//! ([`ids`]), page rendering ([`render`]: the template escaper, the included style sheets and
//! script) and the per-source limits of alert links and sign-in ([`limits`]). A feature module
//! (`portal`, `admin`, `inbox`, `client`, `session`) imports from here and from `shared`, never
//! from another feature.

pub mod auth;
pub mod error;
pub mod extract;
pub mod ids;
pub mod limits;
pub mod render;
