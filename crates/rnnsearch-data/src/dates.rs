//! The embedded toy task: dates written in many ways → ISO `YYYY-MM-DD`.
//!
//! Dates are uniform over 1900-01-01 ..= 2099-12-31. Weekdays are computed from
//! a day count (no calendar crate), so a weekday in a source always matches its
//! date. Two-digit years follow the common parser convention of a 1950–2049
//! window (`18` → 2018, `64` → 1964), and the two-digit form is only generated
//! for years inside it, so every source has exactly one correct target.
//! Splits never share a source string, and valid/test are drawn first so they
//! do not change when only the training size changes.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Sizes and seed of the generated dates corpus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatesConfig {
    pub train: usize,
    pub valid: usize,
    pub test: usize,
    pub seed: u64,
}

impl Default for DatesConfig {
    fn default() -> Self {
        DatesConfig {
            train: 20_000,
            valid: 500,
            test: 500,
            seed: 1,
        }
    }
}

/// `(source, target)` pairs of each split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DateSplits {
    pub train: Vec<(String, String)>,
    pub valid: Vec<(String, String)>,
    pub test: Vec<(String, String)>,
}

/// A proleptic Gregorian calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    pub const FIRST: Date = Date::new(1900, 1, 1);
    pub const LAST: Date = Date::new(2099, 12, 31);

    pub const fn new(year: i64, month: u32, day: u32) -> Date {
        Date { year, month, day }
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn days(&self) -> i64 {
        let m = self.month as i64;
        let y = if m <= 2 { self.year - 1 } else { self.year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The inverse of [`Date::days`] (Hinnant's `civil_from_days`).
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date { year, month, day }
    }

    /// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
    pub fn weekday(&self) -> usize {
        (self.days() + 3).rem_euclid(7) as usize
    }

    /// The target form, `YYYY-MM-DD`.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const FR_DAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const DE_DAYS: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];

/// The source layouts (examples for Wednesday 2018-05-09, before casing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Form {
    /// `9 May 2018`
    DayMonthYear,
    /// `09 May 2018`
    PaddedDayMonthYear,
    /// `May 9, 2018`
    MonthDayYear,
    /// `May 9th, 2018`
    MonthOrdinalYear,
    /// `Wednesday, May 9, 2018`
    WeekdayMonthDayYear,
    /// `Wed 9 May 18` (only for 1950–2049)
    WeekdayShortYear,
    /// `9/5/2018` (day first)
    SlashDmy,
    /// `09.05.2018`
    DotDmy,
    /// `2018/05/09`
    SlashYmd,
    /// `9th of May 2018`
    OrdinalOfMonth,
    /// `the 9th of May, 2018`
    TheOrdinalOf,
    /// `9 mai 2018`, optionally `mercredi 9 mai 2018`
    French,
    /// `9. Mai 2018`, optionally `Mittwoch, 9. Mai 2018`
    German,
    /// `09-MAY-2018`
    DashDmy,
}

impl Form {
    pub const ALL: [Form; 14] = [
        Form::DayMonthYear,
        Form::PaddedDayMonthYear,
        Form::MonthDayYear,
        Form::MonthOrdinalYear,
        Form::WeekdayMonthDayYear,
        Form::WeekdayShortYear,
        Form::SlashDmy,
        Form::DotDmy,
        Form::SlashYmd,
        Form::OrdinalOfMonth,
        Form::TheOrdinalOf,
        Form::French,
        Form::German,
        Form::DashDmy,
    ];
}

/// Letter case applied to a whole rendered source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    AsIs,
    Lower,
    Upper,
    Title,
}

/// Every choice that turns a date into one source string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub form: Form,
    pub abbreviate_month: bool,
    pub abbreviate_weekday: bool,
    /// Zero-pad the day (and month) in numeric forms that allow both.
    pub pad: bool,
    /// Prefix a weekday (French and German forms).
    pub weekday: bool,
    pub case: Case,
}

