//! The XML of the IceWarp administrative API: building requests and reading replies.
//!
//! Requests are written by hand with every value escaped (no CDATA: a password holding
//! `]]>` would end it). Replies are read with quick-xml as a stream of events, matched by
//! lower-cased local element names relative to `<query>`, so that unknown elements are
//! skipped and a list of one item or none needs no special case. The reader refuses a
//! DOCTYPE, never expands an entity other than the five predefined ones and character
//! references, and limits nesting, so that hostile XML is an error rather than a hang.

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};
use zeroize::Zeroizing;

/// The namespace of `<query>`.
pub const NAMESPACE: &str = "admin:iq:rpc";

/// Deeper nesting than this is refused; real replies are about 6 levels deep.
pub const MAX_DEPTH: usize = 64;

/// A value holds a character that XML 1.0 cannot carry at all (a control character other
/// than tab, line feed and carriage return, or U+FFFE/U+FFFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unrepresentable;

/// Appends `value` to `out` as XML character data that any parser turns back into exactly
/// `value`: the five markup characters become entities, and tab, line feed and carriage
/// return become character references so that line-end and white-space normalization
/// cannot change them.
pub fn push_escaped(out: &mut String, value: &str) -> Result<(), Unrepresentable> {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => return Err(Unrepresentable),
            c => out.push(c),
        }
    }
    Ok(())
}

/// The text of one request; wiped when dropped, as it may hold a password.
pub type RequestText = Zeroizing<String>;

/// Room for the fixed text of any request built here: tags, namespace, command name.
const FIXED_CAPACITY: usize = 512;
/// The longest escape, `&quot;`, takes six bytes for one.
const WORST_ESCAPE: usize = 6;

/// Builds one `<iq>` request. Element names are the fixed lower-case literals of this
/// module; only values go through [`push_escaped`]. The text is wiped when dropped, and a
/// request holding a password is sized up front ([`RequestBuilder::with_room`]): growing the
/// buffer would free a copy of the password without wiping it.
pub struct RequestBuilder {
    out: Zeroizing<String>,
}

impl RequestBuilder {
    pub fn new(sid: Option<&str>, command: &str) -> Result<RequestBuilder, Unrepresentable> {
        RequestBuilder::with_room(sid, command, 0)
    }

    /// A builder that never grows while it takes `value_bytes` bytes of values.
    pub fn with_room(
        sid: Option<&str>,
        command: &str,
        value_bytes: usize,
    ) -> Result<RequestBuilder, Unrepresentable> {
        let capacity = FIXED_CAPACITY.saturating_add(value_bytes.saturating_mul(WORST_ESCAPE));
        let mut out = Zeroizing::new(String::with_capacity(capacity));
        match sid {
            Some(sid) => {
                out.push_str("<iq sid=\"");
                push_escaped(&mut out, sid)?;
                out.push_str("\">");
            }
            None => out.push_str("<iq>"),
        }
        out.push_str("<query xmlns=\"");
        out.push_str(NAMESPACE);
        out.push_str("\"><commandname>");
        push_escaped(&mut out, command)?;
        out.push_str("</commandname><commandparams>");
        Ok(RequestBuilder { out })
    }

