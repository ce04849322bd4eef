//! Lists as files offices open: CSV (UTF-8 with a byte-order mark, so that
//! Excel reads Chinese text) and XLSX, with column headers in Chinese or
//! English. Both are written a row at a time, so an export streams however
//! many rows it has: CSV by the `csv` crate's writer, XLSX by [`xlsx`] (the
//! sheet XML by hand, its zip container by the `zip` crate).

pub mod xlsx;

use std::cell::RefCell;

use serde::Deserialize;

/// What a list query answers with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A page of JSON.
    #[default]
    Json,
    /// Every row, as CSV.
    Csv,
    /// Every row, as an Excel workbook.
    Xlsx,
}

impl Format {
    /// The media type of the file.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// The language of column headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// 中文.
    #[default]
    Zh,
    /// English.
    En,
}

/// A column of an export.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header in English.
    pub en: &'static str,
    /// Header in Chinese.
    pub zh: &'static str,
}

/// A column headed `en` in English and `zh` in Chinese.
pub const fn col(en: &'static str, zh: &'static str) -> Column {
    Column { en, zh }
}

impl Column {
    /// The header in `lang`.
    pub fn header(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh,
            Lang::En => self.en,
        }
    }
}

/// One cell of an export.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// Nothing.
    Empty,
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n as f64)
    }
}

impl From<Option<String>> for Value {
    fn from(s: Option<String>) -> Self {
        s.map_or(Value::Empty, Value::Text)
    }
}

/// How rows of a list become cells.
pub trait Tabular {
    /// The columns; `sensitive` adds those only roles with sensitive rights
    /// may see.
    fn columns(sensitive: bool) -> Vec<Column>;
    /// This row's cells, matching [`Tabular::columns`]; times shown in the
    /// zone `utc_offset_minutes` east of UTC.
    fn cells(&self, sensitive: bool, utc_offset_minutes: i32) -> Vec<Value>;
}

/// Writes rows in one file format.
pub enum Encoder {
    /// CSV, by the `csv` crate's writer.
    Csv(Box<csv::Writer<Sink>>),
    /// XLSX.
    Xlsx(Box<xlsx::XlsxWriter>),
}

impl Encoder {
    /// Starts a file with a header row; returns the first bytes to send.
    pub fn start(format: Format, sheet: &str, headers: &[&str]) -> (Self, Vec<u8>) {
        match format {
            Format::Xlsx => {
                let (writer, bytes) = xlsx::XlsxWriter::start(sheet, headers);
                (Encoder::Xlsx(Box::new(writer)), bytes)
            }
            Format::Csv | Format::Json => {
                let mut csv = csv_writer();
                let mut out = "\u{feff}".as_bytes().to_vec();
                let cells: Vec<Value> = headers.iter().map(|h| Value::from(*h)).collect();
                out.extend(csv_row(&mut csv, &cells));
                (Encoder::Csv(Box::new(csv)), out)
            }
        }
    }

    /// Encodes one row; returns bytes ready to send (maybe none yet).
    pub fn row(&mut self, cells: &[Value]) -> Vec<u8> {
        match self {
            Encoder::Csv(csv) => csv_row(csv, cells),
            Encoder::Xlsx(writer) => {
                let cells: Vec<xlsx::Cell<'_>> = cells
                    .iter()
                    .map(|c| match c {
                        Value::Text(s) => xlsx::Cell::Text(s),
                        Value::Number(n) => xlsx::Cell::Number(*n),
                        Value::Empty => xlsx::Cell::Empty,
                    })
                    .collect();
                writer.row(&cells)
            }
        }
    }

    /// Ends the file; returns its last bytes.
    pub fn finish(self) -> Vec<u8> {
        match self {
            // Each row was flushed as it was written.
            Encoder::Csv(_) => Vec::new(),
            Encoder::Xlsx(writer) => writer.finish(),
        }
    }
}

/// Bytes a writer has produced and not yet handed out.
///
/// The `csv` and `zip` writers own the [`Write`](std::io::Write) they write
/// to and lend it back only by shared reference (`get_ref`; `zip`'s
/// `get_mut` is `unsafe`, which this workspace forbids), so the buffer sits in
/// a `RefCell` that the encoder empties after each row through that
/// reference. That keeps memory to about one row whatever the file's length.
#[derive(Debug, Default)]
pub struct Sink(RefCell<Vec<u8>>);

