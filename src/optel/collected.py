"""What an optel tool collects and never sends, in words: one source for the
opt-out notice (:mod:`optel.consent.notice`) and the generated "what we
collect" page (:mod:`optel.describe`), so the two cannot tell different
stories.

The words follow what the anonymizer does (:mod:`optel.anonymize`): declared
keys only, each in its kind; names as identifiers; failure reports as type
and module-relative frames; free text only when the tool opted in. A test
checks the notice's words against the page and the page against what
``optel show`` lists for a real run.
"""

from __future__ import annotations

SUMMARY = (
    "the commands you run, how long they take and whether they succeed, the type and"
    " code location of failures, and anonymous system facts such as the OS, the Python"
    " version and the CPU count"
)
"""What is collected, in one clause (the notice's first sentence, the page's "in short")."""

NEVER = (
    "file names or paths",
    "user or host names",
    "e-mail or IP addresses",
    "secrets",
    "anything it did not declare",
)
"""What is never sent, in short (the notice's second sentence)."""

MESSAGES = "messages or other free text"
"""Also never sent, unless the tool opted in to free text (``free_text=True``)."""

NEVER_DETAILS = (
    (
        "File names and paths",
        "a value declared as a path is sent as what it is (`file:.onnx@home`), never the path",
    ),
    (
        "User names, host names, e-mail and IP addresses",
        "keys naming a person, a machine or an address are dropped even when declared;"
        " values that look like one are not labels and are replaced",
    ),
    (
        "Secrets",
        "keys naming a password, token, key, cookie, session or credential are dropped"
        " even when declared",
    ),
    (
        "Anything not declared",
        "an attribute key the tool did not declare (and that is not one of optel's own) is"
        " dropped and counted",
    ),
    (
        "A hardware or account identifier",
        "records are grouped by a random id (a uuid4) made at the first grant and deleted"
        " by opt-out, never by anything derived from the machine",
    ),
)
"""What is never sent, one line each with why (the page's list)."""

MESSAGE_DETAILS = (
    "Messages and free text",
    "exception messages, log messages and span status descriptions are not sent; a"
    " failure is its type and module-relative code location (file, line, function)",
)
"""The page's line for free text when the tool did not opt in."""

FREE_TEXT_DETAILS = (
    "Messages and free text, as written",
    "this tool opted in to free text: exception and log messages are sent after"
    " pattern scrubbing replaced paths, addresses, names and secrets with placeholders",
)
"""The page's line for free text when the tool opted in."""


def never(free_text: bool = False) -> str:
    """The "never sent" sentence (items hold "or" themselves: semicolons part them)."""
    items = list(NEVER)
    if not free_text:
        items.insert(-1, MESSAGES)
    return f"Never sent: {'; '.join(items)}."


def in_short(app: str, free_text: bool = False, asking: bool = False) -> str:
    """What ``app`` collects and never sends, in two sentences: the opt-out
    notice's first line, the consent question's (``asking``) and the page's summary."""
    verb = "can send" if asking else "sends"
    return (
        f"{app} {verb} anonymous usage telemetry to help its authors improve it: {SUMMARY}."
        f" {never(free_text)}"
    )
