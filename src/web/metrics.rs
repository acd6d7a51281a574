//! `/metrics` in two formats: OpenMetrics for scrapers that ask for it, the
//! classic Prometheus text format (0.0.4) for everyone else. Both come from
//! the one OpenMetrics text the registry writes ([`Status::metrics_text`]):
//! prometheus-client has no encoder for the classic format, so
//! [`to_prometheus_text`] converts.
//!
//! [`Status::metrics_text`]: super::Status::metrics_text

/// The `Content-Type` of the classic Prometheus text answer.
pub(super) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition format of one `/metrics` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// OpenMetrics 1.0.0 text, as the registry writes it.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4.
    Prometheus,
}

impl Format {
    /// The format for a request with these `Accept` header values (several
    /// header lines count as one list).
    ///
    /// OpenMetrics only when the client names `application/openmetrics-text`
    /// (any version) with a q above 0, and not below the q it gives the
    /// classic text (`text/plain`, `text/*` or `*/*`); the classic text in
    /// every other case. So:
    ///
    /// - Prometheus 2.42 (like every 2.x before `scrape_protocols`) sends
    ///   `application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`
    ///   and gets OpenMetrics.
    /// - curl and wget send `Accept: */*` and get the classic text, so that
    ///   `curl -s http://127.0.0.1:9464/metrics | promtool check metrics`
    ///   passes: promtool reads the classic format only, and on OpenMetrics
    ///   it reports every counter ("no help text"), whose samples are
    ///   `x_total` while its HELP and TYPE name `x`.
    /// - No `Accept` at all means any type (RFC 9110), as `*/*`: the
    ///   classic text.
    /// - Only types we do not serve (`application/json`): the classic text
    ///   rather than 406, as anything reading `/metrics` reads that one.
    ///
    /// A wildcard never picks OpenMetrics: it must be asked for by name,
    /// as the Go client library (`promhttp`) does it.
    pub(super) fn negotiate<'a>(accept: impl IntoIterator<Item = &'a str>) -> Format {
        let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.into_iter().flat_map(|value| value.split(',')) {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let Some(q) = quality(parts) else {
                continue; // a malformed q: the range is ignored
            };
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                openmetrics = openmetrics.max(q);
            } else if ["text/plain", "text/*", "*/*"]
                .iter()
                .any(|m| media.eq_ignore_ascii_case(m))
            {
                text = text.max(q);
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// The `q` of a media range's parameters (1 without one); `None` when it is
/// not a number in 0..=1.
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> Option<f32> {
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            return value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q));
        }
    }
    Some(1.0)
}

