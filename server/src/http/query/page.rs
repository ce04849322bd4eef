//! How a list is answered: keyset pages with cursors that name their
//! sort, or every row from the cursor on as a CSV or XLSX file streamed
//! while it is read.

use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::export::{Encoder, Format, Lang, Tabular, Value};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::storage::query::{
    After, CaseItem, HouseholdItem, Page, SortKey, SortKeyColumn, VisitItem,
};

/// Rows per page unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 100;
/// Most rows per page.
const MAX_LIMIT: i64 = 1000;
/// Rows fetched per database round trip while an export streams.
const EXPORT_PAGE: i64 = 500;
/// Data rows a worksheet holds besides its header row and a closing note.
const XLSX_MAX_ROWS: usize = 1_048_576 - 2;

/// A page of a list.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListPage<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The sorts a list allows: name, SQL expression, whether numeric.
pub(super) type Sorts = &'static [(&'static str, &'static str, bool)];

/// Reads `sort` (a name, `-` first for descending), `limit` and `cursor`.
pub(super) fn page(
    sorts: Sorts,
    sort: Option<&str>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page, AppError> {
    let requested = sort.unwrap_or(sorts[0].0);
    let (desc, name) = match requested.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, requested),
    };
    let Some(&(_, expr, numeric)) = sorts.iter().find(|(n, _, _)| *n == name) else {
        let names: Vec<&str> = sorts.iter().map(|(n, _, _)| *n).collect();
        return Err(AppError::Invalid {
            field: "sort",
            problem: format!("must be one of {}, optionally after -", names.join(", ")),
        });
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::Invalid {
            field: "limit",
            problem: format!("must be between 1 and {MAX_LIMIT}"),
        });
    }
    let after = cursor
        .map(|c| decode_cursor(c, requested, numeric))
        .transpose()?;
    Ok(Page {
        sort: expr,
        numeric,
        desc,
        limit,
        after,
    })
}

/// A cursor names the sort it was made for, so that it cannot be replayed
/// against another.
#[derive(Serialize, Deserialize)]
struct CursorBody {
    sort: String,
    key: SortKey,
    id: String,
}