    /// `<name>value</name>`.
    pub fn text(&mut self, name: &str, value: &str) -> Result<&mut Self, Unrepresentable> {
        self.open(name);
        push_escaped(&mut self.out, value)?;
        self.close(name);
        Ok(self)
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn finish(mut self) -> RequestText {
        self.out.push_str("</commandparams></query></iq>");
        self.out
    }
}

/// `authenticate` with plain-text credentials (administrator login, or the fallback user
/// password check).
pub fn authenticate(email: &str, password: &str) -> Result<RequestText, Unrepresentable> {
    let mut request =
        RequestBuilder::with_room(None, "authenticate", email.len() + password.len())?;
    request
        .text("authtype", "0")?
        .text("email", email)?
        .text("password", password)?
        .text("digest", "")?
        .text("persistentlogin", "0")?;
    Ok(request.finish())
}

/// `getauthtoken`: checks a user's own password without an administrator session.
pub fn getauthtoken(email: &str, password: &str) -> Result<RequestText, Unrepresentable> {
    let mut request =
        RequestBuilder::with_room(None, "getauthtoken", email.len() + password.len())?;
    request
        .text("email", email)?
        .text("password", password)?
        .text("digest", "")?
        .text("authtype", "0")?
        .text("persistentlogin", "0")?;
    Ok(request.finish())
}

pub fn logout(sid: &str) -> Result<RequestText, Unrepresentable> {
    Ok(RequestBuilder::new(Some(sid), "logout")?.finish())
}

pub fn getdomainsinfolist(
    sid: &str,
    offset: u64,
    count: u64,
) -> Result<RequestText, Unrepresentable> {
    let mut request = RequestBuilder::new(Some(sid), "getdomainsinfolist")?;
    request.open("filter").text("namemask", "*")?.close("filter");
    request.text("offset", &offset.to_string())?.text("count", &count.to_string())?;
    Ok(request.finish())
}

pub fn getaccountsinfolist(
    sid: &str,
    domain: &str,
    offset: u64,
    count: u64,
) -> Result<RequestText, Unrepresentable> {
    let mut request = RequestBuilder::new(Some(sid), "getaccountsinfolist")?;
    request.text("domainstr", domain)?;
    request.open("filter").text("namemask", "*")?.close("filter");
    request.text("offset", &offset.to_string())?.text("count", &count.to_string())?;
    Ok(request.finish())
}

pub fn getaccountproperties(
    sid: &str,
    email: &str,
    properties: &[&str],
) -> Result<RequestText, Unrepresentable> {
    let mut request = RequestBuilder::new(Some(sid), "getaccountproperties")?;
    request.text("accountemail", email)?;
    request.open("accountpropertylist");
    for property in properties {
        request.open("item").text("propname", property)?.close("item");
    }
    request.close("accountpropertylist");
    request.text("accountpropertyset", "0")?;
    Ok(request.finish())
}

pub fn getaccountmemberinfolist(
    sid: &str,
    group: &str,
    offset: u64,
    count: u64,
) -> Result<RequestText, Unrepresentable> {
    let mut request = RequestBuilder::new(Some(sid), "getaccountmemberinfolist")?;
    request.text("who", group)?;
    request.text("offset", &offset.to_string())?.text("count", &count.to_string())?;
    Ok(request.finish())
}

// ---------------------------------------------------------------------------------------
// Replies

/// What `iq/@type` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Result,
    /// `type="error"`, with the `uid` of its `<error>` element, verbatim.
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The `sid` attribute of the reply's `<iq>`, if any.
    pub sid: Option<String>,
    pub outcome: Outcome,
}

/// Receives the elements inside `<query>` of a `type="result"` reply. `path` holds the
/// lower-cased local names from the child of `<query>` down to the element, e.g.
/// `["result", "item", "email"]`. Errors are reasons for a malformed reply.
pub trait Visitor {
    fn open(&mut self, _path: &[String]) -> Result<(), String> {
        Ok(())
    }

    /// `text` is the element's own character data (complete for a leaf element).
    fn close(&mut self, path: &[String], text: &str) -> Result<(), String>;
}

/// Ignores everything: for replies where only the outcome matters.
pub struct Ignore;

impl Visitor for Ignore {
    fn close(&mut self, _path: &[String], _text: &str) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IqType {
    Result,
    Error,
}

/// Reads one reply, calling `visitor` for the content of a result. Any reason why the
/// bytes are not a well-formed `admin:iq:rpc` reply is returned as the error.
pub fn parse_reply(bytes: &[u8], visitor: &mut dyn Visitor) -> Result<Reply, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|err| format!("the reply is not UTF-8 ({err})"))?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    let mut reply = ReplyReader::new(visitor);
    loop {
        let position = reader.buffer_position();
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|err| format!("not well-formed XML near byte {position}: {err}"))?;
        match event {
            Event::Start(ref start) => reply.start(&namespace, start, false)?,
            Event::Empty(ref start) => reply.start(&namespace, start, true)?,
            Event::End(_) => reply.end()?,
            Event::Text(content) => reply.push_text(&content.xml10_content()),
            Event::CData(content) => reply.push_text(&content.xml10_content()),
            Event::GeneralRef(reference) => {
                let mut utf8 = [0u8; 4];
                reply.push_text(resolve_reference(&reference)?.encode_utf8(&mut utf8));
            }
            Event::DocType(_) => {
                return Err("the reply contains a DOCTYPE, which is not accepted".to_string())
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    reply.finish()
}

/// One reply as it is read: where the reader is, and what `<iq>` said so far.
struct ReplyReader<'v> {
    visitor: &'v mut dyn Visitor,
    /// Lower-cased local names from the root down to the current element.
    stack: Vec<String>,
    /// The buffers of names popped off `stack`, for the next elements: a reply of 100
    /// elements then allocates for its deepest path only, not for every element.
    spare: Vec<String>,
    /// The current element's own character data.
    text: String,
    iq_type: Option<IqType>,
    sid: Option<String>,
    error_uid: Option<String>,
    seen_root: bool,
    seen_query: bool,
}

