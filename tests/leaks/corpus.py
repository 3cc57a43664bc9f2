"""The leak corpus, generated: classes of personal data x variants, each put
through every path into optel (:data:`CARRIERS`, driven by the leak test).

A case is ``(class, fragments, text)``: ``text`` goes in; no fragment may
come out anywhere (spool bytes, ``optel show``, either wire, debug output).
Fragments are the datum as written and its distinctive parts (an e-mail
address's local part, a token's body), so a datum cut short by a length
limit is still caught. Cases are generated from small tables of names,
formats and variants, not listed by hand; every class of the outside audit
(issue 12) is here, and the corpus never repeats a datum, so a survivor
names its case.

:data:`USEFUL` is the other half: facts a tool needs that must still arrive.
"""

from __future__ import annotations

import itertools
import string
from typing import Iterator

Case = tuple[str, list[str], str]

LOCAL_USER = "ursulak"
"""The OS user name of the emitting process (the test sets USER and LOGNAME)."""

_FIRST = ["kwame", "maria", "jurgen", "aiko", "olu", "svetlana", "pedro", "ingrid", "ravi", "chen"]
_LAST = [
    "osei",
    "gonzalez",
    "muller",
    "tanaka",
    "adebayo",
    "ivanova",
    "silva",
    "berg",
    "patel",
    "wei",
]
_DOMAINS = ["acme-corp.com", "example.org", "uni-heidelberg.de", "mail.co.uk", "startup.io"]


def _people() -> Iterator[tuple[str, str]]:
    for i, (first, last) in enumerate(zip(itertools.cycle(_FIRST), itertools.cycle(_LAST))):
        if i >= 200:
            return
        yield first, f"{last}{i}"  # unique: a survivor names its case


_PEOPLE = list(_people())


def emails() -> Iterator[Case]:
    variants = [
        ("plain", lambda u, d: f"contact {u}@{d} for access"),
        ("angle", lambda u, d: f"Signed-off-by: Someone <{u}@{d}>"),
        ("mailto", lambda u, d: f"mailto:{u}@{d}"),
        ("percent", lambda u, d: f"user={u}%40{d}"),
        ("fullwidth", lambda u, d: f"owner {u}＠{d}"),
        ("words", lambda u, d: f"write to {u} at {d.split('.')[0]} dot com"),
        ("bracket", lambda u, d: f"{u} [at] {d.split('.')[0]} [dot] com"),
        ("zero_width", lambda u, d: f"mail {u[:3]}\u200b{u[3:]}@{d}"),
    ]
    people = iter(_PEOPLE)
    for (variant, make), domain in itertools.product(variants, _DOMAINS[:3]):
        first, last = next(people)
        local = f"{first}.{last}"
        yield f"email.{variant}", [local, last], make(local, domain)
    for _ in range(4):  # non-ASCII local part and domain
        _, last = next(people)
        local = f"jürgen.{last}"
        yield "email.unicode", [local, last], f"owner {local}@müller-gmbh.de"
    for domain in _DOMAINS[:4]:  # a Cyrillic a in the local part
        first, last = next(people)
        local = f"{first}.{last}"
        yield "email.homoglyph", [last], f"from {local.replace('a', 'а', 1)}@{domain}"


_ROOTS = [
    "/home/{u}", "/Users/{u}", "C:\\Users\\{u}", "/mnt/c/Users/{u}", "\\\\fileserver\\home$\\{u}",
    "/Volumes/{U}Backup", "/nfs/home/{u}", "/srv/users/{u}", "/data/{u}", "/users/{u}",
    "~{u}", "/export/home/{u}", "D:\\Users\\{u}",
]  # fmt: skip
_TAILS = ["/projects/yolo/best.pt", "\\AppData\\Local\\Temp\\model.onnx", "/.cache/hf/model.bin"]


def home_folders() -> Iterator[Case]:
    names = (
        f"{a}{b}" for a, b in itertools.product(["jdoe", "bsmith", "klee"], string.ascii_lowercase)
    )
    for root, tail in itertools.product(_ROOTS, _TAILS):
        user = next(names)
        path = root.format(u=user, U=user.capitalize()) + tail
        yield "home", [user], f"FileNotFoundError: {path}"
    for fmt in ["run by {u}", "{u}2024", "2024{u}", "/srv/shared/{u}_7/ckpt", "{u}-laptop"]:
        yield "local_user", [LOCAL_USER], fmt.format(u=LOCAL_USER)


