//! `api-spec/openapi.yaml` is generated from the code: these tests fail
//! when the checked-in file differs from what the code generates, or when a
//! route the router serves is not described.
//!
//! To accept the generated text:
//! `UPDATE_API_SPEC=1 cargo test -p gridsync-server --test openapi`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use utoipa::OpenApi;

const UPDATE_HINT: &str = "run `UPDATE_API_SPEC=1 cargo test -p gridsync-server --test openapi` \
     to regenerate it, then review and commit the change";

fn spec_path() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../api-spec/openapi.yaml")
}

#[test]
fn checked_in_spec_is_the_generated_one() {
    let generated = gridsync_server::http::openapi::yaml();
    let path = spec_path();
    if std::env::var_os("UPDATE_API_SPEC").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, &generated).expect("write api-spec/openapi.yaml");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != generated {
        let line = on_disk
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(generated.lines().count()));
        panic!(
            "api-spec/openapi.yaml is not what the code generates (first difference at line {}: \
             file has {:?}, code gives {:?}); {UPDATE_HINT}",
            line + 1,
            on_disk.lines().nth(line).unwrap_or("<end of file>"),
            generated.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// Every `.route("PATH", METHOD(handler)…)` in `server/src`, as
/// `(method, path)`.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut files =
        vec![Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("src")];
    let mut routes = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read server/src") {
                files.push(entry.expect("directory entry").path());
            }
            continue;
        }
        // The web apps' files (`/app/`, `/console/`) are pages, not the API.
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("apps.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        // The route call may be split over lines by rustfmt.
        let flat: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(".route( \"", ".route(\"");
        for call in flat.split(".route(\"").skip(1) {
            let Some((route, rest)) = call.split_once('"') else {
                continue;
            };
            // The method router, up to the closing parenthesis of `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = rest[..end]
                    .match_indices(&format!("{method}("))
                    .any(|(i, _)| {
                        i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                if called {
                    routes.insert((method.to_owned(), route.to_owned()));
                }
            }
        }
    }
    routes
}

#[test]
fn every_route_is_described() {
    let doc = gridsync_server::http::openapi::ApiDoc::openapi();
    let mut described = BTreeSet::new();
    for (path, item) in doc.paths.paths {
        let methods = [
            ("get", item.get.is_some()),
            ("post", item.post.is_some()),
            ("put", item.put.is_some()),
            ("patch", item.patch.is_some()),
            ("delete", item.delete.is_some()),
        ];
        for (method, present) in methods {
            if present {
                described.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let served = routes_in_source();
    assert!(
        served.len() >= 20,
        "found only {} routes in server/src; has the way routes are declared changed?",
        served.len()
    );
    let undescribed: Vec<_> = served.difference(&described).collect();
    assert!(
        undescribed.is_empty(),
        "routes without #[utoipa::path] (or not listed in their module's `Api`): {undescribed:?}; \
         see the module documentation of server/src/http/openapi.rs"
    );
    let unserved: Vec<_> = described.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "operations described but not routed: {unserved:?}"
    );
}

#[test]
fn every_operation_lists_its_errors() {
    let doc = gridsync_server::http::openapi::ApiDoc::openapi();
    let tags: BTreeSet<String> = gridsync_server::http::openapi::tags().into_iter().collect();
    for (path, item) in &doc.paths.paths {
        let operations = [&item.get, &item.post, &item.put, &item.patch, &item.delete];
        for operation in operations.into_iter().flatten() {
            let id = operation.operation_id.clone().unwrap_or_default();
            assert!(!id.is_empty(), "{path}: no operation_id");
            let statuses: BTreeSet<&str> = operation
                .responses
                .responses
                .keys()
                .map(String::as_str)
                .collect();
            assert!(statuses.contains("405"), "{id}: 405 not listed");
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(
                    statuses.contains("401"),
                    "{id}: needs a token but lists no 401"
                );
                assert!(statuses.contains("500"), "{id}: 500 not listed");
            }
            for tag in operation.tags.iter().flatten() {
                assert!(tags.contains(tag), "{id}: tag {tag:?} is not declared");
            }
            assert!(
                operation.summary.as_ref().is_some_and(|s| !s.is_empty()),
                "{id}: no summary (the first line of the handler's doc comment)"
            );
        }
    }
}

#[test]
fn error_codes_are_the_ones_the_server_answers() {
    use gridsync_server::http::error::AppError;
    let doc = serde_json::to_value(gridsync_server::http::openapi::ApiDoc::openapi())
        .expect("the document serializes");
    let listed: BTreeSet<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect();
    let answered = [
        AppError::Unauthorized("x"),
        AppError::BadCredentials,
        AppError::DeviceRevoked,
        AppError::BadJson("x".into()),
        AppError::Invalid {
            field: "x",
            problem: "x".into(),
        },
        AppError::BadQuery("x".into()),
        AppError::BadSyncMessage("x".into()),
        AppError::UnsupportedVersion("x".into()),
        AppError::UnsupportedMediaType("x"),
        AppError::UnsupportedEncoding,
        AppError::TooLarge,
        AppError::Conflict("x"),
        AppError::Refused("x".into()),
        AppError::Forbidden("x".into()),
        AppError::NotFound,
        AppError::Missing("x"),
        AppError::MethodNotAllowed,
        AppError::internal("x"),
        AppError::busy(),
        AppError::RateLimited { retry_after: 1 },
        AppError::TimedOut,
        AppError::BodyTimeout,
        AppError::TooManyStreams(1),
    ];
    for error in &answered {
        let (_, code) = error.status_and_code();
        let code = serde_json::to_value(code).expect("a code serializes");
        assert!(
            listed.contains(code.as_str().unwrap_or_default()),
            "{code} is not in the ErrorCode schema"
        );
    }
    // `GET /healthz` answers this one itself.
    assert!(listed.contains("database_unavailable"));
}

#[test]
fn roles_are_the_policys() {
    let doc = serde_json::to_value(gridsync_server::http::openapi::ApiDoc::openapi())
        .expect("the document serializes");
    let listed: Vec<&str> = doc["components"]["schemas"]["Role"]["enum"]
        .as_array()
        .expect("Role is an enum")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect();
    let roles: Vec<&str> = sync_core::policy::Role::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(listed, roles);
}

#[test]
fn every_reference_resolves() {
    let doc = serde_json::to_value(gridsync_server::http::openapi::ApiDoc::openapi())
        .expect("the document serializes");
    let mut refs = Vec::new();
    let mut stack = vec![&doc];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                    refs.push(r.clone());
                }
                stack.extend(map.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').expect("a local reference");
        assert!(
            doc.pointer(pointer).is_some(),
            "{r} points nowhere: register the schema or response in ApiDoc's `components`"
        );
    }
}
