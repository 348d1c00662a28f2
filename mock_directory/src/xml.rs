//! A tiny XML tree built with quick-xml, for reading IceWarp requests, and escaping for
//! writing replies.

use std::borrow::Cow;

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// One element: its local name in lower case (IceWarp names are case-insensitive), its
/// attributes (names as written, values unescaped), its text (all text and CDATA directly
/// inside it, entities decoded, not trimmed) and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The leaf elements below this one as (`a/b/c` path in lower case, text) pairs, in
    /// document order.
    pub fn flatten(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for c in &self.children {
            c.flatten_into("", &mut out);
        }
        out
    }

    fn flatten_into(&self, prefix: &str, out: &mut Vec<(String, String)>) {
        let path =
            if prefix.is_empty() { self.name.clone() } else { format!("{prefix}/{}", self.name) };
        if self.children.is_empty() {
            out.push((path, self.text.clone()));
        } else {
            for c in &self.children {
                c.flatten_into(&path, out);
            }
        }
    }
}

fn element(e: &BytesStart<'_>) -> Result<Element, String> {
    let local = e.local_name();
    let name: &str = local.as_ref();
    let name = name.to_ascii_lowercase();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| err.to_string())?;
        let key: &str = a.key.as_ref();
        let key = key.to_string();
        let value = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| err.to_string())?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element { name, attrs, text: String::new(), children: Vec::new() })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) -> Result<(), String> {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(el);
        Ok(())
    } else if root.is_none() {
        *root = Some(el);
        Ok(())
    } else {
        Err("more than one root element".to_string())
    }
}

/// Parses a whole document into its root element.
pub(crate) fn parse(body: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?
        {
            Event::Start(e) => stack.push(element(&e)?),
            Event::Empty(e) => {
                let el = element(&e)?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced end tag")?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err("text outside the root element".to_string()),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(top) => top.text.push_str(&c.xml10_content()),
                None => return Err("CDATA outside the root element".to_string()),
            },
            Event::GeneralRef(r) => {
                let resolved: Cow<'_, str> =
                    match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => Cow::Owned(c.to_string()),
                        None => match resolve_xml_entity(&r) {
                            Some(s) => Cow::Borrowed(s),
                            None => return Err(format!("unknown entity &{};", &*r)),
                        },
                    };
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&resolved),
                    None => return Err("entity outside the root element".to_string()),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("unclosed element".to_string());
    }
    root.ok_or_else(|| "no root element".to_string())
}

/// Escapes text for an element or attribute value (`&`, `<`, `>`, `"`, `'`).
pub(crate) fn esc(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Appends `<name>escaped value</name>`, or `<name/>` for an empty value.
pub(crate) fn push_el(out: &mut String, name: &str, value: &str) {
    if value.is_empty() {
        out.push('<');
        out.push_str(name);
        out.push_str("/>");
    } else {
        out.push('<');
        out.push_str(name);
        out.push('>');
        out.push_str(&esc(value));
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_cdata_and_spaces_survive() {
        let doc = br#"<iq sid="a&amp;b"><query xmlns="admin:iq:rpc"><Password> &lt;&amp;&gt;&quot;&apos; ]]&gt;&#233;</Password><x><![CDATA[<raw>]]></x></query></iq>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.attr("sid"), Some("a&b"));
        let q = root.child("query").unwrap();
        assert_eq!(q.child("password").unwrap().text, " <&>\"' ]]>é");
        assert_eq!(q.child("x").unwrap().text, "<raw>");
        assert_eq!(q.flatten()[0], ("password".to_string(), " <&>\"' ]]>é".to_string()));
    }

    #[test]
    fn declaration_and_bom_are_fine() {
        let root = parse(
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<iq type=\"get\"/>\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(root.attr("type"), Some("get"));
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(parse(b"<iq><query></iq>").is_err());
        assert!(parse(b"<iq>&bogus;</iq>").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"<a/><b/>").is_err());
        assert!(parse(b"\xff\xfe").is_err());
    }
}
