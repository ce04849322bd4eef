//! Streaming writer for single-sheet `.xlsx` files.
//!
//! The zip container is the `zip` crate's, writing to a stream
//! ([`ZipWriter::new_stream`]): each entry is deflated and closed by a data
//! descriptor, so nothing already sent is gone back to. The small fixed parts
//! come first, then `xl/worksheets/sheet1.xml`, fed to the compressor as rows
//! arrive, then the central directory. `zip` keeps the writer it writes to,
//! so that writer is a [`Sink`], emptied by each of [`XlsxWriter::start`],
//! [`XlsxWriter::row`] and [`XlsxWriter::finish`]: each hands out what the
//! compressor has let go of so far, and memory stays bounded by the
//! compressor's state and one row.
//!
//! The sheet XML is still written here by hand (inline strings, so no
//! shared-strings table is kept; escaping; cell references; sheet names):
//! no crate writes a sheet row by row into the caller's byte stream.
//! `rust_xlsxwriter` comes closest: its constant-memory worksheets also
//! write inline strings a row at a time, but into a temporary file, and the
//! workbook is only put together at `save`, into a path or a `Write + Seek`
//! writer. Nothing would reach the client until every row had been read,
//! and the whole sheet would sit on disk or in memory meanwhile.
//!
//! Limits: the file is a plain zip, without Zip64. Streamed, `zip` has to
//! be told before the sheet whether to use Zip64, and doing so for every
//! export would give ordinary files Zip64 records that some spreadsheet
//! programs are reported to reject; reaching 4 GiB of sheet XML takes more
//! than 4 KiB a row at Excel's row cap. So once the next row would bring the
//! sheet's XML near 4 GiB the writer drops it and every later row, and ends
//! the sheet with a row saying so. Excel caps a sheet at 1,048,576 rows,
//! 16,384 columns (`XFD`) and 32,767 characters per cell; this writer does
//! not enforce those, so callers should cap exports accordingly.

use std::fmt::Write as _;
use std::io::Write as _;

use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::Sink;

/// One cell value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// A text cell, written as an inline string.
    Text(&'a str),
    /// A numeric cell; NaN and infinities are written as empty cells.
    Number(f64),
    /// No value: the cell is left out.
    Empty,
}

/// Writes one worksheet as an .xlsx file, a piece at a time.
pub struct XlsxWriter {
    zip: ZipWriter<StreamWriter<Sink>>,
    rows: u64,
    buf: String,
    /// Bytes of sheet XML given to the compressor so far.
    sheet_len: u64,
    /// The most bytes of sheet XML this file takes: [`SHEET_MAX`] (smaller
    /// in tests).
    sheet_max: u64,
    /// Set once the sheet is full: later rows are dropped.
    full: bool,
}

const SHEET: &str = "xl/worksheets/sheet1.xml";
/// The fixed parts, in file order; `{name}` stands for the sheet name.
const PARTS: [(&str, &str); 5] = [
    (
        "[Content_Types].xml",
        r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#,
    ),
    (
        "_rels/.rels",
        r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    ),
    (
        "xl/workbook.xml",
        r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><bookViews><workbookView/></bookViews><sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    ),
    (
        "xl/_rels/workbook.xml.rels",
        r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#,
    ),
    (
        "xl/styles.xml",
        r#"<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>"#,
    ),
];
/// The worksheet up to its first row, with the header row frozen.
const SHEET_HEAD: &str = r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheetViews><sheetView tabSelected="1" workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews><sheetData>"#;
const XML_DECL: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
const SHEET_TAIL: &str = "</sheetData></worksheet>";
/// Deflate level for the sheet: on export-like XML, level 3 is within a few
/// percent of level 6 in size and more than twice as fast.
const SHEET_LEVEL: i64 = 3;
const PRESERVE: &str = r#" xml:space="preserve""#;
/// The most bytes a zip entry without Zip64 takes: `zip` fails a write that
/// brings an entry to 4 GiB - 1 bytes.
const SHEET_MAX: u64 = u32::MAX as u64 - 1;
/// Room kept under [`XlsxWriter::sheet_max`] for the [`FULL_NOTE`] row and
/// [`SHEET_TAIL`].
const SHEET_RESERVE: u64 = 1024;
/// The last row of a sheet that reached [`SHEET_MAX`].
const FULL_NOTE: &str =
    "… the sheet is full (4 GiB, the most this file can take): narrow the filters or export CSV";
