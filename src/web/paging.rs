//! Query parameters of the queue routes: `limit` and `after` of
//! `/api/queues`, `points` of `/api/queues/{id}`. A bad value is a 400 with
//! a JSON body naming the parameter; unknown parameters are ignored.

use actix_web::{web, HttpResponse};

/// Queues per page of `/api/queues`: the default and the largest `limit`.
pub(super) const MAX_LIMIT: usize = 1000;
/// Digits a number parameter may have (so it cannot overflow).
const MAX_DIGITS: usize = 9;

/// A query parameter that cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadParameter {
    pub name: &'static str,
    pub detail: String,
}

impl BadParameter {
    fn new(name: &'static str, detail: impl Into<String>) -> BadParameter {
        BadParameter {
            name,
            detail: detail.into(),
        }
    }

    /// `400 {"error":"bad_request","parameter":"limit","detail":"..."}`.
    pub(super) fn response(&self) -> HttpResponse {
        HttpResponse::BadRequest().json(serde_json::json!({
            "error": "bad_request",
            "parameter": self.name,
            "detail": self.detail,
        }))
    }
}

/// What page of `/api/queues` is asked for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Paging {
    /// Only ids sorting after this one.
    pub after: Option<String>,
    /// At most this many (1 to [`MAX_LIMIT`]; [`MAX_LIMIT`] unless given).
    pub limit: usize,
}

/// `limit` and `after` of `query` (the raw query string).
pub(super) fn paging(query: &str) -> Result<Paging, BadParameter> {
    let params = params(query)?;
    let limit = match single(&params, "limit")? {
        None => MAX_LIMIT,
        Some(text) => match number(text) {
            Some(n @ 1..=MAX_LIMIT) => n,
            _ => {
                return Err(BadParameter::new(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                ))
            }
        },
    };
    let after = match single(&params, "after")? {
        None => None,
        Some("") => {
            return Err(BadParameter::new(
                "after",
                "after must be a queue id (the last id of the previous page)",
            ))
        }
        Some(id) => Some(id.to_owned()),
    };
    Ok(Paging { after, limit })
}

/// `points` of `query`: the newest snapshots of the history to return.
pub(super) fn points(query: &str) -> Result<Option<usize>, BadParameter> {
    let params = params(query)?;
    match single(&params, "points")? {
        None => Ok(None),
        Some(text) => number(text).map(Some).ok_or_else(|| {
            BadParameter::new(
                "points",
                "points must be a whole number (the newest snapshots to return)",
            )
        }),
    }
}

/// The `Link` header value for the page after `last`: `path` with the same
/// `limit`, `rel="next"` (RFC 8288).
pub(super) fn next_link(path: &str, limit: usize, last: &str) -> String {
    format!(
        "<{path}?limit={limit}&after={}>; rel=\"next\"",
        encode_component(last)
    )
}

fn params(query: &str) -> Result<Vec<(String, String)>, BadParameter> {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .map(web::Query::into_inner)
        .map_err(|_| BadParameter::new("query", "the query string is malformed"))
}

/// The one value of `name`, if given; given twice is an error.
fn single<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<Option<&'a str>, BadParameter> {
    let mut values = params.iter().filter(|(n, _)| n == name);
    let first = values.next().map(|(_, v)| v.as_str());
    if values.next().is_some() {
        return Err(BadParameter::new(name, format!("{name} is given twice")));
    }
    Ok(first)
}

/// A plain decimal number (digits only, at most [`MAX_DIGITS`]).
fn number(text: &str) -> Option<usize> {
    let plain =
        !text.is_empty() && text.len() <= MAX_DIGITS && text.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| text.parse().ok()).flatten()
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_to_the_largest_page_from_the_start() {
        let all = Paging {
            after: None,
            limit: MAX_LIMIT,
        };
        assert_eq!(paging(""), Ok(all));
        assert_eq!(
            paging("limit=2&after=b%2Fc&x=1"),
            Ok(Paging {
                after: Some("b/c".into()),
                limit: 2
            })
        );
        assert_eq!(paging("limit=1000").map(|p| p.limit), Ok(1000));
    }

    #[test]
    fn bad_paging_names_the_parameter() {
        for (query, name) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=-1", "limit"),
            ("limit=+5", "limit"),
            ("limit=abc", "limit"),
            ("limit=", "limit"),
            ("limit=99999999999999999999", "limit"),
            ("limit=1&limit=2", "limit"),
            ("after=", "after"),
            ("after=a&after=b", "after"),
        ] {
            let error = paging(query).expect_err(query);
            assert_eq!(error.name, name, "{query}");
        }
        assert_eq!(points("points=x").unwrap_err().name, "points");
        assert_eq!(points("points=1e3").unwrap_err().name, "points");
        assert_eq!(points("points=7"), Ok(Some(7)));
        assert_eq!(points("points=0"), Ok(Some(0)));
        assert_eq!(points("other=1"), Ok(None));
    }

    #[test]
    fn the_next_link_encodes_the_id() {
        assert_eq!(
            next_link("/api/queues", 2, "a b/é"),
            "</api/queues?limit=2&after=a%20b%2F%C3%A9>; rel=\"next\""
        );
        assert_eq!(
            next_link("/x/api/queues", 1000, "0b6c3b7e-4f1d"),
            "</x/api/queues?limit=1000&after=0b6c3b7e-4f1d>; rel=\"next\""
        );
    }
}
