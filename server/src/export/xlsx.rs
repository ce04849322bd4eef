//! Streaming writer for single-sheet `.xlsx` files.
//!
//! The workbook is a zip written front to back. The small fixed parts come
//! first, then `xl/worksheets/sheet1.xml`, deflated as rows arrive and closed
//! by a data descriptor (general-purpose flag bit 3), then the central
//! directory. Strings are inline (`t="inlineStr"`), so no shared-strings table
//! is kept; memory stays bounded by the compressor's state and one row.
//!
//! Limits: Zip64 records are written when the sheet passes 4 GiB, so size is
//! not capped by the container. Excel itself caps a sheet at 1,048,576 rows,
//! 16,384 columns (`XFD`) and 32,767 characters per cell; this writer does not
//! enforce those, so callers should cap exports accordingly.

use std::fmt::Write as _;
use std::io::Write as _;

use flate2::Compression;
use flate2::write::DeflateEncoder;

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
    sheet: DeflateEncoder<Vec<u8>>,
    crc: crc32fast::Hasher,
    raw_len: u64,
    offset: u64,
    data_start: u64,
    entries: Vec<Entry>,
    rows: u64,
    buf: String,
}

/// A zip entry as the central directory describes it.
struct Entry {
    name: &'static str,
    flags: u16,
    offset: u64,
    crc: u32,
    compressed: u64,
    size: u64,
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
/// Bit 3: CRC and sizes follow the data in a data descriptor.
const FLAG_DESCRIPTOR: u16 = 0x0008;
/// DOS date for 1980-01-01 (time 00:00).
const DOS_DATE: u64 = 0x0021;
/// Deflate level for the sheet: on export-like XML, level 3 is within a few
/// percent of level 6 in size and more than twice as fast.
const SHEET_LEVEL: u32 = 3;
const U32_MAX: u64 = 0xFFFF_FFFF;
const PRESERVE: &str = r#" xml:space="preserve""#;

impl XlsxWriter {
    /// Starts a workbook with one sheet named `sheet` (sanitized: at most 31
    /// characters, none of `[]:*?/\`) whose bold, frozen first row is `headers`.
    /// Returns the writer and the first bytes to send.
    #[must_use = "the returned bytes are part of the file"]
    pub fn start(sheet: &str, headers: &[&str]) -> (Self, Vec<u8>) {
        let mut escaped_name = String::new();
        push_escaped(&mut escaped_name, &sheet_name(sheet));
        let (mut out, mut entries) = (Vec::new(), Vec::new());
        for (path, body) in PARTS {
            let text = XML_DECL.to_string() + &body.replace("{name}", &escaped_name);
            let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
            enc.write_all(text.as_bytes()).expect("writing to a Vec");
            let data = enc.finish().expect("writing to a Vec");
            entries.push(Entry {
                name: path,
                flags: 0,
                offset: out.len() as u64,
                crc: crc32fast::hash(text.as_bytes()),
                compressed: data.len() as u64,
                size: text.len() as u64,
            });
            local_header(&mut out, &entries[entries.len() - 1]);
            out.extend_from_slice(&data);
        }
        entries.push(Entry {
            name: SHEET,
            flags: FLAG_DESCRIPTOR,
            offset: out.len() as u64,
            crc: 0,
            compressed: 0,
            size: 0,
        });
        local_header(&mut out, &entries[entries.len() - 1]);
        let mut writer = XlsxWriter {
            sheet: DeflateEncoder::new(Vec::new(), Compression::new(SHEET_LEVEL)),
            crc: crc32fast::Hasher::new(),
            raw_len: 0,
            offset: out.len() as u64,
            data_start: out.len() as u64,
            entries,
            rows: 0,
            buf: XML_DECL.to_string() + SHEET_HEAD,
        };
        let cells: Vec<Cell<'_>> = headers.iter().map(|h| Cell::Text(h)).collect();
        writer.push_row(&cells, true);
        out.extend(writer.emit());
        (writer, out)
    }

