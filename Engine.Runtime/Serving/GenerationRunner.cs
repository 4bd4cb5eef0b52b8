using System.Diagnostics;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>
/// Admits a parsed request into the engine: one engine request per sequence (best_of of them, n
/// by default). All are admitted first, then their first events awaited together, before anything
/// is written to the client, so an admission rejection (whether the engine throws at the call or at
/// the first read) still becomes a 429/503 with Retry-After rather than a broken stream.
/// </summary>
public sealed class GenerationRunner(IInferenceEngine engine, ServingMetrics metrics, ServeOptions options, TimeProvider time, Func<double> engineClock)
{
    private int _numInFlight;

    public int NumInFlight => Volatile.Read(ref _numInFlight);

    /// <param name="arrivalTimestamp">When the HTTP request arrived (<paramref name="time"/>'s timestamp); latencies count from it.</param>
    /// <param name="scope">The client's connection and the time budget: when either ends, the engine aborts the requests.</param>
    public async Task<IReadOnlyList<ActiveGeneration>> StartAsync(ParsedRequest parsed, string idPrefix, long arrivalTimestamp, RequestScope scope)
    {
        var id = $"{idPrefix}-{Guid.NewGuid():N}";
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var started = new List<(string Id, IAsyncEnumerator<GenerationEvent> Events, Action Release)>();
        try
        {
            for (int i = 0; i < parsed.BestOf; i++)
            {
                var release = Admit();
                var sampling = parsed.Sampling;
                // Sequences of one request differ; with a seed each is still reproducible.
                if (i > 0 && sampling.Seed is { } seed)
                    sampling = sampling with { Seed = unchecked(seed + (ulong)i) };
                var requestId = parsed.BestOf == 1 ? id : $"{id}-{i}";
                var request = new GenerationRequest(requestId, parsed.PromptTokens, sampling) { ArrivalTime = engineClock() };
                try
                {
                    started.Add((requestId, engine.GenerateAsync(request, scope.Token).GetAsyncEnumerator(scope.Token), release));
                }
                catch
                {
                    release();
                    throw;
                }
            }
            var first = await Task.WhenAll(started.Select(s => s.Events.MoveNextAsync().AsTask()));
            if (Array.IndexOf(first, false) is var empty and >= 0)
                throw new InvalidOperationException($"The engine ended request {started[empty].Id} without any event.");
            return [.. started.Select(s => new ActiveGeneration(s.Id, created, parsed, s.Events, metrics, time, arrivalTimestamp, s.Release, scope))];
        }
        catch (Exception e)
        {
            foreach (var (_, events, release) in started)
            {
                try { await events.DisposeAsync(); }
                finally { release(); }
            }
            if (e is OperationCanceledException && scope.IsTimedOut)
                throw scope.TimedOut();
            if (e is AdmissionRejectedException rejected)
                throw OpenAIErrorException.Overloaded(options.RejectStatusCode, rejected.Message, rejected.RetryAfter);
            // The engine refuses what the parser could not know (e.g. a prompt its KV cache can never hold):
            // its ParamName is the OpenAI field at fault.
            if (e is ArgumentException { ParamName: { } field } refused)
                throw OpenAIErrorException.BadField(field, refused.Message.Replace($" (Parameter '{field}')", ""));
            throw;
        }
    }

    /// <summary>Takes one slot of <see cref="ServeOptions.MaxConcurrentRequests"/>; returns its release.</summary>
    private Action Admit()
    {
        if (options.MaxConcurrentRequests is not { } cap)
            return () => { };
        if (Interlocked.Increment(ref _numInFlight) > cap)
        {
            Interlocked.Decrement(ref _numInFlight);
            throw OpenAIErrorException.Overloaded(options.RejectStatusCode,
                $"The server is at its limit of {cap} concurrent requests; retry later.", options.RetryAfter);
        }
        var released = 0;
        return () =>
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
                Interlocked.Decrement(ref _numInFlight);
        };
    }

    /// <summary>Monotonic seconds: the engine clock when the host supplies none.</summary>
    public static double MonotonicSeconds() => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
}
