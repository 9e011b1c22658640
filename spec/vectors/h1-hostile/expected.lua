-- What an aiohttp-like client must make of each hostile response that
-- spec/loopback/hostile_responses_spec.lua replays: one row per case, the case id
-- first ("llhttp/<file>/<heading>" for llhttp-response/<file>.md,
-- "curl/testN" for curl-tests/testN), then either
--   ok = status     with body = exact body (or body_len = its length),
--                   and headers = { name = first value } and reason = where
--                   the case is about them; reuse = true: the peer keeps the
--                   connection open and a second request must go out on it
--   err = kind      an error kind of lua/lurl/errors.lua
-- why = ...  wherever the row departs from llhttp 9 (an error there and not
-- here, or the reverse, or a case llhttp runs in a lenient mode) or from
-- curl's exit code (8 and 100: ClientResponseError, 18, 56 and 61:
-- ClientPayloadError, 47: TooManyRedirects, 52: ServerDisconnectedError);
-- note = ... how a curl test was replayed where curl used options lurl has
-- not. The peer closes after an llhttp case's bytes (unless reuse); it
-- answers a curl test as curl's test server does (closing only after a
-- reply that says "swsclose", or an empty one).
local CRE, CPE = "ClientResponseError", "ClientPayloadError"
local SDE, TMR = "ServerDisconnectedError", "TooManyRedirects"

local BARE_LF = "lines end in a bare LF: llhttp 9 wants CRLF unless lenient, but RFC 9112 section 2.2 lets a "
  .. "recipient take a bare LF as a line end, and aiohttp (lenient_optional_cr_before_lf) and curl do"
local LENIENT = "llhttp accepts this only in a lenient mode; "
local AFTER_CLOSE = "llhttp 9 reports the bytes after a Connection: close response as an error; the response "
  .. "itself is complete, and a client only drops the connection (aiohttp, curl)"
local NOT_CHUNKED_LAST = "RFC 9112 section 6.3 rule 4 would read this body until the close, but a client "
  .. "undoes no transfer coding besides chunked (section 6.1): lurl refuses the head, as curl does"
local OTHER_CODING = "a transfer coding other than chunked, which lurl never asks for and cannot undo "
  .. "(RFC 9112 section 6.1), makes the head malformed; curl reports it as a bad encoding (61)"
local NO_RTSP = "llhttp also parses RTSP and ICE; an HTTP client takes only HTTP/1.x"
local UNASKED_101 = "a 101 Switching Protocols to a request that sent no Upgrade (RFC 9110 section 15.2.2): "
  .. "what follows is not HTTP/1.1, so the response is malformed; llhttp pauses there for the caller"
local WEBSOCKET = "curl opens a WebSocket (ws://) and fails on the hostile frame (56); lurl has no WebSocket "
  .. "client: its plain GET gets a 101 it did not ask for (RFC 9110 section 15.2.2), a malformed response"
local WEBSOCKET_NOTE = "curl fetches ws://; replayed as a plain HTTP GET"
local HEAD_LIMITS = "a head past lurl's limits (1000 fields, 8190 bytes a line or field) is a malformed "
  .. "response, as aiohttp's LineTooLong is; curl stops at its own total (56)"
local TUNNEL = "curl asks a proxy for a CONNECT tunnel; lurl has no proxy, so the CONNECT answer is replayed "
  .. "as the answer to a plain GET"

