//! Planning an import: a ledger's rows checked and grouped into
//! households, each taken whole or not at all, with the reason for every
//! row not taken.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sync_core::records::{Address, Household, Member, Relation, Residence, Sex, Tag};
use sync_core::{RecordId, RecordKind};

use super::RowProblem;
use super::ledger::{
    BIRTH_DATE, BUILDING, COLUMNS, Cell, GRID, ID_NUMBER, NAME, NO, NOTES, PHONE, RELATION,
    RESIDENCE, ROOM, SEX, TAGS, UNIT, read_sheet, tag_zh,
};
use crate::http::error::AppError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::Format;
    use crate::http::import::template;

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