def names_and_hosts() -> Iterator[Case]:
    for first, last in _PEOPLE[100:110]:
        yield "file_name", [f"{first}_{last}_resume"], f"saved /tmp/{first}_{last}_resume.pdf"
    for corp in ["globex", "initech", "umbrella", "hooli", "vandelay", "wayne"]:
        yield "dataset", [f"{corp}customers"], f"/mnt/datasets/customers/{corp}customers/train.csv"
        yield "repo", [f"{corp}-secret-repo"], f"clone https://github.com/{corp}/{corp}-secret-repo"
        yield "repo_ssh", [f"{corp}-infra-repo"], f"git@github.com:{corp}/{corp}-infra-repo.git"
        yield "fqdn", [f"{corp}ops"], f"build-agent-42.int.{corp}ops.com unreachable"
        yield "fqdn_bare", [f"{corp}-db7"], f"connect {corp}-db7.internal:5432 failed"
    for first, last in _PEOPLE[110:116]:
        name = f"{first.capitalize()} {last.capitalize()}"
        yield "sql_literal", [name], f"SELECT * FROM users WHERE name = '{name}'"


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{bban}"


def numbers() -> Iterator[Case]:
    phones = [
        "+1 (415) 555-{n}", "415-555-{n}", "(415) 555 {n}", "+44 20 7946 {n}", "020 7946 {n}",
        "+49 30 1234{n}", "+1415555{n}", "0049 30 123 {n}", "+33 1 42 68 {a} {b}",
    ]  # fmt: skip
    # fragments made only of digits are long (10+): a short one would turn up
    # by chance inside a timestamp or an id and name a leak that is not there
    for i, fmt in enumerate(phones * 3):
        n = f"{1000 + 37 * i:04d}"
        phone = fmt.format(n=n, a=n[:2], b=n[2:])
        digits = "".join(c for c in phone if c.isdigit())
        yield (
            "phone",
            [phone, digits] if len(digits) >= 10 else [phone],
            f"call me on {phone} tomorrow",
        )
    for i in range(9):
        ssn = f"{123 + i}-{45 + i}-{6789 + i}"
        compact = ssn.replace("-", "")
        text = (f"ssn {ssn}", f"SSN: {ssn.replace('-', ' ')}", f"id {compact}")[i % 3]
        yield "ssn", [ssn, ssn.replace("-", " "), f"id {compact}"], text
    for i, prefix in enumerate(["AB", "CE", "JG", "KL", "PR", "TW"]):
        nino = f"{prefix}{12 + i}{34 + i}{56 + i}{'ABCD'[i % 4]}"
        spaced = f"{nino[:2]} {nino[2:4]} {nino[4:6]} {nino[6:8]} {nino[8]}"
        yield "nino", [nino, spaced], f"NI number {spaced if i % 2 else nino}"
    for i, (country, bban) in enumerate(
        [("DE", "37040044053201300{}"), ("GB", "WEST1234569876543{}"), ("FR", "2004101005050001{}3M02606"),
         ("NL", "ABNA041716430{}"), ("ES", "2100041845020005133{}"), ("IT", "X054281110100000012345{}")]
    ):  # fmt: skip
        iban = _iban(country, bban.format(i))
        spaced = " ".join(iban[j : j + 4] for j in range(0, len(iban), 4))
        yield "iban", [iban, iban[4:16]], f"pay to {iban}"
        yield "iban_spaced", [spaced, spaced[5:19]], f"IBAN {spaced}"
    seps = ["", " ", "-", ".", "\u00a0"]
    for i, (prefix, sep) in enumerate(itertools.product(["4", "51", "37", "6011"], seps)):
        digits = _luhn_complete(prefix + f"{(i + 1) * 7919:0{15 - len(prefix)}d}")
        card = sep.join(digits[j : j + 4] for j in range(0, 16, 4))
        yield "card", [card, digits, digits[2:14]], f"paid with {card}"
    for i in range(4):
        b = [0x00, 0x1A, 0x2B + i, 0x3C, 0x4D, 0x5E + i]
        colon = ":".join(f"{x:02x}" for x in b)
        dash = "-".join(f"{x:02X}" for x in b)
        hexs = "".join(f"{x:02x}" for x in b)
        cisco = ".".join(hexs[j : j + 4] for j in range(0, 12, 4))
        for variant, mac in (
            ("colon", colon),
            ("dash", dash),
            ("cisco", cisco),
            ("bare", hexs.upper()),
        ):
            yield f"mac.{variant}", [mac], f"ether {mac} txqueuelen 1000"
    for i in range(6):
        v4 = f"{10 + i}.{20 + i}.{30 + i}.{41 + i}"
        yield "ipv4", [v4], f"connect to {v4}:8080 refused"
        v6 = f"2001:db8:{i:x}a3::8a2e:370:73{i:02x}"
        yield "ipv6", [v6], f"bound [{v6}]:443"


