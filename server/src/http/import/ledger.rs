//! The ledger's layout, and reading a ledger file (XLSX or CSV) into
//! cells; the template to fill in.

use std::io::Cursor;

use sync_core::records::Tag;

use crate::export::{Encoder, Format, Value};
use crate::http::error::AppError;

/// One column of the ledger layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The header in Chinese, as offices write it.
    pub zh: &'static str,
    /// The header in English, also accepted.
    pub en: &'static str,
    /// Whether a row must fill it in.
    pub required: bool,
    /// What it holds, for the template's example and the docs.
    pub example: &'static str,
}

const fn column(
    zh: &'static str,
    en: &'static str,
    required: bool,
    example: &'static str,
) -> Column {
    Column {
        zh,
        en,
        required,
        example,
    }
}

/// The ledger's columns, in the template's order.
pub const COLUMNS: [Column; 14] = [
    column("户编号", "household_no", true, "1"),
    column("网格", "grid", false, ""),
    column("楼栋", "building", false, "3栋"),
    column("单元", "unit", false, "2单元"),
    column("房号", "room", false, "301"),
    column("姓名", "name", true, "张伟"),
    column("身份证号", "id_number", false, "110101199003074514"),
    column("性别", "sex", false, "男"),
    column("出生日期", "birth_date", false, "1990-03-07"),
    column("与户主关系", "relation", false, "户主"),
    column("联系电话", "phone", false, "13800138000"),
    column("户籍类型", "residence", false, "户籍"),
    column("标签", "tags", false, "退役军人"),
    column("备注", "notes", false, ""),
];

pub(super) const NO: usize = 0;
pub(super) const GRID: usize = 1;
pub(super) const BUILDING: usize = 2;
pub(super) const UNIT: usize = 3;
pub(super) const ROOM: usize = 4;
pub(super) const NAME: usize = 5;
pub(super) const ID_NUMBER: usize = 6;
pub(super) const SEX: usize = 7;
pub(super) const BIRTH_DATE: usize = 8;
pub(super) const RELATION: usize = 9;
pub(super) const PHONE: usize = 10;
pub(super) const RESIDENCE: usize = 11;
pub(super) const TAGS: usize = 12;
pub(super) const NOTES: usize = 13;

/// Most rows one ledger may hold.
pub const MAX_ROWS: usize = 100_000;

/// One spreadsheet cell as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Cell {
    pub(super) text: String,
    /// Stored as a number (an ID number typed into a number cell has lost
    /// its last digits).
    pub(super) numeric: bool,
}

/// Reads a ledger, XLSX (recognised by its zip signature) or CSV (UTF-8,
/// with or without a byte-order mark), into rows of cells, header first.
pub(super) fn read_sheet(bytes: &[u8]) -> Result<Vec<Vec<Cell>>, AppError> {
    let bad = |problem: String| AppError::Invalid {
        field: "file",
        problem,
    };
    let rows = if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(bytes).map_err(|e| bad(format!("not a readable XLSX workbook: {e}")))?
    } else {
        let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
            .map_err(|_| bad("a CSV file must be UTF-8 (save it as \"CSV UTF-8\")".into()))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| bad(format!("not a readable CSV file: {e}")))?;
            rows.push(
                record
                    .iter()
                    .map(|t| Cell {
                        text: t.trim().to_owned(),
                        numeric: false,
                    })
                    .collect(),
            );
        }
        rows
    };
    if rows.len() > MAX_ROWS + 1 {
        return Err(bad(format!("holds more than {MAX_ROWS} rows: split it")));
    }
    Ok(rows)
}

/// The first sheet of a workbook.
fn read_xlsx(bytes: &[u8]) -> Result<Vec<Vec<Cell>>, calamine::Error> {
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or(calamine::Error::Msg("the workbook has no sheet"))??;
    Ok(range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Int(i) => Cell {
                        text: i.to_string(),
                        numeric: true,
                    },
                    Data::Float(f) => Cell {
                        text: if f.fract() == 0.0 && f.abs() < 1e17 {
                            format!("{f:.0}")
                        } else {
                            f.to_string()
                        },
                        numeric: true,
                    },
                    // A date cell: days since 1899-12-30 (Excel's epoch).
                    Data::DateTime(d) => Cell {
                        text: crate::export::date(d.as_f64().floor() as i64 - 25_569),
                        numeric: false,
                    },
                    Data::DateTimeIso(s) => Cell {
                        text: s.get(..10).unwrap_or(s).to_owned(),
                        numeric: false,
                    },
                    Data::Empty | Data::Error(_) => Cell::default(),
                    other => Cell {
                        text: other.to_string().trim().to_owned(),
                        numeric: false,
                    },
                })
                .collect()
        })
        .collect())
}

/// The Chinese name of a tag, as ledgers write it.
pub const fn tag_zh(tag: Tag) -> &'static str {
    match tag {
        Tag::ElderlyAlone => "孤寡老人",
        Tag::LeftBehindChild => "留守儿童",
        Tag::Disabled => "残障人士",
        Tag::LowIncome => "低保户",
        Tag::Veteran => "退役军人",
    }
}

/// The ledger template: the header row and one example household, as CSV
/// (UTF-8 with a byte-order mark, for Excel) or XLSX.
pub fn template(format: Format) -> Vec<u8> {
    let headers: Vec<&str> = COLUMNS.iter().map(|c| c.zh).collect();
    let examples: [[&str; COLUMNS.len()]; 2] = [
        COLUMNS.map(|c| c.example),
        [
            "1",
            "",
            "3栋",
            "2单元",
            "301",
            "李娜",
            "110101199205164526",
            "女",
            "1992-05-16",
            "配偶",
            "13900139000",
            "户籍",
            "",
            "",
        ],
    ];
    let (mut writer, mut out) = Encoder::start(format, "户籍台账", &headers);
    for example in examples {
        let cells: Vec<Value> = example.iter().map(|&e| Value::from(e)).collect();
        out.extend(writer.row(&cells));
    }
    out.extend(writer.finish());
    out
}
