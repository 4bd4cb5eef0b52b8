using System.Diagnostics;

namespace OServe.Engine.Benchmarking;

/// <summary>Counters the CLI's progress bar polls while a run is in flight.</summary>
public sealed class BenchProgress
{
    private int _numDone;
    private int _numFailed;

    public int NumTotal { get; internal set; }
    public int NumDone => Volatile.Read(ref _numDone);
    public int NumFailed => Volatile.Read(ref _numFailed);

    internal void Record(bool success)
    {
        if (!success) Interlocked.Increment(ref _numFailed);
        Interlocked.Increment(ref _numDone);
    }
}

/// <summary>
/// <c>oserve bench</c> in-process: options in, result out. Builds the workload (random or a trace
/// read by the planner's readers), builds prompts of exact token lengths with the server's
/// tokenizer, sends one test request, then sends every request at its arrival time, at most
/// max-concurrency at a time, and summarises what the streams measured.
/// </summary>
public static class BenchRunner
{
    /// <summary>
    /// Throws <see cref="BenchInputException"/> for unusable options or trace rows and
    /// <see cref="BenchServerException"/> when the server cannot be reached or fails the test request;
    /// failures during the run are counted in the result instead.
    /// </summary>
    public static Task<BenchResult> RunAsync(BenchOptions options, TextWriter? log = null, BenchProgress? progress = null,
        CancellationToken cancellationToken = default)
    {
        options.Validate();
        return RunAsync(options, BenchWorkload.Build(options), log, progress, cancellationToken);
    }

    /// <summary>Runs a workload built by the caller (e.g. the fidelity check's scaled trace); the options' dataset fields are ignored.</summary>
    public static async Task<BenchResult> RunAsync(BenchOptions options, BenchWorkload workload, TextWriter? log = null, BenchProgress? progress = null,
        CancellationToken cancellationToken = default)
    {
        log ??= TextWriter.Null;
        options.Validate();
        var requests = workload.Requests;
        var notes = new List<string>(workload.Notes);
        log.WriteLine($"workload: {workload.Description}");

        using var http = StreamingClient.CreateHttpClient(options.MaxConcurrency);
        var tokenizer = await ChooseTokenizerAsync(http, options, notes, log, cancellationToken);
        var builder = await PromptBuilder.CreateAsync(tokenizer, cancellationToken);
        var prompts = await builder.BuildAsync(requests.Select(r => r.InputLen).ToArray(), options.Seed, cancellationToken);
        log.WriteLine($"prompts: {requests.Length} built with tokenizer {tokenizer.Id}, {prompts.NumMismatched} of them not of the exact length asked");
        if (prompts.NumMismatched > 0) notes.Add($"{prompts.NumMismatched} prompts differ from the asked length after re-tokenizing (input_lens holds the real lengths)");
        if (prompts.NumClamped > 0) notes.Add($"{prompts.NumClamped} prompts lengthened to {builder.NumSpecialTokens + 1} tokens: the tokenizer adds {builder.NumSpecialTokens} special tokens");
        if (options.IsChat) notes.Add("chat endpoint: the server's chat template adds tokens to each prompt, so input lengths are lower bounds");
        if (tokenizer.MaxModelLen is { } maxLen && requests.Count(r => r.InputLen + r.OutputLen > maxLen) is var numTooLong and > 0)
            notes.Add($"{numTooLong} requests ask for more than the server's max_model_len {maxLen} (input + output) and may fail");

        var client = new StreamingClient(http, options);
        if (!options.SkipInitialTest)
        {
            log.WriteLine("Starting initial single prompt test run...");
            var test = await client.SendAsync(prompts.Prompts[0], prompts.PromptLens[0], requests[0].OutputLen, cancellationToken);
            if (!test.Success)
                throw new BenchServerException(test.IsConnectFailure ? test.Error : $"initial test request to {options.EndpointUri} failed: {test.Error}");
            log.WriteLine("Initial test run completed. Starting main benchmark run...");
        }
        log.WriteLine($"Traffic request rate: {RateText(options)}");
        log.WriteLine($"Burstiness factor: {options.Burstiness}");
        log.WriteLine($"Maximum request concurrency: {options.MaxConcurrency?.ToString() ?? "None"}");

        if (progress is not null) progress.NumTotal = requests.Length;
        var date = DateTime.Now;
        var (outcomes, duration, maxInFlight) = await SendAllAsync(client, requests, prompts, options.MaxConcurrency, progress, cancellationToken);
        return Summarize(options, tokenizer.Id, workload, prompts, outcomes, duration, maxInFlight, date, notes);
    }

    private static async Task<IBenchTokenizer> ChooseTokenizerAsync(HttpClient http, BenchOptions options, List<string> notes,
        TextWriter log, CancellationToken ct)
    {
        if (options.Tokenizer == BenchTokenizerChoice.Gpt2) return new Gpt2BenchTokenizer();
        var (server, reason) = await ServerBenchTokenizer.ProbeAsync(http, options.BaseUrl, options.Model, options.EndpointUri, ct);
        if (server is not null) return server;
        if (options.Tokenizer == BenchTokenizerChoice.Server)
            throw new BenchServerException($"--tokenizer server: {reason}");
        var note = $"the server has no usable /tokenize ({reason}); prompts built with the local gpt2 tokenizer, so their lengths in the server's own tokens are approximate";
        log.WriteLine($"note: {note}");
        notes.Add(note);
        return new Gpt2BenchTokenizer();
    }

