namespace OServe.Engine.Demo;

/// <summary>The demo's two request types: short chats, and long prompts with short answers.</summary>
public sealed record DemoRequestShapes
{
    public int ChatInput { get; init; } = 48;
    public int ChatOutput { get; init; } = 12;
    public int LongInput { get; init; } = 1024;
    public int LongOutput { get; init; } = 4;

    /// <summary>Lengths are drawn uniformly within this fraction of the mean (so requests are not all alike).</summary>
    public double Jitter { get; init; } = 0.1;

    public void Validate(int maxModelLen)
    {
        if (ChatInput < 1 || ChatOutput < 1 || LongInput < 1 || LongOutput < 1)
            throw new ArgumentException($"demo request lengths must be positive: chat {ChatInput}/{ChatOutput}, long {LongInput}/{LongOutput}");
        if ((LongInput + LongOutput) * (1 + Jitter) > maxModelLen)
            throw new ArgumentException($"demo long prompts ({LongInput} + {LongOutput} tokens, +{Jitter:P0}) exceed the model's context of {maxModelLen}");
        if (LongInput <= ChatInput) throw new ArgumentException($"long prompts ({LongInput} tokens) must be longer than chats ({ChatInput})");
    }
}
