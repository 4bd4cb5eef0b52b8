namespace OServe.Engine.Demo;

/// <summary>
/// The demo's two request types: chats (short prompts, longer answers: decode-bound, where a
/// step's fixed cost does not shrink with tensor parallelism, so two tp1 replicas serve more than
/// one tp2), and long prompts with short answers (prefill-bound: both cores on one prompt halve its TTFT).
/// Chats answer in about 32 tokens (48 until 2026-12-05): still decode-bound, and their E2E in the
/// burst on 2 x tp1 (140-200 ms measured) does not hide what a long prompt costs.
/// Long prompts are about 2048 tokens (1024 until late 2026-12-05): at 1024, one took 160-200 ms on
/// 1 x tp2 and 180-230 ms on one core over HTTP, a gap inside the run-to-run spread, so no
/// deployment's P99 showed what serving them on one core costs; at 2048 it is 210-310 vs 400-800 ms.
/// </summary>
public sealed record DemoRequestShapes
{
    public int ChatInput { get; init; } = 16;
    public int ChatOutput { get; init; } = 32;
    public int LongInput { get; init; } = 2048;
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