return {
  -- llhttp test/response/connection.md
  { "llhttp/connection/Proxy-Connection", ok = 200, body = "hello world" },
  { "llhttp/connection/HTTP/1.0 with keep-alive and EOF-terminated 200 status", ok = 200, body = "HTTP/1.0 200 OK" },
  { "llhttp/connection/HTTP/1.0 with keep-alive and 204 status", ok = 204, body = "" },
  { "llhttp/connection/HTTP/1.1 with EOF-terminated 200 status", ok = 200, body = "HTTP/1.1 200 OK" },
  { "llhttp/connection/HTTP/1.1 with 204 status", ok = 204, body = "" },
  { "llhttp/connection/HTTP/1.1 with keep-alive disabled and 204 status", ok = 204, body = "", why = AFTER_CLOSE },
  { "llhttp/connection/HTTP/1.1 with keep-alive disabled, content-length (lenient)", ok = 200, body = "2ad73",
    why = LENIENT .. "lurl needs none: the body ends at its Content-Length and the rest goes with the connection" },
  { "llhttp/connection/HTTP/1.1 with keep-alive disabled, content-length", ok = 200, body = "2ad73",
    why = AFTER_CLOSE },
  { "llhttp/connection/HTTP/1.1 with keep-alive disabled and 204 status (lenient)", ok = 204, body = "",
    why = LENIENT .. "lurl needs none: the 204 ends at its head and the rest goes with the connection" },
  { "llhttp/connection/HTTP 101 response with Upgrade and Content-Length header", err = CRE, why = UNASKED_101 },
  { "llhttp/connection/HTTP 101 response with Upgrade and Transfer-Encoding header", err = CRE, why = UNASKED_101 },
  { "llhttp/connection/HTTP 200 response with Upgrade header", ok = 200, body = "body" },
  { "llhttp/connection/HTTP 200 response with Upgrade header and Content-Length", ok = 200, body = "body" },
  { "llhttp/connection/HTTP 200 response with Upgrade header and Transfer-Encoding", ok = 200, body = "body" },
  { "llhttp/connection/HTTP 304 with Content-Length", ok = 304, body = "" },
  { "llhttp/connection/HTTP 304 with Transfer-Encoding", ok = 304, body = "" },
  { "llhttp/connection/HTTP 100 first, then 400", ok = 404, body = "404: Not Found" },
  { "llhttp/connection/HTTP 103 first, then 200", err = CPE,
    why = "the vector's body is 16 bytes for a Content-Length of 17 (llhttp logs no message complete); "
      .. "the peer then closes: the body is incomplete" },

  -- content-length.md
  { "llhttp/content-length/Response without `Content-Length`, but with body", ok = 200, body_len = 317 },
  { "llhttp/content-length/Content-Length-X", ok = 200, body = "OK", headers = { ["content-length-x"] = "0" },
    reuse = true },
  -- llhttp is told to skip the body here, as for a response to HEAD: replayed to a HEAD
  { "llhttp/content-length/Content-Length reset when no body is received", ok = 200, body = "" },
  { "llhttp/content-length/Tabs in `Content-Length` (surrounding)", err = CRE,
    why = "stricter than llhttp 9: tabs are optional whitespace around the value (RFC 9110 section 5.5), but "
      .. "llhttp 8.1 refuses them in Content-Length, and a length lurl is not sure of is no length to frame by" },

  -- finish.md
  { "llhttp/finish/It should be safe to finish with cb after empty response", ok = 200, body = "" },

  -- invalid.md
  { "llhttp/invalid/Incomplete HTTP protocol", err = CRE },
  { "llhttp/invalid/Extra digit in HTTP major version", err = CRE },
  { "llhttp/invalid/Extra digit in HTTP major version #2", err = CRE },
  { "llhttp/invalid/Extra digit in HTTP minor version", err = CRE },
  { "llhttp/invalid/Tab after HTTP version", err = CRE },
  { "llhttp/invalid/CR before response and tab after HTTP version", err = CRE },
  { "llhttp/invalid/Headers separated by CR", err = CRE },
  { "llhttp/invalid/Bare CR after response line", err = CRE },
  { "llhttp/invalid/Bare CR after response line (lenient)", err = CRE,
    why = LENIENT .. "a bare CR is invalid in a head (RFC 9112 section 2.2) and lurl is not lenient there" },
  { "llhttp/invalid/Bare CR followed by CR after response line", err = CRE },
  { "llhttp/invalid/Invalid HTTP version", err = CRE },
  { "llhttp/invalid/Invalid space after start line", err = CRE },
  { "llhttp/invalid/Extra space between HTTP version and status code", err = CRE },
  { "llhttp/invalid/Extra space between status code and reason", ok = 200, body = "" },
  { "llhttp/invalid/One-digit status code", err = CRE },
  { "llhttp/invalid/Only LFs present and no body", ok = 200, body = "", why = BARE_LF },
  { "llhttp/invalid/Only LFs present and no body (lenient)", ok = 200, body = "", why = LENIENT .. BARE_LF },
  { "llhttp/invalid/Only LFs present", ok = 200, body = "BODY\n\\", why = BARE_LF },
  { "llhttp/invalid/Only LFs present (lenient)", ok = 200, body = "BODY\n\\", why = LENIENT .. BARE_LF },

  -- lenient-version.md
  { "llhttp/lenient-version/Invalid HTTP version (lenient)", err = CRE,
    why = LENIENT .. "an HTTP/1.1 client has no meaning for HTTP/5.6" },

  -- pausing.md: where llhttp's caller pauses makes no difference on the wire
  { "llhttp/pausing/on_message_begin", ok = 200, body = "abc", reuse = true },
  { "llhttp/pausing/on_message_complete", ok = 200, body = "abc" },
  { "llhttp/pausing/on_version_complete", ok = 200, body = "abc" },
  { "llhttp/pausing/on_status_complete", ok = 200, body = "abc" },
  { "llhttp/pausing/on_header_field_complete", ok = 200, body = "abc" },
  { "llhttp/pausing/on_header_value_complete", ok = 200, body = "abc" },
  { "llhttp/pausing/on_headers_complete", ok = 200, body = "abc" },
  { "llhttp/pausing/on_chunk_header", ok = 200, body = "0123456789", reuse = true },
  { "llhttp/pausing/on_chunk_extension_name", ok = 200, body = "0123456789" },
  { "llhttp/pausing/on_chunk_extension_value", ok = 200, body = "0123456789" },
  { "llhttp/pausing/on_chunk_complete", ok = 200, body = "0123456789" },

  -- pipelining.md: one request, so the responses after the first are not asked for
  { "llhttp/pipelining/Should parse multiple events", ok = 200, body = "AAA" },

  -- sample.md
  { "llhttp/sample/Simple response", ok = 200, body = "", headers = { header1 = "Value1", header2 = "Value2" },
    reuse = true },
  { "llhttp/sample/RTSP response", err = CRE, why = NO_RTSP },
  { "llhttp/sample/ICE response", err = CRE, why = NO_RTSP },
  { "llhttp/sample/Error on invalid response start", err = CRE },
  { "llhttp/sample/Empty body should not trigger spurious span callbacks", ok = 200, body = "" },
  { "llhttp/sample/Google 301", err = CPE,
    why = "the vector's body is 213 bytes for a Content-Length of 219 (llhttp logs no message complete); "
      .. "the peer closes: the body is incomplete" },
  { "llhttp/sample/amazon.com", ok = 301, body = "\n", reuse = true },
  { "llhttp/sample/No headers and no body", ok = 404, body = "" },
  { "llhttp/sample/No reason phrase", ok = 301, body = "", reason = "" },
  { "llhttp/sample/Empty reason phrase after space", ok = 200, body = "", reason = "" },
  { "llhttp/sample/No carriage ret", ok = 200, body = "these headers are from http://news.ycombinator.com/",
    why = BARE_LF },
  { "llhttp/sample/No carriage ret (lenient)", ok = 200, body = "these headers are from http://news.ycombinator.com/",
    why = LENIENT .. BARE_LF },
  { "llhttp/sample/Underscore in header key", ok = 200, body = "",
    headers = { dclk_imp = "v7;x;114750856;0-0;0;17820020;0/0;21603567/21621457/1;;~okv=;dcmt=text/xml;;~cs=o" },
    reuse = true },
  { "llhttp/sample/bonjourmadame.fr", ok = 301, body = "",
    headers = { pragma = "", location = "http://www.bonjourmadame.fr/" } },
  { "llhttp/sample/Spaces in header value", ok = 200, body = "",
    headers = { [".et-cookie"] = "PlaxoCS=1274804622353690521; path=/; domain=.plaxo.com",
      _onnection = "Keep-Alive" } },
  { "llhttp/sample/Spaces in header name", err = CRE },
  { "llhttp/sample/Non ASCII in status line", ok = 500, body = "", reason = "Oriëntatieprobleem" },
  { "llhttp/sample/HTTP version 0.9", ok = 200, body = "" },
  { "llhttp/sample/No Content-Length, no Transfer-Encoding", ok = 200, body = "hello world" },
  { "llhttp/sample/Response starting with CRLF", ok = 200, body = "" },

  -- transfer-encoding.md
  { "llhttp/transfer-encoding/Trailing space on chunked body", err = CPE,
    why = "aiohttp takes spaces after a chunk size (lenient_spaces_after_chunk_size); RFC 9112 section 7.1 "
      .. "has whitespace there only before a ';', and lurl reads it as strictly as llhttp 9" },
  { "llhttp/transfer-encoding/`chunked` before other transfer-encoding", err = CRE, why = NOT_CHUNKED_LAST },
  { "llhttp/transfer-encoding/multiple transfer-encoding where chunked is not the last one", err = CRE,
    why = NOT_CHUNKED_LAST },
  { "llhttp/transfer-encoding/`chunkedchunked` transfer-encoding does not enable chunked enconding", err = CRE,
    why = NOT_CHUNKED_LAST },
  { "llhttp/transfer-encoding/Chunk extensions", ok = 200, body = "hello world", reuse = true },
  { "llhttp/transfer-encoding/No semicolon before chunk extensions", err = CPE },
  { "llhttp/transfer-encoding/No extension after semicolon", err = CPE },
  { "llhttp/transfer-encoding/Chunk extensions quoting", err = CPE,
    why = "the vector stops after the last-chunk line, without the CRLF that ends a chunked body (llhttp "
      .. "logs no message complete); the peer then closes: the body is incomplete" },
  { "llhttp/transfer-encoding/Unbalanced chunk extensions quoting", err = CPE },
  { "llhttp/transfer-encoding/Invalid OBS fold after chunked value", err = CRE,
    why = LENIENT .. "unfolded (RFC 9112 section 5.2) the value is 'chunked abc', a coding lurl cannot undo" },

  -- curl tests/data
  { "curl/test25", err = TMR },
  { "curl/test30", err = SDE },
  { "curl/test36", err = CPE },
  { "curl/test37", err = SDE },
  { "curl/test158", err = SDE, note = "curl POSTs a form (-F); replayed as a plain GET" },
  { "curl/test178", err = CRE },
  { "curl/test207", err = CPE },
  { "curl/test221", err = CPE },
  { "curl/test223", err = CPE },
  { "curl/test262", err = CRE },
  { "curl/test274", err = TMR },
  { "curl/test315", err = CPE },
  { "curl/test387", err = CRE, why = OTHER_CODING .. "; curl asked for it (--tr-encoding) and stops at the "
    .. "100-deep chain" },
  { "curl/test394", err = CRE },
  { "curl/test398", err = CRE },
  { "curl/test415", err = CRE },
  { "curl/test418", err = CRE, why = OTHER_CODING },
  { "curl/test471", err = CRE },
  { "curl/test497", err = CRE, why = HEAD_LIMITS },
  { "curl/test498", err = CRE, why = HEAD_LIMITS },
  { "curl/test580", ok = 302, body = "",
    why = "curl refuses a second Location field (8); lurl, like aiohttp, reads Location only to follow a "
      .. "redirect, and this request does not follow (no -L)" },
  { "curl/test747", err = CRE },
  { "curl/test768", err = CRE },
  { "curl/test771", err = CRE },
  { "curl/test772", ok = 200, body = "",
    why = "curl refuses a second Location field on any response (8); on a 200 Location means nothing to a "
      .. "client, and aiohttp ignores it" },
  { "curl/test1079", ok = 401, body = "This is not the real page\n",
    why = "curl answers the 401 with Digest credentials (--digest) and the server then sends nothing (52); "
      .. "lurl has no Digest authentication, so the 401 is the answer" },
  { "curl/test1144", err = CRE, note = "curl accepts HTTP/0.9 here (--http0.9); lurl never does" },
  { "curl/test1154", err = CRE },
  { "curl/test1416", err = CPE },
  { "curl/test1479", err = CRE },
  { "curl/test1480", err = CRE },
  { "curl/test1495", err = CRE,
    why = "a transfer coding after chunked (RFC 9112 section 6.1) beside a Content-Length: a malformed head; "
      .. "curl reports a bad encoding (61)" },
  { "curl/test1496", err = CRE, why = OTHER_CODING },
  { "curl/test1546", err = CRE, why = OTHER_CODING .. "; curl asked for it (--tr-encoding)" },
  { "curl/test1665", err = SDE,
    why = "curl counts a head cut short by the close as a partial transfer (18); for lurl a close inside "
      .. "the head is a ServerDisconnectedError" },
  { "curl/test1704", err = CRE, note = "curl asks for an h2c upgrade (--http2); replayed as a plain GET" },
  { "curl/test1715", err = CRE,
    why = "Content-Length beside Transfer-Encoding: chunked makes the head malformed (RFC 9112 sections 6.1 "
      .. "and 6.3); curl goes on and fails in the body (56)", note = TUNNEL },
  { "curl/test1722", err = CRE, why = OTHER_CODING },
  { "curl/test1723", err = CRE, why = OTHER_CODING },
  { "curl/test2093", err = CPE, note = "curl POSTs (-d); replayed as a plain GET" },
  { "curl/test2105", err = CRE },
  { "curl/test2106", err = CPE,
    why = "the NUL is in the trailer section, after the head: the chunked body is malformed, a "
      .. "ClientPayloadError (aiohttp too); curl calls any NUL a weird reply (8)" },
  { "curl/test2107", err = CRE, note = TUNNEL },
  { "curl/test2119", err = CRE, why = OTHER_CODING },
  { "curl/test2701", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2702", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2703", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2704", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2705", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2706", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2713", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2714", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2715", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2716", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2717", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2718", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2722", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
  { "curl/test2723", err = CRE, why = WEBSOCKET, note = WEBSOCKET_NOTE },
}
