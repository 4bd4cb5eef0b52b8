using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using OServe.Engine.Benchmarking;
using OServe.Planner.Workload;
using Spectre.Console;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve bench</c>: a load generator for any OpenAI-compatible server in the spirit of
/// <c>vllm bench serve</c>, and <c>oserve bench loadgen</c>, which measures the generator's own ceiling.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var baseUrl = new Option<string?>("--base-url") { Description = "Server base URL, e.g. http://127.0.0.1:8000 (required)" };
        var model = new Option<string?>("--model") { Description = "Model name sent in each request (required)" };
        var endpoint = new Option<string>("--endpoint") { Description = "/v1/completions or /v1/chat/completions", DefaultValueFactory = _ => "/v1/completions" };
        var datasetName = new Option<string>("--dataset-name") { Description = "random or trace", DefaultValueFactory = _ => "random" };
        var datasetPath = new Option<string?>("--dataset-path") { Description = "Trace file (with --dataset-name trace)" };
        var traceFormat = new Option<string>("--trace-format") { Description = "azure, burstgpt, mooncake, or auto (from extension and header)", DefaultValueFactory = _ => "auto" };
        var timeScale = Number("--time-scale", "Multiply trace timestamps by this (0.5 replays twice as fast)", 1.0);
        var numPrompts = Integer("--num-prompts", "Requests to send (default: 1000 for random, the whole trace for a trace)");
        var inputLen = Integer("--random-input-len", "Input tokens per request (random dataset)", 1024);
        var outputLen = Integer("--random-output-len", "Output tokens per request (random dataset)", 128);
        var rangeRatio = Number("--random-range-ratio", "Lengths drawn uniformly from [len*(1-r), len*(1+r)]", 0.0);
        var requestRate = new Option<string?>("--request-rate") { Description = "Requests/s (Poisson or gamma arrivals) or inf (all at once); default inf, or the trace's timestamps" };
        var burstiness = Number("--burstiness", "Gamma shape of inter-arrival times: 1 = Poisson, <1 burstier, >1 smoother", 1.0);
        var maxConcurrency = Integer("--max-concurrency", "At most this many requests in flight");
        var seed = Integer("--seed", "Seed for lengths, arrivals and prompts", 0);
        var tokenizer = new Option<string>("--tokenizer") { Description = "auto (server's /tokenize, else gpt2), server, or gpt2", DefaultValueFactory = _ => "auto" };
        var goodput = new Option<string[]>("--goodput") { Description = "SLOs in ms for goodput, e.g. ttft:200 tpot:50 e2el:2000", AllowMultipleArgumentsPerToken = true };
        var percentileMetrics = new Option<string>("--percentile-metrics") { Description = "Metrics whose percentiles to print: ttft,tpot,itl,e2el", DefaultValueFactory = _ => "ttft,tpot,itl" };
        var metricPercentiles = new Option<string>("--metric-percentiles") { Description = "Percentiles to report, e.g. 50,90,99", DefaultValueFactory = _ => "99" };
        var requestTimeout = Number("--request-timeout", "Seconds before a request counts as failed", 6 * 3600.0);
        var saveResult = new Option<bool>("--save-result") { Description = "Write the result as JSON (vLLM's field names)" };
        var resultDir = new Option<string?>("--result-dir") { Description = "Directory for the result file (default: current)" };
        var resultFilename = new Option<string?>("--result-filename") { Description = "Result file name (default: vLLM's {backend}-{rate}qps-{model}-{date}.json)" };
        var noProgress = new Option<bool>("--no-progress") { Description = "No progress bar (there is none anyway without a terminal)" };
        var skipTest = new Option<bool>("--skip-initial-test") { Description = "Do not send the one uncounted test request first" };

        var command = new Command("bench", "Load-test an OpenAI-compatible server (OServe, vLLM, SGLang, ...) with a trace or random lengths; prints vLLM's result table.")
        {
            baseUrl, model, endpoint, datasetName, datasetPath, traceFormat, timeScale, numPrompts, inputLen, outputLen, rangeRatio,
            requestRate, burstiness, maxConcurrency, seed, tokenizer, goodput, percentileMetrics, metricPercentiles, requestTimeout,
            saveResult, resultDir, resultFilename, noProgress, skipTest,
        };
        command.Subcommands.Add(LoadGenCommand());
        command.SetAction(async (parse, ct) =>
        {
            var options = new BenchOptions
            {
                BaseUrl = ParseUrl(parse.GetValue(baseUrl)),
                Model = parse.GetValue(model) ?? throw new CliUsageException("--model: required (the model name the server serves)"),
                Endpoint = parse.GetValue(endpoint)!,
                Dataset = Choice("--dataset-name", parse.GetValue(datasetName)!, new Dictionary<string, BenchDataset>
                    { ["random"] = BenchDataset.Random, ["trace"] = BenchDataset.Trace }),
                DatasetPath = parse.GetValue(datasetPath),
                TraceFormat = Choice("--trace-format", parse.GetValue(traceFormat)!, new Dictionary<string, TraceFormat?>
                    { ["auto"] = null, ["azure"] = TraceFormat.Azure, ["burstgpt"] = TraceFormat.BurstGpt, ["mooncake"] = TraceFormat.Mooncake }),
                TimeScale = parse.GetValue(timeScale)!.Value,
                NumPrompts = parse.GetValue(numPrompts),
                RandomInputLen = parse.GetValue(inputLen)!.Value,
                RandomOutputLen = parse.GetValue(outputLen)!.Value,
                RandomRangeRatio = parse.GetValue(rangeRatio)!.Value,
                RequestRate = ParseRate(parse.GetValue(requestRate)),
                Burstiness = parse.GetValue(burstiness)!.Value,
                MaxConcurrency = parse.GetValue(maxConcurrency),
                Seed = parse.GetValue(seed)!.Value,
                Tokenizer = Choice("--tokenizer", parse.GetValue(tokenizer)!, new Dictionary<string, BenchTokenizerChoice>
                    { ["auto"] = BenchTokenizerChoice.Auto, ["server"] = BenchTokenizerChoice.Server, ["gpt2"] = BenchTokenizerChoice.Gpt2 }),
                Goodput = ParseGoodput(parse.GetValue(goodput) ?? []),
                PercentileMetrics = ParseMetrics(parse.GetValue(percentileMetrics)!),
                MetricPercentiles = ParsePercentiles(parse.GetValue(metricPercentiles)!),
                RequestTimeout = TimeSpan.FromSeconds(parse.GetValue(requestTimeout)!.Value is var t && t > 0 ? t
                    : throw new CliUsageException($"--request-timeout: must be a positive number of seconds, got {t}")),
                SkipInitialTest = parse.GetValue(skipTest),
            };
            var save = parse.GetValue(saveResult) || parse.GetValue(resultDir) is not null || parse.GetValue(resultFilename) is not null;
            return await RunAndReportAsync(parse.InvocationConfiguration, options, !parse.GetValue(noProgress),
                save ? (parse.GetValue(resultDir), parse.GetValue(resultFilename)) : null, ct);
        });
        return command;
    }

    /// <summary>Runs, prints the table, saves the JSON; maps bad input to exit 2 and an unreachable or failing server to 1.</summary>
    public static async Task<int> RunAndReportAsync(InvocationConfiguration io, BenchOptions options, bool allowProgress,
        (string? Dir, string? FileName)? saveTo, CancellationToken ct)
    {
        var output = io.Output;
        try
        {
            var progress = new BenchProgress();
            var run = BenchRunner.RunAsync(options, output, progress, ct);
            // A live bar only on a real terminal: redirected, piped or in-process output gets plain lines.
            if (allowProgress && ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
                await ShowProgressAsync(run, progress);
            var result = await run;
            output.WriteLine();
            BenchReport.Write(output, result);
            if (saveTo is var (dir, fileName))
            {
                var path = Path.Combine(dir ?? ".", fileName ?? BenchResultJson.DefaultFileName(result));
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                await using (var file = File.Create(path)) BenchResultJson.Write(file, result);
                output.WriteLine($"result saved to {path}");
            }
            if (result.Completed > 0) return OServeCli.ExitOk;
            io.Error.WriteLine($"error all {result.Failed} requests failed, the first with: {result.Outcomes[0].Error}");
            return OServeCli.ExitFailure;
        }
        catch (BenchInputException e)
        {
            foreach (var problem in e.Problems) io.Error.WriteLine($"error {problem}");
            return OServeCli.ExitBadInput;
        }
        catch (BenchServerException e)
        {
            io.Error.WriteLine($"error {e.Message}");
            return OServeCli.ExitFailure;
        }
        catch (IOException e) when (saveTo is not null)
        {
            io.Error.WriteLine($"error --result-dir: cannot write the result: {e.Message}");
            return OServeCli.ExitFailure;
        }
    }

    private static async Task ShowProgressAsync(Task run, BenchProgress progress)
    {
        // Setup lines (workload, tokenizer, test request) print first; the bar starts with the sending.
        while (!run.IsCompleted && progress.NumTotal == 0) await Task.WhenAny(run, Task.Delay(50));
        if (run.IsCompleted) return;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("requests", maxValue: progress.NumTotal);
                while (!run.IsCompleted)
                {
                    await Task.WhenAny(run, Task.Delay(200));
                    task.Value = progress.NumDone;
                    task.Description = progress.NumFailed > 0 ? $"requests ({progress.NumFailed} failed)" : "requests";
                }
                task.Value = progress.NumDone;
            });
    }

    private static Command LoadGenCommand()
    {
        var numPrompts = Integer("--num-prompts", "Requests in the measured run", 20000);
        var concurrency = Integer("--max-concurrency", "Requests in flight", 64);
        var outputLen = Integer("--output-len", "Chunks streamed per request", 4);
        var serveOnly = new Option<bool>("--serve-only") { Description = "Only serve (to load it from another process pinned to another core)" };
        var port = Integer("--port", "Port for --serve-only (0: any free port)", 8199);
        var command = new Command("loadgen", "Measure the load generator's own ceiling (requests/s) against a trivial in-process SSE server on 127.0.0.1.")
        {
            numPrompts, concurrency, outputLen, serveOnly, port,
        };
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var serve = parse.GetValue(serveOnly);
            var listenPort = serve ? parse.GetValue(port)!.Value : 0;
            TrivialSseServer server;
            try { server = await TrivialSseServer.StartAsync(listenPort, ct); }
            catch (IOException e)
            {
                parse.InvocationConfiguration.Error.WriteLine($"error --port: cannot listen on 127.0.0.1:{listenPort}: {e.InnerException?.Message ?? e.Message}");
                return OServeCli.ExitFailure;
            }
            await using var _ = server;
            if (serve)
            {
                output.WriteLine($"trivial SSE server on {server.BaseUrl}; stop with Ctrl+C");
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, server.Stopping);
                try { await Task.Delay(Timeout.Infinite, stop.Token); }
                catch (OperationCanceledException) { }
                return OServeCli.ExitOk;
            }
            var options = new BenchOptions
            {
                BaseUrl = server.BaseUrl,
                Model = "trivial",
                NumPrompts = parse.GetValue(numPrompts)!.Value,
                RandomInputLen = 8,
                RandomOutputLen = parse.GetValue(outputLen)!.Value,
                MaxConcurrency = parse.GetValue(concurrency)!.Value,
                Tokenizer = BenchTokenizerChoice.Server,
            };
            options.Validate();
            // A short warm-up run first, so JIT and connection setup stay out of the figure.
            await BenchRunner.RunAsync(options with { NumPrompts = Math.Min(2000, options.NumPrompts!.Value) }, cancellationToken: ct);
            var result = await BenchRunner.RunAsync(options, cancellationToken: ct);
            BenchReport.Write(output, result);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"load generator: {result.RequestThroughput:F0} requests/s, {result.OutputThroughput:F0} chunks/s at concurrency {options.MaxConcurrency}, " +
                $"client and server sharing {Environment.ProcessorCount} processor(s) in one process"));
            return result.Failed == 0 ? OServeCli.ExitOk : OServeCli.ExitFailure;
        });
        return command;
    }

    private static Uri ParseUrl(string? text)
    {
        if (text is null) throw new CliUsageException("--base-url: required (e.g. http://127.0.0.1:8000)");
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new CliUsageException($"--base-url: expected an http:// or https:// URL, got '{text}'");
        return uri;
    }

    private static double? ParseRate(string? text)
    {
        if (text is null) return null;
        if (text.Equals("inf", StringComparison.OrdinalIgnoreCase)) return double.PositiveInfinity;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) && double.IsFinite(rate) && rate > 0) return rate;
        throw new CliUsageException($"--request-rate: expected a positive number of requests/s or inf, got '{text}'");
    }

    private static IReadOnlyList<GoodputSlo> ParseGoodput(string[] items) => items.Select(item =>
    {
        var parts = item.Split(':');
        var metric = parts.Length == 2 ? parts[0].Trim().ToLowerInvariant() : "";
        BenchMetric? known = metric switch { "ttft" => BenchMetric.Ttft, "tpot" => BenchMetric.Tpot, "e2el" => BenchMetric.E2el, _ => null };
        if (known is null || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) || !double.IsFinite(ms) || ms < 0)
            throw new CliUsageException($"--goodput: expected METRIC:MS with METRIC ttft, tpot or e2el and MS >= 0, got '{item}'");
        return new GoodputSlo(known.Value, ms);
    }).ToList();

    private static IReadOnlyList<BenchMetric> ParseMetrics(string text) => text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
        .Select(m => m.ToLowerInvariant() switch
        {
            "ttft" => BenchMetric.Ttft, "tpot" => BenchMetric.Tpot, "itl" => BenchMetric.Itl, "e2el" => BenchMetric.E2el,
            _ => throw new CliUsageException($"--percentile-metrics: unknown metric '{m}' (known: ttft, tpot, itl, e2el)"),
        }).Distinct().ToList();

    private static IReadOnlyList<double> ParsePercentiles(string text) => text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
        .Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v is > 0 and <= 100 ? v
            : throw new CliUsageException($"--metric-percentiles: expected numbers in (0, 100], got '{p}'"))
        .Distinct().ToList();

    private static T Choice<T>(string option, string value, Dictionary<string, T> choices) =>
        choices.TryGetValue(value.ToLowerInvariant(), out var choice) ? choice
            : throw new CliUsageException($"{option}: unknown value '{value}' (known: {string.Join(", ", choices.Keys)})");

    /// <summary>
    /// Numbers are parsed here rather than by System.CommandLine so that a malformed one is a
    /// CliUsageException (exit 2, one line naming the option), like every other bad value.
    /// </summary>
    private static Option<int?> Integer(string name, string description, int? defaultValue = null) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => int.TryParse(r.Tokens.Single().Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
            : throw new CliUsageException($"{name}: expected an integer, got '{r.Tokens.Single().Value}'"),
    };

    private static Option<double?> Number(string name, string description, double? defaultValue = null) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => double.TryParse(r.Tokens.Single().Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
            : throw new CliUsageException($"{name}: expected a number, got '{r.Tokens.Single().Value}'"),
    };
}
