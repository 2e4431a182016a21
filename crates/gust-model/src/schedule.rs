//! Schedule expressions as AWS writes them — `at(yyyy-mm-ddThh:mm:ss)`, `rate(value unit)`
//! and the six-field `cron(minutes hours day-of-month month day-of-week year)` — evaluated in
//! an IANA time zone. Application Auto Scaling's scheduled actions use them; EventBridge
//! Scheduler and scheduled rules speak the same language.
//!
//! Cron arithmetic is `croner`'s and time zones are `chrono-tz`'s; this module checks the
//! AWS grammar (which is narrower than croner's), translates it, and converts between
//! `time` (the rest of the model) and `chrono` (theirs) at the boundary.
//!
//! Daylight saving time follows EventBridge Scheduler: a cron time that falls in the hour
//! skipped in spring does not fire that day, and a time repeated in autumn fires once, at
//! its first occurrence. A rate is a fixed duration (`rate(1 day)` is 24 hours, whatever the
//! wall clock does). An `at` time that does not exist locally fires as the wall clock would
//! read it had it not jumped (02:30 on a day that skips 02:00–03:00 fires at 03:30); one
//! that exists twice fires at the first.

use std::fmt;
use std::str::FromStr;

use chrono::{LocalResult, NaiveDateTime, TimeZone};
use time::{OffsetDateTime, PrimitiveDateTime};

/// Earliest year a cron expression may name.
pub const CRON_YEAR_MIN: u16 = 1970;
/// Latest year a cron expression may name.
pub const CRON_YEAR_MAX: u16 = 2199;

/// Why a schedule expression or time zone is not valid; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not `at(…)`, `rate(…)` or `cron(…)`.
    #[error("Invalid schedule expression '{0}': expected at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(minutes hours day-of-month month day-of-week year)")]
    Unrecognized(String),
    /// An `at` expression whose date and time do not parse.
    #[error("Invalid at expression '{0}': the date and time must be written yyyy-mm-ddThh:mm:ss and exist")]
    At(String),
    /// A rate expression that breaks a rule.
    #[error("Invalid rate expression '{expression}': {reason}")]
    Rate {
        /// The expression.
        expression: String,
        /// What is wrong.
        reason: String,
    },
    /// A cron expression that breaks a rule.
    #[error("Invalid cron expression '{expression}': {reason}")]
    Cron {
        /// The expression.
        expression: String,
        /// What is wrong.
        reason: String,
    },
    /// A time zone that is not an IANA name.
    #[error("Invalid time zone '{0}': expected an IANA time zone name such as America/New_York or Etc/GMT+9")]
    TimeZone(String),
}

/// A time zone schedules are evaluated in: an IANA zone (UTC by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(chrono_tz::Tz);

impl Zone {
    /// Coordinated Universal Time.
    pub const UTC: Zone = Zone(chrono_tz::Tz::UTC);

    /// The zone of an IANA name (`America/New_York`, `Etc/GMT+9`, `UTC`), exactly as written.
    pub fn parse(name: &str) -> Result<Zone, ScheduleError> {
        chrono_tz::Tz::from_str(name)
            .map(Zone)
            .map_err(|_| ScheduleError::TimeZone(name.to_owned()))
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The instant a local wall-clock time names in this zone: the first of two in a
    /// repeated hour; for a time skipped by a forward jump, the time the clock would read
    /// had it not jumped (so 02:30 in a 02:00→03:00 gap is 03:30).
    pub fn resolve(&self, local: PrimitiveDateTime) -> Option<OffsetDateTime> {
        let naive = to_naive(local)?;
        match self.0.from_local_datetime(&naive) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                from_chrono(t.timestamp(), t.timestamp_subsec_nanos())
            }
            LocalResult::None => {
                // The offset in force before the gap (gaps are shorter than a day).
                let before = naive - chrono::Duration::hours(24);
                let offset = match self.0.from_local_datetime(&before) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        chrono::Offset::fix(t.offset()).local_minus_utc()
                    }
                    LocalResult::None => 0,
                };
                let utc = naive.and_utc().timestamp() - i64::from(offset);
                from_chrono(utc, naive.and_utc().timestamp_subsec_nanos())
            }
        }
    }

    /// The local wall-clock time of an instant in this zone.
    pub fn local(&self, at: OffsetDateTime) -> Option<PrimitiveDateTime> {
        let utc = to_chrono(at)?;
        from_naive(utc.with_timezone(&self.0).naive_local())
    }

    /// Wall-clock time of an instant, as chrono sees it.
    fn naive_local(&self, at: OffsetDateTime) -> Option<NaiveDateTime> {
        Some(to_chrono(at)?.with_timezone(&self.0).naive_local())
    }

    /// The first instant of a wall-clock time; `None` when the clock skips it.
    fn first_instant(&self, naive: &NaiveDateTime) -> Option<OffsetDateTime> {
        match self.0.from_local_datetime(naive) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                from_chrono(t.timestamp(), t.timestamp_subsec_nanos())
            }
            LocalResult::None => None,
        }
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::UTC
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn to_chrono(at: OffsetDateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::Utc
        .timestamp_opt(at.unix_timestamp(), at.nanosecond())
        .single()
}

