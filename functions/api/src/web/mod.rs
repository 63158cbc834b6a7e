//! The web pieces every feature shares, and nothing feature-specific: the one error type
//! ([`error`]), who is calling ([`auth`]), request extractors ([`extract`]), request ids
//! ([`ids`]), page rendering ([`render`]: the template escaper, the included style sheets and
//! script), the per-source limits of alert links and sign-in ([`limits`]) and response
//! compression ([`compress`]). A feature module
//! (`portal`, `admin`, `inbox`, `client`, `session`) imports from here and from `shared`, never
//! from another feature.

pub mod auth;
pub mod compress;
pub mod error;
pub mod extract;
pub mod ids;
pub mod limits;
pub mod render;
