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
    let reason =
        parse("<iq type=\"result\" sid=\"&x;\"><query xmlns=\"admin:iq:rpc\"/></iq>").unwrap_err();
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
    assert_eq!(page.items, vec![vec![Some("testing.co.uk".to_string()), Some("0".to_string())]]);
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
    assert_eq!(properties.get("U_Alias"), Some(&PropertyValue::Text("alice;al;[x]".to_string())));
    assert_eq!(
        properties.get("u_aliaslist"),
        Some(&PropertyValue::List(vec!["a@example.org".to_string(), "b@example.org".to_string()]))
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