/// What a failure of the zip writer means here: it writes into memory, so
/// only a broken invariant (such as a sheet past [`SHEET_MAX`]) fails it.
const IN_MEMORY: &str = "zipping into memory";

impl XlsxWriter {
    /// Starts a workbook with one sheet named `sheet` (sanitized: at most 31
    /// characters, none of `[]:*?/\`) whose bold, frozen first row is `headers`.
    /// Returns the writer and the first bytes to send.
    #[must_use = "the returned bytes are part of the file"]
    pub fn start(sheet: &str, headers: &[&str]) -> (Self, Vec<u8>) {
        let mut escaped_name = String::new();
        push_escaped(&mut escaped_name, &sheet_name(sheet));
        let mut zip = ZipWriter::new_stream(Sink::default());
        for (path, body) in PARTS {
            zip.start_file(path, deflated(None)).expect(IN_MEMORY);
            let text = XML_DECL.to_string() + &body.replace("{name}", &escaped_name);
            zip.write_all(text.as_bytes()).expect(IN_MEMORY);
        }
        zip.start_file(SHEET, deflated(Some(SHEET_LEVEL)))
            .expect(IN_MEMORY);
        let mut writer = XlsxWriter {
            zip,
            rows: 0,
            buf: XML_DECL.to_string() + SHEET_HEAD,
            sheet_len: 0,
            sheet_max: SHEET_MAX,
            full: false,
        };
        let cells: Vec<Cell<'_>> = headers.iter().map(|h| Cell::Text(h)).collect();
        writer.push_row(&cells, true);
        let out = writer.emit();
        (writer, out)
    }

    /// Adds one row; returns bytes ready to send (may be empty while the
    /// compressor buffers). Once the sheet is full (see the module
    /// comment), the row that did not fit is replaced by a note saying so,
    /// and later rows are dropped.
    #[must_use = "the returned bytes are part of the file"]
    pub fn row(&mut self, cells: &[Cell<'_>]) -> Vec<u8> {
        if self.full {
            return Vec::new();
        }
        self.push_row(cells, false);
        if self.sheet_len + self.buf.len() as u64 + SHEET_RESERVE > self.sheet_max {
            self.buf.clear();
            self.rows -= 1;
            self.push_row(&[Cell::Text(FULL_NOTE)], false);
            self.full = true;
        }
        self.emit()
    }

    /// Ends the file: closes the sheet, then `zip` writes its data
    /// descriptor and the central directory.
    #[must_use = "the returned bytes are part of the file"]
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push_str(SHEET_TAIL);
        let mut out = self.emit();
        let sink = self.zip.finish().expect(IN_MEMORY).into_inner();
        out.extend(sink.take());
        out
    }

