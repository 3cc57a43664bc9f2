"""Key policy: which attribute keys may leave, and which never do.

A key leaves when it is a valid identifier (:func:`optel.kinds.check_key`)
and has a kind: declared by the tool, one of optel's own registered keys
(:data:`optel.kinds.OPTEL_KEYS`: the ``optel.`` prefix is reserved, an
unregistered ``optel.`` key is dropped) or a built-in semantic-convention
key (:data:`optel.kinds.BUILTIN_KEYS`). It never leaves, even when declared,
when its name signals a secret or an identity (:func:`denied`).

The deny rule works on families, not lists of examples: the key is
lower-cased and split into words (``dbPassword``, ``DB_PASS`` and
``db.pass`` alike), and it is denied when a word is one of
:data:`DENY_WORDS`, when its letters with separators removed contain one of
:data:`DENY_STEMS` (``PGPASSWORD``, ``x-api-key``, ``homePhone``), or when it
is one of :data:`DENY_KEYS` or starts with one of :data:`DENY_PREFIXES`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..kinds import BUILTIN_KEYS

SAFE_KEYS = frozenset(BUILTIN_KEYS)
"""Semantic-convention keys optel sends without a declaration (each with a kind)."""

SAFE_PREFIXES = ("optel.",)
"""Reserved for optel's own registered keys (:data:`optel.kinds.OPTEL_KEYS`)."""

SECRET_STEMS = (
    "password", "passwd", "passwort", "passphrase", "passcode", "passkey", "pwd", "secret",
    "apikey", "accesskey", "privatekey", "secretkey", "signingkey", "encryptionkey",
    "masterkey", "clientkey", "licensekey", "credential", "cookie", "session", "authorization",
    "authentication", "authtoken", "oauth", "bearer", "jwt", "dbpass", "pgpass", "mysqlpass",
    "signature", "connectionstring", "connstr", "dsn",
)  # fmt: skip
"""Secret families, matched inside the key with separators removed."""

_TOKEN = re.compile(r"token(?!s|iz|is)")  # token, accessToken; not max_tokens, tokenizer

IDENTITY_STEMS = (
    "username", "userid", "useremail", "usermail", "userlogin", "userprofile", "loginname",
    "loginid", "enduser", "hostname", "hostid", "hostip", "hostmac", "machineid", "machinename",
    "computername", "devicename", "deviceid", "nodename", "fqdn", "serialnumber", "macaddr",
    "ipaddr", "email", "phone", "mobilenumber", "creditcard", "cardnumber", "iban", "passport",
    "birthdate", "birthday", "dateofbirth", "firstname", "lastname", "surname", "fullname",
    "realname", "displayname", "nickname", "givenname", "familyname", "personname",
    "customername", "customerid", "customeremail", "streetaddress", "postcode", "postalcode",
    "zipcode", "accountnumber", "accountid", "accountname", "homedir", "homepath", "homefolder",
    "latitude", "longitude", "geolocation", "socialsecurity", "nationalid", "taxid",
)  # fmt: skip
"""Identity families, matched inside the key with separators removed."""

DENY_STEMS = SECRET_STEMS + IDENTITY_STEMS

DENY_WORDS = frozenset(
    {
        # secrets
        "pass", "pw", "otp", "totp", "mfa", "sid", "auth", "authn", "authz", "salt", "nonce",
        "csrf", "xsrf",
        # identities
        "login", "owner", "ip", "mac", "address", "addr", "mail", "fax", "ssn", "nino",
        "cvv", "cvc", "dob", "gps", "lat", "lon", "lng", "geo", "cwd", "home", "tel",
    }
)  # fmt: skip
"""Whole words of a key that name a secret or an identity (``db_pass``, ``auth.header``,
``client_ip``, ``server.address``)."""

SECRET_WORDS = ("password", "passwd", "passphrase", "pwd", "secret", "token", "api_key",
                "apikey", "access_key", "private_key", "auth", "cookie", "session", "credential",
                "pass")  # fmt: skip
"""Words that name a secret in free text: ``<word>=<value>`` has its value
scrubbed (:mod:`.values`)."""

DENY_KEYS = frozenset(
    {
        "user",
        "client.address",
        # HTTP's older names for a peer and a user agent
        "http.host",
        "http.server_name",
        "http.client_ip",
        "http.user_agent",
        "db.user",
        "host.name",
        "host.ip",
        "host.mac",
        "host.id",
        "process.owner",
        "process.executable.path",
        "process.executable.name",
        "process.pid",
        "process.parent_pid",
        "process.runtime.description",
        "service.instance.id",
        "os.description",
        "container.id",
        "container.name",
        "k8s.pod.name",
        "k8s.pod.uid",
    }
)
"""Identity keys: dropped even when declared."""

DENY_PREFIXES = (
    "user.",
    "enduser.",
    "process.command",
    "process.environment",
    "net.peer.",
    "net.host.",
    "network.peer.",
    "network.local.",
    "client.",
    "server.",
    "source.",
    "destination.",
    "url.",
    "user_agent.",
    "http.request.header.",
    "http.response.header.",
    "geo.",
)
"""Identity key families: dropped even when declared."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=4096)
def denied(key: str) -> bool:
    """True when ``key`` names a secret or an identity."""
    low = key.lower()
    if low in DENY_KEYS or low.startswith(DENY_PREFIXES):
        return True
    words = _SPLIT.split(_CAMEL.sub("_", key).lower())
    if not DENY_WORDS.isdisjoint(words):
        return True
    compact = "".join(words)
    return _TOKEN.search(compact) is not None or any(s in compact for s in DENY_STEMS)