/// The classic Prometheus text (0.0.4) of an OpenMetrics text as
/// prometheus-client writes it:
///
/// - a counter family `x` is `x_total` in its `# HELP` and `# TYPE` lines
///   (its samples already are `x_total`), and its `x_created` samples are
///   left out (the classic format has none);
/// - `# UNIT` lines and the final `# EOF` are left out (the unit is part of
///   the family name already);
/// - `unknown` families are `untyped`;
/// - exemplars (` # {…} value` after a sample) are left out.
///
/// Everything else (gauges, histograms, HELP texts, label sets, values) is
/// the same in both formats and passes as it is. Timestamps, which
/// prometheus-client does not write, are not converted (seconds in
/// OpenMetrics, milliseconds here).
pub(super) fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| *kind == "counter")
        .map(|(name, _)| name)
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some((keyword, rest)) = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|k| line.strip_prefix(k).map(|rest| (*k, rest)))
        {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let tail = if keyword == "# TYPE " && tail == "unknown" {
                "untyped"
            } else {
                tail
            };
            let total = if counters.contains(name) {
                "_total"
            } else {
                ""
            };
            out.push_str(&format!("{keyword}{name}{total} {tail}\n"));
            continue;
        }
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if name
            .strip_suffix("_created")
            .is_some_and(|family| counters.contains(family))
        {
            continue;
        }
        let labels_end = if line[name_end..].starts_with('{') {
            name_end + label_set_len(&line[name_end..])
        } else {
            name_end
        };
        let (head, rest) = line.split_at(labels_end);
        // After the label set nothing is quoted: ` # ` starts an exemplar.
        let rest = rest.split_once(" # ").map_or(rest, |(value, _)| value);
        out.push_str(head);
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// The length of the `{…}` label set at the start of `text`, up to and with
/// its closing brace (braces and ` # ` inside quoted values do not count);
/// all of `text` when it is not closed.
fn label_set_len(text: &str) -> usize {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return i + 1,
            _ => {}
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS_2_42: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn openmetrics_only_when_asked_for_by_name() {
        let negotiate = |values: &[&str]| Format::negotiate(values.iter().copied());
        for accept in [
            &[PROMETHEUS_2_42][..],
            &["application/openmetrics-text"],
            &["Application/OpenMetrics-Text; version=1.0.0; Q=0.9, text/plain;q=0.9"],
            &["text/plain;q=0.5", "application/openmetrics-text;q=0.6"],
        ] {
            assert_eq!(negotiate(accept), Format::OpenMetrics, "{accept:?}");
        }
        for accept in [
            &[][..],
            &["*/*"],
            &["text/plain"],
            &["text/plain;version=0.0.4"],
            &["text/*, application/openmetrics-text;q=0.5"],
            &["application/openmetrics-text;q=0"],
            &["application/openmetrics-text;q=oops"],
            &["application/openmetrics-text;q=2"],
            &["application/json"],
            &[""],
        ] {
            assert_eq!(negotiate(accept), Format::Prometheus, "{accept:?}");
        }
    }

    #[test]
    fn counters_get_total_and_openmetrics_lines_go() {
        let openmetrics = concat!(
            "# HELP app_polls Poll cycles, by outcome.\n",
            "# TYPE app_polls counter\n",
            "app_polls_total{outcome=\"success\"} 3\n",
            "app_polls_created{outcome=\"success\"} 1700000000.0\n",
            "# HELP app_wait_seconds Last wait.\n",
            "# TYPE app_wait_seconds gauge\n",
            "# UNIT app_wait_seconds seconds\n",
            "app_wait_seconds{queue_id=\"q\"} 12.5\n",
            "# HELP app_latency_seconds Latency.\n",
            "# TYPE app_latency_seconds histogram\n",
            "# UNIT app_latency_seconds seconds\n",
            "app_latency_seconds_sum 0.5\n",
            "app_latency_seconds_count 2\n",
            "app_latency_seconds_bucket{le=\"0.1\"} 1\n",
            "app_latency_seconds_bucket{le=\"+Inf\"} 2\n",
            "# HELP app_odd Something.\n",
            "# TYPE app_odd unknown\n",
            "app_odd 1\n",
            "# EOF\n",
        );
        let expected = concat!(
            "# HELP app_polls_total Poll cycles, by outcome.\n",
            "# TYPE app_polls_total counter\n",
            "app_polls_total{outcome=\"success\"} 3\n",
            "# HELP app_wait_seconds Last wait.\n",
            "# TYPE app_wait_seconds gauge\n",
            "app_wait_seconds{queue_id=\"q\"} 12.5\n",
            "# HELP app_latency_seconds Latency.\n",
            "# TYPE app_latency_seconds histogram\n",
            "app_latency_seconds_sum 0.5\n",
            "app_latency_seconds_count 2\n",
            "app_latency_seconds_bucket{le=\"0.1\"} 1\n",
            "app_latency_seconds_bucket{le=\"+Inf\"} 2\n",
            "# HELP app_odd Something.\n",
            "# TYPE app_odd untyped\n",
            "app_odd 1\n",
        );
        assert_eq!(to_prometheus_text(openmetrics), expected);
        assert_eq!(to_prometheus_text(""), "");
        assert_eq!(to_prometheus_text("# EOF\n"), "");
    }

    #[test]
    fn exemplars_go_and_quoted_label_values_stay() {
        let openmetrics = concat!(
            "# HELP x X.\n",
            "# TYPE x counter\n",
            "x_total{a=\"} # {b=\\\"1\\\"} 2\"} 7 # {trace_id=\"42\"} 1.0 1700000000.0\n",
            "x_total 1 # {trace_id=\"43\"} 1.0\n",
            "# EOF\n",
        );
        let text = to_prometheus_text(openmetrics);
        assert_eq!(
            text,
            concat!(
                "# HELP x_total X.\n",
                "# TYPE x_total counter\n",
                "x_total{a=\"} # {b=\\\"1\\\"} 2\"} 7\n",
                "x_total 1\n",
            )
        );
    }

    #[test]
    fn every_served_sample_belongs_to_a_declared_family() {
        let t = crate::telemetry::Telemetry::new();
        t.emit(crate::telemetry::TokenIssued {
            lifetime: std::time::Duration::from_secs(60),
        });
        let text = to_prometheus_text(&t.encode());
        let mut family: Option<(String, String)> = None;
        let mut samples = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                family = Some((name.to_owned(), kind.to_owned()));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, kind) = family.as_ref().expect("a TYPE before samples");
            let sample = &line[..line.find(['{', ' ']).unwrap()];
            let suffix = sample.strip_prefix(name.as_str()).unwrap_or_else(|| {
                panic!("{sample} is outside its family {name}:\n{text}");
            });
            let allowed: &[&str] = match kind.as_str() {
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            assert!(allowed.contains(&suffix), "{line} in {name} {kind}");
            samples += 1;
        }
        assert!(samples > 20, "{text}");
        assert!(text.contains("# TYPE queuewatch_polls_total counter\n"));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
    }
}
