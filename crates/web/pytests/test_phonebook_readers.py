"""What reads the phonebooks, checked by independent clients against a real `pbx365 serve`
(issue 14 items 4 and 5): the desk-phone exports parsed by xml.etree, lxml, vobject and the csv
module, and the LDAP directory searched with the ldap3 client, for names holding the characters
each format reserves (& < > quotes , ; line breaks, backslash) and emoji."""

import csv
import io
import json
import re
import socket
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import ldap3
import pytest
import vobject
from lxml import etree

from conftest import launch, pbx365_binary

LDAP_LINE = re.compile(r"^pbx365 LDAP directory on ldap://(\S+) ")
BASE = "dc=pbx365,dc=test"
BIND_DN = "cn=phones,dc=pbx365,dc=test"
BIND_PASSWORD = "desk phones; only & always"
EXPORT_TOKEN = "file-token-for-the-desk-phone-exports-0123456789"

# Company entries: (display name, first, last, number). The names carry what each format
# reserves; the last one is looked for by substring over LDAP.
COMPANY = [
    ('Smith & Sons <Plumbing> "Best"', "Anna", "Smith & Sons", "+49 30 1111111"),
    ("O'Brien, Kelly; Partners", "Kelly", "O'Brien", "030 2222222"),
    ("Line\nBreak \\ Backslash", "Line", "Break", "+1 425 555 0100"),
    ("Émile Ørsted 😀 日本", "Émile", "Ørsted", "+33 1 23 45 67 89"),
]
EXTENSIONS = [("201", "Zoë", "Ext & <Co>", "+49 170 3333333")]


def one_line(name: str) -> str:
    """What the XML export shows for a name: a phone's display has one line."""
    return " ".join(name.split())


@pytest.fixture(scope="module")
def server():
    binary = pbx365_binary()
    if not Path(binary).exists():
        pytest.skip(f"pbx365 binary not built at {binary} (run scripts/test or set PBX365_BIN)")
    workdir = Path(tempfile.mkdtemp(prefix="pbx365-phonebook-"))
    config = workdir / "pbx365.toml"
    config.write_text(
        'listen = "127.0.0.1:0"\n'
        f"data_dir = {json.dumps(str(workdir / 'data'))}\n"
        "[contacts]\n"
        'default_country = "DE"\n'
        "[phonebook]\n"
        f"export_token = {json.dumps(EXPORT_TOKEN)}\n"
        'ldap_listen = "127.0.0.1:0"\n'
        f"ldap_base_dn = {json.dumps(BASE)}\n"
        f"ldap_bind_dn = {json.dumps(BIND_DN)}\n"
        f"ldap_bind_password = {json.dumps(BIND_PASSWORD)}\n"
        "ldap_max_results = 50\n"
    )
    ldap = []

    def on_line(line):
        m = LDAP_LINE.match(line)
        if m:
            ldap.append(m.group(1))

    s = launch(config, "phonebook", on_line)
    if not ldap:
        s.stop()
        pytest.fail(f"pbx365 serve did not start its LDAP directory:\n{s.log.read_text()}")
    s.ldap_host, s.ldap_port = ldap[0].rsplit(":", 1)
    for number, first, last, mobile in EXTENSIONS:
        status, body = s.call(
            "POST",
            "/api/v1/extensions",
            {"number": number, "first_name": first, "last_name": last, "mobile": mobile},
        )
        assert status == 201, body
    for name, first, last, number in COMPANY:
        status, body = s.call(
            "POST",
            "/api/v1/phonebook/company",
            {
                "display_name": name,
                "first_name": first,
                "last_name": last,
                "company": "Contoso, \"Ltd\"; <EU>",
                "emails": ["desk@contoso.example"],
                "numbers": [{"kind": "business", "number": number}],
            },
        )
        assert status == 201, body
    try:
        yield s
    finally:
        s.stop()