    private static async Task<(RequestOutcome[] Outcomes, double Duration, int MaxInFlight)> SendAllAsync(StreamingClient client,
        PlannedRequest[] requests, PromptSet prompts, int? maxConcurrency, BenchProgress? progress, CancellationToken ct)
    {
        var outcomes = new RequestOutcome[requests.Length];
        var inFlight = new Task[requests.Length];
        using var slots = maxConcurrency is { } m ? new SemaphoreSlim(m, m) : null;
        var numInFlight = 0;
        var maxInFlight = 0;
        var start = Stopwatch.GetTimestamp();

        async Task SendOne(int i)
        {
            var now = Interlocked.Increment(ref numInFlight);
            for (var seen = Volatile.Read(ref maxInFlight); now > seen; seen = Volatile.Read(ref maxInFlight))
                if (Interlocked.CompareExchange(ref maxInFlight, now, seen) == seen) break;
            try
            {
                double sentAt = Stopwatch.GetElapsedTime(start).TotalSeconds;
                outcomes[i] = await client.SendAsync(prompts.Prompts[i], prompts.PromptLens[i], requests[i].OutputLen, ct) with { SentAtS = sentAt };
                progress?.Record(outcomes[i].Success);
            }
            finally
            {
                Interlocked.Decrement(ref numInFlight);
                slots?.Release();
            }
        }

        for (var i = 0; i < requests.Length; i++)
        {
            // Arrival times are absolute offsets from the start, so a late wake-up never shifts later requests.
            // Timers have millisecond resolution: sleep while at least 1 ms early, then send (at most 1 ms early).
            double wait;
            while ((wait = requests[i].ArrivalSec - Stopwatch.GetElapsedTime(start).TotalSeconds) >= 0.001)
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait * 1000)), ct);
            // Like vLLM, a request that arrives while max-concurrency are in flight waits, and its clock starts when it is sent.
            if (slots is not null) await slots.WaitAsync(ct);
            inFlight[i] = SendOne(i);
        }
        await Task.WhenAll(inFlight);
        return (outcomes, Stopwatch.GetElapsedTime(start).TotalSeconds, maxInFlight);
    }

    private static BenchResult Summarize(BenchOptions o, string tokenizerId, BenchWorkload workload, PromptSet prompts,
        RequestOutcome[] outcomes, double duration, int maxInFlight, DateTime date, List<string> notes)
    {
        var ok = outcomes.Where(x => x.Success).ToList();
        long totalInput = ok.Sum(x => (long)x.PromptLen);
        long totalOutput = ok.Sum(x => (long)x.OutputTokens);
        var numFromUsage = ok.Count(x => x.OutputTokensFromUsage);
        if (ok.Count > 0 && numFromUsage < ok.Count)
            notes.Add($"{ok.Count - numFromUsage} of {ok.Count} output lengths counted from stream chunks (no usage chunk from the server)");
        return new BenchResult
        {
            Date = date,
            Backend = o.IsChat ? "openai-chat" : "openai",
            BaseUrl = o.BaseUrl.ToString(),
            Endpoint = o.Endpoint,
            ModelId = o.Model,
            TokenizerId = tokenizerId,
            Workload = workload.Description,
            NumPrompts = outcomes.Length,
            RequestRate = o.RequestRate ?? (o.Dataset == BenchDataset.Trace ? double.NaN : double.PositiveInfinity),
            Burstiness = o.Burstiness,
            MaxConcurrency = o.MaxConcurrency,
            Duration = duration,
            Completed = ok.Count,
            Failed = outcomes.Length - ok.Count,
            TotalInputTokens = totalInput,
            TotalOutputTokens = totalOutput,
            RequestThroughput = ok.Count / duration,
            RequestGoodput = o.Goodput.Count > 0 ? BenchMetrics.CountGood(outcomes, o.Goodput) / duration : null,
            OutputThroughput = totalOutput / duration,
            TotalTokenThroughput = (totalInput + totalOutput) / duration,
            MaxConcurrentRequests = maxInFlight,
            NumPromptLenMismatches = prompts.NumMismatched,
            NumOutputLensFromUsage = numFromUsage,
            Goodput = o.Goodput,
            PercentileMetrics = o.PercentileMetrics,
            MetricPercentiles = o.MetricPercentiles,
            Summaries = BenchMetrics.SummarizeAll(outcomes, o.MetricPercentiles),
            Outcomes = outcomes,
            Notes = notes,
        };
    }

    private static string RateText(BenchOptions o) =>
        o.RequestRate is { } rate ? (double.IsPositiveInfinity(rate) ? "inf" : $"{rate} req/s")
        : o.Dataset == BenchDataset.Trace ? "trace timestamps" : "inf";
}