def passwords() -> Iterator[Case]:
    forms = [
        "PGPASSWORD={p} psql -h db", "DB_PASS={p}", "export MYSQL_PWD={p}", "mysql -uroot -p{p} app",
        "login --password {p} --user x", "--password={p}", "machine db.example login bob password {p}",
        "{{'pass': '{p}'}}", '{{"password": "{p}"}}', "password={p}&customer=acme", "passwd: {p}",
        "client_secret={p}", "api_key = '{p}'", "Authorization: Token {p}", "secret {p}",
    ]  # fmt: skip
    for i, form in enumerate(forms * 2):
        pw = f"Pw{i}x!k&{'qrstuvwxyz'[i % 10]}{9 - i % 10}" if i % 3 == 0 else f"h4ck{i}Zq{i * 7}"
        yield "password", [pw], form.format(p=pw)


def _chars(seed: int, n: int, alphabet: str) -> str:
    out, x = [], seed * 2654435761 % 2**32 or 1
    for _ in range(n):
        x = (1103515245 * x + 12345) % 2**31
        out.append(alphabet[x % len(alphabet)])
    return "".join(out)


def tokens() -> Iterator[Case]:
    hexa, alnum = "0123456789abcdef", string.ascii_letters + string.digits
    b64 = alnum + "+/"
    makers = [
        ("wandb", lambda i: _chars(i, 40, hexa), "WANDB_API_KEY {t}"),
        ("kaggle", lambda i: _chars(i, 32, hexa), '{{"username":"x","key":"{t}"}}'),
        ("gitlab", lambda i: "glpat-" + _chars(i, 20, alnum), "token {t}"),
        ("databricks", lambda i: "dapi" + _chars(i, 32, hexa), "DATABRICKS_TOKEN={t}"),
        ("auth_token", lambda i: _chars(i, 24, hexa), "Authorization: Token {t}"),
        ("azure", lambda i: _chars(i, 3, alnum) + "8Q~" + _chars(i + 1, 34, alnum), "AZURE_CLIENT_SECRET={t}"),
        ("basic_short", lambda i: _chars(i, 16, b64) + "==", "Authorization: Basic {t}"),
        ("github", lambda i: "ghp_" + _chars(i, 36, alnum), "git push with {t}"),
        ("hf", lambda i: "hf_" + _chars(i, 34, alnum), "huggingface-cli login --token {t}"),
        ("openai", lambda i: "sk-proj-" + _chars(i, 40, alnum), "openai key {t}"),
        ("slack", lambda i: "xoxb-" + _chars(i, 12, string.digits) + "-" + _chars(i, 24, alnum), "{t}"),
        ("aws", lambda i: "AKIA" + _chars(i, 16, string.ascii_uppercase + string.digits), "aws {t}"),
        ("jwt", lambda i: "eyJhbGciOiJIUzI1NiJ9.eyJ" + _chars(i, 30, alnum) + "." + _chars(i, 43, alnum), "jwt {t}"),
        ("bearer", lambda i: _chars(i, 20, alnum), "Authorization: Bearer {t}"),
        ("npm", lambda i: "npm_" + _chars(i, 36, alnum), "//registry.npmjs.org/:_authToken={t}"),
        ("google", lambda i: "AIza" + _chars(i, 35, alnum), "maps key {t}"),
        ("random", lambda i: _chars(i, 20, alnum), "secret blob {t}"),
        ("pem", lambda i: _chars(i, 40, b64), "-----BEGIN PRIVATE KEY-----\n{t}\n-----END PRIVATE KEY-----"),
    ]  # fmt: skip
    for (kind, make, form), i in itertools.product(makers, range(3)):
        t = make(100 + 17 * i + sum(map(ord, kind)))
        body = t.split("_", 1)[-1].split("-")[-1][-16:]  # the token without its known prefix
        yield f"token.{kind}", [t, body], form.format(t=t)


