//! Household ledgers that offices already keep (一户一档, in Excel or CSV)
//! imported into the grids of an admin's area.
//!
//! One row per person; the rows of one household share its number (户编号)
//! in the ledger. The column layout, with Chinese headers (English ones are
//! accepted too), is [`COLUMNS`]; [`template`] writes it as a file to fill
//! in. An import first plans every household ([`plan`]): a household is
//! taken whole or not at all, and every row of a household that is not
//! taken is reported with the reason. A dry run stops there.
//!
//! Each household imported becomes a document like any other: written by
//! a replica in the importing admin's name and stored through a sync round
//! ([`crate::engine::sync::round`]), so the policy checks it, the projections list
//! it and the workers' phones receive it. Its record id is derived from its
//! grid and address, so importing the same ledger twice stores nothing
//! twice: the second run reports the households as already imported.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Cursor;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sync_core::records::{Address, Household, Member, Relation, Residence, Sex, Tag};
use sync_core::{MemoryStore, RecordId, RecordKind, Replica};

use crate::domain::OrgUnitKind;
use crate::export::{Encoder, Format, Value};
use crate::http::AppState;
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::storage::query::{After, HouseholdFilter, Page, SortKey};
use crate::storage::{DeviceRow, Scope};
use sync_core::policy::Role;

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

const NO: usize = 0;
const GRID: usize = 1;
const BUILDING: usize = 2;
const UNIT: usize = 3;
const ROOM: usize = 4;
const NAME: usize = 5;
const ID_NUMBER: usize = 6;
const SEX: usize = 7;
const BIRTH_DATE: usize = 8;
const RELATION: usize = 9;
const PHONE: usize = 10;
const RESIDENCE: usize = 11;
const TAGS: usize = 12;
const NOTES: usize = 13;

/// Most rows one ledger may hold.
pub const MAX_ROWS: usize = 100_000;

/// What an import did, or, for a dry run, would do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Whether this was a dry run (nothing stored).
    pub dry_run: bool,
    /// Data rows read (the header not counted).
    pub rows: usize,
    /// Households imported (or that would be).
    pub households: usize,
    /// Their members.
    pub members: usize,
    /// Households found already imported by an earlier run: not stored
    /// again.
    pub already_imported: usize,
    /// Every row not taken, with why.
    pub refused: Vec<RowProblem>,
    /// The record ids of the households imported (or that would be).
    pub imported: Vec<String>,
}

/// A row not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowProblem {
    /// The row's number in the spreadsheet, counting the header as row 1.
    pub row: usize,
    /// The column at fault, by its Chinese header; `null` for the row as a
    /// whole.
    pub column: Option<String>,
    /// `missing_field`, `bad_value`, `bad_id_number`, `unknown_org_unit`,
    /// `duplicate_household`, or `household_refused` (the row is fine, but
    /// another row of its household was refused, and a household is taken
    /// whole or not at all).
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

/// One spreadsheet cell as read.
#[derive(Debug, Clone, Default, PartialEq)]
struct Cell {
    text: String,
    /// Stored as a number (an ID number typed into a number cell has lost
    /// its last digits).
    numeric: bool,
}

/// Reads a ledger, XLSX (recognised by its zip signature) or CSV (UTF-8,
/// with or without a byte-order mark), into rows of cells, header first.
fn read_sheet(bytes: &[u8]) -> Result<Vec<Vec<Cell>>, AppError> {
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

/// A household the import takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Its record id, from its grid and address.
    pub id: RecordId,
    /// The record.
    pub household: Household,
    /// Its rows in the spreadsheet.
    pub rows: Vec<usize>,
}

/// What a ledger holds, checked: the households to take and the rows not
/// taken.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Data rows read.
    pub rows: usize,
    /// Households to take, in ledger order.
    pub households: Vec<Planned>,
    /// Rows not taken.
    pub refused: Vec<RowProblem>,
}

