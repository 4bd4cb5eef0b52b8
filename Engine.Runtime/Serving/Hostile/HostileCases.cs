using System.Text;

namespace OServe.Engine.Serving.Hostile;

/// <summary>
/// One hostile request: the exact bytes sent, the status the server must answer, and the OpenAI
/// error field it must name (null: a request-level error with no field).
/// </summary>
public sealed record HostileCase(string Category, string Name, byte[] Request, int ExpectedStatus, string? ExpectedParam)
{
    public override string ToString() => $"{Category}/{Name}";
}

/// <summary>What the cases need to know of the server under test.</summary>
public sealed record HostileTarget(string Model, long MaxPromptBytes, int MaxModelLength, string? ApiKey);

/// <summary>
/// The hostile-input suite: bounded work (huge prompts, context-long id lists, absurd counts),
/// authentication, invalid Unicode in every string field (bytes and escapes), malformed JSON, and
/// malformed HTTP that Kestrel refuses itself. Shared by the tests and `oserve bench-hostile`.
/// </summary>
public static class HostileCases
{
    /// <summary>Invalid UTF-8 as raw bytes: a stray byte, an overlong '/', a lone continuation, a cut-off euro sign, an encoded surrogate.</summary>
    private static readonly (string Name, byte[] Bytes)[] BadUtf8 =
    [
        ("ff", [0xFF]), ("overlong", [0xC0, 0xAF]), ("continuation", [0x80]), ("truncated", [0xE2, 0x82]), ("encoded-surrogate", [0xED, 0xA0, 0x80]),
    ];

    /// <summary>Lone surrogates as JSON escapes (valid JSON, not valid text).</summary>
    private static readonly (string Name, string Escape)[] LoneSurrogates = [("high", "\\ud800"), ("low", "\\udc00"), ("reversed", "\\udc00\\ud800")];

    public static IReadOnlyList<HostileCase> All(HostileTarget target)
    {
        var cases = new List<HostileCase>();
        cases.AddRange(BoundedWork(target));
        if (target.ApiKey is not null)
            cases.AddRange(Auth(target));
        cases.AddRange(Unicode(target));
        cases.AddRange(MalformedJson(target));
        cases.AddRange(MalformedHttp(target));
        return cases;
    }

