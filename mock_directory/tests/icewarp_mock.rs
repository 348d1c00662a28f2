//! Self-tests of the IceWarp mock, driven with the crate's tiny HTTP client.

use std::time::{Duration, Instant};

use mock_directory::http_client::Connection;
use mock_directory::icewarp::{
    account_type, error_xml, result_xml, API_PATH, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD,
    INTERNAL_DOMAIN,
};
use mock_directory::{Account, Domain, IcewarpData, IcewarpServer, IcewarpVersion, TlsIdentity};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn iq(sid: Option<&str>, command: &str, params: &str) -> String {
    let sid = sid.map(|s| format!(" sid=\"{s}\"")).unwrap_or_default();
    format!(
        "<iq{sid}><query xmlns=\"admin:iq:rpc\"><commandname>{command}</commandname><commandparams>{params}</commandparams></query></iq>"
    )
}

fn call(conn: &mut Connection, body: &str) -> String {
    let resp = conn.post(API_PATH, "text/xml", body.as_bytes()).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.text()
}

fn login_params(email: &str, password: &str) -> String {
    format!(
        "<authtype>0</authtype><email>{}</email><password>{}</password><digest></digest><persistentlogin>0</persistentlogin>",
        esc(email),
        esc(password)
    )
}

fn sid_of(reply: &str) -> String {
    let start = reply.find("sid=\"").expect("no sid") + 5;
    let end = reply[start..].find('"').unwrap() + start;
    reply[start..end].to_string()
}

fn admin_login(conn: &mut Connection) -> String {
    let reply =
        call(conn, &iq(None, "authenticate", &login_params(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)));
    assert!(reply.contains("<result>1</result>"), "{reply}");
    sid_of(&reply)
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn error_uid(reply: &str) -> Option<String> {
    let start = reply.find("<error uid=\"")? + 12;
    let end = reply[start..].find('"')? + start;
    Some(reply[start..end].to_string())
}

#[test]
fn keep_alive_two_requests_on_one_connection() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    assert!(iw.url().starts_with("http://127.0.0.1:") && iw.url().ends_with("/icewarpapi/"));
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let reply = call(
        &mut conn,
        &iq(
            Some(&sid),
            "getdomainsinfolist",
            "<filter><namemask>*</namemask></filter><offset>0</offset><count>100</count>",
        ),
    );
    assert!(reply.starts_with("<iq type=\"result\""), "{reply}");
    let reqs = iw.server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].connection, reqs[1].connection);
    assert_eq!(iw.server.connection_count(), 1);
    assert_eq!(reqs[1].header("CONTENT-TYPE"), Some("text/xml"));
    assert!(!conn.is_closed());
}

#[test]
fn domains_list_internal_and_alias_domains() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let reply = call(
        &mut conn,
        &iq(Some(&sid), "GetDomainsInfoList", "<offset>0</offset><count>100</count>"),
    );
    assert!(reply.contains(&format!("<item><name>{INTERNAL_DOMAIN}</name>")), "{reply}");
    assert!(reply.contains("<item><name>example.com</name><desc>Demo domain</desc><domaintype>0</domaintype><accountcount>5</accountcount></item>"), "{reply}");
    assert!(
        reply.contains("<item><name>example.net</name><desc/><domaintype>2</domaintype>"),
        "{reply}"
    );
    assert!(
        reply.ends_with("<offset>0</offset><overallcount>3</overallcount></result></query></iq>"),
        "{reply}"
    );
}