impl<'v> ReplyReader<'v> {
    fn new(visitor: &'v mut dyn Visitor) -> ReplyReader<'v> {
        ReplyReader {
            visitor,
            stack: Vec::new(),
            spare: Vec::new(),
            text: String::new(),
            iq_type: None,
            sid: None,
            error_uid: None,
            seen_root: false,
            seen_query: false,
        }
    }

    /// Whether the current element is inside `<query>` of a `type="result"` reply: only
    /// there does the visitor see anything.
    fn in_result(&self) -> bool {
        self.iq_type == Some(IqType::Result) && self.stack.len() > 2 && self.stack[1] == "query"
    }

    /// An element starts (and, when `empty`, ends at once).
    fn start(
        &mut self,
        namespace: &ResolveResult<'_>,
        start: &BytesStart<'_>,
        empty: bool,
    ) -> Result<(), String> {
        if self.stack.is_empty() && self.seen_root {
            return Err("more than one root element".to_string());
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!("elements nested deeper than {MAX_DEPTH} levels"));
        }
        let mut name = self.spare.pop().unwrap_or_default();
        name.clear();
        name.push_str(start.local_name().as_ref());
        name.make_ascii_lowercase();
        self.text.clear();
        match self.stack.len() {
            0 => self.open_root(&name, start)?,
            1 if name == "query" => {
                self.seen_query = true;
                check_query_namespace(namespace, self.iq_type)?;
            }
            _ => {}
        }
        self.note_error_uid(&name, start)?;
        self.stack.push(name);
        let in_result = self.in_result();
        if in_result {
            self.visitor.open(&self.stack[2..])?;
        }
        if empty {
            if in_result {
                self.visitor.close(&self.stack[2..], "")?;
            }
            self.pop();
        }
        Ok(())
    }

    fn open_root(&mut self, name: &str, start: &BytesStart<'_>) -> Result<(), String> {
        if name != "iq" {
            return Err(format!("the root element is <{name}>, not <iq>"));
        }
        self.seen_root = true;
        let (kind, sid) = read_iq_attributes(start)?;
        self.iq_type = Some(kind);
        self.sid = sid;
        Ok(())
    }

    /// `<error uid="…"/>` of an error reply, inside `<query>` (documented) or directly in
    /// `<iq>`; the first one counts.
    fn note_error_uid(&mut self, name: &str, start: &BytesStart<'_>) -> Result<(), String> {
        let depth = self.stack.len();
        let placed = depth == 1 || (depth == 2 && self.stack[1] == "query");
        if name == "error"
            && self.iq_type == Some(IqType::Error)
            && placed
            && self.error_uid.is_none()
        {
            self.error_uid = Some(attribute(start, "uid")?.unwrap_or_default());
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), String> {
        if self.in_result() {
            self.visitor.close(&self.stack[2..], &self.text)?;
        }
        self.text.clear();
        self.pop();
        Ok(())
    }

    fn pop(&mut self) {
        if let Some(name) = self.stack.pop() {
            self.spare.push(name);
        }
    }

    fn push_text(&mut self, text: &str) {
        if !self.stack.is_empty() {
            self.text.push_str(text);
        }
    }

    fn finish(self) -> Result<Reply, String> {
        if !self.seen_root {
            return Err("the reply is empty (no <iq> element)".to_string());
        }
        if !self.stack.is_empty() {
            return Err("the reply is truncated (unclosed elements at the end)".to_string());
        }
        let outcome = match self.iq_type {
            Some(IqType::Result) if self.seen_query => Outcome::Result,
            Some(IqType::Result) => return Err("the result has no <query> element".to_string()),
            Some(IqType::Error) => match self.error_uid {
                Some(uid) if !uid.is_empty() => Outcome::Error(uid),
                _ => return Err("an error reply without <error uid=\"…\">".to_string()),
            },
            None => return Err("the reply has no <iq>".to_string()),
        };
        Ok(Reply { sid: self.sid, outcome })
    }
}

/// A character reference, or one of the five predefined entities; any other entity is
/// refused, never expanded.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<char, String> {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => Ok(c),
        Ok(None) => match &**reference {
            "amp" => Ok('&'),
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "quot" => Ok('"'),
            "apos" => Ok('\''),
            other => Err(format!(
                "the reply uses the undeclared entity &{other}; (only the predefined ones are \
                 accepted)"
            )),
        },
        Err(err) => Err(format!("bad character reference: {err}")),
    }
}

