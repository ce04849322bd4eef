//! Extractors whose rejections are answered like every other error.

use axum::extract::{FromRequest, FromRequestParts};

use crate::http::error::AppError;

/// A query string whose rejections are answered like every other error.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// A JSON body whose rejections are answered like every other error.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);