#[test]
fn https_with_the_self_signed_certificate_trusted() {
    let id = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    assert!(id.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let iw = IcewarpServer::start(IcewarpData::demo(), Some(id.clone())).unwrap();
    assert!(iw.url().starts_with("https://127.0.0.1:"));
    let mut conn = Connection::open(&iw.url(), Some(&id)).unwrap();
    let sid = admin_login(&mut conn);
    let reply = call(&mut conn, &iq(Some(&sid), "getdomainsinfolist", ""));
    assert!(reply.contains("example.com"));
    let reqs = iw.server.requests();
    assert!(reqs.iter().all(|r| r.tls));
    assert_eq!(reqs[0].connection, reqs[1].connection);

    // Not trusted: the handshake fails, nothing reaches the handler.
    let mut untrusted = Connection::open(&iw.url(), None).unwrap();
    assert!(untrusted.post(API_PATH, "text/xml", b"<iq/>").is_err());
    let other = TlsIdentity::self_signed(&["127.0.0.1"]).unwrap();
    let mut wrong = Connection::open(&iw.url(), Some(&other)).unwrap();
    assert!(wrong.post(API_PATH, "text/xml", b"<iq/>").is_err());
    assert_eq!(iw.server.requests().len(), 2);
    // Plain HTTP to the HTTPS port gets no HTTP answer either.
    let plain = iw.url().replace("https://", "http://");
    let mut conn = Connection::open(&plain, None).unwrap();
    assert!(conn.post(API_PATH, "text/xml", b"<iq/>").is_err());
}

#[test]
fn expired_certificate_is_refused_even_when_trusted() {
    let id = TlsIdentity::expired(&["127.0.0.1"]).unwrap();
    let iw = IcewarpServer::start(IcewarpData::demo(), Some(id.clone())).unwrap();
    let mut conn = Connection::open(&iw.url(), Some(&id)).unwrap();
    let err = conn.post(API_PATH, "text/xml", b"<iq/>").unwrap_err();
    assert!(err.to_string().to_lowercase().contains("expired"), "{err}");
}

#[test]
fn accounts_are_paged_by_the_cap_whatever_count_says() {
    let data = IcewarpData::generated(2, 25).page_cap(7);
    let iw = IcewarpServer::start(data, None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let mut offset = 0;
    let mut seen = 0;
    loop {
        let reply = call(
            &mut conn,
            &iq(
                Some(&sid),
                "getaccountsinfolist",
                &format!("<domainstr>d001.example.com</domainstr><filter><namemask>*</namemask></filter><offset>{offset}</offset><count>1000</count>"),
            ),
        );
        let items = count(&reply, "<item>");
        assert!(items <= 7);
        assert!(
            reply.contains(&format!("<offset>{offset}</offset><overallcount>29</overallcount>")),
            "{reply}"
        );
        seen += items;
        offset += items;
        if items == 0 || offset >= 29 {
            break;
        }
    }
    assert_eq!(seen, 29);
    let names = iw.mock.command_names();
    assert_eq!(names.iter().filter(|n| *n == "getaccountsinfolist").count(), 5);
}

#[test]
fn session_expires_once_then_a_new_login_works() {
    let iw = IcewarpServer::start(IcewarpData::demo().expire_session_after(2), None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let list = "<domainstr>example.com</domainstr><offset>0</offset><count>100</count>";
    for _ in 0..2 {
        assert!(call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list))
            .contains("<overallcount>5</overallcount>"));
    }
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list));
    assert_eq!(error_uid(&reply).as_deref(), Some("session_expired"), "{reply}");
    assert!(reply.starts_with(&format!("<iq type=\"error\" sid=\"{sid}\">")), "{reply}");
    let sid2 = admin_login(&mut conn);
    assert_ne!(sid, sid2);
    for _ in 0..10 {
        assert!(call(&mut conn, &iq(Some(&sid2), "getaccountsinfolist", list))
            .contains("<overallcount>5</overallcount>"));
    }
    // A sid never issued, or none at all.
    assert_eq!(
        error_uid(&call(&mut conn, &iq(Some("123"), "getdomainsinfolist", ""))).as_deref(),
        Some("session_invalid")
    );
    assert_eq!(
        error_uid(&call(&mut conn, &iq(None, "getdomainsinfolist", ""))).as_deref(),
        Some("session_invalid")
    );
    // Logout kills the sid.
    assert!(call(&mut conn, &iq(Some(&sid2), "logout", "")).contains("<result>1</result>"));
    assert_eq!(
        error_uid(&call(&mut conn, &iq(Some(&sid2), "getdomainsinfolist", ""))).as_deref(),
        Some("session_invalid")
    );
}

