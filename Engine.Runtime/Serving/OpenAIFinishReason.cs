using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>The wire names of finish reasons ("abort" is vLLM's, for requests the engine gave up on).</summary>
public static class OpenAIFinishReason
{
    public static string From(FinishReason reason) => reason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        FinishReason.Abort => "abort",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "a finished request has a finish reason"),
    };
}