fn from_chrono(seconds: i64, nanos: u32) -> Option<OffsetDateTime> {
    let at = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    at.replace_nanosecond(nanos).ok()
}

fn to_naive(local: PrimitiveDateTime) -> Option<NaiveDateTime> {
    let date = chrono::NaiveDate::from_ymd_opt(
        local.year(),
        u32::from(u8::from(local.month())),
        u32::from(local.day()),
    )?;
    let time = chrono::NaiveTime::from_hms_nano_opt(
        u32::from(local.hour()),
        u32::from(local.minute()),
        u32::from(local.second()),
        local.nanosecond(),
    )?;
    Some(NaiveDateTime::new(date, time))
}

fn from_naive(naive: NaiveDateTime) -> Option<PrimitiveDateTime> {
    use chrono::{Datelike, Timelike};
    let month = time::Month::try_from(u8::try_from(naive.month()).ok()?).ok()?;
    let date = time::Date::from_calendar_date(naive.year(), month, u8::try_from(naive.day()).ok()?)
        .ok()?;
    let clock = time::Time::from_hms_nano(
        u8::try_from(naive.hour()).ok()?,
        u8::try_from(naive.minute()).ok()?,
        u8::try_from(naive.second()).ok()?,
        naive.nanosecond(),
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, clock))
}

/// The unit of a rate expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateUnit {
    /// `minute` / `minutes`.
    Minute,
    /// `hour` / `hours`.
    Hour,
    /// `day` / `days` (24 hours).
    Day,
}

impl RateUnit {
    fn seconds(self) -> i64 {
        match self {
            RateUnit::Minute => 60,
            RateUnit::Hour => 3_600,
            RateUnit::Day => 86_400,
        }
    }

    fn name(self, value: u32) -> &'static str {
        match (self, value == 1) {
            (RateUnit::Minute, true) => "minute",
            (RateUnit::Minute, false) => "minutes",
            (RateUnit::Hour, true) => "hour",
            (RateUnit::Hour, false) => "hours",
            (RateUnit::Day, true) => "day",
            (RateUnit::Day, false) => "days",
        }
    }
}

/// A validated AWS cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    /// The six fields as written (single spaces between them).
    fields: String,
    /// The same schedule in croner's terms.
    cron: croner::Cron,
}

impl CronSchedule {
    /// The six fields, single-spaced.
    pub fn fields(&self) -> &str {
        &self.fields
    }

    /// The first wall-clock time after `local` (exclusive) that the expression names.
    fn next_local(&self, local: &NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron.find_next_occurrence(local, false).ok()
    }
}

/// When something happens: once (`at`), every so often (`rate`) or on a calendar (`cron`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// Once, at a local date and time.
    At(PrimitiveDateTime),
    /// Every `value` units.
    Rate {
        /// How many units (at least 1).
        value: u32,
        /// Minutes, hours or days.
        unit: RateUnit,
    },
    /// On a calendar.
    Cron(Box<CronSchedule>),
}