#[test]
fn version_11_items_have_no_accountstate_nor_displayemail() {
    let list = "<domainstr>example.com</domainstr><offset>0</offset><count>100</count>";
    let v14 = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let mut conn = Connection::open(&v14.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list));
    assert_eq!(count(&reply, "<accountstate>"), 5);
    assert!(reply.contains("<item><name>Carol Danvers</name><email>carol@example.com</email><displayemail>carol@example.com</displayemail><accounttype>0</accounttype><accountstate><classname>TAccountState</classname><state>1</state></accountstate>"), "{reply}");
    assert!(
        reply.contains("<accounttype>7</accounttype>")
            && reply.contains("<accounttype>1</accounttype>")
    );

    let v11 = IcewarpServer::start(IcewarpData::demo().version(IcewarpVersion::V11), None).unwrap();
    let mut conn = Connection::open(&v11.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list));
    assert_eq!(count(&reply, "<item>"), 5);
    assert!(!reply.contains("accountstate") && !reply.contains("displayemail"), "{reply}");
    let props = "<accountemail>carol@example.com</accountemail><accountpropertylist><item><propname>U_AccountDisabled</propname></item></accountpropertylist><accountpropertyset>0</accountpropertyset>";
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountproperties", props));
    assert!(reply.contains("<propname>U_AccountDisabled</propname></apiproperty><propertyval><classname>TPropertyString</classname><val>1</val>"), "{reply}");
}

#[test]
fn one_listing_can_mix_item_shapes() {
    let list = "<domainstr>example.com</domainstr><offset>0</offset><count>100</count>";
    let mut data = IcewarpData::demo();
    let carol = data.account_mut("carol@example.com").unwrap();
    *carol = carol.clone().listed_as(IcewarpVersion::V11);
    let iw = IcewarpServer::start(data, None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list));
    assert_eq!(count(&reply, "<accountstate>"), 4, "{reply}");
    assert!(reply.contains("<item><name>Carol Danvers</name><email>carol@example.com</email><accounttype>0</accounttype><admintype>"), "{reply}");
}

#[test]
fn canned_replies_are_sent_as_they_are_and_logged() {
    let odd = result_xml(None, "<result><overallcount>many</overallcount></result>");
    let data =
        IcewarpData::demo().reply("GetDomainsInfoList", odd.clone()).reply("logout", "garbage");
    let iw = IcewarpServer::start(data, None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    assert_eq!(call(&mut conn, &iq(Some(&sid), "getdomainsinfolist", "")), odd);
    assert_eq!(call(&mut conn, &iq(Some(&sid), "logout", "")), "garbage");
    // Commands without a canned reply run as always, the session still lives.
    let list = "<domainstr>example.com</domainstr><offset>0</offset><count>100</count>";
    assert_eq!(count(&call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list)), "<item>"), 5);
    assert_eq!(
        iw.mock.command_names(),
        ["authenticate", "getdomainsinfolist", "logout", "getaccountsinfolist"]
    );
    assert_eq!(
        odd,
        "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><overallcount>many</overallcount></result></query></iq>"
    );
    assert_eq!(
        error_xml(Some("S&1"), "a\"b"),
        "<iq type=\"error\" sid=\"S&amp;1\"><query xmlns=\"admin:iq:rpc\"><error uid=\"a&quot;b\"/></query></iq>"
    );
}

