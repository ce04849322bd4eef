//! The typed records that live in Automerge documents.
//!
//! Each record is the root map of its own document (one per household, case,
//! visit), reached through `autosurgeon`. Free text that two people may edit at
//! once (notes, descriptions, findings) is Automerge text, so concurrent edits
//! interleave instead of overwriting. Lists whose items are edited in place
//! (members, parties, events) are keyed by a stable item id, so concurrent
//! inserts both survive and edits land on the right item.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile, Text};
use serde::{Deserialize, Serialize};

use crate::id::{RecordId, RecordKind};

/// A record type stored as one Automerge document.
pub trait Record: Hydrate + Reconcile + Sized {
    /// Which kind of document holds this record.
    const KIND: RecordKind;

    /// Checks what the type system cannot and every state must satisfy,
    /// merged ones included: required fields, formats, references.
    fn validate(&self) -> Result<(), ValidationError>;

    /// Rules that two valid concurrent edits can break together (two phones
    /// adding items with the same id, one removing the member the other
    /// makes head). A local edit must keep them when the record kept them
    /// before; a merged record is never refused for them, so that no
    /// concurrent edit is lost.
    fn validate_strict(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// A record that is well typed but not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// The field at fault, as a dotted path.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ValidationError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

fn require(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    Ok(())
}

fn require_unique_ids<'a>(
    field: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<(), ValidationError> {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        require(&format!("{field}.id"), id)?;
        if !seen.insert(id) {
            return Err(ValidationError::new(field, format!("duplicate id {id:?}")));
        }
    }
    Ok(())
}

/// The times a record may carry, in milliseconds since the Unix epoch:
/// from the epoch itself (0 also stands for "not known") up to, not
/// including, 3000-01-01T00:00:00Z.
///
/// Far wider than any real visit or case, and far enough from the limits of
/// an `i64` that every sum the server and phones make with a record time (a
/// due time, a local day, a hybrid clock built from it) stays exact, in Rust
/// and in SQL.
pub const TIME_RANGE: std::ops::Range<i64> = 0..32_503_680_000_000;

/// The hybrid logical clock values an event may carry (see
/// [`crate::workflow`]): the clocks of [`TIME_RANGE`], shifted left by 16
/// bits, with their counters.
pub const HLC_RANGE: std::ops::Range<i64> = 0..(TIME_RANGE.end << 16);

/// A time in [`TIME_RANGE`].
fn check_time(field: &str, ms: i64) -> Result<(), ValidationError> {
    if TIME_RANGE.contains(&ms) {
        return Ok(());
    }
    Err(ValidationError::new(
        field,
        format!(
            "must be milliseconds since the Unix epoch from 0 (1970-01-01) to {} \
             (2999-12-31T23:59:59.999Z), not {ms}",
            TIME_RANGE.end - 1
        ),
    ))
}

/// A hybrid logical clock value in [`HLC_RANGE`].
fn check_hlc(field: &str, hlc: i64) -> Result<(), ValidationError> {
    if HLC_RANGE.contains(&hlc) {
        return Ok(());
    }
    Err(ValidationError::new(
        field,
        format!(
            "must be a clock from 0 to {} (milliseconds before the year 3000, shifted left \
             by 16 bits), not {hlc}",
            HLC_RANGE.end - 1
        ),
    ))
}

/// `latitude,longitude` in decimal degrees, or empty when not known.
fn check_location(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Ok(());
    }
    let degrees = |part: Option<&str>, limit: f64| {
        part.and_then(|p| p.trim().parse::<f64>().ok())
            .is_some_and(|d| d.is_finite() && d.abs() <= limit)
    };
    let mut parts = value.split(',');
    let ok = degrees(parts.next(), 90.0) && degrees(parts.next(), 180.0) && parts.next().is_none();
    if ok {
        return Ok(());
    }
    Err(ValidationError::new(
        field,
        "must be `latitude,longitude` in decimal degrees, or empty",
    ))
}

