//! Reading `/metrics`: a strict parser of the OpenMetrics text format (the
//! subset queuewatch emits), and a lenient look-up of one series for
//! expositions read over a plain socket.
//!
//! `/metrics` answers OpenMetrics only to an `Accept` that names it (send
//! [`PROMETHEUS_ACCEPT`]); without one, or to curl's `*/*`, it answers the
//! classic Prometheus text, which [`sample`] reads as well.

use std::collections::BTreeMap;
use std::str::FromStr;

/// The `Accept` header Prometheus 2.x scrapes with (OpenMetrics first).
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// One metric family of a text exposition.
#[derive(Debug, Default)]
pub struct Family {
    pub kind: String,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Family {
    /// The sample `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    /// The sum of the samples named `name` over every label set (0 without any).
    pub fn total(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn parse_number(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) =>
        {
            text.parse()
                .map_err(|e| format!("bad number {text:?}: {e}"))
        }
        _ => Err(format!("bad number {text:?}")),
    }
}

/// `{k="v",...}` at the start of `text`: the labels and the rest of the line.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("expected '{'")?;
    if let Some(after) = rest.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, '\n')) | None => return Err("unterminated label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name:?} repeated"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        rest = rest
            .strip_prefix(',')
            .ok_or("expected ',' or '}' after a label")?;
    }
}

/// The sample-name suffixes each family type allows.
fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" | "gaugehistogram" => {
            &["_bucket", "_count", "_sum", "_created", "_gcount", "_gsum"]
        }
        "summary" => &["", "_count", "_sum", "_created"],
        "info" => &["_info"],
        _ => &[""],
    }
}

/// A strict parser of the OpenMetrics text format (the subset queuewatch
/// emits): `# HELP`/`# TYPE`/`# UNIT` lines, `name{labels} value [timestamp]`
/// samples belonging to the family declared before them, families not
/// interleaved, no blank lines, and a final `# EOF`.
pub fn parse_openmetrics(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .or_else(|| text.strip_suffix("# EOF"))
        .ok_or("does not end with '# EOF'")?;
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (number, line) in body.lines().enumerate() {
        let fail = |why: String| format!("line {}: {why}: {line:?}", number + 1);
        if line.is_empty() {
            return Err(fail("blank line".into()));
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or_default();
            let name = parts
                .next()
                .ok_or_else(|| fail("comment without a metric name".into()))?;
            let rest = parts.next();
            if !is_metric_name(name) {
                return Err(fail(format!("bad metric name {name:?}")));
            }
            if current.as_deref() != Some(name) {
                if families.contains_key(name) {
                    return Err(fail(format!("family {name} is interleaved with another")));
                }
                families.insert(name.to_string(), Family::default());
                current = Some(name.to_string());
            }
            let family = families.get_mut(name).unwrap();
            if !family.samples.is_empty() {
                return Err(fail("metadata after samples".into()));
            }
            match (keyword, rest) {
                ("HELP", Some(help)) if family.help.is_none() => family.help = Some(help.into()),
                ("TYPE", Some(kind)) if family.kind.is_empty() => {
                    const KINDS: [&str; 8] = [
                        "counter",
                        "gauge",
                        "histogram",
                        "gaugehistogram",
                        "summary",
                        "info",
                        "stateset",
                        "unknown",
                    ];
                    if !KINDS.contains(&kind) {
                        return Err(fail(format!("unknown type {kind:?}")));
                    }
                    family.kind = kind.into();
                }
                ("UNIT", Some(unit)) if family.unit.is_none() => {
                    if !name.ends_with(&format!("_{unit}")) {
                        return Err(fail(format!(
                            "family name does not end with its unit {unit:?}"
                        )));
                    }
                    family.unit = Some(unit.into());
                }
                _ => return Err(fail("malformed or repeated HELP/TYPE/UNIT line".into())),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(fail("unexpected comment".into()));
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| fail("sample without a value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(fail(format!("bad sample name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(fail)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| fail("no space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_number(fields.next().unwrap_or_default()).map_err(fail)?;
        if let Some(timestamp) = fields.next() {
            parse_number(timestamp).map_err(fail)?;
        }
        if fields.next().is_some() {
            return Err(fail("trailing text (exemplars are not expected)".into()));
        }
        let family_name = current
            .clone()
            .ok_or_else(|| fail("sample before any TYPE".into()))?;
        let family = families.get_mut(&family_name).unwrap();
        if family.kind.is_empty() {
            return Err(fail("sample of a family without TYPE".into()));
        }
        let suffix = name
            .strip_prefix(family_name.as_str())
            .ok_or_else(|| fail(format!("sample outside its family {family_name}")))?;
        if !suffixes(&family.kind).contains(&suffix) {
            return Err(fail(format!(
                "suffix {suffix:?} not allowed for a {}",
                family.kind
            )));
        }
        if family.kind == "counter" && suffix == "_total" && (value.is_nan() || value < 0.0) {
            return Err(fail("negative or NaN counter".into()));
        }
        family.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(families)
}

/// Checks the histogram's structure: increasing `le`, cumulative counts,
/// a `+Inf` bucket equal to `_count`, and a `_sum`.
pub fn check_histogram(name: &str, family: &Family) {
    let buckets: Vec<(f64, f64)> = family
        .samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket"))
        .map(|s| (parse_number(&s.labels["le"]).unwrap(), s.value))
        .collect();
    assert!(buckets.len() >= 2, "{name}: buckets {buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{name}: buckets must increase in le and count: {buckets:?}"
    );
    let (last_le, last_count) = *buckets.last().unwrap();
    assert_eq!(last_le, f64::INFINITY, "{name}: last bucket must be +Inf");
    let count = family.value(&format!("{name}_count"), &[]).expect("_count");
    assert_eq!(last_count, count, "{name}: +Inf bucket equals _count");
    assert!(
        family.value(&format!("{name}_sum"), &[]).is_some(),
        "{name}: _sum"
    );
}

/// The value of `series` (`name` or `name{labels}` exactly as exposed) in
/// `text`, found by its line; `None` when absent or not a `T`.
pub fn sample<T: FromStr>(text: &str, series: &str) -> Option<T> {
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))?
        .trim()
        .parse()
        .ok()
}