impl Sink {
    /// Takes everything written so far.
    fn take(&self) -> Vec<u8> {
        self.0.take()
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a spreadsheet may take for the start of a formula at the start of
/// a cell: OWASP's list for CSV injection (`=`, `+`, `-`, `@`, tab,
/// carriage return; a spreadsheet skips the last two and reads on).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The CSV writer of an export: RFC 4180 with CRLF line ends, rows of any
/// length (a note row may be shorter than the header).
///
/// Quoting is the crate's "where necessary" (a comma, quote, CR or LF),
/// plus every field holding `'`: the writer quotes any field that holds its
/// comment byte, and `'` is what [`csv_row`] puts before a text that
/// a spreadsheet would run as a formula, so such a defused cell is always
/// quoted, as OWASP advises. (Writers never emit comments; other text with
/// an apostrophe is quoted too, which readers take the same way.)
fn csv_writer() -> csv::Writer<Sink> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .flexible(true)
        .comment(Some(b'\''))
        .from_writer(Sink::default())
}

/// Writes one CSV row and returns its bytes. Text that a spreadsheet would
/// run as a formula (starting with one of [`FORMULA_STARTS`]) is prefixed
/// with `'`. XLSX needs no such guard: its text cells are inline strings,
/// which a spreadsheet never evaluates.
fn csv_row(csv: &mut csv::Writer<Sink>, cells: &[Value]) -> Vec<u8> {
    let mut defused = String::new();
    for cell in cells {
        let written = match cell {
            Value::Empty => csv.write_field(""),
            Value::Number(n) => csv.write_field(n.to_string()),
            Value::Text(s) if s.starts_with(FORMULA_STARTS) => {
                defused.clear();
                defused.push('\'');
                defused.push_str(s);
                csv.write_field(&defused)
            }
            Value::Text(s) => csv.write_field(s),
        };
        written.expect("writing CSV to memory");
    }
    csv.write_record(None::<&[u8]>)
        .expect("writing CSV to memory");
    csv.flush().expect("writing CSV to memory");
    csv.get_ref().take()
}

/// `ms` since the Unix epoch as local `YYYY-MM-DD HH:MM`.
pub fn local_time(ms: i64, utc_offset_minutes: i32) -> String {
    let minutes = ms.div_euclid(60_000) + i64::from(utc_offset_minutes);
    let (days, minute_of_day) = (minutes.div_euclid(1440), minutes.rem_euclid(1440));
    format!(
        "{} {:02}:{:02}",
        date(days),
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// Days since the Unix epoch as `YYYY-MM-DD` (proleptic Gregorian).
pub fn date(days: i64) -> String {
    // Shift to a calendar that starts on 1 March 0000, so that leap days
    // fall at the end of each year; eras are 400 years long.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_local_times() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(11_016), "2000-02-29");
        assert_eq!(date(20_781), "2026-11-24");
        // 2026-11-24 16:30 UTC is 2026-11-25 00:30 in China.
        let ms = (20_781 * 1440 + 16 * 60 + 30) * 60_000;
        assert_eq!(local_time(ms, 0), "2026-11-24 16:30");
        assert_eq!(local_time(ms, 480), "2026-11-25 00:30");
        assert_eq!(local_time(ms, -300), "2026-11-24 11:30");
    }

    #[test]
    fn csv_quotes_what_it_must_and_defuses_formulas() {
        let cells = [
            Value::from("张三"),
            Value::from("a,b"),
            Value::from("say \"hi\""),
            Value::from("=1+1"),
            Value::Number(3.0),
            Value::Empty,
            Value::from("two\nlines"),
            Value::from("\t=1+1"),
            Value::from("\r@SUM(A1)"),
            Value::from("-2"),
        ];
        let out = csv_row(&mut csv_writer(), &cells);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "张三,\"a,b\",\"say \"\"hi\"\"\",\"'=1+1\",3,,\"two\nlines\",\"'\t=1+1\",\
             \"'\r@SUM(A1)\",\"'-2\"\r\n"
        );
    }

    #[test]
    fn csv_round_trips_through_a_reader() {
        let (mut csv, mut file) =
            Encoder::start(Format::Csv, "x", &["户号", "备注", "人数", "电话"]);
        let rows = [
            vec![
                Value::from("张三"),
                Value::from("a,b \"c\"\r\nd"),
                Value::Number(3.5),
                Value::Empty,
            ],
            vec![
                Value::from("=HYPERLINK(\"x\")"),
                Value::from("O'Brien"),
                Value::Number(-2.0),
                Value::from("+86 138"),
            ],
            vec![Value::from("… short note row")],
        ];
        for row in &rows {
            file.extend(csv.row(row));
        }
        file.extend(csv.finish());

        let body = file
            .strip_prefix("\u{feff}".as_bytes())
            .expect("a byte order mark");
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(body);
        let got: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(
            got,
            [
                vec!["户号", "备注", "人数", "电话"],
                vec!["张三", "a,b \"c\"\r\nd", "3.5", ""],
                vec!["'=HYPERLINK(\"x\")", "O'Brien", "-2", "'+86 138"],
                vec!["… short note row"],
            ]
        );
    }

    #[test]
    fn csv_files_start_with_a_byte_order_mark_and_headers() {
        let (_, start) = Encoder::start(Format::Csv, "x", &["户号", "地址"]);
        assert_eq!(String::from_utf8(start).unwrap(), "\u{feff}户号,地址\r\n");
    }
}