/// `YYYY-MM-DD`, or empty when unknown.
fn check_date(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Ok(());
    }
    let b = value.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shaped = b.len() == 10 && b[4] == b'-' && b[7] == b'-' && digits(0..4);
    let month = value.get(5..7).and_then(|m| m.parse::<u8>().ok());
    let day = value.get(8..10).and_then(|d| d.parse::<u8>().ok());
    match (shaped, month, day) {
        (true, Some(1..=12), Some(1..=31)) => Ok(()),
        _ => Err(ValidationError::new(field, "must be a date as YYYY-MM-DD")),
    }
}

/// The media types a record may attach, by what their bytes are (the
/// server sniffs them; a name or a claimed type decides nothing): photos
/// as phones and cameras write them, and PDF for scanned or signed papers
/// (a mediation agreement, a notice served).
pub const ATTACHMENT_MEDIA_TYPES: [&str; 4] =
    ["image/jpeg", "image/png", "image/webp", "application/pdf"];

/// The largest file a record may attach, in bytes. A server may set a
/// lower limit; phones shrink photos far below it before they queue them.
pub const MAX_ATTACHMENT_BYTES: i64 = 25 * 1024 * 1024;

/// A file attached to a record: a reference by content, never the bytes.
///
/// The bytes live beside the documents, stored once under their SHA-256
/// however many records name them (`PUT /v1/attachments/{sha256}`). A list
/// of references is keyed by the hash, so two phones attaching files at
/// once both keep theirs, and attaching the same file twice is one item.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hydrate, Reconcile, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// The SHA-256 of the file's bytes as the phone sent them, 64
    /// lowercase hex digits.
    #[key]
    pub sha256: String,
    /// One of [`ATTACHMENT_MEDIA_TYPES`].
    pub media_type: String,
    /// The file's size in bytes, from 1 to [`MAX_ATTACHMENT_BYTES`].
    pub size: i64,
    /// The file's name on the device that attached it, for people; may be
    /// empty.
    pub name: String,
    /// When the photo was taken (or the file made), in milliseconds since
    /// the Unix epoch, in [`TIME_RANGE`]; 0 when not known.
    pub taken_at: i64,
    /// The user who attached it.
    pub author: String,
    /// The device it was attached from.
    pub device: String,
    /// Where it was taken, as `latitude,longitude`, only when the worker
    /// chose to keep it; empty otherwise. The server strips every location
    /// from the file's own metadata: this field is the only place a
    /// location is kept.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub location: String,
    /// A line about what it shows; may be empty.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub caption: String,
}

/// Whether `value` is a SHA-256 as attachments name it: 64 lowercase hex
/// digits.
pub fn is_sha256(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Attachment {
    fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if !is_sha256(&self.sha256) {
            return Err(ValidationError::new(
                format!("{field}.sha256"),
                "must be a SHA-256 as 64 lowercase hex digits",
            ));
        }
        if !ATTACHMENT_MEDIA_TYPES.contains(&self.media_type.as_str()) {
            return Err(ValidationError::new(
                format!("{field}.media_type"),
                format!("must be one of {}", ATTACHMENT_MEDIA_TYPES.join(", ")),
            ));
        }
        if !(1..=MAX_ATTACHMENT_BYTES).contains(&self.size) {
            return Err(ValidationError::new(
                format!("{field}.size"),
                format!("must be from 1 to {MAX_ATTACHMENT_BYTES} bytes"),
            ));
        }
        require(&format!("{field}.author"), &self.author)?;
        check_time(&format!("{field}.taken_at"), self.taken_at)?;
        check_location(&format!("{field}.location"), &self.location)
    }
}

fn check_attachments(field: &str, list: &[Attachment]) -> Result<(), ValidationError> {
    for (i, a) in list.iter().enumerate() {
        a.validate(&format!("{field}[{i}]"))?;
    }
    Ok(())
}

fn unique_attachments(field: &str, list: &[Attachment]) -> Result<(), ValidationError> {
    let mut seen = std::collections::BTreeSet::new();
    for a in list {
        if !seen.insert(a.sha256.as_str()) {
            return Err(ValidationError::new(
                field,
                format!("file {} is attached twice", a.sha256),
            ));
        }
    }
    Ok(())
}