    /// Adds one row; returns bytes ready to send (may be empty while the
    /// compressor buffers).
    #[must_use = "the returned bytes are part of the file"]
    pub fn row(&mut self, cells: &[Cell<'_>]) -> Vec<u8> {
        self.push_row(cells, false);
        self.emit()
    }

    /// Ends the file: flushes the sheet, writes its data descriptor and the
    /// zip central directory.
    #[must_use = "the returned bytes are part of the file"]
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push_str("</sheetData></worksheet>");
        let mut out = self.emit();
        out.extend(self.sheet.finish().expect("writing to a Vec"));
        let compressed = self.offset + out.len() as u64 - self.data_start;
        let crc = self.crc.finalize();
        let zip64 = compressed.max(self.raw_len) > U32_MAX;
        let width = if zip64 { 8 } else { 4 };
        le(&mut out, 4, &[0x0807_4b50, crc.into()]);
        le(&mut out, width, &[compressed, self.raw_len]);
        let sheet = self.entries.last_mut().expect("the sheet entry");
        (sheet.crc, sheet.compressed, sheet.size) = (crc, compressed, self.raw_len);
        let cd_offset = self.offset + out.len() as u64;
        out.extend(central_directory(&self.entries, cd_offset));
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

    /// Feeds `self.buf` to the compressor and drains whatever it has output.
    fn emit(&mut self) -> Vec<u8> {
        self.crc.update(self.buf.as_bytes());
        self.raw_len += self.buf.len() as u64;
        self.sheet
            .write_all(self.buf.as_bytes())
            .expect("writing to a Vec");
        self.buf.clear();
        let out = std::mem::take(self.sheet.get_mut());
        self.offset += out.len() as u64;
        out
    }
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

/// Appends each of `values` little-endian in `width` bytes (low bytes kept).
fn le(out: &mut Vec<u8>, width: usize, values: &[u64]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
}

/// Writes a local file header. With bit 3 set, CRC and sizes are zero here.
fn local_header(out: &mut Vec<u8>, e: &Entry) {
    le(out, 4, &[0x0403_4b50]);
    le(out, 2, &[20, e.flags.into(), 8, 0, DOS_DATE]);
    le(out, 4, &[e.crc.into(), e.compressed, e.size]);
    le(out, 2, &[e.name.len() as u64, 0]);
    out.extend_from_slice(e.name.as_bytes());
}

/// The central directory starting at `cd_offset`, then the end records
/// (Zip64 ones too when a size or offset does not fit 32 bits).
fn central_directory(entries: &[Entry], cd_offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut any64 = false;
    for e in entries {
        let zip64 = e.compressed.max(e.size).max(e.offset) > U32_MAX;
        any64 |= zip64;
        let (version, extra) = if zip64 { (45, 28) } else { (20, 0) };
        let small = [e.compressed, e.size, e.offset].map(|v| if zip64 { U32_MAX } else { v });
        le(&mut out, 4, &[0x0201_4b50]);
        le(
            &mut out,
            2,
            &[version, version, e.flags.into(), 8, 0, DOS_DATE],
        );
        le(&mut out, 4, &[e.crc.into(), small[0], small[1]]);
        // Name and extra lengths, comment length, disk, internal attributes.
        le(&mut out, 2, &[e.name.len() as u64, extra, 0, 0, 0]);
        le(&mut out, 4, &[0, small[2]]); // external attributes, header offset
        out.extend_from_slice(e.name.as_bytes());
        if zip64 {
            le(&mut out, 2, &[1, 24]);
            le(&mut out, 8, &[e.size, e.compressed, e.offset]);
        }
    }
    let (count, cd_size) = (entries.len() as u64, out.len() as u64);
    let end64 = cd_offset + cd_size;
    if any64 || end64 > U32_MAX {
        le(&mut out, 4, &[0x0606_4b50]);
        le(&mut out, 8, &[44]);
        le(&mut out, 2, &[45, 45]);
        le(&mut out, 4, &[0, 0]);
        le(&mut out, 8, &[count, count, cd_size, cd_offset]);
        le(&mut out, 4, &[0x0706_4b50, 0]);
        le(&mut out, 8, &[end64]);
        le(&mut out, 4, &[1]);
    }
    le(&mut out, 4, &[0x0605_4b50]);
    le(&mut out, 2, &[0, 0, count, count]);
    le(&mut out, 4, &[cd_size.min(U32_MAX), cd_offset.min(U32_MAX)]);
    le(&mut out, 2, &[0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress, Status};

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_le_bytes([b[i], b[i + 1]])
    }
    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
    }

    /// Parses the end records and central directory in `tail`, whose first
    /// byte is at `base` in the archive. Returns the entries and the
    /// directory's offset.
    fn directory(tail: &[u8], base: u64) -> (Vec<Entry>, u64) {
        let eocd = tail.len() - 22;
        assert_eq!(u32_at(tail, eocd), 0x0605_4b50, "end record");
        let mut count = u64::from(u16_at(tail, eocd + 10));
        let mut cd_size = u64::from(u32_at(tail, eocd + 12));
        let mut cd_offset = u64::from(u32_at(tail, eocd + 16));
        if eocd >= 20 && u32_at(tail, eocd - 20) == 0x0706_4b50 {
            let z = (u64_at(tail, eocd - 12) - base) as usize;
            assert_eq!(u32_at(tail, z), 0x0606_4b50, "zip64 end record");
            (count, cd_size, cd_offset) = (
                u64_at(tail, z + 32),
                u64_at(tail, z + 40),
                u64_at(tail, z + 48),
            );
        }
        let mut at = (cd_offset - base) as usize;
        let mut entries = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_at(tail, at), 0x0201_4b50, "directory header");
            let n = usize::from(u16_at(tail, at + 28));
            let x = usize::from(u16_at(tail, at + 30));
            let name = std::str::from_utf8(&tail[at + 46..at + 46 + n]).unwrap();
            let mut e = Entry {
                name: name.to_string().leak(),
                flags: u16_at(tail, at + 8),
                crc: u32_at(tail, at + 16),
                compressed: u64::from(u32_at(tail, at + 20)),
                size: u64::from(u32_at(tail, at + 24)),
                offset: u64::from(u32_at(tail, at + 42)),
            };
            let mut extra = at + 46 + n;
            while extra < at + 46 + n + x {
                if u16_at(tail, extra) == 1 {
                    let mut f = extra + 4;
                    for v in [&mut e.size, &mut e.compressed, &mut e.offset] {
                        if *v == U32_MAX {
                            (*v, f) = (u64_at(tail, f), f + 8);
                        }
                    }
                }
                extra += 4 + usize::from(u16_at(tail, extra + 2));
            }
            entries.push(e);
            at += 46 + n + x + usize::from(u16_at(tail, at + 32));
        }
        assert_eq!(at as u64 + base, cd_offset + cd_size, "directory size");
        (entries, cd_offset)
    }

