"""Microsoft's own MSAL for Python gets tokens from m365-sim exactly as it would from Entra ID."""

import base64
import datetime
import json
import ssl
import urllib.parse
import urllib.request
import uuid

import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def make_certificate():
    """A self-signed RSA certificate and key, as an app owner creates for Entra ID."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pbx365 msal test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    return key_pem, cert_pem, thumbprint


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def msal_app(sim, client_id, credential):
    return msal.ConfidentialClientApplication(
        client_id,
        authority=sim.authority,
        client_credential=credential,
        verify=sim.ca_file,
        # The sim is not a Microsoft cloud: skip the instance discovery call to
        # login.microsoftonline.com (no network beyond loopback).
        instance_discovery=False,
        token_cache=msal.TokenCache(),
    )


GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


@pytest.fixture(scope="module")
def cert():
    return make_certificate()


def test_certificate_key_and_thumbprint_get_a_token_with_roles(sim, cert):
    key_pem, cert_pem, thumbprint = cert
    client_id = sim.register_app(
        display_name="msal cert app",
        certificate_pem=cert_pem,
        permissions=["User.Read.All"],
        consented=True,
    )
    app = msal_app(sim, client_id, {"private_key": key_pem, "thumbprint": thumbprint})
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in result, result
    claims = jwt_claims(result["access_token"])
    assert claims["appid"] == client_id
    assert claims["tid"] == sim.tenant_id
    assert claims["roles"] == ["User.Read.All"]
    assert claims["appidacr"] == "2"


def test_public_certificate_form_signs_with_ps256_and_gets_a_token(sim, cert):
    key_pem, cert_pem, _ = cert
    client_id = sim.register_app(
        display_name="msal ps256 app",
        certificate_pem=cert_pem,
        permissions=["User.Read.All"],
        consented=True,
    )
    app = msal_app(sim, client_id, {"private_key": key_pem, "public_certificate": cert_pem})
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"


def test_wrong_private_key_gets_invalid_client(sim, cert):
    _, cert_pem, thumbprint = cert
    other_key, _, _ = make_certificate()
    client_id = sim.register_app(
        display_name="msal wrong key", certificate_pem=cert_pem, consented=True
    )
    app = msal_app(sim, client_id, {"private_key": other_key, "thumbprint": thumbprint})
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" not in result
    assert result["error"] == "invalid_client", result
    assert 700027 in result["error_codes"]


def test_client_secret_gets_a_token_and_a_wrong_secret_is_invalid_client(sim):
    client_id = sim.register_app(
        display_name="msal secret app",
        client_secret="sim-secret-value",
        permissions=["User.Read.All"],
        consented=True,
    )
    ok = msal_app(sim, client_id, "sim-secret-value").acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in ok, ok
    assert jwt_claims(ok["access_token"])["appidacr"] == "1"
    bad = msal_app(sim, client_id, "wrong").acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert bad["error"] == "invalid_client", bad
    assert 7000215 in bad["error_codes"]


def test_unknown_app_is_unauthorized_client(sim):
    app = msal_app(sim, str(uuid.uuid4()), "whatever")
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert result["error"] == "unauthorized_client", result
    assert 700016 in result["error_codes"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_auth_code_flow_with_pkce_yields_an_id_token_msal_accepts(sim):
    redirect_uri = "http://localhost:8765/callback"
    client_id = sim.register_app(
        display_name="msal web app", redirect_uris=[redirect_uri], client_secret="web-secret"
    )
    app = msal_app(sim, client_id, "web-secret")
    # MSAL checks state, redeems the code with the PKCE verifier and validates the ID token
    # (issuer, audience, nonce, lifetime).
    result = _sign_in(sim, app, ["User.Read"], redirect_uri)
    assert "id_token_claims" in result, result
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == "ann@contoso.example"
    assert claims["oid"] == "11111111-1111-1111-1111-111111111111"
    assert claims["tid"] == sim.tenant_id


def _sign_in(sim, app, scopes, redirect_uri, user="ann@contoso.example"):
    """Runs MSAL's auth code flow against the sim's authorize endpoint for `user`."""
    flow = app.initiate_auth_code_flow(scopes=scopes, redirect_uri=redirect_uri, login_hint=user)
    status, _ = sim.control("POST", "/_sim/signin", {"user": user})
    assert status == 200
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=sim.ssl_context())
    )
    try:
        opener.open(flow["auth_uri"])
        raise AssertionError("authorize should redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 302
        location = e.headers["Location"]
    assert location.startswith(redirect_uri)
    auth_response = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    return app.acquire_token_by_auth_code_flow(flow, auth_response)


def _graph_get(sim, path, token):
    req = urllib.request.Request(f"{sim.base_url}/v1.0{path}")
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=sim.ssl_context()) as resp:
            return resp.status, json.loads(resp.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def test_delegated_token_reads_me_and_is_renewed_silently_after_expiry(sim_factory, seed):
    """MSAL keeps the refresh token of the auth code flow and, once the access token has
    expired, `acquire_token_silent` redeems it (grant_type=refresh_token) for a new one
    (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token).
    MSAL treats a token with under five minutes left as expired, so a 60-second lifetime
    forces the refresh without waiting."""
    s = sim_factory("--token-lifetime-secs", "60", seed=seed)
    redirect_uri = "http://localhost:8765/callback"
    client_id = s.register_app(
        display_name="msal delegated app", redirect_uris=[redirect_uri], client_secret="web-secret"
    )
    app = msal_app(s, client_id, "web-secret")
    first = _sign_in(s, app, ["User.Read"], redirect_uri)
    assert "access_token" in first, first
    assert "refresh_token" in first, "MSAL asks for offline_access; the sim must answer it"
    # https://learn.microsoft.com/graph/api/user-get ("Get the signed-in user").
    status, me = _graph_get(s, "/me", first["access_token"])
    assert status == 200, me
    assert me["userPrincipalName"] == "ann@contoso.example"

    accounts = app.get_accounts(username="ann@contoso.example")
    assert accounts, "MSAL cached the signed-in account"
    renewed = app.acquire_token_silent(["User.Read"], account=accounts[0])
    assert renewed and "access_token" in renewed, renewed
    assert renewed["access_token"] != first["access_token"], "a new token, from the refresh token"
    assert jwt_claims(renewed["access_token"])["oid"] == "11111111-1111-1111-1111-111111111111"
    status, me = _graph_get(s, "/me", renewed["access_token"])
    assert status == 200, me
