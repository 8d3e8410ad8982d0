//! Wire types of protocol v1 (SPEC.md): every command a client writes, every
//! frame the host writes, and the error codes. Nothing here acts; the host
//! decides, the engine streams, and both speak in these types.
//!
//! - `command`: the one list of commands, their fields, and the decoder.
//! - `response`: the typed body of each command's `response`.
//! - `event`: `ready`, turn events and permission frames.
//! - `error`: `error` frames and [`ErrorCode`].
//! - `plan`: the plan the model keeps (`todo_write`), as frames and state
//!   carry it.
//! - `settings`: the permission mode, a permission answer, the thinking
//!   level and a model entry: the session settings the wire names.
//! - [`schema`]: the JSON Schema of all of the above (`rpc schema`).

mod command;
mod error;
mod event;
mod plan;
mod response;
pub mod schema;
mod settings;

pub use command::*;
pub use error::*;
pub use event::*;
pub use plan::*;
pub use response::*;
pub use settings::*;

pub use crate::message::Usage;

/// The protocol version announced in `ready`.
pub const PROTOCOL_VERSION: u32 = 1;