    /// Reads every entry back, checking headers, CRC32, sizes and that the
    /// entries tile the file up to the directory.
    fn unzip(zip: &[u8]) -> Vec<(String, String)> {
        let (entries, cd_offset) = directory(zip, 0);
        let mut next = 0;
        let mut files = Vec::new();
        for e in entries {
            let at = e.offset as usize;
            assert_eq!(at, next, "{} starts where the previous entry ended", e.name);
            assert_eq!(u32_at(zip, at), 0x0403_4b50, "local header");
            assert_eq!(u16_at(zip, at + 6), e.flags);
            assert_eq!(u16_at(zip, at + 8), 8, "deflated");
            let n = usize::from(u16_at(zip, at + 26));
            assert_eq!(&zip[at + 30..at + 30 + n], e.name.as_bytes());
            let start = at + 30 + n + usize::from(u16_at(zip, at + 28));
            let end = start + e.compressed as usize;
            let mut z = Decompress::new(false);
            let mut data = Vec::with_capacity(e.size as usize + 1);
            let status = z.decompress_vec(&zip[start..end], &mut data, FlushDecompress::Finish);
            assert_eq!(status.unwrap(), Status::StreamEnd, "{}", e.name);
            assert_eq!(z.total_in(), e.compressed);
            assert_eq!(data.len() as u64, e.size, "{} size", e.name);
            assert_eq!(crc32fast::hash(&data), e.crc, "{} crc", e.name);
            next = end;
            if e.flags & FLAG_DESCRIPTOR != 0 {
                assert_eq!(u32_at(zip, end), 0x0807_4b50, "descriptor");
                assert_eq!(u32_at(zip, end + 4), e.crc);
                assert_eq!(u64::from(u32_at(zip, end + 8)), e.compressed);
                assert_eq!(u64::from(u32_at(zip, end + 12)), e.size);
                next = end + 16;
            } else {
                assert_eq!(u32_at(zip, at + 14), e.crc);
                assert_eq!(u64::from(u32_at(zip, at + 18)), e.compressed);
                assert_eq!(u64::from(u32_at(zip, at + 22)), e.size);
            }
            files.push((e.name.to_string(), String::from_utf8(data).unwrap()));
        }
        assert_eq!(next as u64, cd_offset, "directory follows the last entry");
        files
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
    fn zip64_directory_for_large_sheets() {
        let big = Entry {
            name: SHEET,
            flags: FLAG_DESCRIPTOR,
            crc: 7,
            compressed: 5 << 30,
            size: 9 << 30,
            offset: 900,
        };
        let small = Entry {
            name: "xl/styles.xml",
            flags: 0,
            crc: 3,
            compressed: 10,
            size: 20,
            offset: 0,
        };
        let cd_offset = (5 << 30) + 1000;
        let tail = central_directory(&[small, big], cd_offset);
        let (entries, offset) = directory(&tail, cd_offset);
        assert_eq!(offset, cd_offset);
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.name, e.crc, e.compressed, e.size, e.offset))
            .collect();
        assert_eq!(
            got,
            [
                ("xl/styles.xml", 3, 10, 20, 0),
                (SHEET, 7, 5 << 30, 9 << 30, 900)
            ]
        );
        assert_eq!(
            u32_at(&tail, tail.len() - 22 - 20),
            0x0706_4b50,
            "zip64 locator"
        );
    }
}