    /// Appends one row's XML to `self.buf`.
    fn push_row(&mut self, cells: &[Cell<'_>], bold: bool) {
        self.rows += 1;
        let (r, b) = (self.rows, &mut self.buf);
        let style = if bold { r#" s="1""# } else { "" };
        let _ = write!(b, r#"<row r="{r}">"#);
        for (col, cell) in cells.iter().enumerate() {
            match *cell {
                Cell::Text(s) => {
                    b.push_str("<c r=\"");
                    push_column(b, col);
                    let space = if s.trim() == s { "" } else { PRESERVE };
                    let _ = write!(b, r#"{r}"{style} t="inlineStr"><is><t{space}>"#);
                    push_escaped(b, s);
                    b.push_str("</t></is></c>");
                }
                Cell::Number(n) if n.is_finite() => {
                    b.push_str("<c r=\"");
                    push_column(b, col);
                    let _ = write!(b, r#"{r}"{style}><v>{n}</v></c>"#);
                }
                Cell::Number(_) | Cell::Empty => {}
            }
        }
        b.push_str("</row>");
    }

    /// Feeds `self.buf` to the compressor and takes whatever has come out.
    fn emit(&mut self) -> Vec<u8> {
        self.zip.write_all(self.buf.as_bytes()).expect(IN_MEMORY);
        self.sheet_len += self.buf.len() as u64;
        self.buf.clear();
        let stream = self.zip.get_ref().expect("the workbook is open");
        stream.get_ref().take()
    }
}

/// Options for a deflated entry at `level` (the default when `None`), dated
/// 1980-01-01 as zip files without a date are, so that an export's bytes
/// depend on its rows only.
fn deflated(level: Option<i64>) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(level)
        .last_modified_time(DateTime::default())
}

/// Makes a valid Excel sheet name: no `[]:*?/\` or control characters, at
/// most 31 UTF-16 units, no leading or trailing apostrophe, not empty.
fn sheet_name(raw: &str) -> String {
    let mut name = String::new();
    let mut units = 0;
    for c in raw
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c) && !c.is_control())
    {
        units += c.len_utf16();
        if units > 31 {
            break;
        }
        name.push(c);
    }
    let name = name.trim_matches('\'');
    if name.trim().is_empty() || name.eq_ignore_ascii_case("history") {
        "Sheet1".to_string()
    } else {
        name.to_string()
    }
}

/// Appends the column letters for 0-based `col` (0 → A, 26 → AA).
fn push_column(out: &mut String, mut col: usize) {
    let mut letters = [0u8; 8];
    let mut i = letters.len();
    loop {
        i -= 1;
        letters[i] = b'A' + (col % 26) as u8;
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    letters[i..].iter().for_each(|&l| out.push(l as char));
}

/// Appends `s` escaped for XML text or attributes, dropping characters XML 1.0
/// forbids; CR is written as `&#13;` so parsers keep it.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {}
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read as _};

    /// Reads every entry back with `zip` (which checks each CRC), checking
    /// that each is deflated and that the file has no Zip64 end records.
    fn unzip(zip: &[u8]) -> Vec<(String, String)> {
        let eocd = zip.len() - 22;
        assert_eq!(&zip[eocd..eocd + 4], b"PK\x05\x06", "end record");
        assert_ne!(&zip[eocd - 20..eocd - 16], b"PK\x06\x07", "no Zip64");
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).unwrap();
                assert_eq!(file.compression(), CompressionMethod::Deflated);
                let mut text = String::new();
                file.read_to_string(&mut text).unwrap();
                (file.name().unwrap().to_string(), text)
            })
            .collect()
    }

    fn write(sheet: &str, headers: &[&str], rows: &[Vec<Cell<'_>>]) -> Vec<(String, String)> {
        let (mut w, mut zip) = XlsxWriter::start(sheet, headers);
        for r in rows {
            zip.extend(w.row(r));
        }
        zip.extend(w.finish());
        unzip(&zip)
    }

    fn part<'a>(files: &'a [(String, String)], name: &str) -> &'a str {
        &files.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// Asserts each fragment occurs in `xml`, in this order.
    fn assert_in_order(xml: &str, fragments: &[&str]) {
        let mut rest = xml;
        for f in fragments {
            let i = rest
                .find(f)
                .unwrap_or_else(|| panic!("{f:?} missing or out of order in {xml}"));
            rest = &rest[i + f.len()..];
        }
    }

    #[test]
    fn cells_round_trip() {
        let row = vec![
            Cell::Text("张三 / 幸福小区3栋"),
            Cell::Text(r#"a&b <c> "d" 'e'"#),
            Cell::Text("bell\u{7}x\ttab\nnew\rcr\u{ffff}"),
            Cell::Number(42.0),
            Cell::Number(-0.5),
            Cell::Number(f64::NAN),
            Cell::Number(f64::INFINITY),
            Cell::Empty,
            Cell::Text(" padded "),
            Cell::Number(1e-7),
        ];
        let files = write(
            "Households",
            &["姓名", "R&D"],
            &[row, vec![], vec![Cell::Empty, Cell::Number(7.25)]],
        );
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "[Content_Types].xml",
                "_rels/.rels",
                "xl/workbook.xml",
                "xl/_rels/workbook.xml.rels",
                "xl/styles.xml",
                SHEET
            ]
        );
        assert!(
            part(&files, "xl/workbook.xml")
                .contains(r#"<sheet name="Households" sheetId="1" r:id="rId1"/>"#)
        );
        assert!(
            part(&files, "[Content_Types].xml").contains(r#"PartName="/xl/worksheets/sheet1.xml""#)
        );
        let xml = part(&files, SHEET);
        assert_in_order(
            xml,
            &[
                r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#,
                r#"<sheetData><row r="1"><c r="A1" s="1" t="inlineStr"><is><t>姓名</t></is></c>"#,
                r#"<c r="B1" s="1" t="inlineStr"><is><t>R&amp;D</t></is></c></row>"#,
                r#"<row r="2"><c r="A2" t="inlineStr"><is><t>张三 / 幸福小区3栋</t></is></c>"#,
                r#"<c r="B2" t="inlineStr"><is><t>a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;</t></is></c>"#,
                "<c r=\"C2\" t=\"inlineStr\"><is><t>bellx\ttab\nnew&#13;cr</t></is></c>",
                r#"<c r="D2"><v>42</v></c><c r="E2"><v>-0.5</v></c>"#,
                r#"<c r="I2" t="inlineStr"><is><t xml:space="preserve"> padded </t></is></c>"#,
                r#"<c r="J2"><v>0.0000001</v></c></row>"#,
                r#"<row r="3"></row><row r="4"><c r="B4"><v>7.25</v></c></row>"#,
                "</sheetData></worksheet>",
            ],
        );
        for absent in ["F2", "G2", "H2", "A4", "\u{7}", "NaN", "inf"] {
            assert!(!xml.contains(absent), "{absent:?} should not be written");
        }
    }

    #[test]
    fn calamine_reads_an_export_back() {
        use calamine::{Data, Reader as _, Xlsx};
        let (mut w, mut file) =
            XlsxWriter::start("户籍 Households", &["姓名", "备注", "人数", "地址"]);
        let rows = [
            [
                Cell::Text("张三"),
                Cell::Empty,
                Cell::Number(3.0),
                Cell::Text("幸福小区3栋 <2单元> & 后院"),
            ],
            [
                Cell::Text("李四"),
                Cell::Text("  独居 "),
                Cell::Number(-0.25),
                Cell::Empty,
            ],
        ];
        for row in &rows {
            file.extend(w.row(row));
        }
        file.extend(w.finish());

        let mut book: Xlsx<_> = Xlsx::new(Cursor::new(file)).unwrap();
        assert_eq!(book.sheet_names(), ["户籍 Households"]);
        let range = book.worksheet_range("户籍 Households").unwrap();
        let text = |s: &str| Data::String(s.to_string());
        let got: Vec<Vec<Data>> = range.rows().map(<[Data]>::to_vec).collect();
        assert_eq!(
            got,
            [
                vec![text("姓名"), text("备注"), text("人数"), text("地址")],
                vec![
                    text("张三"),
                    Data::Empty,
                    Data::Float(3.0),
                    text("幸福小区3栋 <2单元> & 后院"),
                ],
                vec![
                    text("李四"),
                    text("  独居 "),
                    Data::Float(-0.25),
                    Data::Empty
                ],
            ]
        );
    }

    #[test]
    fn columns_past_z() {
        let col = |c| {
            let mut s = String::new();
            push_column(&mut s, c);
            s
        };
        let cases = [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (27, "AB"),
            (51, "AZ"),
            (52, "BA"),
            (701, "ZZ"),
            (702, "AAA"),
        ];
        for (c, name) in cases.into_iter().chain([(16383, "XFD")]) {
            assert_eq!(col(c), name);
        }
        let row: Vec<Cell<'_>> = (0..30).map(|i| Cell::Number(f64::from(i))).collect();
        let files = write("Wide", &[], &[row]);
        let xml = part(&files, SHEET);
        assert_in_order(
            xml,
            &[
                r#"<row r="1"></row><row r="2"><c r="A2"><v>0</v>"#,
                r#"<c r="Z2"><v>25</v>"#,
                r#"<c r="AA2"><v>26</v>"#,
                r#"<c r="AD2"><v>29</v></c></row>"#,
            ],
        );
    }

    #[test]
    fn streams_100k_rows_in_small_pieces() {
        let (mut w, mut zip) = XlsxWriter::start("Cases", &["id", "name", "address"]);
        let (mut largest, mut pieces) = (0, 0);
        for i in 0..100_000u32 {
            let name = format!("户主{i}");
            let piece = w.row(&[
                Cell::Number(f64::from(i)),
                Cell::Text(&name),
                Cell::Text("幸福小区3栋"),
            ]);
            largest = largest.max(piece.len());
            pieces += usize::from(!piece.is_empty());
            zip.extend(piece);
        }
        zip.extend(w.finish());
        assert!(
            largest <= 64 * 1024,
            "largest row() piece was {largest} bytes"
        );
        assert!(pieces >= 20, "output arrived in only {pieces} pieces");
        let files = unzip(&zip);
        let xml = part(&files, SHEET);
        assert!(xml.len() > 8_000_000);
        assert_eq!(xml.matches("<row ").count(), 100_001);
        assert!(xml.ends_with(r#"<row r="100001"><c r="A100001"><v>99999</v></c><c r="B100001" t="inlineStr"><is><t>户主99999</t></is></c><c r="C100001" t="inlineStr"><is><t>幸福小区3栋</t></is></c></row></sheetData></worksheet>"#));
    }

    #[test]
    fn sheet_names_are_sanitized() {
        assert_eq!(sheet_name(r"a[b]:c*d?e/f\g"), "abcdefg");
        assert_eq!(sheet_name(&"x".repeat(40)), "x".repeat(31));
        assert_eq!(sheet_name(&"户".repeat(40)), "户".repeat(31));
        assert_eq!(sheet_name("'q'"), "q");
        assert_eq!(sheet_name("[]"), "Sheet1");
        assert_eq!(sheet_name("History"), "Sheet1");
        let files = write("R&D <2024>", &["a"], &[]);
        assert!(part(&files, "xl/workbook.xml").contains(r#"name="R&amp;D &lt;2024&gt;""#));
    }

    #[test]
    fn a_full_sheet_ends_with_a_note() {
        // The note row, with the longest row number, and the tail fit the
        // room kept for them.
        let mut at_cap = XlsxWriter::start("x", &[]).0;
        at_cap.rows = 1_048_575;
        at_cap.push_row(&[Cell::Text(FULL_NOTE)], false);
        assert!((at_cap.buf.len() + SHEET_TAIL.len()) as u64 <= SHEET_RESERVE);

        let (mut w, mut zip) = XlsxWriter::start("Full", &["n"]);
        w.sheet_max = w.sheet_len + SHEET_RESERVE + 200;
        let max = w.sheet_max;
        for i in 0..100 {
            zip.extend(w.row(&[Cell::Number(f64::from(i))]));
        }
        assert!(w.full);
        assert!(w.row(&[Cell::Text("dropped")]).is_empty());
        zip.extend(w.finish());
        let files = unzip(&zip);
        let xml = part(&files, SHEET);
        assert!(xml.len() as u64 <= max, "{} > {max}", xml.len());
        let rows = xml.matches("<row ").count();
        assert!((3..20).contains(&rows), "{rows} rows");
        let last = rows - 3;
        assert!(xml.ends_with(&format!(
            r#"<v>{last}</v></c></row><row r="{rows}"><c r="A{rows}" t="inlineStr"><is><t>{FULL_NOTE}</t></is></c></row></sheetData></worksheet>"#
        )));
    }
}
