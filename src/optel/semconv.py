"""The OpenTelemetry semantic-convention attributes optel knows, each with a kind.

What OpenTelemetry instrumentations record (requests, urllib3, sqlite3,
click, logging, pytest-opentelemetry, ...) is sent with no configuration
when it says *what kind of work* happened: HTTP method, status code, route
template and URL scheme; database system, operation, collection and query
with its literals replaced; RPC system, service and method; messaging system
and operation; exit code; error type; GenAI system, model and token counts;
code function names. Each key has a kind (:mod:`optel.kinds`): a closed
set, a number, a label, a version, a name, or a reduction that keeps the
useful part of a value that says *who or where* (a full URL becomes its
scheme and route template, a query its statement with every literal
replaced, a source path its module-relative location; see
:mod:`optel.anonymize.reduce`). Keys that only say who or where (server and
client addresses, peer names, user agents, URL queries, command lines,
owners, process ids) are not here: they are never sent.

Both generations of names are listed (``http.method`` and
``http.request.method``, ``db.statement`` and ``db.query.text``, ...):
instrumentations send the old ones unless ``OTEL_SEMCONV_STABILITY_OPT_IN``
asks for the new ones (:data:`RENAMED` pairs them).

Each key names the constant of the ``opentelemetry-semantic-conventions``
package it stands for (:data:`CHECKED_AGAINST` is the version), and each
closed set the enum it copies (:data:`ENUMS`). ``tests/unit/test_semconv.py``
checks them against the installed package, so an upgrade that renames a key
or a value fails a test instead of silently dropping data. The package is
never imported here: this table is plain data, read lazily by the
anonymizer and the gateway generator (:func:`optel.kinds.semconv_keys`).

A kind is named by a string (``"label"``, ``"number"``, ``"bool"``,
``"version"``, ``"name"``, ``"path"``, ``"url"``, ``"route"``,
``"statement"``, ``"location"``, ``"stacktrace"``) or given as a tuple of
the values of a closed set.
"""

from __future__ import annotations

CHECKED_AGAINST = "0.66b1"
"""The opentelemetry-semantic-conventions version the constants were checked against."""

_HTTP_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
                 "_OTHER")  # fmt: skip
_S = "attributes."  # stable: opentelemetry.semconv.attributes.<module>.<NAME>
_I = "_incubating.attributes."  # incubating and deprecated (old) names