impl Style {
    /// A random style that is valid for `date` (the two-digit-year form only
    /// inside the 1950–2049 window).
    fn random(rng: &mut ChaCha8Rng, date: Date) -> Style {
        let form = loop {
            let form = Form::ALL[rng.random_range(0..Form::ALL.len())];
            if form != Form::WeekdayShortYear || (1950..=2049).contains(&date.year) {
                break form;
            }
        };
        let case = match rng.random_range(0..20) {
            0..10 => Case::AsIs,
            10..14 => Case::Lower,
            14..17 => Case::Upper,
            _ => Case::Title,
        };
        Style {
            form,
            abbreviate_month: rng.random_bool(0.4),
            abbreviate_weekday: rng.random_bool(0.4),
            pad: rng.random_bool(0.5),
            weekday: rng.random_bool(0.3),
            case,
        }
    }
}

/// English day ordinal: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, …
fn ordinal(day: u32) -> String {
    let suffix = match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{day}{suffix}")
}

fn abbreviated(name: &str, abbreviate: bool) -> String {
    if abbreviate {
        name.chars().take(3).collect()
    } else {
        name.to_string()
    }
}

/// Renders `date` in `style`.
pub fn render(date: Date, style: Style) -> String {
    let (d, m, y) = (date.day, date.month as usize, date.year);
    let month = abbreviated(EN_MONTHS[m - 1], style.abbreviate_month);
    let weekday = abbreviated(EN_DAYS[date.weekday()], style.abbreviate_weekday);
    let text = match style.form {
        Form::DayMonthYear => format!("{d} {month} {y}"),
        Form::PaddedDayMonthYear => format!("{d:02} {month} {y}"),
        Form::MonthDayYear => format!("{month} {d}, {y}"),
        Form::MonthOrdinalYear => format!("{month} {}, {y}", ordinal(d)),
        Form::WeekdayMonthDayYear => format!("{weekday}, {month} {d}, {y}"),
        Form::WeekdayShortYear => format!("{weekday} {d} {month} {:02}", y % 100),
        Form::SlashDmy if style.pad => format!("{d:02}/{m:02}/{y}"),
        Form::SlashDmy => format!("{d}/{m}/{y}"),
        Form::DotDmy => format!("{d:02}.{m:02}.{y}"),
        Form::SlashYmd => format!("{y}/{m:02}/{d:02}"),
        Form::OrdinalOfMonth => format!("{} of {month} {y}", ordinal(d)),
        Form::TheOrdinalOf => format!("the {} of {month}, {y}", ordinal(d)),
        Form::French => french(date, style.weekday),
        Form::German => german(date, style.weekday),
        Form::DashDmy => format!("{d:02}-{}-{y}", abbreviated(&month, true).to_uppercase()),
    };
    apply_case(&text, style.case)
}

fn french(date: Date, weekday: bool) -> String {
    let day = if date.day == 1 {
        "1er".to_string()
    } else {
        date.day.to_string()
    };
    let text = format!("{day} {} {}", FR_MONTHS[date.month as usize - 1], date.year);
    if weekday {
        format!("{} {text}", FR_DAYS[date.weekday()])
    } else {
        text
    }
}

fn german(date: Date, weekday: bool) -> String {
    let text = format!(
        "{}. {} {}",
        date.day,
        DE_MONTHS[date.month as usize - 1],
        date.year
    );
    if weekday {
        format!("{}, {text}", DE_DAYS[date.weekday()])
    } else {
        text
    }
}

/// Title case capitalises a letter that follows a non-alphanumeric character
/// (so `9th` stays `9th`, `may` becomes `May`) and lowercases the rest.
fn apply_case(text: &str, case: Case) -> String {
    match case {
        Case::AsIs => text.to_string(),
        Case::Lower => text.to_lowercase(),
        Case::Upper => text.to_uppercase(),
        Case::Title => {
            let mut out = String::with_capacity(text.len());
            let mut after_alnum = false;
            for c in text.chars() {
                if after_alnum {
                    out.extend(c.to_lowercase());
                } else {
                    out.extend(c.to_uppercase());
                }
                after_alnum = c.is_alphanumeric();
            }
            out
        }
    }
}

/// One random date with its style.
fn sample(rng: &mut ChaCha8Rng) -> (Date, Style) {
    let days = rng.random_range(Date::FIRST.days()..=Date::LAST.days());
    let date = Date::from_days(days);
    (date, Style::random(rng, date))
}

