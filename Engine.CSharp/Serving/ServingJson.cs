using System.Text.Json;
using System.Text.Json.Serialization;

namespace OServe.Engine.Serving;

/// <summary>OpenAI's wire conventions: snake_case names, nulls written (clients expect "finish_reason": null).</summary>
public static class ServingJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        return options;
    }
}
