//! The HTTP face of administration: each handler checks who is calling and
//! calls the function in [`super`] that the command line calls too.

mod devices;
mod import;
mod review;
mod units;

use axum::Router;
use axum::routing::{get, post, put};

use crate::http::AppState;

pub use devices::DeviceView;

/// The admin and device routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/org-units",
            get(units::list_units).post(units::post_unit),
        )
        .route("/v1/admin/org-units/{id}/move", post(units::post_move_unit))
        .route(
            "/v1/admin/users",
            get(units::list_users).post(units::post_user),
        )
        .route("/v1/admin/users/{id}/role", put(units::put_role))
        .route("/v1/admin/users/{id}/password", put(units::put_password))
        .route("/v1/admin/audit", get(review::list_audit))
        .route("/v1/admin/quarantine", get(review::list_quarantine))
        .route(
            "/v1/admin/quarantine/{id}/approve",
            post(review::post_approve),
        )
        .route(
            "/v1/admin/quarantine/{id}/discard",
            post(review::post_discard),
        )
        .route("/v1/admin/import/households", post(import::post_import))
        .route(
            "/v1/admin/import/households/template",
            get(import::get_template),
        )
        .route("/v1/devices", get(devices::list_devices))
        .route("/v1/devices/{id}/revoke", post(devices::post_revoke))
}

/// The OpenAPI description of [`router`]'s routes (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    devices::list_devices,
    devices::post_revoke,
    units::list_units,
    units::post_unit,
    units::post_move_unit,
    units::list_users,
    units::post_user,
    units::put_role,
    units::put_password,
    review::list_audit,
    review::list_quarantine,
    review::post_approve,
    review::post_discard,
    import::post_import,
    import::get_template,
))]
pub struct Api;
