"""Realistic leaks: personal data the way developer tools actually leak it.

Each entry is (carrier, text, needles): the text goes into optel through
the carrier; no needle may survive into the spool, ``optel show`` or the wire.
"""

from __future__ import annotations

EMAILS = [
    ("alice.smith@example.com", "login failed for alice.smith@example.com"),
    ("bob+ml@corp.example.org", "notify bob+ml@corp.example.org when done"),
    ("j.doe@university.edu", "owner: j.doe@university.edu"),
    ("dev_ops@startup.io", "CC dev_ops@startup.io"),
    ("x9@mail.co.uk", "<x9@mail.co.uk>"),
]
PATHS = [
    ("alice", "/home/alice/projects/yolo/weights/best.pt"),
    ("bsmith", "FileNotFoundError: /home/bsmith/.cache/huggingface/model.bin"),
    ("Carol", "/Users/Carol/Downloads/dataset.zip"),
    ("dave", "C:\\Users\\dave\\AppData\\Local\\Temp\\model.onnx"),
    ("erin", "C:/Users/erin/Documents/train.py"),
    ("frank", "~frank/experiments/run1"),
    ("gwen", "saved to /home/gwen/out and /home/gwen/logs"),
    ("hank", "cd /export/home/hank && ./convert"),
    ("ivyrose", "D:\\Users\\ivyrose\\data.csv"),
    ("jmiller", "cannot import /Users/jmiller/venv/lib/python3.11/site-packages/torch"),
]
IPS = [
    ("192.168.1.23", "connect to 192.168.1.23:8080 failed"),
    ("10.20.30.40", "peer=10.20.30.40"),
    ("172.16.0.5", "X-Forwarded-For: 172.16.0.5"),
    ("203.0.113.77", "client 203.0.113.77 timed out"),
    ("2001:db8:85a3::8a2e:370:7334", "bound [2001:db8:85a3::8a2e:370:7334]:443"),
    ("fe80::1ff:fe23:4567:890a", "iface fe80::1ff:fe23:4567:890a%eth0"),
    ("2001:0db8:0000:0000:0000:ff00:0042:8329", "addr 2001:0db8:0000:0000:0000:ff00:0042:8329"),
]
MACS = [
    ("00:1a:2b:3c:4d:5e", "mac 00:1a:2b:3c:4d:5e"),
    ("AA-BB-CC-DD-EE-FF", "adapter AA-BB-CC-DD-EE-FF"),
    ("de:ad:be:ef:00:01", "hwaddr=de:ad:be:ef:00:01"),
]
URLS = [
    ("hunter2", "https://admin:hunter2@registry.example.com/v2/"),
    ("s3cr3tpass", "postgres://svc:s3cr3tpass@db.internal:5432/app"),
    ("abc123signature", "https://bucket.s3.amazonaws.com/f?X-Amz-Signature=abc123signature"),
    ("mytoken42", "GET https://api.example.com/v1/items?access_token=mytoken42&page=2"),
    ("sessionfrag", "https://app.example.com/#sessionfrag"),
    ("qwerty99", "redis://:qwerty99@cache:6379/0"),
]
SECRETS = [
    ("AKIAIOSFODNN7EXAMPLE", "aws key AKIAIOSFODNN7EXAMPLE in env"),
    ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    (
        "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
        "token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
    ),
    ("gho_abcdefghijklmnopqrstuvwxyz0123456789", "gho_abcdefghijklmnopqrstuvwxyz0123456789"),
    (
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    ),
    ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    (
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "openai key sk-proj-abcdefghijklmnopqrstuvwxyz012345",
    ),
    ("sk-abcdefghijklmnopqrstuvwxyzABCDEF12", "sk-abcdefghijklmnopqrstuvwxyzABCDEF12 rejected"),
    ("xoxb-123456789012-abcdefghijkl", "slack xoxb-123456789012-abcdefghijkl"),
    ("xoxp-987654321-abcdefABCDEF", "xoxp-987654321-abcdefABCDEF"),
    (
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ",
        "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    ("mF9vT2xQ8pLw3ZrK", "Authorization: Bearer mF9vT2xQ8pLw3ZrK"),
    ("dXNlcjpwYXNzd29yZDEyMw==", "Authorization: Basic dXNlcjpwYXNzd29yZDEyMw=="),
    ("correct-horse-battery", "password=correct-horse-battery"),
    ("Tr0ub4dor", "db_password: Tr0ub4dor"),
    ("letmein2024", "--api-key letmein2024".replace(" ", "=")),
    ("pa55w0rd!", "PASSWD='pa55w0rd!'"),
    (
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    ),
    (
        "MIIEowIBAAKCAQEA7",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
    ),
    ("Zx8Qp3LmN7vB2cR9tY6wK4jH1gF5dS0a", "secret blob Zx8Qp3LmN7vB2cR9tY6wK4jH1gF5dS0a"),
    ("aK9d8F7g6H5j4K3l2Z1x0C9v8B7n6M5q", "aK9d8F7g6H5j4K3l2Z1x0C9v8B7n6M5q"),
]
CARDS = [
    ("4111111111111111", "card 4111111111111111"),
    ("5500 0000 0000 0004", "paid with 5500 0000 0000 0004"),
    ("3400-000000-00009", "amex 3400-000000-00009"),
    ("6011000990139424", "6011000990139424"),
]

LEAKS: list[tuple[str, list[str]]] = []
for group in (EMAILS, PATHS, IPS, MACS, URLS, SECRETS, CARDS):
    for needle, text in group:
        LEAKS.append((text, [needle]))

# Keys whose names signal identity or secrets: dropped even when declared.
DENIED_KEYS = [
    ("user.email", "zoe@example.com"),
    ("user.id", "u-88412-zoe"),
    ("enduser.id", "enduser-zoe-77"),
    ("password", "plainpass-771"),
    ("db.password", "dbpass-9912"),
    ("api_key", "key-553311"),
    ("auth_token", "tok-664422"),
    ("session.id", "sess-998877"),
    ("http.cookie", "cookie-val-5544"),
    ("client.address", "client-addr-3322"),
    ("host.name", "workstation-zoe"),
    ("process.owner", "owner-zoe-11"),
    ("process.command_line", "python train.py --user zoe-cmd"),
    ("net.peer.name", "peer-zoe-host"),
    ("private_key", "pk-material-4411"),
]

# OTEL_RESOURCE_ATTRIBUTES a machine might carry.
RESOURCE = {
    "host.name": "laptop-of-yuri",
    "host.id": "hostid-yuri-123",
    "user.name": "yuri-resource",
    "process.owner": "yuri-owner",
    "deployment.environment": "yuri-env-secret",
}

# Lines as tools print them, each with one piece of personal data inside.
MIXED = [
    ("kim.lee@example.net", "Traceback hint: contact kim.lee@example.net for access"),
    ("/home/lmn", "PermissionError: [Errno 13] Permission denied: '/home/lmn/.config/tool.yaml'"),
    ("opqrst", "OSError: [WinError 3] C:\\Users\\opqrst\\tool\\cache"),
    ("10.9.8.7", "ConnectionError: HTTPConnectionPool(host='10.9.8.7', port=80)"),
    ("rst_pw_55", "mlflow uri https://rst:rst_pw_55@mlflow.example.com"),
    ("uvw@example.com", "git config user.email uvw@example.com"),
    ("/Users/xyz", "xcrun: error: invalid active developer path (/Users/xyz/Library)"),
    ("4012888888881881", "stripe test card 4012888888881881 declined"),
    (
        "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",
        "huggingface-cli login --token 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",
    ),
    ("AKIAJ7Q2EXAMPLEKEY12", "export AWS_ACCESS_KEY_ID=AKIAJ7Q2EXAMPLEKEY12"),
    ("8.8.4.4", "dns 8.8.4.4 unreachable"),
    ("ab:cd:ef:01:23:45", "ether ab:cd:ef:01:23:45 txqueuelen 1000"),
    ("/home/qa-user", "wandb: run files in /home/qa-user/wandb/run-1"),
    ("nina@ml.example", "Signed-off-by: Nina <nina@ml.example>"),
    ("oscar", "Loading /home/oscar/miniconda3/envs/yolo/lib/libcudart.so"),
    ("pamela", "~pamela/.ssh/id_rsa not found"),
    ("198.51.100.14", "proxy 198.51.100.14 refused"),
    ("2001:db8::42", "listening on 2001:db8::42 port 22"),
    (
        "ghs_abcdefghijklmnopqrstuvwxyz0123456789ab",
        "GITHUB_TOKEN=ghs_abcdefghijklmnopqrstuvwxyz0123456789ab",
    ),
    ("xoxa-2-abcdefghij-klmnop", "slack app token xoxa-2-abcdefghij-klmnop"),
    ("quinn", "C:\\Users\\quinn\\.keras\\models"),
    ("hunter3", "pip install --index-url https://u:hunter3@pypi.example.com/simple pkg"),
    ("rachel@example.com", "rachel@example.com"),
    ("/Users/sam", "/Users/sam"),
    ("5105105105105100", "mc 5105105105105100"),
]
# The OS user name of the emitting process (the test sets LOGNAME/USER to it):
# scrubbed wherever it appears, even outside a home folder path.
LOCAL_USER = "ursulak"
MIXED += [
    (LOCAL_USER, f"run by {LOCAL_USER} on the build box"),
    (LOCAL_USER, f"/srv/shared/{LOCAL_USER}/checkpoints/last.ckpt"),
]

for needle, text in MIXED:
    LEAKS.append((text, [needle]))
