//! Extractors whose rejections are problem details.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

use market_data::domain::bounded::parse_bounded;

use crate::problem::Problem;

/// The query parameter `name` as a whole number within `range`, or `default` when absent or
/// blank; anything else is a 400 problem in the one wording every bounded number uses.
pub fn bounded_param<T>(
    name: &str,
    raw: Option<&str>,
    default: T,
    range: RangeInclusive<T>,
) -> Result<T, Problem>
where
    T: FromStr + PartialOrd + Display,
{
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(default),
        Some(raw) => parse_bounded(raw, range)
            .map_err(|e| Problem::bad_parameter(format!("invalid `{name}`: {e}"))),
    }
}

/// Like [`axum::extract::Query`], but a malformed query string is a 400 problem.
pub struct ProblemQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ProblemQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| Problem::bad_parameter(e.body_text()))
    }
}