impl ScheduleExpression {
    /// Reads an expression as AWS writes it.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let trimmed = text.trim();
        let inner = |prefix: &str| {
            trimmed
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
        };
        if let Some(body) = inner("at(") {
            return parse_at(text, body);
        }
        if let Some(body) = inner("rate(") {
            return parse_rate(text, body);
        }
        if let Some(body) = inner("cron(") {
            return parse_cron(text, body).map(|cron| ScheduleExpression::Cron(Box::new(cron)));
        }
        Err(ScheduleError::Unrecognized(text.to_owned()))
    }

    /// A rate's period.
    pub fn period(&self) -> Option<time::Duration> {
        match self {
            ScheduleExpression::Rate { value, unit } => {
                Some(time::Duration::seconds(i64::from(*value) * unit.seconds()))
            }
            _ => None,
        }
    }

    /// Whether it fires more than once.
    pub fn is_recurring(&self) -> bool {
        !matches!(self, ScheduleExpression::At(_))
    }

    /// The first time the schedule fires strictly after `after`, or `None` when it never
    /// will again.
    ///
    /// `start` is the schedule's beginning: nothing fires before it, and a rate fires at
    /// `start + k·period` (k ≥ 0); a rate without one counts from `after`. `at` and `cron`
    /// are read in `zone`; a rate is a plain duration.
    pub fn next_after(
        &self,
        after: OffsetDateTime,
        zone: &Zone,
        start: Option<OffsetDateTime>,
    ) -> Option<OffsetDateTime> {
        match self {
            ScheduleExpression::At(local) => zone
                .resolve(*local)
                .filter(|t| *t > after && start.is_none_or(|start| *t >= start)),
            ScheduleExpression::Rate { .. } => {
                let period = self.period()?.whole_seconds();
                let anchor = start.unwrap_or(after);
                if anchor > after {
                    return Some(anchor);
                }
                // Periods are whole seconds, so whole elapsed seconds count them exactly.
                let periods = (after - anchor).whole_seconds() / period + 1;
                anchor.checked_add(time::Duration::seconds(periods.checked_mul(period)?))
            }
            ScheduleExpression::Cron(cron) => {
                // Everything at or before `bound` is excluded.
                let bound = match start {
                    Some(start) if start > after => start - time::Duration::NANOSECOND,
                    _ => after,
                };
                let mut local = zone.naive_local(bound)?;
                // Wall-clock times map to instants in order (a repeated hour maps to its
                // first pass, a skipped one to nothing), so the answer is the first match
                // past `bound`'s own wall-clock time whose instant is past `bound`. Those
                // that are not are the rest of a repeated hour; a few thousand steps cover
                // an every-minute schedule through any real transition.
                for _ in 0..10_000 {
                    let next = cron.next_local(&local)?;
                    if let Some(at) = zone.first_instant(&next) {
                        if at > bound {
                            return Some(at);
                        }
                    }
                    local = next;
                }
                None
            }
        }
    }
}

impl FromStr for ScheduleExpression {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ScheduleExpression::parse(text)
    }
}

impl fmt::Display for ScheduleExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleExpression::At(at) => write!(
                f,
                "at({:04}-{:02}-{:02}T{:02}:{:02}:{:02})",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            ),
            ScheduleExpression::Rate { value, unit } => {
                write!(f, "rate({value} {})", unit.name(*value))
            }
            ScheduleExpression::Cron(cron) => write!(f, "cron({})", cron.fields),
        }
    }
}

fn parse_at(text: &str, body: &str) -> Result<ScheduleExpression, ScheduleError> {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(body.trim(), &format)
        .map(ScheduleExpression::At)
        .map_err(|_| ScheduleError::At(text.to_owned()))
}

fn parse_rate(text: &str, body: &str) -> Result<ScheduleExpression, ScheduleError> {
    let error = |reason: &str| ScheduleError::Rate {
        expression: text.to_owned(),
        reason: reason.to_owned(),
    };
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [value, unit] = parts.as_slice() else {
        return Err(error("expected a value and a unit, as in rate(5 minutes)"));
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error("the value must be a positive whole number"));
    }
    let value: u32 = value
        .parse()
        .map_err(|_| error("the value must be a positive whole number"))?;
    if value == 0 {
        return Err(error("the value must be a positive whole number"));
    }
    let (unit, plural) = match *unit {
        "minute" => (RateUnit::Minute, false),
        "minutes" => (RateUnit::Minute, true),
        "hour" => (RateUnit::Hour, false),
        "hours" => (RateUnit::Hour, true),
        "day" => (RateUnit::Day, false),
        "days" => (RateUnit::Day, true),
        _ => {
            return Err(error(
                "the unit must be minute, minutes, hour, hours, day or days",
            ))
        }
    };
    if plural == (value == 1) {
        return Err(error(if value == 1 {
            "a value of 1 takes a singular unit (minute, hour or day)"
        } else {
            "a value greater than 1 takes a plural unit (minutes, hours or days)"
        }));
    }
    Ok(ScheduleExpression::Rate { value, unit })
}