/// A household (户) and the people living in it.
#[derive(Debug, Clone, PartialEq, Default, Hydrate, Reconcile, Serialize, Deserialize)]
pub struct Household {
    /// The grid (网格) the household belongs to.
    pub org_unit: String,
    /// Building, unit and room.
    pub address: Address,
    /// The id of the member who heads the household, empty until known.
    pub head: String,
    /// The people registered in the household.
    pub members: Vec<Member>,
    /// Care and service groups (see [`Tag`]), as a set: a tag present with
    /// `true`; removing a tag deletes its key, so concurrent additions of
    /// different tags both survive.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub tags: BTreeMap<String, bool>,
    /// Free-text notes from visits and calls.
    #[serde(with = "text")]
    pub notes: Text,
    /// Files attached (photos, scanned papers), by reference.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

impl Household {
    /// Whether the household carries `tag`.
    pub fn has_tag(&self, tag: Tag) -> bool {
        self.tags.get(tag.as_str()).copied().unwrap_or(false)
    }

    /// Adds or removes `tag`.
    pub fn set_tag(&mut self, tag: Tag, on: bool) {
        if on {
            self.tags.insert(tag.as_str().to_owned(), true);
        } else {
            self.tags.remove(tag.as_str());
        }
    }

    /// The member with the given id.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The member with the given id, for editing.
    pub fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }
}

impl Record for Household {
    const KIND: RecordKind = RecordKind::Household;

    fn validate(&self) -> Result<(), ValidationError> {
        require("org_unit", &self.org_unit)?;
        for (i, m) in self.members.iter().enumerate() {
            require(&format!("members[{i}].id"), &m.id)?;
            check_date(&format!("members[{i}].birth_date"), &m.birth_date)?;
        }
        check_attachments("attachments", &self.attachments)
    }

    fn validate_strict(&self) -> Result<(), ValidationError> {
        require_unique_ids("members", self.members.iter().map(|m| m.id.as_str()))?;
        if !self.head.is_empty() && self.member(&self.head).is_none() {
            return Err(ValidationError::new("head", "must name one of the members"));
        }
        unique_attachments("attachments", &self.attachments)
    }
}

/// Where a household lives.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hydrate, Reconcile, Serialize, Deserialize)]
pub struct Address {
    /// Building (楼栋).
    pub building: String,
    /// Unit or entrance (单元).
    pub unit: String,
    /// Room or door number.
    pub room: String,
}

/// One person in a household.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
pub struct Member {
    /// Stable id of this member within the household.
    #[key]
    pub id: String,
    /// Full name.
    pub name: String,
    /// Resident identity card number (身份证号), empty if unknown.
    pub id_number: String,
    /// Sex.
    pub sex: Sex,
    /// Birth date as `YYYY-MM-DD`, empty if unknown.
    pub birth_date: String,
    /// Relation to the head of household.
    pub relation: Relation,
    /// Phone number, empty if none.
    pub phone: String,
    /// How the person is registered here.
    pub residence: Residence,
}

impl Member {
    /// A member with the given id and name and nothing else known yet.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            id_number: String::new(),
            sex: Sex::Unknown,
            birth_date: String::new(),
            relation: Relation::Other,
            phone: String::new(),
            residence: Residence::Registered,
        }
    }
}

/// Sex as recorded on the identity card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
pub enum Sex {
    /// 男
    Male,
    /// 女
    Female,
    /// Not recorded.
    Unknown,
}

/// Relation to the head of household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
pub enum Relation {
    /// 户主
    Head,
    /// 配偶
    Spouse,
    /// 子女
    Child,
    /// 父母
    Parent,
    /// 孙子女
    Grandchild,
    /// 兄弟姐妹
    Sibling,
    /// 其他
    Other,
}

/// How a person is registered at this address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
pub enum Residence {
    /// 户籍: household registration here.
    Registered,
    /// 流动: floating population.
    Floating,
    /// 常住: lives here, registered elsewhere.
    Resident,
}

/// Groups the grid singles out for service and care. Sensitive
/// special-population details are not tags: they live in their own document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tag {
    /// 孤寡老人
    ElderlyAlone,
    /// 留守儿童
    LeftBehindChild,
    /// 残障人士
    Disabled,
    /// 低保/贫困家庭
    LowIncome,
    /// 退役军人
    Veteran,
}

impl Tag {
    /// Every tag.
    pub const ALL: [Tag; 5] = [
        Tag::ElderlyAlone,
        Tag::LeftBehindChild,
        Tag::Disabled,
        Tag::LowIncome,
        Tag::Veteran,
    ];

