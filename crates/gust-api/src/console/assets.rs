//! The console's front-end files, embedded so the binary needs nothing beside it. With
//! `GUST_CONSOLE_DIR` set (a development aid), they are read from that directory on every
//! request instead, so the front-end can be changed without rebuilding.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

/// Only scripts and styles from this origin, no inline script or style elements, no
/// framing; the API is the only place the page talks to.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// Vendored files change only with their pinned version; the app's own files are
    /// revalidated on each load so a new binary's console is picked up at once.
    immutable: bool,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../console/index.html"),
        immutable: false,
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/app.js"),
        immutable: false,
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../console/app.css"),
        immutable: false,
    },
    Asset {
        name: "vendor/uPlot.esm.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/vendor/uPlot.esm.js"),
        immutable: true,
    },
    Asset {
        name: "vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../console/vendor/uPlot.min.css"),
        immutable: true,
    },
    Asset {
        name: "vendor/LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../console/vendor/LICENSE"),
        immutable: true,
    },
];

/// Serves one of the console's files by name (`index.html`, `app.js`, `vendor/…`).
pub(super) fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return super::error(StatusCode::NOT_FOUND, "NotFound", "No such console file.");
    };
    // Only names from the table above reach the disk, so no path is taken from the URL.
    let bytes = match std::env::var_os("GUST_CONSOLE_DIR") {
        Some(dir) => match std::fs::read(std::path::Path::new(&dir).join(asset.name)) {
            Ok(bytes) => bytes,
            Err(_) => asset.bytes.to_vec(),
        },
        None => asset.bytes.to_vec(),
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.immutable {
            "public, max-age=86400"
        } else {
            "no-cache"
        }),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}