#[test]
fn names_are_escaped_and_passwords_arrive_decoded() {
    let password = "<&>\"' ]]> é";
    let data = IcewarpData::demo()
        .account(Account::user("tom@example.com", "Tom & Jerry <TJ>", password).alias("t&j"));
    let iw = IcewarpServer::start(data, None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let reply = call(
        &mut conn,
        &iq(Some(&sid), "getaccountsinfolist", "<domainstr>example.com</domainstr>"),
    );
    assert!(reply.contains("<name>Tom &amp; Jerry &lt;TJ&gt;</name>"), "{reply}");
    let reply = call(
        &mut conn,
        &iq(Some(&sid), "getaccountproperties", "<accountemail>tom@example.com</accountemail><accountpropertylist><item><propname>u_alias</propname></item></accountpropertylist>"),
    );
    assert!(reply.contains("<val>tom;t&amp;j</val>"), "{reply}");

    let reply =
        call(&mut conn, &iq(None, "getauthtoken", &login_params("tom@example.com", password)));
    assert!(reply.contains("<authtoken>"), "{reply}");
    assert!(reply.contains("<name>Tom</name><surname>&amp; Jerry &lt;TJ&gt;</surname>"), "{reply}");
    assert_eq!(iw.mock.received_passwords().last().map(String::as_str), Some(password));
    // The same password as CDATA and character references.
    let params = "<email>tom@example.com</email><password><![CDATA[<&>\"' ]]]]><![CDATA[> ]]>&#233;</password><authtype>0</authtype>";
    let reply = call(&mut conn, &iq(None, "getauthtoken", params));
    assert!(reply.contains("<authtoken>"), "{reply}");
}

#[test]
fn getauthtoken_answers() {
    let data = IcewarpData::demo()
        .account(Account::user("dave@example.com", "Dave", "dave-password").two_factor())
        .account(
            Account::user("erin@example.com", "Erin", "erin-password").two_factor().disabled(2),
        );
    let iw = IcewarpServer::start(data, None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let token = |conn: &mut Connection, email: &str, password: &str| {
        call(conn, &iq(None, "getauthtoken", &login_params(email, password)))
    };
    let ok = token(&mut conn, "Alice@Example.com", "alice-password");
    assert!(ok.starts_with("<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><email>alice@example.com</email>"), "{ok}");
    let start = ok.find("<authtoken>").unwrap() + 11;
    assert!(ok[start..].find("</authtoken>").unwrap() >= 16, "{ok}");
    // An alias address logs in too.
    assert!(token(&mut conn, "al@example.net", "alice-password").contains("<authtoken>"));
    assert_eq!(
        error_uid(&token(&mut conn, "alice@example.com", "wrong")).as_deref(),
        Some("auth_login_invalid")
    );
    assert_eq!(
        error_uid(&token(&mut conn, "nobody@example.com", "x")).as_deref(),
        Some("auth_login_invalid")
    );
    assert_eq!(
        error_uid(&token(&mut conn, "alice", "alice-password")).as_deref(),
        Some("auth_login_invalid")
    );
    assert_eq!(
        error_uid(&token(&mut conn, "carol@example.com", "carol-password")).as_deref(),
        Some("account_disabled_2")
    );
    assert_eq!(
        error_uid(&token(&mut conn, "carol@example.com", "wrong")).as_deref(),
        Some("auth_login_invalid")
    );
    assert_eq!(
        error_uid(&token(&mut conn, "dave@example.com", "dave-password")).as_deref(),
        Some("auth_two_factor_required")
    );
    assert_eq!(
        error_uid(&token(&mut conn, "dave@example.com", "wrong")).as_deref(),
        Some("auth_login_invalid")
    );
    assert_eq!(
        error_uid(&token(&mut conn, "erin@example.com", "erin-password")).as_deref(),
        Some("account_disabled_2")
    );

    // 11.x: the name is plain text.
    iw.mock.update(|d| {
        d.version = IcewarpVersion::V11;
        d.accept_mailbox_login = true;
    });
    let ok = token(&mut conn, "alice", "alice-password");
    assert!(
        ok.contains("<email>alice@example.com</email><name>Alice Liddell</name><authtoken>"),
        "{ok}"
    );
}

#[test]
fn user_credentials_make_a_session_limited_to_the_user() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let reply = call(
        &mut conn,
        &iq(None, "authenticate", &login_params("bob@example.com", "bob-password")),
    );
    let sid = sid_of(&reply);
    let own = "<accountemail>bob@example.com</accountemail><accountpropertylist><item><propname>u_name</propname></item></accountpropertylist>";
    assert!(call(&mut conn, &iq(Some(&sid), "getaccountproperties", own))
        .contains("<val>Bob Builder</val>"));
    let reply = call(&mut conn, &iq(Some(&sid), "getdomainsinfolist", ""));
    assert_eq!(error_uid(&reply).as_deref(), Some("insufficient_rights"));
    assert!(call(&mut conn, &iq(Some(&sid), "logout", "")).contains("<result>1</result>"));

    let reply =
        call(&mut conn, &iq(None, "authenticate", &login_params(DEMO_ADMIN_EMAIL, "wrong")));
    assert_eq!(error_uid(&reply).as_deref(), Some("auth_login_invalid"));
    assert!(!reply.contains("sid="));
    iw.mock.update(|d| d.failed_login_as_result_zero = true);
    let reply =
        call(&mut conn, &iq(None, "authenticate", &login_params(DEMO_ADMIN_EMAIL, "wrong")));
    assert!(reply.contains("<result>0</result>") && !reply.contains("sid="), "{reply}");
}

#[test]
fn wrong_password_is_tarpitted() {
    let iw = IcewarpServer::start(
        IcewarpData::demo().wrong_password_delay(Duration::from_millis(800)),
        None,
    )
    .unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let t = Instant::now();
    let reply =
        call(&mut conn, &iq(None, "getauthtoken", &login_params("bob@example.com", "nope")));
    assert!(t.elapsed() >= Duration::from_millis(800));
    assert_eq!(error_uid(&reply).as_deref(), Some("auth_login_invalid"));
    let t = Instant::now();
    call(
        &mut conn,
        &iq(None, "getauthtoken", &login_params("carol@example.com", "carol-password")),
    );
    call(&mut conn, &iq(None, "getauthtoken", &login_params("bob@example.com", "bob-password")));
    assert!(t.elapsed() < Duration::from_millis(800));
}

#[test]
fn properties_groups_and_members() {
    let data = IcewarpData::demo().account(Account::group(
        "all@example.com",
        "All",
        &["[example.com]", "outsider@gmail.com", "ghost@example.com"],
    ));
    let iw = IcewarpServer::start(data, None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let props = "<accountemail>ALICE@example.com</accountemail><accountpropertylist><item><propname>U_Mailbox</propname></item><item><propname>u_alias</propname></item><item><propname>U_ALIASLIST</propname></item><item><propname>u_groups</propname></item><item><propname>u_nonsense</propname></item></accountpropertylist><accountpropertyset>0</accountpropertyset>";
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountproperties", props));
    let item = |name: &str, val: &str| {
        format!("<item><apiproperty><propname>{name}</propname></apiproperty><propertyval><classname>TPropertyString</classname><val>{val}</val></propertyval><propertyright>2</propertyright></item>")
    };
    assert!(reply.contains(&item("U_Mailbox", "alice")), "{reply}");
    assert!(reply.contains(&item("u_alias", "alice;al")), "{reply}");
    assert!(
        reply.contains(&item(
            "U_ALIASLIST",
            "alice@example.com;alice@example.net;al@example.com;al@example.net"
        )),
        "{reply}"
    );
    assert!(reply.contains(&item("u_groups", "staff@example.com;all@example.com;")), "{reply}");
    assert!(reply.contains("<propname>u_nonsense</propname></apiproperty><propertyval><classname>TPropertyNoValue</classname></propertyval>"), "{reply}");
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountproperties", "<accountemail>carol@example.com</accountemail><accountpropertylist><item><propname>u_groups</propname></item></accountpropertylist>"));
    assert!(reply.contains("<val>all@example.com;</val>"), "{reply}");

    let reply = call(
        &mut conn,
        &iq(Some(&sid), "getaccountproperties", "<accountemail>nobody@example.com</accountemail>"),
    );
    assert_eq!(error_uid(&reply).as_deref(), Some("account_invalid"));
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountproperties", ""));
    assert_eq!(error_uid(&reply).as_deref(), Some("account_email_parameter_missing"));

    let reply = call(
        &mut conn,
        &iq(
            Some(&sid),
            "getaccountmemberinfolist",
            "<who>all@example.com</who><offset>1</offset><count>1</count>",
        ),
    );
    assert!(reply.contains("<result><item><val>outsider@gmail.com</val><default>0</default><recieve>0</recieve><post>0</post><digest>0</digest><params/></item><offset>1</offset><overallcount>3</overallcount></result>"), "{reply}");
    let reply = call(
        &mut conn,
        &iq(Some(&sid), "getaccountmemberinfolist", "<who>ghost@example.com</who>"),
    );
    assert_eq!(error_uid(&reply).as_deref(), Some("account_invalid"));

    // Groups only, through typemask.
    let reply = call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", "<domainstr>example.com</domainstr><filter><namemask>*</namemask><typemask>7</typemask></filter>"));
    assert_eq!(count(&reply, "<item>"), 2, "{reply}");
    let reply = call(
        &mut conn,
        &iq(
            Some(&sid),
            "getaccountsinfolist",
            "<domainstr>example.com</domainstr><filter><namemask>ALI*</namemask></filter>",
        ),
    );
    assert_eq!(count(&reply, "<item>"), 1, "{reply}");
    assert_eq!(
        error_uid(&call(
            &mut conn,
            &iq(Some(&sid), "getaccountsinfolist", "<domainstr>nope.com</domainstr>")
        ))
        .as_deref(),
        Some("domain_invalid")
    );
    assert_eq!(
        error_uid(&call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", ""))).as_deref(),
        Some("domain_parameter_empty")
    );
    let reply = call(
        &mut conn,
        &iq(Some(&sid), "getaccountsinfolist", "<domainstr>example.net</domainstr>"),
    );
    assert!(reply.contains("<overallcount>0</overallcount>"), "{reply}");
}

#[test]
fn protocol_errors() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let wrong_ns = "<iq><query xmlns=\"admin:iq:other\"><commandname>authenticate</commandname><commandparams/></query></iq>";
    let reply = call(&mut conn, wrong_ns);
    assert_eq!(reply, "<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"iq_query_xmlns_invalid\"/></query></iq>");
    let reply = call(&mut conn, &iq(None, "frobnicate", ""));
    assert_eq!(error_uid(&reply).as_deref(), Some("invoker_commandname_invalid"));
    // Not XML, wrong root, wrong path, wrong method: HTTP errors, and the connection lives on.
    assert_eq!(conn.post(API_PATH, "text/xml", b"<iq><query>").unwrap().status, 400);
    assert_eq!(conn.post(API_PATH, "text/xml", b"<html/>").unwrap().status, 400);
    assert_eq!(conn.post("/other/", "text/xml", b"<iq/>").unwrap().status, 404);
    assert_eq!(conn.request("GET", API_PATH, &[], b"").unwrap().status, 405);
    let sid = admin_login(&mut conn);
    assert!(!sid.is_empty());
    let cmds = iw.mock.commands();
    assert_eq!(cmds[0].error.as_deref(), Some("iq_query_xmlns_invalid"));
    assert_eq!(cmds[1].name, "frobnicate");
    assert_eq!(cmds[2].param("email"), Some(DEMO_ADMIN_EMAIL));
}

#[test]
fn data_can_change_while_serving() {
    let iw = IcewarpServer::start(
        IcewarpData::new("root@x.test", "pw").domain(Domain::new("x.test")),
        None,
    )
    .unwrap();
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let reply = call(&mut conn, &iq(None, "authenticate", &login_params("root@x.test", "pw")));
    let sid = sid_of(&reply);
    let list = "<domainstr>x.test</domainstr>";
    assert!(call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list))
        .contains("<overallcount>0</overallcount>"));
    iw.mock.update(|d| {
        d.accounts.push(Account::user("new@x.test", "New", "pw"));
        d.accounts.push(Account::of_type("room@x.test", "Room", account_type::RESOURCE));
    });
    assert!(call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list))
        .contains("<overallcount>2</overallcount>"));
    iw.mock.forget_sessions();
    assert_eq!(
        error_uid(&call(&mut conn, &iq(Some(&sid), "getaccountsinfolist", list))).as_deref(),
        Some("session_invalid")
    );
}