/// Generates the three splits, deterministic in `cfg`.
///
/// # Panics
/// If the requested sizes exceed what the generator can produce without
/// repeating sources (millions; far above any sensible configuration).
pub fn generate(cfg: &DatesConfig) -> DateSplits {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut seen = HashSet::new();
    let mut draw = |n: usize| take_unique(&mut rng, &mut seen, n);
    let valid = draw(cfg.valid);
    let test = draw(cfg.test);
    let train = draw(cfg.train);
    DateSplits { train, valid, test }
}

fn take_unique(
    rng: &mut ChaCha8Rng,
    seen: &mut HashSet<String>,
    n: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    let mut attempts = 0usize;
    while out.len() < n {
        attempts += 1;
        assert!(
            attempts <= 50 * n + 10_000,
            "dates: cannot draw {n} distinct sources"
        );
        let (date, style) = sample(rng);
        let source = render(date, style);
        if seen.insert(source.clone()) {
            out.push((source, date.iso()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zeller's congruence, converted to 0 = Monday; an independent check.
    fn zeller(date: Date) -> usize {
        let (mut y, mut m) = (date.year, date.month as i64);
        if m < 3 {
            m += 12;
            y -= 1;
        }
        let (k, j) = (y % 100, y / 100);
        let h = (date.day as i64 + 13 * (m + 1) / 5 + k + k / 4 + j / 4 + 5 * j) % 7;
        ((h + 5) % 7) as usize
    }

    fn style(form: Form, case: Case) -> Style {
        Style {
            form,
            abbreviate_month: false,
            abbreviate_weekday: false,
            pad: false,
            weekday: false,
            case,
        }
    }

    #[test]
    fn calendar_round_trips_and_weekdays_match_zeller() {
        assert_eq!(Date::new(1970, 1, 1).days(), 0);
        assert_eq!(Date::new(2018, 5, 9).weekday(), 2); // Wednesday
        assert_eq!(Date::FIRST.weekday(), 0); // Monday
        assert_eq!(Date::LAST.weekday(), 3); // Thursday
        assert_eq!(Date::LAST.days() - Date::FIRST.days() + 1, 73_049);
        let mut prev: Option<Date> = None;
        for days in Date::FIRST.days()..=Date::LAST.days() {
            let date = Date::from_days(days);
            assert_eq!(date.days(), days);
            assert_eq!(date.weekday(), zeller(date), "{date:?}");
            if let Some(p) = prev {
                assert!(p < date);
            }
            prev = Some(date);
        }
        assert_eq!(Date::from_days(Date::new(2000, 2, 29).days()).day, 29);
        assert_eq!(Date::from_days(Date::new(1900, 3, 1).days() - 1).day, 28);
    }

    #[test]
    fn every_form_renders_as_specified() {
        let date = Date::new(2018, 5, 9);
        let abbr = |mut s: Style| {
            s.abbreviate_month = true;
            s.abbreviate_weekday = true;
            s
        };
        let cases = [
            (style(Form::DayMonthYear, Case::AsIs), "9 May 2018"),
            (style(Form::PaddedDayMonthYear, Case::Lower), "09 may 2018"),
            (style(Form::MonthDayYear, Case::AsIs), "May 9, 2018"),
            (style(Form::MonthOrdinalYear, Case::AsIs), "May 9th, 2018"),
            (
                style(Form::WeekdayMonthDayYear, Case::AsIs),
                "Wednesday, May 9, 2018",
            ),
            (
                abbr(style(Form::WeekdayShortYear, Case::Lower)),
                "wed 9 may 18",
            ),
            (style(Form::SlashDmy, Case::AsIs), "9/5/2018"),
            (style(Form::DotDmy, Case::AsIs), "09.05.2018"),
            (style(Form::SlashYmd, Case::AsIs), "2018/05/09"),
            (style(Form::OrdinalOfMonth, Case::AsIs), "9th of May 2018"),
            (
                style(Form::TheOrdinalOf, Case::Lower),
                "the 9th of may, 2018",
            ),
            (style(Form::French, Case::AsIs), "9 mai 2018"),
            (style(Form::German, Case::AsIs), "9. Mai 2018"),
            (style(Form::DashDmy, Case::AsIs), "09-MAY-2018"),
            (
                style(Form::TheOrdinalOf, Case::Title),
                "The 9th Of May, 2018",
            ),
            (style(Form::DayMonthYear, Case::Upper), "9 MAY 2018"),
        ];
        for (style, want) in cases {
            assert_eq!(render(date, style), want, "{style:?}");
        }
        let mut s = style(Form::French, Case::AsIs);
        s.weekday = true;
        assert_eq!(render(Date::new(2018, 8, 1), s), "mercredi 1er août 2018");
        s.form = Form::German;
        assert_eq!(render(Date::new(2018, 3, 1), s), "Donnerstag, 1. März 2018");
        let mut s = style(Form::SlashDmy, Case::AsIs);
        s.pad = true;
        assert_eq!(render(date, s), "09/05/2018");
        assert_eq!(ordinal(1), "1st");
        assert_eq!(ordinal(12), "12th");
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(ordinal(23), "23rd");
        assert_eq!(ordinal(31), "31st");
    }

    #[test]
    fn generated_sources_cover_all_forms_and_casings() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut forms = HashSet::new();
        let mut cases = Vec::new();
        for _ in 0..5000 {
            let (date, style) = sample(&mut rng);
            forms.insert(style.form);
            cases.push(style.case);
            if style.form == Form::WeekdayShortYear {
                assert!((1950..=2049).contains(&date.year));
            }
            assert!(Date::FIRST <= date && date <= Date::LAST);
        }
        assert_eq!(forms.len(), Form::ALL.len());
        for case in [Case::AsIs, Case::Lower, Case::Upper, Case::Title] {
            assert!(cases.contains(&case), "{case:?}");
        }
    }

    /// Any weekday name in a generated source is the weekday of its target.
    #[test]
    fn weekdays_in_sources_are_correct() {
        let splits = generate(&DatesConfig::default());
        let mut checked = 0;
        for (src, tgt) in splits.train.iter().chain(&splits.valid) {
            let date = parse_iso(tgt);
            let lower = src.to_lowercase();
            let first = lower.split([' ', ',']).next().unwrap();
            // Three-letter abbreviations exist only for English weekdays.
            for (names, abbreviated) in [(&EN_DAYS, true), (&FR_DAYS, false), (&DE_DAYS, false)] {
                if let Some(k) = names.iter().position(|n| {
                    let n = n.to_lowercase();
                    first == n || (abbreviated && first.len() == 3 && n.starts_with(first))
                }) {
                    assert_eq!(k, zeller(date), "{src} -> {tgt}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    fn parse_iso(s: &str) -> Date {
        let parts: Vec<&str> = s.split('-').collect();
        Date::new(
            parts[0].parse().unwrap(),
            parts[1].parse().unwrap(),
            parts[2].parse().unwrap(),
        )
    }

    #[test]
    fn splits_are_sized_disjoint_and_deterministic() {
        let cfg = DatesConfig::default();
        let a = generate(&cfg);
        assert_eq!(
            (a.train.len(), a.valid.len(), a.test.len()),
            (20_000, 500, 500)
        );
        let mut all = HashSet::new();
        for (src, _) in a.train.iter().chain(&a.valid).chain(&a.test) {
            assert!(all.insert(src.clone()), "shared source {src}");
        }
        assert_eq!(generate(&cfg), a);
        let smaller = generate(&DatesConfig {
            train: 100,
            ..cfg.clone()
        });
        assert_eq!(smaller.valid, a.valid);
        assert_eq!(smaller.test, a.test);
        let reseeded = generate(&DatesConfig { seed: 2, ..cfg });
        assert_ne!(reseeded.valid, a.valid);
    }

    #[test]
    fn targets_are_iso_dates_in_range() {
        let splits = generate(&DatesConfig {
            train: 2000,
            ..DatesConfig::default()
        });
        for (_, tgt) in &splits.train {
            let d = parse_iso(tgt);
            assert_eq!(&d.iso(), tgt);
            assert!(Date::FIRST <= d && d <= Date::LAST);
        }
    }
}