REGISTRY: tuple[tuple[str, object, str | None, str], ...] = (
    # -- HTTP -------------------------------------------------------------------------------
    ("http.request.method", _HTTP_METHODS, _S + "http_attributes.HTTP_REQUEST_METHOD",
     "HTTP request method"),
    ("http.request.method_original", "label", _S + "http_attributes.HTTP_REQUEST_METHOD_ORIGINAL",
     "the method as sent, when it is none of the known ones"),
    ("http.response.status_code", "number", _S + "http_attributes.HTTP_RESPONSE_STATUS_CODE",
     "HTTP response status code"),
    ("http.request.resend_count", "number", _S + "http_attributes.HTTP_REQUEST_RESEND_COUNT",
     "how many times the request was sent again"),
    ("http.request.body.size", "number", _I + "http_attributes.HTTP_REQUEST_BODY_SIZE",
     "request body size in bytes"),
    ("http.response.body.size", "number", _I + "http_attributes.HTTP_RESPONSE_BODY_SIZE",
     "response body size in bytes"),
    ("http.route", "route", _S + "http_attributes.HTTP_ROUTE", "the matched route template"),
    ("url.scheme", "label", _S + "url_attributes.URL_SCHEME", "URL scheme: http, https"),
    ("url.full", "url", _S + "url_attributes.URL_FULL",
     "the URL as scheme, public host or <host> and route template"),
    ("url.path", "route", _S + "url_attributes.URL_PATH", "the URL path as a route template"),
    ("url.template", "route", _I + "url_attributes.URL_TEMPLATE", "the URL's route template"),
    ("network.protocol.name", "label", _S + "network_attributes.NETWORK_PROTOCOL_NAME",
     "application protocol: http, amqp"),
    ("network.protocol.version", "version", _S + "network_attributes.NETWORK_PROTOCOL_VERSION",
     "application protocol version: 1.1, 2"),
    ("network.transport", ("pipe", "quic", "tcp", "udp", "unix"),
     _S + "network_attributes.NETWORK_TRANSPORT", "transport: tcp, udp, ..."),
    ("network.type", ("ipv4", "ipv6"), _S + "network_attributes.NETWORK_TYPE",
     "network layer: ipv4 or ipv6"),
    # the names before HTTP semantic conventions were stable
    ("http.method", _HTTP_METHODS, _I + "http_attributes.HTTP_METHOD", "HTTP request method (old name)"),
    ("http.status_code", "number", _I + "http_attributes.HTTP_STATUS_CODE",
     "HTTP response status code (old name)"),
    ("http.scheme", "label", _I + "http_attributes.HTTP_SCHEME", "URL scheme (old name)"),
    ("http.flavor", ("1.0", "1.1", "2.0", "3.0", "QUIC", "SPDY"), _I + "http_attributes.HTTP_FLAVOR",
     "HTTP version (old name)"),
    ("http.url", "url", _I + "http_attributes.HTTP_URL",
     "the URL as scheme, public host or <host> and route template (old name)"),
    ("http.target", "route", _I + "http_attributes.HTTP_TARGET",
     "the request target as a route template (old name)"),
    ("http.request_content_length", "number", _I + "http_attributes.HTTP_REQUEST_CONTENT_LENGTH",
     "request body size (old name)"),
    ("http.response_content_length", "number", _I + "http_attributes.HTTP_RESPONSE_CONTENT_LENGTH",
     "response body size (old name)"),
    # -- errors and processes -------------------------------------------------------------
    ("error.type", "label", _S + "error_attributes.ERROR_TYPE",
     "the class of error: an exception type, a status code, timeout"),
    ("process.exit.code", "number", _I + "process_attributes.PROCESS_EXIT_CODE",
     "the process's exit code"),
    # -- databases --------------------------------------------------------------------------
    ("db.system.name", "label", _S + "db_attributes.DB_SYSTEM_NAME", "database system: sqlite, postgresql"),
    ("db.operation.name", "name", _S + "db_attributes.DB_OPERATION_NAME", "database operation: SELECT"),
    ("db.collection.name", "label", _S + "db_attributes.DB_COLLECTION_NAME", "table or collection"),
    ("db.query.text", "statement", _S + "db_attributes.DB_QUERY_TEXT",
     "the query with every literal replaced by ?"),
    ("db.query.summary", "name", _S + "db_attributes.DB_QUERY_SUMMARY", "the query's summary: SELECT users"),
    ("db.namespace", "path", _S + "db_attributes.DB_NAMESPACE",
     "what the database is (its path kind), never its name"),
    ("db.response.status_code", "label", _S + "db_attributes.DB_RESPONSE_STATUS_CODE",
     "the database's status code"),
    ("db.operation.batch.size", "number", _S + "db_attributes.DB_OPERATION_BATCH_SIZE",
     "operations in a batch"),
    ("db.stored_procedure.name", "label", _S + "db_attributes.DB_STORED_PROCEDURE_NAME",
     "stored procedure called"),
    ("db.system", "label", _I + "db_attributes.DB_SYSTEM", "database system (old name)"),
    ("db.operation", "name", _I + "db_attributes.DB_OPERATION", "database operation (old name)"),
    ("db.sql.table", "label", _I + "db_attributes.DB_SQL_TABLE", "table (old name)"),
    ("db.statement", "statement", _I + "db_attributes.DB_STATEMENT",
     "the query with every literal replaced by ? (old name)"),
    ("db.name", "path", _I + "db_attributes.DB_NAME",
     "what the database is (its path kind), never its name (old name)"),
    # -- RPC ------------------------------------------------------------------------------
    ("rpc.system", "label", _I + "rpc_attributes.RPC_SYSTEM", "RPC system: grpc, jsonrpc"),
    ("rpc.system.name", "label", _I + "rpc_attributes.RPC_SYSTEM_NAME", "RPC system"),
    ("rpc.service", "name", _I + "rpc_attributes.RPC_SERVICE", "RPC service"),
    ("rpc.method", "name", _I + "rpc_attributes.RPC_METHOD", "RPC method"),
    ("rpc.grpc.status_code", "number", _I + "rpc_attributes.RPC_GRPC_STATUS_CODE", "gRPC status code"),
    ("rpc.response.status_code", "label", _I + "rpc_attributes.RPC_RESPONSE_STATUS_CODE",
     "RPC status code"),
    ("rpc.jsonrpc.error_code", "number", _I + "rpc_attributes.RPC_JSONRPC_ERROR_CODE",
     "JSON-RPC error code"),
    ("rpc.jsonrpc.version", "version", _I + "rpc_attributes.RPC_JSONRPC_VERSION", "JSON-RPC version"),
    # -- messaging ------------------------------------------------------------------------
    ("messaging.system", "label", _I + "messaging_attributes.MESSAGING_SYSTEM", "messaging system: kafka"),
    ("messaging.operation.type",
     ("create", "deliver", "process", "publish", "receive", "send", "settle"),
     _I + "messaging_attributes.MESSAGING_OPERATION_TYPE", "messaging operation"),
    ("messaging.operation.name", "label", _I + "messaging_attributes.MESSAGING_OPERATION_NAME",
     "the system's name of the operation"),
    ("messaging.operation", ("process", "publish", "receive"),
     _I + "messaging_attributes.MESSAGING_OPERATION", "messaging operation (old name)"),
    ("messaging.batch.message_count", "number",
     _I + "messaging_attributes.MESSAGING_BATCH_MESSAGE_COUNT", "messages in a batch"),
    # -- GenAI ----------------------------------------------------------------------------
    ("gen_ai.provider.name", "label", _I + "gen_ai_attributes.GEN_AI_PROVIDER_NAME",
     "GenAI provider: openai, anthropic"),
    ("gen_ai.system", "label", _I + "gen_ai_attributes.GEN_AI_SYSTEM", "GenAI provider (old name)"),
    ("gen_ai.operation.name", "label", _I + "gen_ai_attributes.GEN_AI_OPERATION_NAME",
     "GenAI operation: chat, embeddings"),
    ("gen_ai.request.model", "label", _I + "gen_ai_attributes.GEN_AI_REQUEST_MODEL", "model asked for"),
    ("gen_ai.response.model", "label", _I + "gen_ai_attributes.GEN_AI_RESPONSE_MODEL",
     "model that answered"),
    ("gen_ai.request.max_tokens", "number", _I + "gen_ai_attributes.GEN_AI_REQUEST_MAX_TOKENS",
     "token limit asked for"),
    ("gen_ai.request.temperature", "number", _I + "gen_ai_attributes.GEN_AI_REQUEST_TEMPERATURE",
     "temperature"),
    ("gen_ai.request.top_p", "number", _I + "gen_ai_attributes.GEN_AI_REQUEST_TOP_P", "top_p"),
    ("gen_ai.response.finish_reasons", "label",
     _I + "gen_ai_attributes.GEN_AI_RESPONSE_FINISH_REASONS", "why the model stopped"),
    ("gen_ai.usage.input_tokens", "number", _I + "gen_ai_attributes.GEN_AI_USAGE_INPUT_TOKENS",
     "input tokens"),
    ("gen_ai.usage.output_tokens", "number", _I + "gen_ai_attributes.GEN_AI_USAGE_OUTPUT_TOKENS",
     "output tokens"),
    ("gen_ai.usage.prompt_tokens", "number", _I + "gen_ai_attributes.GEN_AI_USAGE_PROMPT_TOKENS",
     "input tokens (old name)"),
    ("gen_ai.usage.completion_tokens", "number",
     _I + "gen_ai_attributes.GEN_AI_USAGE_COMPLETION_TOKENS", "output tokens (old name)"),
    ("gen_ai.token.type", ("input", "output"), _I + "gen_ai_attributes.GEN_AI_TOKEN_TYPE",
     "token type of a token-usage metric"),
    # -- code ------------------------------------------------------------------------------
    ("code.function.name", "name", _S + "code_attributes.CODE_FUNCTION_NAME", "the function"),
    ("code.line.number", "number", _S + "code_attributes.CODE_LINE_NUMBER", "the line"),
    ("code.column.number", "number", _S + "code_attributes.CODE_COLUMN_NUMBER", "the column"),
    ("code.file.path", "location", _S + "code_attributes.CODE_FILE_PATH",
     "the source file as a module-relative location, or <user-code>"),
    ("code.stacktrace", "stacktrace", _S + "code_attributes.CODE_STACKTRACE", "frames only"),
    ("code.namespace", "name", _I + "code_attributes.CODE_NAMESPACE", "the function's namespace (old name)"),
    ("code.filepath", "location", _I + "code_attributes.CODE_FILEPATH",
     "the source file as a module-relative location, or <user-code> (old name)"),
    ("code.column", "number", _I + "code_attributes.CODE_COLUMN", "the column (old name)"),
    # -- status and telemetry ------------------------------------------------------
    ("otel.status_code", ("ERROR", "OK"), _S + "otel_attributes.OTEL_STATUS_CODE",
     "span status, where a format has no status field"),
    ("telemetry.distro.name", "label", _I + "telemetry_attributes.TELEMETRY_DISTRO_NAME",
     "the OpenTelemetry distribution"),
    ("telemetry.distro.version", "version", _I + "telemetry_attributes.TELEMETRY_DISTRO_VERSION",
     "its version"),
    ("telemetry.auto.version", "version", "resource.ResourceAttributes.TELEMETRY_AUTO_VERSION",
     "opentelemetry-instrument's version (old name)"),
    # -- keys of instrumentations that are not semantic conventions -----------------------
    ("pytest.nodeid", "name", None, "pytest-opentelemetry: the test's id (test_x.py::test_ok)"),
    ("pytest.span_type", ("call", "fixture", "run", "setup", "teardown", "test"), None,
     "pytest-opentelemetry: what the span covers"),
    ("pytest.fixture_scope", ("class", "function", "module", "package", "session"), None,
     "pytest-opentelemetry: a fixture's scope"),
)  # fmt: skip
"""(key, kind, constant of opentelemetry.semconv it stands for or None, what it is)."""

