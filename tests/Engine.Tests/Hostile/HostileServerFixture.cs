using OServe.Engine.Execution;
using OServe.Engine.Serving;
using OServe.Engine.Serving.Hostile;
using OServe.Engine.Tests.EndToEnd;
using Xunit;

namespace OServe.Engine.Tests.Hostile;

/// <summary>
/// One real server (the tiny built-in model, its real engine, Kestrel on 127.0.0.1, an API key) for
/// the whole hostile suite: every case runs against it in turn, and each checks it still answers.
/// </summary>
public sealed class HostileServerFixture : IAsyncLifetime
{
    public const string ApiKey = "hostile-suite-key";

    private RealServer? _server;

    public Uri BaseAddress => _server!.BaseUrl;
    public IReadOnlyDictionary<string, HostileCase> Cases { get; private set; } = new Dictionary<string, HostileCase>();

    public async Task InitializeAsync()
    {
        _server = await RealServer.StartAsync(options: new ServeOptions { ApiKey = ApiKey });
        var limits = ServingLimits.For(new ServeOptions(), _server.Engine);
        Cases = HostileCases.All(new HostileTarget(_server.ModelName, limits.MaxPromptBytes, _server.Engine.MaxModelLength, ApiKey))
            .ToDictionary(c => c.ToString());
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
    }

    /// <summary>Case names for xunit: the list does not depend on the server's figures, only its values do.</summary>
    public static IEnumerable<object[]> CaseNames() =>
        HostileCases.All(new HostileTarget("m", 100, 16, ApiKey)).Select(c => new object[] { c.ToString() });
}
