//! SMTP: the probe's submission to the organisation's server (D3, [`probe`]) and delivery of
//! inbound mail to it over its routes (Q2, [`relay`]).

pub mod probe;
pub mod relay;