    private static IEnumerable<HostileCase> BoundedWork(HostileTarget t)
    {
        const string C = "bounded-work";
        var m = Json(t.Model);
        yield return Case(C, "prompt-25MB", t, "/v1/completions", $$"""{"model":{{m}},"prompt":"{{new string('a', 25 << 20)}}"}""", 413, null);
        string overLimit = new('a', (int)Math.Min(t.MaxPromptBytes + 1, 64 << 20));
        // The longest prompt the byte check lets through, as one word: tokenized in full (a tokenizer
        // that is quadratic in a word's length spent minutes here), then too long for the context.
        yield return Case(C, "prompt-one-word-at-byte-limit", t, "/v1/completions",
            $$"""{"model":{{m}},"prompt":"{{new string('a', (int)Math.Min(t.MaxPromptBytes, 64 << 20))}}"}""", 400, "prompt");
        yield return Case(C, "prompt-over-byte-limit", t, "/v1/completions", $$"""{"model":{{m}},"prompt":"{{overLimit}}"}""", 400, "prompt");
        yield return Case(C, "chat-over-byte-limit", t, "/v1/chat/completions",
            $$"""{"model":{{m}},"messages":[{"role":"user","content":"{{overLimit}}"}]}""", 400, "messages");
        yield return Case(C, "tokenize-over-byte-limit", t, "/tokenize", $$"""{"prompt":"{{overLimit}}"}""", 400, "prompt");
        string ids = string.Join(",", Enumerable.Repeat("5", t.MaxModelLength + 1));
        yield return Case(C, "token-ids-over-context", t, "/v1/completions", $$"""{"model":{{m}},"prompt":[{{ids}}]}""", 400, "prompt");
        yield return Case(C, "max-tokens-1e9", t, "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi","max_tokens":1000000000}""", 400, "max_tokens");
        yield return Case(C, "n-1000", t, "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi","n":1000}""", 400, "n");
        yield return Case(C, "best-of-1000", t, "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi","best_of":1000}""", 400, "best_of");
        yield return Case(C, "logprobs-1000", t, "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi","logprobs":1000}""", 400, "logprobs");
        yield return Case(C, "top-logprobs-1000", t, "/v1/chat/completions",
            $$"""{"model":{{m}},"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":1000}""", 400, "top_logprobs");
        yield return Case(C, "json-nested-10000", t, "/v1/completions", new string('[', 10_000) + new string(']', 10_000), 400, null);
        yield return Case(C, "stop-list-100k", t, "/v1/completions",
            $$"""{"model":{{m}},"prompt":"Hi","stop":[{{string.Join(",", Enumerable.Repeat("\"\"", 100_000))}}]}""", 400, "stop[0]");
    }

    private static IEnumerable<HostileCase> Auth(HostileTarget t)
    {
        const string C = "auth";
        var noKey = t with { ApiKey = null };
        var wrongKey = t with { ApiKey = t.ApiKey + "x" };
        var m = Json(t.Model);
        yield return Case(C, "completions-without-key", noKey, "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi"}""", 401, null);
        yield return Case(C, "tokenize-without-key", noKey, "/tokenize", """{"prompt":"Hi"}""", 401, null);
        yield return new HostileCase(C, "metrics-without-key", Get("/metrics", null), 401, null);
        yield return new HostileCase(C, "models-with-wrong-key", Get("/v1/models", wrongKey.ApiKey), 401, null);
        yield return new HostileCase(C, "unknown-route-without-key", Get("/admin", null), 401, null);
        yield return Case(C, "tokenize-with-wrong-key", wrongKey, "/tokenize", """{"prompt":"Hi"}""", 401, null);
    }

    private static IEnumerable<HostileCase> Unicode(HostileTarget t)
    {
        const string C = "unicode";
        var m = Json(t.Model);
        // Each field where a client's text lands; @@ marks where the bad text goes.
        (string Field, string Path, string Body)[] places =
        [
            ("prompt", "/v1/completions", $$"""{"model":{{m}},"prompt":"a@@b","max_tokens":1}"""),
            ("model", "/v1/completions", """{"model":"a@@b","prompt":"Hi","max_tokens":1}"""),
            ("stop", "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi","stop":"a@@b","max_tokens":1}"""),
            ("stop[1]", "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi","stop":["ok","a@@b"],"max_tokens":1}"""),
            ("messages[0].content", "/v1/chat/completions", $$"""{"model":{{m}},"messages":[{"role":"user","content":"a@@b"}],"max_tokens":1}"""),
            ("messages[0].role", "/v1/chat/completions", $$"""{"model":{{m}},"messages":[{"role":"u@@ser","content":"Hi"}],"max_tokens":1}"""),
            ("messages[0].content[0].text", "/v1/chat/completions",
                $$"""{"model":{{m}},"messages":[{"role":"user","content":[{"type":"text","text":"a@@b"}]}],"max_tokens":1}"""),
            ("prompt", "/tokenize", """{"prompt":"a@@b"}"""),
            ("user", "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi","user":"a@@b","max_tokens":1}"""),
        ];
        foreach (var (field, path, body) in places)
        {
            var where = $"{path.TrimStart('/').Replace('/', '-')}-{field}";
            foreach (var (name, bytes) in BadUtf8)
                yield return Case(C, $"{where}-utf8-{name}", t, path, Splice(body, bytes), 400, field);
            foreach (var (name, escape) in LoneSurrogates)
                yield return Case(C, $"{where}-surrogate-{name}", t, path, Encoding.UTF8.GetBytes(body.Replace("@@", escape)), 400, field);
        }
        yield return Case(C, "property-name-surrogate", t, "/v1/completions", $$"""{"model":{{m}},"prompt":"Hi","\ud800":1}""", 400, null);
        yield return Case(C, "property-name-utf8", t, "/v1/completions", Splice($$"""{"model":{{m}},"prompt":"Hi","@@":1}""", [0xFF]), 400, null);
    }

    private static IEnumerable<HostileCase> MalformedJson(HostileTarget t)
    {
        const string C = "malformed-json";
        var m = Json(t.Model);
        (string Name, string Body, string? Param)[] bodies =
        [
            ("empty", "", null), ("open-brace", "{", null), ("list", "[1,2]", null), ("null", "null", null), ("number", "42", null),
            ("cut-off", """{"model":""", null), ("trailing-garbage", $$"""{"model":{{m}},"prompt":"Hi"} x""", null),
            ("nan", $$"""{"model":{{m}},"prompt":"Hi","temperature":NaN}""", null), ("single-quotes", "{'model':'x'}", null),
            ("prompt-object", $$$"""{"model":{{{m}}},"prompt":{"a":1}}""", "prompt"), ("messages-string", $$"""{"model":{{m}},"messages":"Hi"}""", "messages"),
            ("max-tokens-huge-number", $$"""{"model":{{m}},"prompt":"Hi","max_tokens":1e400}""", "max_tokens"),
            ("temperature-string", $$"""{"model":{{m}},"prompt":"Hi","temperature":"hot"}""", "temperature"),
            ("seed-float", $$"""{"model":{{m}},"prompt":"Hi","seed":1.5}""", "seed"),
            ("stop-token-id-negative", $$"""{"model":{{m}},"prompt":"Hi","stop_token_ids":[-1]}""", "stop_token_ids[0]"),
            ("prompt-id-huge", $$"""{"model":{{m}},"prompt":[99999999999]}""", "prompt[0]"),
        ];
        foreach (var (name, body, param) in bodies)
        {
            var path = body.Contains("messages") ? "/v1/chat/completions" : "/v1/completions";
            yield return Case(C, name, t, path, body, 400, param);
        }
        yield return Case(C, "tokenize-list", t, "/tokenize", "[1]", 400, null);
    }

    private static IEnumerable<HostileCase> MalformedHttp(HostileTarget t)
    {
        const string C = "malformed-http";
        static byte[] Ascii(string s) => Encoding.Latin1.GetBytes(s);
        yield return new HostileCase(C, "headers-64KiB", Ascii($"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 64 << 10)}\r\nConnection: close\r\n\r\n"), 431, null);
        yield return new HostileCase(C, "headers-1000", Ascii("GET /health HTTP/1.1\r\nHost: x\r\n" + string.Concat(Enumerable.Range(0, 1000).Select(i => $"X-{i}: v\r\n")) + "Connection: close\r\n\r\n"), 431, null);
        yield return new HostileCase(C, "url-16KiB", Ascii($"GET /{new string('a', 16 << 10)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 414, null);
        yield return new HostileCase(C, "http-version-1.7", Ascii("GET /health HTTP/1.7\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, null);
        yield return new HostileCase(C, "garbage", [0x00, 0x01, 0x02, 0xFF, 0x0D, 0x0A, 0x0D, 0x0A], 400, null);
        yield return new HostileCase(C, "no-host", Ascii("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"), 400, null);
        yield return new HostileCase(C, "content-length-abc", Ascii("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n"), 400, null);
        yield return new HostileCase(C, "content-length-negative", Ascii("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n"), 400, null);
        yield return new HostileCase(C, "content-length-twice", Ascii("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}"), 400, null);
        // Framing the application meets while reading the body: it is past authentication by then.
        yield return new HostileCase(C, "chunk-size-zz", Ascii($"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n{Auth(t.ApiKey)}Connection: close\r\n\r\nzz\r\n"), 400, null);
        yield return new HostileCase(C, "chunked-body-cut-off", Ascii($"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n{Auth(t.ApiKey)}Connection: close\r\n\r\n5\r\n{{\"mo\r\n0\r\n\r\n"), 400, null);
        yield return new HostileCase(C, "transfer-encoding-gzip", Ascii("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"), 400, null);
        yield return new HostileCase(C, "header-without-colon", Ascii("GET /health HTTP/1.1\r\nHost: x\r\nBroken header\r\nConnection: close\r\n\r\n"), 400, null);
        yield return new HostileCase(C, "nul-in-header", Ascii("GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\nConnection: close\r\n\r\n"), 400, null);
        yield return new HostileCase(C, "space-in-method", Ascii("G T /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, null);
    }

    private static HostileCase Case(string category, string name, HostileTarget t, string path, string body, int status, string? param) =>
        Case(category, name, t, path, Encoding.UTF8.GetBytes(body), status, param);

    private static HostileCase Case(string category, string name, HostileTarget t, string path, byte[] body, int status, string? param) =>
        new(category, name, Post(path, body, t.ApiKey), status, param);

    public static byte[] Post(string path, byte[] body, string? apiKey) =>
        [.. Encoding.ASCII.GetBytes($"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n{Auth(apiKey)}Connection: close\r\n\r\n"), .. body];

    public static byte[] Get(string path, string? apiKey) =>
        Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{Auth(apiKey)}Connection: close\r\n\r\n");

    private static string Auth(string? apiKey) => apiKey is null ? "" : $"Authorization: Bearer {apiKey}\r\n";

    /// <summary>The body with its @@ replaced by raw bytes.</summary>
    private static byte[] Splice(string body, byte[] bytes)
    {
        int at = body.IndexOf("@@", StringComparison.Ordinal);
        return [.. Encoding.UTF8.GetBytes(body[..at]), .. bytes, .. Encoding.UTF8.GetBytes(body[(at + 2)..])];
    }

    private static string Json(string text) => System.Text.Json.JsonSerializer.Serialize(text);
}