    /// The key stored in the document and used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tag::ElderlyAlone => "elderly_alone",
            Tag::LeftBehindChild => "left_behind_child",
            Tag::Disabled => "disabled",
            Tag::LowIncome => "low_income",
            Tag::Veteran => "veteran",
        }
    }
}

/// A dispute, hazard or request reported from the field (事件 / 矛盾纠纷).
#[derive(Debug, Clone, PartialEq, Default, Hydrate, Reconcile, Serialize, Deserialize)]
pub struct Case {
    /// The org unit (a grid, at first) the case belongs to.
    pub org_unit: String,
    /// What kind of matter this is.
    pub category: CaseCategory,
    /// A one-line summary.
    pub title: String,
    /// What happened, as told; Automerge text.
    #[serde(with = "text")]
    pub description: Text,
    /// The people involved.
    pub parties: Vec<Party>,
    /// The household concerned, if any (a household record id).
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub household: String,
    /// Where it happened, in words.
    pub location: String,
    /// The user who reported the case.
    pub reporter: String,
    /// When it was reported, in milliseconds since the Unix epoch, in
    /// [`TIME_RANGE`].
    pub reported_at: i64,
    /// The workflow: every action on the case, appended, never rewritten.
    pub events: Vec<CaseEvent>,
    /// Files attached (photos, scanned papers), by reference.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

impl Record for Case {
    const KIND: RecordKind = RecordKind::Case;

    fn validate(&self) -> Result<(), ValidationError> {
        require("org_unit", &self.org_unit)?;
        require("title", &self.title)?;
        require("reporter", &self.reporter)?;
        check_time("reported_at", self.reported_at)?;
        for (i, e) in self.events.iter().enumerate() {
            require(&format!("events[{i}].id"), &e.id)?;
            require(&format!("events[{i}].kind"), &e.kind)?;
            check_time(&format!("events[{i}].at"), e.at)?;
            check_hlc(&format!("events[{i}].hlc"), e.hlc)?;
            check_attachments(&format!("events[{i}].attachments"), &e.attachments)?;
        }
        check_attachments("attachments", &self.attachments)?;
        if !self.household.is_empty() {
            check_record_ref("household", &self.household, RecordKind::Household)?;
        }
        Ok(())
    }

    fn validate_strict(&self) -> Result<(), ValidationError> {
        require_unique_ids("parties", self.parties.iter().map(|p| p.id.as_str()))?;
        require_unique_ids("events", self.events.iter().map(|e| e.id.as_str()))?;
        unique_attachments("attachments", &self.attachments)
    }
}

fn check_record_ref(field: &str, value: &str, kind: RecordKind) -> Result<(), ValidationError> {
    match value.parse::<RecordId>() {
        Ok(id) if id.kind() == kind => Ok(()),
        _ => Err(ValidationError::new(
            field,
            format!("must be a {kind} record id"),
        )),
    }
}

/// The categories of case named in the field reports. The API names them
/// as stored in the case record: the variant name, not snake_case.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Hydrate, Reconcile, Serialize, Deserialize,
)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub enum CaseCategory {
    /// 劳动争议
    Labour,
    /// 交通事故
    Traffic,
    /// 医疗纠纷
    Medical,
    /// 校园事故
    School,
    /// 山林土地水利权属
    LandRights,
    /// 环境污染
    Environment,
    /// 建设与物业管理
    Property,
    /// 金融
    Finance,
    /// 消费
    Consumer,
    /// 婚姻家庭
    Family,
    /// 邻里纠纷
    Neighbour,
    /// 征地拆迁
    Demolition,
    /// 安全隐患
    Hazard,
    /// 群众诉求
    Request,
    /// Anything else.
    #[default]
    Other,
}

/// A person involved in a case.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
pub struct Party {
    /// Stable id of the party within the case.
    #[key]
    pub id: String,
    /// Name.
    pub name: String,
    /// Phone, empty if none.
    pub phone: String,
    /// Their part in the case (applicant, respondent, witness…).
    pub role: String,
}

