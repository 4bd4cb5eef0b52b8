using System.Runtime.CompilerServices;
using OServe.Engine.Execution;

namespace OServe.Engine.Tests.Serving;

public enum FakeBehavior
{
    /// <summary>Yields the script one token per event, finishing with Length at max_tokens or Stop at its end.</summary>
    Script,
    /// <summary>GenerateAsync itself throws AdmissionRejectedException.</summary>
    RejectOnCall,
    /// <summary>The stream throws AdmissionRejectedException when first read (as a lazy iterator would).</summary>
    RejectOnFirstRead,
    /// <summary>Yields the first token, then waits until the request is cancelled.</summary>
    BlockAfterFirstToken,
    /// <summary>Throws an internal error before the first token.</summary>
    FailBeforeFirstToken,
    /// <summary>Yields the first token, then throws an internal error.</summary>
    FailAfterFirstToken,
}

/// <summary>
/// A deterministic stand-in for the engine: one token per character when encoding (BOS first), and a
/// fixed script of text pieces when generating. It records what it was asked and whether the
/// request's cancellation token fired, so tests can check the server's mapping and cancellation.
/// </summary>
public sealed class FakeEngine : IInferenceEngine
{
    public const int Bos = 1;
    public const int FirstScriptTokenId = 1000;
    public const string InternalErrorMessage = "fake engine internals: tensor 0x7f3a exploded";

    public static readonly IReadOnlyList<string> DefaultScript = ["Once", " upon", " a", " time", " there", " was", " a", " cat", "."];

    private long _promptTokensTotal;
    private long _generationTokensTotal;

    public string ModelName { get; init; } = "fake-model";
    public int MaxModelLength { get; init; } = 64;
    public int? VocabSize { get; init; } = 2000;
    public IReadOnlyList<string> Script { get; init; } = DefaultScript;
    public FakeBehavior Behavior { get; set; } = FakeBehavior.Script;
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(2);
    public EngineSnapshot FixedLoad { get; init; } = new(3, 2, 0.25, 0, 0);

    public GenerationRequest? LastRequest { get; private set; }
    public TaskCompletionSource FirstTokenSent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Replaces tokenizing (e.g. to block until the request is cancelled); null: one token per character.</summary>
    public Func<string, CancellationToken, IReadOnlyList<int>>? EncodeHook { get; init; }

    public IReadOnlyList<int> Encode(string text, bool addBos) =>
        [.. (addBos ? [Bos] : Array.Empty<int>()), .. text.Select(c => (int)c + 10)];

    public IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken) =>
        EncodeHook?.Invoke(text, cancellationToken) ?? Encode(text, addBos);

    public byte[] TokenBytes(int tokenId) =>
        tokenId >= FirstScriptTokenId && tokenId - FirstScriptTokenId < Script.Count
            ? System.Text.Encoding.UTF8.GetBytes(Script[tokenId - FirstScriptTokenId])
            : System.Text.Encoding.UTF8.GetBytes(((char)Math.Max(0, tokenId - 10)).ToString());

    /// <summary>The logprob every token of a request gets: -0.1 x (seed mod 3 + 1), so seeds rank distinctly (best_of).</summary>
    public static float LogprobFor(ulong? seed) => -0.1f * ((int)((seed ?? 0) % 3) + 1);

    public IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken)
    {
        if (Behavior == FakeBehavior.RejectOnCall)
            throw new AdmissionRejectedException("fake engine: admission queue full (rejected at call)", RetryAfter);
        return RunAsync(request, cancellationToken);
    }

    public EngineSnapshot Snapshot() => FixedLoad with
    {
        PromptTokensTotal = Interlocked.Read(ref _promptTokensTotal),
        GenerationTokensTotal = Interlocked.Read(ref _generationTokensTotal),
    };

    private async IAsyncEnumerable<GenerationEvent> RunAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        switch (Behavior)
        {
            case FakeBehavior.RejectOnFirstRead:
                throw new AdmissionRejectedException("fake engine: admission queue full (rejected at first read)", RetryAfter);
            case FakeBehavior.FailBeforeFirstToken:
                throw new InvalidOperationException(InternalErrorMessage);
        }
        LastRequest = request;
        var numPrompt = request.PromptTokens.Count;
        Interlocked.Add(ref _promptTokensTotal, numPrompt);
        var numOutput = Math.Min(request.Sampling.MaxTokens, Script.Count);
        var finish = request.Sampling.MaxTokens < Script.Count ? FinishReason.Length : FinishReason.Stop;
        for (var i = 0; i < numOutput; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Interlocked.Increment(ref _generationTokensTotal);
            var logprob = request.Sampling.Logprobs is { } top
                ? new TokenLogprob(FirstScriptTokenId + i, LogprobFor(request.Sampling.Seed), [.. Enumerable.Range(0, top).Select(k => new TopLogprob(FirstScriptTokenId + k, -k))])
                : null;
            yield return new GenerationEvent(request.RequestId, FirstScriptTokenId + i, Script[i],
                i == numOutput - 1 ? finish : FinishReason.None, numPrompt, i + 1)
            {
                Logprob = logprob,
                PromptLogprobs = i == 0 && request.Sampling.PromptLogprobs is not null
                    ? [null, .. request.PromptTokens.Skip(1).Select(t => new TokenLogprob(t, -1f, []))]
                    : null,
            };
            if (i > 0)
                continue;
            FirstTokenSent.TrySetResult();
            if (Behavior == FakeBehavior.FailAfterFirstToken)
                throw new InvalidOperationException(InternalErrorMessage);
            if (Behavior == FakeBehavior.BlockAfterFirstToken)
                await WaitForCancellationAsync(cancellationToken);
        }
    }

    private async Task WaitForCancellationAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Cancelled.TrySetResult();
            throw;
        }
    }
}