fn read_iq_attributes(start: &BytesStart<'_>) -> Result<(IqType, Option<String>), String> {
    let kind = match attribute(start, "type")? {
        Some(kind) if kind.eq_ignore_ascii_case("result") => IqType::Result,
        Some(kind) if kind.eq_ignore_ascii_case("error") => IqType::Error,
        Some(kind) => return Err(format!("<iq type=\"{kind}\"> is neither result nor error")),
        None => return Err("<iq> has no type attribute".to_string()),
    };
    let sid = attribute(start, "sid")?.filter(|sid| !sid.is_empty());
    Ok((kind, sid))
}

/// A result must come in the `admin:iq:rpc` namespace. An error reply without any
/// namespace is accepted: IceWarp 11.x was captured answering `<query>` bare, and an
/// error never lets anyone in.
fn check_query_namespace(
    namespace: &ResolveResult<'_>,
    iq_type: Option<IqType>,
) -> Result<(), String> {
    match namespace {
        ResolveResult::Bound(Namespace(ns)) if *ns == NAMESPACE => Ok(()),
        ResolveResult::Unbound if iq_type == Some(IqType::Error) => Ok(()),
        ResolveResult::Bound(Namespace(ns)) => {
            Err(format!("<query> is in namespace {ns:?}, not {NAMESPACE:?}"))
        }
        ResolveResult::Unbound => Err(format!("<query> has no namespace, not {NAMESPACE:?}")),
        ResolveResult::Unknown(prefix) => {
            Err(format!("<query> uses the undeclared namespace prefix {prefix:?}"))
        }
    }
}