#[test]
fn generated_directory_is_big_and_quick() {
    let t = Instant::now();
    let data = IcewarpData::generated(100, 1000);
    assert_eq!(data.accounts.len(), 100 * 1004);
    let iw = IcewarpServer::start(data, None).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    iw.server.set_recording(false);
    iw.mock.set_recording(false);
    let mut conn = Connection::open(&iw.url(), None).unwrap();
    let sid = admin_login(&mut conn);
    let reply = call(
        &mut conn,
        &iq(
            Some(&sid),
            "getaccountsinfolist",
            "<domainstr>d042.example.com</domainstr><offset>0</offset><count>1000</count>",
        ),
    );
    assert_eq!(count(&reply, "<item>"), 1000);
    assert!(reply.contains("<overallcount>1004</overallcount>"));
    // Requests per second over keep-alive (debug build: a fraction of the release speed).
    let n =
        std::env::var("MOCK_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000usize);
    let t = Instant::now();
    for i in 0..n {
        let email = format!("user{:05}@d{:03}.example.com", i % 1000, (i / 1000) % 100);
        let body = iq(Some(&sid), "getaccountproperties", &format!("<accountemail>{email}</accountemail><accountpropertylist><item><propname>u_mailbox</propname></item><item><propname>u_alias</propname></item><item><propname>u_aliaslist</propname></item><item><propname>u_groups</propname></item></accountpropertylist><accountpropertyset>0</accountpropertyset>"));
        let reply = call(&mut conn, &body);
        assert!(reply.contains("<propname>u_groups</propname>"), "{reply}");
    }
    let per_request = t.elapsed() / n as u32;
    eprintln!("getaccountproperties: {n} requests in {:?} ({per_request:?} each)", t.elapsed());
    assert!(per_request < Duration::from_millis(5), "{per_request:?}");
}