/// One action on a case. The workflow state is folded from these; the event
/// list only ever grows.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
pub struct CaseEvent {
    /// Globally unique event id.
    #[key]
    pub id: String,
    /// What happened: `report`, `accept`, `assign`, `comment`…
    pub kind: String,
    /// The user who acted.
    pub author: String,
    /// The device the user acted from.
    pub device: String,
    /// When, in milliseconds since the Unix epoch, by the author's clock;
    /// in [`TIME_RANGE`].
    pub at: i64,
    /// The author's role when they acted.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub role: String,
    /// Hybrid logical clock (milliseconds << 16 | counter): orders events
    /// after every event their author had seen, in [`HLC_RANGE`]. See
    /// [`crate::workflow`].
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub hlc: i64,
    /// Event details.
    pub data: BTreeMap<String, String>,
    /// Files attached with the event (the photo of a repaired wall with a
    /// `resolve`), by reference; fixed with the event, like the rest of it.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// Special-population details of a household (特殊人群): released from
/// prison, community correction, community drug rehabilitation, severe
/// mental disorder. A document of its own, received only by roles allowed
/// to see it; the household document does not even say it exists.
#[derive(Debug, Clone, PartialEq, Default, Hydrate, Reconcile, Serialize, Deserialize)]
pub struct Sensitive {
    /// The household (a household record id).
    pub household: String,
    /// The household's grid, kept equal to the household's.
    pub org_unit: String,
    /// Which categories apply (see [`SensitiveCategory`]), as a set.
    pub categories: BTreeMap<String, bool>,
    /// Case-management notes; Automerge text.
    #[serde(with = "text")]
    pub notes: Text,
    /// Files attached (a correction order, a doctor's letter), by
    /// reference: served only to the roles that receive this document.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// The special-population categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensitiveCategory {
    /// 刑满释放
    ReleasedFromPrison,
    /// 社区矫正
    CommunityCorrection,
    /// 社区戒毒
    DrugRehabilitation,
    /// 严重精神障碍
    SevereMentalDisorder,
}

impl SensitiveCategory {
    /// Every category.
    pub const ALL: [SensitiveCategory; 4] = [
        SensitiveCategory::ReleasedFromPrison,
        SensitiveCategory::CommunityCorrection,
        SensitiveCategory::DrugRehabilitation,
        SensitiveCategory::SevereMentalDisorder,
    ];

    /// The key stored in the document.
    pub const fn as_str(self) -> &'static str {
        match self {
            SensitiveCategory::ReleasedFromPrison => "released_from_prison",
            SensitiveCategory::CommunityCorrection => "community_correction",
            SensitiveCategory::DrugRehabilitation => "drug_rehabilitation",
            SensitiveCategory::SevereMentalDisorder => "severe_mental_disorder",
        }
    }
}

impl Record for Sensitive {
    const KIND: RecordKind = RecordKind::Sensitive;

    fn validate(&self) -> Result<(), ValidationError> {
        require("org_unit", &self.org_unit)?;
        check_attachments("attachments", &self.attachments)?;
        check_record_ref("household", &self.household, RecordKind::Household)
    }

    fn validate_strict(&self) -> Result<(), ValidationError> {
        unique_attachments("attachments", &self.attachments)
    }
}

/// A visit (走访) to a household by a grid worker.
#[derive(Debug, Clone, PartialEq, Default, Hydrate, Reconcile, Serialize, Deserialize)]
pub struct Visit {
    /// The household visited (a household record id).
    pub household: String,
    /// The grid of that household at the time of the visit.
    pub org_unit: String,
    /// The visiting user.
    pub worker: String,
    /// When, in milliseconds since the Unix epoch, in [`TIME_RANGE`].
    pub visited_at: i64,
    /// What was found; Automerge text.
    #[serde(with = "text")]
    pub findings: Text,
    /// Whether someone must follow up.
    pub follow_up: bool,
    /// Where the visit was recorded, as `latitude,longitude` in decimal
    /// degrees (WGS 84) from the phone, when the worker allowed it; empty
    /// otherwise.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub location: String,
    /// Files attached (photos, scanned papers), by reference.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

impl Record for Visit {
    const KIND: RecordKind = RecordKind::Visit;