/// The value of the attribute whose local name is `wanted` (case-insensitive), with
/// predefined entities and character references resolved.
fn attribute(start: &BytesStart<'_>, wanted: &str) -> Result<Option<String>, String> {
    for attr in start.attributes() {
        let attr = attr.map_err(|err| format!("bad attribute: {err}"))?;
        if attr.key.local_name().as_ref().eq_ignore_ascii_case(wanted)
            && attr.key.prefix().is_none()
        {
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| format!("bad value of attribute {wanted}: {err}"))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------
// Visitors for the replies dircache reads

fn path_is(path: &[String], wanted: &[&str]) -> bool {
    path.len() == wanted.len() && path.iter().zip(wanted).all(|(have, want)| have == want)
}

/// Whether the `/`-separated `field` names the path `relative`; without splitting, as this
/// runs for every element of every item of every page.
fn field_is(field: &str, relative: &[String]) -> bool {
    let mut rest = field;
    for (index, segment) in relative.iter().enumerate() {
        if index > 0 {
            let Some(after) = rest.strip_prefix('/') else { return false };
            rest = after;
        }
        let Some(after) = rest.strip_prefix(segment.as_str()) else { return false };
        rest = after;
    }
    rest.is_empty()
}

/// The text of the first element at each of a few fixed paths.
pub struct Fields {
    paths: &'static [&'static [&'static str]],
    pub values: Vec<Option<String>>,
}

impl Fields {
    pub fn new(paths: &'static [&'static [&'static str]]) -> Fields {
        Fields { paths, values: vec![None; paths.len()] }
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        self.values.get(index).and_then(|value| value.as_deref())
    }
}

impl Visitor for Fields {
    fn close(&mut self, path: &[String], text: &str) -> Result<(), String> {
        for (index, wanted) in self.paths.iter().enumerate() {
            if path_is(path, wanted) && self.values[index].is_none() {
                self.values[index] = Some(text.to_string());
            }
        }
        Ok(())
    }
}

/// One page of a `…infolist` reply: `result/item` elements with the texts of a few fields
/// (paths relative to the item, `/`-separated), plus `offset` and `overallcount`.
pub struct ListPage {
    fields: &'static [&'static str],
    current: Option<Vec<Option<String>>>,
    pub items: Vec<Vec<Option<String>>>,
    pub offset: Option<String>,
    pub overall_count: Option<String>,
}

impl ListPage {
    pub fn new(fields: &'static [&'static str]) -> ListPage {
        ListPage { fields, current: None, items: Vec::new(), offset: None, overall_count: None }
    }

    /// Forgets the page, keeping the field list, for the next request.
    pub fn clear(&mut self) {
        self.current = None;
        self.items.clear();
        self.offset = None;
        self.overall_count = None;
    }
}

impl Visitor for ListPage {
    fn open(&mut self, path: &[String]) -> Result<(), String> {
        if path_is(path, &["result", "item"]) {
            self.current = Some(vec![None; self.fields.len()]);
        }
        Ok(())
    }

    fn close(&mut self, path: &[String], text: &str) -> Result<(), String> {
        if path_is(path, &["result", "item"]) {
            if let Some(item) = self.current.take() {
                self.items.push(item);
            }
        } else if path_is(path, &["result", "offset"]) {
            self.offset = Some(text.trim().to_string());
        } else if path_is(path, &["result", "overallcount"]) {
            self.overall_count = Some(text.trim().to_string());
        } else if path.len() > 2 && path[0] == "result" && path[1] == "item" {
            if let Some(item) = self.current.as_mut() {
                let relative = &path[2..];
                for (index, field) in self.fields.iter().enumerate() {
                    if item[index].is_none() && field_is(field, relative) {
                        item[index] = Some(text.to_string());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The value of one account property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValue {
    /// `TPropertyNoValue`, or no `<val>` at all.
    NoValue,
    /// `<val>text</val>`.
    Text(String),
    /// `<val><item>a</item><item>b</item></val>` (`TPropertyStringList`).
    List(Vec<String>),
}

/// A `getaccountproperties` reply: (lower-cased property name, value) pairs.
#[derive(Default)]
pub struct Properties {
    name: Option<String>,
    classname: Option<String>,
    text: Option<String>,
    list: Vec<String>,
    in_item: bool,
    pub values: Vec<(String, PropertyValue)>,
}

impl Properties {
    pub fn new() -> Properties {
        Properties::default()
    }

    /// The value of `name` (case-insensitive; the server echoes the request's case).
    pub fn get(&self, name: &str) -> Option<&PropertyValue> {
        self.values.iter().find(|(have, _)| have.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

impl Visitor for Properties {
    fn open(&mut self, path: &[String]) -> Result<(), String> {
        if path_is(path, &["result", "item"]) {
            self.in_item = true;
            self.name = None;
            self.classname = None;
            self.text = None;
            self.list.clear();
        }
        Ok(())
    }

    fn close(&mut self, path: &[String], text: &str) -> Result<(), String> {
        if !self.in_item {
            return Ok(());
        }
        if path_is(path, &["result", "item"]) {
            self.in_item = false;
            let Some(name) = self.name.take() else {
                return Err("a property item without <apiproperty><propname>".to_string());
            };
            let no_value = self
                .classname
                .as_deref()
                .is_some_and(|class| class.trim().eq_ignore_ascii_case("TPropertyNoValue"));
            let value = if no_value {
                PropertyValue::NoValue
            } else if !self.list.is_empty() {
                PropertyValue::List(std::mem::take(&mut self.list))
            } else {
                match self.text.take() {
                    Some(text) => PropertyValue::Text(text),
                    None => PropertyValue::NoValue,
                }
            };
            self.values.push((name.trim().to_ascii_lowercase(), value));
            return Ok(());
        }
        // Matched in place: this runs for every element of every account's reply.
        let relative = path.get(2..).unwrap_or_default();
        if path_is(relative, &["apiproperty", "propname"]) {
            self.name = Some(text.to_string());
        } else if path_is(relative, &["propertyval", "classname"]) {
            self.classname = Some(text.to_string());
        } else if path_is(relative, &["propertyval", "val"]) {
            self.text = Some(text.to_string());
        } else if path_is(relative, &["propertyval", "val", "item"]) {
            self.list.push(text.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
