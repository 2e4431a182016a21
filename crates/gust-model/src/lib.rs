//! Gust's domain vocabulary: function names, ARNs, qualifiers, runtimes, limits and the
//! function configuration, with the validation rules AWS Lambda applies to them.
//!
//! This crate owns *what is valid*; it does no I/O, knows no HTTP shapes and no storage
//! format. Wire DTOs live in `gust-api`, stored records in `gust-store`.
#![warn(missing_docs)]

pub mod clock;
pub mod error;
pub mod event_invoke;
pub mod function;
pub mod http;
pub mod layer;
pub mod limits;
pub mod mapping;
pub mod names;
pub mod notification;
pub mod observe;
pub mod pattern;
pub mod policy;
pub mod runtime;
pub mod schedule;
pub mod tags;
pub mod targets;
pub mod trace;
pub mod version;

pub use clock::{Clock, SystemClock};
pub use error::{ConstraintViolation, ModelError};
pub use function::{
    Architecture, CodeDigest, CodeRef, CreateFunction, EnvironmentVariables, FunctionConfig,
    FunctionState, FunctionUpdate, InvalidTransition, LastUpdateStatus, LogFormat, LogLevels,
    TracingMode,
};
pub use layer::{FunctionLayer, LayerRef, LayerSettings, LayerVersion, LayerVersionArn};
pub use names::{FunctionName, FunctionRef, IdKind, Qualifier, Scope};
pub use runtime::{Runtime, RuntimeCatalog, RuntimeFamily};
pub use tags::Tags;
pub use version::{Alias, AliasUpdate, FunctionVersion};
