//! What a client of `rpc` relies on, checked against this build: the
//! quick start (`quick_start`), README.md's commands (`readme`), the
//! published JSON Schema both ways (`schema`), and the Python and
//! TypeScript bindings' own suites plus a real install
//! (`python_binding`, `typescript_binding`). One test binary; each module
//! says what it checks.

#[path = "../common/mod.rs"]
mod common;

mod fleet;
mod python_binding;
mod quick_start;
mod readme;
mod schema;
mod typescript_binding;
