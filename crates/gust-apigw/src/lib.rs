//! Gust's API Gateway v2 HTTP APIs (`apigatewayv2`), the control plane, per account:
//!
//! - APIs (`ProtocolType` `HTTP` only; WebSocket APIs are refused), their CORS
//!   configuration and tags. Quick create (`Target`) makes a Lambda proxy integration, a
//!   route to it and the auto-deploying `$default` stage, as API Gateway does.
//! - Routes: `$default` or `METHOD /path` with literal segments, `{variables}` and a final
//!   greedy `{variable+}`; `NONE` or `AWS_IAM` authorization.
//! - Integrations: Lambda proxy (`AWS_PROXY`) only, the URI a function ARN (qualified or
//!   not) or API Gateway's `…:lambda:path/2015-03-31/functions/{arn}/invocations` form,
//!   payload format 1.0 or 2.0, a timeout of 50 ms to 30 s.
//! - Stages (`$default` or named) with stage variables and route settings (kept and
//!   answered, not enforced), and deployments: a deployment is a snapshot of the routes and
//!   integrations; a stage without `AutoDeploy` serves its deployment's snapshot, a stage
//!   with `AutoDeploy` the current routes (API Gateway redeploys it on every change).
//!
//! No HTTP: the API layer's REST-JSON adapter turns requests into [`Apigw`] calls, and the
//! HTTP data plane asks [`Apigw::resolve`] which route, integration and stage serve a
//! request ([`routing`] has the precedence rules). Everything is kept in memory and written
//! through to an [`ApigwStore`] (SQLite by default, `apigw.db`) before an operation
//! returns; the tables requests are matched against are recompiled after each change, so
//! serving never reads the store nor waits for a change being committed. Time comes from
//! the injected [`gust_model::Clock`].

pub mod error;
pub mod model;
pub mod routing;
mod service;
pub mod sqlite;
pub mod store;

pub use error::ApigwError;
pub use model::{
    Api, ApiInput, CorsConfiguration, Deployment, Integration, IntegrationInput, Page, Paged,
    Route, RouteInput, RouteSettings, Stage, StageInput, DEFAULT,
};
pub use routing::{Resolved, ResolvedIntegration, Serving};
pub use service::Apigw;
pub use store::ApigwStore;

#[cfg(test)]
mod tests;
