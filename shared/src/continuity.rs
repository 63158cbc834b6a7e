//! Continuity events and their audit (P2-P7, P9, P10): what an action does to the
//! organisation's `CONTINUITY` state, and the audit record of every action.
