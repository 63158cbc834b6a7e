//! One test per attack (issue 12): each is named after what it tries and asserts the refusal and
//! that nothing changed.

mod writes;