/// One cron field's rules.
struct Field {
    name: &'static str,
    min: u16,
    max: u16,
    /// Names standing for values (`JAN`=1, `SUN`=1).
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const MINUTES: Field = Field {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Field = Field {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: MONTHS,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: WEEKDAYS,
};
const YEAR: Field = Field {
    name: "year",
    min: CRON_YEAR_MIN,
    max: CRON_YEAR_MAX,
    names: &[],
};

impl Field {
    /// A value (number or name) as a number within bounds.
    fn value(&self, text: &str) -> Result<u16, String> {
        let upper = text.to_ascii_uppercase();
        if let Some(index) = self.names.iter().position(|n| *n == upper) {
            return Ok(index as u16 + 1);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{text}' is not a valid {} value{}",
                self.name,
                self.allowed()
            ));
        }
        match text.parse::<u16>() {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(format!(
                "{text} is out of range for {} ({}-{})",
                self.name, self.min, self.max
            )),
        }
    }

    fn allowed(&self) -> String {
        match self.names.first().zip(self.names.last()) {
            Some((first, last)) => {
                format!(" ({}-{} or {first}-{last})", self.min, self.max)
            }
            None => format!(" ({}-{})", self.min, self.max),
        }
    }

    /// A range `a-b` as numbers.
    fn range(&self, text: &str) -> Result<String, String> {
        let Some((a, b)) = text.split_once('-') else {
            return self.value(text).map(|v| v.to_string());
        };
        let (a, b) = (self.value(a)?, self.value(b)?);
        if a > b {
            return Err(format!("the range {text} in {} runs backwards", self.name));
        }
        Ok(format!("{a}-{b}"))
    }

    /// One comma-separated item: `*`, a value, a range, or any of these `/` a step.
    fn plain_item(&self, item: &str) -> Result<String, String> {
        if item == "*" {
            return Ok("*".into());
        }
        if let Some((base, step)) = item.split_once('/') {
            let step_value: u16 = step
                .parse()
                .ok()
                .filter(|s| *s >= 1 && step.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    format!(
                        "the increment in '{item}' in {} must be a positive whole number",
                        self.name
                    )
                })?;
            if step_value > self.max {
                return Err(format!(
                    "the increment in '{item}' is larger than {} allows",
                    self.name
                ));
            }
            let base = if base == "*" {
                "*".to_owned()
            } else {
                self.range(base)?
            };
            return Ok(format!("{base}/{step_value}"));
        }
        self.range(item)
    }
}

fn cron_error(text: &str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Cron {
        expression: text.to_owned(),
        reason: reason.into(),
    }
}

/// A plain field (minutes, hours, month, year).
fn plain_field(field: &Field, text: &str) -> Result<String, String> {
    if text == "?" {
        return Err(format!(
            "? is only allowed in day-of-month and day-of-week, not in {}",
            field.name
        ));
    }
    text.split(',')
        .map(|item| field.plain_item(item))
        .collect::<Result<Vec<_>, _>>()
        .map(|items| items.join(","))
}

