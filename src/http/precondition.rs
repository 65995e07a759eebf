//! Conditional requests on a customer (RFC 9110 section 13): its version as the entity tag
//! (`"7"`), and `If-Match` read as HTTP defines it. The desk's phone change and the portal's
//! profile update both require it.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::domain::ExpectedVersion;
use crate::http::error::{ApiError, Reason};

/// A customer's version as an entity tag: `"3"`.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::try_from(format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The versions `If-Match` names (RFC 9110 section 13.1.1): required (428 without); `*`, or a
/// list of entity tags over any number of header lines. A strong tag matches the customer's
/// version when it is that version's ETag (`"7"`); a weak tag (`W/"7"`) never matches for a
/// change, and neither does a well-formed tag of another shape (`"stale-0"`): both end in 412.
/// Only a header that is not HTTP's syntax is 400.
pub fn if_match(headers: &HeaderMap) -> Result<ExpectedVersion, ApiError> {
    let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
    if values.peek().is_none() {
        return Err(ApiError::PreconditionRequired);
    }
    parse_if_match(values.map(|v| v.as_bytes()))
        .ok_or_else(|| ApiError::invalid("If-Match", Reason::ETag))
}

/// `If-Match`'s field values as one list; `None` when they are not its syntax.
fn parse_if_match<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<ExpectedVersion> {
    let ows = |s: &'a [u8]| -> &'a [u8] {
        let n = s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
        &s[n..]
    };
    let (mut stars, mut tags, mut versions) = (0, 0, Vec::new());
    for value in values {
        let mut rest = ows(value);
        // Elements separated by commas; empty elements are allowed (section 5.6.1).
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix(b",") {
                rest = ows(after);
                continue;
            }
            if let Some(after) = rest.strip_prefix(b"*") {
                stars += 1;
                rest = after;
            } else {
                let weak = rest.starts_with(b"W/");
                let quoted = rest.get(usize::from(weak) * 2..)?.strip_prefix(b"\"")?;
                let end = quoted.iter().position(|&b| b == b'"')?;
                let opaque = &quoted[..end];
                // etagc: %x21 / %x23-7E / obs-text
                if !opaque
                    .iter()
                    .all(|&b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
                {
                    return None;
                }
                tags += 1;
                if !weak && let Some(version) = version_tag(opaque) {
                    versions.push(version);
                }
                rest = &quoted[end + 1..];
            }
            rest = ows(rest);
            match rest.first() {
                None => {}
                Some(b',') => rest = ows(&rest[1..]),
                Some(_) => return None,
            }
        }
    }
    match (stars, tags) {
        (1, 0) => Some(ExpectedVersion::Any),
        (0, 1..) => Some(ExpectedVersion::OneOf(versions)),
        // Empty, `*` twice, or `*` beside tags.
        _ => None,
    }
}

/// The version an ETag's opaque part names, as the service writes it (`7`, no sign, no
/// leading zero); strong comparison is by characters, so `07` is another tag.
fn version_tag(opaque: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(opaque).ok()?;
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Option<ExpectedVersion> {
        parse_if_match(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn if_match_is_read_as_http_defines_it() {
        use ExpectedVersion::{Any, OneOf};
        assert_eq!(parse(&["\"7\""]), Some(OneOf(vec![7])));
        assert_eq!(parse(&["*"]), Some(Any));
        assert_eq!(parse(&[" \"1\" , \"5\","]), Some(OneOf(vec![1, 5])));
        assert_eq!(parse(&["\"1\"", "\"5\""]), Some(OneOf(vec![1, 5])));
        // Well-formed tags that name no version of ours, and weak tags, match nothing.
        assert_eq!(parse(&["\"stale-0\""]), Some(OneOf(vec![])));
        assert_eq!(parse(&["W/\"7\""]), Some(OneOf(vec![])));
        assert_eq!(parse(&["\"07\", \"\""]), Some(OneOf(vec![])));
        assert_eq!(parse(&["\"a,b\""]), Some(OneOf(vec![])));
        // Not HTTP's syntax.
        for broken in [
            "7",
            "",
            " , ",
            "\"7",
            "\"7\" \"8\"",
            "*, \"7\"",
            "**",
            "w/\"7\"",
            "\"a b\"",
        ] {
            assert_eq!(parse(&[broken]), None, "{broken:?}");
        }
    }
}
