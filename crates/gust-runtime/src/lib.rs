//! Runtimes inside execution environments: the per-environment Runtime API server
//! ([`api`]), Gust's own bootstraps for Python and Node.js (embedded in the binary and
//! written to the data directory at start), the registry that says how to start a
//! runtime ([`registry`]) on the interpreter found for its id ([`discover`]), and what
//! `gust runtimes install` installs ([`install`]: Node.js releases and the AWS SDKs).

pub mod api;
pub mod discover;
pub mod extensions;
pub mod install;
pub mod registry;
pub mod telemetry;

pub use api::{
    Closed, InitOutcome, Invocation, InvocationResult, PeerCheck, RestoreOutcome, RuntimeApi,
    StreamFailure, StreamPart, StreamedResponse, MAX_RESPONSE_BYTES, MAX_STREAMED_BYTES,
};
pub use registry::{
    Launch, LaunchError, RegistryConfig, RegistryError, RuntimeRegistry, RuntimeStatus, SdkStatus,
    View,
};
