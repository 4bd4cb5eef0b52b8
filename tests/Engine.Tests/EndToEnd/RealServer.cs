using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using OServe.Engine.Execution;
using OServe.Engine.Serving;
using OServe.Models;

namespace OServe.Engine.Tests.EndToEnd;

/// <summary>The real stack on loopback: a loaded model, its AsyncEngine, the HTTP server.</summary>
internal sealed class RealServer : IAsyncDisposable
{
    private readonly LoadedModel _model;
    private readonly AsyncEngine _engine;
    private readonly WebApplication _app;

    private RealServer(LoadedModel model, AsyncEngine engine, WebApplication app)
    {
        (_model, _engine, _app) = (model, engine, app);
    }

    public Uri BaseUrl => ServerHost.BoundAddress(_app);
    public string ModelName => _engine.ModelName;
    public EngineSnapshot Snapshot() => _engine.Snapshot();
    public AsyncEngine Engine => _engine;

    /// <summary>A tiny random built-in model (fast on CPU) unless a model is given.</summary>
    public static async Task<RealServer> StartAsync(LoadedModel? model = null, EngineSettings? settings = null, ServeOptions? options = null)
    {
        model ??= BuiltInModel.Create(new BuiltInModelOptions { Dim = 64, HiddenDim = 160, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxSeqLen = 512, Name = "tiny" });
        var engine = LocalEngineBuilder.Create(model, settings ?? new EngineSettings { MaxNumSeqs = 16, KvCacheGib = 0.05 });
        var app = ServerHost.Build((options ?? new ServeOptions()) with { Port = 0 }, engine,
            configure: b => b.Logging.ClearProviders(), engineClock: () => engine.Clock.Now);
        await app.StartAsync();
        return new RealServer(model, engine, app);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _engine.DisposeAsync();
        _model.Dispose();
    }
}
