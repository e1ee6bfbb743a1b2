"""TLS and in-cluster-style credentials for `sim serve --tls`: made fresh at each start, kept in
memory, and written as files a client reads.

What a pod gets from Kubernetes is mirrored: a CA certificate (`ca.crt`) and a bearer token
(`token`), the two files projected at /var/run/secrets/kubernetes.io/serviceaccount
(https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/). A client certificate
and key are made as well, signed by the same CA: Ray's KubeRay node provider reads the token from
that fixed in-pod path only, but takes a client certificate, and a CA, from
$RAY_KUBERAY_CLIENT_CERT_PATH, $RAY_KUBERAY_CLIENT_KEY_PATH and $RAY_KUBERAY_CA_CERT_PATH
(ray python/ray/autoscaler/_private/kuberay/node_provider.py, `load_k8s_secrets`).

The serving certificate names 127.0.0.1 and localhost (subjectAltName: Go's crypto/x509, hence
kubectl, ignores the subject CN for host names), and both certificates carry subject and
authority key identifiers, which strict verifiers (Python 3.13's VERIFY_X509_STRICT) require.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The user the client certificate names; the API server reports it as the authenticated user.
CLIENT_USER = "system:serviceaccount:default:ray-autoscaler"
SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1",)
# The certificates outlive any test or demo run; the clock skew allowance covers hosts whose
# clocks differ slightly (all clients here run on this host).
VALID_FOR = datetime.timedelta(days=1)
SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class CredentialFiles:
    """Where `ServingCredentials.write` put the files a client reads."""

    directory: Path
    ca: Path
    token: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def at(cls, directory: Path) -> CredentialFiles:
        return cls(
            directory=directory,
            ca=directory / "ca.crt",
            token=directory / "token",
            client_cert=directory / "client.crt",
            client_key=directory / "client.key",
        )


@dataclass(frozen=True)
class ServingCredentials:
    """A self-signed CA, the API server's certificate and key, a client certificate and key,
    and a bearer token, all PEM text (the token plain)."""

    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes
    token: str

    @classmethod
    def generate(cls) -> ServingCredentials:
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ray-ack-sim CA")])
        ca_cert = (
            _builder(ca_name, ca_name, ca_key.public_key(), ca_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            _leaf(ca_cert, ca_key, server_key, "kube-apiserver", now)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(n) for n in SERVER_NAMES]
                    + [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_ADDRESSES]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        client_key = ec.generate_private_key(ec.SECP256R1())
        client_cert = (
            _leaf(ca_cert, ca_key, client_key, CLIENT_USER, now)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ca_key, hashes.SHA256())
        )
        return cls(
            ca_pem=_cert_pem(ca_cert),
            server_cert_pem=_cert_pem(server_cert),
            server_key_pem=_key_pem(server_key),
            client_cert_pem=_cert_pem(client_cert),
            client_key_pem=_key_pem(client_key),
            token=secrets.token_urlsafe(32),
        )

    def server_context(self) -> ssl.SSLContext:
        """The API server's TLS context. A client certificate is asked for but optional (the
        token is the other way in); one that is offered must chain to our CA, or the handshake
        fails, as with kube-apiserver's --client-ca-file."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cadata=self.ca_pem.decode("ascii"))
        # the private key only ever touches disk inside a directory of our own, for load_cert_chain
        with tempfile.TemporaryDirectory(prefix="ray-ack-sim-tls-") as scratch:
            cert, key = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
            cert.write_bytes(self.server_cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(self.server_key_pem)
            context.load_cert_chain(cert, key)
        # the API is served over HTTP/1.1 only (aiohttp speaks no h2)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client's TLS context trusting our CA, as a pod's service-account ca.crt does."""
        context = ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def write(self, directory: Path) -> CredentialFiles:
        """Write ca.crt and token (as a pod's service-account directory has them) and
        client.crt and client.key, readable by the owner only."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        files = CredentialFiles.at(directory)
        for path, content in (
            (files.ca, self.ca_pem),
            (files.token, self.token.encode("ascii")),
            (files.client_cert, self.client_cert_pem),
            (files.client_key, self.client_key_pem),
        ):
            path.touch(mode=0o600)
            path.write_bytes(content)
        return files


def remove(files: CredentialFiles) -> None:
    """Delete what `write` wrote (the credentials are worthless once the server stops)."""
    for path in (files.ca, files.token, files.client_cert, files.client_key):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # someone put something else there: leave it
        files.directory.rmdir()


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False
        )
    )


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        _builder(subject, ca_cert.subject, key.public_key(), ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def kuberay_provider_env(url: str, files: CredentialFiles) -> dict[str, str]:
    """The environment that points Ray's KubeRay node provider at the API server at `url`
    (https://HOST:PORT) with the client certificate, read by ray
    python/ray/autoscaler/_private/kuberay/node_provider.py at import:
    - KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT_HTTPS make the API address (an
      http:// address is refused there: "Kubernetes host must be accessed over HTTPS.");
    - RAY_KUBERAY_CA_CERT_PATH replaces the in-pod ca.crt it verifies the server with;
    - RAY_KUBERAY_CLIENT_CERT_PATH and RAY_KUBERAY_CLIENT_KEY_PATH, set together, authenticate
      with a client certificate, and then the in-pod token file
      (/var/run/secrets/kubernetes.io/serviceaccount/token, a fixed path) is optional.
    KUBERAY_CRD_VER defaults to v1 there, the version served here."""
    host, _, port = url.removeprefix("https://").rpartition(":")
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT_HTTPS": port,
        "RAY_KUBERAY_CA_CERT_PATH": str(files.ca),
        "RAY_KUBERAY_CLIENT_CERT_PATH": str(files.client_cert),
        "RAY_KUBERAY_CLIENT_KEY_PATH": str(files.client_key),
    }


def credentials_directory(kubeconfig: Path) -> Path:
    """Where the credential files go: beside the kubeconfig, `<its stem>-tls/`."""
    return kubeconfig.with_name(f"{kubeconfig.stem}-tls")