fn day_of_month(text: &str) -> Result<String, String> {
    text.split(',')
        .map(|item| {
            let upper = item.to_ascii_uppercase();
            if upper == "L" || upper == "LW" {
                return Ok(upper);
            }
            if let Some(day) = upper.strip_suffix('W') {
                return DAY_OF_MONTH.value(day).map(|d| format!("{d}W"));
            }
            DAY_OF_MONTH.plain_item(item)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|items| items.join(","))
}

fn day_of_week(text: &str) -> Result<String, String> {
    if text.contains('#') && text.contains(',') {
        return Err(
            "with # the day-of-week field can hold only one expression (3#1,6#3 is two)".into(),
        );
    }
    text.split(',')
        .map(|item| {
            let upper = item.to_ascii_uppercase();
            // The last day of the week: Saturday.
            if upper == "L" {
                return Ok("7".to_owned());
            }
            if let Some((day, nth)) = upper.split_once('#') {
                let day = DAY_OF_WEEK.value(day)?;
                return match nth.parse::<u8>() {
                    Ok(n) if (1..=5).contains(&n) && nth.len() == 1 => Ok(format!("{day}#{n}")),
                    _ => Err(format!("in '{item}' the occurrence after # must be 1-5")),
                };
            }
            if let Some(day) = upper.strip_suffix('L') {
                return DAY_OF_WEEK.value(day).map(|d| format!("{d}L"));
            }
            DAY_OF_WEEK.plain_item(item)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|items| items.join(","))
}

fn parse_cron(text: &str, body: &str) -> Result<CronSchedule, ScheduleError> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, dom, month, dow, year] = fields.as_slice() else {
        return Err(cron_error(
            text,
            format!(
                "expected six fields (minutes hours day-of-month month day-of-week year), found {}",
                fields.len()
            ),
        ));
    };
    match (*dom == "?", *dow == "?") {
        (true, true) => {
            return Err(cron_error(
                text,
                "day-of-month and day-of-week cannot both be ?: one of them must name days",
            ))
        }
        (false, false) => {
            return Err(cron_error(
                text,
                "day-of-month and day-of-week cannot both be given: one of them must be ?",
            ))
        }
        _ => {}
    }
    let error = |reason: String| cron_error(text, reason);
    let translated = [
        "0".to_owned(),
        plain_field(&MINUTES, minutes).map_err(error)?,
        plain_field(&HOURS, hours).map_err(error)?,
        if *dom == "?" {
            "?".to_owned()
        } else {
            day_of_month(dom).map_err(error)?
        },
        plain_field(&MONTH, month).map_err(error)?,
        if *dow == "?" {
            "?".to_owned()
        } else {
            day_of_week(dow).map_err(error)?
        },
        plain_field(&YEAR, year).map_err(error)?,
    ]
    .join(" ");
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .year(croner::parser::Year::Required)
        .alternative_weekdays(true)
        .sloppy_ranges(true)
        .build()
        .parse(&translated)
        .map_err(|e| cron_error(text, e.to_string()))?;
    Ok(CronSchedule {
        fields: fields.join(" "),
        cron,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn next(expression: &str, after: OffsetDateTime, zone: &str) -> Option<OffsetDateTime> {
        ScheduleExpression::parse(expression).unwrap().next_after(
            after,
            &Zone::parse(zone).unwrap(),
            None,
        )
    }

    fn upcoming(
        expression: &str,
        mut after: OffsetDateTime,
        zone: &str,
        n: usize,
    ) -> Vec<OffsetDateTime> {
        let mut out = Vec::new();
        for _ in 0..n {
            let Some(at) = next(expression, after, zone) else {
                break;
            };
            out.push(at);
            after = at;
        }
        out
    }

    fn error(expression: &str) -> String {
        ScheduleExpression::parse(expression)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_and_prints_each_form() {
        for text in [
            "at(2024-05-01T10:30:00)",
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(12 hours)",
            "rate(1 day)",
            "rate(7 days)",
            "cron(0 10 * * ? *)",
            "cron(0/15 * ? * MON-FRI *)",
            "cron(30 6 ? * 3#2 2030)",
            "cron(0 12 L * ? *)",
            "cron(0 12 15W JAN,JUL ? 2024-2026)",
        ] {
            let parsed = ScheduleExpression::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(
            ScheduleExpression::parse("rate(5 minutes)")
                .unwrap()
                .period(),
            Some(time::Duration::minutes(5))
        );
        assert!(!ScheduleExpression::parse("at(2024-05-01T10:30:00)")
            .unwrap()
            .is_recurring());
    }

    #[test]
    fn refuses_bad_expressions_saying_why() {
        for (text, says) in [
            ("every day", "expected at("),
            ("at(2024-13-01T00:00:00)", "yyyy-mm-ddThh:mm:ss"),
            ("at(2024-01-01 00:00:00)", "yyyy-mm-ddThh:mm:ss"),
            ("at(2023-02-29T00:00:00)", "exist"),
            ("rate(1 minutes)", "singular"),
            ("rate(5 minute)", "plural"),
            ("rate(0 minutes)", "positive"),
            ("rate(-1 minutes)", "positive"),
            ("rate(1.5 hours)", "positive"),
            ("rate(2 weeks)", "the unit must be"),
            ("rate(5)", "a value and a unit"),
            ("cron(0 10 * * ?)", "six fields"),
            ("cron(0 10 * * * *)", "one of them must be ?"),
            ("cron(0 10 ? * ? *)", "cannot both be ?"),
            (
                "cron(60 10 * * ? *)",
                "60 is out of range for minutes (0-59)",
            ),
            ("cron(0 24 * * ? *)", "out of range for hours"),
            ("cron(0 10 32 * ? *)", "out of range for day-of-month"),
            ("cron(0 10 ? 13 * *)", "out of range for month"),
            (
                "cron(0 10 ? * 0 *)",
                "0 is out of range for day-of-week (1-7)",
            ),
            (
                "cron(0 10 ? * FUN *)",
                "'FUN' is not a valid day-of-week value (1-7 or SUN-SAT)",
            ),
            ("cron(0 10 ? * 3#1,6#3 *)", "only one expression"),
            ("cron(0 10 ? * 3#6 *)", "1-5"),
            ("cron(0 10 * * ? 1969)", "out of range for year (1970-2199)"),
            ("cron(0 10 * * ? 2200)", "out of range for year"),
            ("cron(0 ? * * ? *)", "? is only allowed"),
            ("cron(0 10 5-1 * ? *)", "runs backwards"),
            ("cron(0/0 10 * * ? *)", "positive whole number"),
            ("cron(0 10 L * ? *", "expected at("),
        ] {
            let message = error(text);
            assert!(message.contains(says), "{text}: {message}");
        }
        assert!(Zone::parse("Mars/Olympus_Mons")
            .unwrap_err()
            .to_string()
            .contains("IANA"));
    }

    #[test]
    fn at_fires_once_in_its_zone() {
        let expression = "at(2024-05-01T10:30:00)";
        assert_eq!(
            next(expression, datetime!(2024-01-01 0:00 UTC), "UTC"),
            Some(datetime!(2024-05-01 10:30 UTC))
        );
        assert_eq!(
            next(
                expression,
                datetime!(2024-01-01 0:00 UTC),
                "America/New_York"
            ),
            Some(datetime!(2024-05-01 14:30 UTC))
        );
        assert_eq!(
            next(expression, datetime!(2024-05-01 10:30 UTC), "UTC"),
            None
        );
        // Skipped by the spring jump: as the clock would read without it.
        assert_eq!(
            next(
                "at(2024-03-10T02:30:00)",
                datetime!(2024-01-01 0:00 UTC),
                "America/New_York"
            ),
            Some(datetime!(2024-03-10 07:30 UTC))
        );
        // Repeated in autumn: the first.
        assert_eq!(
            next(
                "at(2024-11-03T01:30:00)",
                datetime!(2024-01-01 0:00 UTC),
                "America/New_York"
            ),
            Some(datetime!(2024-11-03 05:30 UTC))
        );
    }

    #[test]
    fn rate_counts_whole_periods_from_its_start() {
        let rate = ScheduleExpression::parse("rate(5 minutes)").unwrap();
        let start = datetime!(2024-01-01 0:00:10 UTC);
        let zone = Zone::UTC;
        assert_eq!(
            rate.next_after(datetime!(2023-12-31 0:00 UTC), &zone, Some(start)),
            Some(start)
        );
        assert_eq!(
            rate.next_after(start, &zone, Some(start)),
            Some(datetime!(2024-01-01 0:05:10 UTC))
        );
        assert_eq!(
            rate.next_after(datetime!(2024-01-01 1:02:00 UTC), &zone, Some(start)),
            Some(datetime!(2024-01-01 1:05:10 UTC))
        );
        assert_eq!(
            rate.next_after(datetime!(2024-01-01 1:05:10 UTC), &zone, Some(start)),
            Some(datetime!(2024-01-01 1:10:10 UTC))
        );
        // Without a start: from `after`.
        assert_eq!(
            rate.next_after(start, &zone, None),
            Some(datetime!(2024-01-01 0:05:10 UTC))
        );
        // A day is 24 hours, across a DST change too.
        let daily = ScheduleExpression::parse("rate(1 day)").unwrap();
        let ny = Zone::parse("America/New_York").unwrap();
        let before = datetime!(2024-03-09 17:00 UTC);
        assert_eq!(
            daily.next_after(before, &ny, Some(before)),
            Some(datetime!(2024-03-10 17:00 UTC))
        );
    }

    #[test]
    fn cron_follows_the_wall_clock_of_its_zone() {
        // 09:00 New York is 14:00 UTC in winter and 13:00 UTC in summer.
        assert_eq!(
            upcoming(
                "cron(0 9 * * ? *)",
                datetime!(2024-03-08 12:00 UTC),
                "America/New_York",
                3
            ),
            vec![
                datetime!(2024-03-08 14:00 UTC),
                datetime!(2024-03-09 14:00 UTC),
                datetime!(2024-03-10 13:00 UTC),
            ]
        );
        // Weekdays only, by name.
        assert_eq!(
            upcoming(
                "cron(0 18 ? * MON-FRI *)",
                datetime!(2024-06-07 19:00 UTC),
                "UTC",
                2
            ),
            vec![
                datetime!(2024-06-10 18:00 UTC),
                datetime!(2024-06-11 18:00 UTC)
            ]
        );
        // Day-of-week numbers: 1 is Sunday.
        assert_eq!(
            next("cron(0 0 ? * 1 *)", datetime!(2024-06-05 0:00 UTC), "UTC"),
            Some(datetime!(2024-06-09 0:00 UTC))
        );
        // Increments from a starting minute.
        assert_eq!(
            upcoming(
                "cron(1/10 * * * ? *)",
                datetime!(2024-06-05 10:00 UTC),
                "UTC",
                3
            ),
            vec![
                datetime!(2024-06-05 10:01 UTC),
                datetime!(2024-06-05 10:11 UTC),
                datetime!(2024-06-05 10:21 UTC),
            ]
        );
        // Strictly after.
        assert_eq!(
            next("cron(0 10 * * ? *)", datetime!(2024-06-05 10:00 UTC), "UTC"),
            Some(datetime!(2024-06-06 10:00 UTC))
        );
        // A start time bounds it.
        let cron = ScheduleExpression::parse("cron(0 10 * * ? *)").unwrap();
        assert_eq!(
            cron.next_after(
                datetime!(2024-06-05 0:00 UTC),
                &Zone::UTC,
                Some(datetime!(2024-06-07 10:00 UTC))
            ),
            Some(datetime!(2024-06-07 10:00 UTC))
        );
    }

    #[test]
    fn cron_skips_the_spring_gap_and_fires_once_in_the_autumn_overlap() {
        // 02:30 does not exist in New York on 2024-03-10: that day is skipped.
        assert_eq!(
            upcoming(
                "cron(30 2 * * ? *)",
                datetime!(2024-03-09 0:00 UTC),
                "America/New_York",
                2
            ),
            vec![
                datetime!(2024-03-09 07:30 UTC),
                datetime!(2024-03-11 06:30 UTC)
            ]
        );
        // 01:30 happens twice on 2024-11-03: it fires once, at the first.
        assert_eq!(
            upcoming(
                "cron(30 1 * * ? *)",
                datetime!(2024-11-02 12:00 UTC),
                "America/New_York",
                2
            ),
            vec![
                datetime!(2024-11-03 05:30 UTC),
                datetime!(2024-11-04 06:30 UTC)
            ]
        );
        // Every 15 minutes through the repeated hour: its second pass is not repeated.
        assert_eq!(
            upcoming(
                "cron(0/15 * * * ? *)",
                datetime!(2024-11-03 05:40 UTC),
                "America/New_York",
                2
            ),
            vec![
                datetime!(2024-11-03 05:45 UTC),
                datetime!(2024-11-03 07:00 UTC)
            ]
        );
        // From inside the second pass, the next is after it.
        assert_eq!(
            next(
                "cron(0/15 * * * ? *)",
                datetime!(2024-11-03 06:20 UTC),
                "America/New_York"
            ),
            Some(datetime!(2024-11-03 07:00 UTC))
        );
        // Every 15 minutes across the spring gap: 01:45 EST, then 03:00 EDT.
        assert_eq!(
            upcoming(
                "cron(0/15 * * * ? *)",
                datetime!(2024-03-10 06:40 UTC),
                "America/New_York",
                2
            ),
            vec![
                datetime!(2024-03-10 06:45 UTC),
                datetime!(2024-03-10 07:00 UTC)
            ]
        );
    }

    #[test]
    fn cron_last_weekday_and_nth() {
        // L: the last day of the month (leap February).
        assert_eq!(
            next("cron(0 12 L * ? *)", datetime!(2024-02-10 0:00 UTC), "UTC"),
            Some(datetime!(2024-02-29 12:00 UTC))
        );
        // 15W: 2024-06-15 is a Saturday, so Friday the 14th.
        assert_eq!(
            next(
                "cron(0 12 15W * ? *)",
                datetime!(2024-06-01 0:00 UTC),
                "UTC"
            ),
            Some(datetime!(2024-06-14 12:00 UTC))
        );
        // 2024-09-15 is a Sunday, so Monday the 16th.
        assert_eq!(
            next(
                "cron(0 12 15W * ? *)",
                datetime!(2024-09-01 0:00 UTC),
                "UTC"
            ),
            Some(datetime!(2024-09-16 12:00 UTC))
        );
        // 3#2: the second Tuesday.
        assert_eq!(
            next(
                "cron(0 12 ? * 3#2 *)",
                datetime!(2024-01-01 0:00 UTC),
                "UTC"
            ),
            Some(datetime!(2024-01-09 12:00 UTC))
        );
        assert_eq!(
            next(
                "cron(0 12 ? * TUE#2 *)",
                datetime!(2024-01-10 0:00 UTC),
                "UTC"
            ),
            Some(datetime!(2024-02-13 12:00 UTC))
        );
        // 6L: the last Friday.
        assert_eq!(
            next("cron(0 12 ? * 6L *)", datetime!(2024-05-01 0:00 UTC), "UTC"),
            Some(datetime!(2024-05-31 12:00 UTC))
        );
        // L alone in day-of-week: Saturday, the week's last day.
        assert_eq!(
            next("cron(0 12 ? * L *)", datetime!(2024-06-05 0:00 UTC), "UTC"),
            Some(datetime!(2024-06-08 12:00 UTC))
        );
    }

    #[test]
    fn cron_year_field() {
        assert_eq!(
            next(
                "cron(0 0 1 1 ? 2030)",
                datetime!(2025-06-01 0:00 UTC),
                "UTC"
            ),
            Some(datetime!(2030-01-01 0:00 UTC))
        );
        assert_eq!(
            next(
                "cron(0 0 1 1 ? 2030)",
                datetime!(2030-01-01 0:00 UTC),
                "UTC"
            ),
            None
        );
        assert_eq!(
            upcoming(
                "cron(0 0 1 JAN ? 2026,2028-2029)",
                datetime!(2025-01-01 0:00 UTC),
                "UTC",
                4
            ),
            vec![
                datetime!(2026-01-01 0:00 UTC),
                datetime!(2028-01-01 0:00 UTC),
                datetime!(2029-01-01 0:00 UTC),
            ]
        );
        // A date that never exists.
        assert_eq!(
            next("cron(0 0 30 2 ? *)", datetime!(2025-01-01 0:00 UTC), "UTC"),
            None
        );
    }

    #[test]
    fn zones_convert_both_ways() {
        let ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(ny.name(), "America/New_York");
        assert_eq!(Zone::default(), Zone::UTC);
        assert_eq!(
            ny.local(datetime!(2024-07-01 16:00 UTC)),
            Some(time::macros::datetime!(2024-07-01 12:00))
        );
        assert_eq!(
            ny.resolve(time::macros::datetime!(2024-07-01 12:00)),
            Some(datetime!(2024-07-01 16:00 UTC))
        );
        assert!(Zone::parse("Etc/GMT+9").is_ok());
    }
}