def fetch(server, path):
    try:
        with urllib.request.urlopen(server.base_url + path, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode("utf-8")


EXPORTS = ["/phonebook/yealink.xml", "/phonebook/company.vcf", "/phonebook/company.csv"]
ALL_NAMES = [c[0] for c in COMPANY] + [f"{first} {last}" for _, first, last, _ in EXTENSIONS]


@pytest.mark.parametrize("path", EXPORTS)
def test_a_wrong_or_missing_token_gets_a_bare_403(server, path):
    for query in ["", "?token=", "?token=wrong", f"?token={EXPORT_TOKEN}x", f"?Token={EXPORT_TOKEN}"]:
        status, _, body = fetch(server, path + query)
        assert (status, body) == (403, "forbidden\n"), query


def test_yealink_xml_is_well_formed_for_any_name(server):
    status, content_type, text = fetch(server, f"/phonebook/yealink.xml?token={EXPORT_TOKEN}")
    assert status == 200 and content_type.startswith("application/xml")
    for root in (ET.fromstring(text.encode()), etree.fromstring(text.encode())):
        assert root.tag == "YealinkIPPhoneDirectory"
        entries = {e.findtext("Name"): e for e in root.findall("DirectoryEntry")}
        assert sorted(entries) == sorted(one_line(n) for n in ALL_NAMES)
        smith = entries[one_line(COMPANY[0][0])]
        assert [t.text for t in smith.findall("Telephone")] == ["+49 30 1111111"]
        assert smith.find("Telephone").get("label") == "Office"
        zoe = entries["Zoë Ext & <Co>"]
        assert [(t.get("label"), t.text) for t in zoe.findall("Telephone")] == [
            ("Extension", "201"),
            ("Mobile", "+49 170 3333333"),
        ]


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_vcards_read_back_every_name_exactly(server, version):
    status, content_type, text = fetch(
        server, f"/phonebook/company.vcf?token={EXPORT_TOKEN}&version={version}"
    )
    assert status == 200 and content_type.startswith("text/vcard")
    assert "\r\n" in text and all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    cards = list(vobject.readComponents(text))
    assert all(c.version.value == version for c in cards)
    by_name = {c.fn.value: c for c in cards}
    assert sorted(by_name) == sorted(ALL_NAMES)
    smith = by_name[COMPANY[0][0]]
    assert smith.n.value.family == "Smith & Sons" and smith.n.value.given == "Anna"
    assert [t.value for t in smith.contents["tel"]] == ["+49 30 1111111"]
    kelly = by_name[COMPANY[1][0]]
    assert kelly.n.value.family == "O'Brien"
    # vobject splits ORG at unescaped semicolons: the escaped one stays inside the value.
    assert kelly.org.value == ['Contoso, "Ltd"; <EU>']
    assert by_name["Zoë Ext & <Co>"].uid.value == "ext-201"


def test_csv_reads_back_every_name_exactly(server):
    status, content_type, text = fetch(server, f"/phonebook/company.csv?token={EXPORT_TOKEN}")
    assert status == 200 and content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert sorted(r["display_name"] for r in rows) == sorted(ALL_NAMES)
    by_name = {r["display_name"]: r for r in rows}
    assert by_name[COMPANY[1][0]]["business"] == "030 2222222"
    assert by_name[COMPANY[1][0]]["company"] == 'Contoso, "Ltd"; <EU>'
    zoe = by_name["Zoë Ext & <Co>"]
    assert (zoe["extension"], zoe["mobile"]) == ("201", "+49 170 3333333")


def test_caller_name_lookup_finds_the_company_entry(server):
    status, body = server.call("GET", "/api/v1/lookup?number=%2B49302222222")
    assert status == 200, body
    assert body["name"] == COMPANY[1][0] and body["source"] == "company"
    status, body = server.call("GET", "/api/v1/lookup?number=%2B491703333333")
    assert (status, body["extension"]) == (200, "201")


def ldap_server(server):
    return ldap3.Server(server.ldap_host, port=int(server.ldap_port), get_info=ldap3.NONE)


def bound(server):
    return ldap3.Connection(
        ldap_server(server), user=BIND_DN, password=BIND_PASSWORD, auto_bind=True
    )


ATTRS = ["cn", "sn", "givenName", "telephoneNumber", "mobile", "homePhone", "mail", "o"]


def test_ldap3_searches_with_the_filters_phones_send(server):
    conn = bound(server)
    # Yealink: name substring over cn/sn/givenName.
    assert conn.search(BASE, "(|(cn=*smith*)(sn=*smith*)(givenName=*smith*))", attributes=ATTRS)
    assert [e.cn.value for e in conn.entries] == [COMPANY[0][0]]
    e = conn.entries[0]
    assert e.telephoneNumber.value == "+49 30 1111111" and e.o.value == 'Contoso, "Ltd"; <EU>'
    # Snom/Fanvil: an incoming number in another form than it is written.
    assert conn.search(BASE, "(|(telephoneNumber=+49302222222)(mobile=+49302222222))", attributes=ATTRS)
    assert [e.cn.value for e in conn.entries] == [COMPANY[1][0]]
    # Grandstream: AND of objectClass and an initial substring, non-Latin text.
    assert conn.search(BASE, "(&(objectClass=inetOrgPerson)(cn=émile*))", attributes=ATTRS)
    assert [e.cn.value for e in conn.entries] == [COMPANY[3][0]]
    assert conn.search(BASE, "(cn=*😀*)", attributes=["cn"])
    assert len(conn.entries) == 1
    # Extensions: their number and mobile.
    assert conn.search(f"ou=extensions,{BASE}", "(telephoneNumber=201)", attributes=ATTRS)
    assert conn.entries[0].mobile.value == "+49 170 3333333"
    assert conn.search(BASE, "(mobile=01703333333)", attributes=["cn"])
    assert [e.cn.value for e in conn.entries] == ["Zoë Ext & <Co>"]
    # Present and equality; nothing for a number nobody has.
    assert conn.search(BASE, "(&(objectClass=person)(mail=*))", attributes=["cn"])
    assert len(conn.entries) == len(COMPANY)
    assert not conn.search(BASE, "(telephoneNumber=+4940999999)")
    assert conn.result["result"] == 0
    conn.unbind()


def test_ldap3_size_limit_and_paging(server):
    conn = bound(server)
    conn.search(BASE, "(objectClass=inetOrgPerson)", attributes=["cn"], size_limit=2)
    assert len(conn.entries) == 2 and conn.result["result"] == 4  # sizeLimitExceeded
    pages = list(
        conn.extend.standard.paged_search(
            BASE, "(objectClass=inetOrgPerson)", attributes=["cn"], paged_size=2, generator=True
        )
    )
    names = [p["attributes"]["cn"][0] for p in pages if p["type"] == "searchResEntry"]
    # LDAP values are for a phone's display too: one line.
    assert sorted(names) == sorted(one_line(n) for n in ALL_NAMES)
    conn.unbind()


def test_ldap_refuses_the_unbound_the_anonymous_and_the_wrong(server):
    conn = ldap3.Connection(ldap_server(server))
    conn.open()
    assert not conn.search(BASE, "(cn=*)")
    assert conn.result["result"] == 50  # insufficientAccessRights
    conn.unbind()
    with pytest.raises(ldap3.core.exceptions.LDAPBindError):
        ldap3.Connection(ldap_server(server), auto_bind=True)
    with pytest.raises(ldap3.core.exceptions.LDAPBindError):
        ldap3.Connection(ldap_server(server), user=BIND_DN, password="wrong", auto_bind=True)
    conn = bound(server)
    assert not conn.delete(f"uid=201,ou=extensions,{BASE}")
    assert conn.result["result"] == 53  # unwillingToPerform: read-only
    conn.unbind()


def test_garbage_on_the_socket_is_answered_and_the_server_goes_on(server):
    for garbage in [b"\x00" * 64, b"GET / HTTP/1.0\r\n\r\n", bytes(range(256)), b"\x30\x84\x7f\xff\xff\xff"]:
        with socket.create_connection((server.ldap_host, int(server.ldap_port)), timeout=30) as s:
            s.sendall(garbage)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        assert b"1.3.6.1.4.1.1466.20036" in answer, garbage
    assert bound(server).search(BASE, "(cn=*)", attributes=["cn"])