fn encode_cursor(sort: &str, key: SortKey, id: &str) -> String {
    let body = CursorBody {
        sort: sort.to_owned(),
        key,
        id: id.to_owned(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

fn decode_cursor(cursor: &str, sort: &str, numeric: bool) -> Result<After, AppError> {
    let bad = || AppError::Invalid {
        field: "cursor",
        problem: "is not a cursor this list issued for this sort".into(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let key_fits = matches!(
        (&body.key, numeric),
        (SortKey::Int(_), true) | (SortKey::Text(_), false)
    );
    if body.sort != sort || !key_fits {
        return Err(bad());
    }
    Ok(After {
        key: body.key,
        id: body.id,
    })
}

/// A row of a keyset-paged list.
pub(super) trait Listed {
    fn id(&self) -> &str;
    fn sort_key(&self) -> &SortKeyColumn;
}

macro_rules! listed {
    ($($t:ty),*) => {$(
        impl Listed for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn sort_key(&self) -> &SortKeyColumn {
                &self.sort_key
            }
        }
    )*};
}
listed!(HouseholdItem, CaseItem, VisitItem);

/// Trims the extra row a query fetched and makes the cursor after the page.
fn finish_page<T: Listed>(mut items: Vec<T>, page: &Page, sort: &str) -> ListPage<T> {
    let more = items.len() as i64 > page.limit;
    items.truncate(page.limit as usize);
    let next_cursor = more
        .then(|| items.last())
        .flatten()
        .and_then(|last| Some(encode_cursor(sort, last.sort_key().0.clone()?, last.id())));
    ListPage { items, next_cursor }
}

/// What a list query asked for, beyond its filters.
pub(super) struct Listing<'a> {
    pub(super) format: Format,
    pub(super) lang: Lang,
    /// The list's name, for the file and sheet.
    pub(super) name: &'static str,
    /// The sort asked for, as named in the query.
    pub(super) sort: &'a str,
    /// Whether the caller sees sensitive columns.
    pub(super) sensitive: bool,
}

pub(super) type Fetch<T> =
    Box<dyn Fn(Page) -> Pin<Box<dyn Future<Output = Result<Vec<T>, AppError>> + Send>> + Send>;

/// The headers of a file answer: its type, and a file name for saving it.
fn file_headers(format: Format, name: &str) -> [(header::HeaderName, String); 2] {
    let disposition = format!("attachment; filename=\"{name}.{}\"", format.extension());
    [
        (header::CONTENT_TYPE, format.media_type().to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
    ]
}

/// A short list answered whole: as JSON, or as a file of every row, with
/// the columns only roles with sensitive rights see when `sensitive`.
pub(super) fn whole<T: Tabular + Serialize>(
    rows: Vec<T>,
    (format, lang, name): (Format, Lang, &str),
    sensitive: bool,
    utc_offset_minutes: i32,
) -> Response {
    if format == Format::Json {
        return axum::Json(rows).into_response();
    }
    let headers: Vec<&str> = T::columns(sensitive)
        .into_iter()
        .map(|c| c.header(lang))
        .collect();
    let (mut encoder, mut out) = Encoder::start(format, name, &headers);
    for row in &rows {
        out.extend(encoder.row(&row.cells(sensitive, utc_offset_minutes)));
    }
    out.extend(encoder.finish());
    (file_headers(format, name), out).into_response()
}

/// Answers a list query: one JSON page, or every row from the cursor on
/// as a streamed file.
pub(super) async fn answer<T>(
    state: &AppState,
    list: Listing<'_>,
    page: Page,
    fetch: Fetch<T>,
) -> Result<Response, AppError>
where
    T: Listed + Tabular + Serialize + Send + 'static,
{
    let Listing {
        format,
        lang,
        name,
        sort,
        sensitive,
    } = list;
    if format == Format::Json {
        let items = fetch(page.clone()).await?;
        return Ok(axum::Json(finish_page(items, &page, sort)).into_response());
    }
    let offset = state.engine.config.utc_offset_minutes;
    let headers: Vec<&str> = T::columns(sensitive)
        .into_iter()
        .map(|c| c.header(lang))
        .collect();
    // The first page is read before answering, so that a failing query is
    // still answered with an error status.
    let first_page = Page {
        limit: EXPORT_PAGE,
        ..page
    };
    let first = fetch(first_page.clone()).await?;
    let (encoder, head) = Encoder::start(format, name, &headers);
    struct Export<T> {
        fetch: Fetch<T>,
        page: Page,
        rows: Option<Vec<T>>,
        encoder: Option<Encoder>,
        /// Rows this file may still take.
        room: usize,
    }
    let start = Export {
        fetch,
        page: first_page,
        rows: Some(first),
        encoder: Some(encoder),
        room: match format {
            Format::Xlsx => XLSX_MAX_ROWS,
            _ => usize::MAX,
        },
    };
    let rest = futures_util::stream::unfold(start, move |mut ex| async move {
        let mut encoder = ex.encoder.take()?;
        let rows = match ex.rows.take() {
            Some(rows) => rows,
            None => match (ex.fetch)(ex.page.clone()).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped");
                    return Some((Err(std::io::Error::other(e.to_string())), ex));
                }
            },
        };
        let mut more = rows.len() as i64 > ex.page.limit;
        let mut out = Vec::new();
        for row in rows.iter().take(ex.page.limit as usize) {
            if ex.room == 0 {
                let note = "… more rows than a worksheet holds: narrow the filters or export CSV";
                out.extend(encoder.row(&[Value::from(note)]));
                more = false;
                break;
            }
            out.extend(encoder.row(&row.cells(sensitive, offset)));
            ex.room -= 1;
        }
        match rows.get(ex.page.limit as usize - 1).filter(|_| more) {
            Some(last) => {
                ex.page.after = last.sort_key().0.clone().map(|key| After {
                    key,
                    id: last.id().to_owned(),
                });
                ex.encoder = Some(encoder);
            }
            None => out.extend(encoder.finish()),
        }
        Some((Ok::<_, std::io::Error>(out), ex))
    });
    // Fused: a body may be polled again after it ended (compression does),
    // and an ended `unfold` must not be.
    let body = futures_util::StreamExt::fuse(futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(head) }),
        rest,
    ));
    Ok((file_headers(format, name), Body::from_stream(body)).into_response())
}