/// The record id a ledger household gets: the same for the same grid and
/// address, whoever imports it and however often.
pub fn household_id(grid: &str, address: &Address) -> RecordId {
    let mut hash = Sha256::new();
    for part in [
        "ledger",
        grid,
        &address.building,
        &address.unit,
        &address.room,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let value = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    RecordId::from_parts(RecordKind::Household, value)
}

/// Checks a ledger read from `bytes`: rows without a grid go to
/// `default_grid`; a grid must be one `may_import` allows.
pub fn plan(
    bytes: &[u8],
    default_grid: &str,
    may_import: impl Fn(&str) -> bool,
) -> Result<Plan, AppError> {
    let sheet = read_sheet(bytes)?;
    let Some((header, rows)) = sheet.split_first() else {
        return Err(AppError::Invalid {
            field: "file",
            problem: "is empty: the first row names the columns".into(),
        });
    };
    let mut at = [None; COLUMNS.len()];
    for (i, cell) in header.iter().enumerate() {
        let name = cell.text.trim();
        if let Some(c) = COLUMNS.iter().position(|c| c.zh == name || c.en == name) {
            at[c].get_or_insert(i);
        }
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .zip(at)
        .filter(|(c, i)| c.required && i.is_none())
        .map(|(c, _)| c.zh)
        .collect();
    if !missing.is_empty() {
        return Err(AppError::Invalid {
            field: "file",
            problem: format!(
                "lacks the column(s) {}: the first row must name the columns as the template does",
                missing.join(", ")
            ),
        });
    }
    let empty = Cell::default();
    let cell = |row: &[Cell], c: usize| -> Cell {
        at[c].and_then(|i| row.get(i)).unwrap_or(&empty).clone()
    };

    // Rows by household number, in order of first appearance; a blank row
    // is skipped.
    let mut plan = Plan::default();
    // Each household's rows: (spreadsheet row number, cells).
    type Rows<'a> = Vec<(usize, &'a [Cell])>;
    let mut groups: Vec<(String, Rows<'_>)> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let line = i + 2;
        if row.iter().all(|c| c.text.is_empty()) {
            continue;
        }
        plan.rows += 1;
        let no = cell(row, NO).text;
        if no.is_empty() {
            plan.refused.push(problem(
                line,
                Some(NO),
                "missing_field",
                "户编号 is empty: every row names its household",
            ));
            continue;
        }
        let g = *group_of.entry(no.clone()).or_insert_with(|| {
            groups.push((no.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push((line, row.as_slice()));
    }

    let mut seen_ids: HashMap<RecordId, usize> = HashMap::new();
    let mut seen_id_numbers: HashMap<String, usize> = HashMap::new();
    for (_, group) in groups {
        let mut problems = Vec::new();
        let (first, first_row) = group[0];
        let grid = group
            .iter()
            .map(|(_, r)| cell(r, GRID).text)
            .find(|g| !g.is_empty())
            .unwrap_or_else(|| default_grid.to_owned());
        if !may_import(&grid) {
            problems.push(problem(
                first,
                Some(GRID),
                "unknown_org_unit",
                &format!("no grid {grid:?} in the area you administer"),
            ));
        }
        let address = Address {
            building: cell(first_row, BUILDING).text,
            unit: cell(first_row, UNIT).text,
            room: cell(first_row, ROOM).text,
        };
        if address.building.is_empty() && address.unit.is_empty() && address.room.is_empty() {
            problems.push(problem(
                first,
                Some(ROOM),
                "missing_field",
                "the household has no address: fill in 楼栋, 单元 or 房号",
            ));
        }
        let mut household = Household {
            org_unit: grid.clone(),
            address,
            ..Household::default()
        };
        let mut notes = Vec::new();
        for &(line, row) in &group {
            match member(row, &cell, household.members.len() + 1) {
                Ok((m, tags)) => {
                    if !m.id_number.is_empty() {
                        if let Some(earlier) = seen_id_numbers.get(&m.id_number) {
                            problems.push(problem(
                                line,
                                Some(ID_NUMBER),
                                "bad_id_number",
                                &format!("the same ID number as row {earlier}"),
                            ));
                            continue;
                        }
                        seen_id_numbers.insert(m.id_number.clone(), line);
                    }
                    for tag in tags {
                        household.set_tag(tag, true);
                    }
                    if m.relation == Relation::Head && household.head.is_empty() {
                        household.head = m.id.clone();
                    }
                    household.members.push(m);
                }
                Err((column, code, message)) => {
                    problems.push(problem(line, column, code, &message))
                }
            }
            let note = cell(row, NOTES).text;
            if !note.is_empty() {
                notes.push(note);
            }
        }
        household.notes = notes.join("\n").as_str().into();
        let id = household_id(&grid, &household.address);
        if problems.is_empty()
            && let Some(earlier) = seen_ids.get(&id)
        {
            problems.push(problem(
                first,
                None,
                "duplicate_household",
                &format!("the same grid and address as the household of row {earlier}"),
            ));
        }
        if problems.is_empty() {
            seen_ids.insert(id.clone(), first);
            let rows = group.iter().map(|(line, _)| *line).collect();
            plan.households.push(Planned {
                id,
                household,
                rows,
            });
            continue;
        }
        let bad_lines: Vec<usize> = problems.iter().map(|p| p.row).collect();
        for &(line, _) in &group {
            if !bad_lines.contains(&line) {
                problems.push(problem(
                    line,
                    None,
                    "household_refused",
                    &format!(
                        "not imported: row {} of the same household was refused, and a household is taken whole",
                        bad_lines[0]
                    ),
                ));
            }
        }
        plan.refused.extend(problems);
    }
    plan.refused.sort_by_key(|p| p.row);
    Ok(plan)
}

type CellProblem = (Option<usize>, &'static str, String);

/// The member one row describes, and the tags it names.
fn member(
    row: &[Cell],
    cell: &impl Fn(&[Cell], usize) -> Cell,
    n: usize,
) -> Result<(Member, Vec<Tag>), CellProblem> {
    let bad = |c: usize, message: String| (Some(c), "bad_value", message);
    let name = cell(row, NAME).text;
    if name.is_empty() {
        return Err((Some(NAME), "missing_field", "姓名 is empty".into()));
    }
    let mut m = Member::new(format!("m{n}"), name);
    let id_number = cell(row, ID_NUMBER);
    if !id_number.text.is_empty() {
        let birth = check_id_number(&id_number.text).map_err(|why| {
            let why = if id_number.numeric {
                "was stored as a number, which loses its last digits: format the column as text"
                    .to_owned()
            } else {
                why
            };
            (
                Some(ID_NUMBER),
                "bad_id_number",
                format!("{}: {why}", id_number.text),
            )
        })?;
        m.id_number = id_number.text.to_uppercase();
        m.birth_date = birth;
    }
    m.sex = match cell(row, SEX).text.as_str() {
        "" if !m.id_number.is_empty() => sex_of(&m.id_number),
        "" => Sex::Unknown,
        "男" | "M" | "Male" | "male" => Sex::Male,
        "女" | "F" | "Female" | "female" => Sex::Female,
        other => return Err(bad(SEX, format!("{other:?} is not 男 or 女"))),
    };
    let birth = cell(row, BIRTH_DATE).text;
    if !birth.is_empty() {
        let birth = birth.replace(['/', '.'], "-");
        if !is_date(&birth) {
            return Err(bad(
                BIRTH_DATE,
                format!("{birth:?} is not a date as YYYY-MM-DD"),
            ));
        }
        m.birth_date = birth;
    }
    m.relation = match cell(row, RELATION).text.as_str() {
        "户主" | "本人" | "Head" => Relation::Head,
        "配偶" | "妻" | "夫" | "Spouse" => Relation::Spouse,
        "子女" | "子" | "女" | "儿子" | "女儿" | "Child" => Relation::Child,
        "父母" | "父亲" | "母亲" | "Parent" => Relation::Parent,
        "孙子女" | "孙子" | "孙女" | "Grandchild" => Relation::Grandchild,
        "兄弟姐妹" | "Sibling" => Relation::Sibling,
        "" | "其他" | "Other" => Relation::Other,
        other => {
            return Err(bad(
                RELATION,
                format!("{other:?} is not a relation the template lists"),
            ));
        }
    };
    let phone = cell(row, PHONE).text;
    let phone_ok = phone.len() <= 20
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
    if !phone_ok {
        return Err(bad(PHONE, format!("{phone:?} is not a phone number")));
    }
    m.phone = phone;
    m.residence = match cell(row, RESIDENCE).text.as_str() {
        "" | "户籍" | "Registered" => Residence::Registered,
        "流动" | "Floating" => Residence::Floating,
        "常住" | "Resident" => Residence::Resident,
        other => {
            return Err(bad(
                RESIDENCE,
                format!("{other:?} is not 户籍, 流动 or 常住"),
            ));
        }
    };
    let mut tags = Vec::new();
    for name in cell(row, TAGS)
        .text
        .split(|c: char| matches!(c, ';' | '；' | ',' | '，' | '、') || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        let tag = Tag::ALL
            .into_iter()
            .find(|t| tag_zh(*t) == name || t.as_str() == name)
            .ok_or_else(|| bad(TAGS, format!("{name:?} is not a tag the template lists")))?;
        tags.push(tag);
    }
    Ok((m, tags))
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

/// Checks a resident identity card number (GB 11643: 17 digits, then a
/// check digit or `X`) and returns the birth date it holds.
pub fn check_id_number(id: &str) -> Result<String, String> {
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return Err("must be 18 characters: 17 digits and a check digit or X".into());
    }
    if char::from(b[17].to_ascii_uppercase()) != id_check_digit(&id[..17]) {
        return Err("its check digit does not match: a digit is wrong".into());
    }
    let birth = format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
    if !is_date(&birth) {
        return Err(format!("holds no valid birth date ({})", &id[6..14]));
    }
    Ok(birth)
}

/// The check digit (`0`–`9` or `X`) of the first 17 digits of an ID
/// number: ISO 7064 MOD 11-2.
pub fn id_check_digit(first17: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    char::from(CHECK[(sum % 11) as usize])
}

/// Sex from the 17th digit of an ID number: odd for men.
fn sex_of(id: &str) -> Sex {
    match id.as_bytes()[16] % 2 {
        1 => Sex::Male,
        _ => Sex::Female,
    }
}

/// `YYYY-MM-DD` with a month and day that exist.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return false;
    }
    let (y, m, d): (u32, u32, u32) = (
        s[0..4].parse().unwrap_or(0),
        s[5..7].parse().unwrap_or(0),
        s[8..10].parse().unwrap_or(0),
    );
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2100).contains(&y) && (1..=days).contains(&d)
}

fn problem(row: usize, column: Option<usize>, code: &str, message: &str) -> RowProblem {
    RowProblem {
        row,
        column: column.map(|c| COLUMNS[c].zh.to_owned()),
        code: code.to_owned(),
        message: message.to_owned(),
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

/// Who imports: an admin, with the device the records are written from
/// and the org units they administer.
#[derive(Debug, Clone)]
pub struct Importer {
    /// The admin and their device.
    pub auth: AuthDevice,
    /// The org units the admin administers.
    pub area: HashSet<String>,
}

impl Importer {
    /// The admin `username` importing from the command line, through a
    /// device of their own made for it, revoked at once (it never signs
    /// in; it only names where the records came from).
    pub async fn command_line(state: &AppState, username: &str) -> Result<Self, AppError> {
        let user = state
            .engine
            .storage
            .user_by_username(username)
            .await?
            .ok_or(AppError::Missing("user"))?;
        let role: Role = user.role.parse().map_err(AppError::internal)?;
        if role != Role::Admin {
            return Err(AppError::Forbidden(format!(
                "{username} is a {role}: ledgers are imported in an admin's name"
            )));
        }
        let now = crate::domain::now_ms();
        let device = DeviceRow {
            id: format!("dev_{}", crate::domain::random_hex(16)),
            user_id: user.id.clone(),
            name: "ledger import (command line)".into(),
            created_at: now,
            revoked_at: Some(now),
        };
        state
            .engine
            .storage
            .insert_device(&device, &crate::domain::random_hex(32))
            .await?;
        Ok(Self {
            auth: AuthDevice {
                user_id: user.id.clone(),
                device_id: device.id,
                role,
                scope_version: user.scope_version,
            },
            area: state
                .engine
                .storage
                .area(&user.id)
                .await?
                .into_iter()
                .collect(),
        })
    }
}

/// Imports the ledger `bytes` into `grid` (rows naming no grid), or for a
/// dry run only reports what it would do. `progress(done, total)` after
/// each stored batch of households.
pub async fn import(
    state: &AppState,
    importer: &Importer,
    grid: &str,
    bytes: &[u8],
    dry_run: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, AppError> {
    let grid_kinds: HashSet<String> = state
        .engine
        .storage
        .org_units()
        .await?
        .into_iter()
        .filter(|u| u.kind == OrgUnitKind::Grid && importer.area.contains(&u.id))
        .map(|u| u.id)
        .collect();
    if !grid_kinds.contains(grid) {
        return Err(AppError::Missing("grid"));
    }
    let plan = plan(bytes, grid, |g| grid_kinds.contains(g))?;
    let mut report = ImportReport {
        dry_run,
        rows: plan.rows,
        refused: plan.refused,
        ..ImportReport::default()
    };

    // Households already in the grid: the same id (imported before) or the
    // same address under another id (entered by a worker, or by another
    // ledger).
    let mut existing: BTreeMap<String, BTreeMap<(String, String, String), String>> =
        BTreeMap::new();
    let mut take = Vec::new();
    for planned in plan.households {
        let grid = planned.household.org_unit.clone();
        if !existing.contains_key(&grid) {
            let listed = households_in(state, &importer.auth, &grid).await?;
            existing.insert(grid.clone(), listed);
        }
        let a = &planned.household.address;
        let key = (a.building.clone(), a.unit.clone(), a.room.clone());
        match existing[&grid].get(&key) {
            Some(id) if *id == planned.id.to_string() => report.already_imported += 1,
            Some(id) => {
                let message = format!(
                    "{} {} {}: the grid has this address already, as household {id}",
                    a.building, a.unit, a.room
                );
                report
                    .refused
                    .extend(planned.rows.iter().map(|&row| RowProblem {
                        row,
                        column: None,
                        code: "duplicate_household".into(),
                        message: message.clone(),
                    }));
            }
            None => take.push(planned),
        }
    }
    report.refused.sort_by_key(|p| p.row);
    report.households = take.len();
    report.members = take.iter().map(|p| p.household.members.len()).sum();
    report.imported = take.iter().map(|p| p.id.to_string()).collect();
    if dry_run || take.is_empty() {
        return Ok(report);
    }

    let mut replica = Replica::open(MemoryStore::default()).map_err(AppError::internal)?;
    for planned in &take {
        replica
            .create_with_id(planned.id.clone(), &planned.household)
            .map_err(AppError::internal)?;
    }
    let total = take.len();
    while !replica.pending().is_empty() {
        let response =
            crate::engine::sync::round(&state.engine, &importer.auth, replica.sync_request())
                .await?;
        if let Some(e) = response.errors.first() {
            return Err(AppError::internal(format!(
                "import refused: {} {} {}",
                e.id, e.code, e.message
            )));
        }
        replica
            .apply_response(response)
            .map_err(AppError::internal)?;
        progress(total - replica.pending().len(), total);
    }
    Ok(report)
}

/// The households of `grid` by address, as the admin sees them.
async fn households_in(
    state: &AppState,
    auth: &AuthDevice,
    grid: &str,
) -> Result<BTreeMap<(String, String, String), String>, AppError> {
    let unit = state
        .engine
        .storage
        .org_unit(grid)
        .await?
        .ok_or(AppError::Missing("grid"))?;
    let scope = Scope::of(&auth.user_id, auth.role);
    let filter = HouseholdFilter {
        under: Some(unit.path),
        tag: None,
        residence: None,
        text: None,
        not_visited_since: None,
    };
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = Page {
            sort: "h.id",
            numeric: false,
            desc: false,
            limit: 1000,
            after: after.take(),
        };
        let rows = state
            .engine
            .storage
            .households(&scope, &filter, &page)
            .await?;
        let Some(last) = rows.last() else {
            return Ok(out);
        };
        after = Some(After {
            key: SortKey::Text(last.id.clone()),
            id: last.id.clone(),
        });
        let full = rows.len() as i64 == page.limit;
        for h in rows {
            if h.org_unit == grid {
                out.insert((h.building, h.unit, h.room), h.id);
            }
        }
        if !full {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "户编号,网格,楼栋,单元,房号,姓名,身份证号,性别,出生日期,与户主关系,联系电话,户籍类型,标签\n";

    fn plan_of(rows: &str) -> Plan {
        plan(format!("{HEADER}{rows}").as_bytes(), "g1", |g| {
            g == "g1" || g == "g2"
        })
        .unwrap()
    }

    #[test]
    fn id_numbers_are_checked_by_their_check_digit() {
        assert_eq!(check_id_number("110101199003074514").unwrap(), "1990-03-07");
        assert_eq!(check_id_number("110101199205164526").unwrap(), "1992-05-16");
        assert!(check_id_number("11010119920516452X").is_err());
        assert!(check_id_number("110101199003074515").is_err());
        assert!(check_id_number("11010119900307451").is_err());
        assert!(check_id_number("110101199013074511").is_err());
    }

    #[test]
    fn rows_of_one_household_make_one_record() {
        let plan = plan_of(
            "7,,3栋,2单元,301,张伟,110101199003074514,,,户主,13800138000,户籍,退役军人\n\
             7,,3栋,2单元,301,李娜,,女,1992-05-16,配偶,,流动,\n",
        );
        assert_eq!(plan.refused, []);
        assert_eq!(plan.rows, 2);
        let h = &plan.households[0].household;
        assert_eq!(h.org_unit, "g1");
        assert_eq!(h.members.len(), 2);
        assert_eq!(h.head, "m1");
        assert_eq!(h.members[0].sex, Sex::Male, "from the ID number");
        assert_eq!(h.members[0].birth_date, "1990-03-07");
        assert_eq!(h.members[1].residence, Residence::Floating);
        assert!(h.has_tag(Tag::Veteran));
        assert_eq!(plan.households[0].id, household_id("g1", &h.address));
    }

    #[test]
    fn a_household_with_a_bad_row_is_refused_whole_and_every_row_says_why() {
        let plan = plan_of(
            "1,,1栋,,101,王强,110101199003074515,,,户主,,,\n\
             1,,1栋,,101,王芳,,,,,,,\n\
             2,g9,1栋,,102,赵六,,,,,,,\n\
             3,,1栋,,103,,,,,,,,\n\
             4,,1栋,,104,钱七,,,,,,,\n\
             5,,1栋,,104,孙八,,,,,,,\n",
        );
        let codes: Vec<(usize, &str)> = plan
            .refused
            .iter()
            .map(|p| (p.row, p.code.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                (2, "bad_id_number"),
                (3, "household_refused"),
                (4, "unknown_org_unit"),
                (5, "missing_field"),
                (7, "duplicate_household"),
            ]
        );
        assert_eq!(plan.households.len(), 1, "only household 4");
        assert_eq!(plan.refused[0].column.as_deref(), Some("身份证号"));
    }

    #[test]
    fn a_file_without_the_required_columns_is_refused_whole() {
        let err = plan("姓名,电话\n张三,1\n".as_bytes(), "g1", |_| true).unwrap_err();
        assert!(err.to_string().contains("户编号"), "{err}");
    }

    #[test]
    fn the_template_reads_back_as_one_good_household() {
        for format in [Format::Csv, Format::Xlsx] {
            let plan = plan(&template(format), "g1", |g| g == "g1").unwrap();
            assert_eq!(plan.refused, [], "{format:?}");
            assert_eq!(plan.households.len(), 1);
            assert_eq!(plan.households[0].household.members.len(), 2);
        }
    }
}
