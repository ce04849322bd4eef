//! The web apps the server hands to browsers: the field app at `/app/`
//! (grid workers' phones) and the console at `/console/` (supervisors, desk
//! staff and admins).
//!
//! Their files are built ahead of time (`apps/build.sh`), committed, and
//! embedded in the binary, so that `gridsync serve` alone serves them with
//! nothing else installed. Each file is answered with its content type, a
//! strong `ETag` (its SHA-256), `Cache-Control: no-cache` (a browser keeps
//! a copy but asks whether it is still current: a `304` when it is), and a
//! content security policy that lets a page load only the server's own
//! scripts, its WebAssembly and its own API.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::http::error::AppError;

/// The field app's files (`apps/field`).
static FIELD: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../apps/field");

/// The console's files (`apps/console`).
static CONSOLE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../apps/console");

/// Where the scripts of a served page may come from and talk to. WebAssembly
/// needs `wasm-unsafe-eval` to be compiled; the apps' UI library sets
/// inline styles.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
     worker-src 'self'; manifest-src 'self'; base-uri 'self'; frame-ancestors 'none'";

/// The routes of every web app.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route(
            "/app/",
            get(|h: HeaderMap| async move { serve(field(), &h, "index.html") }),
        )
        .route(
            "/app/{*path}",
            get(|h: HeaderMap, Path(path): Path<String>| async move { serve(field(), &h, &path) }),
        )
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|h: HeaderMap| async move { serve(console(), &h, "index.html") }),
        )
        .route(
            "/console/{*path}",
            get(
                |h: HeaderMap, Path(path): Path<String>| async move { serve(console(), &h, &path) },
            ),
        )
}

/// One embedded file: its bytes and the ETag computed from them once.
struct Asset {
    bytes: &'static [u8],
    etag: HeaderValue,
}

type Assets = HashMap<&'static str, Asset>;

fn field() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| assets(&FIELD))
}

fn console() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| assets(&CONSOLE))
}

/// Every file of an app by path, with its ETag.
fn assets(root: &'static Dir<'static>) -> Assets {
    let mut out = HashMap::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        dirs.extend(dir.dirs());
        for file in dir.files() {
            let Some(path) = file.path().to_str() else {
                continue;
            };
            let digest = hex::encode(Sha256::digest(file.contents()));
            let etag = HeaderValue::from_str(&format!("\"{}\"", &digest[..32]))
                .expect("hex is a valid header value");
            out.insert(
                path,
                Asset {
                    bytes: file.contents(),
                    etag,
                },
            );
        }
    }
    out
}

fn serve(assets: &Assets, headers: &HeaderMap, path: &str) -> Response {
    let Some(asset) = assets.get(path) else {
        return AppError::NotFound.into_response();
    };
    let mut response = if headers.get(IF_NONE_MATCH) == Some(&asset.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(ETAG, asset.etag.clone());
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The content type of an app file, by its extension: the apps hold only
/// these kinds of file.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_app_and_its_webassembly_are_embedded() {
        for path in [
            "index.html",
            "pkg/gridsync_web.js",
            "pkg/gridsync_web_bg.wasm",
        ] {
            assert!(field().contains_key(path), "{path} is not embedded");
        }
        assert!(console().contains_key("index.html"));
        assert_eq!(content_type("pkg/gridsync_web_bg.wasm"), "application/wasm");
    }
}
