//! Importing a household ledger, and its template.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use crate::http::admin::{Actor, import_households};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiQuery, AppState};

/// `POST /v1/admin/import/households`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The grid that rows naming no grid (column 网格) go to; an org unit
    /// of kind `grid` in the admin's area.
    pub org_unit: String,
    /// Only check the ledger and report what the import would do (the
    /// default); `false` imports.
    #[serde(default = "yes")]
    pub dry_run: bool,
}

fn yes() -> bool {
    true
}

/// Import a household ledger
///
/// An office's household ledger (一户一档), one row per person, the rows of
/// a household sharing its number (户编号): XLSX (recognised by its
/// content) or CSV in UTF-8, with the columns of the template
/// (`GET /v1/admin/import/households/template`). A household is imported
/// whole or not at all; every row not imported is listed with its reason.
/// `dry_run=true` (the default) only reports; `dry_run=false` imports.
/// Imported households are records like any other: workers' phones
/// receive them at their next sync. Importing the same ledger again
/// imports nothing twice (`already_imported`). Admins only, into grids of
/// their own area.
#[utoipa::path(
    post,
    path = "/v1/admin/import/households",
    operation_id = "importHouseholds",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(ImportQuery),
    request_body(content = crate::http::schemas::Xlsx,
        description = "The ledger: an XLSX workbook (first sheet) or a UTF-8 CSV file.",
        content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "What the import did, or for a dry run would do.",
            body = crate::http::import::ImportReport,
            example = json!({"dry_run": true, "rows": 5, "households": 2, "members": 3,
                "already_imported": 0, "refused": [{"row": 4, "column": "身份证号",
                "code": "bad_id_number",
                "message": "110101199003074515: its check digit does not match: a digit is wrong"}],
                "imported": ["hh_6f0c2a7e41d85c6a1f0b2e3b9f0c2a7e", "hh_1d85c6a1f0b2e3b9f0c2a7e46f0c2a7e"]})),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOnly),
        (status = 404, description = "`org_unit` is not a grid of the admin's area.",
            body = crate::http::schemas::NotFoundError,
            example = json!({"code": "not_found", "message": "grid not found"})),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 422, description = "The file is not a ledger: not a readable workbook or UTF-8 \
            CSV, empty, without a required column, or over 100,000 rows.",
            body = crate::http::schemas::InvalidFieldError,
            example = json!({"code": "invalid_field",
                "message": "file: lacks the column(s) 户编号: the first row must name the columns as the template does"})),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
pub(super) async fn post_import(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: axum::body::Bytes,
) -> Result<Json<crate::http::import::ImportReport>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let importer = crate::http::import::Importer {
        auth,
        area: actor.area.clone().unwrap_or_default(),
    };
    let file = (q.org_unit.as_str(), body.as_ref());
    let report = import_households(&state, &actor, &importer, file, q.dry_run, |_, _| {}).await?;
    Ok(Json(report))
}

/// `GET /v1/admin/import/households/template`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// `xlsx` (the default) or `csv`.
    #[serde(default = "xlsx")]
    pub format: crate::export::Format,
}

fn xlsx() -> crate::export::Format {
    crate::export::Format::Xlsx
}

/// Download the ledger template
///
/// The household ledger's columns, with Chinese headers, and an example
/// household of two people: fill it in and import it. Columns: 户编号
/// (required; rows of one household share it), 网格 (a grid id; empty for
/// the grid imported into), 楼栋, 单元, 房号 (at least one), 姓名
/// (required), 身份证号 (18 characters with a valid check digit; keep the
/// column as text), 性别 (男/女; empty: from the ID number), 出生日期
/// (YYYY-MM-DD; empty: from the ID number), 与户主关系 (户主, 配偶, 子女,
/// 父母, 孙子女, 兄弟姐妹, 其他), 联系电话, 户籍类型 (户籍, 流动, 常住), 标签
/// (孤寡老人, 留守儿童, 残障人士, 低保户, 退役军人; several separated by
/// 、 or ;), 备注.
#[utoipa::path(
    get,
    path = "/v1/admin/import/households/template",
    operation_id = "householdLedgerTemplate",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(TemplateQuery),
    responses(
        (status = 200, description = "The template.",
            content(
                (crate::http::schemas::Xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                (crate::http::schemas::Csv = "text/csv"),
            )),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOnly),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
pub(super) async fn get_template(
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> Result<axum::response::Response, AppError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    auth.require_admin()?;
    let format = match q.format {
        crate::export::Format::Json => crate::export::Format::Xlsx,
        f => f,
    };
    let disposition = format!(
        "attachment; filename=\"household-ledger.{}\"",
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.media_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        crate::http::import::template(format),
    )
        .into_response())
}
