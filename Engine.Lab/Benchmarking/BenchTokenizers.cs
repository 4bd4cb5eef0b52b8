using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace OServe.Engine.Benchmarking;

/// <summary>Counts tokens the way the server will; the prompt builder only ever needs counts.</summary>
public interface IBenchTokenizer
{
    /// <summary>What the result's tokenizer_id says: "server:URL" or a local tokenizer's name.</summary>
    string Id { get; }

    /// <summary>The server's context length when it says so (vLLM's /tokenize does), else null.</summary>
    int? MaxModelLen { get; }

    ValueTask<int> CountAsync(string text, CancellationToken cancellationToken);
}

/// <summary>GPT-2's BPE, run locally (Microsoft.ML.Tokenizers with its bundled gpt2 vocabulary).</summary>
public sealed class Gpt2BenchTokenizer : IBenchTokenizer
{
    private static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    public string Id => "gpt2";
    public int? MaxModelLen => null;

    public ValueTask<int> CountAsync(string text, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Shared.Value.CountTokens(text));
}

/// <summary>
/// The server's own tokenizer behind vLLM's <c>POST /tokenize</c> ({"model","prompt"} →
/// {"tokens","count","max_model_len"}), which OServe's server exposes too. Counts include the
/// special tokens the server adds (BOS), as the prompt the model sees does.
/// </summary>
public sealed class ServerBenchTokenizer : IBenchTokenizer
{
    private readonly HttpClient _http;
    private readonly Uri _url;
    private readonly string _model;

    private ServerBenchTokenizer(HttpClient http, Uri url, string model, int? maxModelLen)
    {
        _http = http;
        _url = url;
        _model = model;
        MaxModelLen = maxModelLen;
    }

    public string Id => $"server:{_url}";
    public int? MaxModelLen { get; }

    public static Uri TokenizeUri(Uri baseUrl) => new(baseUrl.ToString().TrimEnd('/') + "/tokenize");

    /// <summary>
    /// Asks the server to count a short text. Returns the tokenizer, or null with the reason when the
    /// server answers but has no usable /tokenize; throws <see cref="BenchServerException"/> when it cannot be reached.
    /// </summary>
    public static async Task<(ServerBenchTokenizer? Tokenizer, string? Reason)> ProbeAsync(
        HttpClient http, Uri baseUrl, string model, Uri benchmarkedEndpoint, CancellationToken cancellationToken)
    {
        var url = TokenizeUri(baseUrl);
        try
        {
            var (status, count, maxLen, body) = await PostAsync(http, url, model, "hello world", cancellationToken);
            if (status != HttpStatusCode.OK) return (null, $"POST {url} answered HTTP {(int)status}: {OneLine(body)}");
            if (count is null) return (null, $"POST {url} answered without a token count: {OneLine(body)}");
            return (new ServerBenchTokenizer(http, url, model, maxLen), null);
        }
        catch (HttpRequestException e)
        {
            // A refused connection is about the host, not the path: name the endpoint the user asked to benchmark.
            if (HttpFailure.IsConnectFailure(e)) throw new BenchServerException(HttpFailure.Describe(e, benchmarkedEndpoint));
            throw new BenchServerException($"POST {url} failed: {e.Message}");
        }
    }

    public async ValueTask<int> CountAsync(string text, CancellationToken cancellationToken)
    {
        var (status, count, _, body) = await PostAsync(_http, _url, _model, text, cancellationToken);
        if (status != HttpStatusCode.OK || count is null)
            throw new BenchServerException($"POST {_url} answered HTTP {(int)status}: {OneLine(body)}");
        return count.Value;
    }

    private static async Task<(HttpStatusCode Status, int? Count, int? MaxModelLen, string Body)> PostAsync(
        HttpClient http, Uri url, string model, string prompt, CancellationToken cancellationToken)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(new TokenizeRequest(model, prompt), BenchJsonContext.Default.TokenizeRequest);
        using var content = new ByteArrayContent(payload);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync(url, content, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK) return (response.StatusCode, null, null, body);
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            int? count = root.TryGetProperty("count", out var c) && c.TryGetInt32(out var n) ? n
                : root.TryGetProperty("tokens", out var t) && t.ValueKind == JsonValueKind.Array ? t.GetArrayLength()
                : null;
            int? maxLen = root.TryGetProperty("max_model_len", out var m) && m.TryGetInt32(out var ml) ? ml : null;
            return (response.StatusCode, count, maxLen, body);
        }
        catch (JsonException)
        {
            return (response.StatusCode, null, null, body);
        }
    }

    private static string OneLine(string text)
    {
        var line = text.ReplaceLineEndings(" ").Trim();
        return line.Length <= 200 ? line : line[..200] + "…";
    }
}

public sealed record TokenizeRequest(string Model, string Prompt);
