pub fn placeholder() {}
pub mod schema;
pub mod table;
pub mod openapi;
pub mod rollout;