def urls() -> Iterator[Case]:
    for i, corp in enumerate(["acme", "globex", "initech", "hooli", "stark"]):
        cust, acct, pw, user = f"cust{corp}{i}", f"{88123 + i}", f"Pw{corp}{i}x", f"svc{corp}{i}"
        yield "url.query", [cust, f"account={acct}"], f"GET https://api.x.com/v1?token=abc&customer={cust}&account={acct}"  # fmt: skip
        yield "url.noscheme", [cust], f"api.{corp}.com/v1/items?key=abc&customer={cust}"
        yield "url.userinfo", [pw, user], f"postgres://{user}:{pw}@db.{corp}.com:5432/app"


CLASSES = [emails, home_folders, names_and_hosts, numbers, passwords, tokens, urls]


def cases() -> list[Case]:
    out = [case for make in CLASSES for case in make()]
    return out


CASES: list[Case] = cases()

DENIED_KEYS = [
    "username", "userName", "USER_NAME", "hostname", "HostName", "passphrase", "access_key",
    "accessKey", "db_pass", "DB_PASSWORD", "PGPASSWORD", "phone", "homePhone", "email",
    "client_ip", "server.address", "login", "owner", "first_name", "dob", "iban", "creditCard",
    "auth.token", "refresh_token", "session.id", "user.email", "host.name", "process.owner",
    "optel.db_password", "optel.user.email",
]  # fmt: skip
"""Keys whose names signal identity or secrets: dropped even when declared
(``optel.`` ones cannot even be declared); each carries its own needle."""


def denied_value(key: str) -> str:
    return f"val-{''.join(c for c in key.lower() if c.isalnum())}-7731"


RESOURCE_KEYS = [
    "service.namespace", "telemetry.sdk.name", "telemetry.sdk.language", "process.runtime.name",
    "process.runtime.description", "host.name", "user.name", "deployment.environment",
]  # fmt: skip
"""Resource keys set from ``OTEL_RESOURCE_ATTRIBUTES``: safe keys do not make safe values."""


def resource_needles(offset: int) -> dict[str, str]:
    """One datum per resource key, different for each run (``offset``)."""
    people = _PEOPLE[150 + offset * len(RESOURCE_KEYS) :]
    return {k: f"{first}.{last}" for k, (first, last) in zip(RESOURCE_KEYS, people)}


def fragments() -> list[str]:
    """Every fragment that must never come out."""
    out = [f for _, frags, _ in CASES for f in frags]
    out += [denied_value(k) for k in DENIED_KEYS]
    return out


# -- what must still arrive -----------------------------------------------------------

USEFUL: list[tuple[str, dict[str, str]]] = [
    # (fact, how it reads on each capture when it differs from the fact)
    ("onnx", {}),
    ("resnet50", {}),
    ("2.1.0+cu121", {}),
    ("convert", {}),
    ("GET", {}),
    ("SELECT orders", {"ga4": "SELECT_orders"}),
    ("test_token::call", {"ga4": "test_token_call"}),
    ("file:.onnx@home", {}),
    ("json.decoder.JSONDecodeError", {}),
    ("<stdlib>/json/decoder.py", {}),
    ("converted %s models", {}),
    ("models_converted", {}),
    ("97.8", {}),
    ("h:", {}),
]
"""Facts the tool needs (labels, versions, numbers, exception types, library
frames, names such as convert, GET, SELECT): each must reach every capture."""