    fn validate(&self) -> Result<(), ValidationError> {
        require("org_unit", &self.org_unit)?;
        require("worker", &self.worker)?;
        check_time("visited_at", self.visited_at)?;
        check_location("location", &self.location)?;
        check_attachments("attachments", &self.attachments)?;
        check_record_ref("household", &self.household, RecordKind::Household)
    }

    fn validate_strict(&self) -> Result<(), ValidationError> {
        unique_attachments("attachments", &self.attachments)
    }
}

/// Automerge text as a plain string in JSON (the phone app's view of a
/// record).
mod text {
    use autosurgeon::Text;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(text: &Text, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(text.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::with_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn household() -> Household {
        let mut h = Household {
            org_unit: "grid-1".into(),
            ..Default::default()
        };
        h.members.push(Member::new("m1", "张三"));
        h
    }

    #[test]
    fn dates_are_checked() {
        for ok in ["", "1950-01-31", "2024-12-01"] {
            assert!(check_date("d", ok).is_ok(), "{ok}");
        }
        for bad in [
            "1950-1-31",
            "1950-13-01",
            "19500131",
            "1950-01-00",
            "abcd-01-01",
        ] {
            assert!(check_date("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn household_rules() {
        assert!(household().validate().is_ok());
        let mut h = household();
        h.members.push(Member::new("m1", "李四"));
        assert!(h.validate().is_ok(), "a merge may produce this");
        assert_eq!(h.validate_strict().unwrap_err().field, "members");
        let mut h = household();
        h.head = "nobody".into();
        assert_eq!(h.validate_strict().unwrap_err().field, "head");
        let mut h = household();
        h.org_unit.clear();
        assert_eq!(h.validate().unwrap_err().field, "org_unit");
    }

    #[test]
    fn tags_are_a_set() {
        let mut h = household();
        h.set_tag(Tag::Veteran, true);
        h.set_tag(Tag::Veteran, true);
        assert!(h.has_tag(Tag::Veteran));
        assert_eq!(h.tags.len(), 1);
        h.set_tag(Tag::Veteran, false);
        assert!(!h.has_tag(Tag::Veteran));
    }

    #[test]
    fn attachment_references_are_checked() {
        let good = Attachment {
            sha256: "0123456789abcdef".repeat(4),
            media_type: "image/jpeg".into(),
            size: 120_000,
            author: "w1".into(),
            device: "d1".into(),
            location: "31.2,121.4".into(),
            ..Default::default()
        };
        let mut h = household();
        h.attachments.push(good.clone());
        assert!(h.validate().is_ok());
        type Spoil = fn(&mut Attachment);
        let cases: [(&str, Spoil); 6] = [
            ("sha256", |a| a.sha256 = "0123456789ABCDEF".repeat(4)),
            ("sha256", |a| a.sha256.truncate(63)),
            ("media_type", |a| a.media_type = "text/html".into()),
            ("size", |a| a.size = 0),
            ("size", |a| a.size = MAX_ATTACHMENT_BYTES + 1),
            ("location", |a| a.location = "north".into()),
        ];
        for (field, spoil) in cases {
            let mut bad = good.clone();
            spoil(&mut bad);
            h.attachments = vec![bad];
            assert_eq!(
                h.validate().unwrap_err().field,
                format!("attachments[0].{field}")
            );
        }
        // Two phones attaching the same file merge into two items: valid,
        // but a phone does not make it so on its own.
        h.attachments = vec![good.clone(), good];
        assert!(h.validate().is_ok());
        assert_eq!(h.validate_strict().unwrap_err().field, "attachments");
    }

    #[test]
    fn visit_must_name_a_household() {
        let mut v = Visit {
            org_unit: "grid-1".into(),
            worker: "u1".into(),
            household: RecordId::new(RecordKind::Case).to_string(),
            ..Default::default()
        };
        assert_eq!(v.validate().unwrap_err().field, "household");
        v.household = RecordId::new(RecordKind::Household).to_string();
        assert!(v.validate().is_ok());
        for bad in ["31.2", "91,0", "0,181", "a,b", "1,2,3", "NaN,0"] {
            v.location = bad.into();
            assert_eq!(v.validate().unwrap_err().field, "location", "{bad}");
        }
        v.location = "31.2304,121.4737".into();
        assert!(v.validate().is_ok());
    }
}
