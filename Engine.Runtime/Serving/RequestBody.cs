using System.Text.Json;

namespace OServe.Engine.Serving;

/// <summary>
/// Reads a request body as one JSON document. Bad JSON is a 400; so is any string (value or
/// property name, at any depth) that is not valid Unicode: invalid UTF-8 bytes or an escaped lone
/// surrogate ("a\ud800b"), which System.Text.Json parses but cannot turn into a string. Checking
/// the whole tree here, once, means no field reader downstream can fail on one with a 500.
/// </summary>
public static class RequestBody
{
    private const int MaxDepth = 64;

    public static async Task<JsonElement> ReadJsonAsync(HttpContext http, CancellationToken cancellationToken)
    {
        JsonElement root;
        try
        {
            using var document = await JsonDocument.ParseAsync(http.Request.Body, new JsonDocumentOptions { MaxDepth = MaxDepth }, cancellationToken);
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw OpenAIErrorException.BadRequest($"request body: not valid JSON ({e.Message})");
        }
        CheckStrings(root, "");
        return root;
    }

    /// <summary>Throws a 400 naming the first string at <paramref name="path"/> or below that is not valid Unicode.</summary>
    public static void CheckStrings(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                if (!IsReadable(element))
                    throw OpenAIErrorException.BadField(Name(path), "is not valid Unicode text (invalid UTF-8, or an unpaired surrogate such as \\ud800)");
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                    CheckStrings(item, $"{path}[{i++}]");
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    string name;
                    try { name = property.Name; }
                    catch (InvalidOperationException)
                    {
                        throw OpenAIErrorException.BadRequest(
                            $"request body: a property name{(path.Length > 0 ? $" in {path}" : "")} is not valid Unicode text (invalid UTF-8, or an unpaired surrogate)");
                    }
                    CheckStrings(property.Value, path.Length == 0 ? name : $"{path}.{name}");
                }
                break;
        }
    }

    private static bool IsReadable(JsonElement value)
    {
        try
        {
            _ = value.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static string Name(string path) => path.Length == 0 ? "request body" : path;
}
