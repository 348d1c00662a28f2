//! The XML of the IceWarp administrative API: building requests and reading replies.
//!
//! Requests are written by hand with every value escaped (no CDATA: a password holding
//! `]]>` would end it). Replies are read with quick-xml as a stream of events, matched by
//! lower-cased local element names relative to `<query>`, so that unknown elements are
//! skipped and a list of one item or none needs no special case. The reader refuses a
//! DOCTYPE, never expands an entity other than the five predefined ones and character
//! references, and limits nesting, so that hostile XML is an error rather than a hang.

use quick_xml::events::{BytesStart, Event};
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

    // Lower-cased local names from the root down to the current element.
    let mut stack: Vec<String> = Vec::new();
    let mut text_buffer = String::new();
    let mut iq_type: Option<IqType> = None;
    let mut sid: Option<String> = None;
    let mut error_uid: Option<String> = None;
    let mut seen_root = false;
    let mut seen_query = false;

    loop {
        let position = reader.buffer_position();
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|err| format!("not well-formed XML near byte {position}: {err}"))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                if stack.is_empty() && seen_root {
                    return Err("more than one root element".to_string());
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH} levels"));
                }
                let name = start.local_name().as_ref().to_ascii_lowercase();
                text_buffer.clear();
                match stack.len() {
                    0 => {
                        if name != "iq" {
                            return Err(format!("the root element is <{name}>, not <iq>"));
                        }
                        seen_root = true;
                        let (kind, reply_sid) = read_iq_attributes(start)?;
                        iq_type = Some(kind);
                        sid = reply_sid;
                    }
                    1 if name == "query" => {
                        seen_query = true;
                        check_query_namespace(&namespace, iq_type)?;
                    }
                    _ => {}
                }
                // `<error uid="…"/>` inside `<query>` (documented) or directly in `<iq>`.
                if name == "error"
                    && iq_type == Some(IqType::Error)
                    && (stack.len() == 1 || (stack.len() == 2 && stack[1] == "query"))
                    && error_uid.is_none()
                {
                    error_uid = Some(attribute(start, "uid")?.unwrap_or_default());
                }
                stack.push(name);
                let in_result =
                    iq_type == Some(IqType::Result) && stack.len() > 2 && stack[1] == "query";
                if in_result {
                    visitor.open(&stack[2..])?;
                }
                if empty {
                    if in_result {
                        visitor.close(&stack[2..], "")?;
                    }
                    stack.pop();
                }
            }
            Event::End(_) => {
                let in_result =
                    iq_type == Some(IqType::Result) && stack.len() > 2 && stack[1] == "query";
                if in_result {
                    visitor.close(&stack[2..], &text_buffer)?;
                }
                text_buffer.clear();
                stack.pop();
            }
            Event::Text(content) => {
                if !stack.is_empty() {
                    text_buffer.push_str(&content.xml10_content());
                }
            }
            Event::CData(content) => {
                if !stack.is_empty() {
                    text_buffer.push_str(&content.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*reference {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => {
                            return Err(format!(
                                "the reply uses the undeclared entity &{other}; (only the \
                                 predefined ones are accepted)"
                            ))
                        }
                    },
                    Err(err) => return Err(format!("bad character reference: {err}")),
                };
                if !stack.is_empty() {
                    text_buffer.push(resolved);
                }
            }
            Event::DocType(_) => {
                return Err("the reply contains a DOCTYPE, which is not accepted".to_string())
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }

    if !seen_root {
        return Err("the reply is empty (no <iq> element)".to_string());
    }
    if !stack.is_empty() {
        return Err("the reply is truncated (unclosed elements at the end)".to_string());
    }
    let outcome = match iq_type {
        Some(IqType::Result) => {
            if !seen_query {
                return Err("the result has no <query> element".to_string());
            }
            Outcome::Result
        }
        Some(IqType::Error) => match error_uid {
            Some(uid) if !uid.is_empty() => Outcome::Error(uid),
            _ => return Err("an error reply without <error uid=\"…\">".to_string()),
        },
        None => return Err("the reply has no <iq>".to_string()),
    };
    Ok(Reply { sid, outcome })
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
                    let matches = field.split('/').count() == relative.len()
                        && field.split('/').zip(relative).all(|(want, have)| want == have);
                    if matches && item[index].is_none() {
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
        let relative: Vec<&str> = path.iter().skip(2).map(String::as_str).collect();
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
        match relative.as_slice() {
            ["apiproperty", "propname"] => self.name = Some(text.to_string()),
            ["propertyval", "classname"] => self.classname = Some(text.to_string()),
            ["propertyval", "val"] => self.text = Some(text.to_string()),
            ["propertyval", "val", "item"] => self.list.push(text.to_string()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(xml: &str, visitor: &mut dyn Visitor) -> Result<Reply, String> {
        parse_reply(xml.as_bytes(), visitor)
    }

    fn parse(xml: &str) -> Result<Reply, String> {
        parse_with(xml, &mut Ignore)
    }

    fn result(sid: Option<&str>) -> Reply {
        Reply { sid: sid.map(str::to_string), outcome: Outcome::Result }
    }

    /// The text of `<name>` in `xml`, decoded by quick-xml like a server would.
    fn decoded_element(xml: &str, name: &str) -> String {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut inside = false;
        let mut text = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(start) if start.local_name().as_ref() == name => inside = true,
                Event::End(end) if end.local_name().as_ref() == name => return text,
                Event::Text(content) if inside => text.push_str(&content.xml10_content()),
                Event::GeneralRef(reference) if inside => {
                    let c = match reference.resolve_char_ref().unwrap() {
                        Some(c) => c,
                        None => match &*reference {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => panic!("entity {other}"),
                        },
                    };
                    text.push(c);
                }
                Event::Eof => panic!("no <{name}>"),
                _ => {}
            }
        }
    }

    #[test]
    fn authenticate_request_is_exact() {
        assert_eq!(
            authenticate("admin@example.com", "secret").unwrap().as_str(),
            "<iq><query xmlns=\"admin:iq:rpc\"><commandname>authenticate</commandname>\
             <commandparams><authtype>0</authtype><email>admin@example.com</email>\
             <password>secret</password><digest></digest><persistentlogin>0</persistentlogin>\
             </commandparams></query></iq>"
        );
    }

    #[test]
    fn getauthtoken_request_escapes_every_markup_character() {
        let password = "<&>\"' ]]> pä€😀\t\r\nend";
        let request = getauthtoken("o'neil&co@example.com", password).unwrap();
        assert_eq!(
            request.as_str(),
            "<iq><query xmlns=\"admin:iq:rpc\"><commandname>getauthtoken</commandname>\
             <commandparams><email>o&apos;neil&amp;co@example.com</email>\
             <password>&lt;&amp;&gt;&quot;&apos; ]]&gt; pä€😀&#9;&#13;&#10;end</password>\
             <digest></digest><authtype>0</authtype><persistentlogin>0</persistentlogin>\
             </commandparams></query></iq>"
        );
        assert!(!request.contains("CDATA"));
        // What a parser makes of it is exactly the password, line ends included.
        assert_eq!(decoded_element(&request, "password"), password);
        assert_eq!(decoded_element(&request, "email"), "o'neil&co@example.com");
    }

    #[test]
    fn a_request_holding_a_password_never_grows() {
        let password = "\"".repeat(5000);
        let email = "&".repeat(300);
        let mut builder =
            RequestBuilder::with_room(None, "authenticate", email.len() + password.len()).unwrap();
        let capacity = builder.out.capacity();
        builder.text("email", &email).unwrap().text("password", &password).unwrap();
        assert_eq!(builder.out.capacity(), capacity);
        let request = authenticate(&email, &password).unwrap();
        assert_eq!(request.capacity(), capacity, "authenticate reserves the same room");
        assert!(request.ends_with("</iq>"));
    }

    #[test]
    fn control_characters_cannot_be_sent() {
        assert_eq!(getauthtoken("a@example.com", "nul\0byte"), Err(Unrepresentable));
        assert_eq!(getauthtoken("a@example.com", "bell\u{7}"), Err(Unrepresentable));
        assert_eq!(getauthtoken("a@example.com", "\u{FFFF}"), Err(Unrepresentable));
        assert_eq!(authenticate("a\u{1}@example.com", "x"), Err(Unrepresentable));
    }

    #[test]
    fn session_requests_carry_the_sid_attribute() {
        assert_eq!(
            logout("2016\"02").unwrap().as_str(),
            "<iq sid=\"2016&quot;02\"><query xmlns=\"admin:iq:rpc\"><commandname>logout\
             </commandname><commandparams></commandparams></query></iq>"
        );
        assert_eq!(
            getaccountsinfolist("S1", "example.com", 500, 500).unwrap().as_str(),
            "<iq sid=\"S1\"><query xmlns=\"admin:iq:rpc\"><commandname>getaccountsinfolist\
             </commandname><commandparams><domainstr>example.com</domainstr><filter><namemask>*\
             </namemask></filter><offset>500</offset><count>500</count></commandparams></query>\
             </iq>"
        );
        assert_eq!(
            getdomainsinfolist("S1", 0, 500).unwrap().as_str(),
            "<iq sid=\"S1\"><query xmlns=\"admin:iq:rpc\"><commandname>getdomainsinfolist\
             </commandname><commandparams><filter><namemask>*</namemask></filter><offset>0\
             </offset><count>500</count></commandparams></query></iq>"
        );
        assert_eq!(
            getaccountproperties("S1", "alice@example.com", &["u_mailbox", "u_alias"])
                .unwrap()
                .as_str(),
            "<iq sid=\"S1\"><query xmlns=\"admin:iq:rpc\"><commandname>getaccountproperties\
             </commandname><commandparams><accountemail>alice@example.com</accountemail>\
             <accountpropertylist><item><propname>u_mailbox</propname></item><item><propname>\
             u_alias</propname></item></accountpropertylist><accountpropertyset>0\
             </accountpropertyset></commandparams></query></iq>"
        );
        assert_eq!(
            getaccountmemberinfolist("S1", "staff@example.com", 100, 500).unwrap().as_str(),
            "<iq sid=\"S1\"><query xmlns=\"admin:iq:rpc\"><commandname>getaccountmemberinfolist\
             </commandname><commandparams><who>staff@example.com</who><offset>100</offset>\
             <count>500</count></commandparams></query></iq>"
        );
    }

    #[test]
    fn authenticate_reply_gives_the_sid() {
        let mut fields = Fields::new(&[&["result"]]);
        let reply = parse_with(
            "<iq type=\"result\" sid=\"201602051125504026\"><query xmlns=\"admin:iq:rpc\">\
             <result>1</result></query></iq>",
            &mut fields,
        )
        .unwrap();
        assert_eq!(reply, result(Some("201602051125504026")));
        assert_eq!(fields.get(0), Some("1"));
    }

    #[test]
    fn error_reply_gives_the_uid_verbatim() {
        let reply = parse(
            "<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"auth_login_invalid\"/>\
             </query></iq>",
        )
        .unwrap();
        assert_eq!(reply.outcome, Outcome::Error("auth_login_invalid".to_string()));
        // 11.x answered errors with a bare <query>; an error never lets anyone in.
        let reply = parse(
            "<iq type=\"error\">\n  <query>\n    <error uid=\"iq_root_tag_invalid\"/>\n  </query>\n\
             </iq>\n",
        )
        .unwrap();
        assert_eq!(reply.outcome, Outcome::Error("iq_root_tag_invalid".to_string()));
        let reply = parse(
            "<iq type=\"error\" sid=\"S\"><query xmlns=\"admin:iq:rpc\"><error uid=\"Some_New&amp;Uid\">\
             </error></query></iq>",
        )
        .unwrap();
        assert_eq!(reply.outcome, Outcome::Error("Some_New&Uid".to_string()));
    }

    #[test]
    fn error_reply_without_uid_is_malformed() {
        for xml in [
            "<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"/></iq>",
            "<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error/></query></iq>",
            "<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"\"/></query></iq>",
        ] {
            assert!(parse(xml).is_err(), "{xml}");
        }
    }

    #[test]
    fn visitor_sees_nothing_of_an_error_reply() {
        let mut fields = Fields::new(&[&["result", "authtoken"]]);
        parse_with(
            "<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"x\"/><result>\
             <authtoken>ABC</authtoken></result></query></iq>",
            &mut fields,
        )
        .unwrap();
        assert_eq!(fields.get(0), None);
    }

    #[test]
    fn wrong_namespace_root_or_type_is_malformed() {
        let cases = [
            ("<iq type=\"result\"><query xmlns=\"admin:iq:other\"><result>1</result></query></iq>", "namespace"),
            ("<iq type=\"result\"><query><result>1</result></query></iq>", "no namespace"),
            ("<iq type=\"result\"><q:query xmlns:q=\"jabber:iq:rpc\"><result>1</result></q:query></iq>", "namespace"),
            ("<reply type=\"result\"><query xmlns=\"admin:iq:rpc\"/></reply>", "root element"),
            ("<iq type=\"get\"><query xmlns=\"admin:iq:rpc\"/></iq>", "neither result nor error"),
            ("<iq><query xmlns=\"admin:iq:rpc\"/></iq>", "no type"),
            ("<iq type=\"result\"></iq>", "no <query>"),
            ("", "empty"),
            ("   \n", "empty"),
            ("<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"/></iq><iq type=\"result\"/>", "more than one root"),
        ];
        for (xml, expected) in cases {
            let reason = parse(xml).unwrap_err();
            assert!(reason.contains(expected), "{xml}: {reason}");
        }
        // A prefixed query in the right namespace is the same element.
        parse("<iq type=\"result\"><q:query xmlns:q=\"admin:iq:rpc\"><q:result>1</q:result></q:query></iq>")
            .unwrap();
    }

    #[test]
    fn truncated_or_broken_xml_is_malformed() {
        let full = "<iq type=\"result\" sid=\"S\"><query xmlns=\"admin:iq:rpc\"><result><item>\
                    <name>example.com</name></item><offset>0</offset><overallcount>1</overallcount>\
                    </result></query></iq>";
        parse(full).unwrap();
        for cut in [10, 30, 60, full.len() - 1] {
            let reason = parse(&full[..cut]).unwrap_err();
            assert!(!reason.is_empty(), "{cut}");
        }
        for xml in [
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>1</wrong></query></iq>",
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>&#xD800;</result></query></iq>",
            "<iq type=\"result\" type=\"error\"><query xmlns=\"admin:iq:rpc\"/></iq>",
        ] {
            assert!(parse(xml).is_err(), "{xml}");
        }
        assert!(parse_reply(
            b"<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>\xff</result></query></iq>",
            &mut Ignore
        )
        .unwrap_err()
        .contains("UTF-8"));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 100_000;
        let mut xml = String::from("<iq type=\"result\"><query xmlns=\"admin:iq:rpc\">");
        xml.push_str(&"<a>".repeat(depth));
        xml.push_str(&"</a>".repeat(depth));
        xml.push_str("</query></iq>");
        let reason = parse(&xml).unwrap_err();
        assert!(reason.contains("deeper than 64"), "{reason}");
        // Up to the limit is fine.
        let mut xml = String::from("<iq type=\"result\"><query xmlns=\"admin:iq:rpc\">");
        xml.push_str(&"<a>".repeat(MAX_DEPTH - 2));
        xml.push_str(&"</a>".repeat(MAX_DEPTH - 2));
        xml.push_str("</query></iq>");
        parse(&xml).unwrap();
    }

    #[test]
    fn entities_are_never_expanded() {
        let billion_laughs = "<?xml version=\"1.0\"?>\
            <!DOCTYPE iq [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>\
            <iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><authtoken>&lol2;</authtoken>\
            </result></query></iq>";
        let mut fields = Fields::new(&[&["result", "authtoken"]]);
        let reason = parse_with(billion_laughs, &mut fields).unwrap_err();
        assert!(reason.contains("DOCTYPE"), "{reason}");
        assert_eq!(fields.get(0), None);
        // Without a DTD, an undeclared entity is an error too, not an empty string.
        let mut fields = Fields::new(&[&["result", "authtoken"]]);
        let reason = parse_with(
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><authtoken>&token;\
             </authtoken></result></query></iq>",
            &mut fields,
        )
        .unwrap_err();
        assert!(reason.contains("&token;"), "{reason}");
        let reason = parse("<iq type=\"result\" sid=\"&x;\"><query xmlns=\"admin:iq:rpc\"/></iq>")
            .unwrap_err();
        assert!(reason.contains("sid") || reason.contains("attribute"), "{reason}");
    }

    #[test]
    fn getauthtoken_reply_gives_the_token() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<iq type=\"result\"><query \
                   xmlns=\"admin:iq:rpc\"><result><email>alice@example.com</email><name>\
                   <classname>TAccountName</classname><name>Alice</name><surname>Liddell\
                   </surname></name><avatartoken/><authtoken>2FD16498F17BAF4688028BD198537CED\
                   </authtoken><avatarurl>x</avatarurl></result></query></iq>";
        let mut fields = Fields::new(&[&["result", "authtoken"]]);
        parse_with(xml, &mut fields).unwrap();
        assert_eq!(fields.get(0), Some("2FD16498F17BAF4688028BD198537CED"));

        let mut fields = Fields::new(&[&["result", "authtoken"]]);
        parse_with(
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><authtoken/></result>\
             </query></iq>",
            &mut fields,
        )
        .unwrap();
        assert_eq!(fields.get(0), Some(""));
    }

    const DOMAIN_FIELDS: &[&str] = &["name", "domaintype"];

    #[test]
    fn domain_lists_with_one_item_none_and_aliases() {
        let mut page = ListPage::new(DOMAIN_FIELDS);
        parse_with(
            "<iq type=\"result\" sid=\"201604121335430012\">\n  <query xmlns=\"admin:iq:rpc\">\n    \
             <result>\n      <item>\n        <name>testing.co.uk</name>\n        <desc/>\n        \
             <domaintype>0</domaintype>\n        <accountcount>-5</accountcount>\n      </item>\n      \
             <offset>0</offset>\n      <overallcount>1</overallcount>\n    </result>\n  </query>\n</iq>\n",
            &mut page,
        )
        .unwrap();
        assert_eq!(
            page.items,
            vec![vec![Some("testing.co.uk".to_string()), Some("0".to_string())]]
        );
        assert_eq!(page.offset.as_deref(), Some("0"));
        assert_eq!(page.overall_count.as_deref(), Some("1"));

        let mut page = ListPage::new(DOMAIN_FIELDS);
        parse_with(
            "<iq type=\"result\" sid=\"S\"><query xmlns=\"admin:iq:rpc\"><result><offset>0</offset>\
             <overallcount>0</overallcount></result></query></iq>",
            &mut page,
        )
        .unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.overall_count.as_deref(), Some("0"));

        let mut page = ListPage::new(DOMAIN_FIELDS);
        parse_with(
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><item><name>example.com</name>\
             <domaintype>0</domaintype></item><item><name>example.org</name><domaintype>2\
             </domaintype><unknown><item>nested</item></unknown></item><offset>0</offset>\
             <overallcount>2</overallcount></result></query></iq>",
            &mut page,
        )
        .unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[1], vec![Some("example.org".to_string()), Some("2".to_string())]);
    }

    const ACCOUNT_FIELDS: &[&str] =
        &["name", "email", "accounttype", "accountstate", "accountstate/state"];

    #[test]
    fn account_items_of_14x_and_11x() {
        let mut page = ListPage::new(ACCOUNT_FIELDS);
        parse_with(
            "<iq type=\"result\" sid=\"S\"><query xmlns=\"admin:iq:rpc\"><result><item><name>Alice \
             Liddell</name><email>alice@example.com</email><displayemail>alice@example.com\
             </displayemail><accounttype>0</accounttype><accountstate><classname>TAccountState\
             </classname><state>1</state></accountstate><admintype>0</admintype><quota>\
             <classname>TAccountQuota</classname><mailboxsize>0</mailboxsize></quota></item>\
             <offset>0</offset><overallcount>1</overallcount></result></query></iq>",
            &mut page,
        )
        .unwrap();
        let item = &page.items[0];
        assert_eq!(item[0].as_deref(), Some("Alice Liddell"));
        assert_eq!(item[1].as_deref(), Some("alice@example.com"));
        assert_eq!(item[2].as_deref(), Some("0"));
        assert!(item[3].is_some());
        assert_eq!(item[4].as_deref(), Some("1"));

        // The 11.x capture: no accountstate, no displayemail, a group first.
        let mut page = ListPage::new(ACCOUNT_FIELDS);
        parse_with(
            "<iq type=\"result\" sid=\"201604181336290003\">\n  <query xmlns=\"admin:iq:rpc\">\n    \
             <result>\n      <item>\n        <name>Public Folders</name>\n        \
             <email>public-folders@testing.co.uk</email>\n        <accounttype>7</accounttype>\n        \
             <admintype>0</admintype>\n        <quota>\n          <classname>TAccountQuota</classname>\n\
             </quota>\n      </item>\n      <item>\n        <name>Test</name>\n        \
             <email>test@testing.co.uk</email>\n        <accounttype>0</accounttype>\n        \
             <admintype>1</admintype>\n      </item>\n      <offset>0</offset>\n      \
             <overallcount>2</overallcount>\n    </result>\n  </query>\n</iq>",
            &mut page,
        )
        .unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[0][2].as_deref(), Some("7"));
        assert_eq!(page.items[1][1].as_deref(), Some("test@testing.co.uk"));
        assert_eq!(page.items[1][3], None);
        assert_eq!(page.items[1][4], None);
        assert_eq!(page.overall_count.as_deref(), Some("2"));
    }

    #[test]
    fn properties_with_no_value_lists_and_echoed_case() {
        let mut properties = Properties::new();
        parse_with(
            "<iq type=\"result\" sid=\"S\"><query xmlns=\"admin:iq:rpc\"><result>\
             <item><apiproperty><propname>U_Mailbox</propname></apiproperty><propertyval>\
             <classname>TPropertyString</classname><val>alice</val></propertyval>\
             <propertyright>2</propertyright></item>\
             <item><apiproperty><propname>u_alias</propname></apiproperty><propertyval>\
             <classname>TPropertyString</classname><val>alice;al;[x]</val></propertyval></item>\
             <item><apiproperty><propname>U_ALIASLIST</propname></apiproperty><propertyval>\
             <classname>TPropertyStringList</classname><val><item>a@example.org</item>\
             <item>b@example.org</item></val></propertyval></item>\
             <item><apiproperty><propname>u_accountdisabled</propname></apiproperty>\
             <propertyval><classname>TPropertyNoValue</classname></propertyval></item>\
             </result></query></iq>",
            &mut properties,
        )
        .unwrap();
        assert_eq!(properties.get("u_mailbox"), Some(&PropertyValue::Text("alice".to_string())));
        assert_eq!(
            properties.get("U_Alias"),
            Some(&PropertyValue::Text("alice;al;[x]".to_string()))
        );
        assert_eq!(
            properties.get("u_aliaslist"),
            Some(&PropertyValue::List(vec![
                "a@example.org".to_string(),
                "b@example.org".to_string()
            ]))
        );
        assert_eq!(properties.get("u_accountdisabled"), Some(&PropertyValue::NoValue));
        assert_eq!(properties.get("u_groups"), None);

        // One property, and the 11.x capture's layout with white space everywhere.
        let mut properties = Properties::new();
        parse_with(
            "<iq type=\"result\" sid=\"201604181336290003\">\n  <query xmlns=\"admin:iq:rpc\">\n    \
             <result>\n      <item>\n        <apiproperty>\n          <propname>u_alias</propname>\n\n\
             </apiproperty>\n        <propertyval>\n          <classname>TPropertyString</classname>\n\
             <val>test</val>\n\n        </propertyval>\n        <propertyright>2</propertyright>\n\n\
             </item>\n\n    </result>\n\n  </query>\n\n</iq>",
            &mut properties,
        )
        .unwrap();
        assert_eq!(
            properties.values,
            vec![("u_alias".to_string(), PropertyValue::Text("test".to_string()))]
        );
    }

    #[test]
    fn property_item_without_name_is_malformed() {
        let mut properties = Properties::new();
        let reason = parse_with(
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><item><propertyval>\
             <val>x</val></propertyval></item></result></query></iq>",
            &mut properties,
        )
        .unwrap_err();
        assert!(reason.contains("propname"), "{reason}");
    }

    #[test]
    fn member_lists_with_domain_tokens() {
        let mut page = ListPage::new(&["val"]);
        parse_with(
            "<iq type=\"result\" sid=\"S\"><query xmlns=\"admin:iq:rpc\"><result>\
             <item><val>alice@example.com</val><default>0</default><recieve>0</recieve><post>0</post>\
             <digest>0</digest><params/></item>\
             <item><val>[example.org]</val><default>0</default></item>\
             <item><val>someone@elsewhere.test</val></item>\
             <offset>0</offset><overallcount>3</overallcount></result></query></iq>",
            &mut page,
        )
        .unwrap();
        let members: Vec<&str> = page.items.iter().filter_map(|item| item[0].as_deref()).collect();
        assert_eq!(members, ["alice@example.com", "[example.org]", "someone@elsewhere.test"]);
    }

    #[test]
    fn text_is_reassembled_from_references_and_cdata() {
        let mut fields = Fields::new(&[&["result", "name"]]);
        parse_with(
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><name>A &amp; B&#x20;\
             &#67;<![CDATA[<d>]]>&lt;e&gt;&quot;&apos;</name></result></query></iq>",
            &mut fields,
        )
        .unwrap();
        assert_eq!(fields.get(0), Some("A & B C<d><e>\"'"));
    }
}