ENUMS: dict[str, str] = {
    "http.request.method": _S + "http_attributes.HttpRequestMethodValues",
    "http.method": _S + "http_attributes.HttpRequestMethodValues",
    "http.flavor": _I + "http_attributes.HttpFlavorValues",
    "network.transport": _S + "network_attributes.NetworkTransportValues",
    "network.type": _S + "network_attributes.NetworkTypeValues",
    "messaging.operation.type": _I + "messaging_attributes.MessagingOperationTypeValues",
    "gen_ai.token.type": _I + "gen_ai_attributes.GenAiTokenTypeValues",
    "otel.status_code": _S + "otel_attributes.OtelStatusCodeValues",
}
"""Closed sets copied from an enum of the package (checked like the constants)."""

RENAMED: tuple[tuple[str, str], ...] = (
    ("http.method", "http.request.method"),
    ("http.status_code", "http.response.status_code"),
    ("http.scheme", "url.scheme"),
    ("http.flavor", "network.protocol.version"),
    ("http.url", "url.full"),
    ("http.target", "url.path"),
    ("http.request_content_length", "http.request.body.size"),
    ("http.response_content_length", "http.response.body.size"),
    ("db.system", "db.system.name"),
    ("db.operation", "db.operation.name"),
    ("db.sql.table", "db.collection.name"),
    ("db.statement", "db.query.text"),
    ("db.name", "db.namespace"),
    ("rpc.system", "rpc.system.name"),
    ("messaging.operation", "messaging.operation.type"),
    ("gen_ai.system", "gen_ai.provider.name"),
    ("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
    ("gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens"),
    ("code.function", "code.function.name"),
    ("code.lineno", "code.line.number"),
    ("code.filepath", "code.file.path"),
    ("code.column", "code.column.number"),
    ("telemetry.auto.version", "telemetry.distro.version"),
)
"""(old name, new name): both are sent, each with its kind."""

NEVER: tuple[tuple[str, str | None], ...] = (
    ("server.address", _S + "server_attributes.SERVER_ADDRESS"),
    ("server.port", _S + "server_attributes.SERVER_PORT"),
    ("client.address", _S + "client_attributes.CLIENT_ADDRESS"),
    ("network.peer.address", _S + "network_attributes.NETWORK_PEER_ADDRESS"),
    ("net.peer.name", _I + "net_attributes.NET_PEER_NAME"),
    ("net.peer.port", _I + "net_attributes.NET_PEER_PORT"),
    ("http.host", _I + "http_attributes.HTTP_HOST"),
    ("http.user_agent", _I + "http_attributes.HTTP_USER_AGENT"),
    ("user_agent.original", _S + "user_agent_attributes.USER_AGENT_ORIGINAL"),
    ("url.query", _S + "url_attributes.URL_QUERY"),
    ("db.user", _I + "db_attributes.DB_USER"),
    ("db.connection_string", _I + "db_attributes.DB_CONNECTION_STRING"),
    ("process.command_args", _I + "process_attributes.PROCESS_COMMAND_ARGS"),
    ("process.command_line", _I + "process_attributes.PROCESS_COMMAND_LINE"),
    ("process.executable.name", _I + "process_attributes.PROCESS_EXECUTABLE_NAME"),
    ("process.executable.path", _I + "process_attributes.PROCESS_EXECUTABLE_PATH"),
    ("process.owner", _I + "process_attributes.PROCESS_OWNER"),
    ("process.pid", _I + "process_attributes.PROCESS_PID"),
    ("service.instance.id", _I + "service_attributes.SERVICE_INSTANCE_ID"),
    ("enduser.id", _I + "enduser_attributes.ENDUSER_ID"),
)
"""Keys that only say who or where: not in the table above, and denied even when
a tool declares them (:func:`optel.anonymize.keys.denied`; the tests check both,
and that each is the package's key)."""
