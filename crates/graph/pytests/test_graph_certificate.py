"""pbx365's key pair, checked by independent parsers and by Microsoft's own MSAL against m365-sim."""

import datetime
import stat

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

PERMISSIONS = ["Calendars.Read", "Contacts.Read", "Directory.Read.All", "Mail.Send", "User.Read.All"]


def _load(keypair):
    key_path, cert_path = keypair
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return key, cert


def test_certificate_is_x509_v3_rsa_2048_self_signed_and_valid_two_years(keypair):
    key, cert = _load(keypair)
    assert cert.version == x509.Version.v3
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pbx.example.com"
    # Self-signed: its own public key verifies its signature.
    public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    cert.verify_directly_issued_by(cert)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=729) <= lifetime <= datetime.timedelta(days=731)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc


def test_private_key_matches_the_certificate_and_is_private(keypair):
    key, cert = _load(keypair)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    mode = stat.S_IMODE(keypair[0].stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)


def _register_app(graph_sim, cert_pem):
    base, _tenant, ca = graph_sim
    resp = requests.post(
        f"{base}/_sim/apps",
        json={"display_name": "pbx365", "certificate_pem": cert_pem, "permissions": PERMISSIONS, "consented": True},
        verify=ca,
        timeout=30,
    )
    resp.raise_for_status()
    return resp.json()["client_id"]


def _msal_token(graph_sim, client_id, credential):
    base, tenant, ca = graph_sim
    session = requests.Session()
    session.verify = ca
    # REQUESTS_CA_BUNDLE in the environment would otherwise override session.verify.
    session.trust_env = False
    app = msal.ConfidentialClientApplication(
        client_id,
        authority=f"{base}/{tenant}",
        client_credential=credential,
        http_client=session,
        instance_discovery=False,
        validate_authority=False,
    )
    return app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])


def test_msal_accepts_the_pair_with_sha256_thumbprint(graph_sim, keypair):
    key_path, cert_path = keypair
    cert_pem = cert_path.read_text()
    client_id = _register_app(graph_sim, cert_pem)
    result = _msal_token(graph_sim, client_id, {"private_key": key_path.read_text(), "public_certificate": cert_pem})
    assert "access_token" in result, result
    base, _tenant, ca = graph_sim
    users = requests.get(
        f"{base}/v1.0/users?$top=1",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        verify=ca,
        timeout=30,
    )
    assert users.status_code == 200, users.text


def test_msal_accepts_the_pair_with_sha1_thumbprint(graph_sim, keypair):
    key_path, cert_path = keypair
    client_id = _register_app(graph_sim, cert_path.read_text())
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    result = _msal_token(graph_sim, client_id, {"private_key": key_path.read_text(), "thumbprint": thumbprint})
    assert "access_token" in result, result
