using OServe.Engine.Benchmarking;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;

namespace OServe.Engine.Demo;

/// <summary>
/// Chat bursts through the OpenAI server on 127.0.0.1 with the benchmark's load generator, as the
/// replays send them: the server's and the client's work per request runs on the same cores as the
/// replicas, so a deployment serves fewer requests/s over HTTP than in-process, and by how much
/// depends on the request rate, not on the deployment alone.
/// </summary>
public sealed class HttpProbe : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _model;

    private HttpProbe(WebApplication app, string model)
    {
        _app = app;
        _model = model;
    }

    /// <summary>
    /// The OpenAI server the demo puts in front of <paramref name="runtime"/> (served through
    /// <paramref name="served"/>, e.g. an arrival recorder): on 127.0.0.1, a free port, warnings only.
    /// Calibration and the replays share it, so the probe measures the server the replays run.
    /// </summary>
    public static WebApplication BuildServer(IInferenceEngine served, PlanRuntime runtime) =>
        ServerHost.Build(new ServeOptions { Host = "127.0.0.1", Port = 0 }, served,
            configure: b => b.Logging.SetMinimumLevel(LogLevel.Warning), engineClock: () => runtime.Clock.Now);

    /// <summary>Serves <paramref name="runtime"/> (whatever plan it runs, before and after a switch) until disposed.</summary>
    public static async Task<HttpProbe> StartAsync(PlanRuntime runtime, string model, CancellationToken ct)
    {
        var app = BuildServer(runtime, runtime);
        await app.StartAsync(ct);
        return new HttpProbe(app, model);
    }

    /// <summary><paramref name="count"/> chats of (input, output) tokens sent at once: requests completed per second until the last one finishes; NaN if any failed.</summary>
    public async Task<double> BurstRpsAsync(int count, int input, int output, int seed, CancellationToken ct)
    {
        var result = await BenchRunner.RunAsync(new BenchOptions
        {
            BaseUrl = ServerHost.BoundAddress(_app), Model = _model, Dataset = BenchDataset.Random, NumPrompts = count,
            RandomInputLen = input, RandomOutputLen = output, RequestRate = null, Seed = seed, SkipInitialTest = true,
            KeepGeneratedTexts = false, PercentileMetrics = [BenchMetric.E2el], MetricPercentiles = [50], RequestTimeout = TimeSpan.FromSeconds(60),
        }, cancellationToken: ct);
        return result.Completed == count && result.Duration > 0 ? count / result.Duration : double.NaN;
    }

    /// <summary>Best of <paramref name="repeats"/> bursts (<see cref="BurstRpsAsync"/>), as calibration's other figures are best-of.</summary>
    public Task<double> BestBurstRpsAsync(int count, int input, int output, int repeats, CancellationToken ct) =>
        EngineProbe.HighestOfAsync(repeats, i => BurstRpsAsync(count, input, output, 500 + i, ct));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}
